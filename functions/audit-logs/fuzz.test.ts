// Fuzzed query strings: whatever the query string, the answer is a 2xx/4xx with the error envelope
// naming parameters, never a 500.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLogsHarness, type AuditLogsHarness } from "../../tests/support/audit-logs-harness.ts";
import { pick, prng } from "../../tests/support/audit-data.ts";

let h: AuditLogsHarness;
beforeAll(async () => {
  h = await createAuditLogsHarness();
  await h.recordAccess("alice", h.projectId, { secretName: "S1", ip: "10.0.0.1" });
});
afterAll(() => h?.close());

const KEYS = ["project_id", "secret_id", "secret_name", "from", "to", "user_identity", "access_type", "action", "outcome",
  "ip", "limit", "cursor", "group_by", "format", "PROJECT_ID", "x", "__proto__", "constructor", "limit[]", "", "%00", "a%ZZ"];

function nastyValues(projectId: string): string[] {
  return [
    projectId, projectId.toUpperCase(), "", " ", ",", ",,", "%00", "a%00b", "%FF%FE", "%E0%80%80", "%ED%A0%80", "%C0%AF", "%",
    "%%", "%2", "x".repeat(5000), "é".repeat(300), "😀", "\u202e", "null", "undefined", "true", "[]", "{}", "NaN", "Infinity",
    "-1", "0", "1", "1000", "1001", "1e3", "0x10", "1.5", " 5", "9".repeat(30), "-0",
    "2026-11-01", "2026-02-30", "2026-13-01", "0000-01-01", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00",
    "2026-11-01T25:00:00Z", "2026-11-01T10:00:00", "2026-11-01T10:00:00+15:00", "2026-11-01T10:00:00.1234567Z", "2026-11-01T10:00Z",
    "read", "write", "read,write", "READ", "read,,write", "granted,denied,not_found,error", "audit_query", "bogus",
    "10.0.0.0/8", "10.0.0.0/33", "10.0.0.1", "::1", "::/0", "fe80::1%eth0", "1.2.3", "256.1.1.1", "01.2.3.4", "10.0.0.0/08",
    "2001:db8::/129", ":::", "1.2.3.4/-1",
    "00000000-0000-0000-0000-000000000000", "00000000-0000-4000-8000-00000000dead", "'; drop table public.audit_logs; --",
    "$1", "\\", "\"", "SECRET_1", "1SECRET", "day", "secret", "month", "csv", "ndjson", "xml",
    "eyJ2IjoxfQ.AAAA", `${"A".repeat(20)}.${"B".repeat(43)}`,
  ];
}

function randomQuery(rand: () => number, values: string[], route: string): string {
  const parts: string[] = [];
  if (route === "/stats" && rand() < 0.8) parts.push(`group_by=${pick(rand, ["day", "secret", "identity", "action", "outcome"])}`);
  if (rand() < 0.85) parts.push(`project_id=${pick(rand, rand() < 0.8 ? [h.projectId] : values)}`);
  const n = Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) {
    const value = pick(rand, values);
    const encoded = value.includes("%") || rand() < 0.5 ? value : encodeURIComponent(value);
    parts.push(`${pick(rand, KEYS)}=${encoded}`);
  }
  if (rand() < 0.1) parts.push(pick(rand, ["&", "=", "==", "a", "&&&"]));
  return parts.join("&");
}

describe("fuzzed query strings", () => {
  it.each(["", "/stats", "/export", "/stream", "/42"])("never produce a 500 on %s", async (route) => {
    const rand = prng(route.length * 7919 + 17);
    const values = nastyValues(h.projectId);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 250; i++) {
      const qs = randomQuery(rand, values, route);
      const token = rand() < 0.8 ? h.tokens.auditor : h.tokens.stranger;
      const res = await h.request(`${route}?${qs}`, { token });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect([200, 400, 403, 404], `${route}?${qs} → ${res.status}`).toContain(res.status);
      if (res.status === 200 && route === "/stream") {
        await res.body!.cancel();
        continue;
      }
      const text = await res.text();
      if (res.status === 400) {
        const body = JSON.parse(text);
        expect(body.error.code).toBe("invalid_request");
        expect(body.error.details.length).toBeGreaterThan(0);
        for (const d of body.error.details) expect(d.parameter).toMatch(/\S/);
      }
    }
    // The fuzz reaches both the validator and the database.
    expect(statuses.get(400)).toBeGreaterThan(20);
    expect((statuses.get(200) ?? 0) + (statuses.get(403) ?? 0) + (statuses.get(404) ?? 0)).toBeGreaterThan(5);
  });
});

describe("validation names the parameter", () => {
  it.each([
    ["limit=0", "limit"], ["limit=1001", "limit"], ["limit=abc", "limit"], ["from=2026-02-30", "from"], ["to=yesterday", "to"],
    ["from=2026-10-02&to=2026-10-01", "from"], ["outcome=denied,maybe", "outcome"], ["action=drop", "action"],
    ["access_type=execute", "access_type"], ["ip=10.0.0.0/33", "ip"], ["ip=example.com", "ip"], ["secret_id=42", "secret_id"],
    ["secret_name=1BAD", "secret_name"], ["user_identity=%00", "user_identity"], ["cursor=abc", "cursor"], ["outcomes=denied", "outcomes"],
  ])("%s → 400 naming %s", async (qs, parameter) => {
    const res = await h.request(`?project_id=${h.projectId}&${qs}`);
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.details.map((d: { parameter: string }) => d.parameter)).toContain(parameter);
  });

  it("requires project_id", async () => {
    const res = await h.request("?outcome=denied");
    expect(res.status).toBe(400);
    expect((await res.json()).error.details[0].parameter).toBe("project_id");
  });
});
