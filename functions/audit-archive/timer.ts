// The local stack's stand-in for pg_cron: the same round the Edge Function runs, on a timer, in
// the process that calls it. While a round reports more work the next one starts right away;
// otherwise it waits intervalMs. Rounds never overlap; failures are logged and retried next tick.
import type { ArchiveConfig } from "../../shared/config.ts";
import { describeFailure } from "./archive-round.ts";
import { createArchiveRunner } from "./runner.ts";

export interface ArchiveTimer {
  /** Waits for a round in progress, then closes the database pool. */
  stop(): Promise<void>;
}

export function startArchiveTimer(opts: {
  config: ArchiveConfig;
  /** Pause between rounds when there is nothing left to do; default 60 s. */
  intervalMs?: number;
  log?: (line: string) => void;
}): ArchiveTimer {
  const log = opts.log ?? ((line: string) => console.log(line));
  const intervalMs = opts.intervalMs ?? 60_000;
  const runner = createArchiveRunner(opts.config, { log });
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<void> = Promise.resolve();

  const tick = () => {
    current = (async () => {
      let next = intervalMs;
      try {
        const report = await runner.runRound();
        for (const p of report.archived) {
          log(`audit-archive: ${p.partition} ${p.state} (${p.chunks_stored} chunks, ${p.rows_stored} rows this round)`);
        }
        if (report.more_work) next = 0;
      } catch (err) {
        log(`audit-archive: round failed: ${describeFailure(err)}`);
      }
      if (!stopped) timer = setTimeout(tick, next);
    })();
  };
  timer = setTimeout(tick, 0);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
      await runner.close();
    },
  };
}
