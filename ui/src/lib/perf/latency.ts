// Device-to-screen latency as the operator experiences it: for each device update painted on
// the map, (paint time - the device's own timestamp of that fix), over a rolling window. And the
// main-thread time each live batch costs. Both are shown in the status bar and read by the
// benchmark (docs/BENCHMARKS.md).
import Int32HistogramModule from 'hdr-histogram-js/dist/Int32Histogram';

// The histogram alone (the package's browser entry bundles pako and a WebAssembly build too).
// It is CommonJS: Vitest hands over its default export, the production build the module's
// exports object, whose `default` is the class.
type Int32Histogram = InstanceType<typeof Int32HistogramModule>;
const Int32Histogram: typeof Int32HistogramModule =
  (Int32HistogramModule as unknown as { default?: typeof Int32HistogramModule }).default ?? Int32HistogramModule;

/** Values are kept to this many significant digits: exact up to 255 ms, within 1% above. */
const SIGNIFICANT_DIGITS = 2;
/** The window is kept in slots of this length; the oldest slot leaves as a whole. */
const SLOT_MS = 1000;

/**
 * Percentiles over the samples of the last `windowMs` (to within one slot, 1 s), in HDR
 * histograms (hdr-histogram-js, the JavaScript port of the HdrHistogram the backend uses):
 * recording a sample is O(1) and allocates nothing, and a summary costs the histograms' size,
 * not the samples'. At 10,000 devices a second this window holds 100,000 samples; an array of
 * them, trimmed with splice and sorted for every summary, cost the page tens of milliseconds.
 */
export class RollingPercentiles {
  /** One histogram per slot of the window, newest last; `slotStart` is the newest's start. */
  private slots: Int32Histogram[] = [];
  private slotStart = -Infinity;
  private readonly merged = newHistogram();

  constructor(private readonly windowMs = 10_000) {}

  add(atMs: number, value: number): void {
    const start = Math.floor(atMs / SLOT_MS) * SLOT_MS;
    if (start < this.slotStart - this.windowMs) {
      // The clock was set back by more than the window (NTP, an operator): the window starts
      // again from now. Else every sample went into the newest slot until the clock caught up,
      // and "the last 10 s" meant everything since the step.
      for (const slot of this.slots) slot.reset();
      this.slotStart = start;
    } else if (start > this.slotStart) {
      const keep = Math.ceil(this.windowMs / SLOT_MS) + 1;
      const skipped = Math.min(keep, (start - this.slotStart) / SLOT_MS);
      for (let i = 0; i < skipped; i++) {
        const reused = this.slots.length >= keep ? this.slots.shift()! : newHistogram();
        reused.reset();
        this.slots.push(reused);
      }
      this.slotStart = start;
    }
    // A sample stamped before the newest slot (clocks are per caller) counts in the newest.
    // Whole milliseconds: WebKit's clock has no finer ones to give.
    this.slots[this.slots.length - 1].recordValue(Math.max(0, Math.round(value)));
  }

  summary(nowMs: number): { p50: number; p99: number; max: number; n: number } | null {
    const from = nowMs - this.windowMs;
    this.merged.reset();
    this.slots.forEach((slot, i) => {
      const slotEnd = this.slotStart - (this.slots.length - 1 - i) * SLOT_MS + SLOT_MS;
      // A slot that begins after now is from before the clock was set back.
      if (slotEnd > from && slotEnd - SLOT_MS <= nowMs && slot.totalCount > 0) this.merged.add(slot);
    });
    const n = this.merged.totalCount;
    if (n === 0) return null;
    const at = (percentile: number) => this.merged.getValueAtPercentile(percentile);
    return { p50: at(50), p99: at(99), max: this.merged.maxValue, n };
  }
}

function newHistogram(): Int32Histogram {
  // 1 ms to an hour, growing beyond if ever needed.
  const h = new Int32Histogram(1, 3_600_000, SIGNIFICANT_DIGITS);
  h.autoResize = true;
  return h;
}

/** Fixes whose map update was seen drawn ({@link PaintLatency.drawn}), waiting for the frame. */
export interface Drawn {
  readonly fixTimes: readonly number[];
  /** {@link PaintLatency}'s count of forgets when they were taken. */
  readonly since: number;
}

/**
 * Collects the device timestamps of the fixes handed to the map, and turns them into latency
 * samples once the map has painted them.
 */
export class PaintLatency {
  readonly window = new RollingPercentiles();
  private pending: number[] = [];
  private inFlight: number[] = [];

  /** At most this many fixes wait for the map, however long it does not paint (a minimised
   * window, whose animation frames stop; a map that never loaded), where they would otherwise
   * pile up all night (2,000 a second at 1,000 devices x 2 Hz). Those beyond are not sampled. */
  constructor(private readonly maxPending = 50_000) {}

  /** Fix timestamps (device clock, epoch ms) of updates waiting for the map. */
  handed(fixTimes: Iterable<number>): void {
    for (const t of fixTimes) {
      if (this.pending.length >= this.maxPending) return;
      this.pending.push(t);
    }
  }

  /** Updates the map was given but could not be seen drawn (its worker never said so): not
   * stamped, counted (a stamp would have capped the figure at the wait). */
  undrawn = 0;

  /** The map was given everything handed so far (one setData). */
  sent(): void {
    if (this.pending.length === 0) return;
    this.inFlight = this.inFlight.concat(this.pending);
    this.pending = [];
  }

  /** The update carrying everything sent so far is drawn: those fixes, to stamp at the frame
   * that shows them ({@link painted}). Taken now, not at that frame: an update sent in
   * between (a paint booked for the same frame runs first) is not drawn yet, and stamping its
   * fixes there counted them a whole map cycle early. */
  drawn(): Drawn {
    const drawn = { fixTimes: this.inFlight, since: this.forgotten };
    this.inFlight = [];
    return drawn;
  }

  /** The update sent last could not be seen drawn: its fixes are dropped, not stamped. */
  lost(): void {
    if (this.inFlight.length > 0) this.undrawn += 1;
    this.inFlight = [];
  }

  /** The frame showing the fixes of `drawn` was painted at `paintedMs` (epoch ms); not
   * stamped when the window was hidden since they were seen drawn (that frame came only at its
   * return, hours later perhaps). */
  painted(drawn: Drawn, paintedMs: number): void {
    if (drawn.since !== this.forgotten) return;
    for (const t of drawn.fixTimes) this.window.add(paintedMs, Math.max(0, paintedMs - t));
  }

  /** Forgets the fixes waiting for a paint: the window is hidden (minimised, on another
   * workspace), its animation frames stop, and the paint at its return would count the time it
   * was away as the screen's latency (the status bar showed the hours it was minimised). */
  forget(): void {
    this.pending = [];
    this.inFlight = [];
    this.forgotten += 1;
  }

  /** How many times {@link forget} was called: fixes seen drawn before the last are not
   * stamped. */
  private forgotten = 0;


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
