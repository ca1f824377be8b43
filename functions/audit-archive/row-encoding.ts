// Audit rows as NDJSON lines identical to Postgres's row_to_json (session time zone UTC), built in
// the function from the columns' text output. Postgres's own JSON rendering costs ~6x more server
// time per row than plain text output, which made it the bottleneck of the export.
//
// The column list is read from the catalog on every run, so a column added to audit_logs is archived
// without a code change; types this encoder does not render itself are rendered by Postgres
// (to_json) for that column only.
import type { Sql } from "postgres";
import { ByteForm, CopyLineEncoder } from "../../shared/copy-json-lines.ts";

export interface RowEncoding {
  /** The select list, aliased t: each column as its text output (or as JSON text). */
  selectList: string;
  /** Builds one line from the row's values (in selectList order). */
  encode(values: (string | null)[]): string;
  /** A fresh encoder of `COPY (select selectList …) TO STDOUT` output into the same lines, as bytes. */
  copyEncoder(): CopyLineEncoder;
}

interface ColumnInfo {
  name: string;
  typname: string;
  typcategory: string;
}

type Encoder = (text: string) => string;

const raw: Encoder = (text) => text;
const quoted: Encoder = (text) => JSON.stringify(text);
const numeric: Encoder = (text) => (/^[-+]?[0-9]/.test(text) ? text : JSON.stringify(text)); // NaN, Infinity are strings
const boolean: Encoder = (text) => (text === "t" || text === "true" ? "true" : "false");
// "2025-01-03 10:00:00.123456+00" → "2025-01-03T10:00:00.123456+00:00" (row_to_json's ISO form).
const timestamptz: Encoder = (text) => {
  // Fast path: the session is UTC, so "YYYY-MM-DD HH:MM:SS[.ffffff]+00".
  if (text.length >= 22 && text.charCodeAt(10) === 32 && text.endsWith("+00") && text.charCodeAt(4) === 45) {
    return `"${text.slice(0, 10)}T${text.slice(11, -3)}+00:00"`;
  }
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(text);
  if (!m) return JSON.stringify(text); // infinity, BC dates: as Postgres spells them
  return `"${m[1]}T${m[2]}${m[3]}:${m[4] ?? "00"}${m[5] ? `:${m[5]}` : ""}"`;
};
const timestamp: Encoder = (text) => {
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/.exec(text);
  return m ? `"${m[1]}T${m[2]}"` : JSON.stringify(text);
};

const TEXT_RENDERED = new Set(["S", "U", "E", "I"]); // string, user (uuid), enum, network address
// Output that never needs JSON escaping: quoting is enough.
const plainQuoted: Encoder = (text) => `"${text}"`;
const NEVER_ESCAPED = new Set(["uuid", "inet", "cidr", "macaddr"]);

const INTEGER_TYPES = new Set(["int2", "int4", "int8"]);

function encoderFor(column: ColumnInfo): { expression: (ident: string) => string; encoder: Encoder; form: ByteForm } {
  const asText = (ident: string) => `t.${ident}::text`;
  if (column.typname === "json" || column.typname === "jsonb") return { expression: asText, encoder: raw, form: ByteForm.Json };
  if (column.typname === "timestamptz") return { expression: asText, encoder: timestamptz, form: ByteForm.TimestamptzUtc };
  if (column.typname === "timestamp") return { expression: asText, encoder: timestamp, form: ByteForm.Fallback };
  if (column.typname === "bool") return { expression: asText, encoder: boolean, form: ByteForm.Fallback };
  if (column.typcategory === "N" && column.typname !== "money") {
    return { expression: asText, encoder: numeric, form: INTEGER_TYPES.has(column.typname) ? ByteForm.Integer : ByteForm.Fallback };
  }
  if (column.typname === "date") return { expression: asText, encoder: quoted, form: ByteForm.Quoted };
  // Uncast: the driver hands these over as their output function's text (inet::text would add /32).
  if (TEXT_RENDERED.has(column.typcategory)) {
    return { expression: (ident) => `t.${ident}`, encoder: NEVER_ESCAPED.has(column.typname) ? plainQuoted : quoted, form: ByteForm.Quoted };
  }
  return { expression: (ident) => `to_json(t.${ident})::text`, encoder: raw, form: ByteForm.Json };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The encoding of public.audit_logs rows; the first column must be id (readers rely on it). */
export async function auditRowEncoding(sql: Sql): Promise<RowEncoding> {
  const columns = await sql<ColumnInfo[]>`
    select a.attname::text as name, ty.typname::text as typname, ty.typcategory::text as typcategory
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_type ty on ty.oid = a.atttypid
    where a.attrelid = 'public.audit_logs'::regclass and a.attnum > 0 and not a.attisdropped
    order by a.attnum`;
  if (columns[0]?.name !== "id") throw new Error("audit_logs must start with its id column");
  const plans = columns.map((c) => ({ key: `${JSON.stringify(c.name)}:`, ...encoderFor(c), ident: quoteIdent(c.name) }));
  const keys = plans.map((p, i) => (i === 0 ? `{${p.key}` : `,${p.key}`));
  const encoders = plans.map((p) => p.encoder);
  const n = plans.length;
  const utf8 = new TextEncoder();
  const keyBytes = keys.map((k) => utf8.encode(k));
  const forms = plans.map((p) => p.form);
  return {
    selectList: plans.map((p) => p.expression(p.ident)).join(", "),
    copyEncoder: () => new CopyLineEncoder(keyBytes, forms, encoders),
    encode(values) {
      let line = "";
      for (let i = 0; i < n; i++) {
        const v = values[i];
        line += keys[i] + (v === null ? "null" : encoders[i](v));
      }
      return line + "}";
    },
  };
}
