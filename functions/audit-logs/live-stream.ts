// The live stream: Server-Sent Events of new entries, woken by LISTEN/NOTIFY and read as the caller.
//
// No gap, no duplicate across reconnects: ids are allocated before commit, so a smaller id can
// commit after a larger one. The stream's position is therefore (after, pending): every id ≤ after
// has been delivered or does not match, except `pending`, ids that were not committed yet when
// they were passed. Each event's SSE id is that position right after the event
// ("<after>" or "<after>:<id>,<id>..."), so a client resuming with Last-Event-ID continues exactly
// where it stopped: later commits of pending ids are delivered, nothing is delivered twice.
// Ids more than PENDING_WINDOW behind the newest are taken as rolled back.
import type { DbCaller } from "../../shared/db.ts";
import type { DirectAuditReader, StreamState } from "./direct-reader.ts";
import type { AuditFilters } from "./schemas.ts";

export const MAX_PENDING_IN_EVENT_ID = 1000;
const STREAM_POSITION = /^(0|[1-9][0-9]{0,18})(?::((?:0|[1-9][0-9]{0,18})(?:,(?:0|[1-9][0-9]{0,18})){0,999}))?$/;
const MAX_BIGINT = 9223372036854775807n;

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function encodeStreamState(state: StreamState): string {
  return state.pending.length === 0 ? state.after.toString() : `${state.after}:${state.pending.join(",")}`;
}

/** A Last-Event-ID back into a position; null when it is not one this stream issued. */
export function decodeStreamState(text: string): StreamState | null {
  const m = STREAM_POSITION.exec(text);
  if (!m) return null;
  const after = BigInt(m[1]);
  const pending = m[2] ? [...new Set(m[2].split(",").map(BigInt))].sort(compareBigint) : [];
  if (after > MAX_BIGINT || pending.some((p) => p >= after)) return null;
  return { after, pending };
}

/**
 * One LISTEN connection per function instance, fanned out to the streams of each project. The
 * database only announces entries of projects someone watches (see secret_store.announce_audit_entries), so the hub
 * holds a lease on the projects its streams follow, renewed well before it lapses.
 */
export class AuditNotificationHub {
  private readonly subscribers = new Map<string, Set<() => void>>();
  private listening: Promise<{ unlisten(): Promise<void> } | null> | null = null;
  private readonly watcherId = crypto.randomUUID();
  private renewal: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly reader: DirectAuditReader, private readonly leaseSeconds = 60) {}

  subscribe(projectId: string, wake: () => void): () => void {
    let set = this.subscribers.get(projectId);
    const newProject = !set;
    if (!set) this.subscribers.set(projectId, (set = new Set()));
    set.add(wake);
    this.listening ??= this.reader
      .listen(
        (project) => this.wakeProject(project),
        // (Re)connected: notifications may have been missed meanwhile, so everyone polls.
        () => this.subscribers.forEach((s) => s.forEach((w) => w())),
      )
      .catch(() => {
        // Streams still poll on every heartbeat; try LISTEN again with the next subscriber.
        this.listening = null;
        return null;
      });
    // Entries committed before the lease was visible were not announced: poll once it is.
    if (newProject) void this.renewWatch().then(() => this.wakeProject(projectId));
    this.renewal ??= setInterval(() => void this.renewWatch(), (this.leaseSeconds * 1000) / 3);
    return () => {
      set.delete(wake);
      if (set.size > 0) return;
      this.subscribers.delete(projectId);
      void this.renewWatch();
      if (this.subscribers.size === 0) this.stopRenewal();
    };
  }

  async close(): Promise<void> {
    this.stopRenewal();
    await this.reader.watch(this.watcherId, [], this.leaseSeconds).catch(() => {});
    const listening = await this.listening;
    this.listening = null;
    await listening?.unlisten().catch(() => {});
  }

  private wakeProject(projectId: string): void {
    this.subscribers.get(projectId)?.forEach((w) => w());
  }

  // A failed renewal only delays wake-ups: streams also poll on every heartbeat.
  private renewWatch(): Promise<void> {
    return this.reader.watch(this.watcherId, [...this.subscribers.keys()], this.leaseSeconds).catch(() => {});
  }

  private stopRenewal(): void {
    if (this.renewal !== undefined) clearInterval(this.renewal);
    this.renewal = undefined;
  }
}

export interface LiveStreamOptions {
  reader: DirectAuditReader;
  hub: AuditNotificationHub;
  caller: DbCaller;
  projectId: string;
  filters: AuditFilters;
  start: StreamState;
  /** The row recording this stream's opening; not sent back to its own stream. */
  ownAuditId: string;
  heartbeatMs: number;
  batchSize: number;
  /** The request's abort signal: the client went away. */
  signal?: AbortSignal;
  onError?: (err: unknown) => void;
}

const encoder = new TextEncoder();

export function liveAuditStream(opts: LiveStreamOptions): ReadableStream<Uint8Array> {
  let state = opts.start;
  let closed = false;
  let polling = false;
  let pollAgain = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let unsubscribe: (() => void) | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const ownId = BigInt(opts.ownAuditId);

  const send = (text: string) => {
    if (!closed) controller.enqueue(encoder.encode(text));
  };

  const close = () => {
    if (closed) return;
    closed = true;
    if (heartbeat !== undefined) clearInterval(heartbeat);
    unsubscribe?.();
    opts.signal?.removeEventListener("abort", close);
  };

  const fail = (code: string, message: string) => {
    send(`event: error\ndata: ${JSON.stringify({ error: { code, message } })}\n\n`);
    close();
    try {
      controller.close();
    } catch {
      // already closed by the consumer
    }
  };

  async function pollUntilCaughtUp(): Promise<void> {
    for (;;) {
      const result = await opts.reader.poll(opts.caller, opts.projectId, opts.filters, state, opts.batchSize);
      if (closed) return;
      if (!result.allowed) return fail("forbidden", "The caller no longer has audit:read on this project");
      const { rows, unresolved } = result;
      const before = state;
      // Position right after delivering rows[k]: ids up to `after` are settled except those still
      // unresolved, and earlier pending ids beyond rows[k] that this poll has not got to yet.
      const positionAfter = (k: number): StreamState => {
        const id = rows[k].id;
        const after = id > before.after ? id : before.after;
        const pending = new Set([...unresolved.filter((u) => u < after), ...before.pending.filter((p) => p > id && p < after)]);
        return { after, pending: [...pending].sort(compareBigint) };
      };
      for (let k = 0; k < rows.length; k++) {
        if (rows[k].id === ownId) continue;
        const position = positionAfter(k);
        if (position.pending.length > MAX_PENDING_IN_EVENT_ID) {
          return fail("stream_overloaded", "Too many entries in flight to track; reconnect to start afresh");
        }
        send(`id: ${encodeStreamState(position)}\nevent: audit_log\ndata: ${rows[k].entry}\n\n`);
      }
      if (rows.length === opts.batchSize) {
        state = positionAfter(rows.length - 1);
        continue;
      }
      state = { after: result.hi > state.after ? result.hi : state.after, pending: unresolved };
      return;
    }
  }

  const schedulePoll = () => {
    if (closed) return;
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    (async () => {
      try {
        do {
          pollAgain = false;
          await pollUntilCaughtUp();
        } while (pollAgain && !closed);
      } catch (err) {
        opts.onError?.(err);
        fail("stream_failed", "The stream failed; reconnect with Last-Event-ID to resume");
      } finally {
        polling = false;
      }
    })();
  };

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (opts.signal?.aborted) return close();
      opts.signal?.addEventListener("abort", close);
      // The client's reconnect delay, and the position to resume from if nothing arrives first.
      send(`retry: 2000\nid: ${encodeStreamState(state)}\n: connected\n\n`);
      unsubscribe = opts.hub.subscribe(opts.projectId, schedulePoll);
      heartbeat = setInterval(() => {
        send(": heartbeat\n\n");
        // Also a safety net for a missed notification.
        schedulePoll();
      }, opts.heartbeatMs);
      schedulePoll();
    },
    cancel() {
      close();
    },
  });
}
