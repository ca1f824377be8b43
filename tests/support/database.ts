// Each test file gets a private database cloned from the migrated template.
import postgres, { type Sql } from "postgres";
import { inject } from "vitest";
import { withDatabase } from "../setup/postgres.global.ts";

export interface TestDatabase {
  url: string;
  /** Connected as the owner (superuser): for arranging fixtures and inspecting results. */
  sql: Sql;
  drop(): Promise<void>;
}

let counter = 0;

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject("pgAdminUrl");
  const name = `${inject("pgTemplateDatabase")}_f${process.pid}_${counter++}_${Date.now().toString(36)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name} template ${inject("pgTemplateDatabase")}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  return {
    url,
    sql,
    async drop() {
      await sql.end();
      const dropper = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await dropper.unsafe(`drop database if exists ${name} with (force)`);
      await dropper.end();
    },
  };
}

export type Permission = "secrets:read" | "secrets:write" | "audit:read";

/** A project with grants (principal → permissions), as test fixtures need them. */
export async function createProject(sql: Sql, name: string, grants: Record<string, Permission[]> = {}): Promise<string> {
  const [{ id }] = await sql<{ id: string }[]>`insert into secret_store.projects (name) values (${name}) returning id`;
  const rows = Object.entries(grants).flatMap(([principal, permissions]) =>
    permissions.map((permission) => ({ project_id: id, principal, permission })),
  );
  if (rows.length > 0) await sql`insert into secret_store.grants ${sql(rows)}`;
  return id;
}
