// `npm run db:migrate [-- --no-bootstrap]`: applies supabase/migrations to DATABASE_URL, recording
// them where the Supabase CLI does. First the local bootstrap (the roles and auth.* helpers that
// Supabase provides); pass --no-bootstrap when DATABASE_URL is a real Supabase database, whose own
// auth.* functions must not be replaced. (`npm start` migrates the local stack by itself.)
import postgres from "postgres";
import { parseArgs } from "node:util";
import { applyMigrations, applySupabaseBootstrap } from "./lib/migrations.ts";

const USAGE = `usage: DATABASE_URL=postgres://... npm run db:migrate [-- --no-bootstrap]`;

let values;
try {
  ({ values } = parseArgs({ options: { "no-bootstrap": { type: "boolean", default: false } }, strict: true }));
} catch (err) {
  console.error(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}

const url = process.env.DATABASE_URL;
if (!url) {
  console.error(
    `DATABASE_URL is not set.\n${USAGE}\n` +
      `(the local stack's database: postgres://postgres:postgres@127.0.0.1:54322/postgres)`,
  );
  process.exit(2);
}

const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
try {
  if (!values["no-bootstrap"]) {
    await applySupabaseBootstrap(sql);
    console.log("applied local Supabase bootstrap (roles, auth.*)");
  }
  const applied = await applyMigrations(sql, (line) => console.log(line));
  console.log(applied.length ? `${applied.length} migration(s) applied` : "migrations up to date");
} catch (err) {
  // postgres.js errors carry the server's message (which can quote SQL, never secret values:
  // migrations hold none) and the connection target without its password.
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
}
