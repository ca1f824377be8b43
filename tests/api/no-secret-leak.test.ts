// Law 4: no secret value (and no token) in any log line or audit row. Every console method is
// captured while reads, writes, batch reads, denials, bad input and a failing database run; then
// the captured output and every audit row, each column cast to text, are searched.
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import { createSecretProxyHarness, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";

const METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

let h: SecretProxyHarness;
let spies: MockInstance[] = [];
const captured: string[] = [];
const responses: { label: string; text: string; mayContain: string[] }[] = [];
const plaintexts: string[] = [];
let tokens: string[];
let auditBefore: string;

const value = (label: string) => {
  const v = `LEAKCHECK-${label}-${crypto.randomUUID()}`;
  plaintexts.push(v);
  return v;
};

async function send(label: string, method: string, path: string, opts: Parameters<SecretProxyHarness["request"]>[2] = {}, mayContain: string[] = []) {
  const res = await h.request(method, `/projects/${h.projectId}${path}`, opts);
  const text = await res.text();
  responses.push({ label, text, mayContain });
  return { status: res.status, text };
}

beforeAll(async () => {
  h = await createSecretProxyHarness();
  tokens = Object.values(h.tokens);
  auditBefore = await h.lastAuditId();
  for (const m of METHODS) {
    spies.push(vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      captured.push(args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack}` : JSON.stringify(a))).join(" "));
    }));
  }

  // Writes: create, rotate, with descriptions.
  const a1 = value("A1");
  const a2 = value("A2");
  const b1 = value("B1");
  expect((await send("create A", "PUT", "/secrets/LEAK_A", { body: { value: a1, description: "leak test A" } })).status).toBe(201);
  expect((await send("rotate A", "PUT", "/secrets/LEAK_A", { body: { value: a2 } })).status).toBe(200);
  expect((await send("create B", "PUT", "/secrets/LEAK_B", { body: { value: b1 } })).status).toBe(201);

  // Reads: the only responses allowed to carry a value are the ones that read it.
  expect((await send("read A", "GET", "/secrets/LEAK_A", { token: h.tokens.runner }, [a2])).status).toBe(200);
  expect((await send("read A v1", "GET", "/secrets/LEAK_A?version=1", { token: h.tokens.runner }, [a1])).status).toBe(200);
  expect((await send("batch", "POST", "/secrets/batch-read", { token: h.tokens.runner, body: { names: ["LEAK_A", "LEAK_B", "LEAK_NONE"] } }, [a2, b1])).status).toBe(200);
  expect((await send("list", "GET", "/secrets", { token: h.tokens.runner })).status).toBe(200);

  // Denials and not-found.
  expect((await send("denied read", "GET", "/secrets/LEAK_A", { token: h.tokens.stranger })).status).toBe(403);
  expect((await send("denied write", "PUT", "/secrets/LEAK_A", { token: h.tokens.runner, body: { value: value("DENIED") } })).status).toBe(403);
  expect((await send("denied batch", "POST", "/secrets/batch-read", { token: h.tokens.stranger, body: { names: ["LEAK_A", "LEAK_B"] } })).status).toBe(403);
  expect((await send("not found", "GET", "/secrets/LEAK_NONE", { token: h.tokens.runner })).status).toBe(404);

  // Bad input carrying values.
  expect((await send("extra field", "PUT", "/secrets/LEAK_A", { body: { value: value("EXTRA"), extra: value("EXTRA-FIELD") } })).status).toBe(400);
  expect((await send("value as number key", "PUT", "/secrets/LEAK_A", { body: { [value("AS-KEY")]: "x" } })).status).toBe(400);
  expect((await send("malformed json", "PUT", "/secrets/LEAK_A", { body: `{"value": "${value("MALFORMED")}"` })).status).toBe(400);
  expect((await send("too long", "PUT", "/secrets/LEAK_A", { body: { value: value("LONG") + "x".repeat(33_000) } })).status).toBe(400);
  expect((await send("wrong content type", "PUT", "/secrets/LEAK_A", { body: JSON.stringify({ value: value("TEXT") }), headers: { "content-type": "text/plain" } })).status).toBe(415);
  expect((await send("value in bad name", "GET", `/secrets/${encodeURIComponent(value("IN-NAME"))}`, { token: h.tokens.runner })).status).toBe(400);
  expect((await send("bad token", "GET", "/secrets/LEAK_A", { token: `${h.tokens.admin.slice(0, -4)}AAAA` })).status).toBe(401);
  expect((await send("expired token", "GET", "/secrets/LEAK_A", { token: await h.idp.token("runner-1", { expiresIn: "-1h" }) })).status).toBe(401);

  // A database failure on the value path (a test-only trigger refuses the audit insert).
  await h.sql.unsafe(`
    create function public.test_refuse_leak_audit() returns trigger language plpgsql as $$
    begin
      if new.request_id like 'leak-fail-%' then raise exception 'refused for %', new.secret_name; end if;
      return new;
    end $$;
    create trigger test_refuse_leak_audit before insert on public.audit_logs for each row execute function public.test_refuse_leak_audit();`);
  expect((await send("failing read", "GET", "/secrets/LEAK_A", { token: h.tokens.runner, headers: { "x-request-id": "leak-fail-0001" } })).status).toBe(500);
  expect((await send("failing write", "PUT", "/secrets/LEAK_B", { body: { value: value("FAILED-WRITE") }, headers: { "x-request-id": "leak-fail-0002" } })).status).toBe(500);
  expect((await send("failing batch", "POST", "/secrets/batch-read", { token: h.tokens.runner, body: { names: ["LEAK_A", "LEAK_B"] }, headers: { "x-request-id": "leak-fail-0003" } })).status).toBe(500);

  // Delete destroys values.
  expect((await send("delete", "DELETE", "/secrets/LEAK_B")).status).toBe(204);
});
afterAll(async () => {
  for (const s of spies) s.mockRestore();
  spies = [];
  await h?.close();
});

describe("no secret value or token leaks", () => {
  it("the run exercised the logging path (control): the 500s logged their error names", () => {
    expect(captured).toEqual(["unhandled error: PostgresError", "unhandled error: PostgresError", "unhandled error: PostgresError"]);
    expect(plaintexts).toHaveLength(12);
  });

  it("no captured console output contains a plaintext or a token", () => {
    const out = captured.join("\n");
    for (const p of plaintexts) expect(out).not.toContain(p);
    for (const t of tokens) {
      expect(out).not.toContain(t);
      expect(out).not.toContain(t.split(".")[2]);
    }
  });

  it("no response carries a value other than the one it read, nor any token", () => {
    expect(responses).toHaveLength(23);
    for (const r of responses) {
      for (const p of plaintexts) {
        if (!r.mayContain.includes(p)) expect(r.text, `${r.label} leaks ${p}`).not.toContain(p);
      }
      for (const t of tokens) expect(r.text, r.label).not.toContain(t.split(".")[2]);
    }
  });

  it("no audit row, any column cast to text, contains a plaintext or a token", async () => {
    const rows = await h.sql<{ t: string }[]>`select t::text as t from public.audit_logs t where id > ${auditBefore}`;
    // 3 writes, 2 reads, 3 batch, 1 list, 1 + 1 + 2 denied, 1 not found, 1 delete.
    expect(rows).toHaveLength(15);
    const text = rows.map((r) => r.t).join("\n");
    expect(text).toContain("LEAK_A");
    for (const p of plaintexts) {
      expect(text).not.toContain(p);
      expect(text).not.toContain(Buffer.from(p).toString("hex"));
    }
    for (const t of tokens) {
      expect(text).not.toContain(t);
      for (const part of t.split(".")) expect(text).not.toContain(part);
    }
  });

  it("the secret store holds no plaintext either", async () => {
    const rows = await h.sql<{ t: string }[]>`
      select t::text as t from secret_store.secrets t union all select t::text from secret_store.secret_versions t`;
    const text = rows.map((r) => r.t).join("\n");
    for (const p of plaintexts) {
      expect(text).not.toContain(p);
      expect(text).not.toContain(Buffer.from(p).toString("hex"));
    }
  });
});
