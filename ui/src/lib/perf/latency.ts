// Device-to-screen latency as the operator experiences it: for each device update painted on
// the map, (paint time - the device's own timestamp of that fix), over a rolling window. And the
// main-thread time each live batch costs. Both are shown in the status bar and read by the
// benchmark (docs/BENCHMARKS.md).

/** Percentiles over the samples of the last `windowMs`. */
export class RollingPercentiles {
  private samples: Array<[atMs: number, value: number]> = [];

  constructor(private readonly windowMs = 10_000, private readonly cap = 100_000) {}

  add(atMs: number, value: number): void {
    this.samples.push([atMs, value]);
    if (this.samples.length > this.cap) this.samples.splice(0, this.samples.length - this.cap);
  }

  summary(nowMs: number): { p50: number; p99: number; max: number; n: number } | null {
    const from = nowMs - this.windowMs;
    let start = 0;
    while (start < this.samples.length && this.samples[start][0] < from) start++;
    if (start > 0) this.samples.splice(0, start);
    if (this.samples.length === 0) return null;
    const values = this.samples.map((s) => s[1]).sort((a, b) => a - b);
    const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))];
    return { p50: at(0.5), p99: at(0.99), max: values[values.length - 1], n: values.length };
  }
}

/**
 * Collects the device timestamps of the fixes handed to the map, and turns them into latency
 * samples once the map has painted them.
 */
export class PaintLatency {
  readonly window = new RollingPercentiles();
  private pending: number[] = [];
  private inFlight: number[] = [];

  /** Fix timestamps (device clock, epoch ms) of updates waiting for the map. */
  handed(fixTimes: Iterable<number>): void {
    for (const t of fixTimes) this.pending.push(t);
  }

  /** The map was given everything handed so far (one setData). */
  sent(): void {
    if (this.pending.length === 0) return;
    this.inFlight = this.inFlight.concat(this.pending);
    this.pending = [];
  }

  /** The map painted a frame with everything sent so far, at `paintedMs` (epoch ms). */
  painted(paintedMs: number): void {
    for (const t of this.inFlight) this.window.add(paintedMs, Math.max(0, paintedMs - t));
    this.inFlight = [];
  }

  /** Whether sent updates wait for a paint. */
  get waiting(): boolean {
    return this.inFlight.length > 0;
  }
}

/**
 * The time between animation frames, sampled once started: a frame that comes late means the
 * main thread was busy (a long batch, a long paint) and the map could not respond. Started only
 * when asked (the benchmark does), so the console does not wake 60 times a second for it.
 */
export class FrameGaps {
  readonly window = new RollingPercentiles();
  private last: number | null = null;
  private running = false;

  constructor(private readonly requestFrame: (cb: (t: number) => void) => unknown = (cb) => requestAnimationFrame(cb)) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const tick = (t: number) => {
      if (this.last !== null) this.window.add(Date.now(), t - this.last);
      this.last = t;
      this.requestFrame(tick);
    };
    this.requestFrame(tick);
  }
}
