// npm run bench [-- secret-read|audit-query|archive ...] [--duration-ms 5000] [--audit-rows 10000000]
//                 [--archive-rows 1000000]
// Runs the benchmarks, each on a fresh database: the embedded Postgres (durable settings, as in
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
import { runAuditQueryBench } from "./bench/audit-query.ts";
import { runArchiveBench } from "./bench/archive.ts";

const BENCHMARKS = ["secret-read", "audit-query", "archive"] as const;
type Benchmark = (typeof BENCHMARKS)[number];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "duration-ms": { type: "string", default: "5000" },
    "audit-rows": { type: "string", default: "10000000" },
    "archive-rows": { type: "string", default: "1000000" },
  },
});
const selected = (positionals.length > 0 ? positionals : [...BENCHMARKS]) as Benchmark[];
for (const name of selected) {
  if (!BENCHMARKS.includes(name)) throw new Error(`unknown benchmark "${name}"; choose from ${BENCHMARKS.join(", ")}`);
}
const durationMs = Number(values["duration-ms"]);
const auditRows = Number(values["audit-rows"]);
const archiveRows = Number(values["archive-rows"]);
const log = (line: string) => console.log(line);

log(`bench: ${selected.join(", ")} on ${process.env.DATABASE_URL ? "DATABASE_URL" : "embedded Postgres 17"}`);
const server = process.env.DATABASE_URL
  ? { url: process.env.DATABASE_URL, stop: async () => {} }
  : await startLocalPostgres({
      dataDir: mkdtempSync(join(tmpdir(), "secret-audit-bench-pg-")),
      port: await freePort(),
      persistent: false,
    });
const admin = postgres(server.url, { max: 1, onnotice: () => {} });
try {
  await applySupabaseBootstrap(admin);
  for (const name of selected) {
    log(`\n== ${name} ==`);
    const database = `secret_audit_bench_${process.pid}_${name.replace("-", "_")}`;
    await admin.unsafe(`create database ${database}`);
    try {
      const dbUrl = await migratedDatabase(server.url, database);
      if (name === "secret-read") await runSecretReadBench({ dbUrl, durationMs, log });
      if (name === "audit-query") await runAuditQueryBench({ dbUrl, rows: auditRows, log });
      if (name === "archive") await runArchiveBench({ dbUrl, rows: archiveRows, log });
    } finally {
      await admin.unsafe(`drop database if exists ${database} with (force)`);
    }
  }
} finally {
  await admin.end();
  await server.stop();
}

async function migratedDatabase(serverUrl: string, database: string): Promise<string> {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  const migrator = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await applySupabaseBootstrap(migrator);
    await applyMigrations(migrator, (line) => log(`  ${line}`));
  } finally {
    await migrator.end();
  }
  return url.toString();
}
