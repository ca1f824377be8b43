// GET /audit-logs/{id}?project_id=… — one entry of a project the caller may audit.
import { createRoute } from "@hono/zod-openapi";
import { ApiError } from "../../../shared/errors.ts";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, trailContext } from "../app.ts";
import { errorResponse } from "../../../shared/openapi.ts";
import { auditEntry, commonErrorResponses, getParams, getQuery } from "../schemas.ts";

export const getAuditLogRoute = createRoute({
  operationId: "getAuditLog",
  method: "get",
  path: "/{id}",
  summary: "One entry by id; audited",
  security: [{ bearer: [] }],
  request: { params: getParams, query: getQuery },
  responses: {
    200: { description: "The entry", content: { "application/json": { schema: auditEntry } } },
    404: errorResponse("No entry with this id in this project"),
    ...commonErrorResponses,
  },
});

export function registerGetAuditLog(app: AuditLogsApp, deps: AuditLogsDeps): void {
  app.openapi(getAuditLogRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { project_id: projectId } = c.req.valid("query");
    const res = await deps.trail.get(trailContext(c, projectId), id);
    if (res.outcome === "denied") throw forbidden();
    if (res.outcome === "not_found") throw new ApiError(404, "audit_log_not_found", "No audit entry with this id in this project");
    return c.json(res.entry, 200);
  });
}
