import { describe, expect, it } from 'vitest';
import { FrameScheduler } from './frame';
import { devicesToFeatures } from './features';
import { fakeFleet } from '../backend/fake';

describe('FrameScheduler', () => {
  it('runs once per frame however many requests arrive', () => {
    const frames: Array<() => void> = [];
    let runs = 0;
    const s = new FrameScheduler(() => runs++, (cb) => frames.push(cb));
    for (let i = 0; i < 100; i++) s.request();
    expect(frames.length).toBe(1);
    frames.shift()!();
    expect(runs).toBe(1);
    s.request();
    expect(frames.length).toBe(1);
  });
});

describe('devicesToFeatures', () => {
  it('draws devices with a position and skips the others', () => {
    const [a, b] = fakeFleet(2, [52, 4], 0);
    const fc = devicesToFeatures([a, { ...b, lat: null, lon: null }]);
    expect(fc.features).toHaveLength(1);
    expect(fc.features[0].geometry.coordinates).toEqual([a.lon, a.lat]);
    expect(fc.features[0].properties.simulated).toBe(true);
  });
});
