// Benchmark: audited secret reads through the HTTP function against an unaudited baseline that
// differs only in not writing the audit row. Prints throughput and p50/p99 at 1 and 16 clients.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import postgres, { type Sql } from "postgres";
import { ephemeralDevKeys, mintDevToken, REPO_ROOT } from "../lib/dev-keys.ts";
import { denoExecutable, freePort } from "../lib/gateway-process.ts";
import { measure, type Measurement, formatMeasurement } from "./load.ts";

export interface SecretReadBenchOptions {
  dbUrl: string;
  durationMs: number;
  log: (line: string) => void;
}

const PROJECT_ID = "00000000-0000-4000-8000-00000000b001";
const RUNNER = "bench-runner";
const BATCH_SIZE = 20;

export async function runSecretReadBench(opts: SecretReadBenchOptions): Promise<void> {
  const { log } = opts;
  const sql = postgres(opts.dbUrl, { max: 3, onnotice: () => {} });
  const keys = ephemeralDevKeys();
  const jwksServer = await serveJwks(JSON.stringify(keys.jwks));
  const supabaseUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}`;
  const [auditedPort, baselinePort] = [await freePort(), await freePort()];
  const servers = spawn(
    denoExecutable(),
    ["run", "--quiet", "--no-prompt", "--config", join(REPO_ROOT, "deno.json"), "--allow-net", "--allow-env",
      join(REPO_ROOT, "scripts", "bench", "secret-proxy-servers.ts"), String(auditedPort), String(baselinePort)],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        SUPABASE_URL: supabaseUrl,
        SUPABASE_DB_URL: opts.dbUrl,
        SECRETS_KEYRING: JSON.stringify(keys.keyring.keys),
        SECRETS_ACTIVE_KEY_ID: keys.keyring.activeKeyId,
        DB_POOL_MAX: "16",
      },
    },
  );
  try {
    await setUpProject(sql);
    await installUnauditedBaseline(sql, log);
    await waitForLines(servers.stdout!, 2);
    const issuer = `${supabaseUrl}/auth/v1`;
    const admin = await mintDevToken({ signingKey: keys.signingKey, sub: "bench-admin", issuer });
    const runner = await mintDevToken({ signingKey: keys.signingKey, sub: RUNNER, actorType: "service", issuer });
    const audited = `http://127.0.0.1:${auditedPort}/secret-proxy/projects/${PROJECT_ID}/secrets`;
    const baseline = `http://127.0.0.1:${baselinePort}/secret-proxy/projects/${PROJECT_ID}/secrets`;
    const names = Array.from({ length: BATCH_SIZE }, (_, i) => `BENCH_SECRET_${String(i).padStart(2, "0")}`);
    for (const name of names) {
      const res = await fetch(`${audited}/${name}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ value: `bench-value-${name}-${"x".repeat(40)}` }),
      });
      if (res.status !== 201 && res.status !== 200) throw new Error(`seeding ${name} failed: HTTP ${res.status}`);
    }

    const single = { method: "GET", headers: { authorization: `Bearer ${runner}` } };
    const batch = {
      method: "POST",
      headers: { authorization: `Bearer ${runner}`, "content-type": "application/json" },
      body: JSON.stringify({ names }),
    };
    const auditRowsBefore = await countAuditRows(sql);
    const rounds: Record<string, Measurement[]> = {};
    const waits: Record<string, Map<string, number>> = {};
    for (const clients of [1, 16]) {
      // Baseline and audited alternate, three rounds each, so drift (caches, autovacuum,
      // checkpoints) hits both alike; the median round is reported.
      for (const round of [1, 2, 3]) {
        for (const [label, url] of [["baseline", baseline], ["audited", audited]] as const) {
          const key = `${label}@${clients}`;
          log(`  measuring ${key} (round ${round}/3, ${opts.durationMs} ms)...`);
          const sampler = sampleWaitEvents(sql);
          const m = await measure({ url: `${url}/${names[0]}`, init: single, clients, durationMs: opts.durationMs });
          mergeCounts((waits[key] ??= new Map()), await sampler.stop());
          if (m.errors > 0) throw new Error(`${key}: ${m.errors} failed requests`);
          (rounds[key] ??= []).push(m);
        }
      }
    }
    const results = Object.fromEntries(Object.entries(rounds).map(([key, ms]) => [key, medianByRps(ms)]));
    log("  measuring batch read of 20 (audited, 1 client)...");
    const batchRead = await measure({ url: `${audited}/batch-read`, init: batch, clients: 1, durationMs: opts.durationMs });
    const auditRowsWritten = (await countAuditRows(sql)) - auditRowsBefore;

    log("");
    log("secret reads through the HTTP function (Deno + Hono + postgres.js, ES256 JWT each request; median of 3 rounds)");
    for (const key of Object.keys(results)) log(`  ${key.padEnd(12)} ${formatMeasurement(results[key])}`);
    log(`  ${"batch20@1".padEnd(12)} ${formatMeasurement(batchRead)}`);
    const ratio16 = results["audited@16"].rps / results["baseline@16"].rps;
    const overheadP50 = results["audited@1"].p50 - results["baseline@1"].p50;
    const batchFactor = batchRead.p50 / results["audited@1"].p50;
    log("");
    log(`  audited/baseline throughput @16: ${(ratio16 * 100).toFixed(1)}%   (target >= 85%)   ${verdict(ratio16 >= 0.85)}`);
    log(`  audited/baseline throughput @1:  ${((results["audited@1"].rps / results["baseline@1"].rps) * 100).toFixed(1)}%`);
    log(`  p50 overhead @1: ${overheadP50.toFixed(3)} ms   (target <= 0.5 ms)   ${verdict(overheadP50 <= 0.5)}`);
    log(`  batch of 20 p50 / single read p50: ${batchFactor.toFixed(2)}x   (target <= 2x)   ${verdict(batchFactor <= 2)}`);
    log("");
    log("  where database sessions spent the runs (pg_stat_activity samples of active backends):");
    for (const key of ["baseline@16", "audited@16"]) log(`    ${key.padEnd(12)} ${formatWaits(waits[key])}`);
    log(`  audit rows written during the run: ${auditRowsWritten}`);
  } finally {
    servers.kill("SIGTERM");
    jwksServer.close();
    await sql.end();
  }
}

function medianByRps(ms: Measurement[]): Measurement {
  return [...ms].sort((a, b) => a.rps - b.rps)[Math.floor(ms.length / 2)];
}

// A poor man's profile of the database side: what active backends are doing (waiting on WAL
// flushes, locks, or running on CPU), sampled every 20 ms while a measurement runs.
function sampleWaitEvents(sql: Sql): { stop(): Promise<Map<string, number>> } {
  const counts = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const rows = await sql<{ what: string }[]>`
        select coalesce(wait_event_type || ':' || wait_event, 'CPU') as what from pg_stat_activity
        where backend_type = 'client backend' and state = 'active' and pid <> pg_backend_pid()`;
      for (const { what } of rows) counts.set(what, (counts.get(what) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return counts;
    },
  };
}

function mergeCounts(into: Map<string, number>, from: Map<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

function formatWaits(counts: Map<string, number> | undefined): string {
  const total = [...(counts ?? new Map()).values()].reduce((a, b) => a + b, 0);
  if (!counts || total === 0) return "no active backends sampled";
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([what, n]) => `${what} ${((n / total) * 100).toFixed(0)}%`)
    .join(", ") + ` (${total} samples)`;
}

function verdict(ok: boolean): string {
  return ok ? "MET" : "MISSED";
}

async function setUpProject(sql: Sql): Promise<void> {
  await sql`insert into secret_store.projects (id, name) values (${PROJECT_ID}, 'bench') on conflict do nothing`;
  await sql`
    insert into secret_store.grants (project_id, principal, permission) values
      (${PROJECT_ID}, ${RUNNER}, 'secrets:read'),
      (${PROJECT_ID}, 'bench-admin', 'secrets:write')
    on conflict do nothing`;
}

// The baseline is generated from the live definitions so it can only differ by the audit call;
// the benchmark refuses to run if that call is not found exactly once.
async function installUnauditedBaseline(sql: Sql, log: (line: string) => void): Promise<void> {
  await sql`create schema if not exists bench`;
  await sql`grant usage on schema bench to authenticated`;
  for (const fn of ["read_secret", "read_secrets"]) {
    const [{ def }] = await sql<{ def: string }[]>`
      select pg_get_functiondef(p.oid) as def from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname = ${fn}`;
    const auditCall = /perform secret_store\.record_access(es)?\([\s\S]*?\);/g;
    const calls = def.match(auditCall)?.length ?? 0;
    if (calls !== 1) throw new Error(`expected exactly one audit call in public.${fn}, found ${calls}`);
    const unaudited = def.replace(auditCall, "null;").replace(`FUNCTION public.${fn}(`, `FUNCTION bench.${fn}(`);
    await sql.unsafe(unaudited);
    await sql.unsafe(`grant execute on function bench.${fn} to authenticated`);
  }
  log("  installed unaudited baseline: bench.read_secret, bench.read_secrets (audit call removed)");
}

async function countAuditRows(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from public.audit_logs`;
  return n;
}

function serveJwks(body: string): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(body));
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function waitForLines(stream: NodeJS.ReadableStream, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => reject(new Error("bench servers did not start within 60 s")), 60_000);
    createInterface({ input: stream }).on("line", () => {
      if (++seen === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
