// Builds audit-logs from configuration: the one place its dependencies are chosen. Query, get and
// stats work over either transport; export and the live stream need the direct connection (a
// server-side cursor and LISTEN), and answer 501 over the Data API transport.
import postgres from "postgres";
import { createJwtVerifier } from "../../shared/auth.ts";
import type { AppConfig } from "../../shared/config.ts";
import { createPostgresRpc, createPostgrestRpc, type Rpc } from "../../shared/db.ts";
import { createAuditLogsApp, type DirectReads } from "./app.ts";
import { createAuditTrail } from "./audit-trail.ts";
import { createCursorCodec, cursorKeyFrom } from "./cursor.ts";
import { createDirectAuditReader } from "./direct-reader.ts";
import { AuditNotificationHub } from "./live-stream.ts";

export const STREAM_BATCH_ROWS = 500;

export async function createFunctionServer(config: AppConfig) {
  let rpc: Rpc;
  let direct: DirectReads | undefined;
  let closeSql = async () => {};
  if (config.dbTransport === "postgres") {
    const sql = postgres(config.dbUrl!, {
      max: config.dbPoolMax,
      onnotice: () => {},
      connection: { application_name: "audit-logs" },
    });
    rpc = createPostgresRpc(sql);
    const reader = createDirectAuditReader(sql);
    direct = { reader, hub: new AuditNotificationHub(reader) };
    closeSql = () => sql.end({ timeout: 5 });
  } else {
    rpc = createPostgrestRpc({ supabaseUrl: config.supabaseUrl, anonKey: config.anonKey! });
  }
  const cursorKey = await cursorKeyFrom({
    cursorSecret: config.auditLogs.cursorSecret,
    keyringJson: config.keyring.json,
    activeKeyId: config.keyring.activeKeyId,
  });
  const app = createAuditLogsApp({
    verifyJwt: createJwtVerifier(config.auth),
    trail: createAuditTrail(rpc),
    cursors: createCursorCodec(cursorKey),
    direct,
    trustedProxyHops: config.trustedProxyHops,
    stream: { heartbeatMs: config.auditLogs.streamHeartbeatMs, batchSize: STREAM_BATCH_ROWS },
    export: { batchSize: config.auditLogs.exportBatchRows },
    logError: (line) => console.error(line),
  });
  return {
    fetch: (req: Request) => app.fetch(req),
    async close() {
      await direct?.hub.close();
      await closeSql();
    },
  };
}
