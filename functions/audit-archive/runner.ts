// Wires the archival round to its database and storage from configuration: shared by the Edge
// Function's server, the local stack's timer and the archive CLI.
import postgres, { type Sql } from "postgres";
import type { ArchiveConfig } from "../../shared/config.ts";
import { type ArchiveRoundReport, runArchiveRound } from "./archive-round.ts";
import { type ArchiveStorage, createLocalArchiveStorage } from "./storage.ts";
import { createSupabaseArchiveStorage } from "./supabase-storage.ts";

export interface ArchiveRunner {
  sql: Sql;
  storage: ArchiveStorage;
  runRound(opts?: { dryRun?: boolean }): Promise<ArchiveRoundReport>;
  close(): Promise<void>;
}

export function archiveStorageFromConfig(config: ArchiveConfig): ArchiveStorage {
  const s = config.storage;
  if (s.kind === "local") return createLocalArchiveStorage({ dir: s.dir, bucket: s.bucket });
  if (!config.supabaseUrl || !s.serviceRoleKey) {
    throw new Error("invalid configuration: Supabase Storage needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY");
  }
  return createSupabaseArchiveStorage({
    supabaseUrl: config.supabaseUrl,
    serviceRoleKey: s.serviceRoleKey,
    bucket: s.bucket,
    timeoutMs: s.timeoutMs,
    attempts: s.attempts,
  });
}

export function archiveDatabase(dbUrl: string): Sql {
  return postgres(dbUrl, {
    max: 3,
    onnotice: () => {},
    connection: { application_name: "audit-archive", TimeZone: "UTC" },
  });
}

export function createArchiveRunner(config: ArchiveConfig, opts: { log?: (line: string) => void } = {}): ArchiveRunner {
  if (!config.dbUrl) throw new Error("invalid configuration: SUPABASE_DB_URL is required for audit archival");
  const storage = archiveStorageFromConfig(config);
  const sql = archiveDatabase(config.dbUrl);
  return {
    sql,
    storage,
    runRound: (round = {}) => runArchiveRound({ sql, storage, settings: config, log: opts.log }, { dryRun: round.dryRun }),
    close: () => sql.end({ timeout: 5 }),
  };
}
