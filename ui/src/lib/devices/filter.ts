// The device list's search, filters and sort, and the state a device is drawn in.
import type { DeviceView } from '../backend';

/** What a dispatcher needs to tell apart at a glance, most alarming first. */
export type DisplayState = 'alarm' | 'offline' | 'stale' | 'moving' | 'stopped';
export const DISPLAY_STATES: readonly DisplayState[] = ['alarm', 'offline', 'stale', 'moving', 'stopped'];

/** Slower than this (m/s, about 2 km/h) is stopped: GPS jitter of a parked unit stays below. */
export const MOVING_MS = 0.6;

export function displayState(d: DeviceView, alarmed: ReadonlySet<string>): DisplayState {
  return alarmed.has(d.id) ? 'alarm' : linkState(d);
}

/** The state under an alarm: offline, stale, moving or stopped. */
function linkState(d: DeviceView): Exclude<DisplayState, 'alarm'> {
  if (!d.online) return 'offline';
  if (d.stale) return 'stale';
  return isMoving(d) ? 'moving' : 'stopped';
}

/** Moving, as far as anyone knows: at speed in its fix, and that fix not older than the stale
 * limit (a vehicle whose GPS lost its fix in a garage, its tracker still sending statuses, was
 * drawn driving at its last speed for as long as it stayed there). */
export function isMoving(d: DeviceView): boolean {
  return (d.speed ?? 0) >= MOVING_MS && !d.fix_old;
}

/** Whether `d` is in `state`, as the state filter reads it: "in alarm" is any device with an open
 * incident; the others are the device's own state, alarm or not. A vehicle that goes offline
 * opens an incident and is drawn in alarm, and must still be in the list of offline devices. */
export function inState(d: DeviceView, state: DisplayState, alarmed: ReadonlySet<string>): boolean {
  return state === 'alarm' ? alarmed.has(d.id) : linkState(d) === state;
}

/** The kinds a device declares (`DeviceView.kind`), in the order the list's filter offers them. */
export const DEVICE_KINDS: readonly string[] = ['vehicle', 'sensor', 'bodycam', 'phone', 'terminal', 'other'];

/** Where a device reports from (its adapter), or simulated. */
export type DeviceSource = 'native' | 'owntracks' | 'face' | 'simulated';
export const DEVICE_SOURCES: readonly DeviceSource[] = ['native', 'owntracks', 'face', 'simulated'];

export function deviceSource(d: DeviceView): DeviceSource {
  if (d.simulated) return 'simulated';
  if (d.id.startsWith('ot:')) return 'owntracks';
  if (d.id.startsWith('face:')) return 'face';
  return 'native';
}

export interface DeviceFilter {
  text: string;
  kind: string; // 'all' or a DeviceView kind
  state: 'all' | DisplayState;
  /** 'all' or one of the operator's groups (`[groups]` in the config). */
  group: string;
  source: 'all' | DeviceSource;
  sort: 'name' | 'last_seen';
}

export const DEFAULT_DEVICE_FILTER: DeviceFilter = {
  text: '',
  kind: 'all',
  state: 'all',
  group: 'all',
  source: 'all',
  sort: 'name',
};

/**
 * The filter with what no longer exists put back to "all": a group taken out of the config, or
 * a source saved by a console version that offered other ones. Without this a restored filter
 * could hide every device behind a choice the drop-downs no longer show.
 */
export function validDeviceFilter(f: DeviceFilter, groups: readonly string[]): DeviceFilter {
  const group = f.group === 'all' || groups.includes(f.group) ? f.group : 'all';
  const source = f.source === 'all' || DEVICE_SOURCES.includes(f.source) ? f.source : 'all';
  const kind = f.kind === 'all' || DEVICE_KINDS.includes(f.kind) ? f.kind : 'all';
  const state = f.state === 'all' || DISPLAY_STATES.includes(f.state) ? f.state : 'all';
  const sort = f.sort === 'last_seen' ? 'last_seen' : 'name';
  const same = group === f.group && source === f.source && kind === f.kind && state === f.state && sort === f.sort;
  return same ? f : { ...f, group, source, kind, state, sort };
}

export function deviceLabel(d: DeviceView): string {
  return d.name ?? d.id;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** What of the filter decides which devices pass (everything but the sort order), as a string:
 * two filters with the same key let the same devices through. */
export function filterKey(f: DeviceFilter): string {
  return JSON.stringify([f.text.trim().toLowerCase(), f.kind, f.state, f.group, f.source]);
}

const NO_FILTER = filterKey(DEFAULT_DEVICE_FILTER);

/** Whether the filter narrows anything down (the sort order does not). */
export function isFiltering(f: DeviceFilter): boolean {
  return filterKey(f) !== NO_FILTER;
}

/** The test `f` puts a device to (everything but the sort), for the list and the map alike. */
export function deviceMatcher(f: DeviceFilter, alarmed: ReadonlySet<string>): (d: DeviceView) => boolean {
  if (!isFiltering(f)) return () => true;
  const text = f.text.trim().toLowerCase();
  return (d) =>
    (f.kind === 'all' || (d.kind ?? 'other') === f.kind) &&
    (f.state === 'all' || inState(d, f.state, alarmed)) &&
    (f.group === 'all' || d.groups.includes(f.group)) &&
    (f.source === 'all' || deviceSource(d) === f.source) &&
    (!text || d.id.toLowerCase().includes(text) || (d.name ?? '').toLowerCase().includes(text));
}

/** The devices passing `f`, sorted as it asks. */
export function filterDevices(devices: Iterable<DeviceView>, f: DeviceFilter, alarmed: ReadonlySet<string>): DeviceView[] {
  const matches = deviceMatcher(f, alarmed);
  const out: DeviceView[] = [];
  for (const d of devices) if (matches(d)) out.push(d);
  if (f.sort === 'last_seen') out.sort((a, b) => b.last_seen_ms - a.last_seen_ms || collator.compare(a.id, b.id));
  else out.sort((a, b) => collator.compare(deviceLabel(a), deviceLabel(b)) || collator.compare(a.id, b.id));
  return out;
}
