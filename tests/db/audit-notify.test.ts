// New audit entries wake live streams only for projects someone is streaming: a NOTIFY
// serialises commits database-wide, so unwatched projects must not pay for it. Grant changes
// announce themselves as well.
import postgres, { type Sql } from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

const WATCHED = "00000000-0000-4000-8000-0000000000a1";
const UNWATCHED = "00000000-0000-4000-8000-0000000000a2";
const WATCHER = "00000000-0000-4000-8000-00000000beef";

let db: TestDatabase;
let listener: Sql;
const received: { project_id: string; id: string }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  listener = postgres(db.url, { max: 1, onnotice: () => {} });
  await listener.listen("audit_logs", (payload) => received.push(JSON.parse(payload)));
});
afterAll(async () => {
  await listener?.end();
  await db?.drop();
});

// Entries are written the way every audited access writes them.
async function insertEntry(projectId: string): Promise<void> {
  await db.sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', '{"sub":"someone"}', true)`;
    await tx`select secret_store.record_access(${projectId}, null, 'X', null, 'read', 'granted', '{}')`;
  });
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
}

describe("audit_logs wake-ups", () => {
  it("announces nothing while nobody streams", async () => {
    await insertEntry(WATCHED);
    await insertEntry(UNWATCHED);
    await settle();
    expect(received).toEqual([]);
  });

  it("announces entries of watched projects only, with no row data in the payload", async () => {
    await db.sql`select secret_store.renew_audit_stream_watch(${WATCHER}, ${[WATCHED]}::uuid[], 60)`;
    await insertEntry(WATCHED);
    await insertEntry(UNWATCHED);
    await settle();
    expect(received).toEqual([{ project_id: WATCHED }]);
  });

  it("announces grant changes on a watched project", async () => {
    received.length = 0;
    await db.sql`insert into secret_store.projects (id, name) values (${WATCHED}, 'watched') on conflict do nothing`;
    await db.sql`insert into secret_store.grants (project_id, principal, permission) values (${WATCHED}, 'new-auditor', 'audit:read')`;
    await settle();
    expect(received).toEqual([{ project_id: WATCHED }]);
  });

  it("stops announcing when the watch ends or its lease lapses", async () => {
    received.length = 0;
    await db.sql`select secret_store.renew_audit_stream_watch(${WATCHER}, ${[]}::uuid[], 60)`;
    await insertEntry(WATCHED);
    await db.sql`select secret_store.renew_audit_stream_watch(${WATCHER}, ${[WATCHED]}::uuid[], 60)`;
    await db.sql`update secret_store.audit_stream_watchers set expires_at = now() - interval '1 second'`;
    await insertEntry(WATCHED);
    await settle();
    expect(received).toEqual([]);
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from secret_store.audit_stream_watchers`;
    expect(n).toBe(1);
    await db.sql`select secret_store.renew_audit_stream_watch(${"00000000-0000-4000-8000-00000000cafe"}, ${[]}::uuid[], 60)`;
    const [{ left }] = await db.sql<{ left: number }[]>`select count(*)::int as left from secret_store.audit_stream_watchers`;
    expect(left).toBe(0);
  });

  it("keeps the lease function away from API roles", async () => {
    for (const role of ["anon", "authenticated", "service_role"]) {
      const [{ allowed }] = await db.sql<{ allowed: boolean }[]>`
        select has_function_privilege(${role}, 'secret_store.renew_audit_stream_watch(uuid, uuid[], integer)', 'execute') as allowed`;
      expect(allowed, role).toBe(false);
    }
  });
});
