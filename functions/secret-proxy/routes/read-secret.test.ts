import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, createSecretProxyHarness, RUNNER, STRANGER, type SecretProxyHarness } from "../../../tests/support/secret-proxy-harness.ts";

let h: SecretProxyHarness;
beforeAll(async () => {
  h = await createSecretProxyHarness();
  expect((await h.request("PUT", `/projects/${h.projectId}/secrets/STRIPE_API_KEY`, { body: { value: "sk_test_v1" } })).status).toBe(201);
  expect((await h.request("PUT", `/projects/${h.projectId}/secrets/STRIPE_API_KEY`, { body: { value: "sk_test_v2" } })).status).toBe(200);
});
afterAll(() => h?.close());

describe("GET /projects/{projectId}/secrets/{name}", () => {
  it("returns the current value and records one granted read with the request's context", async () => {
    const before = await h.lastAuditId();
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/STRIPE_API_KEY`, {
      token: h.tokens.runner,
      headers: { "x-forwarded-for": "6.6.6.6, 203.0.113.7", "user-agent": "runner/1.0", "x-request-id": "req-0000001" },
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ name: "STRIPE_API_KEY", version: 2, value: "sk_test_v2" });
    expect(res.headers.get("x-request-id")).toBe("req-0000001");

    const rows = await h.auditRowsAfter(before);
    expect(rows).toHaveLength(1);
    const [dbNow] = await h.sql`select now() as now`;
    expect(rows[0]).toMatchObject({
      project_id: h.projectId,
      secret_id: body.secret_id,
      secret_name: "STRIPE_API_KEY",
      secret_version: 2,
      access_type: "read",
      action: "read",
      outcome: "granted",
      user_identity: RUNNER,
      actor_type: "service",
      ip_address: "203.0.113.7",
      forwarded_for: "6.6.6.6, 203.0.113.7",
      user_agent: "runner/1.0",
      request_id: "req-0000001",
    });
    expect(Math.abs((rows[0].timestamp as Date).getTime() - (dbNow.now as Date).getTime())).toBeLessThan(60_000);
  });

  it("reads an older version on request", async () => {
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/STRIPE_API_KEY?version=1`, { token: h.tokens.runner });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: 1, value: "sk_test_v1" });
  });

  it("answers 404 for a missing secret and records not_found", async () => {
    const before = await h.lastAuditId();
    const res = await h.request("GET", `/projects/${h.projectId}/secrets/NOPE`, { token: h.tokens.runner });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "secret_not_found", message: expect.any(String) } });
    const rows = await h.auditRowsAfter(before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: "read", outcome: "not_found", secret_id: null, secret_name: "NOPE", user_identity: RUNNER });
  });

  it("answers a caller without secrets:read identically whether the secret exists or not, and records both as denied", async () => {
    const before = await h.lastAuditId();
    const existing = await h.request("GET", `/projects/${h.projectId}/secrets/STRIPE_API_KEY`, { token: h.tokens.stranger });
    const missing = await h.request("GET", `/projects/${h.projectId}/secrets/NOPE`, { token: h.tokens.stranger });
    const otherProject = await h.request("GET", `/projects/${h.otherProjectId}/secrets/STRIPE_API_KEY`, { token: h.tokens.stranger });
    const noProject = await h.request("GET", `/projects/00000000-0000-4000-8000-00000000dead/secrets/X`, { token: h.tokens.stranger });
    const bodies = await Promise.all([existing, missing, otherProject, noProject].map(async (r) => [r.status, await r.text()]));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(bodies[0][0]).toBe(403);
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => [r.outcome, r.user_identity, r.secret_name])).toEqual([
      ["denied", STRANGER, "STRIPE_API_KEY"],
      ["denied", STRANGER, "NOPE"],
      ["denied", STRANGER, "STRIPE_API_KEY"],
      ["denied", STRANGER, "X"],
    ]);
  });

  it.each([
    ["an invalid name", "/secrets/1BAD"],
    ["an SQL-looking name", "/secrets/x';drop%20table%20secret_store.secrets;--"],
    ["a non-integer version", "/secrets/STRIPE_API_KEY?version=abc"],
    ["a zero version", "/secrets/STRIPE_API_KEY?version=0"],
  ])("rejects %s with 400 naming the parameter and writes nothing", async (_label, suffix) => {
    const before = await h.lastAuditId();
    const res = await h.request("GET", `/projects/${h.projectId}${suffix}`, { token: h.tokens.runner });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.details[0].parameter).toMatch(/^(name|version)$/);
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });

  it("rejects a project id that is not a uuid", async () => {
    const res = await h.request("GET", `/projects/not-a-uuid/secrets/STRIPE_API_KEY`, { token: h.tokens.runner });
    expect(res.status).toBe(400);
    expect((await res.json()).error.details[0].parameter).toBe("projectId");
  });

  it("records the admin's identity as a user", async () => {
    const before = await h.lastAuditId();
    expect((await h.request("GET", `/projects/${h.projectId}/secrets/STRIPE_API_KEY`)).status).toBe(200);
    expect((await h.auditRowsAfter(before))[0]).toMatchObject({ user_identity: ADMIN, actor_type: "user" });
  });
});
