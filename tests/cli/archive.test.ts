// `npm run archive -- list|verify|cat|run` as an operator runs it: a child process against a real
// database and a local archive directory, including corrupted and truncated chunks.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { partitionLines, seedMonth } from "../support/audit-archive-fixtures.ts";

const ROOT = join(import.meta.dirname, "..", "..");
let db: TestDatabase;
let dir: string;
let original: string[];
const PARTITION = "audit_logs_p2014_02";

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "archive.ts"), ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        SUPABASE_DB_URL: db.url,
        AUDIT_ARCHIVE_STORAGE: "local",
        AUDIT_ARCHIVE_LOCAL_DIR: dir,
        AUDIT_ARCHIVE_CHUNK_ROWS: "100",
        AUDIT_ARCHIVE_MAX_CHUNKS_PER_CALL: "100",
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "audit-archive-cli-"));
  await seedMonth(db.sql, "2014-02-01", 250);
  original = await partitionLines(db.sql, PARTITION);
}, 120_000);
afterAll(() => db?.drop());

async function chunkFile(seq: number): Promise<string> {
  const [{ path }] = await db.sql`select path from secret_store.audit_archive_chunks where partition_name = ${PARTITION} and seq = ${seq}`;
  return join(dir, "audit-archive", path);
}

describe("npm run archive", () => {
  it("run archives, list shows it, verify passes, cat prints exactly the archived rows", async () => {
    const dry = await cli("run", "--dry-run");
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).due).toEqual([expect.objectContaining({ partition: PARTITION, rows: 250 })]);

    const run = await cli("run");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).archived).toEqual([expect.objectContaining({ partition: PARTITION, state: "dropped", rows_stored: 250 })]);

    const list = await cli("list");
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout.trim())).toMatchObject({ partition: PARTITION, state: "dropped", rows: 250, chunks: 3 });

    const verify = await cli("verify", PARTITION);
    expect(verify.code).toBe(0);
    expect(verify.stderr).toContain(`${PARTITION}: OK — 250 rows in 3 chunks`);

    const cat = await cli("cat", PARTITION);
    expect(cat.code).toBe(0);
    expect(cat.stdout.trimEnd().split("\n")).toEqual(original);
  }, 60_000);

  it.each([
    ["secret, action, outcome, access type and a half-open time range", (pick: Record<string, string>) => ({
      args: ["--secret-id", pick.secret_id, "--action", "read,list", "--outcome", "granted,denied,not_found", "--access-type", "read",
        "--from", "2014-02-05T00:00:00Z", "--to", "2014-02-25T00:00:00+00:00"],
      keep: (r: Record<string, string>) => r.secret_id === pick.secret_id && ["read", "list"].includes(r.action) &&
        r.access_type === "read" && Date.parse(r.timestamp) >= Date.parse("2014-02-05T00:00:00Z") &&
        Date.parse(r.timestamp) < Date.parse("2014-02-25T00:00:00Z"),
    })],
    ["user identity, project and secret name", (pick: Record<string, string>) => ({
      args: ["--user-identity", pick.user_identity, "--project-id", pick.project_id, "--secret-name", `${pick.secret_name},NOPE`],
      keep: (r: Record<string, string>) => r.user_identity === pick.user_identity && r.project_id === pick.project_id && r.secret_name === pick.secret_name,
    })],
  ])("cat filters like the query API: %s", async (_name, build) => {
    const pick = original.map((l) => JSON.parse(l)).find((r, i) => i > 10 && r.secret_id && r.access_type === "read");
    const { args, keep } = build(pick);
    const expected = original.filter((l) => keep(JSON.parse(l)));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(original.length);
    const cat = await cli("cat", PARTITION, ...args);
    expect(cat.code).toBe(0);
    expect(cat.stdout.trimEnd().split("\n")).toEqual(expected);
    expect(cat.stderr).toContain(`${expected.length} row(s) printed`);
  }, 30_000);

  it.each([
    ["an unknown action", ["--action", "steal"], /invalid action/],
    ["a bad secret id", ["--secret-id", "nope"], /invalid secret-id/],
    ["from after to", ["--from", "2014-03-01T00:00:00Z", "--to", "2014-02-01T00:00:00Z"], /must not be after/],
    ["an unknown option", ["--colour", "red"], /Unknown option/],
  ])("refuses %s with a usage error", async (_name, args, message) => {
    const res = await cli("cat", PARTITION, ...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  }, 30_000);

  it("reports a corrupted chunk and a truncated chunk by number and reason", async () => {
    const second = await chunkFile(2);
    const bytes = readFileSync(second);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    writeFileSync(second, flipped);
    const third = await chunkFile(3);
    truncateSync(third, readFileSync(third).length - 7);

    const verify = await cli("verify", PARTITION);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/PROBLEM chunk 2 \(.*chunk-000002\.ndjson\.gz\): sha256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64} \(corrupted\)/);
    expect(verify.stderr).toMatch(/PROBLEM chunk 3 \(.*chunk-000003\.ndjson\.gz\): size \d+ bytes, manifest says \d+ \(truncated\)/);
    expect(verify.stderr).toContain("chunk 1/3: ok");
    expect(verify.stderr).toContain(`${PARTITION}: FAILED — 2 problem(s)`);

    // cat still prints the rows of the chunk that passed, and fails.
    const cat = await cli("cat", PARTITION);
    expect(cat.code).toBe(1);
    expect(cat.stdout.trimEnd().split("\n")).toEqual(original.slice(0, 100));
    writeFileSync(second, bytes);
  }, 60_000);
});
