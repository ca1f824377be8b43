import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveConfigFromEnv } from "../../../shared/config.ts";
import { createTestDatabase, type TestDatabase } from "../../../tests/support/database.ts";
import {
  catalogueEntry,
  instrumentedStorage,
  partitionExists,
  partitionLines,
  readArchivedLines,
  seedMonth,
  tempLocalStorage,
  TEST_SETTINGS,
} from "../../../tests/support/audit-archive-fixtures.ts";
import { createAuditArchiveApp } from "../app.ts";
import { runArchiveRound } from "../archive-round.ts";
import { ArchiveStorageError, type ArchiveStorage } from "../storage.ts";
import { startArchiveTimer } from "../timer.ts";

const KEY = "archive-key-0123456789-abcdefghijklmnop";
let db: TestDatabase;
let storage: ArchiveStorage;
let failNextPut = false;

beforeAll(async () => {
  db = await createTestDatabase();
  await seedMonth(db.sql, "2015-01-01", 3);
  storage = instrumentedStorage(tempLocalStorage(), {
    beforePut: () => {
      if (failNextPut) {
        failNextPut = false;
        throw new ArchiveStorageError("unavailable", "put", "audit_logs/x", 503);
      }
    },
  }).storage;
});
afterAll(() => db?.drop());

function app() {
  return createAuditArchiveApp({
    archiveKey: KEY,
    runRound: ({ dryRun }) => runArchiveRound({ sql: db.sql, storage, settings: TEST_SETTINGS }, { dryRun }),
  });
}

function post(body?: string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) {
  return app().request("/audit-archive", { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
}

describe("POST /audit-archive: security", () => {
  it.each([
    ["no Authorization header", {}],
    ["a wrong key of the same length", { authorization: `Bearer ${KEY.replace(/.$/, "X")}` }],
    ["a prefix of the key", { authorization: `Bearer ${KEY.slice(0, 20)}` }],
    ["a user JWT-looking token", { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" }],
    ["the key without the Bearer scheme", { authorization: KEY }],
  ])("refuses %s with 401 and changes nothing", async (_name, headers) => {
    const res = await post("{}", headers as Record<string, string>);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect(await res.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    expect(await partitionExists(db.sql, "audit_logs_p2015_01")).toBe(true);
    expect(await db.sql`select 1 from secret_store.audit_archives`).toHaveLength(0);
  });

  it("refuses to start with a short key", () => {
    expect(() => createAuditArchiveApp({ archiveKey: "short", runRound: async () => { throw new Error("unused"); } })).toThrow(/32 characters/);
  });
});

describe("POST /audit-archive: input", () => {
  it.each([
    ["malformed JSON", "{", "invalid_json"],
    ["an array", "[]", "invalid_request"],
    ["an unknown field", '{"dry_run": true, "force": true}', "invalid_request"],
    ["a non-boolean dry_run", '{"dry_run": "yes"}', "invalid_request"],
  ])("answers %s with a 400 envelope", async (_name, body, code) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe(code);
  });

  it("answers an oversized body with 413", async () => {
    const res = await post(JSON.stringify({ dry_run: true, pad: "x".repeat(5000) }));
    expect(res.status).toBe(413);
  });

  it("answers other methods and paths with the 404 envelope", async () => {
    const res = await app().request("/audit-archive/other", { method: "POST", headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("route_not_found");
  });
});

describe("POST /audit-archive: rounds", () => {
  it("dry run reports what would be archived and changes nothing", async () => {
    const res = await post('{"dry_run": true}');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ dry_run: true, archived: [], due: [{ partition: "audit_logs_p2015_01", rows: 3, archive_state: null }] });
    expect(await partitionExists(db.sql, "audit_logs_p2015_01")).toBe(true);
    expect(await db.sql`select 1 from secret_store.audit_archives`).toHaveLength(0);
  });

  it("a storage failure answers 503, keeps the partition, and the next call (with no body) finishes", async () => {
    const original = await partitionLines(db.sql, "audit_logs_p2015_01");
    failNextPut = true;
    const failed = await post("{}");
    expect(failed.status).toBe(503);
    const text = await failed.text();
    expect(JSON.parse(text).error.code).toBe("archive_storage_unavailable");
    expect(text).not.toContain(KEY);
    expect(await partitionExists(db.sql, "audit_logs_p2015_01")).toBe(true);

    const res = await app().request("/audit-archive", { method: "POST", headers: { authorization: `bearer ${KEY}` } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ dry_run: false, more_work: false, archived: [{ partition: "audit_logs_p2015_01", state: "dropped", rows_stored: 3 }] });
    expect(body.partitions_ready).toHaveLength(TEST_SETTINGS.partitionsAhead + 1);
    expect((await readArchivedLines(db.sql, storage, "audit_logs_p2015_01")).lines).toEqual(original);
  });
});

describe("startArchiveTimer (local stack)", () => {
  it("archives due partitions without anyone calling, then stops cleanly", async () => {
    const partition = await seedMonth(db.sql, "2015-06-01", 120);
    const dir = mkdtempSync(join(tmpdir(), "audit-archive-timer-"));
    const config = archiveConfigFromEnv({
      SUPABASE_DB_URL: db.url,
      AUDIT_ARCHIVE_STORAGE: "local",
      AUDIT_ARCHIVE_LOCAL_DIR: dir,
      AUDIT_ARCHIVE_CHUNK_ROWS: "100",
      AUDIT_ARCHIVE_MAX_CHUNKS_PER_CALL: "1",
    });
    const lines: string[] = [];
    const timer = startArchiveTimer({ config, intervalMs: 50, log: (l) => lines.push(l) });
    try {
      for (let i = 0; i < 100 && (await partitionExists(db.sql, partition)); i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await timer.stop();
    }
    expect(await partitionExists(db.sql, partition)).toBe(false);
    expect((await catalogueEntry(db.sql, partition)).state).toBe("dropped");
    expect(lines.some((l) => l.includes(`${partition} dropped`))).toBe(true);
  });
});
