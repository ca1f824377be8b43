import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLogsHarness, type AuditLogsHarness } from "../../../tests/support/audit-logs-harness.ts";
import { referenceFilter, referenceRows, seedRandomTrail, type ReferenceFilters, type ReferenceRow } from "../../../tests/support/audit-data.ts";

let h: AuditLogsHarness;
beforeAll(async () => {
  h = await createAuditLogsHarness();
  await seedRandomTrail(h.sql, h.projectId, 800, 99);
  await seedRandomTrail(h.sql, h.otherProjectId, 200, 98);
});
afterAll(() => h?.close());

const keyOf: Record<string, (r: ReferenceRow) => string | null> = {
  day: (r) => r.timestamp.slice(0, 10),
  secret: (r) => r.secret_id,
  identity: (r) => r.user_identity,
  action: (r) => r.action,
  outcome: (r) => r.outcome,
};

describe("GET /audit-logs/stats", () => {
  it.each(["day", "secret", "identity", "action", "outcome"])("counts by %s like the reference, over the given range and filters", async (groupBy) => {
    const f: ReferenceFilters = { from: "2026-08-20T00:00:00.000000Z", to: "2026-10-05T00:00:00.000000Z", outcome: ["granted", "denied"] };
    const rows = referenceFilter(await referenceRows(h.sql, h.projectId), f);
    const expected = new Map<string | null, number>();
    for (const r of rows) expected.set(keyOf[groupBy](r), (expected.get(keyOf[groupBy](r)) ?? 0) + 1);
    const res = await h.request(`/stats?project_id=${h.projectId}&group_by=${groupBy}&from=2026-08-20&to=2026-10-05&outcome=granted,denied`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ group_by: groupBy, from: f.from, to: f.to, total: rows.length, truncated: false });
    expect(new Map(body.groups.map((g: { key: string | null; count: number }) => [g.key, g.count]))).toEqual(expected);
    if (groupBy === "day") {
      const keys = body.groups.map((g: { key: string }) => g.key);
      expect(keys).toEqual([...keys].sort());
    } else {
      const counts = body.groups.map((g: { count: number }) => g.count);
      expect(counts).toEqual([...counts].sort((a, b) => b - a));
    }
    if (groupBy === "secret") {
      expect(body.groups.find((g: { key: string | null }) => g.key !== null).secret_name).toMatch(/^SECRET_\d$/);
    }
  });

  it("defaults to the last 30 days and records the call with its grouping", async () => {
    const before = await h.lastAuditId();
    const res = await h.request(`/stats?project_id=${h.projectId}&group_by=action`);
    const body = await res.json();
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(30 * 86_400_000);
    const [row] = await h.auditRowsAfter(before);
    expect(row).toMatchObject({ action: "audit_stats", outcome: "granted", details: { group_by: "action", filters: { from: body.from, to: body.to } } });
  });

  it("refuses a missing or unknown grouping and a reversed range, naming the parameter", async () => {
    for (const [qs, parameter] of [
      ["", "group_by"],
      ["&group_by=month", "group_by"],
      ["&group_by=day&from=2026-10-01&to=2026-09-01", "from"],
      ["&group_by=day&from=2099-01-01", "from"],
    ]) {
      const res = await h.request(`/stats?project_id=${h.projectId}${qs}`);
      expect(res.status, qs).toBe(400);
      expect((await res.json()).error.details[0].parameter).toBe(parameter);
    }
  });
});
