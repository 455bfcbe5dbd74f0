// Live devices as GeoJSON for the map's device source.
import type { FeatureCollection, Point } from 'geojson';
import type { DeviceView } from '../backend';

export type DeviceState = 'online' | 'stale' | 'offline';

export function deviceState(d: DeviceView): DeviceState {
  if (!d.online) return 'offline';
  return d.stale ? 'stale' : 'online';
}

export interface DeviceProps {
  id: string;
  label: string;
  online: boolean;
  /** 'online' | 'stale' | 'offline', for colouring. */
  state: DeviceState;
  simulated: boolean;
  kind: string;
}

/** Devices with a position, as points. Devices that never reported a fix are left out. */
export function devicesToFeatures(devices: Iterable<DeviceView>): FeatureCollection<Point, DeviceProps> {
  const features: FeatureCollection<Point, DeviceProps>['features'] = [];
  for (const d of devices) {
    if (d.lat === null || d.lon === null) continue;
    features.push({
      type: 'Feature',
      id: undefined,
      geometry: { type: 'Point', coordinates: [d.lon, d.lat] },
      properties: { id: d.id, label: d.name ?? d.id, online: d.online, state: deviceState(d), simulated: d.simulated, kind: d.kind ?? 'other' },
    });
  }
  return { type: 'FeatureCollection', features };
}

/** "12 s ago", "4 min ago", "2 h ago". */
export function ago(thenMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** The rows shown when a device is clicked, as [label, value]. */
export function deviceFacts(d: DeviceView, nowMs: number): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ['Id', d.id],
    ['Kind', d.kind ?? 'unknown'],
    ['State', deviceState(d) === 'stale' ? 'online, but silent (stale)' : deviceState(d)],
    ['Last seen', ago(d.last_seen_ms, nowMs)],
  ];
  if (d.speed !== null) rows.push(['Speed', `${Math.round(d.speed * 3.6)} km/h`]);
  if (d.battery !== null) rows.push(['Battery', `${Math.round(d.battery)} %`]);
  if (d.signal !== null) rows.push(['Signal', `${Math.round(d.signal)} dBm`]);
  return rows;
}

/** The popup for a device, built as DOM nodes (device-supplied text never becomes HTML). */
export function devicePopupContent(d: DeviceView, nowMs: number): HTMLElement {
  const root = document.createElement('div');
  root.className = 'device-popup';
  const title = document.createElement('h3');
  title.textContent = d.name ?? d.id;
  if (d.simulated) {
    const tag = document.createElement('span');
    tag.className = 'sim';
    tag.textContent = 'SIMULATED';
    title.append(tag);
  }
  const list = document.createElement('dl');
  for (const [k, v] of deviceFacts(d, nowMs)) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    list.append(dt, dd);
  }
  root.append(title, list);
  return root;
}
