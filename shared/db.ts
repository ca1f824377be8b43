// One small door to the database: call an audited SQL function as the verified caller. Two ways
// through it, the same SQL functions behind both, so every rule lives in the database:
//   - direct SQL with postgres.js (fewest hops), which sets the caller's claims and role inside
//     the transaction exactly as PostgREST does;
//   - the Data API with supabase-js .rpc(), forwarding the caller's own JWT.
import postgres, { type Sql } from "postgres";
import { createClient } from "@supabase/supabase-js";
import ws from "ws";
import type { AppConfig } from "./config.ts";

export interface DbCaller {
  /** Verified JWT claims; the SQL functions read `sub` from them. */
  claims: Record<string, unknown>;
  /** The raw verified JWT, forwarded as-is by the Data API transport. */
  token: string;
}

export type RpcArgs = Record<string, unknown>;

export interface Rpc {
  call<T>(fn: string, args: RpcArgs, caller: DbCaller): Promise<T>;
  close(): Promise<void>;
}

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function assertSqlName(kind: string, name: string): void {
  if (!SQL_NAME.test(name)) throw new Error(`invalid ${kind} name`);
}

/** Direct SQL. `schema` lets the benchmark point the same code at its unaudited copy. */
export function createPostgresRpc(sqlOrUrl: Sql | string, opts: { poolMax?: number; schema?: string } = {}): Rpc {
  const sql = typeof sqlOrUrl === "string"
    ? postgres(sqlOrUrl, { max: opts.poolMax ?? 10, onnotice: () => {}, connection: { application_name: "secret-audit" } })
    : sqlOrUrl;
  const schema = opts.schema ?? "public";
  assertSqlName("schema", schema);
  return {
    async call<T>(fn: string, args: RpcArgs, caller: DbCaller): Promise<T> {
      assertSqlName("function", fn);
      const names = Object.keys(args);
      names.forEach((n) => assertSqlName("argument", n));
      // One statement, so one round trip and one implicit transaction: the materialized CTE sets
      // the caller's claims and role (transaction-local, as PostgREST does) before the function
      // runs, and postgres.js resolves only at ReadyForQuery, i.e. after the commit succeeded, so
      // no result is used unless its audit row is durable.
      const params = names.map((n, i) => `${n} => $${i + 2}`).join(", ");
      const statement = `with caller as materialized (
          select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true))
        select ${schema}.${fn}(${params}) as result from caller`;
      const rows = await sql.unsafe(statement, [JSON.stringify(caller.claims), ...names.map((n) => args[n])] as never[]);
      return (rows as unknown as { result: T }[])[0].result;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

/** Raised when the Data API answers with an error; carries no request content. */
export class DataApiError extends Error {
  constructor(readonly status: number, readonly code: string | undefined) {
    super(`data api call failed with status ${status}${code ? ` (${code})` : ""}`);
    this.name = "DataApiError";
  }
}

/** The Data API (PostgREST) with the caller's JWT, so RLS and auth.jwt() see the real caller. */
export function createPostgrestRpc(opts: { supabaseUrl: string; anonKey: string; fetch?: typeof fetch }): Rpc {
  return {
    async call<T>(fn: string, args: RpcArgs, caller: DbCaller): Promise<T> {
      assertSqlName("function", fn);
      const client = createClient(opts.supabaseUrl, opts.anonKey, {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
        global: { headers: { Authorization: `Bearer ${caller.token}` }, ...(opts.fetch ? { fetch: opts.fetch } : {}) },
        // Node 20 has no global WebSocket and supabase-js refuses to build a client without one
        // (realtime is never used here). Deno and Node 22+ bring their own.
        realtime: { transport: (globalThis.WebSocket ?? ws) as never },
      });
      const { data, error, status } = await client.rpc(fn, args);
      if (error) throw new DataApiError(status, error.code);
      return data as T;
    },
    close: async () => {},
  };
}

/** The transport the configuration names. */
export function rpcFromConfig(config: AppConfig): Rpc {
  return config.dbTransport === "postgres"
    ? createPostgresRpc(config.dbUrl!, { poolMax: config.dbPoolMax })
    : createPostgrestRpc({ supabaseUrl: config.supabaseUrl, anonKey: config.anonKey! });
}
