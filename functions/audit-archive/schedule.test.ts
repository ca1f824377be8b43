// The pg_cron schedule (supabase/migrations/20261127002100_audit_archive_schedule.sql).
//
// With pg_cron in the test server (CI: Debian PostgreSQL 15 + postgresql-15-cron, preloaded, and
// EXPECT_PG_CRON=1) the job must be registered with the intended schedule. pg_cron lives in one
// database per cluster (cron.database_name), not in the per-file clones, so the check applies the
// schedule migration there inside a transaction and rolls it back. Without pg_cron the migration must have
// been a no-op, and EXPECT_PG_CRON=1 turns a missing pg_cron into a failure that says what to install.
//
// pg_net and Vault are not needed to register the job (they are read when it runs); the function the
// job calls is checked against minimal stand-ins for net.http_post and vault.decrypted_secrets.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MIGRATIONS_DIR } from "../../scripts/lib/migrations.ts";
import { withDatabase } from "../../tests/setup/postgres.global.ts";
import { createTestDatabase, type TestDatabase } from "../../tests/support/database.ts";

const JOB_NAME = "audit-archive";
const JOB_SCHEDULE = "*/10 * * * *";
const JOB_COMMAND = "select secret_store.request_audit_archive()";
const SCHEDULE_MIGRATION = "20261127002100";
const SCHEDULE_FILE = readdirSync(MIGRATIONS_DIR).find((f) => f.startsWith(`${SCHEDULE_MIGRATION}_`))!;

let db: TestDatabase;
let admin: Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  admin = postgres(inject("pgAdminUrl"), { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

async function pgCronStatus(): Promise<{ available: boolean; cronDatabase: string | null }> {
  const available = (await admin`select 1 from pg_available_extensions where name = 'pg_cron'`).length > 0;
  // Only set when pg_cron is in shared_preload_libraries, without which it cannot be created.
  const [{ name }] = await admin`select current_setting('cron.database_name', true) as name`;
  return { available, cronDatabase: available && name ? name : null };
}

class Rollback extends Error {}

describe("audit-archive schedule", () => {
  it("registers the pg_cron job where pg_cron exists, and is a no-op where it does not", async () => {
    const { available, cronDatabase } = await pgCronStatus();
    if (process.env.EXPECT_PG_CRON === "1" && !cronDatabase) {
      throw new Error(
        available
          ? "EXPECT_PG_CRON=1 but pg_cron is not loadable: add shared_preload_libraries = 'pg_cron' (and cron.use_background_workers = on) to postgresql.conf and restart"
          : "EXPECT_PG_CRON=1 but the pg_cron extension is not available: install postgresql-15-cron (apt-get install postgresql-15-cron), preload it (shared_preload_libraries = 'pg_cron') and restart PostgreSQL",
      );
    }

    if (!cronDatabase) {
      // The migration applied (it is in the template every test database is cloned from) and did nothing else.
      const [row] = await db.sql`
        select to_regnamespace('cron') is null as no_cron,
               exists (select 1 from supabase_migrations.schema_migrations where version = ${SCHEDULE_MIGRATION}) as applied,
               to_regprocedure('secret_store.request_audit_archive()') is not null as has_function`;
      expect(row).toEqual({ no_cron: true, applied: true, has_function: true });
      return;
    }

    // pg_cron: apply the schedule migration in its database, look at cron.job, roll everything back.
    const cronDb = postgres(withDatabase(inject("pgAdminUrl"), cronDatabase), { max: 1, onnotice: () => {} });
    let job: Record<string, unknown> | undefined;
    try {
      await cronDb.begin(async (tx) => {
        await tx`create extension if not exists pg_cron`;
        const tracked = (await tx`select to_regclass('supabase_migrations.schema_migrations') is not null as t`)[0].t;
        const applied = tracked && (await tx`select 1 from supabase_migrations.schema_migrations where version = ${SCHEDULE_MIGRATION}`).length > 0;
        if (!applied) {
          // The schedule migration needs only its schema from the earlier migrations.
          await tx`create schema if not exists secret_store`;
          await tx.unsafe(readFileSync(join(MIGRATIONS_DIR, SCHEDULE_FILE), "utf8"));
        }
        [job] = await tx`select jobname, schedule, command, active, database from cron.job where jobname = ${JOB_NAME}`;
        throw new Rollback();
      });
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
    } finally {
      await cronDb.end();
    }
    expect(job).toEqual({ jobname: JOB_NAME, schedule: JOB_SCHEDULE, command: JOB_COMMAND, active: true, database: cronDatabase });
  });

  it("the job's function calls the function URL from Vault with the archive key, and says what is missing", async () => {
    const { sql } = db;
    await expect(sql`select secret_store.request_audit_archive()`).rejects.toThrow(/pg_net is not installed/);

    // Minimal stand-ins with pg_net's and Vault's shapes.
    await sql.unsafe(`
      create schema net;
      create table net.calls (id bigserial primary key, url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer);
      create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
          headers jsonb default '{"Content-Type": "application/json"}', timeout_milliseconds integer default 5000)
        returns bigint language sql as $$
          insert into net.calls (url, body, params, headers, timeout_milliseconds)
          values (url, body, params, headers, timeout_milliseconds) returning id
        $$;`);
    await expect(sql`select secret_store.request_audit_archive()`).rejects.toThrow(/Vault is not available/);
    await sql.unsafe(`
      create schema vault;
      create table vault.decrypted_secrets (name text primary key, decrypted_secret text);`);
    await expect(sql`select secret_store.request_audit_archive()`).rejects.toThrow(/store the secrets project_url and audit_archive_key in Vault/);

    const key = "archive-key-from-vault-0123456789abcdef";
    await sql`insert into vault.decrypted_secrets values ('project_url', 'https://abcd.supabase.co/'), ('audit_archive_key', ${key})`;
    const [{ id }] = await sql`select secret_store.request_audit_archive() as id`;
    const calls = await sql`select * from net.calls`;
    expect(calls).toEqual([{
      id,
      url: "https://abcd.supabase.co/functions/v1/audit-archive",
      body: {},
      params: {},
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      timeout_milliseconds: 150000,
    }]);
  });

  it("is not callable by API roles", async () => {
    for (const role of ["anon", "authenticated", "service_role"]) {
      const [{ allowed }] = await db.sql`
        select has_function_privilege(${role}, 'secret_store.request_audit_archive()', 'execute') as allowed`;
      expect({ role, allowed }).toEqual({ role, allowed: false });
    }
  });
});
