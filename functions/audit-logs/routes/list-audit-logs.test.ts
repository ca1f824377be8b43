import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDITOR, createAuditLogsHarness, type AuditLogsHarness } from "../../../tests/support/audit-logs-harness.ts";
import {
  ACTIONS, IDENTITIES, IP_FILTERS, OUTCOMES, pick, prng, referenceFilter, referenceRows, seedRandomTrail, subset,
  type ReferenceFilters,
} from "../../../tests/support/audit-data.ts";

const SEED = 20261127;
let h: AuditLogsHarness;
let secrets: { id: string; name: string }[];

beforeAll(async () => {
  h = await createAuditLogsHarness();
  ({ secrets } = await seedRandomTrail(h.sql, h.projectId, 600, SEED));
  // Rows in the other project must never show up.
  await seedRandomTrail(h.sql, h.otherProjectId, 100, SEED + 1);
});
afterAll(() => h?.close());

function queryString(projectId: string, f: ReferenceFilters, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({ project_id: projectId });
  for (const [key, value] of Object.entries(f)) params.set(key, Array.isArray(value) ? value.join(",") : String(value));
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params.toString();
}

/** Walks every page; returns the ids in the order served. */
async function walk(f: ReferenceFilters, limit: number, between?: () => Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const res = await h.request(`?${queryString(h.projectId, f, { limit: String(limit), ...(cursor ? { cursor } : {}) })}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { data: { id: string }[]; next_cursor: string | null };
    expect(body.data.length).toBeLessThanOrEqual(limit);
    ids.push(...body.data.map((e) => e.id));
    if (body.next_cursor === null) return ids;
    expect(body.data).toHaveLength(limit);
    cursor = body.next_cursor;
    await between?.();
  }
  throw new Error("walk did not end");
}

function randomFilters(rand: () => number): ReferenceFilters {
  const f: ReferenceFilters = {};
  const day = () => `2026-${pick(rand, ["08", "09", "10"])}-${String(1 + Math.floor(rand() * 28)).padStart(2, "0")}`;
  if (rand() < 0.3) f.secret_id = subset(rand, secrets.map((s) => s.id), 2);
  if (rand() < 0.2) f.secret_name = subset(rand, [...secrets.map((s) => s.name), "MISSING_1"], 2);
  if (rand() < 0.35) f.from = `${day()}T00:00:00.000000Z`;
  if (rand() < 0.35) f.to = `${day()}T12:00:00.000000Z`;
  if (f.from && f.to && f.from > f.to) [f.from, f.to] = [f.to, f.from];
  if (rand() < 0.3) f.user_identity = pick(rand, IDENTITIES);
  if (rand() < 0.2) f.access_type = subset(rand, ["read", "write"], 1);
  if (rand() < 0.3) f.action = subset(rand, ACTIONS, 3);
  if (rand() < 0.3) f.outcome = subset(rand, OUTCOMES, 2);
  if (rand() < 0.3) f.ip = subset(rand, IP_FILTERS, 2);
  return f;
}

describe("GET /audit-logs: filters", () => {
  it("matches the reference filter for every single filter and 80 random combinations, walking all pages", async () => {
    const rand = prng(SEED + 2);
    const singles: ReferenceFilters[] = [
      {},
      { secret_id: [secrets[0].id] },
      { secret_id: [secrets[1].id, secrets[2].id] },
      { secret_name: ["SECRET_3"] },
      { secret_name: ["MISSING_0", "MISSING_2"] },
      { from: "2026-09-15T12:00:00.000000Z" },
      { to: "2026-09-15T12:00:00.000000Z" },
      { from: "2026-09-01T00:00:00.000000Z", to: "2026-09-15T12:00:00.000000Z" },
      { user_identity: "svc:deploy" },
      { access_type: ["write"] },
      { action: ["batch_read"] },
      { outcome: ["denied", "not_found"] },
      ...IP_FILTERS.map((ip) => ({ ip: [ip] })),
      { secret_id: [secrets[0].id], from: "2026-08-10T00:00:00.000000Z", to: "2026-09-20T00:00:00.000000Z" },
      { user_identity: "alice", outcome: ["denied"] },
    ];
    const combos = [...singles, ...Array.from({ length: 80 }, () => randomFilters(rand))];
    let nonEmpty = 0;
    for (const f of combos) {
      const expected = referenceFilter(await referenceRows(h.sql, h.projectId), f).map((r) => r.id);
      const served = await walk(f, 1 + Math.floor(rand() * 120));
      expect(served, JSON.stringify(f)).toEqual(expected);
      if (expected.length > 0) nonEmpty++;
    }
    // The data exercises the filters: most combinations select something, not everything.
    expect(nonEmpty).toBeGreaterThan(combos.length / 2);
  });

  it("accepts a date-only range and an offset, meaning the same instants", async () => {
    const a = await (await h.request(`?project_id=${h.projectId}&from=2026-09-01&to=2026-09-02&limit=1000`)).json();
    const b = await (await h.request(`?project_id=${h.projectId}&from=${encodeURIComponent("2026-09-01T02:00:00+02:00")}&to=2026-09-02T00:00:00Z&limit=1000`)).json();
    expect(a.data.length).toBeGreaterThan(0);
    expect(b.data.map((e: { id: string }) => e.id)).toEqual(a.data.map((e: { id: string }) => e.id));
  });

  it("returns the PRD's field names and the rest of the row", async () => {
    const res = await h.request(`?project_id=${h.projectId}&limit=1&secret_id=${secrets[0].id}`);
    const [entry] = (await res.json()).data;
    expect(Object.keys(entry).sort()).toEqual(
      ["access_type", "action", "actor_type", "details", "forwarded_for", "id", "ip_address", "outcome", "project_id",
        "request_id", "secret_id", "secret_name", "secret_version", "timestamp", "user_agent", "user_identity"].sort(),
    );
    expect(entry.secret_id).toBe(secrets[0].id);
    expect(entry.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });
});

describe("GET /audit-logs: pagination", () => {
  it("returns every row exactly once, in order, while new entries are written during the walk", async () => {
    const f: ReferenceFilters = { action: ["read", "create", "audit_query"] as string[] };
    const expected = referenceFilter(await referenceRows(h.sql, h.projectId), f).map((r) => r.id);
    let written = 0;
    const served = await walk(f, 7, async () => {
      // New accesses (timestamped by the database clock) land while the walk is under way.
      await h.recordAccess("alice", h.projectId, { secretName: "SECRET_0", action: "read" });
      await h.recordAccess("bob", h.projectId, { secretName: "SECRET_1", action: "create", outcome: "denied" });
      written += 2;
    });
    expect(written).toBeGreaterThan(10);
    expect(new Set(served).size).toBe(served.length);
    expect(served).toEqual(expected);
  });

  it("pages across timestamp ties by id", async () => {
    const f = { from: "2026-09-15T12:00:00.000000Z", to: "2026-09-15T12:00:00.000001Z" };
    const expected = referenceFilter(await referenceRows(h.sql, h.projectId), f).map((r) => r.id);
    expect(expected.length).toBeGreaterThan(3);
    expect(await walk(f, 2)).toEqual(expected);
  });

  it("refuses a tampered cursor, and one issued for another project or other filters, with 400 naming cursor", async () => {
    const first = await (await h.request(`?project_id=${h.projectId}&limit=2&outcome=denied`)).json();
    const cursor: string = first.next_cursor;
    expect(cursor).toEqual(expect.any(String));
    const [body, tag] = cursor.split(".");
    const payload = JSON.parse(Buffer.from(body, "base64url").toString());
    const forgedBody = Buffer.from(JSON.stringify({ ...payload, i: "1" })).toString("base64url");
    const flipped = tag.slice(0, -2) + (tag.at(-2) === "A" ? "B" : "A") + tag.at(-1);
    const attempts = [
      `project_id=${h.projectId}&limit=2&outcome=denied&cursor=${forgedBody}.${tag}`,
      `project_id=${h.projectId}&limit=2&outcome=denied&cursor=${body}.${flipped}`,
      `project_id=${h.projectId}&limit=2&outcome=denied&cursor=garbage`,
      `project_id=${h.projectId}&limit=2&outcome=granted&cursor=${cursor}`,
      `project_id=${h.projectId}&limit=2&cursor=${cursor}`,
      `project_id=${h.otherProjectId}&limit=2&outcome=denied&cursor=${cursor}`,
    ];
    for (const qs of attempts) {
      const res = await h.request(`?${qs}`, { token: qs.includes(h.otherProjectId) ? h.tokens.otherAuditor : h.tokens.auditor });
      expect(res.status, qs).toBe(400);
      const err = await res.json();
      expect(err.error.details.map((d: { parameter: string }) => d.parameter)).toEqual(["cursor"]);
    }
    // The same cursor with the same filters (in another order) and another limit still works.
    const ok = await h.request(`?outcome=denied&limit=5&project_id=${h.projectId}&cursor=${cursor}`);
    expect(ok.status).toBe(200);
  });
});

describe("GET /audit-logs: reading the trail leaves a trail", () => {
  it("records each query with its filters, without the page containing its own record", async () => {
    const before = await h.lastAuditId();
    const res = await h.request(`?project_id=${h.projectId}&outcome=denied,not_found&user_identity=alice&limit=3`, {
      headers: { "x-forwarded-for": "198.51.100.4", "x-request-id": "audit-query-0001" },
    });
    expect(res.status).toBe(200);
    const rows = await h.auditRowsAfter(before);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      project_id: h.projectId,
      action: "audit_query",
      access_type: "read",
      outcome: "granted",
      secret_id: null,
      user_identity: AUDITOR,
      ip_address: "198.51.100.4",
      request_id: "audit-query-0001",
      details: { filters: { outcome: ["denied", "not_found"], user_identity: "alice" }, limit: 4, returned: expect.any(Number), after_cursor: false },
    });
    const page = await (await h.request(`?project_id=${h.projectId}&action=audit_query&limit=1`)).json();
    expect(page.data[0].id).toBe(String(rows[0].id));
  });
});
