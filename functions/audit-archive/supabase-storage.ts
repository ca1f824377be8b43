// Archives in a private Supabase Storage bucket, through supabase-js. The HTTP contract relied on
// (and pinned by supabase-storage.test.ts with msw):
//   upload:   POST /storage/v1/object/<bucket>/<path>, `x-upsert: false`, raw body
//             → 200 created; "already exists" is HTTP 409, or HTTP 400 with {"statusCode":"409"}
//   download: GET  /storage/v1/object/<bucket>/<path>
//             → 200 bytes; missing is HTTP 404, or HTTP 400 with {"statusCode":"404"}
// 5xx, network errors and timeouts are retried (an upload whose response was lost comes back as
// "already exists" and is then verified by reading it back); other 4xx are not.
import { createClient } from "@supabase/supabase-js";
import ws from "ws";
import { ArchiveStorageError, type ArchiveStorage, assertObjectPath, type PutResult } from "./storage.ts";

export interface SupabaseArchiveStorageOptions {
  supabaseUrl: string;
  /** Service role (or secret) key: Storage's RLS would refuse anything less for a private bucket. */
  serviceRoleKey: string;
  bucket: string;
  timeoutMs: number;
  attempts: number;
  /** Backoff before retry n is retryDelayMs * n (default 250 ms). */
  retryDelayMs?: number;
  fetch?: typeof fetch;
}

class RequestTimeout extends Error {
  override readonly name = "RequestTimeout";
}

interface StorageErrorShape {
  status?: number;
  statusCode?: string;
  message?: string;
  originalError?: unknown;
}

type Outcome = "duplicate" | "not_found" | "retry" | "timeout" | "rejected";

function classify(error: StorageErrorShape): { outcome: Outcome; status?: number } {
  if (error.originalError instanceof RequestTimeout) return { outcome: "timeout" };
  const status = typeof error.status === "number" ? error.status : undefined;
  const code = String(error.statusCode ?? "");
  if (status === undefined) return { outcome: "retry" }; // network failure: no HTTP answer
  if (status === 409 || code === "409" || /duplicate|already exists/i.test(error.message ?? "")) {
    return { outcome: "duplicate", status };
  }
  if (status === 404 || code === "404" || /not.?found/i.test(error.message ?? "")) return { outcome: "not_found", status };
  if (status >= 500 || status === 429 || status === 408) return { outcome: "retry", status };
  return { outcome: "rejected", status };
}

export function createSupabaseArchiveStorage(opts: SupabaseArchiveStorageOptions): ArchiveStorage {
  const baseFetch = opts.fetch ?? fetch;
  // Each request gets its own deadline; an expired one surfaces as a RequestTimeout.
  const fetchWithTimeout: typeof fetch = async (input, init) => {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    try {
      return await baseFetch(input, { ...init, signal });
    } catch (err) {
      if (deadline.aborted) throw new RequestTimeout("storage request timed out");
      throw err;
    }
  };
  const client = createClient(opts.supabaseUrl, opts.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: fetchWithTimeout },
    // Never connected (Storage only), but Node 20 has no WebSocket for supabase-js to construct with.
    realtime: { transport: (globalThis.WebSocket ?? ws) as never },
  });
  const bucket = () => client.storage.from(opts.bucket);
  const retryDelay = opts.retryDelayMs ?? 250;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  return {
    description: `Supabase Storage bucket ${opts.bucket}`,

    async put(path, bytes, contentType): Promise<PutResult> {
      assertObjectPath(path);
      let last: { outcome: Outcome; status?: number } = { outcome: "retry" };
      for (let attempt = 1; attempt <= opts.attempts; attempt++) {
        if (attempt > 1) await sleep(retryDelay * (attempt - 1));
        const { error } = await bucket().upload(path, bytes, {
          upsert: false,
          contentType,
          cacheControl: "31536000",
        });
        if (!error) return "created";
        last = classify(error as StorageErrorShape);
        if (last.outcome === "duplicate") return "exists";
        if (last.outcome === "rejected" || last.outcome === "not_found") break;
      }
      throw storageError("put", path, last);
    },

    async get(path): Promise<Uint8Array | null> {
      assertObjectPath(path);
      let last: { outcome: Outcome; status?: number } = { outcome: "retry" };
      for (let attempt = 1; attempt <= opts.attempts; attempt++) {
        if (attempt > 1) await sleep(retryDelay * (attempt - 1));
        try {
          const { data, error } = await bucket().download(path);
          if (!error) return new Uint8Array(await data.arrayBuffer());
          last = classify(error as StorageErrorShape);
        } catch (err) {
          // A body that stops mid-download.
          last = err instanceof RequestTimeout || (err as Error)?.name === "TimeoutError" ? { outcome: "timeout" } : { outcome: "retry" };
        }
        if (last.outcome === "not_found") return null;
        if (last.outcome === "rejected" || last.outcome === "duplicate") break;
      }
      throw storageError("get", path, last);
    },
  };
}

function storageError(operation: "put" | "get", path: string, last: { outcome: Outcome; status?: number }) {
  const failure = last.outcome === "timeout" ? "timeout" : last.outcome === "retry" ? "unavailable" : "rejected";
  return new ArchiveStorageError(failure, operation, path, last.status);
}
