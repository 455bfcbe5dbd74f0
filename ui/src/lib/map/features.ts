// Live devices, incidents and a trail as GeoJSON for the map's sources.
import type { Feature, FeatureCollection, LineString, Point } from 'geojson';
import type { DeviceView, Incident, TrailPoint } from '../backend';
import { deviceLabel, displayState, isMoving, MOVING_MS, type DisplayState } from '../devices/filter';

export interface DeviceProps {
  id: string;
  label: string;
  state: DisplayState;
  kind: string;
  simulated: boolean;
  /** Degrees, or -1 when the device is not moving or sent none (no arrow). */
  heading: number;
}

/** The device's feature, or null when it never reported a position. */
export function deviceFeature(d: DeviceView, alarmed: ReadonlySet<string>): Feature<Point, DeviceProps> | null {
  if (d.lat === null || d.lon === null) return null;
  return {
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [d.lon, d.lat] },
    properties: deviceProps(d, alarmed),
  };
}

/** What the map draws of a device, besides where. */
export function deviceProps(d: DeviceView, alarmed: ReadonlySet<string>): DeviceProps {
  return {
    id: d.id,
    label: deviceLabel(d),
    state: displayState(d, alarmed),
    kind: d.kind ?? 'other',
    simulated: d.simulated,
    heading: headingOf(d),
  };
}

/** The heading arrow's direction while the device moves (in alarm or not), else -1: none. */
export function headingOf(d: DeviceView): number {
  return d.online && !d.stale && isMoving(d) && d.heading !== null ? d.heading : -1;
}

/** Devices with a position, as points. Devices that never reported a fix are left out. */
export function devicesToFeatures(
  devices: Iterable<DeviceView>,
  alarmed: ReadonlySet<string> = new Set(),
): FeatureCollection<Point, DeviceProps> {
  const features: Array<Feature<Point, DeviceProps>> = [];
  for (const d of devices) {
    const f = deviceFeature(d, alarmed);
    if (f) features.push(f);
  }
  return { type: 'FeatureCollection', features };
}

export interface IncidentProps {
  id: string;
  severity: Incident['severity'];
  state: Incident['state'];
}

/** Open incidents that say where they happened. */
export function incidentsToFeatures(incidents: Iterable<Incident>): FeatureCollection<Point, IncidentProps> {
  const features: Array<Feature<Point, IncidentProps>> = [];
  for (const i of incidents) {
    if (i.state === 'resolved' || i.lat === null || i.lon === null) continue;
    features.push({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [i.lon, i.lat] },
      properties: { id: i.id, severity: i.severity, state: i.state },
    });
  }
  return { type: 'FeatureCollection', features };
}

/** A trail as one line (empty with fewer than two points). */
export function trailToFeature(points: readonly TrailPoint[]): FeatureCollection<LineString> {
  // One segment per pair of fixes, carrying the speed at its end (km/h, null when the device
  // sent none), so the line is coloured by speed. Each goes the short way round: a ship from
  // 179.9 to -179.9 crosses the antimeridian (0.2 degrees), not the whole world; its end is
  // written past 180 (180.1), which MapLibre draws on the world copy beside.
  const features: FeatureCollection<LineString>['features'] = [];
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1];
    const b = points[k];
    features.push({
      type: 'Feature',
      properties: { kmh: b.speed === null ? null : b.speed * 3.6 },
      geometry: { type: 'LineString', coordinates: [[a.lon, a.lat], [a.lon + shortWayRound(b.lon - a.lon), b.lat]] },
    });
  }
  return { type: 'FeatureCollection', features };
}

/** A difference of longitudes the short way round, within -180..180. */
function shortWayRound(dLon: number): number {
  if (dLon > 180) return dLon - 360;
  if (dLon < -180) return dLon + 360;
  return dLon;
}

/** Adds a live fix to a trail in time order, keeping the last `windowMs` before the newest, and
 * at most `maxPoints`. */
export function extendTrail(points: TrailPoint[], p: TrailPoint, windowMs: number, maxPoints = MAX_TRAIL_POINTS): TrailPoint[] {
  const last = points[points.length - 1];
  if (last && p.ts_ms <= last.ts_ms) return points;
  const out = [...points, p];
  const from = p.ts_ms - windowMs;
  let start = Math.max(0, out.length - maxPoints);
  while (start < out.length - 1 && out[start].ts_ms < from) start++;
  return start > 0 ? out.slice(start) : out;
}

/** The trail read from the backend for a new selection, with the fixes that batches brought
 * while the read was on its way (newer than its last point) kept on its end. */
export function mergeTrail(fetched: TrailPoint[], live: readonly TrailPoint[], maxPoints = MAX_TRAIL_POINTS): TrailPoint[] {
  const last = fetched.length ? fetched[fetched.length - 1].ts_ms : -Infinity;
  const newer = live.filter((p) => p.ts_ms > last);
  if (newer.length === 0) return fetched;
  const out = [...fetched, ...newer];
  return out.length > maxPoints ? out.slice(out.length - maxPoints) : out;
}

/** Most fixes in a trail, as the backend keeps them (`MAX_TRAIL_POINTS` in
 * crates/core/src/live.rs): the trail a selection reads and the one it grows agree. */
export const MAX_TRAIL_POINTS = 600;

/** "12 s ago", "4 min ago", "2 h ago". */
export function ago(thenMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** The time of day of `thenMs`, with its date when that is not the day of `nowMs` (a night
 * shift's audit trail crosses midnight). */
export function clockTime(thenMs: number, nowMs: number): string {
  const then = new Date(thenMs);
  return then.toDateString() === new Date(nowMs).toDateString() ? then.toLocaleTimeString() : then.toLocaleString();
}

const STATE_WORDS: Record<DisplayState, string> = {
  alarm: 'in alarm (open incident)',
  offline: 'offline',
  stale: 'online, but silent (stale)',
  moving: 'moving',
  stopped: 'stopped',
};

/** What the device's state means, in words. */
export function stateWords(d: DeviceView, alarmed: ReadonlySet<string>): string {
  const state = displayState(d, alarmed);
  if (state === 'stale' && d.clock_behind) return 'online, but every report for minutes is older than one it sent before (is its clock wrong?)';
  // Only for one that was moving: a parked tracker sending heartbeats, or a fixed sensor that
  // sent its place once, has an old fix too, and nothing lost.
  if (state === 'stopped' && d.fix_old && (d.speed ?? 0) >= MOVING_MS) return 'online, but no position for minutes since it was last moving (lost its GPS fix?)';
  return STATE_WORDS[state];
}

/** The rows shown for a device, as [label, value]. */
export function deviceFacts(d: DeviceView, nowMs: number, alarmed: ReadonlySet<string> = new Set()): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ['Id', d.id],
    ['Kind', d.kind ?? 'unknown'],
    ...(d.groups.length > 0 ? [['Groups', d.groups.join(', ')] as [string, string]] : []),
    ['State', stateWords(d, alarmed)],
    ['Last seen', ago(d.last_seen_ms, nowMs)],
  ];
  if (d.fix_ts_ms !== null) rows.push(['Last fix', ago(d.fix_ts_ms, nowMs)]);
  // The device sent no speed: live state measured it from its fixes, and says so.
  const estimated = d.speed_estimated ? ' (from its fixes)' : '';
  if (d.speed !== null) rows.push(['Speed', `${Math.round(d.speed * 3.6)} km/h${estimated}`]);
  if (d.heading !== null) rows.push(['Heading', `${Math.round(d.heading)}°`]);
  if (d.battery !== null) rows.push(['Battery', `${Math.round(d.battery)} %`]);
  if (d.signal !== null) rows.push(['Signal', `${Math.round(d.signal)} dBm`]);
  if (d.lat !== null && d.lon !== null) rows.push(['Position', `${d.lat.toFixed(5)}, ${d.lon.toFixed(5)}`]);
  return rows;
}
