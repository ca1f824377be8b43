// npm run bench [-- secret-read] [--duration-ms 5000]
// Runs the benchmarks on a fresh database: the embedded Postgres (durable settings, as in
// production) or DATABASE_URL's server. Prints progress, then each benchmark's numbers.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { startLocalPostgres } from "./lib/local-postgres.ts";
import { applyMigrations, applySupabaseBootstrap } from "./lib/migrations.ts";
import { freePort } from "./lib/gateway-process.ts";
import { runSecretReadBench } from "./bench/secret-read.ts";

const BENCHMARKS = ["secret-read"] as const;
type Benchmark = (typeof BENCHMARKS)[number];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { "duration-ms": { type: "string", default: "5000" } },
});
const selected = (positionals.length > 0 ? positionals : [...BENCHMARKS]) as Benchmark[];
for (const name of selected) {
  if (!BENCHMARKS.includes(name)) throw new Error(`unknown benchmark "${name}"; choose from ${BENCHMARKS.join(", ")}`);
}
const durationMs = Number(values["duration-ms"]);
const log = (line: string) => console.log(line);

log(`bench: ${selected.join(", ")} on ${process.env.DATABASE_URL ? "DATABASE_URL" : "embedded Postgres 17"}`);
const server = process.env.DATABASE_URL
  ? { url: process.env.DATABASE_URL, stop: async () => {} }
  : await startLocalPostgres({
      dataDir: mkdtempSync(join(tmpdir(), "secret-audit-bench-pg-")),
      port: await freePort(),
      persistent: false,
    });
const database = `secret_audit_bench_${process.pid}`;
const admin = postgres(server.url, { max: 1, onnotice: () => {} });
try {
  await applySupabaseBootstrap(admin);
  await admin.unsafe(`create database ${database}`);
  const url = new URL(server.url);
  url.pathname = `/${database}`;
  const dbUrl = url.toString();
  const migrator = postgres(dbUrl, { max: 1, onnotice: () => {} });
  await applySupabaseBootstrap(migrator);
  await applyMigrations(migrator, (line) => log(`  ${line}`));
  await migrator.end();

  for (const name of selected) {
    log(`\n== ${name} ==`);
    if (name === "secret-read") await runSecretReadBench({ dbUrl, durationMs, log });
  }
} finally {
  await admin.unsafe(`drop database if exists ${database} with (force)`).catch(() => {});
  await admin.end();
  await server.stop();
}
