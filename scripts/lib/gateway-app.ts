// The local stand-in for Supabase's API gateway, as a plain fetch handler (no runtime APIs, so it
// runs under Deno in the stack and under Node in unit tests):
//   /functions/v1/<name>/...        → that function's server, with `/functions/v1` stripped, the
//                                      way hosted Supabase hands `/<name>/...` to the function;
//   /auth/v1/.well-known/jwks.json  → the dev JWKS (public keys only);
//   path aliases (the PRD's `/api/audit-logs`) → a function, rewritten to `/<name>/...`.
// Like Supabase's gateway it appends the connecting address to X-Forwarded-For, which is the one
// trusted hop the functions' client-IP logic counts from the right.
import type { AppConfig } from "../../shared/config.ts";

export interface FunctionServer {
  /** Hono's app.fetch may answer synchronously; both are accepted. */
  fetch(req: Request): Response | Promise<Response>;
  close(): Promise<void>;
}

/** What every `functions/<name>/server.ts` exports. */
export interface FunctionModule {
  createFunctionServer(config: AppConfig): Promise<FunctionServer>;
}

/** Function name → lazy import of its server module. */
export type FunctionRegistry = Record<string, () => Promise<FunctionModule>>;

/** Path prefix → function name; `/api/audit-logs/x` with `{ "/api/audit-logs": "audit-logs" }` → `/audit-logs/x`. */
export type PathAliases = Record<string, string>;

export interface GatewayOptions {
  registry: FunctionRegistry;
  aliases?: PathAliases;
  config: AppConfig;
  jwks: { keys: Record<string, unknown>[] };
  /** One line per request; default console.log. */
  log?: (line: string) => void;
  /** Problems worth an operator's attention (a function that failed to load); default console.error. */
  logError?: (line: string) => void;
}

export interface Gateway {
  fetch(req: Request, connection?: { remoteAddress?: string }): Promise<Response>;
  /** Closes every function server that was started (their database pools). */
  close(): Promise<void>;
}

export const FUNCTIONS_PREFIX = "/functions/v1/";
export const JWKS_PATH = "/auth/v1/.well-known/jwks.json";

const FUNCTION_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

export function createGateway(opts: GatewayOptions): Gateway {
  const log = opts.log ?? ((line: string) => console.log(line));
  const logError = opts.logError ?? ((line: string) => console.error(line));
  // A Map, not the registry object: a path segment like `__proto__` or `constructor` must not
  // reach Object.prototype.
  const registry = new Map(Object.entries(opts.registry));
  const aliases = Object.entries(opts.aliases ?? {}).sort(([a], [b]) => b.length - a.length);
  const started = new Map<string, Promise<FunctionServer>>();
  const jwksBody = JSON.stringify(publicOnly(opts.jwks));

  function serverFor(name: string): Promise<FunctionServer> | undefined {
    const load = registry.get(name);
    if (!load) return undefined;
    let server = started.get(name);
    if (!server) {
      server = load().then((mod) => mod.createFunctionServer(opts.config));
      started.set(name, server);
      // A failed start is not remembered: fix the function and the next request tries again.
      server.catch(() => started.delete(name));
    }
    return server;
  }

  async function route(req: Request, url: URL, remoteAddress: string | undefined): Promise<Response> {
    if (url.pathname === JWKS_PATH) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return errorJson(405, "method_not_allowed", "The JWKS endpoint answers GET only", { allow: "GET, HEAD" });
      }
      return new Response(req.method === "HEAD" ? null : jwksBody, {
        headers: { "content-type": "application/json", "cache-control": "public, max-age=60" },
      });
    }

    const target = functionTarget(url.pathname, aliases);
    if (!target) return errorJson(404, "not_found", "No route for this path on the local gateway");
    if (!FUNCTION_NAME.test(target.name)) {
      return errorJson(404, "function_not_found", "Function name is not valid");
    }
    const server = serverFor(target.name);
    if (!server) return errorJson(404, "function_not_found", `Function "${target.name}" is not registered on the local gateway`);

    let fn: FunctionServer;
    try {
      fn = await server;
    } catch (err) {
      // Load/config failures are the developer's own code and configuration, not request data.
      logError(`function ${target.name} failed to start: ${err instanceof Error ? err.message : String(err)}`);
      return errorJson(503, "function_unavailable", `Function "${target.name}" failed to start; see the gateway log`);
    }
    const request = forwardedRequest(req, url, target.path, remoteAddress);
    try {
      return await fn.fetch(request);
    } catch (err) {
      // Functions answer errors themselves; reaching here is a bug. Name only: a message could
      // carry secret material (law 4).
      logError(`function ${target.name} threw ${err instanceof Error ? err.name : typeof err}`);
      return errorJson(500, "internal_error", "The function failed to handle the request");
    }
  }

  return {
    async fetch(req, connection) {
      const began = performance.now();
      const url = new URL(req.url);
      let status = 500;
      try {
        const response = await route(req, url, connection?.remoteAddress);
        status = response.status;
        return response;
      } finally {
        // Method, path (no query string), status, time. Never headers or bodies.
        log(`${req.method} ${url.pathname} ${status} ${(performance.now() - began).toFixed(1)}ms`);
      }
    },
    async close() {
      const servers = [...started.values()];
      started.clear();
      await Promise.allSettled(servers.map(async (s) => (await s).close()));
    },
  };
}

/** Which function a path is for, and the path the function sees; undefined when none. */
export function functionTarget(
  pathname: string,
  aliases: [prefix: string, name: string][] = [],
): { name: string; path: string } | undefined {
  if (pathname.startsWith(FUNCTIONS_PREFIX)) {
    const rest = pathname.slice(FUNCTIONS_PREFIX.length);
    const slash = rest.indexOf("/");
    const name = slash === -1 ? rest : rest.slice(0, slash);
    if (name === "") return undefined;
    return { name, path: `/${rest}` };
  }
  for (const [prefix, name] of aliases) {
    if (pathname === prefix || pathname.startsWith(`${prefix}/`)) {
      return { name, path: `/${name}${pathname.slice(prefix.length)}` };
    }
  }
  return undefined;
}

// The request as the function sees it: its own path, same query, method, headers and body
// streamed through, plus the connecting address appended to X-Forwarded-For. Built field by field
// rather than `new Request(url, req)`, which would also copy Deno's legacy request.signal.
function forwardedRequest(req: Request, url: URL, path: string, remoteAddress: string | undefined): Request {
  const target = new URL(url);
  target.pathname = path;
  const headers = new Headers(req.headers);
  if (remoteAddress) {
    const chain = headers.get("x-forwarded-for");
    // Plain address, as nginx's $proxy_add_x_forwarded_for writes it (IPv6 unbracketed).
    headers.set("x-forwarded-for", chain ? `${chain}, ${remoteAddress}` : remoteAddress);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  return new Request(target, {
    method: req.method,
    headers,
    body: hasBody ? req.body : null,
    redirect: "manual",
    // Required by the fetch spec for a streamed body.
    duplex: "half",
  } as RequestInit & { duplex: "half" });
}

function publicOnly(jwks: { keys: Record<string, unknown>[] }): { keys: Record<string, unknown>[] } {
  return {
    keys: jwks.keys.map((key) =>
      Object.fromEntries(Object.entries(key).filter(([member]) => !PRIVATE_JWK_MEMBERS.includes(member))),
    ),
  };
}

function errorJson(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export interface GatewaySettings {
  hostname: string;
  port: number;
  jwks: { keys: Record<string, unknown>[] };
  /** Exit when stdin reaches EOF: set by startGateway() so the gateway dies with its parent. */
  stopOnStdinEof: boolean;
}

export const DEFAULT_GATEWAY_PORT = 54321;

/**
 * The gateway's own settings (the functions' come from shared/config): GATEWAY_HOSTNAME,
 * GATEWAY_PORT, GATEWAY_JWKS (public JWKS JSON), GATEWAY_STOP_ON_STDIN_EOF=1.
 */
export function gatewaySettingsFromEnv(env: Record<string, string | undefined>): GatewaySettings {
  const port = env.GATEWAY_PORT === undefined || env.GATEWAY_PORT === "" ? DEFAULT_GATEWAY_PORT : Number(env.GATEWAY_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error("invalid gateway configuration: GATEWAY_PORT must be a port number");
  }
  let jwks: unknown;
  try {
    jwks = JSON.parse(env.GATEWAY_JWKS ?? "");
  } catch {
    throw new Error("invalid gateway configuration: GATEWAY_JWKS must be a JSON Web Key Set");
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.some((k) => k === null || typeof k !== "object")) {
    throw new Error('invalid gateway configuration: GATEWAY_JWKS must be { "keys": [ ... ] }');
  }
  return {
    hostname: env.GATEWAY_HOSTNAME || "127.0.0.1",
    port,
    jwks: { keys },
    stopOnStdinEof: env.GATEWAY_STOP_ON_STDIN_EOF === "1",
  };
}
