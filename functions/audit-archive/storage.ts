// Where archives are kept, behind one small interface: Supabase Storage in production
// (supabase-storage.ts), a local directory for the embedded stack and the tests (below).
// Objects are immutable: `put` never overwrites; it reports that something is already there and the
// caller decides, by reading it back, whether that something is its own earlier upload.
import { constants as fsConstants } from "node:fs";
import { link, mkdir, open, readFile, readdir, rm } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";

export type PutResult = "created" | "exists";

export interface ArchiveStorage {
  /** Human-readable location, for logs and the CLI (no credentials). */
  readonly description: string;
  /** Stores bytes at path unless an object is already there (then "exists", nothing written). */
  put(path: string, bytes: Uint8Array, contentType: string): Promise<PutResult>;
  /** The object's bytes, or null when there is none. */
  get(path: string): Promise<Uint8Array | null>;
}

export type StorageFailure = "unavailable" | "timeout" | "rejected";

/** A storage call failed. The message is ours and names no credential or upstream text. */
export class ArchiveStorageError extends Error {
  override readonly name = "ArchiveStorageError";
  constructor(
    readonly failure: StorageFailure,
    readonly operation: "put" | "get",
    readonly path: string,
    readonly status?: number,
  ) {
    super(`storage ${operation} of ${path} failed: ${failure}${status ? ` (HTTP ${status})` : ""}`);
  }
}

// Paths are built by the archiver; anything else is a bug, refused before touching storage.
const OBJECT_PATH = /^[a-z0-9][a-z0-9_.-]*(\/[a-z0-9][a-z0-9_.-]*)*$/;

export function assertObjectPath(path: string): void {
  if (!OBJECT_PATH.test(path) || path.split("/").some((part) => part === "." || part === "..")) {
    throw new Error(`invalid archive object path: ${JSON.stringify(path).slice(0, 200)}`);
  }
}

/**
 * A directory as storage: `<dir>/<bucket>/<path>`. Writes go to a temporary file that is then
 * hard-linked into place, which fails if the name exists: no overwrite, no torn object visible.
 */
export function createLocalArchiveStorage(opts: { dir: string; bucket: string }): ArchiveStorage & {
  list(prefix?: string): Promise<string[]>;
} {
  const root = resolve(opts.dir, opts.bucket);
  const fileFor = (path: string) => {
    assertObjectPath(path);
    const file = resolve(root, path);
    if (!file.startsWith(root + sep)) throw new Error("archive object path escapes the storage directory");
    return file;
  };
  return {
    description: `local directory ${root}`,
    async put(path, bytes) {
      const file = fileFor(path);
      await mkdir(dirname(file), { recursive: true });
      const temp = `${file}.${crypto.randomUUID()}.partial`;
      const handle = await open(temp, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await link(temp, file);
        return "created";
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
        throw err;
      } finally {
        await rm(temp, { force: true });
      }
    },
    async get(path) {
      try {
        return new Uint8Array(await readFile(fileFor(path)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      }
    },
    async list(prefix = "") {
      const out: string[] = [];
      const walk = async (dir: string, rel: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
          throw err;
        }
        for (const entry of entries) {
          const childRel = rel ? `${rel}/${entry.name}` : entry.name;
          if (entry.isDirectory()) await walk(join(dir, entry.name), childRel);
          else if (!entry.name.endsWith(".partial") && childRel.startsWith(prefix)) out.push(childRel);
        }
      };
      await walk(root, "");
      return out.sort();
    },
  };
}
