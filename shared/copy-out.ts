// `COPY (select …) TO STDOUT` read pull-based through postgres.js: one CopyData message per row is
// far cheaper for both sides than DataRow messages through a cursor. The caller's transaction,
// role and claims apply to the COPY's query exactly as to a plain select (RLS included).
//
// postgres.js 3.4 pauses its socket when the stream's buffer is full and resumes it only from the
// stream's read(); when the buffer fills on the last rows, the stream ends with the socket still
// paused and the connection never sees ReadyForQuery (porsager/postgres#499, fix pending in #1016).
// This reader resumes the socket once the stream is over, and on an early stop cancels the COPY on
// the server and discards what is still in flight, so the connection is usable afterwards (for the
// commit or rollback that follows).
import type { Readable } from "node:stream";
import type { PendingQuery, Row } from "postgres";

/** The COPY output, chunk by chunk (whole rows are not guaranteed per chunk). */
export async function* copyOut(query: PendingQuery<Row[]>): AsyncGenerator<Uint8Array> {
  const stream = (await query.readable()) as unknown as Readable;
  const resumeSocket = () => (stream as unknown as { _read(size: number): void })._read(0);
  let complete = false;
  try {
    for await (const chunk of stream.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array;
    complete = true;
  } finally {
    if (!complete && !stream.destroyed && !stream.readableEnded) {
      const over = new Promise<void>((resolve) => {
        stream.once("end", resolve);
        stream.once("error", () => resolve());
        stream.once("close", resolve);
      });
      stream.on("data", () => {}); // discard; flowing keeps the socket reading
      void query.cancel();
      resumeSocket();
      await over;
    }
    resumeSocket();
  }
}

/** Undoes COPY text-format escaping of one field (the caller checked it contains a backslash). */
export function unescapeCopyText(field: string): string {
  let out = "";
  let from = 0;
  for (let i = field.indexOf("\\"); i >= 0; i = field.indexOf("\\", from)) {
    out += field.slice(from, i);
    const c = field[i + 1];
    out += c === "n" ? "\n" : c === "t" ? "\t" : c === "r" ? "\r" : c === "b" ? "\b" : c === "f" ? "\f" : c === "v" ? "\v" : c === "\\" ? "\\" : unexpected(c);
    from = i + 2;
  }
  return out + field.slice(from);
}

function unexpected(c: string | undefined): never {
  // COPY TO never writes octal/hex escapes or a lone trailing backslash.
  throw new Error(`unexpected COPY escape \\${c ?? ""}`);
}

/**
 * Splits COPY text-format output into rows of fields (null for \N), across chunk boundaries and
 * multi-byte characters split between chunks. Data newlines and tabs are escaped by COPY, so a raw
 * newline always ends a row and a raw tab always separates fields.
 */
export class CopyTextRows {
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private pending = "";

  /** Complete rows in this chunk (plus the remainder of the previous one). */
  push(chunk: Uint8Array, onRow: (fields: (string | null)[]) => void): void {
    const text = this.pending + this.decoder.decode(chunk, { stream: true });
    const end = text.lastIndexOf("\n");
    if (end < 0) {
      this.pending = text;
      return;
    }
    this.pending = text.slice(end + 1);
    let start = 0;
    while (start <= end) {
      const nl = text.indexOf("\n", start);
      const fields: (string | null)[] = text.slice(start, nl).split("\t");
      start = nl + 1;
      for (let i = 0; i < fields.length; i++) {
        const f = fields[i]!;
        if (f.indexOf("\\") < 0) continue;
        fields[i] = f === "\\N" ? null : unescapeCopyText(f);
      }
      onRow(fields);
    }
  }

  /** Throws if the output ended inside a row (it never does unless cut off). */
  finish(): void {
    const rest = this.pending + this.decoder.decode();
    if (rest.length > 0) throw new Error("COPY output ended inside a row");
  }
}
