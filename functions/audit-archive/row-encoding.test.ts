// The COPY byte encoder must write exactly Postgres's row_to_json lines, whatever the text holds:
// COPY's escapes, quotes, \v and other control bytes, multi-byte UTF-8, and rows or characters
// split across socket reads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../tests/support/database.ts";
import { partitionLines } from "../../tests/support/audit-archive-fixtures.ts";
import { copyOut } from "../../shared/copy-out.ts";
import { auditRowEncoding, type RowEncoding } from "./row-encoding.ts";

let db: TestDatabase;
let encoding: RowEncoding;
let partition: string;
const AWKWARD = [
  "plain",
  'quote " and backslash \\ and \\N and \\\\N',
  "newline\nCR\rtab\tvt\vff\fbs\b",
  "controls \u0001\u001f\u007f",
  "unicode ü € 😀 \u2028",
  "=cmd|' /C calc'!A0",
  "\\",
  "",
];

beforeAll(async () => {
  db = await createTestDatabase();
  const { sql } = db;
  [{ partition }] = await sql<{ partition: string }[]>`select secret_store.create_audit_partition('2023-05-01') as partition`;
  for (const [i, text] of AWKWARD.entries()) {
    await sql`
      insert into public.audit_logs ("timestamp", project_id, secret_name, access_type, action, outcome,
        user_identity, actor_type, forwarded_for, user_agent, request_id, details)
      values ('2023-05-02 10:00:00+00'::timestamptz + ${i} * interval '1.5 seconds', gen_random_uuid(), ${text}, 'read', 'read',
        'granted', ${text}, 'user', ${text}, ${text}, ${`req-${i}`},
        ${sql.json({ note: text, nested: { [text]: [text, i, null, true] } })})`;
  }
  encoding = await auditRowEncoding(sql);
});
afterAll(() => db?.drop());

async function copyBytes(): Promise<Uint8Array[]> {
  return await db.sql.begin(async (tx) => {
    await tx`set local timezone = 'UTC'`;
    const chunks: Uint8Array[] = [];
    for await (const c of copyOut(tx.unsafe(`copy (select ${encoding.selectList} from audit_partitions."${partition}" t order by t.id) to stdout`))) {
      chunks.push(new Uint8Array(c));
    }
    return chunks;
  });
}

function encodeAll(pieces: Uint8Array[]): string {
  const lines = encoding.copyEncoder();
  const out: Uint8Array[] = [];
  for (const p of pieces) {
    const piece = lines.push(p);
    if (piece) out.push(piece);
  }
  const last = lines.finish();
  if (last) out.push(last);
  return Buffer.concat(out).toString("utf8");
}

describe("COPY byte encoder", () => {
  it("writes row_to_json's lines for quotes, backslashes, control bytes and unicode", async () => {
    const expected = await partitionLines(db.sql, partition);
    const whole = Buffer.concat(await copyBytes());
    expect(encodeAll([whole])).toBe(expected.map((l) => l + "\n").join(""));
    // And the string encoder agrees with it.
    expect(expected.every((l) => JSON.parse(l).user_agent !== undefined)).toBe(true);
  });

  it("gives the same bytes however the COPY output is split (rows and characters across reads)", async () => {
    const whole = Buffer.concat(await copyBytes());
    const expected = encodeAll([whole]);
    for (const size of [1, 2, 3, 7, 64]) {
      const pieces: Uint8Array[] = [];
      for (let i = 0; i < whole.byteLength; i += size) pieces.push(whole.subarray(i, i + size));
      expect(encodeAll(pieces)).toBe(expected);
    }
  });

  it("refuses output cut inside a row", async () => {
    const whole = Buffer.concat(await copyBytes());
    const lines = encoding.copyEncoder();
    lines.push(whole.subarray(0, whole.byteLength - 3));
    expect(() => lines.finish()).toThrow(/inside a row/);
  });

  it("keeps the connection usable after a COPY stopped early", async () => {
    const rows = await db.sql.begin(async (tx) => {
      for await (const _ of copyOut(tx.unsafe(`copy (select g, repeat('x', 200) from generate_series(1, 200000) g) to stdout`))) break;
      return await tx`select 1 as one`;
    }).catch(async (err: { code?: string }) => {
      // The cancelled COPY aborts the transaction; what matters is that the connection answers.
      expect(err.code).toBe("57014");
      return await db.sql`select 1 as one`;
    });
    expect(rows[0].one).toBe(1);
  });
});
