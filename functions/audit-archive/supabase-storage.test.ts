// The Supabase Storage HTTP contract the archiver relies on, pinned with msw: exact requests,
// "already exists" in both shapes Storage has used, 5xx, timeouts and retries.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { delay, http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { ArchiveStorageError } from "./storage.ts";
import { createSupabaseArchiveStorage } from "./supabase-storage.ts";

const SUPABASE_URL = "https://project-ref.supabase.co";
const KEY = "service-role-key-for-tests-0123456789abcdef";
const BUCKET = "audit-archive";
const PATH = "audit_logs/2024/audit_logs_p2024_01/0b5c7a8e-1f7e-4c1e-9b1a-3f2d1c0e9a77/chunk-000001.ndjson.gz";
const OBJECT_URL = `${SUPABASE_URL}/storage/v1/object/${BUCKET}/${PATH}`;
const BYTES = new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5]);

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function storage(overrides: { timeoutMs?: number; attempts?: number } = {}) {
  return createSupabaseArchiveStorage({
    supabaseUrl: SUPABASE_URL,
    serviceRoleKey: KEY,
    bucket: BUCKET,
    timeoutMs: overrides.timeoutMs ?? 2_000,
    attempts: overrides.attempts ?? 3,
    retryDelayMs: 1,
  });
}

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Answers POST uploads with the given responses in turn (the last repeats), recording each request. */
function uploads(...responses: (() => Response | Promise<Response>)[]) {
  const seen: Seen[] = [];
  server.use(
    http.post(`${SUPABASE_URL}/storage/v1/object/${BUCKET}/*`, async ({ request }) => {
      seen.push({
        method: request.method,
        url: request.url,
        headers: Object.fromEntries(request.headers),
        body: new Uint8Array(await request.arrayBuffer()),
      });
      return responses[Math.min(seen.length - 1, responses.length - 1)]();
    }),
    http.put(`${SUPABASE_URL}/storage/v1/object/${BUCKET}/*`, () => {
      throw new Error("the archiver must never use PUT (update/overwrite)");
    }),
  );
  return seen;
}

function downloads(...responses: (() => Response | Promise<Response>)[]) {
  const seen: Seen[] = [];
  server.use(
    http.get(`${SUPABASE_URL}/storage/v1/object/${BUCKET}/*`, async ({ request }) => {
      seen.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers), body: new Uint8Array() });
      return responses[Math.min(seen.length - 1, responses.length - 1)]();
    }),
  );
  return seen;
}

const created = () => HttpResponse.json({ Key: `${BUCKET}/${PATH}`, Id: "3c1e7f7a-0000-4000-8000-000000000001" });
const json = (status: number, body: Record<string, string>) => () => HttpResponse.json(body, { status });

describe("put (upload without upsert)", () => {
  it("POSTs the raw bytes to /storage/v1/object/<bucket>/<path> with x-upsert: false and the key", async () => {
    const seen = uploads(created);
    expect(await storage().put(PATH, BYTES, "application/gzip")).toBe("created");
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe("POST");
    expect(seen[0].url).toBe(OBJECT_URL);
    expect(seen[0].headers).toMatchObject({
      "x-upsert": "false",
      "content-type": "application/gzip",
      authorization: `Bearer ${KEY}`,
      apikey: KEY,
    });
    expect(seen[0].body).toEqual(BYTES);
  });

  it.each([
    ["HTTP 409", json(409, { statusCode: "409", error: "Duplicate", message: "The resource already exists" })],
    ["HTTP 400 with statusCode 409", json(400, { statusCode: "409", error: "Duplicate", message: "The resource already exists" })],
  ])("reports an existing object (%s) as 'exists', without retrying or overwriting", async (_shape, response) => {
    const seen = uploads(response);
    expect(await storage().put(PATH, BYTES, "application/gzip")).toBe("exists");
    expect(seen).toHaveLength(1);
  });

  it("retries 5xx and succeeds", async () => {
    const seen = uploads(json(503, { statusCode: "503", error: "Service Unavailable", message: "try later" }), json(502, {}), created);
    expect(await storage().put(PATH, BYTES, "application/gzip")).toBe("created");
    expect(seen).toHaveLength(3);
    for (const s of seen) expect(s.headers["x-upsert"]).toBe("false");
  });

  it("gives up after the configured attempts with an 'unavailable' error that names no secret", async () => {
    const seen = uploads(json(500, { statusCode: "500", error: "Internal", message: `boom ${KEY}` }));
    const err = await storage({ attempts: 4 }).put(PATH, BYTES, "application/gzip").catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveStorageError);
    expect(err).toMatchObject({ failure: "unavailable", operation: "put", status: 500 });
    expect(seen).toHaveLength(4);
    expect(`${err.message} ${err.stack}`).not.toContain(KEY);
  });

  it("times out a hanging request, retries it, and recognises the earlier upload as already there", async () => {
    const seen = uploads(
      async () => {
        await delay(500);
        return created();
      },
      json(400, { statusCode: "409", error: "Duplicate", message: "The resource already exists" }),
    );
    expect(await storage({ timeoutMs: 100 }).put(PATH, BYTES, "application/gzip")).toBe("exists");
    expect(seen).toHaveLength(2);
  });

  it("reports 'timeout' when every attempt times out", async () => {
    const seen = uploads(async () => {
      await delay(400);
      return created();
    });
    const err = await storage({ timeoutMs: 50, attempts: 2 }).put(PATH, BYTES, "application/gzip").catch((e) => e);
    expect(err).toMatchObject({ name: "ArchiveStorageError", failure: "timeout", operation: "put" });
    expect(seen).toHaveLength(2);
  });

  it.each([
    [403, { statusCode: "403", error: "Unauthorized", message: "new row violates row-level security policy" }],
    [400, { statusCode: "404", error: "Bucket not found", message: "Bucket not found" }],
  ])("does not retry a %s refusal", async (status, body) => {
    const seen = uploads(json(status, body));
    const err = await storage().put(PATH, BYTES, "application/gzip").catch((e) => e);
    expect(err).toMatchObject({ failure: "rejected", status });
    expect(seen).toHaveLength(1);
  });

  it("refuses a path the archiver would never build, before any request", async () => {
    const seen = uploads(created);
    await expect(storage().put("../escape", BYTES, "application/gzip")).rejects.toThrow(/invalid archive object path/);
    expect(seen).toHaveLength(0);
  });
});

describe("get (download)", () => {
  it("GETs /storage/v1/object/<bucket>/<path> with the key and returns the bytes", async () => {
    const seen = downloads(() => new HttpResponse(BYTES, { headers: { "content-type": "application/gzip" } }));
    expect(await storage().get(PATH)).toEqual(BYTES);
    expect(seen[0].url).toBe(OBJECT_URL);
    expect(seen[0].headers).toMatchObject({ authorization: `Bearer ${KEY}`, apikey: KEY });
  });

  it.each([
    ["HTTP 404", json(404, { statusCode: "404", error: "not_found", message: "Object not found" })],
    ["HTTP 400 with statusCode 404", json(400, { statusCode: "404", error: "not_found", message: "Object not found" })],
  ])("returns null for a missing object (%s)", async (_shape, response) => {
    const seen = downloads(response);
    expect(await storage().get(PATH)).toBeNull();
    expect(seen).toHaveLength(1);
  });

  it("retries 5xx and timeouts, then fails with the last cause", async () => {
    const seen = downloads(json(503, {}), async () => {
      await delay(300);
      return new HttpResponse(BYTES);
    }, () => new HttpResponse(BYTES));
    expect(await storage({ timeoutMs: 100 }).get(PATH)).toEqual(BYTES);
    expect(seen).toHaveLength(3);

    downloads(json(502, {}));
    await expect(storage({ attempts: 2 }).get(PATH)).rejects.toMatchObject({ failure: "unavailable", status: 502, operation: "get" });
  });
});
