import { describe, expect, it } from 'vitest';
import { FrameGaps, PaintLatency, RollingPercentiles } from './latency';

describe('latency measurement', () => {
  it('reports percentiles over the recent window only', () => {
    const r = new RollingPercentiles(1000);
    for (let i = 1; i <= 100; i++) r.add(0, i);
    expect(r.summary(500)).toEqual({ p50: 51, p99: 100, max: 100, n: 100 });
    r.add(1500, 7);
    expect(r.summary(1600)).toEqual({ p50: 7, p99: 7, max: 7, n: 1 });
    expect(r.summary(5000)).toBeNull();
  });

  it('measures from the device timestamp to the paint that showed it', () => {
    const p = new PaintLatency();
    p.handed([1000, 1040]);
    p.painted(1050); // not sent to the map yet: no samples
    expect(p.window.summary(1050)).toBeNull();
    p.sent();
    p.handed([1090]); // arrives after the setData: waits for the next one
    p.painted(1100);
    expect(p.window.summary(1100)).toEqual({ p50: 100, p99: 100, max: 100, n: 2 });
    p.painted(1200); // nothing new handed: no samples
    expect(p.window.summary(1200)?.n).toBe(2);
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
