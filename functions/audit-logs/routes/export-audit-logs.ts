// GET /audit-logs/export?project_id=…&format=ndjson|csv[&filters…] — every matching entry, newest
// first, streamed from a server-side cursor: memory stays flat however many rows match. The export
// is recorded (with its filters) and committed before the first row is read.
import { createRoute, z } from "@hono/zod-openapi";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, needsDirectTransport, trailContext } from "../app.ts";
import { csvHeader, csvLines, exportFilename, ndjsonLines } from "../export-format.ts";
import { commonErrorResponses, directConnectionErrorResponses, exportQuery, filtersOf } from "../schemas.ts";

const CONTENT_TYPES = { ndjson: "application/x-ndjson; charset=utf-8", csv: "text/csv; charset=utf-8; header=present" } as const;

export const exportAuditLogsRoute = createRoute({
  operationId: "exportAuditLogs",
  method: "get",
  path: "/export",
  summary: "Export matching entries as NDJSON or CSV (RFC 4180, formula cells neutralised), streamed; audited",
  security: [{ bearer: [] }],
  request: { query: exportQuery },
  responses: {
    200: {
      description: "The entries, newest first, as an attachment",
      headers: z.object({ "content-disposition": z.string().openapi({ example: 'attachment; filename="audit-logs_<project>_20261127T101500Z.ndjson"' }) }),
      content: {
        "application/x-ndjson": { schema: z.string().openapi({ description: "One AuditEntry JSON object per line" }) },
        "text/csv": { schema: z.string().openapi({ description: "Header row, then one entry per row" }) },
      },
    },
    ...commonErrorResponses,
    ...directConnectionErrorResponses,
  },
});

export function registerExportAuditLogs(app: AuditLogsApp, deps: AuditLogsDeps): void {
  app.openapi(exportAuditLogsRoute, async (c) => {
    const query = c.req.valid("query");
    if (!deps.direct) return needsDirectTransport();
    const { reader } = deps.direct;
    const filters = filtersOf(query);
    const ctx = trailContext(c, query.project_id);
    const gate = await deps.trail.authorizeRead(ctx, "audit_export", filters, { format: query.format });
    if (gate.outcome !== "granted") throw forbidden();

    const encode = query.format === "csv" ? csvLines : ndjsonLines;
    const batches = reader.exportEntries(c.var.caller, query.project_id, filters, gate.audit_id, deps.export.batchSize);
    const encoder = new TextEncoder();
    let headerSent = query.format !== "csv";
    const body = new ReadableStream<Uint8Array>(
      {
        // Pulled only as fast as the client reads: one batch in flight at a time.
        async pull(controller) {
          try {
            if (!headerSent) {
              headerSent = true;
              controller.enqueue(encoder.encode(csvHeader()));
              return;
            }
            const next = await batches.next();
            if (next.done) return controller.close();
            const text = encode(next.value);
            if (text.length > 0) controller.enqueue(encoder.encode(text));
          } catch (err) {
            deps.logError?.(`audit export failed: ${err instanceof Error ? err.name : typeof err}`);
            // Ends the transfer abnormally, so a client cannot mistake a cut export for a whole one.
            controller.error(new Error("export failed"));
            await batches.return(undefined).catch(() => {});
          }
        },
        async cancel() {
          await batches.return(undefined);
        },
      },
      { highWaterMark: 1 },
    );
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": CONTENT_TYPES[query.format],
        "content-disposition": `attachment; filename="${exportFilename(query.project_id, query.format, new Date())}"`,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "x-request-id": c.var.audit.request_id,
      },
    });
  });
}
