// The archive benchmark at small scale: it runs the real path end to end and prints its numbers.
// (The 1M-row run is `npm run bench -- archive`.)
import { afterAll, beforeAll, expect, it } from "vitest";
import { runArchiveBench } from "../../scripts/bench/archive.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

it("archives a seeded partition and reports rows/s and peak memory", async () => {
  const lines: string[] = [];
  await runArchiveBench({ dbUrl: db.url, rows: 120_000, log: (l) => lines.push(l) });
  console.log(lines.join("\n"));
  expect(lines).toContain("  seeded 100,000/120,000 rows into audit_logs_p2001_01");
  expect(lines.find((l) => l.startsWith("export + compression:"))).toMatch(/[\d,]+ rows\/s/);
  expect(lines.find((l) => l.startsWith("peak RSS:"))).toMatch(/^peak RSS: \d+\.\d MB/);
  expect(lines).toContain("verified: 120,000 rows, every chunk's sha256 and size match");
  const [{ gone }] = await db.sql`select to_regclass('audit_partitions.audit_logs_p2001_01') is null as gone`;
  expect(gone).toBe(true);
}, 120_000);
