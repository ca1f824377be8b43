// Applies the Supabase bootstrap (local only) and supabase/migrations in order, recording them in
// the same table the Supabase CLI uses, so `supabase db push` later sees what is already applied.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Sql } from "postgres";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MIGRATIONS_DIR = join(root, "supabase", "migrations");
const BOOTSTRAP_FILE = join(root, "scripts", "lib", "supabase-bootstrap.sql");
const MIGRATION_FILE = /^(\d{14})_([a-z0-9_]+)\.sql$/;

export async function applySupabaseBootstrap(sql: Sql): Promise<void> {
  await sql.unsafe(readFileSync(BOOTSTRAP_FILE, "utf8"));
}

export async function applyMigrations(sql: Sql, log: (line: string) => void = () => {}): Promise<string[]> {
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text primary key, statements text[], name text
    );`);
  const done = new Set(
    (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`).map((r) => r.version),
  );
  const applied: string[] = [];
  for (const file of readdirSync(MIGRATIONS_DIR).sort()) {
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`migration file name must be <14 digits>_<name>.sql: ${file}`);
    const [, version, name] = match;
    if (done.has(version)) continue;
    const body = readFileSync(join(MIGRATIONS_DIR, file), "utf8");
    await sql.begin(async (tx) => {
      await tx.unsafe(body);
      await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
               values (${version}, ${name}, ${[body]})`;
    });
    log(`applied migration ${file}`);
    applied.push(file);
  }
  return applied;
}
