// GET /audit-logs/stream?project_id=…[&filters…] — Server-Sent Events of new matching entries,
// with heartbeats and Last-Event-ID resume (see live-stream.ts for why resuming has no gap and no
// duplicate). The stream's opening is recorded; audit:read is re-checked on every poll.
import { createRoute, z } from "@hono/zod-openapi";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, needsDirectTransport, trailContext } from "../app.ts";
import { decodeStreamState, liveAuditStream } from "../live-stream.ts";
import { auditFilterQuery, commonErrorResponses, directConnectionErrorResponses, filtersOf } from "../schemas.ts";

const streamHeaders = z.object({
  "last-event-id": z
    .string()
    .max(24_000)
    .refine((v) => decodeStreamState(v) !== null, { message: "is not a position this stream issued" })
    .optional()
    .openapi({ param: { name: "last-event-id", in: "header" }, description: "The id of the last event received, to resume without gap or duplicate" }),
});

export const streamAuditLogsRoute = createRoute({
  operationId: "streamAuditLogs",
  method: "get",
  path: "/stream",
  summary: "Live Server-Sent Events of new matching entries (event: audit_log, data: AuditEntry); audited",
  security: [{ bearer: [] }],
  request: { query: auditFilterQuery, headers: streamHeaders },
  responses: {
    200: {
      description: "text/event-stream; comments `: heartbeat` keep the connection alive",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...commonErrorResponses,
    ...directConnectionErrorResponses,
  },
});

export function registerStreamAuditLogs(app: AuditLogsApp, deps: AuditLogsDeps): void {
  app.openapi(streamAuditLogsRoute, async (c) => {
    const query = c.req.valid("query");
    const lastEventId = c.req.valid("header")["last-event-id"];
    if (!deps.direct) return needsDirectTransport();
    const { reader, hub } = deps.direct;
    const filters = filtersOf(query);
    const resumeFrom = lastEventId === undefined ? null : decodeStreamState(lastEventId);
    const gate = await deps.trail.authorizeRead(trailContext(c, query.project_id), "audit_stream", filters, {
      resumed: resumeFrom !== null,
    });
    if (gate.outcome !== "granted") throw forbidden();
    const start = resumeFrom ?? (await reader.initialStreamState());

    const body = liveAuditStream({
      reader,
      hub,
      caller: c.var.caller,
      projectId: query.project_id,
      filters,
      start,
      ownAuditId: gate.audit_id,
      heartbeatMs: deps.stream.heartbeatMs,
      batchSize: deps.stream.batchSize,
      signal: c.req.raw.signal,
      onError: (err) => deps.logError?.(`audit stream failed: ${err instanceof Error ? err.name : typeof err}`),
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": c.var.audit.request_id,
      },
    });
  });
}
