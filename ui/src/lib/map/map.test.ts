import { describe, expect, it } from 'vitest';
import { FrameScheduler } from './frame';
import { ago, deviceFacts, devicesToFeatures } from './features';
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

  it('colours by state: online, stale (online but silent), offline', () => {
    const [a] = fakeFleet(1, [52, 4], 0);
    const states = [
      { ...a, online: true, stale: false },
      { ...a, online: true, stale: true },
      { ...a, online: false, stale: false },
    ].map((d) => devicesToFeatures([d]).features[0].properties.state);
    expect(states).toEqual(['online', 'stale', 'offline']);
    expect(Object.fromEntries(deviceFacts({ ...a, online: true, stale: true }, 0))['State']).toContain('stale');
  });
});

describe('device facts', () => {
  it('say how long ago a device was seen, in words', () => {
    expect(ago(0, 12_400)).toBe('12 s ago');
    expect(ago(0, 4 * 60_000 + 1)).toBe('4 min ago');
    expect(ago(0, 7_300_000)).toBe('2 h ago');
    expect(ago(5_000, 0)).toBe('0 s ago');
  });

  it('show speed in km/h and leave out what the device never sent', () => {
    const d = { ...fakeFleet(1, [0, 0], 0)[0], speed: 10, battery: null, signal: null };
    const facts = Object.fromEntries(deviceFacts(d, 0));
    expect(facts['Speed']).toBe('36 km/h');
    expect(facts).not.toHaveProperty('Battery');
  });
});
