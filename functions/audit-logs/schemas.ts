// Query, path and response schemas of the audit-logs routes: what the routes validate with and
// what the OpenAPI document describes. Filters are validated here and normalised into the JSON
// object the SQL functions take (secret_store.audit_filter_clause defines what each one means).
import { z } from "@hono/zod-openapi";
import { isValidIpAddress, parseCidr } from "../../shared/client-ip.ts";
import { authErrorResponses, errorResponse } from "../../shared/openapi.ts";

export const ACCESS_TYPES = ["read", "write"] as const;
export const AUDIT_ACTIONS = [
  "read", "batch_read", "list", "create", "update", "delete", "grant", "revoke",
  "audit_query", "audit_get", "audit_stats", "audit_export", "audit_stream",
] as const;
export const OUTCOMES = ["granted", "denied", "not_found", "error"] as const;
export const STATS_GROUPS = ["day", "secret", "identity", "action", "outcome"] as const;
export const EXPORT_FORMATS = ["ndjson", "csv"] as const;

const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const MAX_LIST_ITEMS = 50;
const MAX_LIST_PARAMETER_LENGTH = 4096;

// ---------------------------------------------------------------------------------------------
// Instants: ISO 8601 date (midnight UTC) or date-time with Z or an offset, normalised to UTC with
// microseconds. Calendar-checked here so that Postgres never sees a value it would reject.

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;

export function parseInstant(text: string): string | null {
  const m = INSTANT.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const hour = Number(h ?? 0), minute = Number(mi ?? 0), second = Number(s ?? 0);
  if (year < 1970 || month < 1 || month > 12 || day < 1) return null;
  const monthDays = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > monthDays || hour > 23 || minute > 59 || second > 59) return null;
  if (h !== undefined && offset === undefined) return null; // a local time without an offset is ambiguous
  let offsetMinutes = 0;
  if (offset && offset.toUpperCase() !== "Z") {
    const digits = offset.replace(":", "");
    const oh = Number(digits.slice(1, 3)), om = Number(digits.slice(3, 5));
    if (oh > 14 || om > 59) return null;
    offsetMinutes = (oh * 60 + om) * (digits[0] === "-" ? -1 : 1);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, 0);
  if (date.getUTCFullYear() > 9999) return null;
  const micros = (frac ?? "").padEnd(6, "0");
  return `${date.toISOString().slice(0, 19)}.${micros}Z`;
}

const instant = (name: string) =>
  z
    .string()
    .max(40)
    .transform((text, ctx) => {
      const parsed = parseInstant(text);
      if (parsed === null) {
        ctx.addIssue({ code: "custom", message: "must be an ISO 8601 date or date-time with Z or an offset (year 1970-9999)" });
        return z.NEVER;
      }
      return parsed;
    })
    .openapi({ param: { name, in: "query" }, example: "2026-11-01T00:00:00Z", type: "string", format: "date-time" });

// ---------------------------------------------------------------------------------------------
// Comma-separated lists: `outcome=denied,not_found` means any of them. Values are de-duplicated
// and sorted, so equal filter sets normalise (and hash, for cursors) identically.

function list<T extends string>(name: string, item: z.ZodType<T>, description: string, example: string) {
  return z
    .string()
    .max(MAX_LIST_PARAMETER_LENGTH)
    .transform((text, ctx) => {
      const parts = text.split(",").map((p) => p.trim());
      if (parts.length > MAX_LIST_ITEMS) {
        ctx.addIssue({ code: "custom", message: `at most ${MAX_LIST_ITEMS} values` });
        return z.NEVER;
      }
      const values: T[] = [];
      for (const part of parts) {
        const result = item.safeParse(part);
        if (!result.success) {
          ctx.addIssue({ code: "custom", message: result.error.issues[0]?.message ?? "invalid value" });
          return z.NEVER;
        }
        values.push(result.data);
      }
      return [...new Set(values)].sort();
    })
    .openapi({
      param: { name, in: "query" },
      type: "string",
      description: `${description} Comma-separated list: any of the values matches.`,
      example,
    });
}

const enumItem = <T extends string>(values: readonly T[]) =>
  z.string().refine((v): v is T => (values as readonly string[]).includes(v), {
    message: `must be one of ${values.join(", ")}`,
  }) as unknown as z.ZodType<T>;

const uuidItem = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "must be a uuid")
  .transform((v) => v.toLowerCase()) as unknown as z.ZodType<string>;
const secretNameItem = z.string().regex(SECRET_NAME_PATTERN, "must be a secret name (letters, digits, underscore; max 128)");
const ipItem = z.string().refine((v) => isValidIpAddress(v) || parseCidr(v) !== null, {
  message: "must be an IP address or CIDR range (e.g. 10.0.0.0/8)",
}).transform((v) => v.toLowerCase()) as unknown as z.ZodType<string>;

export const projectId = z
  .uuid({ message: "must be a uuid" })
  .transform((v) => v.toLowerCase())
  .openapi({ param: { name: "project_id", in: "query" }, description: "The project whose trail is read (needs audit:read on it)", type: "string", format: "uuid" });

/** Every filter the query, stats, export and stream accept. */
export const filterFields = {
  project_id: projectId,
  secret_id: list("secret_id", uuidItem, "Secret id(s).", "0b6f4e7c-4a8e-4b8e-9c1e-0f1e2d3c4b5a").optional(),
  secret_name: list("secret_name", secretNameItem, "Secret name(s), also matching attempts on names that did not exist.", "STRIPE_API_KEY").optional(),
  from: instant("from").optional(),
  to: instant("to").optional(),
  user_identity: z
    .string()
    .min(1, "must not be empty")
    .max(255, "must be at most 255 characters")
    .refine((v) => !CONTROL_CHARACTERS.test(v), { message: "must not contain control characters" })
    .optional()
    .openapi({ param: { name: "user_identity", in: "query" }, description: "The JWT subject of the actor (exact match)." }),
  access_type: list("access_type", enumItem(ACCESS_TYPES), `One of ${ACCESS_TYPES.join(", ")}.`, "read").optional(),
  action: list("action", enumItem(AUDIT_ACTIONS), `One of ${AUDIT_ACTIONS.join(", ")}.`, "read,batch_read").optional(),
  outcome: list("outcome", enumItem(OUTCOMES), `One of ${OUTCOMES.join(", ")}.`, "denied,not_found").optional(),
  ip: list("ip", ipItem, "Client address or CIDR range.", "203.0.113.0/24").optional(),
};

type FilterInput = {
  project_id: string;
  secret_id?: string[];
  secret_name?: string[];
  from?: string;
  to?: string;
  user_identity?: string;
  access_type?: string[];
  action?: string[];
  outcome?: string[];
  ip?: string[];
};

/** `from` must not be after `to` (the range is half-open: from ≤ timestamp < to). */
export function refineRange(value: { from?: string; to?: string }, ctx: z.RefinementCtx): void {
  if (value.from !== undefined && value.to !== undefined && value.from > value.to) {
    ctx.addIssue({ code: "custom", path: ["from"], message: "must not be after to" });
  }
}

/** The filters as the SQL functions take them: only the ones given, lists sorted and unique. */
export type AuditFilters = Omit<FilterInput, "project_id">;

export function filtersOf(input: FilterInput): AuditFilters {
  const filters: AuditFilters = {};
  for (const key of ["secret_id", "secret_name", "from", "to", "user_identity", "access_type", "action", "outcome", "ip"] as const) {
    const value = input[key];
    if (value !== undefined) (filters as Record<string, unknown>)[key] = value;
  }
  return filters;
}

/** Canonical text of a filter set: equal filters give equal text (keys sorted). */
export function canonicalFilters(filters: AuditFilters): string {
  return JSON.stringify(Object.fromEntries(Object.entries(filters).sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** Unknown query parameters are refused (named, up to 64 characters): a mistyped filter must not silently widen a query. */
function closedQuery<S extends z.ZodRawShape>(shape: S) {
  return z.looseObject(shape).superRefine((value, ctx) => {
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(shape, key)) ctx.addIssue({ code: "custom", path: [key.slice(0, 64)], message: "is not a parameter of this route" });
    }
  });
}

export const auditFilterQuery = closedQuery(filterFields).superRefine(refineRange);

export const listQuery = closedQuery({
    ...filterFields,
    limit: z.coerce
      .number({ message: "must be an integer" })
      .int("must be an integer")
      .min(1, "must be at least 1")
      .max(1000, "must be at most 1000")
      .default(100)
      .openapi({ param: { name: "limit", in: "query" }, type: "integer", example: 100 }),
    cursor: z
      .string()
      .min(1)
      .max(1024, "is not a valid cursor")
      .optional()
      .openapi({ param: { name: "cursor", in: "query" }, description: "next_cursor of the previous page (same project and filters)" }),
  })
  .superRefine(refineRange);

export const statsQuery = closedQuery({
    ...filterFields,
    group_by: z
      .enum(STATS_GROUPS, { message: `must be one of ${STATS_GROUPS.join(", ")}` })
      .openapi({ param: { name: "group_by", in: "query" } }),
  })
  .superRefine(refineRange);

export const exportQuery = closedQuery({
    ...filterFields,
    format: z
      .enum(EXPORT_FORMATS, { message: `must be one of ${EXPORT_FORMATS.join(", ")}` })
      .default("ndjson")
      .openapi({ param: { name: "format", in: "query" } }),
  })
  .superRefine(refineRange);

export const getParams = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,18}$/, "must be a positive integer id")
    .refine((v) => !/^[0-9]+$/.test(v) || BigInt(v) <= 9223372036854775807n, { message: "must be a positive integer id" })
    .openapi({ param: { name: "id", in: "path" }, example: "42" }),
});

export const getQuery = closedQuery({ project_id: projectId });

// ---------------------------------------------------------------------------------------------
// Responses

export const auditEntry = z
  .object({
    id: z.string().openapi({ description: "Entry id (a bigint as a string)", example: "1042" }),
    timestamp: z.string().openapi({ description: "When the database recorded the access (UTC, microseconds)", example: "2026-11-27T10:15:00.123456Z" }),
    project_id: z.string(),
    secret_id: z.string().nullable(),
    secret_name: z.string().nullable(),
    secret_version: z.number().int().nullable(),
    access_type: z.enum(ACCESS_TYPES),
    action: z.enum(AUDIT_ACTIONS),
    outcome: z.enum(OUTCOMES),
    user_identity: z.string().openapi({ description: "JWT subject of the actor" }),
    actor_type: z.enum(["user", "service", "system"]),
    ip_address: z.string().nullable().openapi({ description: "Advisory client address from X-Forwarded-For" }),
    forwarded_for: z.string().nullable(),
    user_agent: z.string().nullable(),
    request_id: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("AuditEntry");

export type AuditEntry = z.infer<typeof auditEntry>;

export const auditPage = z
  .object({
    data: z.array(auditEntry),
    next_cursor: z.string().nullable().openapi({ description: "Pass as ?cursor= for the next page; null on the last page" }),
  })
  .openapi("AuditPage");

export const statsResponse = z
  .object({
    group_by: z.enum(STATS_GROUPS),
    from: z.string(),
    to: z.string(),
    total: z.number().int(),
    truncated: z.boolean().openapi({ description: "More groups existed than were returned (the largest are returned)" }),
    groups: z.array(
      z.object({
        key: z.string().nullable().openapi({ description: "Day (YYYY-MM-DD, UTC), secret id, identity, action or outcome" }),
        secret_name: z.string().nullable().optional(),
        count: z.number().int(),
      }),
    ),
  })
  .openapi("AuditStats");

export const commonErrorResponses = {
  400: errorResponse("Invalid filter or parameter (the error names it)"),
  403: errorResponse("The caller lacks audit:read on this project (also for projects that do not exist)"),
  ...authErrorResponses,
} as const;

export const directConnectionErrorResponses = {
  501: errorResponse("Needs the direct database transport (SUPABASE_DB_URL); not available over the Data API transport"),
} as const;
