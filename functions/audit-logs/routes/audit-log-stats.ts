// GET /audit-logs/stats?project_id=…&group_by=day|secret|identity|action|outcome[&filters…]
// Counts over a range (default: the 30 days up to now), what a chart needs.
import { createRoute } from "@hono/zod-openapi";
import { ApiError } from "../../../shared/errors.ts";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, trailContext } from "../app.ts";
import { commonErrorResponses, filtersOf, statsQuery, statsResponse } from "../schemas.ts";

export const DEFAULT_STATS_DAYS = 30;
export const MAX_STATS_GROUPS = 1000;

export const auditLogStatsRoute = createRoute({
  operationId: "auditLogStats",
  method: "get",
  path: "/stats",
  summary: "Counts grouped by day (UTC), secret, identity, action or outcome over a range (default last 30 days); audited",
  security: [{ bearer: [] }],
  request: { query: statsQuery },
  responses: {
    200: { description: "Groups: days in order, otherwise the largest first", content: { "application/json": { schema: statsResponse } } },
    ...commonErrorResponses,
  },
});

function utcMicros(date: Date): string {
  return `${date.toISOString().slice(0, 19)}.${String(date.getUTCMilliseconds()).padStart(3, "0")}000Z`;
}

export function registerAuditLogStats(app: AuditLogsApp, deps: AuditLogsDeps): void {
  app.openapi(auditLogStatsRoute, async (c) => {
    const query = c.req.valid("query");
    const to = query.to ?? utcMicros(new Date());
    const from = query.from ?? utcMicros(new Date(Date.parse(to) - DEFAULT_STATS_DAYS * 86_400_000));
    if (from > to) {
      throw new ApiError(400, "invalid_request", "Invalid from", [{ parameter: "from", message: "must not be after to" }]);
    }
    const filters = { ...filtersOf(query), from, to };
    const res = await deps.trail.stats(trailContext(c, query.project_id), filters, query.group_by, MAX_STATS_GROUPS);
    if (res.outcome !== "granted") throw forbidden();
    const groups = res.groups.map((g) =>
      query.group_by === "secret" ? g : { key: g.key, count: g.count },
    );
    return c.json({ group_by: query.group_by, from, to, total: Number(res.total), truncated: res.truncated, groups }, 200);
  });
}
