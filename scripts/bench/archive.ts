// Archive benchmark: one monthly partition of N rows archived to a temporary local directory with
// the production code path (export in id order → gzip NDJSON chunks → store → read back → verify →
// manifest → drop). Prints rows/s for export + compression and for the whole archive, and the peak
// RSS sampled during the run. Targets: ≥ 100k rows/s export + compression; peak < 128 MB whatever N.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { verifyArchive } from "../../functions/audit-archive/archive-reader.ts";
import { runArchiveRound, type ArchiveSettings, type StepEvent } from "../../functions/audit-archive/archive-round.ts";
import { createLocalArchiveStorage } from "../../functions/audit-archive/storage.ts";

const BENCH_MONTH = "2001-01-01";
const PARTITION = "audit_logs_p2001_01";
const SEED_BATCH = 100_000;
const MB = 1024 * 1024;

export async function runArchiveBench(opts: { dbUrl: string; rows: number; log: (line: string) => void }): Promise<void> {
  const { log } = opts;
  const sql = postgres(opts.dbUrl, { max: 3, onnotice: () => {}, connection: { application_name: "archive-bench", TimeZone: "UTC" } });
  const dir = mkdtempSync(join(tmpdir(), "audit-archive-bench-"));
  try {
    await seedPartition(sql, opts.rows, log);
    await sql`vacuum analyze audit_partitions.audit_logs_p2001_01`;

    const storage = createLocalArchiveStorage({ dir, bucket: "audit-archive" });
    const settings: ArchiveSettings = {
      retentionDays: 90,
      partitionsAhead: 3,
      chunkRows: 50_000,
      maxChunksPerCall: Number.MAX_SAFE_INTEGER,
      timeBudgetMs: 3_600_000,
      leaseSeconds: 600,
    };

    // Export + compression time: from the start of each chunk's export to its "chunk-exported" step.
    let exportMs = 0;
    let exportStart = 0;
    let chunksDone = 0;
    const totalChunks = Math.ceil(opts.rows / settings.chunkRows);
    const onStep = (e: StepEvent) => {
      const now = performance.now();
      if (e.step === "chunk-exported") exportMs += now - exportStart;
      if (e.step === "chunk-catalogued") {
        chunksDone++;
        if (chunksDone % 5 === 0 || chunksDone === totalChunks) log(`  archived chunk ${chunksDone}/${totalChunks}`);
      }
      if (e.step === "claimed" || e.step === "chunk-catalogued") exportStart = now;
    };

    (globalThis as { gc?: () => void }).gc?.();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    const baselineRss = peakRss;
    // What the work holds, apart from the runtime: JS heap in use, and Buffers/zlib outside it.
    let peakHeap = baseline.heapUsed;
    let peakOffHeap = baseline.external + baseline.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakOffHeap = Math.max(peakOffHeap, m.external + m.arrayBuffers);
    }, 10);
    const started = performance.now();
    let rounds = 0;
    try {
      for (;;) {
        rounds++;
        const report = await runArchiveRound({ sql, storage, settings, onStep });
        if (!report.more_work) break;
      }
    } finally {
      clearInterval(sampler);
    }
    const totalMs = performance.now() - started;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);

    const [entry] = await sql<{ state: string; row_count: string; manifest_path: string; manifest_sha256: string; manifest_bytes: string }[]>`
      select state, row_count, manifest_path, manifest_sha256, manifest_bytes from secret_store.audit_archives
      where partition_name = ${PARTITION}`;
    if (entry?.state !== "dropped" || Number(entry.row_count) !== opts.rows) {
      throw new Error(`bench archive incomplete: ${JSON.stringify(entry)}`);
    }
    const [{ bytes }] = await sql<{ bytes: string }[]>`
      select coalesce(sum(byte_size), 0) as bytes from secret_store.audit_archive_chunks where partition_name = ${PARTITION}`;
    log(`  verifying the archive…`);
    const verification = await verifyArchive(storage, {
      manifestPath: entry.manifest_path,
      manifestSha256: entry.manifest_sha256,
      manifestBytes: Number(entry.manifest_bytes),
      rowCount: opts.rows,
    });
    if (!verification.ok) throw new Error(`bench archive failed verification: ${JSON.stringify(verification.problems)}`);

    const rate = (ms: number) => Math.round(opts.rows / (ms / 1000)).toLocaleString("en-US");
    log(`rows: ${opts.rows.toLocaleString("en-US")} in ${totalChunks} chunks of ≤ ${settings.chunkRows.toLocaleString("en-US")}, ${(Number(bytes) / MB).toFixed(1)} MB gzip, ${rounds} round(s)`);
    log(`export + compression: ${(exportMs / 1000).toFixed(2)} s, ${rate(exportMs)} rows/s (target ≥ 100,000)`);
    log(`whole archive (export, store, read back, verify, manifest, drop): ${(totalMs / 1000).toFixed(2)} s, ${rate(totalMs)} rows/s`);
    log(`peak RSS: ${(peakRss / MB).toFixed(1)} MB (process before the run: ${(baselineRss / MB).toFixed(1)} MB; target < 128 MB)`);
    log(
      `memory: JS heap used ${(baseline.heapUsed / MB).toFixed(1)} → peak ${(peakHeap / MB).toFixed(1)} MB; ` +
        `buffers outside the heap ${((baseline.external + baseline.arrayBuffers) / MB).toFixed(1)} → peak ${(peakOffHeap / MB).toFixed(1)} MB ` +
        `(the rest of RSS is the runtime: Node, tsx/esbuild, code, allocator arenas)`,
    );
    log(`verified: ${verification.verifiedRows.toLocaleString("en-US")} rows, every chunk's sha256 and size match`);
  } finally {
    await sql.end({ timeout: 5 });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function seedPartition(sql: postgres.Sql, rows: number, log: (line: string) => void): Promise<void> {
  await sql`select secret_store.create_audit_partition(${BENCH_MONTH}::date)`;
  const monthSeconds = 27 * 24 * 3600;
  for (let done = 0; done < rows;) {
    const n = Math.min(SEED_BATCH, rows - done);
    await sql`
      insert into public.audit_logs (
        "timestamp", project_id, secret_id, secret_name, secret_version, access_type, action, outcome,
        user_identity, actor_type, ip_address, forwarded_for, user_agent, request_id, details)
      select
        (${BENCH_MONTH}::timestamp at time zone 'UTC') + make_interval(secs => ((${done}::bigint + i) * ${monthSeconds}::bigint / ${rows}::bigint)::double precision + random()),
        gen_random_uuid(),
        case when i % 10 = 0 then null else gen_random_uuid() end,
        'SECRET_' || (i % 500),
        case when i % 10 = 0 then null else 1 + i % 12 end,
        (array['read','write'])[1 + i % 2]::public.audit_access_type,
        (array['read','batch_read','list','create','update','delete'])[1 + i % 6]::public.audit_action,
        (array['granted','granted','granted','denied','not_found'])[1 + i % 5]::public.audit_outcome,
        'svc-runner-' || (i % 50),
        (array['user','service'])[1 + i % 2]::public.audit_actor_type,
        ('10.' || (i % 250) || '.' || (i % 199) || '.' || (i % 97))::inet,
        '203.0.113.' || (i % 250) || ', 10.0.0.1',
        'meshhook-runner/2.4.1 (linux; x64)',
        'req-' || md5(i::text || ${done}::text),
        case when i % 7 = 0 then jsonb_build_object('batch_size', i % 100) end
      from generate_series(1, ${n}::int) as i`;
    done += n;
    log(`  seeded ${done.toLocaleString("en-US")}/${rows.toLocaleString("en-US")} rows into ${PARTITION}`);
  }
}
