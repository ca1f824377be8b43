// GET /audit-logs?project_id=…&filters… — a page of entries, newest first, with a keyset cursor.
import { createRoute } from "@hono/zod-openapi";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, trailContext } from "../app.ts";
import { auditPage, canonicalFilters, commonErrorResponses, filtersOf, listQuery } from "../schemas.ts";

export const listAuditLogsRoute = createRoute({
  operationId: "listAuditLogs",
  method: "get",
  path: "/",
  summary: "Query the trail: all filters combine with AND, a comma list means any of its values; audited",
  security: [{ bearer: [] }],
  request: { query: listQuery },
  responses: {
    200: { description: "A page of entries, newest first", content: { "application/json": { schema: auditPage } } },
    ...commonErrorResponses,
  },
});

export function registerListAuditLogs(app: AuditLogsApp, deps: AuditLogsDeps): void {
  app.openapi(listAuditLogsRoute, async (c) => {
    const query = c.req.valid("query");
    const filters = filtersOf(query);
    const canonical = canonicalFilters(filters);
    const before = query.cursor === undefined ? undefined : await deps.cursors.decode(query.cursor, query.project_id, canonical);
    // One more than the page, to know whether another page follows.
    const res = await deps.trail.query(trailContext(c, query.project_id), filters, query.limit + 1, before);
    if (res.outcome !== "granted") throw forbidden();
    const data = res.entries.slice(0, query.limit);
    const last = data[data.length - 1];
    const nextCursor =
      res.entries.length > query.limit && last
        ? await deps.cursors.encode(query.project_id, canonical, { timestamp: last.timestamp, id: last.id })
        : null;
    return c.json({ data, next_cursor: nextCursor }, 200);
  });
}
