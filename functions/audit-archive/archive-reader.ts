// Reading an archive back: fetch the manifest, check it against the catalogue's checksum, then every
// chunk's size and SHA-256, its gzip framing, its row count and id range against the manifest.
// Rows are handed out only from chunks that passed, so what `cat` prints is what was archived.
import { ChunkFormatError, chunkLines, lineId, type ArchiveManifest, manifestSchema, sha256Hex } from "./archive-format.ts";
import type { ArchiveStorage } from "./storage.ts";

export interface ArchiveProblem {
  /** "manifest" or the chunk's sequence number. */
  where: "manifest" | number;
  path: string;
  reason: string;
}

export interface ArchiveVerification {
  ok: boolean;
  manifest: ArchiveManifest | null;
  /** Rows in chunks that passed every check. */
  verifiedRows: number;
  problems: ArchiveProblem[];
}

export interface VerifyArchiveOptions {
  manifestPath: string;
  /** From the catalogue: the manifest must hash to this (omit to check internal consistency only). */
  manifestSha256?: string;
  manifestBytes?: number;
  /** From the catalogue: the manifest must claim this many rows. */
  rowCount?: number;
  /** Called with each row line of each chunk that passed, in id order. */
  onRow?: (line: string) => void | Promise<void>;
  /** Called after each chunk (progress). */
  onChunk?: (seq: number, result: "ok" | "failed") => void;
}

export async function verifyArchive(storage: ArchiveStorage, opts: VerifyArchiveOptions): Promise<ArchiveVerification> {
  const problems: ArchiveProblem[] = [];
  const fail = (where: ArchiveProblem["where"], path: string, reason: string) => problems.push({ where, path, reason });

  const manifestBytes = await storage.get(opts.manifestPath);
  if (!manifestBytes) {
    fail("manifest", opts.manifestPath, "manifest is missing from storage");
    return { ok: false, manifest: null, verifiedRows: 0, problems };
  }
  if (opts.manifestBytes !== undefined && manifestBytes.byteLength !== opts.manifestBytes) {
    fail("manifest", opts.manifestPath, `manifest is ${manifestBytes.byteLength} bytes, the catalogue recorded ${opts.manifestBytes}`);
  }
  if (opts.manifestSha256 !== undefined) {
    const actual = await sha256Hex(manifestBytes);
    if (actual !== opts.manifestSha256) {
      fail("manifest", opts.manifestPath, `manifest sha256 ${actual} does not match the catalogue's ${opts.manifestSha256}`);
    }
  }
  let manifest: ArchiveManifest;
  try {
    manifest = manifestSchema.parse(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestBytes)));
  } catch {
    fail("manifest", opts.manifestPath, "manifest is not a valid archive manifest");
    return { ok: false, manifest: null, verifiedRows: 0, problems };
  }
  if (problems.length > 0) return { ok: false, manifest, verifiedRows: 0, problems };

  const chunkTotal = manifest.chunks.reduce((sum, c) => sum + c.row_count, 0);
  if (chunkTotal !== manifest.row_count) {
    fail("manifest", opts.manifestPath, `chunks hold ${chunkTotal} rows, the manifest claims ${manifest.row_count}`);
  }
  if (opts.rowCount !== undefined && opts.rowCount !== manifest.row_count) {
    fail("manifest", opts.manifestPath, `manifest claims ${manifest.row_count} rows, the catalogue recorded ${opts.rowCount}`);
  }
  manifest.chunks.forEach((c, i) => {
    if (c.seq !== i + 1) fail("manifest", opts.manifestPath, `chunk list is not numbered 1..n (entry ${i + 1} is ${c.seq})`);
  });

  let verifiedRows = 0;
  let previousLast: bigint | null = null;
  for (const chunk of manifest.chunks) {
    const before = problems.length;
    const where = chunk.seq;
    const bytes = await storage.get(chunk.path);
    if (!bytes) {
      fail(where, chunk.path, "chunk is missing from storage");
    } else if (bytes.byteLength !== chunk.bytes) {
      fail(where, chunk.path, `size ${bytes.byteLength} bytes, manifest says ${chunk.bytes}${bytes.byteLength < chunk.bytes ? " (truncated)" : ""}`);
    } else {
      const actual = await sha256Hex(bytes);
      if (actual !== chunk.sha256) {
        fail(where, chunk.path, `sha256 ${actual} does not match the manifest's ${chunk.sha256} (corrupted)`);
      } else {
        const first = BigInt(chunk.first_id);
        const last = BigInt(chunk.last_id);
        if (previousLast !== null && first <= previousLast) fail(where, chunk.path, "id range overlaps the previous chunk");
        let rows = 0;
        let prev: bigint | null = null;
        const lines: string[] = [];
        try {
          for await (const line of chunkLines(bytes)) {
            const id = lineId(line);
            if ((prev !== null && id <= prev) || id < first || id > last) {
              throw new ChunkFormatError(`row id ${id} is out of order or outside ${first}..${last}`);
            }
            JSON.parse(line);
            prev = id;
            rows++;
            lines.push(line);
          }
          if (rows !== chunk.row_count) throw new ChunkFormatError(`holds ${rows} rows, manifest says ${chunk.row_count}`);
          if (prev !== last || lineId(lines[0]) !== first) throw new ChunkFormatError("first/last row ids differ from the manifest");
        } catch (err) {
          fail(where, chunk.path, err instanceof ChunkFormatError ? err.message : "content is not NDJSON audit rows");
        }
        if (problems.length === before) {
          verifiedRows += rows;
          if (opts.onRow) for (const line of lines) await opts.onRow(line);
        }
        previousLast = last;
      }
    }
    opts.onChunk?.(chunk.seq, problems.length === before ? "ok" : "failed");
  }
  return { ok: problems.length === 0, manifest, verifiedRows, problems };
}
