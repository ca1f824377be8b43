// Law 2: every route × outcome writes exactly one correct audit row (batch reads: one per distinct
// name), with every identifying field checked. Plus what delete destroys and keeps, and that the
// database only ever holds ciphertext.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createSecretProxyHarness, RUNNER, STRANGER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";

const FIELDS = [
  "action", "access_type", "outcome", "user_identity", "actor_type",
  "secret_id", "secret_name", "secret_version", "project_id", "request_id",
] as const;
type AuditFields = Record<(typeof FIELDS)[number], unknown>;

let h: SecretProxyHarness;
let seq = 0;
const plaintexts: string[] = [];
const ids: Record<string, string> = {};

type Who = "admin" | "runner" | "stranger";
const IDENTITY: Record<Who, { user_identity: string; actor_type: string }> = {
  admin: { user_identity: ADMIN, actor_type: "user" },
  runner: { user_identity: RUNNER, actor_type: "service" },
  stranger: { user_identity: STRANGER, actor_type: "user" },
};

function plaintext(label: string): string {
  const value = `plain-${label}-${crypto.randomUUID()}`;
  plaintexts.push(value);
  return value;
}

/** One request with its own request id; returns the response, its JSON (if any) and the audit rows it wrote. */
async function send(who: Who, method: string, path: string, body?: unknown) {
  const requestId = `outcome-${String(++seq).padStart(5, "0")}`;
  const before = await h.lastAuditId();
  const res = await h.request(method, `/projects/${h.projectId}${path}`, { token: h.tokens[who], body, headers: { "x-request-id": requestId } });
  const text = await res.text();
  const rows = await h.auditRowsAfter(before);
  return {
    status: res.status,
    json: text ? JSON.parse(text) : null,
    text,
    rows,
    fields: rows.map((r) => Object.fromEntries(FIELDS.map((f) => [f, r[f]])) as AuditFields),
    /** The row every field of which this request should have produced. */
    expected: (row: Partial<AuditFields> & Pick<AuditFields, "action" | "outcome">): AuditFields => ({
      access_type: ["read", "batch_read", "list"].includes(row.action as string) ? "read" : "write",
      ...IDENTITY[who],
      secret_id: null,
      secret_name: null,
      secret_version: null,
      project_id: h.projectId,
      request_id: requestId,
      ...row,
    }),
  };
}

async function secretRows(name: string) {
  return await h.sql`
    select id, current_version, description, created_by, updated_by, deleted_at, deleted_by,
      (select count(*)::int from secret_store.secret_versions v where v.secret_id = s.id) as versions
    from secret_store.secrets s where project_id = ${h.projectId} and name = ${name} order by created_at, id`;
}

beforeAll(async () => {
  h = await createSecretProxyHarness();
  for (const name of ["OUT_S1", "OUT_S2"]) {
    const r = await send("admin", "PUT", `/secrets/${name}`, { value: plaintext(name) });
    expect(r.status).toBe(201);
    ids[name] = r.json.secret_id;
  }
});
afterAll(() => h?.close());

describe("read", () => {
  it("granted: 200 and one read row with the version read", async () => {
    const r = await send("runner", "GET", "/secrets/OUT_S1");
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ secret_id: ids.OUT_S1, name: "OUT_S1", version: 1, value: plaintexts[0] });
    expect(r.fields).toEqual([r.expected({ action: "read", outcome: "granted", secret_id: ids.OUT_S1, secret_name: "OUT_S1", secret_version: 1 })]);
  });

  it("not_found: 404 and one not_found row without a secret id", async () => {
    const r = await send("runner", "GET", "/secrets/OUT_NOPE");
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: { code: "secret_not_found", message: "No such secret in this project" } });
    expect(r.fields).toEqual([r.expected({ action: "read", outcome: "not_found", secret_name: "OUT_NOPE" })]);
  });

  it("not_found for a version that does not exist", async () => {
    const r = await send("runner", "GET", "/secrets/OUT_S1?version=9");
    expect(r.status).toBe(404);
    expect(r.fields).toEqual([r.expected({ action: "read", outcome: "not_found", secret_name: "OUT_S1" })]);
  });

  it("denied: 403 and one denied row, for an existing and a missing secret alike", async () => {
    const existing = await send("stranger", "GET", "/secrets/OUT_S1");
    const missing = await send("stranger", "GET", "/secrets/OUT_NOPE");
    expect([existing.status, missing.status]).toEqual([403, 403]);
    expect(existing.text).toBe(missing.text);
    expect(existing.json).toEqual({ error: { code: "forbidden", message: "The caller does not have secrets:read on this project" } });
    expect(existing.fields).toEqual([existing.expected({ action: "read", outcome: "denied", secret_id: ids.OUT_S1, secret_name: "OUT_S1", secret_version: 1 })]);
    expect(missing.fields).toEqual([missing.expected({ action: "read", outcome: "denied", secret_name: "OUT_NOPE" })]);
  });
});

describe("list", () => {
  it("granted: 200 with metadata only, one list row with the count", async () => {
    const r = await send("runner", "GET", "/secrets");
    expect(r.status).toBe(200);
    expect(r.json.secrets.map((s: { name: string }) => s.name)).toEqual(["OUT_S1", "OUT_S2"]);
    for (const p of plaintexts) expect(r.text).not.toContain(p);
    expect(r.fields).toEqual([r.expected({ action: "list", outcome: "granted" })]);
    expect(r.rows[0].details).toEqual({ count: 2 });
  });

  it("denied: 403, one denied list row", async () => {
    const r = await send("stranger", "GET", "/secrets");
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("forbidden");
    expect(r.fields).toEqual([r.expected({ action: "list", outcome: "denied" })]);
    expect(r.rows[0].details).toBeNull();
  });
});

describe("batch read", () => {
  it("granted: one batch_read row per distinct name in request order, missing names as not_found", async () => {
    const r = await send("runner", "POST", "/secrets/batch-read", { names: ["OUT_S2", "OUT_NOPE", "OUT_S1", "OUT_S2"] });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      secrets: [
        { secret_id: ids.OUT_S2, name: "OUT_S2", version: 1, value: plaintexts[1] },
        { secret_id: ids.OUT_S1, name: "OUT_S1", version: 1, value: plaintexts[0] },
      ],
      missing: ["OUT_NOPE"],
    });
    expect(r.fields).toEqual([
      r.expected({ action: "batch_read", outcome: "granted", secret_id: ids.OUT_S2, secret_name: "OUT_S2", secret_version: 1 }),
      r.expected({ action: "batch_read", outcome: "not_found", secret_name: "OUT_NOPE" }),
      r.expected({ action: "batch_read", outcome: "granted", secret_id: ids.OUT_S1, secret_name: "OUT_S1", secret_version: 1 }),
    ]);
    expect(r.rows.map((row) => row.details)).toEqual([{ batch_size: 4 }, { batch_size: 4 }, { batch_size: 4 }]);
  });

  it("denied: 403, no values, one denied row per distinct name", async () => {
    const r = await send("stranger", "POST", "/secrets/batch-read", { names: ["OUT_S1", "OUT_NOPE", "OUT_S1"] });
    expect(r.status).toBe(403);
    expect(r.json).toEqual({ error: { code: "forbidden", message: "The caller does not have secrets:read on this project" } });
    expect(r.fields).toEqual([
      r.expected({ action: "batch_read", outcome: "denied", secret_id: ids.OUT_S1, secret_name: "OUT_S1", secret_version: 1 }),
      r.expected({ action: "batch_read", outcome: "denied", secret_name: "OUT_NOPE" }),
    ]);
  });

  it("101 names: 400 naming the parameter, nothing written", async () => {
    const r = await send("runner", "POST", "/secrets/batch-read", { names: Array.from({ length: 101 }, (_, i) => `N_${i}`) });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("invalid_request");
    expect(r.json.error.details.map((d: { parameter: string }) => d.parameter)).toEqual(["names"]);
    expect(r.rows).toHaveLength(0);
  });

  it("100 names is the limit and works: 100 rows", async () => {
    const names = ["OUT_S1", ...Array.from({ length: 99 }, (_, i) => `N_${i}`)];
    const r = await send("runner", "POST", "/secrets/batch-read", { names });
    expect(r.status).toBe(200);
    expect(r.json.missing).toHaveLength(99);
    expect(r.rows).toHaveLength(100);
    expect(r.fields.filter((f) => f.outcome === "not_found")).toHaveLength(99);
  });

  it("no names, or one invalid name among valid ones: 400, nothing written", async () => {
    const empty = await send("runner", "POST", "/secrets/batch-read", { names: [] });
    const invalid = await send("runner", "POST", "/secrets/batch-read", { names: ["OUT_S1", "bad-name"] });
    expect([empty.status, invalid.status]).toEqual([400, 400]);
    expect(invalid.json.error.details.map((d: { parameter: string }) => d.parameter)).toEqual(["names.1"]);
    expect([...empty.rows, ...invalid.rows]).toHaveLength(0);
  });
});

describe("write, delete and recreate", () => {
  let firstId: string;
  let firstValue: string;

  it("create: 201, version 1, one create row", async () => {
    firstValue = plaintext("w1");
    const r = await send("admin", "PUT", "/secrets/OUT_W", { value: firstValue, description: "kept description" });
    expect(r.status).toBe(201);
    expect(r.json).toEqual({ secret_id: expect.any(String), name: "OUT_W", version: 1, action: "create" });
    firstId = r.json.secret_id;
    expect(r.fields).toEqual([r.expected({ action: "create", outcome: "granted", secret_id: firstId, secret_name: "OUT_W", secret_version: 1 })]);
    expect(await secretRows("OUT_W")).toEqual([
      { id: firstId, current_version: 1, description: "kept description", created_by: ADMIN, updated_by: ADMIN, deleted_at: null, deleted_by: null, versions: 1 },
    ]);
  });

  it("update: 200, version 2, one update row; the description is kept when omitted", async () => {
    const r = await send("admin", "PUT", "/secrets/OUT_W", { value: plaintext("w2") });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ secret_id: firstId, name: "OUT_W", version: 2, action: "update" });
    expect(r.fields).toEqual([r.expected({ action: "update", outcome: "granted", secret_id: firstId, secret_name: "OUT_W", secret_version: 2 })]);
    expect(await secretRows("OUT_W")).toMatchObject([{ id: firstId, current_version: 2, description: "kept description", versions: 2 }]);
    const read = await send("runner", "GET", "/secrets/OUT_W?version=1");
    expect(read.json).toMatchObject({ version: 1, value: firstValue });
  });

  it("denied update: 403, one denied row naming the secret, no new version", async () => {
    const r = await send("runner", "PUT", "/secrets/OUT_W", { value: plaintext("denied-update") });
    expect(r.status).toBe(403);
    expect(r.json).toEqual({ error: { code: "forbidden", message: "The caller does not have secrets:write on this project" } });
    expect(r.fields).toEqual([r.expected({ action: "update", outcome: "denied", secret_id: firstId, secret_name: "OUT_W" })]);
    expect(await secretRows("OUT_W")).toMatchObject([{ current_version: 2, versions: 2 }]);
  });

  it("denied create: 403 identical to the denied update, one denied create row, no secret", async () => {
    const r = await send("stranger", "PUT", "/secrets/OUT_NEVER", { value: plaintext("denied-create") });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("forbidden");
    expect(r.fields).toEqual([r.expected({ action: "create", outcome: "denied", secret_name: "OUT_NEVER" })]);
    expect(await secretRows("OUT_NEVER")).toEqual([]);
  });

  it("delete denied: 403, one denied row, the secret stays readable", async () => {
    const r = await send("runner", "DELETE", "/secrets/OUT_S1");
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("forbidden");
    expect(r.fields).toEqual([r.expected({ action: "delete", outcome: "denied", secret_id: ids.OUT_S1, secret_name: "OUT_S1", secret_version: 1 })]);
    expect((await send("runner", "GET", "/secrets/OUT_S1")).status).toBe(200);
  });

  it("delete not_found: 404, one not_found row", async () => {
    const r = await send("admin", "DELETE", "/secrets/OUT_NOPE");
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: { code: "secret_not_found", message: "No such secret in this project" } });
    expect(r.fields).toEqual([r.expected({ action: "delete", outcome: "not_found", secret_name: "OUT_NOPE" })]);
  });

  it("delete granted: 204, one delete row with the last version; values destroyed, identity kept", async () => {
    const r = await send("admin", "DELETE", "/secrets/OUT_W");
    expect(r.status).toBe(204);
    expect(r.text).toBe("");
    expect(r.fields).toEqual([r.expected({ action: "delete", outcome: "granted", secret_id: firstId, secret_name: "OUT_W", secret_version: 2 })]);
    const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secret_versions where secret_id = ${firstId}`;
    expect(n).toBe(0);
    expect(await secretRows("OUT_W")).toEqual([
      { id: firstId, current_version: null, description: "kept description", created_by: ADMIN, updated_by: ADMIN, deleted_at: expect.any(Date), deleted_by: ADMIN, versions: 0 },
    ]);
  });

  it("after delete: read 404 with a not_found row, a second delete 404, and the name is gone from the listing", async () => {
    const read = await send("runner", "GET", "/secrets/OUT_W");
    expect(read.status).toBe(404);
    expect(read.fields).toEqual([read.expected({ action: "read", outcome: "not_found", secret_name: "OUT_W" })]);
    const old = await send("runner", "GET", "/secrets/OUT_W?version=1");
    expect(old.status).toBe(404);
    const again = await send("admin", "DELETE", "/secrets/OUT_W");
    expect(again.status).toBe(404);
    expect(again.fields).toEqual([again.expected({ action: "delete", outcome: "not_found", secret_name: "OUT_W" })]);
    const list = await send("runner", "GET", "/secrets");
    expect(list.json.secrets.map((s: { name: string }) => s.name)).toEqual(["OUT_S1", "OUT_S2"]);
  });

  it("recreate after delete: 201, a new secret id at version 1; the old identity and its audit history remain", async () => {
    const r = await send("admin", "PUT", "/secrets/OUT_W", { value: plaintext("w-recreated") });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ name: "OUT_W", version: 1, action: "create" });
    expect(r.json.secret_id).not.toBe(firstId);
    expect(r.fields).toEqual([r.expected({ action: "create", outcome: "granted", secret_id: r.json.secret_id, secret_name: "OUT_W", secret_version: 1 })]);
    const rows = await secretRows("OUT_W");
    expect(rows.map((s) => [s.id, s.current_version, s.deleted_at === null])).toEqual([
      [firstId, null, false],
      [r.json.secret_id, 1, true],
    ]);
    const history = await h.sql`select action, outcome from public.audit_logs where secret_id = ${firstId} order by id`;
    expect(history.map((x) => `${x.action}:${x.outcome}`)).toEqual([
      "create:granted", "update:granted", "read:granted", "update:denied", "delete:granted",
    ]);
    const read = await send("runner", "GET", "/secrets/OUT_W");
    expect(read.json).toEqual({ secret_id: r.json.secret_id, name: "OUT_W", version: 1, value: plaintexts.at(-1) });
  });
});

describe("what the database holds", () => {
  it("every stored ciphertext differs from every plaintext and contains none of them", async () => {
    const versions = await h.sql<{ ciphertext: Buffer; nonce: Buffer; key_id: string }[]>`select ciphertext, nonce, key_id from secret_store.secret_versions`;
    expect(versions).toHaveLength(3); // OUT_S1 v1, OUT_S2 v1, the recreated OUT_W v1
    expect(plaintexts).toHaveLength(7);
    for (const v of versions) {
      expect(v.key_id).toBe("test-k1");
      expect(v.nonce).toHaveLength(12);
      for (const p of plaintexts) {
        expect(v.ciphertext.equals(Buffer.from(p))).toBe(false);
        expect(v.ciphertext.includes(Buffer.from(p))).toBe(false);
      }
    }
  });

  it("no plaintext appears in any row of the secret store or the audit log, as text, hex or base64", async () => {
    const dump = await h.sql<{ t: string }[]>`
      select t::text as t from secret_store.secrets t
      union all select t::text from secret_store.secret_versions t
      union all select t::text from secret_store.grants t
      union all select t::text from secret_store.projects t
      union all select t::text from public.audit_logs t`;
    const text = dump.map((r) => r.t).join("\n");
    expect(text).toContain("OUT_S1"); // the dump is the real thing
    for (const p of plaintexts) {
      expect(text).not.toContain(p);
      expect(text).not.toContain(Buffer.from(p).toString("hex"));
      expect(text).not.toContain(Buffer.from(p).toString("base64").replace(/=+$/, ""));
    }
  });
});
