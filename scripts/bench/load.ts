// A closed-loop HTTP load generator: N clients each send the next request when the last one
// answered, for a fixed time. Bounded in time and only ever aimed at loopback.
// Node's fetch keeps connections alive by default, so each client reuses one connection.

export interface Measurement {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

export interface LoadOptions {
  url: string;
  init: RequestInit;
  clients: number;
  durationMs: number;
  warmupMs?: number;
}

export async function measure(opts: LoadOptions): Promise<Measurement> {
  if (!/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(opts.url)) throw new Error("load is only ever sent to loopback");
  await runFor(opts, opts.warmupMs ?? 500, []);
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  errors = await runFor(opts, opts.durationMs, latencies);
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { requests: latencies.length, errors, rps: (latencies.length / elapsed) * 1000, p50: at(0.5), p99: at(0.99) };
}

async function runFor(opts: LoadOptions, durationMs: number, latencies: number[]): Promise<number> {
  const deadline = performance.now() + durationMs;
  let errors = 0;
  await Promise.all(
    Array.from({ length: opts.clients }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const res = await fetch(opts.url, opts.init);
        await res.arrayBuffer();
        if (!res.ok) errors++;
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return errors;
}

export function formatMeasurement(m: Measurement): string {
  return `${m.rps.toFixed(0).padStart(6)} req/s   p50 ${m.p50.toFixed(2).padStart(6)} ms   p99 ${m.p99.toFixed(2).padStart(6)} ms   (${m.requests} requests)`;
}
