// secret-proxy wired to a real, migrated Postgres and a real JWT verifier: what the API tests
// call through app.request().
import type { Sql } from "postgres";
import { createJwtVerifier } from "../../shared/auth.ts";
import { generateKeyBase64, parseKeyring } from "../../shared/crypto.ts";
import { createPostgresRpc, type Rpc } from "../../shared/db.ts";
import { createSecretProxyApp, type SecretProxyApp } from "../../functions/secret-proxy/app.ts";
import { createSecretAccess } from "../../functions/secret-proxy/secret-access.ts";
import { createProject, createTestDatabase, type TestDatabase } from "./database.ts";
import {
  createTestIdentityProvider,
  TEST_AUDIENCE,
  TEST_ISSUER,
  TEST_JWKS_URL,
  type TestIdentityProvider,
} from "./tokens.ts";

export const RUNNER = "runner-1";
export const ADMIN = "admin-1";
export const STRANGER = "stranger-1";

export interface SecretProxyHarness {
  db: TestDatabase;
  sql: Sql;
  app: SecretProxyApp;
  idp: TestIdentityProvider;
  rpc: Rpc;
  projectId: string;
  otherProjectId: string;
  /** Tokens: runner (service, secrets:read), admin (user, read+write+audit:read), stranger (no grants). */
  tokens: { runner: string; admin: string; stranger: string };
  request(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /** Audit rows written after the given id (secret-bearing columns included, for leak checks). */
  auditRowsAfter(id: bigint | number | string): Promise<Record<string, unknown>[]>;
  lastAuditId(): Promise<string>;
  close(): Promise<void>;
}

export async function createSecretProxyHarness(opts: { trustedProxyHops?: number; maxBodyBytes?: number } = {}): Promise<SecretProxyHarness> {
  const db = await createTestDatabase();
  const { sql } = db;
  const idp = await createTestIdentityProvider();
  const projectId = await createProject(sql, "demo", {
    [RUNNER]: ["secrets:read"],
    [ADMIN]: ["secrets:read", "secrets:write", "audit:read"],
  });
  const otherProjectId = await createProject(sql, "other");
  const keyId = "test-k1";
  const keyring = await parseKeyring(JSON.stringify({ [keyId]: generateKeyBase64() }), keyId);
  const rpc = createPostgresRpc(sql);
  const app = createSecretProxyApp({
    verifyJwt: createJwtVerifier({ jwksUrl: TEST_JWKS_URL, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, fetchImpl: idp.fetch }),
    secrets: createSecretAccess(rpc, keyring),
    trustedProxyHops: opts.trustedProxyHops ?? 1,
    maxBodyBytes: opts.maxBodyBytes ?? 65_536,
  });
  const tokens = {
    runner: await idp.token(RUNNER, { actorType: "service", expiresIn: "1h" }),
    admin: await idp.token(ADMIN, { expiresIn: "1h" }),
    stranger: await idp.token(STRANGER, { expiresIn: "1h" }),
  };
  return {
    db,
    sql,
    app,
    idp,
    rpc,
    projectId,
    otherProjectId,
    tokens,
    request(method, path, { token = tokens.admin, body, headers = {} } = {}) {
      const h: Record<string, string> = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      if (body !== undefined && !h["content-type"]) h["content-type"] = "application/json";
      return Promise.resolve(
        app.request(`/secret-proxy${path}`, {
          method,
          headers: h,
          body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
        }),
      );
    },
    auditRowsAfter: (id) => sql`select * from public.audit_logs where id > ${String(id)} order by id`,
    async lastAuditId() {
      const [{ max }] = await sql<{ max: string | null }[]>`select coalesce(max(id), 0)::text as max from public.audit_logs`;
      return max ?? "0";
    },
    close: () => db.drop(),
  };
}
