// The local gateway's routing, as a plain fetch handler with stub functions (no Deno needed):
// what reaches a function, what the caller sees for unknown routes, what gets logged.
import { describe, expect, it } from "vitest";
import type { AppConfig } from "../../shared/config.ts";
import {
  createGateway,
  functionTarget,
  gatewaySettingsFromEnv,
  type FunctionRegistry,
  type FunctionServer,
} from "../../scripts/lib/gateway-app.ts";

const config = { supabaseUrl: "http://127.0.0.1:54321" } as AppConfig;
const jwks = { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1", d: "PRIVATE" }] };

interface Seen {
  url: string;
  method: string;
  headers: Headers;
  body: string;
}

function echoFunction(seen: Seen[], closed: string[], name: string): () => Promise<{ createFunctionServer(c: AppConfig): Promise<FunctionServer> }> {
  return async () => ({
    async createFunctionServer() {
      return {
        async fetch(req: Request) {
          seen.push({ url: req.url, method: req.method, headers: req.headers, body: await req.text() });
          return Response.json({ ok: true }, { status: 201 });
        },
        async close() {
          closed.push(name);
        },
      };
    },
  });
}

function setup(extra: FunctionRegistry = {}) {
  const seen: Seen[] = [];
  const closed: string[] = [];
  const logs: string[] = [];
  const errors: string[] = [];
  const gateway = createGateway({
    registry: { "secret-proxy": echoFunction(seen, closed, "secret-proxy"), "audit-logs": echoFunction(seen, closed, "audit-logs"), ...extra },
    aliases: { "/api/audit-logs": "audit-logs" },
    config,
    jwks,
    log: (line) => logs.push(line),
    logError: (line) => errors.push(line),
  });
  return { gateway, seen, closed, logs, errors };
}

const BASE = "http://127.0.0.1:54321";

describe("function routes", () => {
  it("hands /functions/v1/<name>/... to the function as /<name>/..., query, method and body intact", async () => {
    const { gateway, seen } = setup();
    const res = await gateway.fetch(
      new Request(`${BASE}/functions/v1/secret-proxy/projects/p1/secrets/A?version=2`, {
        method: "PUT",
        headers: { authorization: "Bearer t", "content-type": "application/json" },
        body: JSON.stringify({ value: "v" }),
      }),
    );
    expect(res.status).toBe(201);
    expect(seen).toHaveLength(1);
    expect(new URL(seen[0].url).pathname).toBe("/secret-proxy/projects/p1/secrets/A");
    expect(new URL(seen[0].url).search).toBe("?version=2");
    expect(seen[0].method).toBe("PUT");
    expect(seen[0].headers.get("authorization")).toBe("Bearer t");
    expect(seen[0].body).toBe('{"value":"v"}');
  });

  it("serves the bare function path as /<name>", async () => {
    const { gateway, seen } = setup();
    await gateway.fetch(new Request(`${BASE}/functions/v1/secret-proxy`));
    expect(new URL(seen[0].url).pathname).toBe("/secret-proxy");
  });

  it("appends the connecting address to X-Forwarded-For, as Supabase's gateway does", async () => {
    const { gateway, seen } = setup();
    await gateway.fetch(new Request(`${BASE}/functions/v1/secret-proxy/x`, { headers: { "x-forwarded-for": "203.0.113.9" } }), {
      remoteAddress: "127.0.0.1",
    });
    await gateway.fetch(new Request(`${BASE}/functions/v1/secret-proxy/x`), { remoteAddress: "::1" });
    expect(seen[0].headers.get("x-forwarded-for")).toBe("203.0.113.9, 127.0.0.1");
    expect(seen[1].headers.get("x-forwarded-for")).toBe("::1");
  });

  it("routes the PRD's /api/audit-logs alias to the audit-logs function", async () => {
    const { gateway, seen } = setup();
    await gateway.fetch(new Request(`${BASE}/api/audit-logs?limit=5`));
    await gateway.fetch(new Request(`${BASE}/api/audit-logs/export`));
    expect(seen.map((s) => new URL(s.url).pathname + new URL(s.url).search)).toEqual(["/audit-logs?limit=5", "/audit-logs/export"]);
    expect(functionTarget("/api/audit-logsx", [["/api/audit-logs", "audit-logs"]])).toBeUndefined();
  });

  it("answers an unknown function with the 404 envelope", async () => {
    const { gateway } = setup();
    for (const name of ["nope", "__proto__", "constructor", "toString", "Secret-Proxy", "..%2f"]) {
      const res = await gateway.fetch(new Request(`${BASE}/functions/v1/${name}/x`));
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect((await res.json()).error.code).toBe("function_not_found");
    }
  });

  it("answers other paths with a 404 envelope", async () => {
    const { gateway } = setup();
    for (const path of ["/", "/functions/v1/", "/rest/v1/x", "/auth/v1/token"]) {
      const res = await gateway.fetch(new Request(`${BASE}${path}`));
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toMatch(/^(not_found|function_not_found)$/);
    }
  });

  it("starts each function once and closes it on close()", async () => {
    let starts = 0;
    const seen: Seen[] = [];
    const closed: string[] = [];
    const inner = echoFunction(seen, closed, "counted");
    const { gateway } = setup({
      counted: async () => {
        starts++;
        return inner();
      },
    });
    await Promise.all([1, 2, 3].map(() => gateway.fetch(new Request(`${BASE}/functions/v1/counted/x`))));
    expect(starts).toBe(1);
    await gateway.close();
    expect(closed).toEqual(["counted"]);
  });

  it("reports a function that fails to start as 503 and tries again on the next request", async () => {
    let attempts = 0;
    const seen: Seen[] = [];
    const { gateway, errors } = setup({
      flaky: async () => {
        attempts++;
        if (attempts === 1) throw new Error("invalid configuration: SUPABASE_DB_URL is required");
        return echoFunction(seen, [], "flaky")();
      },
    });
    const first = await gateway.fetch(new Request(`${BASE}/functions/v1/flaky/x`));
    expect(first.status).toBe(503);
    expect((await first.json()).error.code).toBe("function_unavailable");
    expect(errors[0]).toContain("SUPABASE_DB_URL is required");
    const second = await gateway.fetch(new Request(`${BASE}/functions/v1/flaky/x`));
    expect(second.status).toBe(201);
  });

  it("turns a function that throws into a 500 envelope and logs only the error's name", async () => {
    const { gateway, errors } = setup({
      broken: async () => ({
        async createFunctionServer() {
          return {
            fetch: () => {
              throw new TypeError("value sk_live_SECRET leaked into a message");
            },
            close: async () => {},
          };
        },
      }),
    });
    const res = await gateway.fetch(new Request(`${BASE}/functions/v1/broken/x`));
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("sk_live_SECRET");
    expect(errors.join("\n")).not.toContain("sk_live_SECRET");
    expect(errors.join("\n")).toContain("TypeError");
  });
});

describe("JWKS", () => {
  it("serves the key set without private members", async () => {
    const { gateway } = setup();
    const res = await gateway.fetch(new Request(`${BASE}/auth/v1/.well-known/jwks.json`));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.keys).toEqual([{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1" }]);
  });

  it("answers other methods with 405", async () => {
    const { gateway } = setup();
    const res = await gateway.fetch(new Request(`${BASE}/auth/v1/.well-known/jwks.json`, { method: "POST" }));
    expect(res.status).toBe(405);
    expect((await res.json()).error.code).toBe("method_not_allowed");
  });
});

describe("request log", () => {
  it("writes method, path without query, status and time; never headers or bodies", async () => {
    const { gateway, logs } = setup();
    await gateway.fetch(
      new Request(`${BASE}/functions/v1/secret-proxy/projects/p/secrets/A?token=QUERYSECRET`, {
        method: "PUT",
        headers: { authorization: "Bearer HEADERSECRET" },
        body: "BODYSECRET",
      }),
    );
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^PUT \/functions\/v1\/secret-proxy\/projects\/p\/secrets\/A 201 \d+\.\dms$/);
    for (const secret of ["QUERYSECRET", "HEADERSECRET", "BODYSECRET"]) expect(logs[0]).not.toContain(secret);
  });
});

describe("gatewaySettingsFromEnv", () => {
  const GATEWAY_JWKS = JSON.stringify({ keys: [] });

  it("defaults to 127.0.0.1:54321", () => {
    expect(gatewaySettingsFromEnv({ GATEWAY_JWKS })).toEqual({
      hostname: "127.0.0.1",
      port: 54321,
      jwks: { keys: [] },
      stopOnStdinEof: false,
    });
  });

  it("rejects a bad port or key set with a message naming the variable", () => {
    expect(() => gatewaySettingsFromEnv({ GATEWAY_JWKS, GATEWAY_PORT: "http" })).toThrow(/GATEWAY_PORT/);
    expect(() => gatewaySettingsFromEnv({})).toThrow(/GATEWAY_JWKS/);
    expect(() => gatewaySettingsFromEnv({ GATEWAY_JWKS: '{"keys":{}}' })).toThrow(/GATEWAY_JWKS/);
  });
});
