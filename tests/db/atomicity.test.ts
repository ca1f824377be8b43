// Law 1, fail-closed: when the audit insert fails, the access fails with it. A test-only trigger
// makes the insert raise for chosen rows; then, through the real secret-proxy app, no value is
// returned and nothing the access would have changed is left behind.
import { afterAll, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { createSecretProxyHarness, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";

let h: SecretProxyHarness;
let consoleError: MockInstance<typeof console.error>;
let seq = 0;
const failingRequestId = () => `fail-audit-${String(++seq).padStart(4, "0")}`;
const okRequestId = () => `ok-audit-${String(++seq).padStart(4, "0")}`;

const PLAINTEXT_READ = "atomicity-plaintext-READ-7f3a91";
const PLAINTEXT_BATCH_1 = "atomicity-plaintext-BATCH1-c04e2b";
const PLAINTEXT_BATCH_2 = "atomicity-plaintext-BATCH2-9d17aa";
const PLAINTEXT_ROTATE_V1 = "atomicity-plaintext-ROT-v1-51e0";
const PLAINTEXT_ROTATE_V2 = "atomicity-plaintext-ROT-v2-88c2";
const PLAINTEXT_NEW = "atomicity-plaintext-NEW-e6b3";

async function expectInternalError(res: Response, ...plaintexts: string[]) {
  expect(res.status).toBe(500);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ error: { code: "internal_error", message: "An internal error occurred" } });
  for (const p of plaintexts) expect(text).not.toContain(p);
  expect(text).not.toMatch(/test: audit insert refused|audit_logs|\bat .*:\d+/);
  // The failure is logged by name only: no message, no stack, no value.
  expect(consoleError.mock.calls.at(-1)).toEqual(["unhandled error: PostgresError"]);
}

async function auditCount(): Promise<number> {
  const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from public.audit_logs`;
  return n;
}

async function secretState(name: string) {
  return await h.sql`
    select s.id, s.current_version, s.description, s.updated_by, s.deleted_at,
      (select count(*)::int from secret_store.secret_versions v where v.secret_id = s.id) as versions
    from secret_store.secrets s where s.project_id = ${h.projectId} and s.name = ${name} order by s.created_at`;
}

beforeAll(async () => {
  h = await createSecretProxyHarness();
  const put = (name: string, value: string, description?: string) =>
    h.request("PUT", `/projects/${h.projectId}/secrets/${name}`, { body: { value, ...(description ? { description } : {}) } });
  expect((await put("ATOM_READ", PLAINTEXT_READ)).status).toBe(201);
  expect((await put("ATOM_BATCH_1", PLAINTEXT_BATCH_1)).status).toBe(201);
  expect((await put("ATOM_BATCH_2", PLAINTEXT_BATCH_2)).status).toBe(201);
  expect((await put("ATOM_ROTATE", PLAINTEXT_ROTATE_V1, "rotating secret")).status).toBe(201);
  expect((await put("ATOM_DELETE", "atomicity-delete-me")).status).toBe(201);

  // Test-only, in this file's private database: the audit insert raises for a row naming the
  // secret FAIL_AUDIT or carrying a request id that starts with fail-audit-.
  await h.sql.unsafe(`
    create schema test_hooks;
    create function test_hooks.fail_audit_insert() returns trigger language plpgsql as $$
    begin
      if new.secret_name = 'FAIL_AUDIT' or new.request_id like 'fail-audit-%' then
        raise exception 'test: audit insert refused';
      end if;
      return new;
    end $$;
    create trigger test_fail_audit_insert before insert on public.audit_logs
      for each row execute function test_hooks.fail_audit_insert();
  `);
});
afterAll(() => h?.close());
beforeEach(() => {
  consoleError?.mockRestore();
  consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
});

describe("when the audit insert fails", () => {
  it("the trigger only refuses the rows it is meant to (control)", async () => {
    const before = await auditCount();
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/ATOM_READ`, { token: h.tokens.runner, headers: { "x-request-id": okRequestId() } });
    expect(res.status).toBe(200);
    expect((await res.json()).value).toBe(PLAINTEXT_READ);
    expect(await auditCount()).toBe(before + 1);
  });

  it("a read answers 500 without the value, and no audit row exists", async () => {
    const before = await auditCount();
    const id = failingRequestId();
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/ATOM_READ`, { token: h.tokens.runner, headers: { "x-request-id": id } });
    await expectInternalError(res, PLAINTEXT_READ);
    expect(res.headers.get("x-request-id")).toBe(id);
    expect(await auditCount()).toBe(before);
  });

  it("a read of an older version fails the same way", async () => {
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/ATOM_READ?version=1`, {
      token: h.tokens.runner,
      headers: { "x-request-id": failingRequestId() },
    });
    await expectInternalError(res, PLAINTEXT_READ);
  });

  it("a batch read where one name's audit row fails returns no values at all and keeps no rows", async () => {
    const before = await auditCount();
    const res = await h.request("POST", `/projects/${h.projectId}/secrets/batch-read`, {
      token: h.tokens.runner,
      headers: { "x-request-id": okRequestId() },
      body: { names: ["ATOM_BATCH_1", "FAIL_AUDIT", "ATOM_BATCH_2"] },
    });
    await expectInternalError(res, PLAINTEXT_BATCH_1, PLAINTEXT_BATCH_2);
    expect(await auditCount()).toBe(before);
  });

  it("creating a secret leaves no secrets row and no secret_versions row", async () => {
    const before = await auditCount();
    const [{ n: versionsBefore }] = await h.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secret_versions`;
    const res = await h.request("PUT", `/projects/${h.projectId}/secrets/FAIL_AUDIT`, { body: { value: PLAINTEXT_NEW }, headers: { "x-request-id": okRequestId() } });
    await expectInternalError(res, PLAINTEXT_NEW);
    const res2 = await h.request("PUT", `/projects/${h.projectId}/secrets/ATOM_NEW`, { body: { value: PLAINTEXT_NEW }, headers: { "x-request-id": failingRequestId() } });
    await expectInternalError(res2, PLAINTEXT_NEW);
    expect(await secretState("FAIL_AUDIT")).toEqual([]);
    expect(await secretState("ATOM_NEW")).toEqual([]);
    const [{ n: versionsAfter }] = await h.sql<{ n: number }[]>`select count(*)::int as n from secret_store.secret_versions`;
    expect(versionsAfter).toBe(versionsBefore);
    expect(await auditCount()).toBe(before);
  });

  it("rotating a secret leaves current_version, description and versions unchanged, and reads still get v1", async () => {
    const stateBefore = await secretState("ATOM_ROTATE");
    expect(stateBefore).toMatchObject([{ current_version: 1, description: "rotating secret", versions: 1, deleted_at: null }]);
    const before = await auditCount();
    const res = await h.request("PUT", `/projects/${h.projectId}/secrets/ATOM_ROTATE`, {
      body: { value: PLAINTEXT_ROTATE_V2, description: "changed" },
      headers: { "x-request-id": failingRequestId() },
    });
    await expectInternalError(res, PLAINTEXT_ROTATE_V1, PLAINTEXT_ROTATE_V2);
    expect(await secretState("ATOM_ROTATE")).toEqual(stateBefore);
    expect(await auditCount()).toBe(before);

    const read = await h.request("GET", `/projects/${h.projectId}/secrets/ATOM_ROTATE`, { token: h.tokens.runner, headers: { "x-request-id": okRequestId() } });
    expect(await read.json()).toMatchObject({ version: 1, value: PLAINTEXT_ROTATE_V1 });
  });

  it("deleting a secret leaves it live with its versions", async () => {
    const stateBefore = await secretState("ATOM_DELETE");
    const res = await h.request("DELETE", `/projects/${h.projectId}/secrets/ATOM_DELETE`, { headers: { "x-request-id": failingRequestId() } });
    await expectInternalError(res);
    expect(await secretState("ATOM_DELETE")).toEqual(stateBefore);
    expect(stateBefore).toMatchObject([{ current_version: 1, versions: 1, deleted_at: null }]);
  });

  it("a listing answers 500 without names", async () => {
    const res = await h.request("GET", `/projects/${h.projectId}/secrets`, { token: h.tokens.runner, headers: { "x-request-id": failingRequestId() } });
    await expectInternalError(res, "ATOM_READ", "ATOM_ROTATE");
  });

  it("denied and not-found attempts whose audit row fails are errors too, not a silent 403/404", async () => {
    const before = await auditCount();
    const denied = await h.request("GET", `/projects/${h.projectId}/secrets/ATOM_READ`, { token: h.tokens.stranger, headers: { "x-request-id": failingRequestId() } });
    await expectInternalError(denied, PLAINTEXT_READ);
    const missing = await h.request("GET", `/projects/${h.projectId}/secrets/FAIL_AUDIT`, { token: h.tokens.runner, headers: { "x-request-id": okRequestId() } });
    await expectInternalError(missing);
    expect(await auditCount()).toBe(before);
  });
});
