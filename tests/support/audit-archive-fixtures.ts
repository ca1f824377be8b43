// Fixtures for archival tests: old months of audit rows (time travel by timestamp, the database
// clock stays real), a temporary local archive store, and helpers to compare what left the table
// with what is in the archive.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sql } from "postgres";
import { verifyArchive, type ArchiveVerification } from "../../functions/audit-archive/archive-reader.ts";
import type { ArchiveSettings } from "../../functions/audit-archive/archive-round.ts";
import { createLocalArchiveStorage, type ArchiveStorage } from "../../functions/audit-archive/storage.ts";

export const TEST_SETTINGS: ArchiveSettings = {
  retentionDays: 90,
  partitionsAhead: 2,
  chunkRows: 50,
  maxChunksPerCall: 1_000,
  timeBudgetMs: 60_000,
  leaseSeconds: 60,
};

export function tempLocalStorage() {
  const dir = mkdtempSync(join(tmpdir(), "audit-archive-test-"));
  return createLocalArchiveStorage({ dir, bucket: "audit-archive" });
}

/** Creates the month's partition (empty, so nothing moves) and fills it with `rows` varied rows. */
export async function seedMonth(sql: Sql, month: string, rows: number): Promise<string> {
  const [{ name }] = await sql<{ name: string }[]>`select secret_store.create_audit_partition(${month}::date) as name`;
  await sql`
    insert into public.audit_logs (
      "timestamp", project_id, secret_id, secret_name, secret_version, access_type, action, outcome,
      user_identity, actor_type, ip_address, forwarded_for, user_agent, request_id, details)
    select
      (${month}::timestamp at time zone 'UTC') + interval '1 minute' * ((i * 37) % (27 * 24 * 60)) + interval '1 microsecond' * (i % 999983),
      ('00000000-0000-4000-8000-00000000000' || (i % 3)::text)::uuid,
      case when i % 5 = 0 then null else md5('secret' || (i % 7))::uuid end,
      'SECRET_' || (i % 7),
      case when i % 5 = 0 then null else 1 + i % 4 end,
      (array['read','write'])[1 + i % 2]::public.audit_access_type,
      (array['read','batch_read','list','create','update','delete'])[1 + i % 6]::public.audit_action,
      (array['granted','denied','not_found'])[1 + i % 3]::public.audit_outcome,
      'user-' || (i % 4),
      (array['user','service'])[1 + i % 2]::public.audit_actor_type,
      ('203.0.113.' || (i % 250))::inet,
      case when i % 2 = 0 then '198.51.100.1, 203.0.113.' || (i % 250) end,
      'agent/' || i || ' "quoted" \\ ü',
      'req-' || lpad(i::text, 8, '0'),
      case when i % 3 = 0 then jsonb_build_object('batch_size', i, 'note', E'line\nbreak') end
    from generate_series(1, ${rows}::int) as i`;
  return name;
}

/** The partition's rows exactly as the archive writes them (row_to_json, UTC), in id order. */
export async function partitionLines(sql: Sql, partition: string): Promise<string[]> {
  return await sql.begin(async (tx) => {
    await tx`set local timezone = 'UTC'`;
    const rows = await tx.unsafe<{ line: string }[]>(
      `select row_to_json(t)::text as line from audit_partitions."${partition}" t order by id`,
    );
    return rows.map((r) => r.line);
  });
}

export async function partitionExists(sql: Sql, partition: string): Promise<boolean> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`
    select to_regclass(${`audit_partitions.${partition}`}) is not null as exists`;
  return exists;
}

export async function catalogueEntry(sql: Sql, partition: string) {
  const [row] = await sql<{
    state: string;
    manifest_path: string | null;
    manifest_sha256: string | null;
    manifest_bytes: string | null;
    row_count: string | null;
    path_prefix: string;
    last_error: string | null;
    lease_owner: string | null;
  }[]>`select * from secret_store.audit_archives where partition_name = ${partition}`;
  return row;
}

/** Verifies the catalogued archive of a partition and returns its rows. */
export async function readArchivedLines(sql: Sql, storage: ArchiveStorage, partition: string): Promise<{ lines: string[]; verification: ArchiveVerification }> {
  const entry = await catalogueEntry(sql, partition);
  if (!entry?.manifest_path) throw new Error(`no manifest catalogued for ${partition}`);
  const lines: string[] = [];
  const verification = await verifyArchive(storage, {
    manifestPath: entry.manifest_path,
    manifestSha256: entry.manifest_sha256 ?? undefined,
    manifestBytes: entry.manifest_bytes === null ? undefined : Number(entry.manifest_bytes),
    rowCount: entry.row_count === null ? undefined : Number(entry.row_count),
    onRow: (line) => void lines.push(line),
  });
  return { lines, verification };
}

/** Ends a lease as if its time had passed (the run that held it was killed). */
export async function expireLeases(sql: Sql): Promise<void> {
  await sql`
    update secret_store.audit_archives set lease_expires_at = now() - interval '1 second'
    where lease_owner is not null and state <> 'dropped'`;
}

/** A storage that counts what happens to each path, and lets a test inject failures. */
export function instrumentedStorage(inner: ArchiveStorage, faults: {
  beforePut?: (path: string, attempt: number) => void | Promise<void>;
  afterPut?: (path: string, attempt: number) => void | Promise<void>;
  beforeGet?: (path: string, attempt: number) => void | Promise<void>;
} = {}) {
  const puts = new Map<string, { created: number; exists: number }>();
  const putAttempts = new Map<string, number>();
  const getAttempts = new Map<string, number>();
  const storage: ArchiveStorage = {
    description: `instrumented ${inner.description}`,
    async put(path, bytes, contentType) {
      const attempt = (putAttempts.get(path) ?? 0) + 1;
      putAttempts.set(path, attempt);
      await faults.beforePut?.(path, attempt);
      const result = await inner.put(path, bytes, contentType);
      const counts = puts.get(path) ?? { created: 0, exists: 0 };
      counts[result]++;
      puts.set(path, counts);
      await faults.afterPut?.(path, attempt);
      return result;
    },
    async get(path) {
      const attempt = (getAttempts.get(path) ?? 0) + 1;
      getAttempts.set(path, attempt);
      await faults.beforeGet?.(path, attempt);
      return inner.get(path);
    },
  };
  return { storage, puts };
}
