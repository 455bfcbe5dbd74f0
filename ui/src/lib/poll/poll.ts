// Polling the backend for a panel's figures: at once and then every `everyMs`, with the newest
// answer winning. Calls may overlap (a backend slower than the period) and answer out of order:
// an answer older than one already shown is dropped, so older figures never come back over
// newer ones. Every answer newer than the one shown is shown (the view never starves).

export interface Poll {
  stop(): void;
}

export function pollNewest<T>(
  load: () => Promise<T>,
  everyMs: number,
  onAnswer: (value: T) => void,
  onError: (error: unknown) => void,
  schedule: (tick: () => void, ms: number) => () => void = (tick, ms) => {
    const timer = setInterval(tick, ms);
    return () => clearInterval(timer);
  },
): Poll {
  let asked = 0;
  let shown = 0;
  const tick = (): void => {
    const n = ++asked;
    load().then(
      (value) => {
        if (n < shown) return;
        shown = n;
        onAnswer(value);
      },
      (error) => {
        if (n < shown) return;
        shown = n;
        onError(error);
      },
    );
  };
  tick();
  return { stop: schedule(tick, everyMs) };
}

/** Whether a periodic refresh may read again at `nowMs`: one that took `tookMs`, begun at
 * `startedMs`, waits at least `factor` times as long from its start (a fast read, every tick),
 * so a slow read (a search over a month of attendance: 1.1 s) takes at most a tenth of a backend
 * thread, not over a third of it at a 3 s period. */
export function dueAgain(startedMs: number, tookMs: number, nowMs: number, factor = 10): boolean {
  return nowMs - startedMs >= factor * tookMs;
}
