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
  /** audit-archive: partition upkeep and archival (see archiveConfigFromEnv). */
  archive: ArchiveConfig;
  /** audit-logs: cursors, export and live stream (see auditLogsConfigFromEnv). */
  auditLogs: AuditLogsConfig;
}

type Env = Record<string, string | undefined>;

// Every problem at once, naming the variable (never echoing its value: it may be a key).
function parseEnv<T extends z.ZodType>(schema: T, env: Env): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}

export function configFromEnv(env: Env): AppConfig {
  const e = parseEnv(envSchema, env);
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
    archive: archiveConfigFromEnv(env),
    auditLogs: auditLogsConfigFromEnv(env),
  };
}

// audit-archive settings. Parsed on their own as well, so the archive CLI, the bench and the local
// timer need only these (not the secrets keyring).
const archiveEnvSchema = z.object({
  SUPABASE_URL: z.url().optional(),
  SUPABASE_DB_URL: optionalString,
  SUPABASE_SERVICE_ROLE_KEY: optionalString,
  /** Shared secret callers (pg_cron via pg_net, operators) present as `Authorization: Bearer …`. */
  AUDIT_ARCHIVE_KEY: z.string().min(32, "AUDIT_ARCHIVE_KEY must be at least 32 characters").optional(),
  AUDIT_ARCHIVE_STORAGE: z.enum(["supabase", "local"]).optional(),
  AUDIT_ARCHIVE_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9_.-]{1,62}$/, "AUDIT_ARCHIVE_BUCKET must be a bucket name").default("audit-archive"),
  AUDIT_ARCHIVE_LOCAL_DIR: z.string().min(1).default(".local/archive"),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(90),
  AUDIT_PARTITIONS_AHEAD: z.coerce.number().int().min(1).max(24).default(3),
  AUDIT_ARCHIVE_CHUNK_ROWS: z.coerce.number().int().min(100).max(1_000_000).default(50_000),
  AUDIT_ARCHIVE_MAX_CHUNKS_PER_CALL: z.coerce.number().int().min(1).max(10_000).default(3),
  AUDIT_ARCHIVE_TIME_BUDGET_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  AUDIT_ARCHIVE_LEASE_SECONDS: z.coerce.number().int().min(10).max(86_400).default(300),
  AUDIT_ARCHIVE_STORAGE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(20_000),
  AUDIT_ARCHIVE_STORAGE_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
});

export interface ArchiveConfig {
  supabaseUrl?: string;
  dbUrl?: string;
  /** Required to serve POST /audit-archive; compared in constant time. */
  key?: string;
  /** Supabase Storage (needs supabaseUrl + serviceRoleKey) or a local directory. */
  storage:
    | { kind: "supabase"; bucket: string; serviceRoleKey?: string; timeoutMs: number; attempts: number }
    | { kind: "local"; bucket: string; dir: string };
  /** Rows stay in the hot table at least this long (whole months leave once their end is older). */
  retentionDays: number;
  /** Monthly partitions kept ready ahead of the current month. */
  partitionsAhead: number;
  chunkRows: number;
  /** Bounded work per call (Supabase: ~2 s CPU, 150 s wall): at most this many chunks … */
  maxChunksPerCall: number;
  /** … and no new chunk started after this much wall time. */
  timeBudgetMs: number;
  /** How long a run's claim on a partition lasts without progress (a killed run's claim expires). */
  leaseSeconds: number;
}

export function archiveConfigFromEnv(env: Env): ArchiveConfig {
  const e = parseEnv(archiveEnvSchema, env);
  const kind = e.AUDIT_ARCHIVE_STORAGE ?? (e.SUPABASE_SERVICE_ROLE_KEY ? "supabase" : "local");
  return {
    supabaseUrl: e.SUPABASE_URL?.replace(/\/+$/, ""),
    dbUrl: e.SUPABASE_DB_URL,
    key: e.AUDIT_ARCHIVE_KEY,
    storage: kind === "supabase"
      ? {
        kind,
        bucket: e.AUDIT_ARCHIVE_BUCKET,
        serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY,
        timeoutMs: e.AUDIT_ARCHIVE_STORAGE_TIMEOUT_MS,
        attempts: e.AUDIT_ARCHIVE_STORAGE_ATTEMPTS,
      }
      : { kind, bucket: e.AUDIT_ARCHIVE_BUCKET, dir: e.AUDIT_ARCHIVE_LOCAL_DIR },
    retentionDays: e.AUDIT_RETENTION_DAYS,
    partitionsAhead: e.AUDIT_PARTITIONS_AHEAD,
    chunkRows: e.AUDIT_ARCHIVE_CHUNK_ROWS,
    maxChunksPerCall: e.AUDIT_ARCHIVE_MAX_CHUNKS_PER_CALL,
    timeBudgetMs: e.AUDIT_ARCHIVE_TIME_BUDGET_MS,
    leaseSeconds: e.AUDIT_ARCHIVE_LEASE_SECONDS,
  };
}

/** The process environment in Deno (Edge Functions) or Node (scripts, tests). */
export function processEnv(): Record<string, string | undefined> {
  const deno = (globalThis as { Deno?: { env: { toObject(): Record<string, string> } } }).Deno;
  if (deno) return deno.env.toObject();
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
}

// audit-logs settings.
const auditLogsEnvSchema = z.object({
  /** HMAC key for pagination cursors; when unset, one is derived from the active keyring key. */
  AUDIT_CURSOR_SECRET: z.string().min(32, "AUDIT_CURSOR_SECRET must be at least 32 characters").optional(),
  AUDIT_STREAM_HEARTBEAT_SECONDS: z.coerce.number().int().min(1).max(300).default(15),
  AUDIT_EXPORT_BATCH_ROWS: z.coerce.number().int().min(100).max(50_000).default(2_000),
});

export interface AuditLogsConfig {
  cursorSecret?: string;
  streamHeartbeatMs: number;
  exportBatchRows: number;
}

export function auditLogsConfigFromEnv(env: Env): AuditLogsConfig {
  const e = parseEnv(auditLogsEnvSchema, env);
  return {
    cursorSecret: e.AUDIT_CURSOR_SECRET,
    streamHeartbeatMs: e.AUDIT_STREAM_HEARTBEAT_SECONDS * 1000,
    exportBatchRows: e.AUDIT_EXPORT_BATCH_ROWS,
  };
}
