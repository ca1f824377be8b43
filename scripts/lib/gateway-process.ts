// Runs scripts/gateway.ts under the real Deno runtime as a child process: used by `npm start`,
// the e2e tests and the benchmark.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LOCAL_ARCHIVE_DIR, REPO_ROOT, type DevKeyring, type PublicJwks } from "./dev-keys.ts";

export const GATEWAY_ENTRY = join(REPO_ROOT, "scripts", "gateway.ts");

/**
 * What the gateway and the functions need from Deno, and nothing more:
 * - net: listen, reach Postgres, fetch the JWKS (the functions fetch it from the gateway itself);
 * - env: shared/config reads the whole environment (Deno.env.toObject() needs unscoped env);
 * - read/write of the archive directory only: audit-archive's local stand-in for Storage.
 * Module loading (our files, node_modules) needs no read permission.
 */
export function gatewayPermissions(archiveDir: string): string[] {
  return ["--allow-net", "--allow-env", `--allow-read=${archiveDir}`, `--allow-write=${archiveDir}`];
}

/** Environment variables of the parent that Deno itself needs (caches, temp dir, locale). */
const INHERITED_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "TZ", "LANG", "LC_ALL"];

/** Function settings passed through from the parent when set (see shared/config.ts). */
export const PASSTHROUGH_FUNCTION_ENV = [
  "TRUSTED_PROXY_HOPS",
  "MAX_BODY_BYTES",
  "DB_POOL_MAX",
  "AUTH_LEGACY_JWT_SECRET",
] as const;

/**
 * The Deno executable from the `deno` npm package. DENO_BIN overrides it. The package's own
 * install API finds (and if needed links) the platform binary, so this works even when npm
 * skipped the package's postinstall.
 */
export function denoExecutable(): string {
  const override = process.env.DENO_BIN;
  if (override) return override;
  const require = createRequire(join(REPO_ROOT, "package.json"));
  try {
    const installApi = require("deno/install_api.cjs") as { runInstall(): string };
    return installApi.runInstall();
  } catch (err) {
    const fallback = join(REPO_ROOT, "node_modules", ".bin", "deno");
    if (existsSync(fallback)) return fallback;
    throw new Error(
      `Deno not found (${(err as Error).message}). Run 'npm ci' (it installs the deno package), or set DENO_BIN.`,
    );
  }
}

export interface FunctionEnvOptions {
  supabaseUrl: string;
  dbUrl: string;
  keyring: DevKeyring;
  archiveKey: string;
  /** Absolute path of the local archive "bucket" directory. */
  archiveDir: string;
}

/** The environment shared/config.ts reads, for the local stack. AUTH_* default from SUPABASE_URL. */
export function functionEnv(opts: FunctionEnvOptions): Record<string, string> {
  return {
    SUPABASE_URL: opts.supabaseUrl,
    SUPABASE_DB_URL: opts.dbUrl,
    SECRET_PROXY_DB_TRANSPORT: "postgres",
    SECRETS_KEYRING: JSON.stringify(opts.keyring.keys),
    SECRETS_ACTIVE_KEY_ID: opts.keyring.activeKeyId,
    AUDIT_ARCHIVE_KEY: opts.archiveKey,
    AUDIT_ARCHIVE_STORAGE: "local",
    AUDIT_ARCHIVE_LOCAL_DIR: opts.archiveDir,
  };
}

export interface StartGatewayOptions {
  /** Postgres the functions connect to (SUPABASE_DB_URL). */
  dbUrl: string;
  keys: { jwks: PublicJwks; keyring: DevKeyring; archiveKey: string };
  /** audit-archive's local Storage directory. Default: .local/archive. */
  archiveDir?: string;
  /** Default: a free port. */
  port?: number;
  hostname?: string;
  /** Extra or overriding environment for the functions (e.g. TRUSTED_PROXY_HOPS). */
  env?: Record<string, string>;
  /** The gateway's output, line by line (request log, errors). Default: discarded. */
  onLog?: (line: string, stream: "stdout" | "stderr") => void;
  /** How long to wait for the gateway to answer. Default 60 s (a cold Deno start is a few seconds). */
  readyTimeoutMs?: number;
}

export interface RunningGateway {
  /** http://127.0.0.1:<port>: the SUPABASE_URL the functions were given. */
  url: string;
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
  stop(): Promise<void>;
  /** Resolves with the exit code when the process ends, for whatever reason. */
  exited: Promise<number | null>;
}

const LISTENING_LINE = /^gateway listening on (http:\/\/\S+)$/;
const STOP_GRACE_MS = 8000;

/** Starts the Deno gateway and resolves once it answers its JWKS endpoint. */
export async function startGateway(opts: StartGatewayOptions): Promise<RunningGateway> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const port = opts.port ?? (await freePort(hostname));
  const url = `http://${hostname}:${port}`;
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) if (process.env[name]) env[name] = process.env[name]!;
  for (const name of PASSTHROUGH_FUNCTION_ENV) if (process.env[name]) env[name] = process.env[name]!;
  const archiveDir = opts.archiveDir ?? LOCAL_ARCHIVE_DIR;
  mkdirSync(archiveDir, { recursive: true });
  const functionSettings = functionEnv({
    supabaseUrl: url,
    dbUrl: opts.dbUrl,
    keyring: opts.keys.keyring,
    archiveKey: opts.keys.archiveKey,
    archiveDir,
  });
  Object.assign(env, functionSettings, opts.env, {
    GATEWAY_HOSTNAME: hostname,
    GATEWAY_PORT: String(port),
    GATEWAY_JWKS: JSON.stringify(opts.keys.jwks),
    GATEWAY_STOP_ON_STDIN_EOF: "1",
    NO_COLOR: "1",
  });

  const child = spawn(
    denoExecutable(),
    ["run", "--quiet", "--no-prompt", "--config", join(REPO_ROOT, "deno.json"), ...gatewayPermissions(archiveDir), GATEWAY_ENTRY],
    // stdin stays an open pipe: when this process dies, it closes and the gateway exits with it.
    { cwd: REPO_ROOT, env, stdio: ["pipe", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal ? null : 0)));
    child.once("error", () => resolve(null));
  });

  const recent: string[] = [];
  let listening: ((address: string) => void) | undefined;
  const listened = new Promise<string>((resolve) => (listening = resolve));
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream]! }).on("line", (line) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
      const match = LISTENING_LINE.exec(line);
      if (match && stream === "stdout") listening?.(match[1]);
      opts.onLog?.(line, stream);
    });
  }

  const stop = () => stopChild(child, exited);
  const failure = (why: string) =>
    new Error(`gateway ${why}${recent.length ? `; its last output:\n  ${recent.join("\n  ")}` : ""}`);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      listened.then(() => waitUntilAnswering(`${url}/auth/v1/.well-known/jwks.json`, exited)),
      exited.then((code) => {
        throw failure(`exited with code ${code} before it was ready`);
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(failure(`did not answer within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { url, port, pid: child.pid!, stop, exited };
}

async function waitUntilAnswering(url: string, exited: Promise<number | null>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not accepting connections yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const killTimer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(killTimer);
}

export function freePort(hostname = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, hostname, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}
