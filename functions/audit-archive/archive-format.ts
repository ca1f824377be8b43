// The archive format, shared by the archiver and the reader (scripts/archive.ts):
//   <prefix>/chunk-000001.ndjson.gz …   gzip of NDJSON, one audit row per line, ascending id
//   <prefix>/manifest.json              what a reader needs to prove the archive complete and intact
// A row line is Postgres's own row_to_json of the audit row (timestamps in UTC), so what comes back
// is byte for byte what the table held.
import { createGzip } from "node:zlib";
import { z } from "zod";

export const ARCHIVE_FORMAT = "secret-audit/audit-logs-archive";
export const ARCHIVE_FORMAT_VERSION = 1;
export const CHUNK_CONTENT_TYPE = "application/gzip";
export const MANIFEST_CONTENT_TYPE = "application/json";

export function chunkPath(prefix: string, seq: number): string {
  return `${prefix}/chunk-${String(seq).padStart(6, "0")}.ndjson.gz`;
}

export function manifestPath(prefix: string): string {
  return `${prefix}/manifest.json`;
}

const idText = z.string().regex(/^-?[0-9]{1,19}$/, "an id as a decimal string");

export const manifestSchema = z.strictObject({
  format: z.literal(ARCHIVE_FORMAT),
  format_version: z.literal(ARCHIVE_FORMAT_VERSION),
  table: z.literal("public.audit_logs"),
  partition: z.string().regex(/^audit_logs_p[0-9]{4}_[0-9]{2}$/),
  archive_id: z.uuid(),
  /** Rows with range_start <= timestamp < range_end. */
  time_range: z.strictObject({ start: z.iso.datetime(), end: z.iso.datetime() }),
  id_range: z.strictObject({ first: idText, last: idText }).nullable(),
  row_count: z.number().int().min(0),
  encoding: z.literal("ndjson+gzip"),
  chunks: z.array(z.strictObject({
    seq: z.number().int().min(1),
    path: z.string().min(1),
    first_id: idText,
    last_id: idText,
    row_count: z.number().int().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().min(1),
  })),
  archived_at: z.iso.datetime(),
});

export type ArchiveManifest = z.infer<typeof manifestSchema>;

/** Deterministic bytes for a manifest: the same catalogue state always yields the same object. */
export function encodeManifest(manifest: ArchiveManifest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** gzip level: 1 is ~3x faster than the default 6 for ~10% more bytes; CPU is the scarce resource. */
export const GZIP_LEVEL = 1;

/** Writes handed to zlib and not yet compressed (with ~256 KB pieces: about 1 MB queued). */
const MAX_IN_FLIGHT = 4;

/**
 * gzip of text (or its UTF-8 bytes) written piece by piece; only the compressed output is held.
 * Writes are compressed (on zlib's thread) while the caller prepares the next; beyond
 * MAX_IN_FLIGHT queued writes the caller waits.
 */
export class GzipWriter {
  // Large output chunks: each one is a round trip to zlib's thread.
  private readonly gzip = createGzip({ level: GZIP_LEVEL, chunkSize: 256 * 1024 });
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  private readonly inFlight: Promise<void>[] = [];
  private failure: Error | null = null;
  private readonly ended: Promise<void>;

  constructor() {
    this.gzip.on("data", (part: Uint8Array) => {
      this.parts.push(part);
      this.size += part.byteLength;
    });
    this.ended = new Promise((resolve, reject) => {
      this.gzip.on("end", resolve);
      this.gzip.on("error", (err: Error) => {
        this.failure = err;
        reject(err);
      });
    });
    this.ended.catch(() => {});
  }

  async write(data: string | Uint8Array): Promise<void> {
    // Up to MAX_IN_FLIGHT writes queued, so zlib's thread never waits for the caller's next piece.
    while (this.inFlight.length >= MAX_IN_FLIGHT) await this.inFlight.shift();
    if (this.failure) throw this.failure;
    const written = new Promise<void>((resolve, reject) => {
      const done = (err: Error | null | undefined) => (err ? reject(err) : resolve());
      if (typeof data === "string") this.gzip.write(data, "utf8", done);
      else this.gzip.write(data, done);
    });
    written.catch(() => {});
    this.inFlight.push(written);
  }

  async finish(): Promise<Uint8Array> {
    while (this.inFlight.length > 0) await this.inFlight.shift();
    this.gzip.end();
    await this.ended;
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.byteLength;
    }
    this.parts.length = 0;
    return out;
  }
}

export class ChunkFormatError extends Error {
  override readonly name = "ChunkFormatError";
}

/**
 * Decompresses a chunk and yields its lines, checking framing as it goes: a truncated or corrupt
 * gzip stream, a missing final newline or an unparsable line is a ChunkFormatError.
 */
export async function* chunkLines(bytes: Uint8Array): AsyncGenerator<string> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = stream.getReader();
  let pending = "";
  for (;;) {
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await reader.read();
    } catch {
      throw new ChunkFormatError("gzip stream is corrupt or truncated");
    }
    if (result.done) break;
    let text: string;
    try {
      text = decoder.decode(result.value, { stream: true });
    } catch {
      throw new ChunkFormatError("content is not valid UTF-8");
    }
    pending += text;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
  }
  if (pending.length > 0) throw new ChunkFormatError("last line is not terminated (truncated content)");
}

/** The id of a row line (the archiver writes `{"id":…` first, as row_to_json does). */
export function lineId(line: string): bigint {
  const match = /^\{"id":(-?[0-9]{1,19}),/.exec(line);
  if (!match) throw new ChunkFormatError("a line is not an audit row");
  return BigInt(match[1]);
}
