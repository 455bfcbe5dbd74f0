// What the device source must change, device by device, so a map update costs the main thread
// the devices that moved or changed state, not the whole fleet: MapLibre's `updateData` takes
// the diff and posts only it to its worker (a `setData` of 10,000 features would clone all of
// them on the main thread every time).
import type { Feature, Point } from 'geojson';
import type { GeoJSONSourceDiff } from 'maplibre-gl';
import type { DeviceView } from '../backend';
import { deviceLabel, displayState } from '../devices/filter';
import { deviceFeature, deviceProps, headingOf, type DeviceProps } from './features';

type DeviceFeature = Feature<Point, DeviceProps>;

/** What the source holds of one device: its position and drawn properties, kept flat and
 * updated in place, so a diff allocates only what it sends. */
interface Shown {
  lon: number;
  lat: number;
  props: DeviceProps;
}

const PROPS: ReadonlyArray<keyof DeviceProps> = ['label', 'state', 'kind', 'simulated', 'heading'];

/** Which devices the map draws (those the device list's filter lets through); all by default. */
export type Shows = (d: DeviceView) => boolean;
const everyDevice: Shows = () => true;

/** The device features the map's source holds, and the diff that brings it up to date. A device
 * is held while it has a position and `shows` lets it through. */
export class DeviceFeatures {
  private readonly shown = new Map<string, Shown>();

  /** How many devices the source holds. */
  get size(): number {
    return this.shown.size;
  }

  /** Where the source has device `id` ([lon, lat]), or null when it does not hold it. */
  position(id: string): [number, number] | null {
    const s = this.shown.get(id);
    return s ? [s.lon, s.lat] : null;
  }

  /** Every feature, for a `setData` that replaces the source (the first paint, a full batch). */
  reset(devices: Iterable<DeviceView>, alarmed: ReadonlySet<string>, shows: Shows = everyDevice): DeviceFeature[] {
    this.shown.clear();
    const out: DeviceFeature[] = [];
    for (const d of devices) {
      const f = shows(d) ? deviceFeature(d, alarmed) : null;
      if (!f) continue;
      out.push(f);
      // Shared with the feature handed to MapLibre: `diff` replaces props, never edits them.
      this.shown.set(d.id, { lon: d.lon!, lat: d.lat!, props: f.properties });
    }
    return out;
  }

  /** The diff for the devices in `ids` (as `lookup` now holds them; absent means gone), or null
   * when nothing the map draws changed. Only what changed is sent: a new geometry for a device
   * that moved, the properties that differ for one that changed state; a device `shows` stops
   * letting through (it changed state under a state filter, say) is removed, and added back. */
  diff(
    ids: Iterable<string>,
    lookup: (id: string) => DeviceView | undefined,
    alarmed: ReadonlySet<string>,
    shows: Shows = everyDevice,
  ): GeoJSONSourceDiff | null {
    const add: DeviceFeature[] = [];
    const update: NonNullable<GeoJSONSourceDiff['update']> = [];
    const remove: string[] = [];
    for (const id of ids) {
      const d = lookup(id);
      const prev = this.shown.get(id);
      if (!d || d.lat === null || d.lon === null || !shows(d)) {
        if (prev) {
          this.shown.delete(id);
          remove.push(id);
        }
        continue;
      }
      if (!prev) {
        const f = deviceFeature(d, alarmed)!; // it has a position (checked above)
        this.shown.set(id, { lon: d.lon, lat: d.lat, props: f.properties });
        add.push(f);
        continue;
      }
      const moved = prev.lon !== d.lon || prev.lat !== d.lat;
      // Most updates only move: the drawn properties are compared without building them.
      let changed: Array<{ key: string; value: unknown }> | null = null;
      if (!sameProps(prev.props, d, alarmed)) {
        const props = deviceProps(d, alarmed);
        for (const key of PROPS) {
          if (prev.props[key] !== props[key]) (changed ??= []).push({ key, value: props[key] });
        }
        prev.props = props;
      }
      if (!moved) {
        if (changed) update.push({ id, addOrUpdateProperties: changed });
        continue;
      }
      prev.lon = d.lon;
      prev.lat = d.lat;
      const newGeometry: Point = { type: 'Point', coordinates: [d.lon, d.lat] };
      update.push(changed ? { id, newGeometry, addOrUpdateProperties: changed } : { id, newGeometry });
    }
    if (add.length === 0 && update.length === 0 && remove.length === 0) return null;
    return { add, update, remove };
  }

  /** How many devices held lie within `west`..`east`, `south`..`north` (longitudes as MapLibre
   * gives a view's bounds: east may pass 180 and west -180 where the view crosses the
   * antimeridian, or span more than the world). */
  countWithin(west: number, south: number, east: number, north: number): number {
    let n = 0;
    for (const { lon, lat } of this.shown.values()) {
      if (withinView(lon, lat, west, south, east, north)) n++;
    }
    return n;
  }

  /** West, south, east, north around every device held, or null when there is none. The
   * longitudes are the narrowest span that covers them all, which for a fleet on both sides of
   * the antimeridian (Fiji, the Bering Strait) runs across it: east is then past 180, as
   * MapLibre takes a box over the antimeridian, instead of a box round the whole world. */
  bounds(): [number, number, number, number] | null {
    if (this.shown.size === 0) return null;
    const lons: number[] = [];
    let [s, n] = [90, -90];
    for (const { lon, lat } of this.shown.values()) {
      lons.push(lon);
      s = Math.min(s, lat);
      n = Math.max(n, lat);
    }
    const [w, e] = narrowestSpan(lons);
    return [w, s, e, n];
  }
}

/** Whether [lon, lat] (lon in -180..180) is in a view's bounds as MapLibre gives them: east
 * may pass 180 and west -180 where the view crosses the antimeridian, or span more than the
 * world. */
export function withinView(lon: number, lat: number, west: number, south: number, east: number, north: number): boolean {
  if (lat < south || lat > north) return false;
  if (east - west >= 360) return true;
  return (lon >= west && lon <= east) || (lon + 360 >= west && lon + 360 <= east) || (lon - 360 >= west && lon - 360 <= east);
}

/** `lon` moved by whole turns to the copy of the world nearest `centre` (a view's centre, which
 * MapLibre may give past 180 across the antimeridian). */
export function nearestCopy(lon: number, centre: number): number {
  return lon + 360 * Math.round((centre - lon) / 360);
}

/** The narrowest span of longitude [west, east] that holds every one of `lons` (each in
 * -180..180), going either way round: the complement of the widest gap between neighbours on
 * the circle. East is past 180 when the span crosses the antimeridian. */
export function narrowestSpan(lons: number[]): [number, number] {
  const sorted = Float64Array.from(lons).sort();
  const last = sorted.length - 1;
  // The gap across the antimeridian, from the most easterly round to the most westerly.
  let widest = sorted[0] + 360 - sorted[last];
  let after = last;
  for (let i = 0; i < last; i++) {
    const gap = sorted[i + 1] - sorted[i];
    if (gap > widest) [widest, after] = [gap, i];
  }
  return after === last ? [sorted[0], sorted[last]] : [sorted[after + 1], sorted[after] + 360];
}

/** Whether `d` draws with the properties `shown` (what `deviceProps` would say, unbuilt). */
function sameProps(shown: DeviceProps, d: DeviceView, alarmed: ReadonlySet<string>): boolean {
  return (
    shown.label === deviceLabel(d) &&
    shown.state === displayState(d, alarmed) &&
    shown.kind === (d.kind ?? 'other') &&
    shown.simulated === d.simulated &&
    shown.heading === headingOf(d)
  );
}

/** Devices whose alarm state differs between two alarmed sets. */
export function alarmChanges(before: ReadonlySet<string>, after: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const id of before) if (!after.has(id)) out.push(id);
  for (const id of after) if (!before.has(id)) out.push(id);
  return out;
}
