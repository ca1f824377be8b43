// Local-only key material: the ES256 key that signs dev JWTs (its public half is served as the
// JWKS the functions verify against) and the keyring that seals secret values. Created once under
// .local/ and reused, so tokens and stored secrets survive restarts. Never used outside the local
// stack and tests.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { importJWK, SignJWT, type JWK } from "jose";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const LOCAL_DIR = join(REPO_ROOT, ".local");

export const SIGNING_KEY_FILE = "dev-signing-key.json";
export const KEYRING_FILE = "keyring.json";
export const ARCHIVE_KEY_FILE = "archive-key.json";
/** Where `npm start` runs its embedded Postgres (port as `supabase start` uses). */
export const LOCAL_STACK_PG_PORT = 54322;
export const LOCAL_STACK_DB_URL = `postgres://postgres:postgres@127.0.0.1:${LOCAL_STACK_PG_PORT}/postgres`;
/** Where the local stack's audit-archive keeps its "Storage" bucket. */
export const LOCAL_ARCHIVE_DIR = join(LOCAL_DIR, "archive");

/** An ES256 private JWK that names itself (`kid`). */
export interface DevSigningKey extends JWK {
  kty: "EC";
  crv: "P-256";
  kid: string;
  alg: "ES256";
  d: string;
}

export interface PublicJwks {
  keys: JWK[];
}

/** The shape of SECRETS_KEYRING (keys) plus SECRETS_ACTIVE_KEY_ID, as stored in .local/keyring.json. */
export interface DevKeyring {
  activeKeyId: string;
  /** key id → base64 of 32 random bytes */
  keys: Record<string, string>;
}

export interface DevKeys {
  signingKey: DevSigningKey;
  jwks: PublicJwks;
  keyring: DevKeyring;
  /** AUDIT_ARCHIVE_KEY: what pg_cron (here: anyone calling by hand) presents to audit-archive. */
  archiveKey: string;
}

/** Reads the dev keys from `dir`, creating whichever is missing. */
export function ensureDevKeys(dir: string = LOCAL_DIR): DevKeys {
  mkdirSync(dir, { recursive: true });
  const signingKey = readOrCreate(join(dir, SIGNING_KEY_FILE), createSigningKey, assertSigningKey);
  const keyring = readOrCreate(join(dir, KEYRING_FILE), createKeyring, assertKeyring);
  const { archiveKey } = readOrCreate(join(dir, ARCHIVE_KEY_FILE), createArchiveKey, assertArchiveKey);
  return { signingKey, jwks: publicJwks(signingKey), keyring, archiveKey };
}

/** Fresh keys that are never written anywhere: for tests that want their own. */
export function ephemeralDevKeys(): DevKeys {
  const signingKey = createSigningKey();
  return { signingKey, jwks: publicJwks(signingKey), keyring: createKeyring(), archiveKey: createArchiveKey().archiveKey };
}

/** The JWKS to publish: public members only (no `d`). */
export function publicJwks(signingKey: DevSigningKey): PublicJwks {
  const { kty, crv, x, y, kid, alg } = signingKey;
  return { keys: [{ kty, crv, x, y, kid, alg, use: "sig" }] };
}

/** Supabase Auth's issuer for a project URL. */
export function devIssuer(supabaseUrl: string): string {
  return `${supabaseUrl.replace(/\/+$/, "")}/auth/v1`;
}

export interface MintDevTokenOptions {
  signingKey: DevSigningKey;
  sub: string;
  /** Recorded by the functions as the audit row's actor_type. Default "user". */
  actorType?: "user" | "service";
  /** Seconds from now, or a jose time span such as "1h". Default one hour. */
  expiresIn?: number | string;
  /** `<SUPABASE_URL>/auth/v1`; see devIssuer(). */
  issuer: string;
  /** Default "authenticated", as Supabase issues. */
  audience?: string;
}

/** A JWT shaped like a Supabase Auth access token, signed with the dev key. */
export async function mintDevToken(opts: MintDevTokenOptions): Promise<string> {
  const key = await importJWK(opts.signingKey, "ES256");
  const expiresIn = opts.expiresIn ?? 3600;
  return new SignJWT({
    role: "authenticated",
    app_metadata: { actor_type: opts.actorType ?? "user" },
  })
    .setProtectedHeader({ alg: "ES256", kid: opts.signingKey.kid, typ: "JWT" })
    .setIssuer(opts.issuer)
    .setAudience(opts.audience ?? "authenticated")
    .setSubject(opts.sub)
    .setIssuedAt()
    .setExpirationTime(typeof expiresIn === "number" ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(key);
}

function createSigningKey(): DevSigningKey {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" }) as JWK;
  return { ...jwk, kid: `dev-es256-${randomBytes(4).toString("hex")}`, alg: "ES256" } as DevSigningKey;
}

function createKeyring(): DevKeyring {
  const keyId = `dev-${new Date().toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(3).toString("hex")}`;
  return { activeKeyId: keyId, keys: { [keyId]: randomBytes(32).toString("base64") } };
}

function createArchiveKey(): { archiveKey: string } {
  return { archiveKey: randomBytes(32).toString("base64url") };
}

function assertArchiveKey(value: unknown): asserts value is { archiveKey: string } {
  const k = value as { archiveKey?: unknown } | null;
  if (!k || typeof k.archiveKey !== "string" || k.archiveKey.length < 32) throw new Error('is not { "archiveKey": "<32+ chars>" }');
}

function assertSigningKey(value: unknown): asserts value is DevSigningKey {
  const k = value as Partial<DevSigningKey> | null;
  if (!k || k.kty !== "EC" || k.crv !== "P-256" || !k.d || !k.x || !k.y || !k.kid) {
    throw new Error("is not an ES256 private JWK with a kid");
  }
}

function assertKeyring(value: unknown): asserts value is DevKeyring {
  const k = value as Partial<DevKeyring> | null;
  if (!k || typeof k.activeKeyId !== "string" || !k.keys || typeof k.keys[k.activeKeyId] !== "string") {
    throw new Error('is not { "activeKeyId": "...", "keys": { "<id>": "<base64>" } } with the active key in keys');
  }
}

// Written to a private temp file, then hard-linked into place: link() fails if the name exists,
// so two commands starting at once (npm start, npm run token) cannot each write a different key,
// and nobody ever reads a half-written file. The loser reads the winner's file.
function readOrCreate<T>(file: string, create: () => T, check: (value: unknown) => asserts value is T): T {
  if (!existsSync(file)) {
    const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    writeFileSync(temp, `${JSON.stringify(create(), null, 2)}\n`, { flag: "wx", mode: 0o600 });
    try {
      linkSync(temp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      unlinkSync(temp);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
    check(value);
  } catch (err) {
    // The message names the file, never its content.
    const why = err instanceof SyntaxError ? "is not valid JSON" : (err as Error).message;
    throw new Error(`${file} ${why}; delete it to create a new one (secrets sealed with an old keyring become unreadable)`);
  }
  chmodSync(file, 0o600);
  return value;
}
