// Reads Server-Sent Events from a fetch Response body, block by block (WHATWG event stream format).
export interface SseBlock {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comments: string[];
}

export interface SseReader {
  /** The next block, or throws after timeoutMs. */
  next(timeoutMs?: number): Promise<SseBlock>;
  /** Blocks until `count` events (blocks with data) arrived; comments and id-only blocks are skipped. */
  events(count: number, timeoutMs?: number): Promise<SseBlock[]>;
  /** Events that arrive within `ms` (for proving that nothing more comes). */
  eventsWithin(ms: number): Promise<SseBlock[]>;
  /** The last id seen so far, as EventSource tracks it. */
  lastEventId(): string | undefined;
  close(): Promise<void>;
}

export function sseReader(res: Response): SseReader {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let lastId: string | undefined;
  let pendingRead: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;

  function parse(block: string): SseBlock {
    const out: SseBlock = { comments: [] };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) out.comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") out.id = value;
        else if (field === "event") out.event = value;
        else if (field === "data") out.data = out.data === undefined ? value : `${out.data}\n${value}`;
        else if (field === "retry") out.retry = value;
      }
    }
    if (out.id !== undefined) lastId = out.id;
    return out;
  }

  async function next(timeoutMs = 5000): Promise<SseBlock> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = buffer.indexOf("\n\n");
      if (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        return parse(block);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error("timed out waiting for an SSE block");
      pendingRead ??= reader.read();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result = await Promise.race([
        pendingRead,
        new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), remaining))),
      ]);
      clearTimeout(timer);
      if (result === "timeout") throw new Error("timed out waiting for an SSE block");
      pendingRead = null;
      if (result.done) throw new Error("SSE stream ended");
      buffer += decoder.decode(result.value, { stream: true });
    }
  }

  return {
    next,
    async events(count, timeoutMs = 5000) {
      const out: SseBlock[] = [];
      const deadline = Date.now() + timeoutMs;
      while (out.length < count) {
        const block = await next(Math.max(1, deadline - Date.now()));
        if (block.data !== undefined) out.push(block);
      }
      return out;
    },
    async eventsWithin(ms) {
      const out: SseBlock[] = [];
      const deadline = Date.now() + ms;
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) return out;
        try {
          const block = await next(remaining);
          if (block.data !== undefined) out.push(block);
        } catch (err) {
          if (err instanceof Error && err.message.startsWith("timed out")) return out;
          throw err;
        }
      }
    },
    lastEventId: () => lastId,
    close: () => reader.cancel().catch(() => {}),
  };
}
