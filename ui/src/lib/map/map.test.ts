import { describe, expect, it } from 'vitest';
import { FrameScheduler } from './frame';
import { ago, clockTime, deviceFacts, devicesToFeatures, extendTrail, incidentsToFeatures, mergeTrail, trailToFeature } from './features';
import { fakeFleet } from '../backend/fake';
import { DISPLAY_STATES } from '../devices/filter';
import { OnDemandImages, preloadedImageIds } from './icons';
import { baseTextPx, errorDefeatsStyle, mapSymbolScale, tilesDefeatStyle } from './style';

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

  it('colours by state: moving, stopped, stale, offline, and alarm over all of them', () => {
    const [a] = fakeFleet(1, [52, 4], 0);
    const states = [
      { ...a, online: true, stale: false, speed: 10 },
      { ...a, online: true, stale: false, speed: 0 },
      { ...a, online: true, stale: true },
      { ...a, online: false, stale: false },
    ].map((d) => devicesToFeatures([d]).features[0].properties.state);
    expect(states).toEqual(['moving', 'stopped', 'stale', 'offline']);
    const alarmed = devicesToFeatures([{ ...a, online: false }], new Set([a.id])).features[0].properties.state;
    expect(alarmed).toBe('alarm');
    expect(Object.fromEntries(deviceFacts({ ...a, online: true, stale: true }, 0))['State']).toContain('stale');
    // Stale although it reports: the panel says why rather than contradicting "last seen 1 s ago".
    expect(Object.fromEntries(deviceFacts({ ...a, online: true, stale: true, clock_behind: true }, 0))['State']).toContain('clock');
    // An old fix is a lost one only for a device that was moving: a parked tracker's is not.
    const state = (over: Partial<typeof a>) => Object.fromEntries(deviceFacts({ ...a, online: true, stale: false, ...over }, 0))['State'];
    expect(state({ fix_old: true, speed: 10 })).toContain('lost its GPS fix');
    expect(state({ fix_old: true, speed: 0 })).toBe('stopped');
  });

  it('draws a heading arrow only for moving devices that send a heading', () => {
    const [a] = fakeFleet(1, [52, 4], 0);
    const heading = (d: typeof a) => devicesToFeatures([{ ...d, online: true }]).features[0].properties.heading;
    expect(heading({ ...a, speed: 10, heading: 90 })).toBe(90);
    expect(heading({ ...a, speed: 0, heading: 90 })).toBe(-1);
    expect(heading({ ...a, speed: 10, heading: null })).toBe(-1);
  });
});

describe('incidents and trails on the map', () => {
  it('rings open incidents that have a position, not resolved ones', () => {
    const base = { assignee: null, resolution: null, count: 1, first_seen_ms: 0, last_seen_ms: 0, version: 1, updated_ms: 0, updated_by: 'system', last_change: { action: 'opened', detail: null }, source: 'v', kind: 'k', title: 't', severity: 'high' as const };
    const fc = incidentsToFeatures([
      { ...base, id: 'a', state: 'new', lat: 1, lon: 2 },
      { ...base, id: 'b', state: 'resolved', lat: 1, lon: 2 },
      { ...base, id: 'c', state: 'acknowledged', lat: null, lon: null },
    ]);
    expect(fc.features.map((f) => f.properties.id)).toEqual(['a']);
  });

  it('keeps the trail in time order within its window', () => {
    let t = extendTrail([], { ts_ms: 0, lat: 0, lon: 0, speed: null }, 1000);
    t = extendTrail(t, { ts_ms: 500, lat: 1, lon: 1, speed: null }, 1000);
    t = extendTrail(t, { ts_ms: 400, lat: 9, lon: 9, speed: null }, 1000); // late: ignored
    t = extendTrail(t, { ts_ms: 1600, lat: 2, lon: 2, speed: null }, 1200); // 0 falls out
    expect(t.map((p) => p.ts_ms)).toEqual([500, 1600]);
    expect(trailToFeature(t).features[0].geometry.coordinates).toEqual([[1, 1], [2, 2]]);
    expect(trailToFeature([t[0]]).features).toHaveLength(0);
    // Across the antimeridian, each way: the short way round, not across the world.
    const ship = (lon: number) => ({ ts_ms: 0, lat: -17, lon, speed: null });
    const east = trailToFeature([ship(179.8), ship(179.9), ship(-179.9), ship(-179.8)]).features.map((f) => f.geometry.coordinates.map(([x]) => Number(x.toFixed(6))));
    expect(east).toEqual([[179.8, 179.9], [179.9, 180.1], [-179.9, -179.8]]);
    const west = trailToFeature([ship(-179.9), ship(179.9)]).features[0].geometry.coordinates.map(([x]) => Number(x.toFixed(6)));
    expect(west).toEqual([-179.9, -180.1]);
    // Half the world apart is left as it came (either way is as short).
    expect(trailToFeature([ship(-90), ship(90)]).features[0].geometry.coordinates.map(([x]) => x)).toEqual([-90, 90]);
    // At most maxPoints, the newest.
    let long: ReturnType<typeof extendTrail> = [];
    for (let ts = 1; ts <= 10; ts++) long = extendTrail(long, { ts_ms: ts, lat: 0, lon: ts, speed: null }, 60_000, 4);
    expect(long.map((p) => p.ts_ms)).toEqual([7, 8, 9, 10]);
  });

  it('keeps the fixes that batches brought while a selected trail was read', () => {
    const p = (ts_ms: number) => ({ ts_ms, lat: 0, lon: ts_ms, speed: null });
    // The read answered with fixes up to 3; batches meanwhile brought 3 and 4.
    expect(mergeTrail([p(1), p(2), p(3)], [p(3), p(4)]).map((q) => q.ts_ms)).toEqual([1, 2, 3, 4]);
    // Nothing newer: the read as it came.
    const fetched = [p(1), p(2)];
    expect(mergeTrail(fetched, [p(2)])).toBe(fetched);
    // An empty read keeps what the batches brought; at most maxPoints, the newest.
    expect(mergeTrail([], [p(5)]).map((q) => q.ts_ms)).toEqual([5]);
    expect(mergeTrail([p(1), p(2), p(3)], [p(4), p(5)], 3).map((q) => q.ts_ms)).toEqual([3, 4, 5]);
  });

  it('cuts a track into segments carrying the speed at their end in km/h', () => {
    const fc = trailToFeature([
      { ts_ms: 0, lat: 0, lon: 0, speed: null },
      { ts_ms: 1, lat: 0, lon: 1, speed: 10 },
      { ts_ms: 2, lat: 0, lon: 2, speed: null },
    ]);
    expect(fc.features).toHaveLength(2);
    expect(fc.features[0].properties).toEqual({ kmh: 36 });
    expect(fc.features[1].properties).toEqual({ kmh: null });
    expect(fc.features[1].geometry.coordinates).toEqual([[1, 0], [2, 0]]);
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
    // A speed live state measured from the fixes of a device that sent none says so.
    expect(Object.fromEntries(deviceFacts({ ...d, speed_estimated: true }, 0))['Speed']).toBe('36 km/h (from its fixes)');
  });
});

describe('preloaded map images', () => {
  it('cover every device symbol a layer can ask for, and the arrow', () => {
    const ids = preloadedImageIds();
    expect(ids).toContain('arrow');
    expect(new Set(ids).size).toBe(ids.length);
    for (const kind of ['vehicle', 'sensor', 'bodycam', 'phone', 'terminal', 'other']) {
      for (const state of DISPLAY_STATES) {
        expect(ids).toContain(`dev:${kind}:${state}:0`);
        expect(ids).toContain(`dev:${kind}:${state}:1`);
      }
    }
    expect(ids).toHaveLength(1 + 6 * 5 * 2);
  });
});

describe('map symbols grow with the page text', () => {
  it('follow the window as app.css does, and the operator scale', () => {
    expect(baseTextPx(1280)).toBeCloseTo(13.12);
    expect(baseTextPx(800)).toBe(13);
    expect(baseTextPx(3840)).toBe(22);
    expect(mapSymbolScale(1, 1280)).toBe(1);
    expect(mapSymbolScale(1, 1920)).toBe(1.2);
    expect(mapSymbolScale(1, 3840)).toBe(1.7);
    expect(mapSymbolScale(1.5, 3840)).toBe(2.55);
    // Steps of 0.05: a window dragged a few pixels wider keeps its scale.
    expect(mapSymbolScale(1, 1500)).toBe(mapSymbolScale(1, 1510));
  });
});

describe('images drawn on demand', () => {
  it('are held up to the cap, the oldest given back first', () => {
    const images = new OnDemandImages(3);
    const evicted: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      evicted.push(...images.added(`label:van-${i}`));
      expect(images.size).toBeLessThanOrEqual(3);
    }
    expect(evicted).toHaveLength(9_997);
    expect(evicted.slice(0, 2)).toEqual(['label:van-0', 'label:van-1']);
  });

  it('count an image asked for again as new', () => {
    const images = new OnDemandImages(2);
    images.added('a');
    images.added('b');
    images.added('a'); // evicted elsewhere and drawn again, or asked again: now the newest
    expect(images.added('c')).toEqual(['b']);
  });
});


describe('clockTime', () => {
  it('gives the date too when the time is not today', () => {
    const now = new Date(2026, 11, 7, 0, 10).getTime();
    const today = new Date(2026, 11, 7, 0, 5).getTime();
    const yesterday = new Date(2026, 11, 6, 23, 58).getTime();
    expect(clockTime(today, now)).toBe(new Date(today).toLocaleTimeString());
    expect(clockTime(yesterday, now)).toBe(new Date(yesterday).toLocaleString());
    expect(clockTime(yesterday, now)).not.toBe(new Date(yesterday).toLocaleTimeString());
  });
});

describe('online map style', () => {
  it('gives way to the bundled basemap when it fails to load, not when one tile does', () => {
    expect(errorDefeatsStyle({}, false)).toBe(true); // the style, sprite, glyphs, a TileJSON
    expect(errorDefeatsStyle({ tile: {} }, false)).toBe(false); // a 5xx tile: the map still loads
    expect(errorDefeatsStyle({}, true)).toBe(false); // loaded: later errors leave it as it is
    // ...but a style none of whose tiles loaded by then gives way too.
    expect(tilesDefeatStyle({ loaded: 0, failed: 12 })).toBe(true);
    expect(tilesDefeatStyle({ loaded: 3, failed: 9 })).toBe(false);
    expect(tilesDefeatStyle({ loaded: 0, failed: 0 })).toBe(false); // a background-only style
  });
});
