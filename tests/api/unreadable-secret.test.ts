// A granted read whose value cannot be decrypted (here: the function's keyring lacks the key the
// value was sealed with) returns nothing, answers 500, and leaves an 'error' row beside the
// 'granted' one, so the trail does not claim a value left that never did.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtVerifier } from "../../shared/auth.ts";
import { generateKeyBase64, parseKeyring } from "../../shared/crypto.ts";
import { createSecretProxyApp, type SecretProxyApp } from "../../functions/secret-proxy/app.ts";
import { createSecretAccess } from "../../functions/secret-proxy/secret-access.ts";
import { createSecretProxyHarness, RUNNER, STRANGER, type SecretProxyHarness } from "../support/secret-proxy-harness.ts";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_JWKS_URL } from "../support/tokens.ts";

const VALUE = "sealed-with-a-key-this-instance-lacks";
let h: SecretProxyHarness;
let wrongKeyring: SecretProxyApp;

beforeAll(async () => {
  h = await createSecretProxyHarness();
  for (const name of ["LOST_KEY", "ALSO_LOST"]) {
    expect((await h.request("PUT", `/projects/${h.projectId}/secrets/${name}`, { body: { value: VALUE } })).status).toBe(201);
  }
  const keyring = await parseKeyring(JSON.stringify({ other: generateKeyBase64() }), "other");
  wrongKeyring = createSecretProxyApp({
    verifyJwt: createJwtVerifier({ jwksUrl: TEST_JWKS_URL, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, fetchImpl: h.idp.fetch }),
    secrets: createSecretAccess(h.rpc, keyring),
    trustedProxyHops: 1,
    maxBodyBytes: 65_536,
  });
});
afterAll(() => h?.close());

const asRunner = (path: string, init: RequestInit = {}) =>
  wrongKeyring.request(`/secret-proxy/projects/${h.projectId}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${h.tokens.runner}`, "content-type": "application/json" },
  });

describe("reading a value the function cannot decrypt", () => {
  it("answers 500 secret_unreadable without the value and records granted then error", async () => {
    const before = await h.lastAuditId();
    const res = await asRunner("/secrets/LOST_KEY");
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ error: { code: "secret_unreadable", message: expect.any(String) } });
    expect(body).not.toContain(VALUE);
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => [r.action, r.outcome, r.secret_name, r.user_identity, r.details])).toEqual([
      ["read", "granted", "LOST_KEY", RUNNER, null],
      ["read", "error", "LOST_KEY", RUNNER, { reason: "unknown_key" }],
    ]);
    expect(rows[1].secret_id).toBe(rows[0].secret_id);
  });

  it("returns no value of a batch if one cannot be decrypted, with an error row per unreadable name", async () => {
    const before = await h.lastAuditId();
    const res = await asRunner("/secrets/batch-read", { method: "POST", body: JSON.stringify({ names: ["LOST_KEY", "ALSO_LOST"] }) });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain(VALUE);
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => [r.action, r.outcome, r.secret_name])).toEqual([
      ["batch_read", "granted", "LOST_KEY"],
      ["batch_read", "granted", "ALSO_LOST"],
      ["batch_read", "error", "LOST_KEY"],
      ["batch_read", "error", "ALSO_LOST"],
    ]);
  });

  it("lets nobody without secrets:read add error rows, and only for reads", async () => {
    const before = await h.lastAuditId();
    const stranger = { claims: { sub: STRANGER }, token: h.tokens.stranger };
    await h.rpc.call("record_unreadable_secret", { p_project_id: h.projectId, p_names: ["LOST_KEY"], p_action: "read", p_reason: "x", p_request: {} }, stranger);
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
    const runner = { claims: { sub: RUNNER }, token: h.tokens.runner };
    await expect(
      h.rpc.call("record_unreadable_secret", { p_project_id: h.projectId, p_names: ["LOST_KEY"], p_action: "delete", p_reason: "x", p_request: {} }, runner),
    ).rejects.toThrow(/only reads/);
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });
});
