// Reads that need a direct database connection (postgres.js over SUPABASE_DB_URL): the streamed
// export (one COPY, read as the client pulls: constant memory) and the live stream (LISTEN/NOTIFY
// wake-ups plus gap-free polling). Rows are always read as the caller: claims set and role
// `authenticated` in the transaction, as PostgREST does, so the RLS policy on audit_logs (audit:read on the project)
// decides what is visible. Only bookkeeping that must see every project's ids (which ids exist
// yet, for the stream's gap tracking) runs before the role switch, and it returns ids only.
import type { Sql } from "postgres";
import type { DbCaller } from "../../shared/db.ts";
import { ByteForm, CopyLineEncoder } from "../../shared/copy-json-lines.ts";
import { copyOut } from "../../shared/copy-out.ts";
import type { AuditFilters } from "./schemas.ts";

/** Stream position: every entry with id ≤ after was delivered or decided, except the pending ids. */
export interface StreamState {
  after: bigint;
  pending: bigint[];
}

export interface PollResult {
  allowed: boolean;
  /** Matching entries in id order (JSON text as the API shows them). */
  rows: { id: bigint; entry: string }[];
  /** Highest id committed and visible when the poll ran (any project). */
  hi: bigint;
  /** Ids among the candidates that were not committed yet (in flight, or rolled back). */
  unresolved: bigint[];
}

export interface DirectAuditReader {
  /**
   * Entries as NDJSON bytes (one entry's JSON text per line, as the query API shows it), newest
   * first, read through one COPY; each piece holds whole lines, about pieceBytes of them.
   */
  exportEntries(caller: DbCaller, projectId: string, filters: AuditFilters, excludeId: string, pieceBytes: number): AsyncGenerator<Uint8Array>;
  /** Where a new stream starts: after everything committed now, watching ids still in flight. */
  initialStreamState(): Promise<StreamState>;
  poll(caller: DbCaller, projectId: string, filters: AuditFilters, state: StreamState, batchSize: number): Promise<PollResult>;
  /** LISTEN on the audit channel; `onNotify` gets the project id of each new entry. */
  listen(onNotify: (projectId: string) => void, onConnect: () => void): Promise<{ unlisten(): Promise<void> }>;
  /** Ask for wake-ups for exactly these projects for the next leaseSeconds ([] ends the watch). */
  watch(watcherId: string, projectIds: string[], leaseSeconds: number): Promise<void>;
}

export const AUDIT_NOTIFY_CHANNEL = "audit_logs";
/** Ids further than this behind the newest are assumed settled (committed or rolled back). */
export const PENDING_WINDOW = 10_000n;
/** At the start of a stream, in-flight ids this close to the newest are watched. */
const INITIAL_WINDOW = 1_000n;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The export's columns in the entry's order, each with the expression giving the same text the
// view's json_build_object embeds (see secret_store.audit_log_entries) and how it is written.
const ENTRY_COLUMNS: [name: string, expression: string, form: ByteForm][] = [
  ["id", "a.id::text", ByteForm.Quoted],
  ["timestamp", `to_char(a."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, ByteForm.Quoted],
  ["project_id", "a.project_id", ByteForm.Quoted],
  ["secret_id", "a.secret_id", ByteForm.Quoted],
  ["secret_name", "a.secret_name", ByteForm.Quoted],
  ["secret_version", "a.secret_version", ByteForm.Integer],
  ["access_type", "a.access_type", ByteForm.Quoted],
  ["action", "a.action", ByteForm.Quoted],
  ["outcome", "a.outcome", ByteForm.Quoted],
  ["user_identity", "a.user_identity", ByteForm.Quoted],
  ["actor_type", "a.actor_type", ByteForm.Quoted],
  ["ip_address", "host(a.ip_address)", ByteForm.Quoted],
  ["forwarded_for", "a.forwarded_for", ByteForm.Quoted],
  ["user_agent", "a.user_agent", ByteForm.Quoted],
  ["request_id", "a.request_id", ByteForm.Quoted],
  ["details", "a.details", ByteForm.Json],
];
const ENTRY_SELECT = ENTRY_COLUMNS.map(([, expression]) => expression).join(", ");
// json_build_object's spelling: {"id" : "1", "timestamp" : "…"}.
const ENTRY_KEYS = ENTRY_COLUMNS.map(([name], i) => new TextEncoder().encode(`${i === 0 ? "{" : ", "}"${name}" : `));
const ENTRY_FORMS = ENTRY_COLUMNS.map(([, , form]) => form);
const NO_FALLBACK = ENTRY_COLUMNS.map(() => (text: string) => JSON.stringify(text));

/**
 * Entries from COPY of the plain columns, as the view's entry JSON text: building that JSON here is
 * ~4x cheaper for the database than json_build_object per row, which bounded the export.
 */
export function entryLinesFromCopy(pieceBytes: number): CopyLineEncoder {
  return new CopyLineEncoder(ENTRY_KEYS, ENTRY_FORMS, NO_FALLBACK, pieceBytes);
}

export function createDirectAuditReader(sql: Sql): DirectAuditReader {
  const claimsOf = (caller: DbCaller) => JSON.stringify(caller.claims);

  return {
    async *exportEntries(caller, projectId, filters, excludeId, pieceBytes) {
      // Ids checked before they reach the statement: COPY takes no parameters.
      if (!UUID.test(projectId) || !/^[0-9]{1,19}$/.test(excludeId)) throw new Error("unexpected export ids");
      const conn = await sql.reserve();
      let open = false;
      try {
        await conn`begin isolation level repeatable read read only`;
        open = true;
        // The clause is built by the database from the validated filters (literals quoted there).
        const [{ clause }] = await conn<{ clause: string }[]>`
          select secret_store.audit_filter_clause(${filters as never}::jsonb) as clause,
                 set_config('request.jwt.claims', ${claimsOf(caller)}, true),
                 set_config('role', 'authenticated', true)`;
        // COPY runs its query as the caller too (role authenticated, RLS applies).
        const statement = `copy (select ${ENTRY_SELECT}
                                    from public.audit_logs a
                                   where a.project_id = '${projectId}'::uuid and a.id <> ${excludeId}::bigint and ${clause}
                                   order by a."timestamp" desc, a.id desc) to stdout`;
        const lines = entryLinesFromCopy(pieceBytes);
        for await (const chunk of copyOut(conn.unsafe(statement))) {
          const piece = lines.push(chunk);
          if (piece) yield piece;
        }
        const last = lines.finish();
        if (last) yield last;
        await conn`commit`;
        open = false;
      } finally {
        // Also reached when the consumer stops early (client went away): end the transaction.
        if (open) await conn`rollback`.catch(() => {});
        conn.release();
      }
    },

    async initialStreamState() {
      const [row] = await sql<{ hi: string; unresolved: string[] }[]>`
        with top as (select coalesce(max(id), 0) as hi from public.audit_logs)
        select top.hi::text as hi,
               array(select g::text from generate_series(greatest(top.hi - ${INITIAL_WINDOW.toString()}::bigint + 1, 1), top.hi) g
                      where not exists (select 1 from public.audit_logs a where a.id = g) order by g) as unresolved
        from top`;
      return { after: BigInt(row.hi), pending: row.unresolved.map(BigInt) };
    },

    async poll(caller, projectId, filters, state, batchSize) {
      return await sql.begin("isolation level repeatable read read only", async (tx) => {
        await tx`select set_config('request.jwt.claims', ${claimsOf(caller)}, true)`;
        const [book] = await tx<{ clause: string; allowed: boolean; hi: string; unresolved: string[] }[]>`
          with top as (select coalesce(max(id), 0) as hi from public.audit_logs)
          select secret_store.audit_filter_clause(${filters as never}::jsonb) as clause,
                 secret_store.caller_has_permission(${projectId}::uuid, 'audit:read') as allowed,
                 top.hi::text as hi,
                 array(
                   select c.g::text from (
                     select unnest(${state.pending.map(String)}::bigint[]) as g
                     union
                     select generate_series(greatest(${state.after.toString()}::bigint + 1, top.hi - ${PENDING_WINDOW.toString()}::bigint + 1), top.hi)
                   ) c
                   where c.g > top.hi - ${PENDING_WINDOW.toString()}::bigint
                     and not exists (select 1 from public.audit_logs a where a.id = c.g)
                   order by c.g) as unresolved
          from top`;
        if (!book.allowed) return { allowed: false, rows: [], hi: BigInt(book.hi), unresolved: [] };
        await tx`select set_config('role', 'authenticated', true)`;
        const rows = await tx.unsafe<{ id: string; entry: string }[]>(
          `select id::text as id, entry from (
             select a.id, a.entry::text as entry from secret_store.audit_log_entries a
              where a.project_id = $1 and a.id > $2 and a.id <= $3 and ${book.clause}
             union all
             select a.id, a.entry::text as entry from secret_store.audit_log_entries a
              where a.project_id = $1 and a.id = any($4::bigint[]) and a.id <= $2 and ${book.clause}
           ) m order by m.id limit $5`,
          [projectId, state.after.toString(), book.hi, state.pending.map(String) as never, batchSize],
        );
        return {
          allowed: true,
          rows: rows.map((r) => ({ id: BigInt(r.id), entry: r.entry })),
          hi: BigInt(book.hi),
          unresolved: book.unresolved.map(BigInt),
        };
      });
    },

    async listen(onNotify, onConnect) {
      const subscription = await sql.listen(
        AUDIT_NOTIFY_CHANNEL,
        (payload) => {
          try {
            const projectId = (JSON.parse(payload) as { project_id?: unknown }).project_id;
            if (typeof projectId === "string") onNotify(projectId);
          } catch {
            // Not ours; ignore.
          }
        },
        onConnect,
      );
      return { unlisten: () => subscription.unlisten() };
    },

    async watch(watcherId, projectIds, leaseSeconds) {
      await sql`select secret_store.renew_audit_stream_watch(${watcherId}::uuid, ${projectIds}::uuid[], ${leaseSeconds}::int)`;
    },
  };
}
