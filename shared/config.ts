// The only place that reads the environment. Everything else receives a typed config value.
import { z } from "zod";

const optionalString = z.string().trim().min(1).optional().catch(undefined);

const envSchema = z.object({
  SUPABASE_URL: z.url({ message: "SUPABASE_URL must be the project URL, e.g. http://127.0.0.1:54321" }),
  SUPABASE_DB_URL: optionalString,
  SUPABASE_ANON_KEY: optionalString,
  SECRET_PROXY_DB_TRANSPORT: z.enum(["postgres", "postgrest"]).optional(),
  AUTH_JWKS_URL: z.url().optional(),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: z.string().trim().min(1).default("authenticated"),
  AUTH_LEGACY_JWT_SECRET: optionalString,
  SECRETS_KEYRING: z.string().min(2, "SECRETS_KEYRING must be a JSON object of key id to base64 key"),
  SECRETS_ACTIVE_KEY_ID: z.string().min(1, "SECRETS_ACTIVE_KEY_ID must name a key in SECRETS_KEYRING"),
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(1),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(1_048_576).default(65_536),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(100).default(10),
});

export interface AppConfig {
  supabaseUrl: string;
  /** Direct SQL (postgres.js) or the Data API (supabase-js .rpc()). */
  dbTransport: "postgres" | "postgrest";
  dbUrl?: string;
  anonKey?: string;
  dbPoolMax: number;
  auth: { jwksUrl: string; issuer: string; audience: string; hs256Secret?: string };
  keyring: { json: string; activeKeyId: string };
  /** How many proxies in front of the function append to X-Forwarded-For (Supabase's gateway: 1). */
  trustedProxyHops: number;
  maxBodyBytes: number;
}

export function configFromEnv(env: Record<string, string | undefined>): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  const supabaseUrl = e.SUPABASE_URL.replace(/\/+$/, "");
  const dbTransport = e.SECRET_PROXY_DB_TRANSPORT ?? (e.SUPABASE_DB_URL ? "postgres" : "postgrest");
  if (dbTransport === "postgres" && !e.SUPABASE_DB_URL) {
    throw new Error("invalid configuration: SUPABASE_DB_URL is required for the postgres transport");
  }
  if (dbTransport === "postgrest" && !e.SUPABASE_ANON_KEY) {
    throw new Error("invalid configuration: SUPABASE_ANON_KEY is required for the postgrest transport");
  }
  return {
    supabaseUrl,
    dbTransport,
    dbUrl: e.SUPABASE_DB_URL,
    anonKey: e.SUPABASE_ANON_KEY,
    dbPoolMax: e.DB_POOL_MAX,
    auth: {
      jwksUrl: e.AUTH_JWKS_URL ?? `${supabaseUrl}/auth/v1/.well-known/jwks.json`,
      issuer: e.AUTH_JWT_ISSUER ?? `${supabaseUrl}/auth/v1`,
      audience: e.AUTH_JWT_AUDIENCE,
      hs256Secret: e.AUTH_LEGACY_JWT_SECRET,
    },
    keyring: { json: e.SECRETS_KEYRING, activeKeyId: e.SECRETS_ACTIVE_KEY_ID },
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    maxBodyBytes: e.MAX_BODY_BYTES,
  };
}

/** The process environment in Deno (Edge Functions) or Node (scripts, tests). */
export function processEnv(): Record<string, string | undefined> {
  const deno = (globalThis as { Deno?: { env: { toObject(): Record<string, string> } } }).Deno;
  if (deno) return deno.env.toObject();
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
}
