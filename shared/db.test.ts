// The two transports behind Rpc. The Data API transport is checked against PostgREST's HTTP
// contract with msw (the exact request we send, the error shapes PostgREST really answers with);
// the direct transport against real Postgres.
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPostgresRpc, createPostgrestRpc, DataApiError } from "./db.ts";
import { createTestDatabase, type TestDatabase } from "../tests/support/database.ts";

const SUPABASE_URL = "http://project-ref.supabase.test";
const ANON_KEY = "anon-key-eyJhbGciOiJIUzI1NiJ9.anon";
const CALLER_TOKEN = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJydW5uZXItMSJ9.c2lnbmF0dXJl";
const caller = { claims: { sub: "runner-1", role: "authenticated" }, token: CALLER_TOKEN };
const ARGS = {
  p_project_id: "7b0e9f3c-2d7e-4c55-9a43-3f0b5a0f2a11",
  p_name: "STRIPE_API_KEY",
  p_version: null,
  p_request: { request_id: "req-12345678", ip: "203.0.113.7", forwarded_for: "203.0.113.7", user_agent: "runner/1.0" },
};
// Distinctive strings from the args that must never show up in an error message.
const ARG_MARKERS = ["7b0e9f3c", "STRIPE_API_KEY", "req-12345678", "203.0.113.7", "runner/1.0"];

interface Captured {
  method: string;
  url: string;
  headers: Headers;
  body: unknown;
}

const server = setupServer();
const captured: Captured[] = [];

function answer(status: number, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  server.use(
    http.post(`${SUPABASE_URL}/rest/v1/rpc/:fn`, async ({ request }) => {
      captured.push({ method: request.method, url: request.url, headers: request.headers, body: await request.clone().json() });
      return typeof body === "string"
        ? new HttpResponse(body, { status, headers })
        : HttpResponse.json(body as Record<string, unknown>, { status, headers });
    }),
  );
}

beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => {
  server.resetHandlers();
  captured.length = 0;
});
afterAll(() => server.close());

describe("createPostgrestRpc (Data API contract)", () => {
  const rpc = () => createPostgrestRpc({ supabaseUrl: SUPABASE_URL, anonKey: ANON_KEY });

  it("POSTs the args as the JSON body to /rest/v1/rpc/<fn> with the anon key as apikey and the caller's token as Authorization", async () => {
    const result = { outcome: "granted", secret_id: "s-1", version: 3, ciphertext: "AAAA" };
    answer(200, result);
    await expect(rpc().call("read_secret", ARGS, caller)).resolves.toEqual(result);
    expect(captured).toHaveLength(1);
    const [req] = captured;
    expect(req.method).toBe("POST");
    expect(req.url).toBe(`${SUPABASE_URL}/rest/v1/rpc/read_secret`);
    expect(req.headers.get("apikey")).toBe(ANON_KEY);
    expect(req.headers.get("authorization")).toBe(`Bearer ${CALLER_TOKEN}`);
    expect(req.headers.get("authorization")).not.toContain(ANON_KEY);
    expect(req.headers.get("content-type")).toMatch(/^application\/json/);
    expect(req.body).toEqual(ARGS);
  });

  it("passes every JSON result through unchanged (objects, arrays, scalars, null)", async () => {
    for (const result of [{ outcome: "denied" }, [{ name: "A" }, { name: "B" }], 42, "text", null]) {
      server.resetHandlers();
      answer(200, JSON.stringify(result));
      await expect(rpc().call("list_secrets", { p_project_id: ARGS.p_project_id }, caller)).resolves.toEqual(result);
    }
  });

  it("sends a different caller's token per call, never a token from an earlier call", async () => {
    answer(200, { outcome: "granted" });
    const client = rpc();
    await client.call("list_secrets", {}, caller);
    await client.call("list_secrets", {}, { claims: { sub: "admin-1" }, token: "second.caller.token" });
    expect(captured.map((c) => c.headers.get("authorization"))).toEqual([`Bearer ${CALLER_TOKEN}`, "Bearer second.caller.token"]);
  });

  it.each([
    [400, "22P02", { code: "22P02", details: null, hint: null, message: 'invalid input syntax for type uuid: "x"' }],
    [401, "PGRST301", { code: "PGRST301", details: null, hint: null, message: "JWT expired" }],
    [
      404,
      "PGRST202",
      {
        code: "PGRST202",
        details: "Searched for the function public.read_secret with parameters p_name, p_project_id, p_request, p_version or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
        hint: null,
        message: "Could not find the function public.read_secret(p_name, p_project_id, p_request, p_version) in the schema cache",
      },
    ],
    [403, "42501", { code: "42501", details: null, hint: null, message: "permission denied for function read_secret" }],
    [500, "P0001", { code: "P0001", details: null, hint: null, message: "no authenticated caller STRIPE_API_KEY req-12345678" }],
  ])("turns a %i PostgREST error into DataApiError(status, code) without request content", async (status, code, body) => {
    answer(status, body);
    const err = await rpc().call("read_secret", ARGS, caller).then(
      () => { throw new Error("expected a rejection"); },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataApiError);
    expect(err).toMatchObject({ name: "DataApiError", status, code });
    const text = `${(err as Error).message} ${String(err)} ${JSON.stringify(err)}`;
    expect((err as Error).message).toBe(`data api call failed with status ${status} (${code})`);
    for (const marker of [...ARG_MARKERS, CALLER_TOKEN, ANON_KEY]) expect(text).not.toContain(marker);
  });

  it("turns a 503 with a non-JSON body into DataApiError(503) with no code", async () => {
    answer(503, "upstream connect error or disconnect/reset before headers", { "content-type": "text/plain" });
    const err = await rpc().call("read_secret", ARGS, caller).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataApiError);
    expect(err).toMatchObject({ status: 503, code: undefined, message: "data api call failed with status 503" });
    expect(captured).toHaveLength(1); // POST is not retried
  });

  it("refuses an invalid function name before any request is made", async () => {
    answer(200, {});
    for (const fn of ["read_secret; drop table x", "../read_secret", "Read_Secret", "", "a".repeat(64)]) {
      await expect(rpc().call(fn, ARGS, caller)).rejects.toThrow("invalid function name");
    }
    expect(captured).toHaveLength(0);
  });
});

describe("createPostgresRpc (direct SQL)", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it("refuses invalid function and argument names before touching the database", async () => {
    const rpc = createPostgresRpc(db.sql);
    for (const fn of ["read_secret()", "read_secret; select 1", "public.read_secret", "READ_SECRET", "1fn", ""]) {
      await expect(rpc.call(fn, {}, caller)).rejects.toThrow("invalid function name");
    }
    for (const arg of ["p_name) ; drop table secret_store.secrets; --", "p name", "P_NAME", "p_name=>1", ""]) {
      await expect(rpc.call("list_secrets", { [arg]: "x" }, caller)).rejects.toThrow("invalid argument name");
    }
    expect(() => createPostgresRpc(db.sql, { schema: "public; drop schema public" })).toThrow("invalid schema name");
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.audit_logs where action <> 'grant'`;
    expect(n).toBe(0);
  });

  it("calls the function as role authenticated with the caller's claims, in a transaction that leaves the session clean", async () => {
    const [{ id: projectId }] = await db.sql<{ id: string }[]>`insert into secret_store.projects (name) values ('p') returning id`;
    const rpc = createPostgresRpc(db.sql);
    const res = await rpc.call<{ outcome: string }>("list_secrets", { p_project_id: projectId, p_request: { request_id: "direct-call-1" } }, caller);
    expect(res).toEqual({ outcome: "denied" });
    const rows = await db.sql`select user_identity, action, outcome, request_id from public.audit_logs where project_id = ${projectId} and action = 'list'`;
    expect(rows).toEqual([{ user_identity: "runner-1", action: "list", outcome: "denied", request_id: "direct-call-1" }]);
    // Neither the role nor the claims leak into the pooled connection afterwards.
    for (let i = 0; i < 4; i++) {
      const [s] = await db.sql`select current_user as u, coalesce(current_setting('request.jwt.claims', true), '') as c`;
      expect(s).toEqual({ u: expect.not.stringMatching(/^authenticated$/), c: "" });
    }
  });
});
