// Export encodings: NDJSON (one entry per line, as the query API shows it) and CSV (RFC 4180:
// CRLF, every cell quoted, quotes doubled). Cells a spreadsheet would run as a formula get a
// leading apostrophe, so a user agent like `=HYPERLINK(...)` stays text.
import type { AuditEntry } from "./schemas.ts";

export const CSV_COLUMNS = [
  "id", "timestamp", "project_id", "secret_id", "secret_name", "secret_version", "access_type", "action",
  "outcome", "user_identity", "actor_type", "ip_address", "forwarded_for", "user_agent", "request_id", "details",
] as const satisfies readonly (keyof AuditEntry)[];

// OWASP's list (= + - @ tab CR) plus LF and the full-width forms some spreadsheets also honour.
const FORMULA_START = /^[=+\-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20]/;

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  let text = typeof value === "object" ? JSON.stringify(value) : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

export function csvHeader(): string {
  return CSV_COLUMNS.map(csvCell).join(",") + "\r\n";
}

/** CSV lines for entries given as the JSON text the database produced. */
export function csvLines(entries: string[]): string {
  let out = "";
  for (const text of entries) {
    const entry = JSON.parse(text) as Record<string, unknown>;
    out += CSV_COLUMNS.map((column) => csvCell(entry[column])).join(",") + "\r\n";
  }
  return out;
}

export function ndjsonLines(entries: string[]): string {
  return entries.length === 0 ? "" : entries.join("\n") + "\n";
}

/** `audit-logs_<project>_<UTC time>.<ext>`: only safe characters, so no header injection. */
export function exportFilename(projectId: string, format: "ndjson" | "csv", now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  return `audit-logs_${projectId.replace(/[^0-9a-f-]/g, "")}_${stamp}.${format}`;
}
