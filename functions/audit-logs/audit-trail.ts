// The audit-logs function's use of the database through the Rpc door (postgres.js or the Data
// API): each method is one call to an SQL function that checks audit:read on the project and
// records the look in the same transaction.
import type { Rpc } from "../../shared/db.ts";
import type { VerifiedCaller } from "../../shared/auth.ts";
import type { AuditRequestContext } from "../../shared/request-context.ts";
import type { AuditEntry, AuditFilters } from "./schemas.ts";
import type { CursorPosition } from "./cursor.ts";

export interface TrailContext {
  caller: VerifiedCaller;
  audit: AuditRequestContext;
  projectId: string;
}

type Denied = { outcome: "denied" };

export interface StatsGroup {
  key: string | null;
  secret_name: string | null;
  count: number;
}

export interface AuditTrail {
  /** Up to `limit` entries newest first, strictly before `before` when given. */
  query(ctx: TrailContext, filters: AuditFilters, limit: number, before?: CursorPosition): Promise<Denied | { outcome: "granted"; entries: AuditEntry[] }>;
  get(ctx: TrailContext, id: string): Promise<Denied | { outcome: "not_found" } | { outcome: "granted"; entry: AuditEntry }>;
  stats(ctx: TrailContext, filters: AuditFilters, groupBy: string, maxGroups: number): Promise<Denied | { outcome: "granted"; groups: StatsGroup[]; total: number; truncated: boolean }>;
  /** Gate for export and stream: checks and records; returns the recording row's id. */
  authorizeRead(ctx: TrailContext, purpose: "audit_export" | "audit_stream", filters: AuditFilters, details: Record<string, unknown>): Promise<Denied | { outcome: "granted"; audit_id: string }>;
}

export function createAuditTrail(rpc: Rpc): AuditTrail {
  const call = <T>(ctx: TrailContext, fn: string, args: Record<string, unknown>) =>
    rpc.call<T>(fn, { p_project_id: ctx.projectId, ...args, p_request: ctx.audit }, ctx.caller);

  return {
    query: (ctx, filters, limit, before) =>
      call(ctx, "query_audit_logs", { p_filters: filters, p_before: before ?? null, p_limit: limit }),
    get: (ctx, id) => call(ctx, "get_audit_log", { p_id: id }),
    stats: (ctx, filters, groupBy, maxGroups) =>
      call(ctx, "audit_log_stats", { p_filters: filters, p_group_by: groupBy, p_max_groups: maxGroups }),
    authorizeRead: (ctx, purpose, filters, details) =>
      call(ctx, "authorize_audit_read", { p_purpose: purpose, p_filters: filters, p_details: details }),
  };
}
