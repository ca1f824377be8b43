import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDITOR, createAuditLogsHarness, OTHER_AUDITOR, STRANGER, type AuditLogsHarness } from "../../../tests/support/audit-logs-harness.ts";
import { referenceFilter, referenceRows, seedRandomTrail } from "../../../tests/support/audit-data.ts";
import { CSV_COLUMNS } from "../export-format.ts";
import { createDirectAuditReader } from "../direct-reader.ts";

let h: AuditLogsHarness;

beforeAll(async () => {
  h = await createAuditLogsHarness({ export: { batchSize: 100 } });
  await seedRandomTrail(h.sql, h.projectId, 1500, 7);
  await seedRandomTrail(h.sql, h.otherProjectId, 50, 8);
  // Hostile cell content, as a caller can put it in advisory headers or identities.
  await h.sql`
    insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type, user_agent, forwarded_for, details, secret_name)
    values (${h.projectId}, 'read', 'read', 'denied', '@SUM(1+1)', 'user', '=HYPERLINK("http://evil.example","x")', '+1, -2',
            ${{ note: 'a "quoted", comma\nnewline' } as never}::jsonb, 'QUOTED_NAME'),
           (${h.projectId}, 'read', 'read', 'denied', '-cmd', 'user', E'\\tTAB', E'\\rCR', null, null)`;
});
afterAll(() => h?.close());

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "", record: string[] = [], i = 0, quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      field += ch; i++; continue;
    }
    if (ch === '"') { quoted = true; i++; continue; }
    if (ch === ",") { record.push(field); field = ""; i++; continue; }
    if (ch === "\r" && text[i + 1] === "\n") { record.push(field); records.push(record); record = []; field = ""; i += 2; continue; }
    if (ch === "\n") throw new Error(`bare LF outside quotes at ${i}`);
    field += ch; i++;
  }
  if (field !== "" || record.length > 0) throw new Error("last record not terminated by CRLF");
  return records;
}

describe("GET /audit-logs/export", () => {
  it("streams every matching entry as NDJSON, newest first, equal to the query API's entries", async () => {
    const f = { outcome: ["denied", "granted"] };
    const page = await (await h.request(`?project_id=${h.projectId}&outcome=granted,denied&limit=3`)).json();
    const expected = referenceFilter(await referenceRows(h.sql, h.projectId), f).map((r) => r.id);
    const before = await h.lastAuditId();
    const res = await h.request(`/export?project_id=${h.projectId}&outcome=granted,denied`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    expect(res.headers.get("content-disposition")).toMatch(
      new RegExp(`^attachment; filename="audit-logs_${h.projectId}_\\d{8}T\\d{6}Z\\.ndjson"$`),
    );
    const lines = (await res.text()).split("\n");
    expect(lines.pop()).toBe("");
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.map((e) => e.id)).toEqual(expected);
    expect(expected.length).toBeGreaterThan(500);

    // Same shape as the query API.
    expect(page.data).toHaveLength(3);
    for (const entry of page.data) expect(entries.find((e) => e.id === entry.id)).toEqual(entry);

    // Recorded once, before the rows were read, with its filters and format.
    const rows = await h.auditRowsAfter(before);
    expect(rows[0]).toMatchObject({ action: "audit_export", outcome: "granted", user_identity: AUDITOR, details: { filters: f, format: "ndjson" } });
  });

  it("writes RFC 4180 CSV with formula cells neutralised", async () => {
    const res = await h.request(`/export?project_id=${h.projectId}&format=csv&outcome=denied&action=read`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
    expect(res.headers.get("content-disposition")).toMatch(/filename="audit-logs_[0-9a-f-]+_\d{8}T\d{6}Z\.csv"$/);
    const records = parseCsv(await res.text());
    expect(records[0]).toEqual([...CSV_COLUMNS]);
    const byColumn = records.slice(1).map((r) => Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, r[i]])));
    expect(records.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
    const hostile = byColumn.find((r) => r.secret_name === "QUOTED_NAME")!;
    expect(hostile.user_agent).toBe(`'=HYPERLINK("http://evil.example","x")`);
    expect(hostile.user_identity).toBe("'@SUM(1+1)");
    expect(hostile.forwarded_for).toBe("'+1, -2");
    expect(JSON.parse(hostile.details)).toEqual({ note: 'a "quoted", comma\nnewline' });
    const other = byColumn.find((r) => r.user_identity === "'-cmd")!;
    expect(other.user_agent).toBe("'\tTAB");
    expect(other.forwarded_for).toBe("'\rCR");
    expect(other.secret_name).toBe("");
    // No cell anywhere starts with a formula trigger.
    for (const record of records) for (const cell of record) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    const expected = referenceFilter(await referenceRows(h.sql, h.projectId), { outcome: ["denied"], action: ["read"] });
    expect(byColumn.map((r) => r.id)).toEqual(expected.map((r) => r.id));
  });

  it("reads lazily and ends its transaction when the client goes away mid-export", async () => {
    const res = await h.request(`/export?project_id=${h.projectId}`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();
    // The export's connection is back in the pool, not idle in a transaction.
    await expect.poll(async () => (await h.sql`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and state like 'idle in transaction%'`)[0].n, { timeout: 5000 }).toBe(0);
    const again = await h.request(`/export?project_id=${h.projectId}&format=csv&limit=1`);
    expect(again.status).toBe(400);
    expect((await h.request(`/export?project_id=${h.projectId}&format=csv`)).status).toBe(200);
  });

  it("answers 501 over the Data API transport, before recording anything", async () => {
    const postgrest = await createAuditLogsHarness({ direct: false });
    try {
      const before = await postgrest.lastAuditId();
      for (const path of [`/export?project_id=${postgrest.projectId}`, `/stream?project_id=${postgrest.projectId}`]) {
        const res = await postgrest.request(path);
        expect(res.status).toBe(501);
        expect((await res.json()).error.code).toBe("direct_transport_required");
      }
      expect(await postgrest.auditRowsAfter(before)).toHaveLength(0);
      expect((await postgrest.request(`?project_id=${postgrest.projectId}`)).status).toBe(200);
    } finally {
      await postgrest.close();
    }
  });

describe("export through COPY", () => {
  const AWKWARD = 'back\\slash \\N "quote" new\nline tab\t CR\r vt\v \u0001 ü € 😀 =1+1';

  it("gives each entry's JSON text byte for byte, whatever user_agent and details hold", async () => {
    await h.sql`
      insert into public.audit_logs (project_id, access_type, action, outcome, user_identity, actor_type, user_agent, details)
      values (${h.projectId}, 'read', 'read', 'granted', 'copy-escapes', 'user', ${AWKWARD},
              ${h.sql.json({ [AWKWARD]: AWKWARD, list: [AWKWARD, 1, null] })})`;
    const expected = await h.sql<{ entry: string }[]>`
      select entry::text as entry from secret_store.audit_log_entries
      where project_id = ${h.projectId} order by "timestamp" desc, id desc`;
    const res = await h.request(`/export?project_id=${h.projectId}`);
    const text = await res.text();
    expect(text).toBe(expected.map((r) => r.entry + "\n").join(""));
    const mine = text.split("\n").map((l) => (l ? JSON.parse(l) : null)).find((e) => e?.user_identity === "copy-escapes");
    expect(mine.user_agent).toBe(AWKWARD);
    expect(mine.details[AWKWARD]).toBe(AWKWARD);
  });

  it("reads as the caller: RLS leaves nothing to a caller without audit:read on the project", async () => {
    const reader = createDirectAuditReader(h.sql);
    const read = async (sub: string) => {
      let text = "";
      for await (const piece of reader.exportEntries({ claims: { sub, role: "authenticated" }, token: "" }, h.projectId, {}, "0", 4096)) {
        text += Buffer.from(piece).toString();
      }
      return text.split("\n").filter(Boolean);
    };
    expect(await read(OTHER_AUDITOR)).toEqual([]);
    expect(await read(STRANGER)).toEqual([]);
    expect((await read(AUDITOR)).length).toBeGreaterThan(1500);
  });
});
});
