// audit-logs: the auditors' API over the trail — filtered query with keyset pagination, lookup by
// id, stats, streamed export and a live stream. Every route authenticates the caller, lets the
// database check audit:read on the project and record the look, and shapes the HTTP answer. The
// app is a value built from its dependencies, so tests call it with app.request().
import { OpenAPIHono } from "@hono/zod-openapi";
import { type CallerVariables, type JwtVerifier, requireCaller } from "../../shared/auth.ts";
import { ApiError, handleAppError, notFoundHandler } from "../../shared/errors.ts";
import { requestContext, type RequestContextVariables } from "../../shared/request-context.ts";
import { validationHook } from "../../shared/validation.ts";
import type { AuditTrail, TrailContext } from "./audit-trail.ts";
import type { CursorCodec } from "./cursor.ts";
import type { DirectAuditReader } from "./direct-reader.ts";
import type { AuditNotificationHub } from "./live-stream.ts";
import { registerListAuditLogs } from "./routes/list-audit-logs.ts";
import { registerAuditLogStats } from "./routes/audit-log-stats.ts";
import { registerExportAuditLogs } from "./routes/export-audit-logs.ts";
import { registerStreamAuditLogs } from "./routes/stream-audit-logs.ts";
import { registerGetAuditLog } from "./routes/get-audit-log.ts";

export const FUNCTION_NAME = "audit-logs";

export type AuditLogsEnv = { Variables: CallerVariables & RequestContextVariables };
export type AuditLogsApp = OpenAPIHono<AuditLogsEnv>;

/** Reads that need a direct database connection; absent on the Data API transport. */
export interface DirectReads {
  reader: DirectAuditReader;
  hub: AuditNotificationHub;
}

export interface AuditLogsDeps {
  verifyJwt: JwtVerifier;
  trail: AuditTrail;
  cursors: CursorCodec;
  direct?: DirectReads;
  trustedProxyHops: number;
  stream: { heartbeatMs: number; batchSize: number };
  export: { batchSize: number };
  /** For unexpected failures inside a stream (names only, never messages). */
  logError?: (line: string) => void;
}

export function createAuditLogsApp(deps: AuditLogsDeps): AuditLogsApp {
  const app = new OpenAPIHono<AuditLogsEnv>({ defaultHook: validationHook }).basePath(`/${FUNCTION_NAME}`);
  app.onError(handleAppError);
  app.notFound(notFoundHandler);

  // Public: the contract, generated from the same zod schemas the routes validate with.
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "audit-logs",
      version: "1.0.0",
      description:
        "Query, export and watch the secret-access audit trail. Needs audit:read on the project; every call is itself recorded in the trail.",
    },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", bearerFormat: "JWT" });

  app.use("*", requestContext(deps.trustedProxyHops));
  app.use("*", requireCaller(deps.verifyJwt));

  registerListAuditLogs(app, deps);
  registerAuditLogStats(app, deps);
  registerExportAuditLogs(app, deps);
  registerStreamAuditLogs(app, deps);
  registerGetAuditLog(app, deps);
  return app;
}

/** 403 for a caller without audit:read, identical whether or not the project exists or has records. */
export function forbidden(): ApiError {
  return new ApiError(403, "forbidden", "The caller does not have audit:read on this project");
}

export function trailContext(c: { var: AuditLogsEnv["Variables"] }, projectId: string): TrailContext {
  return { caller: c.var.caller, audit: c.var.audit, projectId };
}

/** 501 for the routes that need the direct transport, in the one error envelope. */
export function needsDirectTransport(): Response {
  return new Response(
    JSON.stringify({
      error: {
        code: "direct_transport_required",
        message: "This route needs the direct database transport (SUPABASE_DB_URL); it is not available over the Data API",
      },
    }),
    { status: 501, headers: { "content-type": "application/json" } },
  );
}
