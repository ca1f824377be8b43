import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { AUDITOR, createAuditLogsHarness, type AuditLogsHarness } from "../../../tests/support/audit-logs-harness.ts";
import { sseReader } from "../../../tests/support/sse.ts";
import { decodeStreamState, encodeStreamState } from "../live-stream.ts";

let h: AuditLogsHarness;
beforeAll(async () => {
  h = await createAuditLogsHarness({ stream: { heartbeatMs: 150, batchSize: 3 } });
});
afterAll(() => h?.close());

const names = (events: { data?: string }[]) => events.map((e) => JSON.parse(e.data!).secret_name);

describe("GET /audit-logs/stream", () => {
  it("sends new matching entries of the project only, with heartbeats", async () => {
    const res = await h.request(`/stream?project_id=${h.projectId}&outcome=denied`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const sse = sseReader(res);
    try {
      await h.recordAccess("alice", h.projectId, { secretName: "S_DENIED_1", outcome: "denied" });
      await h.recordAccess("alice", h.projectId, { secretName: "S_GRANTED", outcome: "granted" });
      await h.recordAccess("alice", h.otherProjectId, { secretName: "S_OTHER", outcome: "denied" });
      await h.recordAccess("bob", h.projectId, { secretName: "S_DENIED_2", outcome: "denied", ip: "203.0.113.9" });
      const events = await sse.events(2);
      expect(events.map((e) => e.event)).toEqual(["audit_log", "audit_log"]);
      expect(names(events)).toEqual(["S_DENIED_1", "S_DENIED_2"]);
      expect(JSON.parse(events[1].data!)).toMatchObject({ project_id: h.projectId, user_identity: "bob", ip_address: "203.0.113.9", outcome: "denied" });
      // Heartbeats keep flowing, and nothing else matched.
      let heartbeats = 0;
      for (let i = 0; i < 4; i++) {
        const block = await sse.next(2000);
        expect(block.data).toBeUndefined();
        if (block.comments.includes("heartbeat")) heartbeats++;
      }
      expect(heartbeats).toBeGreaterThan(1);
    } finally {
      await sse.close();
    }
  });

  it("resumes from Last-Event-ID with no gap and no duplicate, also for an entry that committed late", async () => {
    const first = sseReader(await h.request(`/stream?project_id=${h.projectId}&user_identity=carol`));
    // An access whose transaction allocated its id first but commits last.
    const slow = postgres(h.db.url, { max: 1, onnotice: () => {} });
    const slowTx = slow.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', '{"sub":"carol"}', true)`;
      await tx`select secret_store.record_access(${h.projectId}::uuid, null, 'LATE', null, 'read', 'granted', '{}'::jsonb)`;
      await new Promise((resolve) => setTimeout(resolve, 700));
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    for (const name of ["A", "B", "C", "D"]) await h.recordAccess("carol", h.projectId, { secretName: name });
    const got = await first.events(4);
    expect(names(got)).toEqual(["A", "B", "C", "D"]);
    // The position names the in-flight id as pending.
    const position = decodeStreamState(first.lastEventId()!)!;
    expect(position.pending.length).toBeGreaterThanOrEqual(1);
    await first.close();

    await slowTx;
    await slow.end();
    for (const name of ["E", "F"]) await h.recordAccess("carol", h.projectId, { secretName: name });
    await h.recordAccess("dave", h.projectId, { secretName: "NOT_CAROL" });

    const before = await h.lastAuditId();
    const resumed = sseReader(await h.request(`/stream?project_id=${h.projectId}&user_identity=carol`, {
      headers: { "last-event-id": first.lastEventId()! },
    }));
    try {
      const replay = await resumed.events(3);
      expect(names(replay).sort()).toEqual(["E", "F", "LATE"]);
      expect(await resumed.eventsWithin(500)).toEqual([]);
      await h.recordAccess("carol", h.projectId, { secretName: "G" });
      expect(names(await resumed.events(1))).toEqual(["G"]);
      const rows = await h.auditRowsAfter(before);
      expect(rows[0]).toMatchObject({ action: "audit_stream", user_identity: AUDITOR, details: { resumed: true, filters: { user_identity: "carol" } } });
    } finally {
      await resumed.close();
    }
  });

  it("pages a long backlog in batches without losing entries when resuming far back", async () => {
    const start = await h.lastAuditId();
    for (let i = 0; i < 10; i++) await h.recordAccess("erin", h.projectId, { secretName: `BACKLOG_${i}` });
    const sse = sseReader(await h.request(`/stream?project_id=${h.projectId}&user_identity=erin`, { headers: { "last-event-id": start } }));
    try {
      expect(names(await sse.events(10))).toEqual(Array.from({ length: 10 }, (_, i) => `BACKLOG_${i}`));
      expect(await sse.eventsWithin(400)).toEqual([]);
    } finally {
      await sse.close();
    }
  });

  it("ends the stream when audit:read is revoked", async () => {
    await h.sql`insert into secret_store.grants (project_id, principal, permission) values (${h.projectId}, 'temp-auditor', 'audit:read')`;
    const token = await h.idp.token("temp-auditor");
    const sse = sseReader(await h.request(`/stream?project_id=${h.projectId}`, { token }));
    await sse.next();
    await h.sql`delete from secret_store.grants where principal = 'temp-auditor'`;
    let block;
    do block = await sse.next(3000);
    while (block.event !== "error");
    expect(JSON.parse(block.data!).error.code).toBe("forbidden");
    await expect(sse.next(1000)).rejects.toThrow("SSE stream ended");
  });

  it("refuses a Last-Event-ID it did not issue, naming the header", async () => {
    for (const bad of ["abc", "-1", "5:7", "1:2,x", "99999999999999999999"]) {
      const res = await h.request(`/stream?project_id=${h.projectId}`, { headers: { "last-event-id": bad } });
      expect(res.status, bad).toBe(400);
      expect((await res.json()).error.details[0].parameter).toBe("last-event-id");
    }
  });

  it("encodes positions compactly and round-trips them", () => {
    expect(encodeStreamState({ after: 42n, pending: [] })).toBe("42");
    expect(encodeStreamState({ after: 42n, pending: [7n, 40n] })).toBe("42:7,40");
    expect(decodeStreamState("42:40,7,40")).toEqual({ after: 42n, pending: [7n, 40n] });
    expect(decodeStreamState("42:42")).toBeNull();
  });
});
