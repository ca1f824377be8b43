// Who may look: the same matrix for every route. A caller without audit:read on the project gets
// one 403, identical whether or not the project exists or has records, and the attempt is
// recorded; without a valid token nothing is read and nothing is recorded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDITOR, createAuditLogsHarness, OTHER_AUDITOR, READER, STRANGER, type AuditLogsHarness } from "../../tests/support/audit-logs-harness.ts";
import { sseReader } from "../../tests/support/sse.ts";

let h: AuditLogsHarness;
let entryId: string;
let badTokens: string[];

beforeAll(async () => {
  h = await createAuditLogsHarness();
  await h.recordAccess("runner-1", h.projectId, { secretName: "STRIPE_API_KEY" });
  entryId = await h.lastAuditId();
  const { createTestIdentityProvider } = await import("../../tests/support/tokens.ts");
  const otherIdp = await createTestIdentityProvider();
  badTokens = [
    "not-a-jwt",
    await otherIdp.token(AUDITOR), // right claims, signed by a key the verifier does not trust
    await h.idp.token(AUDITOR, { expiresIn: "-1m" }),
  ];
});
afterAll(() => h?.close());

const NO_PROJECT = "00000000-0000-4000-8000-00000000dead";

const routes = () => ({
  list: (p: string) => `?project_id=${p}`,
  get: (p: string) => `/${entryId}?project_id=${p}`,
  stats: (p: string) => `/stats?project_id=${p}&group_by=action`,
  export: (p: string) => `/export?project_id=${p}&format=csv`,
  stream: (p: string) => `/stream?project_id=${p}`,
});

describe.each(["list", "get", "stats", "export", "stream"] as const)("%s", (route) => {
  const path = (p: string) => routes()[route](p);

  it("answers 401 without a token or with a bad one, and records nothing", async () => {
    const before = await h.lastAuditId();
    for (const token of [null, ...badTokens]) {
      const res = await h.request(path(h.projectId), { token });
      expect(res.status).toBe(401);
      const body = await res.text();
      expect(JSON.parse(body).error.code).toBe("unauthorized");
      if (token) expect(body).not.toContain(token);
    }
    expect(await h.auditRowsAfter(before)).toHaveLength(0);
  });

  it.each([
    ["no grant", STRANGER, "stranger"],
    ["audit:read on another project", OTHER_AUDITOR, "otherAuditor"],
    ["secrets:read only", READER, "reader"],
  ] as const)("answers 403 to a caller with %s, the same for any project, and records the attempt", async (_, identity, tokenName) => {
    const before = await h.lastAuditId();
    const answers = [];
    for (const project of [h.projectId, NO_PROJECT]) {
      const res = await h.request(path(project), { token: h.tokens[tokenName] });
      answers.push([res.status, await res.text()]);
    }
    expect(answers[0][0]).toBe(403);
    expect(JSON.parse(answers[0][1] as string).error.code).toBe("forbidden");
    expect(answers[1]).toEqual(answers[0]);
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => [r.outcome, r.user_identity, r.project_id, r.access_type])).toEqual([
      ["denied", identity, h.projectId, "read"],
      ["denied", identity, NO_PROJECT, "read"],
    ]);
    expect(String(rows[0].action)).toBe(`audit_${{ list: "query", get: "get", stats: "stats", export: "export", stream: "stream" }[route]}`);
  });

  it("serves a caller with audit:read and records the look", async () => {
    const before = await h.lastAuditId();
    const res = await h.request(path(h.projectId), { token: h.tokens.auditor });
    expect(res.status).toBe(200);
    if (route === "stream") {
      const sse = sseReader(res);
      expect((await sse.next()).retry).toBe("2000");
      await sse.close();
    } else {
      expect((await res.text()).length).toBeGreaterThan(0);
    }
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => [r.outcome, r.user_identity])).toEqual([["granted", AUDITOR]]);
  });

  it("does not let audit:read on one project read another", async () => {
    const res = await h.request(path(h.projectId), { token: h.tokens.otherAuditor });
    expect(res.status).toBe(403);
    const own = await h.request(path(h.otherProjectId), { token: h.tokens.otherAuditor });
    // get: the entry belongs to the main project, so in the other project it does not exist.
    expect(own.status).toBe(route === "get" ? 404 : 200);
    if (route === "stream") await own.body?.cancel();
    else await own.text();
  });
});
