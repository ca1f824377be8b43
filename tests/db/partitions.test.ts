// Audit inserts never fail for want of a partition, and upkeep moves stranded rows into the
// month's partition without losing or changing any.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const PROJECT = "00000000-0000-4000-8000-0000000000aa";

async function insertAuditRowAt(timestamp: string): Promise<string> {
  const [{ id }] = await db.sql<{ id: string }[]>`
    insert into public.audit_logs ("timestamp", project_id, access_type, action, outcome, user_identity, actor_type)
    values (${timestamp}, ${PROJECT}, 'read', 'read', 'granted', 'time-traveller', 'user')
    returning id::text`;
  return id;
}

async function partitionOf(id: string): Promise<string> {
  const [{ partition }] = await db.sql<{ partition: string }[]>`
    select tableoid::regclass::text as partition from public.audit_logs where id = ${id}`;
  return partition;
}

describe("audit_logs partitions", () => {
  it("has partitions from this month to three months ahead after migrating", async () => {
    const rows = await db.sql<{ name: string }[]>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'public.audit_logs'::regclass order by 1`;
    const now = new Date();
    const expected = [0, 1, 2, 3].map((m) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + m, 1));
      return `audit_logs_p${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
    });
    expect(rows.map((r) => r.name)).toEqual([...expected, "audit_logs_default"].sort());
  });

  it("routes a row for the current month to its partition", async () => {
    const id = await insertAuditRowAt(new Date().toISOString());
    expect(await partitionOf(id)).toMatch(/^audit_partitions\.audit_logs_p\d{4}_\d{2}$/);
  });

  it("accepts a row for a month nobody prepared (default partition), then upkeep moves it intact", async () => {
    const far = "2031-05-17T10:00:00Z";
    const id = await insertAuditRowAt(far);
    expect(await partitionOf(id)).toBe("audit_partitions.audit_logs_default");
    const [before] = await db.sql`select * from public.audit_logs where id = ${id}`;

    const [{ name }] = await db.sql<{ name: string }[]>`select secret_store.create_audit_partition('2031-05-01') as name`;
    expect(name).toBe("audit_logs_p2031_05");
    expect(await partitionOf(id)).toBe("audit_partitions.audit_logs_p2031_05");
    const [after] = await db.sql`select * from public.audit_logs where id = ${id}`;
    expect(after).toEqual(before);
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from audit_partitions.audit_logs_default`;
    expect(n).toBe(0);
  });

  it("keeps the new partition append-only and closed to API roles", async () => {
    await db.sql`select secret_store.create_audit_partition('2032-01-01')`;
    await expect(db.sql`truncate audit_partitions.audit_logs_p2032_01`).rejects.toThrow(/append-only/);
    const [{ granted }] = await db.sql<{ granted: boolean }[]>`
      select has_table_privilege('authenticated', 'audit_partitions.audit_logs_p2032_01', 'select') as granted`;
    expect(granted).toBe(false);
  });

  it("is idempotent", async () => {
    const first = await db.sql`select secret_store.ensure_audit_partitions(3)`;
    const second = await db.sql`select secret_store.ensure_audit_partitions(3)`;
    expect(second.map((r) => r.ensure_audit_partitions)).toEqual(first.map((r) => r.ensure_audit_partitions));
  });
});
