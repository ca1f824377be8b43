// Benchmark: the audit-logs query API over a large trail. Seeds `rows` audit rows (default 10M from
// the caller) across monthly partitions, projects, secrets and identities with INSERT … SELECT
// generate_series in batches (progress printed), then measures through the app in-process
// (app.request(): validation, JWT verification, the audited SQL call and its audit insert — no
// socket) the first page for each filter set of issue 3, and export throughput with peak RSS.
// Prints EXPLAIN (ANALYZE, BUFFERS) of any query whose p95 misses 50 ms.
import postgres, { type Sql } from "postgres";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { createJwtVerifier } from "../../shared/auth.ts";
import { createPostgresRpc } from "../../shared/db.ts";
import { createAuditLogsApp, type AuditLogsApp } from "../../functions/audit-logs/app.ts";
import { createAuditTrail } from "../../functions/audit-logs/audit-trail.ts";
import { createCursorCodec } from "../../functions/audit-logs/cursor.ts";
import { createDirectAuditReader } from "../../functions/audit-logs/direct-reader.ts";
import { AuditNotificationHub } from "../../functions/audit-logs/live-stream.ts";

export interface AuditQueryBenchOptions {
  dbUrl: string;
  rows: number;
  log: (line: string) => void;
  /** Timed requests per filter set (after warm-up). Default 60. */
  iterations?: number;
}

const PROJECTS = 8;
const SECRETS_PER_PROJECT = 50;
const IDENTITIES = 200;
const MONTHS = 6;
const BATCH_ROWS = 250_000;
const TARGET_P95_MS = 50;
const AUDITOR = "bench-auditor";
const ISSUER = "http://bench.local/auth/v1";
const JWKS_URL = `${ISSUER}/.well-known/jwks.json`;

interface Fixture {
  projects: string[];
  /** Client addresses that occur in the measured project. */
  addresses: string[];
  /** secrets[p][i] for project p */
  secrets: string[][];
  from: Date;
  to: Date;
}

export async function runAuditQueryBench(opts: AuditQueryBenchOptions): Promise<void> {
  const { log } = opts;
  const iterations = opts.iterations ?? 60;
  const sql = postgres(opts.dbUrl, { max: 12, onnotice: () => {}, connection: { application_name: "audit-query-bench" } });
  try {
    const fixture = await seed(sql, opts.rows, log);
    const { app, token, close } = await benchApp(sql);
    try {
      const target = fixture.projects[0];
      const perProject = Math.round(opts.rows / PROJECTS);
      log(`first page (limit 100) through app.request(), ${iterations} requests per filter set, project with ~${perProject.toLocaleString("en-US")} rows`);
      const results = await measureFirstPages(app, token, fixture, iterations);
      for (const r of results) {
        log(`  ${r.name.padEnd(24)} p50 ${r.p50.toFixed(1).padStart(6)} ms   p95 ${r.p95.toFixed(1).padStart(6)} ms   rows ${String(r.rows).padStart(3)}${r.p95 > TARGET_P95_MS ? "   MISSES p95 ≤ 50 ms" : ""}`);
      }
      for (const miss of results.filter((r) => r.p95 > TARGET_P95_MS)) {
        log(`\nEXPLAIN for "${miss.name}" (${miss.query}):`);
        for (const line of await explainFirstPage(sql, target, miss.filters)) log(`  ${line}`);
      }
      await measureExport(app, token, target, "ndjson", log);
      await measureExport(app, token, target, "csv", log);
    } finally {
      await close();
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding

async function seed(sql: Sql, rows: number, log: (line: string) => void): Promise<Fixture> {
  const projects: string[] = [];
  for (let p = 0; p < PROJECTS; p++) {
    const [{ id }] = await sql<{ id: string }[]>`insert into secret_store.projects (name) values (${`bench-audit-${p}-${Date.now()}`}) returning id`;
    projects.push(id);
  }
  await sql`insert into secret_store.grants (project_id, principal, permission) values (${projects[0]}, ${AUDITOR}, 'audit:read')`;
  const secrets = projects.map(() => Array.from({ length: SECRETS_PER_PROJECT }, () => crypto.randomUUID()));
  const to = new Date();
  const from = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - (MONTHS - 1), 1));
  for (let m = 0; m < MONTHS; m++) {
    await sql`select secret_store.create_audit_partition(${new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + m, 1)).toISOString().slice(0, 10)}::date)`;
  }
  const secondsPerRow = (to.getTime() - from.getTime()) / 1000 / Math.max(rows, 1);
  log(`seeding ${rows.toLocaleString("en-US")} audit rows: ${PROJECTS} projects × ${SECRETS_PER_PROJECT} secrets, ${IDENTITIES} identities, ${MONTHS} monthly partitions (${from.toISOString().slice(0, 10)} … now)`);

  // Historical rows: nobody listens, so a Realtime broadcast (if installed) is switched off while
  // seeding and on again afterwards.
  const liveTriggers = (await sql<{ tgname: string }[]>`
    select tgname from pg_trigger where tgrelid = 'public.audit_logs'::regclass and tgname = 'audit_logs_broadcast'`)
    .map((t) => t.tgname);
  for (const t of liveTriggers) await sql.unsafe(`alter table public.audit_logs disable trigger ${t}`);
  // Bulk load: secondary indexes are built once afterwards (same definitions), far faster than
  // maintaining them row by row. The primary key stays.
  const indexes = await sql<{ indexname: string; indexdef: string }[]>`
    select indexname, indexdef from pg_indexes
    where schemaname = 'public' and tablename = 'audit_logs' and indexname <> 'audit_logs_pkey'`;
  for (const index of indexes) await sql.unsafe(`drop index public.${index.indexname}`);
  const began = performance.now();
  try {
    for (let lo = 1; lo <= rows; lo += BATCH_ROWS) {
      const hi = Math.min(rows, lo + BATCH_ROWS - 1);
      await sql`
        insert into public.audit_logs (
          "timestamp", project_id, secret_id, secret_name, secret_version, access_type, action, outcome,
          user_identity, actor_type, ip_address, forwarded_for, user_agent, request_id)
        select
          ${from.toISOString()}::timestamptz + make_interval(secs => (g - 1) * ${secondsPerRow}::float8 + (h3 % 1000) / 1000.0),
          (${projects}::uuid[])[1 + p],
          case when act in ('list') or oc = 'not_found' then null else (${secrets.flat()}::uuid[])[1 + p * ${SECRETS_PER_PROJECT} + s] end,
          case when act = 'list' then null when oc = 'not_found' then 'MISSING_' || (s % 5) else 'SECRET_' || s end,
          case when act = 'list' or oc = 'not_found' then null else 1 + (h3 % 7)::int end,
          case when act in ('read', 'batch_read', 'list', 'audit_query') then 'read' else 'write' end::public.audit_access_type,
          act::public.audit_action,
          oc::public.audit_outcome,
          'identity-' || (h2 % ${IDENTITIES}),
          case when h2 % ${IDENTITIES} < 150 then 'service' else 'user' end::public.audit_actor_type,
          case when h3 % 200 = 0 then ('2001:db8::' || to_hex((h1 % 65536)::int))::inet
               when h3 % 100 < 2 then ('203.0.113.' || (h1 % 256))::inet
               else ('10.' || ((h3 / 1000) % 4) || '.' || ((h2 / 1000) % 250) || '.' || ((h1 / 1000) % 250))::inet end,
          null, 'meshhook-runner/2.3', 'bench-' || g
        from (
          select g, h1, h2, h3,
                 (h1 % ${PROJECTS})::int as p,
                 (h2 % ${SECRETS_PER_PROJECT})::int as s,
                 case when h3 % 100 < 70 then 'read' when h3 % 100 < 80 then 'batch_read' when h3 % 100 < 85 then 'list'
                      when h3 % 100 < 88 then 'create' when h3 % 100 < 96 then 'update' when h3 % 100 < 98 then 'delete'
                      else 'audit_query' end as act,
                 case when h1 % 100 < 90 then 'granted' when h1 % 100 < 96 then 'denied' when h1 % 100 < 99 then 'not_found'
                      else 'error' end as oc
          from (select g, abs(hashint8(g))::bigint as h1, abs(hashint8(g + 1000000007))::bigint as h2,
                       abs(hashint8(g * 31 + 7))::bigint as h3
                from generate_series(${lo}::bigint, ${hi}::bigint) g) hashed
        ) r`;
      const seconds = (performance.now() - began) / 1000;
      log(`  seeded ${hi.toLocaleString("en-US")}/${rows.toLocaleString("en-US")} rows (${Math.round((hi / rows) * 100)}%, ${seconds.toFixed(1)} s, ${Math.round(hi / seconds).toLocaleString("en-US")} rows/s)`);
    }
  } finally {
    for (const t of liveTriggers) await sql.unsafe(`alter table public.audit_logs enable trigger ${t}`);
    const indexing = performance.now();
    // pg_indexes shows a partitioned index as "ON ONLY" (parent alone); rebuild it on every partition.
    for (const index of indexes) await sql.unsafe(index.indexdef.replace(" ON ONLY ", " ON "));
    log(`  rebuilt ${indexes.length} secondary indexes in ${((performance.now() - indexing) / 1000).toFixed(1)} s`);
  }
  const analyzed = performance.now();
  await sql`analyze public.audit_logs`;
  log(`  analyzed in ${((performance.now() - analyzed) / 1000).toFixed(1)} s`);
  const addresses = (await sql<{ ip: string }[]>`
    select host(ip_address) as ip from public.audit_logs tablesample system (1)
    where project_id = ${projects[0]} and ip_address << '10.0.0.0/8' limit 50`).map((r) => r.ip);
  return { projects, addresses: addresses.length ? addresses : ["10.0.0.1"], secrets, from, to };
}

// ---------------------------------------------------------------------------------------------
// The app, as the function builds it (direct transport), with a bench identity provider.

async function benchApp(sql: Sql): Promise<{ app: AuditLogsApp; token: string; close(): Promise<void> }> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256", use: "sig" }] });
  const verifyJwt = createJwtVerifier({
    jwksUrl: JWKS_URL,
    issuer: ISSUER,
    audience: "authenticated",
    fetchImpl: (async () => new Response(jwks, { status: 200, headers: { "content-type": "application/json" } })) as typeof fetch,
  });
  const token = await new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "ES256", kid: "bench", typ: "JWT" })
    .setSubject(AUDITOR).setIssuer(ISSUER).setAudience("authenticated").setIssuedAt().setExpirationTime("2h")
    .sign(privateKey);
  const reader = createDirectAuditReader(sql);
  const hub = new AuditNotificationHub(reader);
  const cursorKey = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const app = createAuditLogsApp({
    verifyJwt,
    trail: createAuditTrail(createPostgresRpc(sql)),
    cursors: createCursorCodec(cursorKey),
    direct: { reader, hub },
    trustedProxyHops: 1,
    stream: { heartbeatMs: 15_000, batchSize: 500 },
    export: { batchSize: 2_000 },
  });
  return { app, token, close: () => hub.close() };
}

// ---------------------------------------------------------------------------------------------
// First-page latency

interface FilterSet {
  name: string;
  /** Query parameters besides project_id; varied per request. */
  params: (i: number) => Record<string, string>;
}

interface LatencyResult {
  name: string;
  p50: number;
  p95: number;
  rows: number;
  query: string;
  filters: Record<string, string>;
}

function filterSets(f: Fixture): FilterSet[] {
  const secretOf = (i: number) => f.secrets[0][(i * 7) % SECRETS_PER_PROJECT];
  const day = (i: number) => new Date(f.from.getTime() + ((i * 37) % (MONTHS * 28)) * 86_400_000);
  const isoDay = (d: Date) => d.toISOString().slice(0, 10);
  const plus = (d: Date, days: number) => new Date(d.getTime() + days * 86_400_000);
  return [
    { name: "no filter", params: () => ({}) },
    { name: "secret_id", params: (i) => ({ secret_id: secretOf(i) }) },
    { name: "secret_name", params: (i) => ({ secret_name: `SECRET_${(i * 3) % SECRETS_PER_PROJECT}` }) },
    { name: "from/to (7 days)", params: (i) => ({ from: isoDay(day(i)), to: isoDay(plus(day(i), 7)) }) },
    { name: "from", params: (i) => ({ from: isoDay(day(i)) }) },
    { name: "to", params: (i) => ({ to: isoDay(day(i)) }) },
    { name: "user_identity", params: (i) => ({ user_identity: `identity-${(i * 13) % IDENTITIES}` }) },
    { name: "access_type", params: (i) => ({ access_type: i % 2 ? "read" : "write" }) },
    { name: "action", params: (i) => ({ action: ["read", "update", "delete", "create,delete"][i % 4] }) },
    { name: "outcome", params: (i) => ({ outcome: ["denied", "not_found", "error", "denied,not_found"][i % 4] }) },
    { name: "ip (address)", params: (i) => ({ ip: f.addresses[i % f.addresses.length] }) },
    { name: "ip (CIDR)", params: (i) => ({ ip: ["203.0.113.0/24", "10.1.0.0/16", "2001:db8::/32"][i % 3] }) },
    { name: "secret + date range", params: (i) => ({ secret_id: secretOf(i), from: isoDay(day(i)), to: isoDay(plus(day(i), 14)) }) },
    { name: "identity + outcome", params: (i) => ({ user_identity: `identity-${(i * 13) % IDENTITIES}`, outcome: i % 2 ? "denied" : "denied,not_found" }) },
  ];
}

async function measureFirstPages(app: AuditLogsApp, token: string, f: Fixture, iterations: number): Promise<LatencyResult[]> {
  const results: LatencyResult[] = [];
  for (const set of filterSets(f)) {
    const timings: number[] = [];
    let rows = 0;
    let slowest = { ms: -1, params: {} as Record<string, string> };
    for (let i = 0; i < iterations + 5; i++) {
      const params = set.params(i);
      const qs = new URLSearchParams({ project_id: f.projects[0], limit: "100", ...params });
      const began = performance.now();
      const res = await app.request(`/audit-logs?${qs}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { data?: unknown[] };
      const elapsed = performance.now() - began;
      if (res.status !== 200) throw new Error(`bench query "${set.name}" answered ${res.status}`);
      if (i >= 5) timings.push(elapsed); // warm-up excluded
      if (i >= 5 && elapsed > slowest.ms) slowest = { ms: elapsed, params };
      rows = Math.max(rows, body.data?.length ?? 0);
    }
    timings.sort((a, b) => a - b);
    const at = (q: number) => timings[Math.min(timings.length - 1, Math.floor(q * timings.length))];
    // A miss is explained with the filters of its slowest request.
    const query = `${new URLSearchParams(slowest.params).toString() || "(none)"}; slowest request ${slowest.ms.toFixed(1)} ms end to end`;
    results.push({ name: set.name, p50: at(0.5), p95: at(0.95), rows, query, filters: slowest.params });
  }
  return results;
}

/** The plan of the statement query_audit_logs runs for these filters (page size 100 + 1). */
async function explainFirstPage(sql: Sql, projectId: string, params: Record<string, string>): Promise<string[]> {
  const filters: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    filters[key] = ["from", "to", "user_identity"].includes(key) ? value : value.split(",").sort();
  }
  const [{ clause }] = await sql<{ clause: string }[]>`select secret_store.audit_filter_clause(${filters as never}::jsonb) as clause`;
  const plan = await sql.unsafe<{ "QUERY PLAN": string }[]>(
    `explain (analyze, buffers, costs off)
     select * from public.audit_logs a where a.project_id = '${projectId}' and ${clause}
     order by a."timestamp" desc, a.id desc limit 101`,
  );
  return plan.map((r) => r["QUERY PLAN"]);
}

// ---------------------------------------------------------------------------------------------
// Export throughput and memory

async function measureExport(app: AuditLogsApp, token: string, projectId: string, format: "ndjson" | "csv", log: (line: string) => void) {
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const began = performance.now();
  const res = await app.request(`/audit-logs/export?project_id=${projectId}&format=${format}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`export answered ${res.status}`);
  const reader = res.body!.getReader();
  let newlines = 0;
  let bytes = 0;
  let nextReport = 250_000;
  const samples: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    for (let at = value.indexOf(10); at !== -1; at = value.indexOf(10, at + 1)) newlines++;
    if (newlines >= nextReport) {
      const rss = process.memoryUsage().rss;
      peakRss = Math.max(peakRss, rss);
      samples.push(`${(newlines / 1000).toFixed(0)}k:${(rss / 2 ** 20).toFixed(0)}MB`);
      nextReport += 250_000;
    }
  }
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const seconds = (performance.now() - began) / 1000;
  const rows = format === "csv" ? newlines - 1 : newlines;
  log(
    `export ${format}: ${rows.toLocaleString("en-US")} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(1)} s = ` +
      `${Math.round(rows / seconds).toLocaleString("en-US")} rows/s; RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MB, ` +
      `peak during ${(peakRss / 2 ** 20).toFixed(0)} MB, process max RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB` +
      (samples.length ? `; RSS by rows read: ${samples.join(" ")}` : ""),
  );
}
