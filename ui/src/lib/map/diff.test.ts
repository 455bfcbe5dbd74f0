import { describe, expect, it } from 'vitest';
import { alarmChanges, DeviceFeatures, narrowestSpan, nearestCopy, withinView } from './diff';
import { fakeFleet } from '../backend/fake';
import type { DeviceView } from '../backend';

const none = new Set<string>();

describe('DeviceFeatures', () => {
  it('sends only what moved or changed, and nothing for an unchanged device', () => {
    const fleet = fakeFleet(3, [52, 4], 0);
    const byId = new Map(fleet.map((d) => [d.id, d]));
    const f = new DeviceFeatures();
    expect(f.reset(fleet, none)).toHaveLength(3);

    const [a, b] = fleet;
    byId.set(a.id, { ...a, lat: a.lat! + 0.01 });
    byId.set(b.id, { ...b, online: false });
    const diff = f.diff([a.id, b.id, fleet[2].id], (id) => byId.get(id), none)!;
    expect(diff.add).toEqual([]);
    expect(diff.remove).toEqual([]);
    expect(diff.update).toHaveLength(2);
    const ua = diff.update!.find((u) => u.id === a.id)!;
    expect(ua.newGeometry).toEqual({ type: 'Point', coordinates: [a.lon, a.lat! + 0.01] });
    expect(ua.addOrUpdateProperties).toBeUndefined();
    const ub = diff.update!.find((u) => u.id === b.id)!;
    expect(ub.newGeometry).toBeUndefined();
    expect(ub.addOrUpdateProperties).toContainEqual({ key: 'state', value: 'offline' });

    expect(f.diff([a.id, b.id], (id) => byId.get(id), none)).toBeNull();
    // Where the source has each device (the selection ring goes there): the moved one moved.
    expect(f.position(a.id)).toEqual([a.lon, a.lat! + 0.01]);
    expect(f.position('nobody')).toBeNull();
  });

  it('adds a device at its first fix and removes one that lost its position', () => {
    const [a, b] = fakeFleet(2, [52, 4], 0);
    const f = new DeviceFeatures();
    f.reset([{ ...a, lat: null, lon: null }], none);
    expect(f.size).toBe(0);
    const added = f.diff([a.id], () => a, none)!;
    expect(added.add!.map((x) => x.properties!.id)).toEqual([a.id]);
    expect(f.diff([a.id], () => undefined, none)!.remove).toEqual([a.id]);
    expect(f.diff([b.id], () => ({ ...b, lat: null, lon: null }) as DeviceView, none)).toBeNull();
  });

  it('recolours a device when its alarm starts or ends', () => {
    const [a] = fakeFleet(1, [52, 4], 0);
    const f = new DeviceFeatures();
    f.reset([a], none);
    const alarmed = new Set([a.id]);
    const ids = alarmChanges(none, alarmed);
    expect(ids).toEqual([a.id]);
    const diff = f.diff(ids, () => a, alarmed)!;
    expect(diff.update![0].addOrUpdateProperties).toContainEqual({ key: 'state', value: 'alarm' });
    expect(alarmChanges(alarmed, alarmed)).toEqual([]);
  });

  it('holds only the devices the filter lets through, and takes one out and back as it changes', () => {
    const fleet = fakeFleet(4, [52, 4], 0);
    const byId = new Map(fleet.map((d) => [d.id, d]));
    const online = (d: DeviceView) => d.online;
    const f = new DeviceFeatures();
    // fakeFleet puts device 0 offline (every ninth is).
    expect(f.reset(fleet, none, online).map((x) => x.properties.id)).toEqual(['fake-1', 'fake-2', 'fake-3']);
    expect(f.bounds()).not.toBeNull();

    byId.set('fake-1', { ...fleet[1], online: false });
    byId.set('fake-0', { ...fleet[0], online: true });
    const diff = f.diff(['fake-0', 'fake-1'], (id) => byId.get(id), none, online)!;
    expect(diff.remove).toEqual(['fake-1']);
    expect(diff.add!.map((x) => x.properties!.id)).toEqual(['fake-0']);
    expect(f.size).toBe(3);

    const nothing = new DeviceFeatures();
    nothing.reset(fleet, none, () => false);
    expect(nothing.size).toBe(0);
    expect(nothing.bounds()).toBeNull();
  });

  it('counts the devices in a view, across the antimeridian too', () => {
    const at = (id: string, lon: number, lat: number) => ({ ...fakeFleet(1, [0, 0], 0)[0], id, lon, lat });
    const f = new DeviceFeatures();
    f.reset([at('a', 4, 52), at('b', 5, 52), at('c', 179.5, 10), at('d', -179.5, 10), at('e', 4, -40)], none);
    expect(f.countWithin(3, 51, 6, 53)).toBe(2);
    expect(f.countWithin(3, 51, 4.5, 53)).toBe(1);
    // A view over the antimeridian: MapLibre gives east past 180.
    expect(f.countWithin(179, 9, 181, 11)).toBe(2);
    expect(f.countWithin(-181, 9, -179, 11)).toBe(2);
    // Zoomed out past the whole world.
    expect(f.countWithin(-300, -90, 300, 90)).toBe(5);
  });

  it('fits a fleet across the antimeridian the short way round', () => {
    const at = (id: string, lon: number, lat: number) => ({ ...fakeFleet(1, [0, 0], 0)[0], id, lon, lat });
    const f = new DeviceFeatures();
    // Around Fiji: 177.5 E to 178.5 W is 4 degrees across the antimeridian, not 356 round the world.
    f.reset([at('a', 177.5, -18), at('b', 179.9, -17), at('c', -178.5, -16)], none);
    expect(f.bounds()).toEqual([177.5, -18, 181.5, -16]);
    // One side only: the plain box.
    f.reset([at('a', 4, 52), at('b', 5, 51), at('c', -3, 50)], none);
    expect(f.bounds()).toEqual([-3, 50, 5, 52]);
  });

  it('sees a device in a view across the antimeridian, as Fit all leaves it', () => {
    // The Fiji view Fit all makes: east past 180.
    expect(withinView(-178.5, -16, 176, -19, 184, -15)).toBe(true);
    expect(withinView(178, -16, 176, -19, 184, -15)).toBe(true);
    expect(withinView(170, -16, 176, -19, 184, -15)).toBe(false);
    expect(withinView(-178.5, -30, 176, -19, 184, -15)).toBe(false);
    // West past -180, and a view wider than the world.
    expect(withinView(178, 0, -185, -1, -170, 1)).toBe(true);
    expect(withinView(0, 0, -300, -1, 60, 1)).toBe(true);
    // The copy a view centred past 180 shows of a device at -178.5; none moved near Greenwich.
    expect(nearestCopy(-178.5, 180.2)).toBe(181.5);
    expect(nearestCopy(178, -179.9)).toBe(-182);
    expect(nearestCopy(4.5, 5)).toBe(4.5);
  });

  it('takes the widest gap between neighbours, wherever it is', () => {
    expect(narrowestSpan([10])).toEqual([10, 10]);
    expect(narrowestSpan([-180, 180])).toEqual([180, 180]);
    // A gap of 200 between -100 and 100 is wider than the 40 across the antimeridian.
    expect(narrowestSpan([100, -100, 150, -170])).toEqual([100, 260]);
    // Spread round the world (the widest gap, 100, in the middle; 80 across): the span skips it.
    expect(narrowestSpan([-135, -45, 55, 145])).toEqual([55, 315]);
    expect(narrowestSpan([-170, -90, 0, 90])).toEqual([-170, 90]);
  });
});
