// One round of audit upkeep: make sure the coming months' partitions exist, then archive partitions
// older than the retention window, a bounded amount of work per call, resuming where the last call
// (or a killed one) stopped. Per partition:
//
//   claim ─► for each chunk of rows (ascending id):
//              export (gzip NDJSON) ─► record checksum in catalogue ─► upload (no overwrite)
//              ─► read back + compare ─► mark verified
//          ─► all rows exported ─► manifest: record ─► upload ─► read back ─► archive verified
//          ─► drop the partition (SQL function: re-checks everything, drops, catalogues, one commit)
//
// Every catalogue write is fenced by the run's lease, so a run that lost its claim (stalled past
// the lease, then woke up) cannot change anything. A rerun after a crash at any arrow finds the
// catalogue's record of what happened and continues: an object already uploaded is recognised by
// its recorded checksum, nothing is uploaded twice under a new name, no row is left out.
import type { Sql, TransactionSql } from "postgres";
import type { ArchiveConfig } from "../../shared/config.ts";
import {
  ARCHIVE_FORMAT,
  ARCHIVE_FORMAT_VERSION,
  type ArchiveManifest,
  CHUNK_CONTENT_TYPE,
  chunkPath,
  encodeManifest,
  GzipWriter,
  MANIFEST_CONTENT_TYPE,
  manifestPath,
  sha256Hex,
} from "./archive-format.ts";
import { copyOut } from "../../shared/copy-out.ts";
import { auditRowEncoding, type RowEncoding } from "./row-encoding.ts";
import { ArchiveStorageError, type ArchiveStorage } from "./storage.ts";

export type ArchiveSettings = Pick<
  ArchiveConfig,
  "retentionDays" | "partitionsAhead" | "chunkRows" | "maxChunksPerCall" | "timeBudgetMs" | "leaseSeconds"
>;

/** Points between steps; a test hook may stop a run at any of them to simulate a kill. */
export type ArchiveStep =
  | "partitions-ready"
  | "claimed"
  | "chunk-exported" //   rows compressed, nothing recorded yet
  | "chunk-recorded" //   catalogue holds the chunk's checksum; not uploaded yet
  | "chunk-uploaded" //   object stored; not read back yet
  | "chunk-verified" //   read back and matched; catalogue not updated yet
  | "chunk-catalogued" // catalogue marks the chunk verified
  | "export-complete" //  every row is in a recorded chunk
  | "manifest-recorded"
  | "manifest-uploaded"
  | "manifest-verified"
  | "archive-verified" // catalogued as verified: the moment before the drop
  | "partition-dropped";

export interface StepEvent {
  step: ArchiveStep;
  partition?: string;
  seq?: number;
}

export interface ArchiveRoundDeps {
  /** Connected as the schema owner (the function's SUPABASE_DB_URL). */
  sql: Sql;
  storage: ArchiveStorage;
  settings: ArchiveSettings;
  onStep?: (event: StepEvent) => void | Promise<void>;
  log?: (line: string) => void;
}

export interface PartitionReport {
  partition: string;
  range_start: string;
  range_end: string;
  /** Catalogue state at the end of this round ('dropped' = archived and gone from the hot table). */
  state: string;
  chunks_stored: number;
  rows_stored: number;
  archive_path?: string;
}

export interface DuePartition {
  partition: string;
  range_start: string;
  range_end: string;
  rows: number;
  archive_state: string | null;
}

export interface ArchiveRoundReport {
  run_id: string;
  dry_run: boolean;
  /** Partitions for this month and the months ahead (dry run: the ones that would be created). */
  partitions_ready: string[];
  /** Dry run: what would be archived. */
  due?: DuePartition[];
  archived: PartitionReport[];
  /** Work remains for a later call (budget used up, or more partitions due). */
  more_work: boolean;
}

export class ArchiveLeaseLostError extends Error {
  override readonly name = "ArchiveLeaseLostError";
  constructor(partition: string) {
    super(`this run no longer holds the lease on ${partition}`);
  }
}

export class ArchiveIntegrityError extends Error {
  override readonly name = "ArchiveIntegrityError";
}

interface ArchiveRow {
  partition_name: string;
  range_start: Date;
  range_end: Date;
  archive_id: string;
  path_prefix: string;
  format_version: number;
  chunk_rows: number;
  state: "exporting" | "exported" | "verified" | "dropped";
  exported_through_id: string | null;
  row_count: string | null;
  first_id: string | null;
  last_id: string | null;
  manifest_path: string | null;
  manifest_sha256: string | null;
  manifest_bytes: string | null;
  created_at: Date;
}

interface ChunkRow {
  partition_name: string;
  seq: number;
  path: string;
  first_id: string;
  last_id: string;
  row_count: number;
  sha256: string;
  byte_size: string;
  verified_at: Date | null;
}

interface ExportedChunk {
  bytes: Uint8Array;
  rows: number;
  firstId: string;
  lastId: string;
}

const PARTITION_NAME = /^audit_logs_p[0-9]{4}_[0-9]{2}$/;
const MIN_BIGINT = "-9223372036854775808";
/** An occupied or corrupted path makes the object move to `….rN.…`; this many times per object and call. */
const MAX_PATH_MOVES = 3;
/** SQLSTATEs the archive's SQL functions raise with messages they author. */
const OWN_SQL_REFUSALS = new Set(["55000", "55P03", "P0002"]);

export async function runArchiveRound(
  deps: ArchiveRoundDeps,
  opts: { dryRun?: boolean; runId?: string } = {},
): Promise<ArchiveRoundReport> {
  const runId = opts.runId ?? crypto.randomUUID();
  const { sql, settings } = deps;
  const retention = `${settings.retentionDays} days`;

  if (opts.dryRun) {
    const missing = await sql<{ name: string }[]>`
      select format('audit_logs_p%s', to_char(m, 'YYYY_MM')) as name
      from generate_series(0, ${settings.partitionsAhead}::int) as g,
        lateral (select (date_trunc('month', now() at time zone 'UTC') + make_interval(months => g))::date as m) x
      where to_regclass(format('audit_partitions.audit_logs_p%s', to_char(m, 'YYYY_MM'))) is null
      order by m`;
    return {
      run_id: runId,
      dry_run: true,
      partitions_ready: missing.map((r) => r.name),
      due: await duePartitions(sql, retention),
      archived: [],
      more_work: false,
    };
  }

  const partitionsReady = await ensurePartitions(sql, settings.partitionsAhead);
  await deps.onStep?.({ step: "partitions-ready" });

  const round = new Round(deps, runId);
  const archived: PartitionReport[] = [];
  while (round.budgetLeft()) {
    const [claimed] = await sql<ArchiveRow[]>`
      select * from secret_store.claim_audit_archive(
        ${runId}::uuid, ${retention}::interval, ${settings.leaseSeconds}::int,
        ${ARCHIVE_FORMAT_VERSION}::int, ${settings.chunkRows}::int)`;
    if (!claimed) break;
    await deps.onStep?.({ step: "claimed", partition: claimed.partition_name });
    const report = await round.archivePartition(claimed);
    archived.push(report);
    if (report.state !== "dropped") break;
  }

  const [{ remaining }] = await sql<{ remaining: boolean }[]>`
    select exists (select 1 from secret_store.audit_partitions_due(${retention}::interval)) as remaining`;
  return {
    run_id: runId,
    dry_run: false,
    partitions_ready: partitionsReady,
    archived,
    more_work: remaining,
  };
}

/** Creates this month's and the coming months' partitions; one upkeep at a time. */
export async function ensurePartitions(sql: Sql, monthsAhead: number): Promise<string[]> {
  return await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('secret_store.audit_partition_upkeep'))`;
    const rows = await tx<{ name: string }[]>`select secret_store.ensure_audit_partitions(${monthsAhead}::int) as name`;
    return rows.map((r) => r.name);
  });
}

export async function duePartitions(sql: Sql, retention: string): Promise<DuePartition[]> {
  const due = await sql<{ partition_name: string; range_start: Date; range_end: Date; archive_state: string | null }[]>`
    select * from secret_store.audit_partitions_due(${retention}::interval)`;
  const out: DuePartition[] = [];
  for (const d of due) {
    if (!PARTITION_NAME.test(d.partition_name)) continue;
    const [{ n }] = await sql.unsafe<{ n: string }[]>(`select count(*) as n from audit_partitions."${d.partition_name}"`);
    out.push({
      partition: d.partition_name,
      range_start: d.range_start.toISOString(),
      range_end: d.range_end.toISOString(),
      rows: Number(n),
      archive_state: d.archive_state,
    });
  }
  return out;
}

class Round {
  private readonly startedAt = performance.now();
  private chunksStored = 0;
  private encoding?: Promise<RowEncoding>;
  private readonly log: (line: string) => void;

  constructor(private readonly deps: ArchiveRoundDeps, private readonly runId: string) {
    this.log = deps.log ?? (() => {});
  }

  budgetLeft(): boolean {
    const { maxChunksPerCall, timeBudgetMs } = this.deps.settings;
    return this.chunksStored < maxChunksPerCall && performance.now() - this.startedAt < timeBudgetMs;
  }

  private step(event: StepEvent): void | Promise<void> {
    return this.deps.onStep?.(event);
  }

  async archivePartition(claimed: ArchiveRow): Promise<PartitionReport> {
    const partition = claimed.partition_name;
    if (!PARTITION_NAME.test(partition)) throw new Error("unexpected partition name");
    const report: PartitionReport = {
      partition,
      range_start: claimed.range_start.toISOString(),
      range_end: claimed.range_end.toISOString(),
      state: claimed.state,
      chunks_stored: 0,
      rows_stored: 0,
      archive_path: claimed.path_prefix,
    };
    try {
      await this.archiveSteps(claimed, report);
    } catch (err) {
      await this.recordFailure(partition, err);
      throw err;
    }
    if (report.state !== "dropped") await this.releaseLease(partition);
    return report;
  }

  private async archiveSteps(claimed: ArchiveRow, report: PartitionReport): Promise<void> {
    const { sql } = this.deps;
    const partition = claimed.partition_name;
    let archive = claimed;

    // 1. Chunks recorded by an earlier call but not verified: finish them first.
    const unfinished = await sql<ChunkRow[]>`
      select * from secret_store.audit_archive_chunks
      where partition_name = ${partition} and verified_at is null order by seq`;
    for (const chunk of unfinished) {
      if (!this.budgetLeft()) return;
      await this.resumeChunk(archive, chunk);
      this.countStored(report, chunk.row_count);
    }

    // 2. New chunks, from where the last recorded one ended.
    while (archive.state === "exporting") {
      if (!this.budgetLeft()) return;
      const [{ next_seq }] = await sql<{ next_seq: number }[]>`
        select coalesce(max(seq), 0) + 1 as next_seq from secret_store.audit_archive_chunks
        where partition_name = ${partition}`;
      const after = archive.exported_through_id ?? MIN_BIGINT;
      const exported = await this.exportRows(partition, { after, limit: archive.chunk_rows });
      if (!exported) {
        archive = await this.completeExport(archive);
        report.state = archive.state;
        await this.step({ step: "export-complete", partition });
        break;
      }
      await this.step({ step: "chunk-exported", partition, seq: next_seq });
      const chunk = await this.recordChunk(archive, next_seq, after, exported);
      archive = { ...archive, exported_through_id: exported.lastId };
      await this.step({ step: "chunk-recorded", partition, seq: next_seq });
      await this.storeVerified(archive, chunk, exported.bytes, { knownAbsent: true });
      this.countStored(report, exported.rows);
    }

    // 3. The manifest, once every chunk is verified.
    if (archive.state === "exported") {
      archive = await this.storeManifest(archive);
      report.state = archive.state;
    }

    // 4. The drop: the SQL function re-checks the archive and the partition, and catalogues it.
    if (archive.state === "verified") {
      await this.step({ step: "archive-verified", partition });
      await sql`select secret_store.drop_archived_audit_partition(${partition}, ${this.runId}::uuid)`;
      report.state = "dropped";
      this.log(`audit-archive: ${partition} archived (${archive.row_count} rows) and dropped`);
      await this.step({ step: "partition-dropped", partition });
    }
  }

  private countStored(report: PartitionReport, rows: number): void {
    this.chunksStored++;
    report.chunks_stored++;
    report.rows_stored += rows;
  }

  /** Rows after an id (a new chunk) or within an id range (re-export of a recorded chunk). */
  private async exportRows(
    partition: string,
    range: { after: string; limit: number } | { first: string; last: string },
  ): Promise<ExportedChunk | null> {
    this.encoding ??= auditRowEncoding(this.deps.sql);
    const encoding = await this.encoding;
    // Only validated identifiers and integers reach the statement (COPY takes no parameters).
    if (!PARTITION_NAME.test(partition)) throw new Error("unexpected partition name");
    const where = "after" in range
      ? `t.id > ${bigintLiteral(range.after)} order by t.id limit ${rowLimit(range.limit)}`
      : `t.id >= ${bigintLiteral(range.first)} and t.id <= ${bigintLiteral(range.last)} order by t.id`;
    const statement = `copy (select ${encoding.selectList} from audit_partitions."${partition}" t where ${where}) to stdout`;
    return await this.deps.sql.begin(async (tx) => {
      // Text output the encoder expects, whatever the connection's settings.
      await tx`set local timezone = 'UTC'`;
      await tx`set local datestyle = 'ISO, YMD'`;
      // One COPY per chunk, read as it arrives: rows are encoded from COPY's bytes a socket read
      // at a time and handed to gzip (compressing on zlib's thread) in pieces of ~256 KB.
      const gzip = new GzipWriter();
      const lines = encoding.copyEncoder();
      for await (const chunk of copyOut(tx.unsafe(statement))) {
        const piece = lines.push(chunk);
        if (piece) await gzip.write(piece);
      }
      const last = lines.finish();
      if (last) await gzip.write(last);
      const bytes = await gzip.finish();
      if (lines.rows === 0) return null;
      return { bytes, rows: lines.rows, firstId: lines.firstId, lastId: lines.lastId };
    });
  }

  /** Runs fn in a transaction that first renews this run's lease, or fails if it lost it. */
  private async fenced<T>(partition: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    return await this.deps.sql.begin(async (tx) => {
      const held = await tx`
        update secret_store.audit_archives
        set lease_expires_at = now() + make_interval(secs => ${this.deps.settings.leaseSeconds}::int), updated_at = now()
        where partition_name = ${partition} and lease_owner = ${this.runId}::uuid and lease_expires_at > now()
        returning partition_name`;
      if (held.length === 0) throw new ArchiveLeaseLostError(partition);
      return await fn(tx);
    }) as T;
  }

  private async recordChunk(archive: ArchiveRow, seq: number, after: string, exported: ExportedChunk): Promise<ChunkRow> {
    const partition = archive.partition_name;
    const sha256 = await sha256Hex(exported.bytes);
    return await this.fenced(partition, async (tx) => {
      const moved = await tx`
        update secret_store.audit_archives set exported_through_id = ${exported.lastId}::bigint
        where partition_name = ${partition} and state = 'exporting'
          and coalesce(exported_through_id, ${MIN_BIGINT}::bigint) = ${after}::bigint
        returning partition_name`;
      if (moved.length === 0) throw new ArchiveLeaseLostError(partition);
      const [chunk] = await tx<ChunkRow[]>`
        insert into secret_store.audit_archive_chunks
          (partition_name, seq, path, first_id, last_id, row_count, sha256, byte_size)
        values (${partition}, ${seq}, ${chunkPath(archive.path_prefix, seq)}, ${exported.firstId}::bigint,
                ${exported.lastId}::bigint, ${exported.rows}, ${sha256}, ${exported.bytes.byteLength})
        returning *`;
      return chunk;
    });
  }

  private async resumeChunk(archive: ArchiveRow, chunk: ChunkRow): Promise<void> {
    const { storage } = this.deps;
    const partition = archive.partition_name;
    const stored = await storage.get(chunk.path);
    if (stored && (await matches(stored, chunk.sha256, Number(chunk.byte_size)))) {
      await this.step({ step: "chunk-verified", partition, seq: chunk.seq });
      await this.markChunkVerified(chunk);
      await this.step({ step: "chunk-catalogued", partition, seq: chunk.seq });
      return;
    }
    // Not uploaded (or something else sits there): export the recorded id range again.
    const exported = await this.exportRows(partition, { first: chunk.first_id, last: chunk.last_id });
    if (!exported || exported.rows !== chunk.row_count) {
      throw new ArchiveIntegrityError(
        `${partition} chunk ${chunk.seq}: ids ${chunk.first_id}..${chunk.last_id} now hold ${exported?.rows ?? 0} rows, ${chunk.row_count} recorded`,
      );
    }
    const sha256 = await sha256Hex(exported.bytes);
    let current = chunk;
    if (sha256 !== chunk.sha256 || exported.bytes.byteLength !== Number(chunk.byte_size)) {
      // Same rows, different compressed bytes (another runtime's gzip): record the new digest.
      current = await this.fenced(partition, async (tx) => {
        const [updated] = await tx<ChunkRow[]>`
          update secret_store.audit_archive_chunks set sha256 = ${sha256}, byte_size = ${exported.bytes.byteLength}
          where partition_name = ${partition} and seq = ${chunk.seq} and verified_at is null returning *`;
        return updated;
      });
    }
    await this.storeVerified(archive, current, exported.bytes, { knownAbsent: stored === null });
  }

  /** Upload (never overwriting), read back, compare; then mark the chunk verified in the catalogue. */
  private async storeVerified(archive: ArchiveRow, chunk: ChunkRow, bytes: Uint8Array, opts: { knownAbsent: boolean }) {
    const partition = archive.partition_name;
    const path = await this.placeObject(
      { partition, seq: chunk.seq, kind: "chunk", path: chunk.path, sha256: chunk.sha256, size: Number(chunk.byte_size) },
      bytes,
      CHUNK_CONTENT_TYPE,
      opts.knownAbsent,
      (tx, newPath) => tx`
        update secret_store.audit_archive_chunks set path = ${newPath}
        where partition_name = ${partition} and seq = ${chunk.seq} and verified_at is null`,
    );
    await this.markChunkVerified({ ...chunk, path });
    await this.step({ step: "chunk-catalogued", partition, seq: chunk.seq });
    this.log(`audit-archive: ${partition} chunk ${chunk.seq} stored and verified (${chunk.row_count} rows)`);
  }

  private async markChunkVerified(chunk: ChunkRow): Promise<void> {
    await this.fenced(chunk.partition_name, async (tx) => {
      const done = await tx`
        update secret_store.audit_archive_chunks set verified_at = now()
        where partition_name = ${chunk.partition_name} and seq = ${chunk.seq}
          and sha256 = ${chunk.sha256} and verified_at is null
        returning seq`;
      if (done.length === 0) throw new ArchiveIntegrityError(`${chunk.partition_name} chunk ${chunk.seq} changed while it was stored`);
    });
  }

  /**
   * Puts bytes at the object's path unless something is there, then reads the path back. If what is
   * there is not these bytes (a foreign object, or a store that returned something else), the object
   * moves to a fresh path (`….r2.…`), recorded first, and the other object is left untouched.
   * Returns the path where the verified object now is.
   */
  private async placeObject(
    target: { partition: string; seq?: number; kind: "chunk" | "manifest"; path: string; sha256: string; size: number },
    bytes: Uint8Array,
    contentType: string,
    knownAbsent: boolean,
    recordPath: (tx: TransactionSql, path: string) => Promise<unknown>,
  ): Promise<string> {
    const { storage } = this.deps;
    let path = target.path;
    let probe = !knownAbsent;
    for (let moves = 0; ; moves++) {
      let stored = probe ? await storage.get(path) : null;
      probe = true;
      if (stored === null) {
        await storage.put(path, bytes, contentType);
        await this.step({ step: `${target.kind}-uploaded`, partition: target.partition, seq: target.seq });
        stored = await storage.get(path);
        if (stored === null) throw new ArchiveStorageError("unavailable", "get", path);
      }
      if (await matches(stored, target.sha256, target.size)) {
        await this.step({ step: `${target.kind}-verified`, partition: target.partition, seq: target.seq });
        return path;
      }
      if (moves >= MAX_PATH_MOVES) {
        throw new ArchiveIntegrityError(`${target.partition} ${target.kind}: stored object does not match its checksum at ${path}`);
      }
      const next = nextAttemptPath(path);
      this.log(`audit-archive: ${path} holds other content; storing ${target.kind} at ${next} instead`);
      await this.fenced(target.partition, (tx) => recordPath(tx, next));
      path = next;
    }
  }

  private async completeExport(archive: ArchiveRow): Promise<ArchiveRow> {
    const partition = archive.partition_name;
    return await this.fenced(partition, async (tx) => {
      const [updated] = await tx<ArchiveRow[]>`
        update secret_store.audit_archives a
        set state = 'exported', row_count = c.rows, first_id = c.first_id, last_id = c.last_id,
            manifest_path = ${manifestPath(archive.path_prefix)}
        from (select coalesce(sum(row_count), 0) as rows, min(first_id) as first_id, max(last_id) as last_id
              from secret_store.audit_archive_chunks where partition_name = ${partition}) c
        where a.partition_name = ${partition} and a.state = 'exporting'
        returning a.*`;
      if (!updated) throw new ArchiveLeaseLostError(partition);
      return updated;
    });
  }

  private async storeManifest(archive: ArchiveRow): Promise<ArchiveRow> {
    const { sql } = this.deps;
    const partition = archive.partition_name;
    const chunks = await sql<ChunkRow[]>`
      select * from secret_store.audit_archive_chunks where partition_name = ${partition} order by seq`;
    if (chunks.some((c) => c.verified_at === null)) return archive;
    const bytes = encodeManifest(manifestFor(archive, chunks));
    const sha256 = await sha256Hex(bytes);
    let current = archive;
    if (archive.manifest_sha256 !== sha256 || Number(archive.manifest_bytes) !== bytes.byteLength) {
      [current] = await this.fenced(partition, (tx) => tx<ArchiveRow[]>`
        update secret_store.audit_archives set manifest_sha256 = ${sha256}, manifest_bytes = ${bytes.byteLength}
        where partition_name = ${partition} and state = 'exported' returning *`);
      await this.step({ step: "manifest-recorded", partition });
    }
    const path = await this.placeObject(
      { partition, kind: "manifest", path: current.manifest_path!, sha256, size: bytes.byteLength },
      bytes,
      MANIFEST_CONTENT_TYPE,
      false,
      (tx, newPath) => tx`
        update secret_store.audit_archives set manifest_path = ${newPath}
        where partition_name = ${partition} and state = 'exported'`,
    );
    const [verified] = await this.fenced(partition, (tx) => tx<ArchiveRow[]>`
      update secret_store.audit_archives set state = 'verified', verified_at = now(), manifest_path = ${path}
      where partition_name = ${partition} and state = 'exported' and manifest_sha256 = ${sha256}
      returning *`);
    if (!verified) throw new ArchiveIntegrityError(`${partition}: manifest changed while it was stored`);
    return verified;
  }

  private async releaseLease(partition: string): Promise<void> {
    await this.deps.sql`
      update secret_store.audit_archives set lease_owner = null, lease_expires_at = null
      where partition_name = ${partition} and lease_owner = ${this.runId}::uuid and state <> 'dropped'`;
  }

  /** Records why the partition is still here (our words only) and lets the next run take over. */
  private async recordFailure(partition: string, err: unknown): Promise<void> {
    const message = describeFailure(err);
    this.log(`audit-archive: ${partition}: ${message}`);
    try {
      await this.deps.sql`
        update secret_store.audit_archives
        set last_error = ${message.slice(0, 500)}, lease_owner = null, lease_expires_at = null, updated_at = now()
        where partition_name = ${partition} and lease_owner = ${this.runId}::uuid and state <> 'dropped'`;
    } catch {
      // The database is what failed; the lease then simply expires.
    }
  }
}

export function describeFailure(err: unknown): string {
  if (err instanceof ArchiveStorageError || err instanceof ArchiveLeaseLostError || err instanceof ArchiveIntegrityError) {
    return err.message;
  }
  // Refusals raised by our own SQL functions (their messages name partitions and counts only).
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === "string" && OWN_SQL_REFUSALS.has(code)) return `drop refused: ${err.message}`;
  return `internal error (${err instanceof Error ? err.name : typeof err})`;
}

export function manifestFor(archive: ArchiveRow, chunks: ChunkRow[]): ArchiveManifest {
  const rowCount = Number(archive.row_count ?? 0);
  return {
    format: ARCHIVE_FORMAT,
    format_version: ARCHIVE_FORMAT_VERSION,
    table: "public.audit_logs",
    partition: archive.partition_name,
    archive_id: archive.archive_id,
    time_range: { start: archive.range_start.toISOString(), end: archive.range_end.toISOString() },
    id_range: rowCount > 0 ? { first: String(archive.first_id), last: String(archive.last_id) } : null,
    row_count: rowCount,
    encoding: "ndjson+gzip",
    chunks: chunks.map((c) => ({
      seq: c.seq,
      path: c.path,
      first_id: String(c.first_id),
      last_id: String(c.last_id),
      row_count: c.row_count,
      sha256: c.sha256,
      bytes: Number(c.byte_size),
    })),
    archived_at: archive.created_at.toISOString(),
  };
}

/** A bigint as an SQL literal, for statements that take no parameters (COPY). */
function bigintLiteral(value: string): string {
  if (!/^-?[0-9]{1,19}$/.test(value) || BigInt(value) < -(2n ** 63n) || BigInt(value) >= 2n ** 63n) {
    throw new Error("unexpected id");
  }
  return `'${value}'::bigint`;
}

function rowLimit(value: number): string {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error("unexpected row limit");
  return String(value);
}

async function matches(bytes: Uint8Array, sha256: string, size: number): Promise<boolean> {
  return bytes.byteLength === size && (await sha256Hex(bytes)) === sha256;
}

/** chunk-000003.ndjson.gz → chunk-000003.r2.ndjson.gz → chunk-000003.r3.ndjson.gz; same for manifest.json. */
export function nextAttemptPath(path: string): string {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  const match = /^(chunk-[0-9]{6}|manifest)(?:\.r([0-9]+))?(\..+)$/.exec(name);
  if (!match) throw new Error(`unexpected archive object name: ${name}`);
  const attempt = match[2] ? Number(match[2]) + 1 : 2;
  return `${dir}${match[1]}.r${attempt}${match[3]}`;
}
