// Builds audit-archive from configuration: the one place its dependencies are chosen.
import type { AppConfig } from "../../shared/config.ts";
import { createAuditArchiveApp } from "./app.ts";
import { createArchiveRunner } from "./runner.ts";

export async function createFunctionServer(config: AppConfig) {
  const archive = config.archive;
  if (!archive.key) throw new Error("invalid configuration: AUDIT_ARCHIVE_KEY is required to serve audit-archive");
  const runner = createArchiveRunner(archive, { log: (line) => console.log(line) });
  const app = createAuditArchiveApp({ archiveKey: archive.key, runRound: (opts) => runner.runRound(opts) });
  return { fetch: (req: Request) => app.fetch(req), close: () => runner.close() };
}
