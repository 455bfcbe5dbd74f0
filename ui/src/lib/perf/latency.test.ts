import { describe, expect, it } from 'vitest';
import { FrameGaps, PaintLatency, RollingPercentiles } from './latency';

describe('latency measurement', () => {
  it('reports nearest-rank percentiles over the recent window only', () => {
    const r = new RollingPercentiles(1000);
    for (let i = 1; i <= 100; i++) r.add(0, i);
    expect(r.summary(500)).toEqual({ p50: 50, p99: 99, max: 100, n: 100 });
    r.add(2500, 7);
    expect(r.summary(2600)).toEqual({ p50: 7, p99: 7, max: 7, n: 1 });
    expect(r.summary(5000)).toBeNull();
  });

  it('keeps whole 1 s slots: a window of 10 s holds 10 to 11 s of samples', () => {
    const r = new RollingPercentiles(10_000);
    for (let t = 0; t < 20_000; t += 100) r.add(t, t < 10_000 ? 200 : 10);
    // At 20 s: the slots from 10 s on (100 samples of 10 ms), and the one from 9 s to 10 s,
    // which ended inside the window.
    expect(r.summary(19_999)).toEqual({ p50: 10, p99: 200, max: 200, n: 110 });
    expect(r.summary(20_500)?.n).toBe(100);
  });

  it('starts the window again when the clock is set back, instead of stretching it', () => {
    const hour = 3_600_000;
    const r = new RollingPercentiles(10_000);
    for (let t = 0; t < 5_000; t += 100) r.add(10 * hour + t, 300);
    // NTP sets the clock back an hour: the minutes before the step are not "the last 10 s".
    expect(r.summary(9 * hour)).toBeNull();
    for (let t = 0; t < 20_000; t += 100) r.add(9 * hour + t, t < 10_000 ? 200 : 10);
    expect(r.summary(9 * hour + 19_999)).toEqual({ p50: 10, p99: 200, max: 200, n: 110 });
  });

  it('takes a second of 10,000 devices many times over without keeping the samples', () => {
    const r = new RollingPercentiles(10_000);
    // 30 s at 10,000 samples a second (the old array hit its cap of 100,000 here).
    for (let s = 0; s < 30; s++) for (let i = 0; i < 10_000; i++) r.add(s * 1000 + i / 10, i % 500);
    const sum = r.summary(29_999)!;
    expect(sum.n).toBe(100_000 + 10_000); // slots 19..29
    expect(sum.max).toBe(499);
    expect(Math.abs(sum.p50 - 249) / 249).toBeLessThan(0.01);
    expect(Math.abs(sum.p99 - 494) / 494).toBeLessThan(0.01);
  });

  it('measures from the device timestamp to the paint that showed it', () => {
    const p = new PaintLatency();
    p.handed([1000, 1040]);
    p.painted(p.drawn(), 1050); // not sent to the map yet: no samples
    expect(p.window.summary(1050)).toBeNull();
    p.sent();
    p.handed([1090]); // arrives after the setData: waits for the next one
    p.painted(p.drawn(), 1100);
    expect(p.window.summary(1100)).toEqual({ p50: 60, p99: 100, max: 100, n: 2 });
    p.painted(p.drawn(), 1200); // nothing new handed: no samples
    expect(p.window.summary(1200)?.n).toBe(2);
  });

  it('stamps the fixes of the update seen drawn, not those of one sent before its frame', () => {
    const p = new PaintLatency();
    p.handed([1000]);
    p.sent(); // update A
    const drawn = p.drawn(); // A is loaded; its stamp waits for the next frame...
    p.handed([1090]);
    p.sent(); // ...and a paint booked for that frame first sends update B
    p.painted(drawn, 1100);
    expect(p.window.summary(1100)).toEqual({ p50: 100, p99: 100, max: 100, n: 1 });
    p.painted(p.drawn(), 1250); // B, at its own frame
    expect(p.window.summary(1250)?.max).toBe(160);
  });

  it('does not stamp an update seen drawn just before the window was hidden', () => {
    const p = new PaintLatency();
    p.handed([1000]);
    p.sent();
    const drawn = p.drawn(); // loaded; the stamp waits for the next frame...
    p.forget(); // ...and the window is minimised before it: that frame comes at its return
    p.painted(drawn, 3_601_000);
    expect(p.window.summary(3_601_000)).toBeNull();
  });

  it('counts an update never seen drawn, and does not stamp it', () => {
    const p = new PaintLatency();
    p.handed([1000]);
    p.sent();
    p.lost();
    p.painted(p.drawn(), 5000);
    expect(p.window.summary(5000)).toBeNull();
    expect(p.undrawn).toBe(1);
  });

  it('forgets what waited while the window was hidden', () => {
    const p = new PaintLatency();
    p.handed([1000]);
    p.sent();
    p.handed([1010]);
    p.forget(); // hidden: no frames until it returns an hour later
    p.painted(p.drawn(), 3_601_000);
    expect(p.window.summary(3_601_000)).toBeNull();
    p.handed([3_601_100]);
    p.sent();
    p.painted(p.drawn(), 3_601_150);
    expect(p.window.summary(3_601_150)).toEqual({ p50: 50, p99: 50, max: 50, n: 1 });
  });

  it('holds at most its limit of fixes while the map does not paint', () => {
    const p = new PaintLatency(3);
    for (let i = 0; i < 100; i++) p.handed([1000 + i, 1000 + i]);
    p.sent();
    p.painted(p.drawn(), 1200);
    // The first three waited; the rest were not sampled (nor kept).
    expect(p.window.summary(1200)).toEqual({ p50: 200, p99: 200, max: 200, n: 3 });
  });
});

describe('frame gaps', () => {
  it('records the time between frames once started, and starts only once', () => {
    const frames: Array<(t: number) => void> = [];
    const g = new FrameGaps((cb) => frames.push(cb));
    g.start();
    g.start();
    expect(frames).toHaveLength(1);
    for (const t of [0, 16, 33, 83]) frames.shift()!(t);
    const s = g.window.summary(Date.now())!;
    expect(s.n).toBe(3);
    expect(s.max).toBe(50);
  });
});
