// npm run archive -- <command>
//
//   list                          archives in the catalogue (state, range, rows, manifest)
//   verify <partition>|--all      download; check the manifest against the catalogue and every chunk's
//                                 size, SHA-256, gzip framing, row count and id range against the manifest
//   cat <partition> [filters]     verify, then print the rows as NDJSON (stdout), filtered like the query
//                                 API: --project-id, --secret-id a,b, --secret-name A,B, --from, --to
//                                 (half-open, ISO 8601), --user-identity, --access-type, --action, --outcome
//   run [--dry-run]               one archival round, as POST /audit-archive does
//
// Reads SUPABASE_DB_URL (else DATABASE_URL, else the `npm start` database) and the AUDIT_ARCHIVE_*
// settings (shared/config.ts); Supabase Storage when SUPABASE_SERVICE_ROLE_KEY is set (or
// AUDIT_ARCHIVE_STORAGE=supabase), else the local stack's .local/archive.
// Exit status: 0 when everything checked out, 1 on a verification problem, 2 on bad usage.
import { parseArgs } from "node:util";
import { z } from "zod";
import { archiveConfigFromEnv, processEnv } from "../shared/config.ts";
import { LOCAL_ARCHIVE_DIR, LOCAL_STACK_DB_URL } from "./lib/dev-keys.ts";
import { verifyArchive } from "../functions/audit-archive/archive-reader.ts";
import { describeFailure } from "../functions/audit-archive/archive-round.ts";
import { createArchiveRunner, type ArchiveRunner } from "../functions/audit-archive/runner.ts";

const err = (line: string) => process.stderr.write(`${line}\n`);
const out = (line: string) => process.stdout.write(`${line}\n`);

class UsageError extends Error {}

const partitionName = z.string().regex(/^audit_logs_p[0-9]{4}_[0-9]{2}$/, "a partition name like audit_logs_p2025_01");
const list = (item: z.ZodType<string, string>) =>
  z.string().transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean)).pipe(z.array(item).min(1));
// Any 8-4-4-4-12 hex uuid (audit rows keep whatever id they recorded), as the query API accepts.
const uuidText = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "must be a uuid");
const instant = z.iso.datetime({ offset: true, message: "an ISO 8601 date-time with offset, e.g. 2025-01-31T00:00:00Z" });

function filterSchema(enums: { access_type: string[]; action: string[]; outcome: string[] }) {
  const oneOf = (values: string[]) => z.string().refine((v) => values.includes(v), { message: `one of ${values.join(", ")}` });
  return z.strictObject({
    "project-id": uuidText.optional(),
    "secret-id": list(uuidText).optional(),
    "secret-name": list(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)).optional(),
    from: instant.optional(),
    to: instant.optional(),
    "user-identity": z.string().min(1).max(255).optional(),
    "access-type": list(oneOf(enums.access_type)).optional(),
    action: list(oneOf(enums.action)).optional(),
    outcome: list(oneOf(enums.outcome)).optional(),
  }).refine((f) => !f.from || !f.to || Date.parse(f.from) <= Date.parse(f.to), { message: "--from must not be after --to", path: ["from"] });
}

type Filters = z.infer<ReturnType<typeof filterSchema>>;

/** "2025-01-03T10:00:00.5+00:00" → "2025-01-03T10:00:00.500000" (UTC, microseconds) for ordering. */
function utcMicros(timestamp: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:\+00:00|Z)$/.exec(timestamp);
  if (m) return `${m[1]}.${(m[2] ?? "").padEnd(6, "0")}`;
  const ms = new Date(timestamp).toISOString(); // other offsets: millisecond precision is exact for filter bounds
  return `${ms.slice(0, 19)}.${ms.slice(20, 23)}000`;
}

function rowFilter(f: Filters): (row: Record<string, unknown>) => boolean {
  const from = f.from ? utcMicros(f.from) : undefined;
  const to = f.to ? utcMicros(f.to) : undefined;
  const inList = (value: unknown, allowed?: string[]) => !allowed || (typeof value === "string" && allowed.includes(value));
  return (row) => {
    const ts = utcMicros(String(row.timestamp));
    return (!f["project-id"] || row.project_id === f["project-id"].toLowerCase()) &&
      inList(row.secret_id, f["secret-id"]?.map((s) => s.toLowerCase())) &&
      inList(row.secret_name, f["secret-name"]) &&
      (!from || ts >= from) && (!to || ts < to) &&
      (!f["user-identity"] || row.user_identity === f["user-identity"]) &&
      inList(row.access_type, f["access-type"]) &&
      inList(row.action, f.action) &&
      inList(row.outcome, f.outcome);
  };
}

interface CatalogueRow {
  partition_name: string;
  state: string;
  range_start: Date;
  range_end: Date;
  row_count: string | null;
  chunks: number;
  manifest_path: string | null;
  manifest_sha256: string | null;
  manifest_bytes: string | null;
  verified_at: Date | null;
  dropped_at: Date | null;
  last_error: string | null;
}

async function catalogue(runner: ArchiveRunner, partition?: string): Promise<CatalogueRow[]> {
  return await runner.sql<CatalogueRow[]>`
    select a.partition_name, a.state::text, a.range_start, a.range_end, a.row_count,
           (select count(*)::int from secret_store.audit_archive_chunks c where c.partition_name = a.partition_name) as chunks,
           a.manifest_path, a.manifest_sha256, a.manifest_bytes, a.verified_at, a.dropped_at, a.last_error
    from secret_store.audit_archives a
    where ${partition ?? null}::text is null or a.partition_name = ${partition ?? null}
    order by a.range_start`;
}

async function verifyOne(runner: ArchiveRunner, entry: CatalogueRow, onRow?: (line: string) => void): Promise<boolean> {
  if (!entry.manifest_path || !entry.manifest_sha256 || !["verified", "dropped"].includes(entry.state)) {
    err(`${entry.partition_name}: archive not complete yet (state ${entry.state}); nothing to verify`);
    return false;
  }
  err(`${entry.partition_name}: verifying ${entry.manifest_path} in ${runner.storage.description}`);
  const result = await verifyArchive(runner.storage, {
    manifestPath: entry.manifest_path,
    manifestSha256: entry.manifest_sha256,
    manifestBytes: Number(entry.manifest_bytes),
    rowCount: Number(entry.row_count),
    onRow,
    onChunk: (seq, status) => err(`  chunk ${seq}/${entry.chunks}: ${status}`),
  });
  for (const p of result.problems) {
    err(`  PROBLEM ${p.where === "manifest" ? "manifest" : `chunk ${p.where}`} (${p.path}): ${p.reason}`);
  }
  err(result.ok
    ? `${entry.partition_name}: OK — ${result.verifiedRows} rows in ${result.manifest?.chunks.length} chunks match the manifest and the catalogue`
    : `${entry.partition_name}: FAILED — ${result.problems.length} problem(s)`);
  return result.ok;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || !["list", "verify", "cat", "run"].includes(command)) {
    throw new UsageError("usage: npm run archive -- list | verify <partition>|--all | cat <partition> [filters] | run [--dry-run]");
  }
  const env = processEnv();
  const config = archiveConfigFromEnv({
    AUDIT_ARCHIVE_LOCAL_DIR: LOCAL_ARCHIVE_DIR,
    ...env,
    SUPABASE_DB_URL: env.SUPABASE_DB_URL ?? env.DATABASE_URL ?? LOCAL_STACK_DB_URL,
  });
  const runner = createArchiveRunner(config, { log: err });
  try {
    if (command === "list") {
      const rows = await catalogue(runner);
      if (rows.length === 0) err("no archives in the catalogue");
      for (const r of rows) {
        out(JSON.stringify({
          partition: r.partition_name,
          state: r.state,
          range: [r.range_start.toISOString(), r.range_end.toISOString()],
          rows: r.row_count === null ? null : Number(r.row_count),
          chunks: r.chunks,
          manifest: r.manifest_path,
          verified_at: r.verified_at?.toISOString() ?? null,
          dropped_at: r.dropped_at?.toISOString() ?? null,
          ...(r.last_error ? { last_error: r.last_error } : {}),
        }));
      }
      return 0;
    }

    if (command === "run") {
      const { values } = parseArgs({ args: rest, options: { "dry-run": { type: "boolean", default: false } }, strict: true });
      const report = await runner.runRound({ dryRun: values["dry-run"] });
      out(JSON.stringify(report, null, 2));
      return 0;
    }

    if (command === "verify") {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { all: { type: "boolean", default: false } }, strict: true });
      if (!values.all && positionals.length !== 1) throw new UsageError("usage: npm run archive -- verify <partition> | --all");
      const target = values.all ? undefined : partitionName.parse(positionals[0]);
      const rows = (await catalogue(runner, target)).filter((r) => values.all ? ["verified", "dropped"].includes(r.state) : true);
      if (rows.length === 0) throw new UsageError(target ? `${target} is not in the catalogue` : "no finished archives in the catalogue");
      let ok = true;
      for (const row of rows) ok = (await verifyOne(runner, row)) && ok;
      return ok ? 0 : 1;
    }

    // cat
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        ["project-id", "secret-id", "secret-name", "from", "to", "user-identity", "access-type", "action", "outcome"].map((k) => [k, { type: "string" as const }]),
      ),
    });
    if (positionals.length !== 1) throw new UsageError("usage: npm run archive -- cat <partition> [--secret-id …] [--from …] [--to …] …");
    const target = partitionName.parse(positionals[0]);
    const enumValues = async (type: string) =>
      (await runner.sql.unsafe<{ v: string }[]>(`select unnest(enum_range(null::public.${type}))::text as v`)).map((r) => r.v);
    const filters = filterSchema({
      access_type: await enumValues("audit_access_type"),
      action: await enumValues("audit_action"),
      outcome: await enumValues("audit_outcome"),
    }).parse(values);
    const [entry] = await catalogue(runner, target);
    if (!entry) throw new UsageError(`${target} is not in the catalogue`);
    const keep = rowFilter(filters);
    let printed = 0;
    const ok = await verifyOne(runner, entry, (line) => {
      if (keep(JSON.parse(line))) {
        out(line);
        printed++;
      }
    });
    err(`${printed} row(s) printed`);
    return ok ? 0 : 1;
  } finally {
    await runner.close();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    err(e.message);
    process.exitCode = 2;
  } else if (e instanceof z.ZodError) {
    for (const issue of e.issues) err(`invalid ${issue.path.join(".") || "argument"}: ${issue.message}`);
    process.exitCode = 2;
  } else if (e instanceof Error && (/^invalid configuration/.test(e.message) || String((e as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS"))) {
    err(e.message);
    process.exitCode = 2;
  } else {
    err(`archive: ${describeFailure(e)}`);
    process.exitCode = 1;
  }
}
