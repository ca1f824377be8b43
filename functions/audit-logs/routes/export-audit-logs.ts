// GET /audit-logs/export?project_id=…&format=ndjson|csv[&filters…] — every matching entry, newest
// first, streamed from one COPY read as the client pulls: memory stays flat however many rows match. The export
// is recorded (with its filters) and committed before the first row is read.
import { createRoute, z } from "@hono/zod-openapi";
import { type AuditLogsApp, type AuditLogsDeps, forbidden, needsDirectTransport, trailContext } from "../app.ts";
import { csvHeader, csvLines, exportFilename } from "../export-format.ts";
import { commonErrorResponses, directConnectionErrorResponses, exportQuery, filtersOf } from "../schemas.ts";

/** About the size of one entry's JSON: the export's batch size in rows becomes pieces of bytes. */
const ENTRY_BYTES = 512;
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

    const batches = reader.exportEntries(c.var.caller, query.project_id, filters, gate.audit_id, deps.export.batchSize * ENTRY_BYTES);
    const encoder = new TextEncoder();
    const decoder = new TextDecoder("utf-8", { fatal: true });
    // NDJSON goes out as the database's bytes; CSV cells are built from each entry.
    const encode = query.format === "csv"
      ? (piece: Uint8Array) => encoder.encode(csvLines(decoder.decode(piece).split("\n").slice(0, -1)))
      : (piece: Uint8Array) => piece;
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
            const bytes = encode(next.value);
            if (bytes.byteLength > 0) controller.enqueue(bytes);
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
