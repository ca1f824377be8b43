// The rules without the function: a caller querying audit_logs through the Data API with their own
// JWT (role authenticated + claims, as PostgREST sets them) sees only projects they hold audit:read
// on, cannot change the trail, and cannot use the function-only helpers. And the Realtime wiring:
// broadcast trigger and subscription policy, against a stand-in realtime schema.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sql, TransactionSql } from "postgres";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

let db: TestDatabase;
let sql: Sql;
let projectA: string;
let projectB: string;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = db.sql;
  [{ id: projectA }] = await sql<{ id: string }[]>`insert into secret_store.projects (name) values ('a') returning id`;
  [{ id: projectB }] = await sql<{ id: string }[]>`insert into secret_store.projects (name) values ('b') returning id`;
  await sql`insert into secret_store.grants (project_id, principal, permission) values
    (${projectA}, 'auditor-a', 'audit:read'), (${projectA}, 'reader-a', 'secrets:read'), (${projectB}, 'auditor-b', 'audit:read')`;
  for (const project of [projectA, projectA, projectB]) {
    await sql`insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type)
              values (${project}, 'read', 'read', 'granted', 'runner', 'service')`;
  }
});
afterAll(() => db?.drop());

/** Runs fn as PostgREST would for a request with this JWT subject (or anonymously). */
async function asCaller<T>(sub: string | null, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return (await sql.begin(async (tx) => {
    if (sub === null) {
      await tx`select set_config('role', 'anon', true)`;
    } else {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub, role: "authenticated" })}, true),
                      set_config('role', 'authenticated', true)`;
    }
    return await fn(tx);
  })) as T;
}

const projectsSeenBy = (sub: string) =>
  asCaller(sub, async (tx) => (await tx<{ project_id: string }[]>`select distinct project_id::text from public.audit_logs`).map((r) => r.project_id));

describe("audit_logs through the Data API (RLS)", () => {
  it("shows each caller only the projects they hold audit:read on", async () => {
    expect(await projectsSeenBy("auditor-a")).toEqual([projectA]);
    expect(await projectsSeenBy("auditor-b")).toEqual([projectB]);
    expect(await projectsSeenBy("reader-a")).toEqual([]);
    expect(await projectsSeenBy("nobody")).toEqual([]);
    // Filtering on another project does not help.
    expect(await asCaller("auditor-b", (tx) => tx`select id from public.audit_logs where project_id = ${projectA}`)).toHaveLength(0);
  });

  it("refuses anon, writes of any kind, the partitions directly and the helper functions", async () => {
    await expect(asCaller(null, (tx) => tx`select 1 from public.audit_logs`)).rejects.toThrow(/permission denied/);
    for (const statement of [
      `insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type) values ('${projectA}', 'read', 'read', 'granted', 'x', 'user')`,
      `update public.audit_logs set outcome = 'denied'`,
      `delete from public.audit_logs`,
      `select * from audit_partitions.audit_logs_default`,
      `select secret_store.audit_filter_clause('{}')`,
      `select secret_store.announce_audit_entries('${projectA}')`,
      `select secret_store.renew_audit_stream_watch(gen_random_uuid(), '{}', 60)`,
      `select secret_store.enable_audit_realtime()`,
    ]) {
      await expect(asCaller("auditor-a", (tx) => tx.unsafe(statement)), statement).rejects.toThrow(/permission denied/);
    }
    for (const fn of ["query_audit_logs(null, '{}', null, 1, '{}')", "get_audit_log(null, 1, '{}')", "authorize_audit_read(null, 'audit_export', '{}', '{}', '{}')"]) {
      await expect(asCaller(null, (tx) => tx.unsafe(`select public.${fn}`)), fn).rejects.toThrow(/permission denied/);
    }
  });

  it("lets the audited SQL functions answer the same: granted for audit:read, denied otherwise, both recorded", async () => {
    const call = (sub: string, project: string) =>
      asCaller(sub, async (tx) => (await tx`select public.query_audit_logs(${project}::uuid, '{}', null, 10, '{}') as r`)[0].r);
    const granted = await call("auditor-a", projectA);
    expect(granted.outcome).toBe("granted");
    expect(granted.entries.every((e: { project_id: string }) => e.project_id === projectA)).toBe(true);
    expect(await call("auditor-b", projectA)).toEqual({ outcome: "denied" });
    expect(await call("reader-a", projectA)).toEqual({ outcome: "denied" });
    const recorded = await sql`select user_identity, outcome::text from public.audit_logs where action = 'audit_query' order by id`;
    expect(recorded.map((r) => [r.user_identity, r.outcome])).toEqual([["auditor-a", "granted"], ["auditor-b", "denied"], ["reader-a", "denied"]]);
  });
});

describe("Realtime broadcast (stand-in realtime schema)", () => {
  beforeAll(async () => {
    // What Supabase provides, reduced to what the trigger and the policy use.
    await sql.unsafe(`
      create schema realtime;
      grant usage on schema realtime to authenticated;
      create table realtime.messages (id bigserial primary key, topic text not null, extension text not null,
        payload jsonb, event text, private boolean default true);
      alter table realtime.messages enable row level security;
      grant select on realtime.messages to authenticated;
      create table realtime.sent (payload jsonb, event text, topic text, private boolean);
      create function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
        language sql as $$ insert into realtime.sent values (payload, event, topic, private) $$;
      create function realtime.topic() returns text language sql stable
        as $$ select nullif(current_setting('realtime.topic', true), '') $$;
      grant execute on function realtime.topic() to authenticated;
    `);
    expect((await sql`select secret_store.enable_audit_realtime() as enabled`)[0].enabled).toBe(true);
    // Idempotent.
    await sql`select secret_store.enable_audit_realtime()`;
  });

  it("broadcasts each new entry to the private channel audit:<project_id>", async () => {
    await sql`delete from realtime.sent`;
    await sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', '{"sub":"runner-9"}', true)`;
      await tx`select secret_store.record_access(${projectB}::uuid, null, 'API_KEY', 3, 'read', 'granted', '{"ip":"203.0.113.5"}'::jsonb)`;
    });
    const sent = await sql`select * from realtime.sent`;
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ topic: `audit:${projectB}`, event: "audit_log", private: true });
    expect(sent[0].payload.entry).toMatchObject({ project_id: projectB, secret_name: "API_KEY", user_identity: "runner-9", ip_address: "203.0.113.5" });
  });

  it("does not fail the access when the broadcast fails", async () => {
    await sql.unsafe(`create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
      returns void language plpgsql as $$ begin raise exception 'realtime down'; end $$`);
    try {
      const before = (await sql`select count(*)::int as n from public.audit_logs`)[0].n;
      await sql`insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type)
                values (${projectA}, 'read', 'read', 'granted', 'runner', 'service')`;
      expect((await sql`select count(*)::int as n from public.audit_logs`)[0].n).toBe(before + 1);
    } finally {
      await sql.unsafe(`create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
        returns void language sql as $$ insert into realtime.sent values (payload, event, topic, private) $$`);
    }
  });

  it("lets only audit:read holders receive audit:<project_id> broadcasts", async () => {
    await sql`insert into realtime.messages (topic, extension, event) values
      (${`audit:${projectA}`}, 'broadcast', 'audit_log'), (${`audit:${projectB}`}, 'broadcast', 'audit_log'), ('audit:not-a-uuid', 'broadcast', 'x')`;
    const canJoin = (sub: string, topic: string) =>
      asCaller(sub, async (tx) => {
        await tx`select set_config('realtime.topic', ${topic}, true)`;
        return (await tx`select count(*)::int as n from realtime.messages where topic = ${topic}`)[0].n > 0;
      });
    expect(await canJoin("auditor-a", `audit:${projectA}`)).toBe(true);
    expect(await canJoin("auditor-a", `audit:${projectB}`)).toBe(false);
    expect(await canJoin("auditor-b", `audit:${projectB}`)).toBe(true);
    expect(await canJoin("reader-a", `audit:${projectA}`)).toBe(false);
    expect(await canJoin("nobody", `audit:${projectA}`)).toBe(false);
    expect(await canJoin("auditor-a", "audit:not-a-uuid")).toBe(false);
  });
});

describe("without Realtime", () => {
  it("installs nothing on a plain Postgres", async () => {
    const plain = await createTestDatabase();
    try {
      expect((await plain.sql`select secret_store.enable_audit_realtime() as enabled`)[0].enabled).toBe(false);
      expect(await plain.sql`select 1 from pg_trigger where tgname = 'audit_logs_broadcast'`).toHaveLength(0);
    } finally {
      await plain.drop();
    }
  });
});
