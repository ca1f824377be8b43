// COPY text-format rows → JSON lines, written byte for byte from COPY's output without making JS
// strings of the common columns. Used by the archive (row_to_json lines) and the export (the
// audit_log_entries entry shape): each caller gives the per-column key bytes and forms.
import { unescapeCopyText } from "./copy-out.ts";

/** How the COPY byte encoder writes a column (anything else goes through the string encoder). */
export const enum ByteForm {
  /** JSON text (json, jsonb, to_json): only COPY's doubled backslashes to undo. */
  Json,
  /** A JSON string of the text: COPY escapes → JSON escapes. */
  Quoted,
  /** Integers: the text itself. */
  Integer,
  /** "YYYY-MM-DD HH:MM:SS[.ffffff]+00" → "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00"; other shapes by the string encoder. */
  TimestamptzUtc,
  /** Decode the field and use the column's string encoder. */
  Fallback,
}

const TAB = 9;
const LF = 10;
const QUOTE = 34;
const BACKSLASH = 92;
const HEX = "0123456789abcdef";
/** Encoded bytes are handed out in pieces of about this size (unless the caller says otherwise). */
const PIECE_BYTES = 256 * 1024;

/**
 * Turns COPY text-format rows into JSON lines (`<key 1><value 1><key 2>…}` + LF), byte for byte as
 * Postgres would write the values, without making JS strings of the common columns: COPY's escapes (\\ \n \r \t \b \f) are JSON's own,
 * so a text column is its COPY bytes with `"` escaped, \v and raw control bytes as \u00XX (as
 * Postgres's escape_json and JSON.stringify write them). Rows may span chunks.
 */
export class CopyLineEncoder {
  rows = 0;
  firstId = "";
  lastId = "";
  private rest: Uint8Array = new Uint8Array(0);
  private out: Uint8Array;
  private len = 0;
  private readonly keysBytes: number;
  private readonly latin = new TextDecoder("latin1");
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });
  private readonly textOut = new TextEncoder();

  constructor(
    private readonly keys: Uint8Array[],
    private readonly forms: ByteForm[],
    private readonly encoders: ((text: string) => string)[],
    private readonly pieceBytes = PIECE_BYTES,
  ) {
    this.out = new Uint8Array(Math.max(pieceBytes, 4096) * 2);
    this.keysBytes = keys.reduce((sum, k) => sum + k.byteLength, 0);
  }

  /** Encodes the complete rows received so far; returns encoded pieces once they are big enough. */
  push(chunk: Uint8Array): Uint8Array | null {
    let data = chunk;
    if (this.rest.byteLength > 0) {
      data = new Uint8Array(this.rest.byteLength + chunk.byteLength);
      data.set(this.rest, 0);
      data.set(chunk, this.rest.byteLength);
    }
    const end = data.lastIndexOf(LF);
    if (end < 0) {
      this.rest = data.slice();
      return null;
    }
    let start = 0;
    while (start <= end) {
      const nl = data.indexOf(LF, start);
      this.encodeRow(data, start, nl);
      start = nl + 1;
    }
    this.rest = data.slice(end + 1);
    return this.len >= this.pieceBytes ? this.take() : null;
  }

  /** What is left to hand out; throws if the output ended inside a row. */
  finish(): Uint8Array | null {
    if (this.rest.byteLength > 0) throw new Error("COPY output ended inside a row");
    return this.len > 0 ? this.take() : null;
  }

  private take(): Uint8Array {
    const piece = this.out.slice(0, this.len);
    this.len = 0;
    return piece;
  }

  private reserve(bytes: number): void {
    if (this.len + bytes <= this.out.byteLength) return;
    const bigger = new Uint8Array(Math.max(this.out.byteLength * 2, this.len + bytes));
    bigger.set(this.out.subarray(0, this.len), 0);
    this.out = bigger;
  }

  private encodeRow(data: Uint8Array, start: number, end: number): void {
    // Worst case: every byte a control byte written as \u00XX, plus keys, quotes and braces.
    this.reserve(this.keysBytes + 6 * (end - start) + 4 * this.keys.length + 16);
    const keys = this.keys;
    let pos = start;
    for (let col = 0; col < keys.length; col++) {
      let stop = data.indexOf(TAB, pos);
      if (stop < 0 || stop > end) stop = end;
      if (col === keys.length - 1 && stop !== end) throw new Error("COPY row has more fields than columns");
      if (stop === end && col < keys.length - 1) throw new Error("COPY row has fewer fields than columns");
      const key = keys[col]!;
      this.out.set(key, this.len);
      this.len += key.byteLength;
      if (col === 0) {
        const id = this.latin.decode(data.subarray(pos, stop));
        if (this.rows === 0) this.firstId = id;
        this.lastId = id;
      }
      if (stop - pos === 2 && data[pos] === BACKSLASH && data[pos + 1] === 78 /* N */) {
        this.ascii("null");
      } else {
        this.field(data, pos, stop, col);
      }
      pos = stop + 1;
    }
    this.out[this.len++] = 125; // }
    this.out[this.len++] = LF;
    this.rows++;
  }

  private field(data: Uint8Array, from: number, to: number, col: number): void {
    const out = this.out;
    switch (this.forms[col]) {
      case ByteForm.Integer:
        out.set(data.subarray(from, to), this.len);
        this.len += to - from;
        return;
      case ByteForm.Json:
        for (let i = from; i < to; i++) {
          const b = data[i]!;
          if (b === BACKSLASH) {
            i++; // JSON text holds no control characters: the only COPY escape in it is \\
            if (data[i] !== BACKSLASH) throw new Error("unexpected COPY escape in JSON text");
          }
          out[this.len++] = b;
        }
        return;
      case ByteForm.Quoted:
        out[this.len++] = QUOTE;
        for (let i = from; i < to; i++) {
          const b = data[i]!;
          if (b >= 0x20 && b !== QUOTE) {
            out[this.len++] = b;
          } else if (b === QUOTE) {
            out[this.len++] = BACKSLASH;
            out[this.len++] = QUOTE;
          } else {
            this.controlByte(b);
          }
          if (b === BACKSLASH) {
            // COPY escape: \\ \n \r \t \b \f are JSON's too; \v is not.
            const e = data[++i]!;
            if (e === 118 /* v */) {
              this.len--;
              this.ascii("\\u000b");
            } else if (e === BACKSLASH || e === 110 || e === 114 || e === 116 || e === 98 || e === 102) {
              out[this.len++] = e;
            } else {
              throw new Error("unexpected COPY escape");
            }
          }
        }
        out[this.len++] = QUOTE;
        return;
      case ByteForm.TimestamptzUtc: {
        const n = to - from;
        if (n >= 22 && data[from + 4] === 45 && data[from + 10] === 32 && data[to - 3] === 43 && data[to - 2] === 48 && data[to - 1] === 48) {
          out[this.len++] = QUOTE;
          out.set(data.subarray(from, from + 10), this.len);
          this.len += 10;
          out[this.len++] = 84; // T
          out.set(data.subarray(from + 11, to - 3), this.len);
          this.len += n - 14;
          this.ascii('+00:00"');
          return;
        }
        break;
      }
    }
    this.fallback(data, from, to, col);
  }

  /** A control byte (< 0x20) as JSON writes it: \u00XX (COPY's letter escapes are handled apart). */
  private controlByte(b: number): void {
    this.ascii(`\\u00${HEX[b >> 4]}${HEX[b & 15]}`);
  }

  private fallback(data: Uint8Array, from: number, to: number, col: number): void {
    let text = this.utf8.decode(data.subarray(from, to));
    if (text.includes("\\")) text = unescapeCopyText(text);
    const bytes = this.textOut.encode(this.encoders[col]!(text));
    this.reserve(bytes.byteLength);
    this.out.set(bytes, this.len);
    this.len += bytes.byteLength;
  }

  private ascii(text: string): void {
    for (let i = 0; i < text.length; i++) this.out[this.len++] = text.charCodeAt(i);
  }
}
