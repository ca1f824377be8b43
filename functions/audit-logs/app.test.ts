import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLogsHarness, type AuditLogsHarness } from "../../tests/support/audit-logs-harness.ts";

let h: AuditLogsHarness;
beforeAll(async () => {
  h = await createAuditLogsHarness();
});
afterAll(() => h?.close());

describe("GET /audit-logs/openapi.json", () => {
  it("serves an OpenAPI 3.1 document of every route, without a token, generated from the route schemas", async () => {
    const res = await h.request("/openapi.json", { token: null });
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(["/audit-logs", "/audit-logs/export", "/audit-logs/stats", "/audit-logs/stream", "/audit-logs/{id}"]);
    const list = doc.paths["/audit-logs"].get;
    expect(list.operationId).toBe("listAuditLogs");
    const params = list.parameters.map((p: { name: string; in: string; required?: boolean }) => `${p.in}:${p.name}${p.required ? "!" : ""}`);
    expect(params.sort()).toEqual([
      "query:access_type", "query:action", "query:cursor", "query:from", "query:ip", "query:limit", "query:outcome",
      "query:project_id!", "query:secret_id", "query:secret_name", "query:to", "query:user_identity",
    ]);
    expect(doc.paths["/audit-logs/stream"].get.parameters.map((p: { name: string }) => p.name)).toContain("last-event-id");
    expect(doc.components.schemas.AuditEntry.properties).toHaveProperty("ip_address");
    expect(list.responses["200"].content["application/json"].schema.$ref).toBe("#/components/schemas/AuditPage");
    for (const op of ["listAuditLogs", "getAuditLog", "auditLogStats", "exportAuditLogs", "streamAuditLogs"]) {
      const found = Object.values(doc.paths).some((p) => (p as { get: { operationId: string } }).get.operationId === op);
      expect(found, op).toBe(true);
    }
  });

  it("answers unknown routes with the error envelope", async () => {
    const res = await h.request("/nope/nested");
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("route_not_found");
  });
});
