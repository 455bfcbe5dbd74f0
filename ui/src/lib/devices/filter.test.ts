import { describe, expect, it } from 'vitest';
import type { DeviceView } from '../backend';
import { DEFAULT_DEVICE_FILTER, deviceMatcher, deviceSource, displayState, filterDevices, isFiltering, validDeviceFilter } from './filter';

function device(over: Partial<DeviceView>): DeviceView {
  return {
    id: 'v1', name: null, kind: 'vehicle', simulated: false, online: true, stale: false, clock_behind: false, fix_old: false,
    lat: 1, lon: 2, heading: null, speed: 0, speed_estimated: false, battery: null, signal: null, fix_ts_ms: 0, last_seen_ms: 0, groups: [],
    ...over,
  };
}

describe('device states and filters', () => {
  it('tells alarm, offline, stale, moving and stopped apart, alarm first', () => {
    const none = new Set<string>();
    expect(displayState(device({ speed: 10 }), none)).toBe('moving');
    expect(displayState(device({ speed: 0.2 }), none)).toBe('stopped');
    expect(displayState(device({ stale: true, speed: 10 }), none)).toBe('stale');
    // Its fix older than the stale limit while it still reports: not moving as far as anyone knows.
    expect(displayState(device({ speed: 10, fix_old: true }), none)).toBe('stopped');
    expect(displayState(device({ online: false }), none)).toBe('offline');
    expect(displayState(device({ online: false }), new Set(['v1']))).toBe('alarm');
  });

  it('tells sources apart by adapter, simulated first', () => {
    expect(deviceSource(device({ id: 'ot:ana.phone' }))).toBe('owntracks');
    expect(deviceSource(device({ id: 'face:T1' }))).toBe('face');
    expect(deviceSource(device({ id: 'ot:x', simulated: true }))).toBe('simulated');
    expect(deviceSource(device({}))).toBe('native');
  });

  it("filters by the operator's groups, a device in several groups in each", () => {
    const list = [
      device({ id: 'van-12', groups: ['North', 'Vans'] }),
      device({ id: 'van-2', groups: ['Vans'] }),
      device({ id: 'ot:ana/phone', groups: [] }),
    ];
    const none = new Set<string>();
    const ids = (group: string, source: typeof DEFAULT_DEVICE_FILTER.source = 'all') =>
      filterDevices(list, { ...DEFAULT_DEVICE_FILTER, group, source }, none).map((d) => d.id);
    expect(ids('Vans')).toEqual(['van-2', 'van-12']);
    expect(ids('North')).toEqual(['van-12']);
    expect(ids('all', 'owntracks')).toEqual(['ot:ana/phone']);
    expect(ids('Vans', 'owntracks')).toEqual([]);
  });

  it('puts a restored group or source that no longer exists back to all', () => {
    const saved = { ...DEFAULT_DEVICE_FILTER, group: 'Gone', source: 'native' as const };
    expect(validDeviceFilter(saved, ['North'])).toEqual({ ...saved, group: 'all' });
    const kept = { ...DEFAULT_DEVICE_FILTER, group: 'North' };
    expect(validDeviceFilter(kept, ['North'])).toBe(kept);
    // A console from before sources were apart saved an adapter name as the group.
    const old = { ...DEFAULT_DEVICE_FILTER, group: 'owntracks', source: 'bogus' as never };
    expect(validDeviceFilter(old, [])).toEqual(DEFAULT_DEVICE_FILTER);
    // A state, kind or sort no drop-down offers (an older console's, or a hand-edited store).
    const odd = { ...DEFAULT_DEVICE_FILTER, state: 'online' as never, kind: 'drone', sort: 'battery' as never };
    expect(validDeviceFilter(odd, [])).toEqual(DEFAULT_DEVICE_FILTER);
    const fine = { ...DEFAULT_DEVICE_FILTER, state: 'stale' as const, kind: 'phone', sort: 'last_seen' as const };
    expect(validDeviceFilter(fine, [])).toBe(fine);
  });

  it('searches id and name, filters kind and state, sorts naturally or by last seen', () => {
    const list = [
      device({ id: 'v10', name: 'Van 10', last_seen_ms: 5 }),
      device({ id: 'v2', name: 'Van 2', last_seen_ms: 9 }),
      device({ id: 'c1', name: 'Cam', kind: 'bodycam', online: false, last_seen_ms: 1 }),
    ];
    const none = new Set<string>();
    expect(filterDevices(list, DEFAULT_DEVICE_FILTER, none).map((d) => d.id)).toEqual(['c1', 'v2', 'v10']);
    expect(filterDevices(list, { ...DEFAULT_DEVICE_FILTER, sort: 'last_seen' }, none).map((d) => d.id)).toEqual(['v2', 'v10', 'c1']);
    expect(filterDevices(list, { ...DEFAULT_DEVICE_FILTER, text: 'VAN 1' }, none).map((d) => d.id)).toEqual(['v10']);
    expect(filterDevices(list, { ...DEFAULT_DEVICE_FILTER, kind: 'bodycam' }, none).map((d) => d.id)).toEqual(['c1']);
    expect(filterDevices(list, { ...DEFAULT_DEVICE_FILTER, state: 'offline' }, none).map((d) => d.id)).toEqual(['c1']);
  });

  it('says whether a filter narrows anything, the sort order aside, and matches on every field', () => {
    expect(isFiltering(DEFAULT_DEVICE_FILTER)).toBe(false);
    expect(isFiltering({ ...DEFAULT_DEVICE_FILTER, sort: 'last_seen', text: '  ' })).toBe(false);
    expect(isFiltering({ ...DEFAULT_DEVICE_FILTER, text: 'van' })).toBe(true);
    expect(isFiltering({ ...DEFAULT_DEVICE_FILTER, state: 'alarm' })).toBe(true);

    const alarmed = new Set(['van-1']);
    const vans = deviceMatcher({ ...DEFAULT_DEVICE_FILTER, text: ' VAN ', kind: 'vehicle' }, alarmed);
    expect(vans(device({ id: 'van-1' }))).toBe(true);
    expect(vans(device({ id: 'x', name: 'Caravan 3' }))).toBe(true);
    expect(vans(device({ id: 'van-2', kind: 'sensor' }))).toBe(false);
    const inAlarm = deviceMatcher({ ...DEFAULT_DEVICE_FILTER, state: 'alarm', group: 'North' }, alarmed);
    expect(inAlarm(device({ id: 'van-1', groups: ['North'] }))).toBe(true);
    expect(inAlarm(device({ id: 'van-1', groups: [] }))).toBe(false);
    expect(inAlarm(device({ id: 'van-2', groups: ['North'] }))).toBe(false);
  });

  it('keeps a device in alarm in the list of its own state (a vehicle gone offline opens an incident)', () => {
    const alarmed = new Set(['van-1']);
    const offline = deviceMatcher({ ...DEFAULT_DEVICE_FILTER, state: 'offline' }, alarmed);
    expect(offline(device({ id: 'van-1', online: false }))).toBe(true);
    expect(offline(device({ id: 'van-2', online: false }))).toBe(true);
    expect(offline(device({ id: 'van-1', online: true }))).toBe(false);
    const moving = deviceMatcher({ ...DEFAULT_DEVICE_FILTER, state: 'moving' }, alarmed);
    expect(moving(device({ id: 'van-1', speed: 10 }))).toBe(true);
    expect(moving(device({ id: 'van-1', speed: 0 }))).toBe(false);
    // It is still drawn in alarm.
    expect(displayState(device({ id: 'van-1', online: false }), alarmed)).toBe('alarm');
  });
});
