// audit-archive: called by pg_cron (via pg_net) and by operators to keep audit partitions ready and
// move old ones to verified archives. Authenticated by a shared secret, not a user JWT.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { ApiError, handleAppError, notFoundHandler } from "../../shared/errors.ts";
import { validationHook } from "../../shared/validation.ts";
import type { ArchiveRoundReport } from "./archive-round.ts";
import { requireArchiveKey } from "./archive-key.ts";
import { registerRunArchive } from "./routes/run-archive.ts";

export const FUNCTION_NAME = "audit-archive";

export type AuditArchiveApp = OpenAPIHono;

export interface AuditArchiveDeps {
  /** The shared secret callers present; at least 32 characters. */
  archiveKey: string;
  runRound(opts: { dryRun: boolean }): Promise<ArchiveRoundReport>;
}

export function createAuditArchiveApp(deps: AuditArchiveDeps): AuditArchiveApp {
  if (deps.archiveKey.length < 32) throw new Error("the archive key must be at least 32 characters");
  const app = new OpenAPIHono({ defaultHook: validationHook }).basePath(`/${FUNCTION_NAME}`);
  app.onError(handleAppError);
  app.notFound(notFoundHandler);
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "audit-archive", version: "1.0.0", description: "Audit partition upkeep and archival" },
  });
  app.use("/", requireArchiveKey(deps.archiveKey));
  app.use(
    "/",
    bodyLimit({
      maxSize: 1024,
      onError: () => {
        throw new ApiError(413, "payload_too_large", "Request body exceeds 1024 bytes");
      },
    }),
  );
  registerRunArchive(app as AuditArchiveApp, deps);
  return app as AuditArchiveApp;
}
