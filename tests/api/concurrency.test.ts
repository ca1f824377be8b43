// Many parallel accesses: exactly one audit row per access (none lost, none doubled), versions
// without gaps or duplicates, and concurrent creates of one new name resolve to one create.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createSecretProxyHarness, RUNNER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_JWKS_URL } from "../support/tokens.ts";
import { createJwtVerifier } from "../../shared/auth.ts";
import { generateKeyBase64, parseKeyring } from "../../shared/crypto.ts";
import { createPostgresRpc, type Rpc } from "../../shared/db.ts";
import { createSecretProxyApp, type SecretProxyApp } from "../../functions/secret-proxy/app.ts";
import { createSecretAccess } from "../../functions/secret-proxy/secret-access.ts";

const READS = 40;
const ROTATIONS = 20;
const CREATES = 10;

let h: SecretProxyHarness;
// The harness's pool has 4 connections; this app has 24, so the 70 requests really contend.
let wideRpc: Rpc;
let app: SecretProxyApp;
let sharedId: string;
const valueOfVersion = new Map<number, string>();

type Outcome = { kind: "read" | "rotate" | "create"; requestId: string; status: number; body: Record<string, unknown>; value?: string };
let outcomes: Outcome[];
let auditRows: Record<string, unknown>[];

function request(method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? h.tokens.admin}`, ...opts.headers };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  return Promise.resolve(app.request(`/secret-proxy${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) }));
}

beforeAll(async () => {
  h = await createSecretProxyHarness();
  wideRpc = createPostgresRpc(h.db.url, { poolMax: 24 });
  app = createSecretProxyApp({
    verifyJwt: createJwtVerifier({ jwksUrl: TEST_JWKS_URL, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, fetchImpl: h.idp.fetch }),
    secrets: createSecretAccess(wideRpc, await parseKeyring(JSON.stringify({ "conc-k1": generateKeyBase64() }), "conc-k1")),
    trustedProxyHops: 1,
    maxBodyBytes: 65_536,
  });
  const first = await request("PUT", `/projects/${h.projectId}/secrets/CONC_SHARED`, { body: { value: "conc-shared-v1" } });
  expect(first.status).toBe(201);
  sharedId = (await first.json()).secret_id;
  valueOfVersion.set(1, "conc-shared-v1");

  const before = await h.lastAuditId();
  const go = async (kind: Outcome["kind"], i: number): Promise<Outcome> => {
    const requestId = `conc-${kind}-${String(i).padStart(3, "0")}`;
    const headers = { "x-request-id": requestId };
    let res: Response;
    let value: string | undefined;
    if (kind === "read") {
      res = await request("GET", `/projects/${h.projectId}/secrets/CONC_SHARED`, { token: h.tokens.runner, headers });
    } else {
      value = `conc-${kind}-value-${i}`;
      const name = kind === "rotate" ? "CONC_SHARED" : "CONC_NEW";
      res = await request("PUT", `/projects/${h.projectId}/secrets/${name}`, { body: { value }, headers });
    }
    return { kind, requestId, status: res.status, body: await res.json(), value };
  };
  // Interleave the three kinds so they really overlap.
  const jobs: Promise<Outcome>[] = [];
  for (let i = 0; i < READS; i++) {
    jobs.push(go("read", i));
    if (i < ROTATIONS) jobs.push(go("rotate", i));
    if (i < CREATES) jobs.push(go("create", i));
  }
  outcomes = await Promise.all(jobs);
  auditRows = await h.auditRowsAfter(before);
});
afterAll(async () => {
  await wideRpc?.close();
  await h?.close();
});

describe("parallel reads, rotations and creates", () => {
  it("every request succeeded", () => {
    expect(outcomes).toHaveLength(READS + ROTATIONS + CREATES);
    const statuses = outcomes.map((o) => `${o.kind}:${o.status}`);
    expect(statuses.filter((s) => s === "read:200")).toHaveLength(READS);
    expect(statuses.filter((s) => s === "rotate:200")).toHaveLength(ROTATIONS);
    expect(statuses.filter((s) => s === "create:201")).toHaveLength(1);
    expect(statuses.filter((s) => s === "create:200")).toHaveLength(CREATES - 1);
  });

  it("exactly one audit row per access, matched by request id", () => {
    expect(auditRows).toHaveLength(READS + ROTATIONS + CREATES);
    const perRequest = new Map<string, number>();
    for (const row of auditRows) perRequest.set(row.request_id as string, (perRequest.get(row.request_id as string) ?? 0) + 1);
    expect(perRequest.size).toBe(READS + ROTATIONS + CREATES);
    for (const o of outcomes) expect(perRequest.get(o.requestId), o.requestId).toBe(1);
  });

  it("every rotation got a distinct version, 2..21, and its audit row names that version", () => {
    const rotations = outcomes.filter((o) => o.kind === "rotate");
    const versions = rotations.map((o) => o.body.version as number).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: ROTATIONS }, (_, i) => i + 2));
    for (const o of rotations) {
      expect(o.body).toMatchObject({ secret_id: sharedId, action: "update" });
      valueOfVersion.set(o.body.version as number, o.value!);
      const row = auditRows.find((r) => r.request_id === o.requestId)!;
      expect(row).toMatchObject({ action: "update", outcome: "granted", secret_id: sharedId, secret_version: o.body.version, user_identity: ADMIN });
    }
  });

  it("the database holds versions 1..21 of the shared secret without gaps or duplicates, current = 21", async () => {
    const rows = await h.sql<{ version: number }[]>`select version from secret_store.secret_versions where secret_id = ${sharedId} order by version`;
    expect(rows.map((r) => r.version)).toEqual(Array.from({ length: ROTATIONS + 1 }, (_, i) => i + 1));
    const [s] = await h.sql`select current_version from secret_store.secrets where id = ${sharedId}`;
    expect(s.current_version).toBe(ROTATIONS + 1);
  });

  it("every read returned a consistent (version, value) pair, and its audit row names that version", () => {
    for (const o of outcomes.filter((x) => x.kind === "read")) {
      const version = o.body.version as number;
      expect(o.body.value).toBe(valueOfVersion.get(version));
      const row = auditRows.find((r) => r.request_id === o.requestId)!;
      expect(row).toMatchObject({ action: "read", outcome: "granted", secret_id: sharedId, secret_version: version, user_identity: RUNNER, actor_type: "service" });
    }
  });

  it("exactly one create succeeded as 'create'; the others became updates 2..10 of the same secret", async () => {
    const creates = outcomes.filter((o) => o.kind === "create");
    const created = creates.filter((o) => o.body.action === "create");
    expect(created).toHaveLength(1);
    expect(created[0].body.version).toBe(1);
    const ids = new Set(creates.map((o) => o.body.secret_id));
    expect(ids.size).toBe(1);
    expect(creates.map((o) => o.body.version as number).sort((a, b) => a - b)).toEqual(Array.from({ length: CREATES }, (_, i) => i + 1));
    const rows = auditRows.filter((r) => r.secret_name === "CONC_NEW");
    expect(rows.filter((r) => r.action === "create")).toHaveLength(1);
    expect(rows.filter((r) => r.action === "update")).toHaveLength(CREATES - 1);
    const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secrets where name = 'CONC_NEW'`;
    expect(n).toBe(1);
    const read = await request("GET", `/projects/${h.projectId}/secrets/CONC_NEW`, { token: h.tokens.runner });
    const last = creates.find((o) => o.body.version === CREATES)!;
    expect(await read.json()).toMatchObject({ version: CREATES, value: last.value });
  });

  it("parallel batch reads of many names each write one row per name", async () => {
    const before = await h.lastAuditId();
    const names = ["CONC_SHARED", "CONC_NEW", ...Array.from({ length: 18 }, (_, i) => `CONC_MISSING_${i}`)];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request("POST", `/projects/${h.projectId}/secrets/batch-read`, {
          token: h.tokens.runner,
          body: { names },
          headers: { "x-request-id": `conc-batch-${String(i).padStart(3, "0")}` },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    const rows = await h.auditRowsAfter(before);
    expect(rows).toHaveLength(10 * names.length);
    for (let i = 0; i < 10; i++) {
      const mine = rows.filter((r) => r.request_id === `conc-batch-${String(i).padStart(3, "0")}`);
      expect(mine.map((r) => r.secret_name)).toEqual(names);
      expect(mine.filter((r) => r.outcome === "granted")).toHaveLength(2);
    }
  });
});
