import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { ApiError, errorResponseBody, handleAppError, notFoundHandler, toApiError } from "./errors.ts";

function appThrowing(thrown: () => unknown): Hono {
  const app = new Hono();
  app.onError(handleAppError);
  app.notFound(notFoundHandler);
  app.get("/boom", () => {
    throw thrown();
  });
  return app;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("ApiError", () => {
  it("carries status, code, message and details", () => {
    const details = [{ parameter: "limit", message: "must be at most 1000" }];
    const err = new ApiError(422, "invalid_limit", "Limit too large", details);
    expect(err).toBeInstanceOf(Error);
    expect(err.status).toBe(422);
    expect(err.code).toBe("invalid_limit");
    expect(err.message).toBe("Limit too large");
    expect(err.details).toEqual(details);
  });

  it("renders the envelope, with details only when present", () => {
    expect(errorResponseBody(new ApiError(409, "conflict", "Already exists"))).toEqual({
      error: { code: "conflict", message: "Already exists" },
    });
    expect(
      errorResponseBody(new ApiError(400, "invalid_request", "Bad", [{ parameter: "q", message: "too long" }])),
    ).toEqual({ error: { code: "invalid_request", message: "Bad", details: [{ parameter: "q", message: "too long" }] } });
  });
});

describe("handleAppError", () => {
  it("returns an ApiError as-is with its status and a JSON content type", async () => {
    const app = appThrowing(() => new ApiError(403, "forbidden", "No grant for this secret"));
    const res = await app.request("/boom");
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: { code: "forbidden", message: "No grant for this secret" } });
  });

  it("adds a Bearer challenge to 401 responses", async () => {
    const res = await appThrowing(() => new ApiError(401, "unauthorized", "Missing or invalid bearer token")).request(
      "/boom",
    );
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
  });

  it("maps a Hono HTTPException to its status with a generic code", async () => {
    const res = await appThrowing(() => new HTTPException(413, { message: "Payload Too Large" })).request("/boom");
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: { code: "payload_too_large", message: "Payload Too Large" } });
  });

  it("maps a malformed-JSON HTTPException to 400 bad_request", async () => {
    const res = await appThrowing(() => new HTTPException(400, { message: "Malformed JSON in request body" })).request(
      "/boom",
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe("bad_request");
  });

  it("does not pass through the message of a 5xx HTTPException", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await appThrowing(() => new HTTPException(502, { message: "upstream said sk_live_123" })).request(
      "/boom",
    );
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("sk_live_123");
    expect(JSON.parse(text)).toEqual({ error: { code: "internal_error", message: "An internal error occurred" } });
  });

  it("maps a zod error to 400 invalid_request naming each parameter", async () => {
    const schema = z.object({ limit: z.number().max(1000), filter: z.object({ action: z.enum(["read", "write"]) }) });
    const res = await appThrowing(() => {
      const parsed = schema.safeParse({ limit: 5000, filter: { action: "drop" } });
      return parsed.error;
    }).request("/boom");
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { parameter: string }[] } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.details.map((d) => d.parameter).sort()).toEqual(["filter.action", "limit"]);
  });

  it("turns any other error into a constant 500 without leaking message or stack", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const secret = "postgres://admin:hunter2@db/secret";
    const res = await appThrowing(() => new TypeError(`cannot connect to ${secret}`)).request("/boom");
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "internal_error", message: "An internal error occurred" } });
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("at ");
    const loggedText = logged.mock.calls.flat().map(String).join(" ");
    expect(loggedText).toContain("TypeError");
    expect(loggedText).not.toContain("hunter2");
  });

  it("handles non-Error values passed to it", async () => {
    // Hono rethrows non-Error throwables instead of calling onError, so call the handler directly.
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const app = new Hono();
    app.get("/direct", (c) => handleAppError("a string with a token eyJhbGciOi", c));
    const res = await app.request("/direct");
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("eyJhbGciOi");
    expect(logged.mock.calls.flat().map(String).join(" ")).not.toContain("eyJhbGciOi");
  });

  it("toApiError keeps ApiError identity", () => {
    const err = new ApiError(429, "rate_limited", "Slow down");
    expect(toApiError(err)).toBe(err);
  });
});

describe("notFoundHandler", () => {
  it("answers 404 route_not_found in the envelope", async () => {
    const res = await appThrowing(() => new Error("unused")).request("/nowhere");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("route_not_found");
    expect(body.error.message.length).toBeGreaterThan(0);
  });
});
