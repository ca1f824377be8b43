// POST /audit-archive — one round of partition upkeep and archival (bounded; call again while
// `more_work` is true). `{"dry_run": true}` reports what would be created and archived, changing nothing.
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../shared/errors.ts";
import type { AuditArchiveApp, AuditArchiveDeps } from "../app.ts";
import { ArchiveIntegrityError, ArchiveLeaseLostError, describeFailure } from "../archive-round.ts";
import { ArchiveStorageError } from "../storage.ts";

export const runArchiveBody = z.strictObject({
  dry_run: z.boolean().optional().openapi({ description: "Report what would be done; change nothing" }),
}).openapi("RunArchiveRequest");

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi("ArchiveError");

const partitionReport = z.object({
  partition: z.string(),
  range_start: z.string(),
  range_end: z.string(),
  state: z.string(),
  chunks_stored: z.number().int(),
  rows_stored: z.number().int(),
  archive_path: z.string().optional(),
});

export const runArchiveRoute = createRoute({
  operationId: "runArchive",
  method: "post",
  path: "/",
  summary: "Run one bounded round of audit partition upkeep and archival",
  // The body (runArchiveBody, optional) is parsed in the handler: pg_net and operators may send none,
  // or send it without a JSON content type, which the generated validator would refuse.
  description: 'Optional JSON body: {"dry_run": boolean}.',
  responses: {
    200: {
      description: "What this round did (or, dry run, would do)",
      content: {
        "application/json": {
          schema: z.object({
            run_id: z.string(),
            dry_run: z.boolean(),
            partitions_ready: z.array(z.string()),
            due: z.array(z.object({
              partition: z.string(),
              range_start: z.string(),
              range_end: z.string(),
              rows: z.number().int(),
              archive_state: z.string().nullable(),
            })).optional(),
            archived: z.array(partitionReport),
            more_work: z.boolean(),
          }),
        },
      },
    },
    400: { description: "Invalid body", content: { "application/json": { schema: errorSchema } } },
    401: { description: "Missing or wrong archive key", content: { "application/json": { schema: errorSchema } } },
    409: { description: "Another run took over this partition", content: { "application/json": { schema: errorSchema } } },
    503: { description: "Storage failed; the partition stays, the next call resumes", content: { "application/json": { schema: errorSchema } } },
  },
});

async function readBody(text: string): Promise<z.infer<typeof runArchiveBody>> {
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "Request body must be a JSON object");
  }
  const result = runArchiveBody.safeParse(parsed);
  if (!result.success) {
    const details = result.error.issues.map((i) => ({ parameter: i.path.join(".") || "body", message: i.message }));
    throw new ApiError(400, "invalid_request", `Invalid ${details.map((d) => d.parameter).join(", ")}`, details);
  }
  return result.data;
}

export function registerRunArchive(app: AuditArchiveApp, deps: AuditArchiveDeps): void {
  app.openapi(runArchiveRoute, async (c) => {
    const body = await readBody(await c.req.text());
    try {
      const report = await deps.runRound({ dryRun: body.dry_run ?? false });
      return c.json(report, 200);
    } catch (err) {
      if (err instanceof ArchiveStorageError) {
        throw new ApiError(503, "archive_storage_unavailable", `${describeFailure(err)}; the partition stays in place and the next call resumes`);
      }
      if (err instanceof ArchiveLeaseLostError) {
        throw new ApiError(409, "archive_conflict", `${describeFailure(err)}; another run continues it`);
      }
      if (err instanceof ArchiveIntegrityError) {
        throw new ApiError(500, "archive_integrity_error", describeFailure(err));
      }
      throw err;
    }
  });
}
