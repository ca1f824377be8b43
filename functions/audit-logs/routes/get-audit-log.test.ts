import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDITOR, createAuditLogsHarness, type AuditLogsHarness } from "../../../tests/support/audit-logs-harness.ts";

let h: AuditLogsHarness;
let ownId: string;
let otherId: string;
beforeAll(async () => {
  h = await createAuditLogsHarness();
  await h.recordAccess("runner-1", h.projectId, { secretName: "DB_PASSWORD", outcome: "denied", ip: "2001:db8::7" });
  ownId = await h.lastAuditId();
  await h.recordAccess("runner-1", h.otherProjectId, { secretName: "ELSEWHERE" });
  otherId = await h.lastAuditId();
});
afterAll(() => h?.close());

describe("GET /audit-logs/{id}", () => {
  it("returns the entry as the query API shows it, and records the lookup", async () => {
    const page = await (await h.request(`?project_id=${h.projectId}&secret_name=DB_PASSWORD`)).json();
    const before = await h.lastAuditId();
    const res = await h.request(`/${ownId}?project_id=${h.projectId}`);
    expect(res.status).toBe(200);
    const entry = await res.json();
    expect(entry).toEqual(page.data[0]);
    expect(entry).toMatchObject({ id: ownId, secret_name: "DB_PASSWORD", outcome: "denied", ip_address: "2001:db8::7", user_identity: "runner-1" });
    const rows = await h.auditRowsAfter(before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: "audit_get", outcome: "granted", user_identity: AUDITOR, details: { id: ownId } });
  });

  it("answers 404 for an id of another project or none, and records not_found", async () => {
    const before = await h.lastAuditId();
    for (const id of [otherId, "9223372036854775807"]) {
      const res = await h.request(`/${id}?project_id=${h.projectId}`);
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe("audit_log_not_found");
    }
    const rows = await h.auditRowsAfter(before);
    expect(rows.map((r) => r.outcome)).toEqual(["not_found", "not_found"]);
  });

  it.each([
    ["/0?project_id=P", "id"],
    ["/-1?project_id=P", "id"],
    ["/9223372036854775808?project_id=P", "id"],
    ["/12abc?project_id=P", "id"],
    ["/1", "project_id"],
    ["/1?project_id=nope", "project_id"],
    ["/1?project_id=P&extra=1", "extra"],
  ])("refuses %s with 400 naming %s", async (path, parameter) => {
    const res = await h.request(path.replace("P", h.projectId));
    expect(res.status).toBe(400);
    expect((await res.json()).error.details.map((d: { parameter: string }) => d.parameter)).toContain(parameter);
  });
});
