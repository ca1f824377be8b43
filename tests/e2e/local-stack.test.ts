// The local stack end to end, with real processes: the Deno gateway (scripts/gateway.ts) serving
// the real secret-proxy against a migrated, seeded Postgres, called the way an application calls
// hosted Supabase: supabase-js `functions.invoke()` with a JWT minted by the dev signing key.
import { createClient, FunctionsHttpError, type SupabaseClient } from "@supabase/supabase-js";
import ws from "ws";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applySeed, DEMO_ADMIN, DEMO_PROJECT_ID, DEMO_RUNNER } from "../../scripts/lib/demo-data.ts";
import { devIssuer, ephemeralDevKeys, mintDevToken, type DevKeys } from "../../scripts/lib/dev-keys.ts";
import { startGateway, type RunningGateway } from "../../scripts/lib/gateway-process.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

const SECRET_NAME = "E2E_WEBHOOK_TOKEN";
const SECRET_VALUE = `e2e-value-${crypto.randomUUID()}`;

let db: TestDatabase;
let keys: DevKeys;
let gateway: RunningGateway;
const gatewayLog: string[] = [];
let admin: SupabaseClient;
let runner: SupabaseClient;
let tokens: { admin: string; runner: string };
let archiveDir: string;

function clientWith(token: string): SupabaseClient {
  return createClient(gateway.url, "anon-key-placeholder", {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${token}` } },
    // Node 20 has no global WebSocket; realtime is not used, but the client builds it.
    realtime: { transport: (globalThis.WebSocket ?? ws) as never },
  });
}

/** The error envelope behind a non-2xx functions.invoke() answer. */
async function errorOf(error: unknown): Promise<{ status: number; code: string }> {
  expect(error).toBeInstanceOf(FunctionsHttpError);
  const res = (error as FunctionsHttpError).context as Response;
  const body = (await res.json()) as { error: { code: string } };
  return { status: res.status, code: body.error.code };
}

beforeAll(async () => {
  db = await createTestDatabase();
  await applySeed(db.sql);
  keys = ephemeralDevKeys();
  archiveDir = mkdtempSync(join(tmpdir(), "secret-audit-e2e-archive-"));
  gateway = await startGateway({ dbUrl: db.url, keys, archiveDir, onLog: (line) => gatewayLog.push(line) });
  const issuer = devIssuer(gateway.url);
  tokens = {
    admin: await mintDevToken({ signingKey: keys.signingKey, sub: DEMO_ADMIN, issuer }),
    runner: await mintDevToken({ signingKey: keys.signingKey, sub: DEMO_RUNNER, actorType: "service", issuer }),
  };
  admin = clientWith(tokens.admin);
  runner = clientWith(tokens.runner);
});

afterAll(async () => {
  await gateway?.stop();
  await db?.drop();
  if (archiveDir) rmSync(archiveDir, { recursive: true, force: true });
});

describe("local stack (Deno gateway + secret-proxy + Postgres)", () => {
  it("serves the dev JWKS with the public key only", async () => {
    const res = await fetch(`${gateway.url}/auth/v1/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const { keys: published } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: keys.signingKey.kid, x: keys.signingKey.x });
    expect(published[0]).not.toHaveProperty("d");
  });

  it("answers an unknown function with the 404 envelope", async () => {
    const { data, error } = await admin.functions.invoke("no-such-function", { method: "GET" });
    expect(data).toBeNull();
    expect(await errorOf(error)).toEqual({ status: 404, code: "function_not_found" });
  });

  it("lets the admin write a secret and the runner read it back, each audited", async () => {
    const path = `secret-proxy/projects/${DEMO_PROJECT_ID}/secrets/${SECRET_NAME}`;
    const written = await admin.functions.invoke(path, {
      method: "PUT",
      body: { value: SECRET_VALUE, description: "written by the e2e test" },
    });
    expect(written.error).toBeNull();
    expect(written.data).toMatchObject({ name: SECRET_NAME, version: 1, action: "create" });

    const read = await runner.functions.invoke(path, { method: "GET" });
    expect(read.error).toBeNull();
    expect(read.data).toMatchObject({ name: SECRET_NAME, version: 1, value: SECRET_VALUE });

    const rows = await db.sql<Record<string, unknown>[]>`
      select action::text, outcome::text, user_identity, actor_type::text, secret_name, secret_version,
             host(ip_address) as ip, forwarded_for, row_to_json(a)::text as whole_row
      from public.audit_logs a where secret_name = ${SECRET_NAME} order by id`;
    expect(rows.map(({ whole_row: _, ...r }) => r)).toEqual([
      { action: "create", outcome: "granted", user_identity: DEMO_ADMIN, actor_type: "user", secret_name: SECRET_NAME, secret_version: 1, ip: "127.0.0.1", forwarded_for: "127.0.0.1" },
      { action: "read", outcome: "granted", user_identity: DEMO_RUNNER, actor_type: "service", secret_name: SECRET_NAME, secret_version: 1, ip: "127.0.0.1", forwarded_for: "127.0.0.1" },
    ]);
    for (const row of rows) expect(row.whole_row).not.toContain(SECRET_VALUE);
  });

  it("refuses the runner a write (403) and records the denial", async () => {
    const { error } = await runner.functions.invoke(`secret-proxy/projects/${DEMO_PROJECT_ID}/secrets/RUNNER_WRITE`, {
      method: "PUT",
      body: { value: "nope" },
    });
    expect(await errorOf(error)).toEqual({ status: 403, code: "forbidden" });
    const [row] = await db.sql`
      select action::text, outcome::text, user_identity from public.audit_logs where secret_name = 'RUNNER_WRITE'`;
    expect(row).toEqual({ action: "create", outcome: "denied", user_identity: DEMO_RUNNER });
  });

  it("rejects a token signed by another key (401)", async () => {
    const stranger = ephemeralDevKeys();
    const forged = await mintDevToken({ signingKey: { ...stranger.signingKey, kid: keys.signingKey.kid }, sub: DEMO_ADMIN, issuer: devIssuer(gateway.url) });
    const { error } = await clientWith(forged).functions.invoke(`secret-proxy/projects/${DEMO_PROJECT_ID}/secrets`, { method: "GET" });
    expect(await errorOf(error)).toEqual({ status: 401, code: "unauthorized" });
  });

  it("lets the admin (audit:read) ask who read the secret, and records that look", async () => {
    const { data, error } = await admin.functions.invoke(
      `audit-logs?project_id=${DEMO_PROJECT_ID}&secret_name=${SECRET_NAME}&access_type=read`,
      { method: "GET" },
    );
    expect(error).toBeNull();
    expect(data.next_cursor).toBeNull();
    expect(data.data.map((e: Record<string, unknown>) => [e.action, e.user_identity, e.ip_address])).toEqual([
      ["read", DEMO_RUNNER, "127.0.0.1"],
    ]);
    const [look] = await db.sql`
      select action::text, outcome::text, user_identity from public.audit_logs where action = 'audit_query' order by id desc limit 1`;
    expect(look).toEqual({ action: "audit_query", outcome: "granted", user_identity: DEMO_ADMIN });
  });

  it("streams an export under Deno (COPY path) with every entry the auditor may see", async () => {
    for (const format of ["ndjson", "csv"] as const) {
      const [{ visible }] = await db.sql<{ visible: number }[]>`
        select count(*)::int as visible from public.audit_logs where project_id = ${DEMO_PROJECT_ID}`;
      const res = await fetch(`${gateway.url}/functions/v1/audit-logs/export?project_id=${DEMO_PROJECT_ID}&format=${format}`, {
        headers: { authorization: `Bearer ${tokens.admin}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-disposition")).toMatch(new RegExp(`attachment; filename=".+\\.${format}"`));
      const lines = (await res.text()).split(/\r?\n/).filter((l) => l.length > 0);
      // Every entry that existed when the export started; its own row is excluded; CSV has a header.
      expect(lines.length).toBe(visible + (format === "csv" ? 1 : 0));
      if (format === "ndjson") expect(JSON.parse(lines[0])).toMatchObject({ project_id: DEMO_PROJECT_ID });
    }
  });

  it("answers the PRD's path GET /api/audit-logs and refuses the runner (no audit:read)", async () => {
    const res = await fetch(`${gateway.url}/api/audit-logs?project_id=${DEMO_PROJECT_ID}`, {
      headers: { authorization: `Bearer ${tokens.runner}` },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("forbidden");
  });

  it("runs an audit-archive dry run with the archive key and refuses a user JWT", async () => {
    const url = `${gateway.url}/functions/v1/audit-archive`;
    const withKey = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.archiveKey}`, "content-type": "application/json" },
      body: JSON.stringify({ dry_run: true }),
    });
    expect(withKey.status).toBe(200);
    expect(await withKey.json()).toMatchObject({ dry_run: true });
    const withJwt = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${tokens.admin}` } });
    expect(withJwt.status).toBe(401);
  });

  it("logs one line per request without tokens or values", () => {
    const requestLines = gatewayLog.filter((line) => /^(GET|PUT|POST|DELETE|HEAD) \//.test(line));
    expect(requestLines.length).toBeGreaterThanOrEqual(5);
    for (const line of requestLines) expect(line).toMatch(/^[A-Z]+ \/\S* \d{3} \d+\.\dms$/);
    const everything = gatewayLog.join("\n");
    for (const secret of [SECRET_VALUE, tokens.admin, tokens.runner, keys.signingKey.d, keys.archiveKey]) {
      expect(everything).not.toContain(secret);
    }
  });

  it("stops cleanly on SIGTERM", async () => {
    await gateway.stop();
    expect(await gateway.exited).toBe(0);
  });
});
