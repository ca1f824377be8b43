// audit-logs wired to a real, migrated Postgres (direct transport, LISTEN included) and a real JWT
// verifier: what the audit-logs API tests call through app.request().
import postgres, { type Sql } from "postgres";
import { createJwtVerifier } from "../../shared/auth.ts";
import { generateKeyBase64 } from "../../shared/crypto.ts";
import { createPostgresRpc, type Rpc } from "../../shared/db.ts";
import { createAuditLogsApp, type AuditLogsApp, type AuditLogsDeps } from "../../functions/audit-logs/app.ts";
import { createAuditTrail } from "../../functions/audit-logs/audit-trail.ts";
import { createCursorCodec, cursorKeyFrom } from "../../functions/audit-logs/cursor.ts";
import { createDirectAuditReader } from "../../functions/audit-logs/direct-reader.ts";
import { AuditNotificationHub } from "../../functions/audit-logs/live-stream.ts";
import { createProject, createTestDatabase, type TestDatabase } from "./database.ts";
import { createTestIdentityProvider, TEST_AUDIENCE, TEST_ISSUER, TEST_JWKS_URL, type TestIdentityProvider } from "./tokens.ts";

/** audit:read on the main project (and secrets:read). */
export const AUDITOR = "auditor-1";
/** audit:read on the other project only. */
export const OTHER_AUDITOR = "auditor-other";
/** secrets:read on the main project, nothing else. */
export const READER = "reader-1";
/** No grants at all. */
export const STRANGER = "stranger-1";

export interface AuditLogsHarness {
  db: TestDatabase;
  /** Owner connection for fixtures and inspection. */
  sql: Sql;
  app: AuditLogsApp;
  idp: TestIdentityProvider;
  rpc: Rpc;
  projectId: string;
  otherProjectId: string;
  tokens: { auditor: string; otherAuditor: string; reader: string; stranger: string };
  request(path: string, opts?: { token?: string | null; headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
  /** Writes an audit row the way the secret paths do (record_access as the given identity). */
  recordAccess(identity: string, projectId: string, fields?: { secretName?: string; action?: string; outcome?: string; ip?: string }): Promise<void>;
  auditRowsAfter(id: string): Promise<Record<string, unknown>[]>;
  lastAuditId(): Promise<string>;
  close(): Promise<void>;
}

export async function createAuditLogsHarness(opts: Partial<Pick<AuditLogsDeps, "stream" | "export">> & { direct?: boolean } = {}): Promise<AuditLogsHarness> {
  const db = await createTestDatabase();
  const { sql } = db;
  const appSql = postgres(db.url, { max: 6, onnotice: () => {} });
  const idp = await createTestIdentityProvider();
  const projectId = await createProject(sql, "audited", {
    [AUDITOR]: ["audit:read", "secrets:read"],
    [READER]: ["secrets:read"],
  });
  const otherProjectId = await createProject(sql, "elsewhere", { [OTHER_AUDITOR]: ["audit:read"] });
  const rpc = createPostgresRpc(appSql);
  const reader = createDirectAuditReader(appSql);
  const hub = new AuditNotificationHub(reader);
  const keyring = JSON.stringify({ k1: generateKeyBase64() });
  const app = createAuditLogsApp({
    verifyJwt: createJwtVerifier({ jwksUrl: TEST_JWKS_URL, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, fetchImpl: idp.fetch }),
    trail: createAuditTrail(rpc),
    cursors: createCursorCodec(await cursorKeyFrom({ keyringJson: keyring, activeKeyId: "k1" })),
    direct: opts.direct === false ? undefined : { reader, hub },
    trustedProxyHops: 1,
    stream: opts.stream ?? { heartbeatMs: 200, batchSize: 50 },
    export: opts.export ?? { batchSize: 100 },
  });
  const tokens = {
    auditor: await idp.token(AUDITOR, { expiresIn: "1h" }),
    otherAuditor: await idp.token(OTHER_AUDITOR, { expiresIn: "1h" }),
    reader: await idp.token(READER, { actorType: "service", expiresIn: "1h" }),
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
    request(path, { token = tokens.auditor, headers = {}, signal } = {}) {
      const h: Record<string, string> = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      return Promise.resolve(app.request(`/audit-logs${path}`, { method: "GET", headers: h, signal }));
    },
    async recordAccess(identity, project, fields = {}) {
      await sql.begin(async (tx) => {
        await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: identity, role: "authenticated" })}, true)`;
        await tx`select secret_store.record_access(${project}::uuid, null, ${fields.secretName ?? null}, null,
                   ${fields.action ?? "read"}::public.audit_action, ${fields.outcome ?? "granted"}::public.audit_outcome,
                   ${{ ip: fields.ip ?? "" } as never}::jsonb)`;
      });
    },
    auditRowsAfter: (id) => sql`select * from public.audit_logs where id > ${id} order by id`,
    async lastAuditId() {
      const [{ max }] = await sql<{ max: string }[]>`select coalesce(max(id), 0)::text as max from public.audit_logs`;
      return max;
    },
    async close() {
      await hub.close();
      await appSql.end({ timeout: 5 });
      await db.drop();
    },
  };
}
