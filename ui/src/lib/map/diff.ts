// What the device source must change, device by device, so a map update costs the main thread
// the devices that moved or changed state, not the whole fleet: MapLibre's `updateData` takes
// the diff and posts only it to its worker (a `setData` of 10,000 features would clone all of
// them on the main thread every time).
import type { Feature, Point } from 'geojson';
import type { GeoJSONSourceDiff } from 'maplibre-gl';
import type { DeviceView } from '../backend';
import { deviceFeature, type DeviceProps } from './features';

type DeviceFeature = Feature<Point, DeviceProps>;

const PROPS: ReadonlyArray<keyof DeviceProps> = ['label', 'state', 'kind', 'simulated', 'heading'];

/** The device features the map's source holds, and the diff that brings it up to date. */
export class DeviceFeatures {
  private readonly shown = new Map<string, DeviceFeature>();

  /** How many devices the source holds. */
  get size(): number {
    return this.shown.size;
  }

  /** Every feature, for a `setData` that replaces the source (the first paint, a full batch). */
  reset(devices: Iterable<DeviceView>, alarmed: ReadonlySet<string>): DeviceFeature[] {
    this.shown.clear();
    for (const d of devices) {
      const f = deviceFeature(d, alarmed);
      if (f) this.shown.set(d.id, f);
    }
    return [...this.shown.values()];
  }

  /** The diff for the devices in `ids` (as `lookup` now holds them; absent means gone), or null
   * when nothing the map draws changed. Only what changed is sent: a new geometry for a device
   * that moved, the properties that differ for one that changed state. */
  diff(ids: Iterable<string>, lookup: (id: string) => DeviceView | undefined, alarmed: ReadonlySet<string>): GeoJSONSourceDiff | null {
    const add: DeviceFeature[] = [];
    const update: NonNullable<GeoJSONSourceDiff['update']> = [];
    const remove: string[] = [];
    for (const id of ids) {
      const d = lookup(id);
      const next = d ? deviceFeature(d, alarmed) : null;
      const prev = this.shown.get(id);
      if (!next) {
        if (prev) {
          this.shown.delete(id);
          remove.push(id);
        }
        continue;
      }
      this.shown.set(id, next);
      if (!prev) {
        add.push(next);
        continue;
      }
      const [x0, y0] = prev.geometry.coordinates;
      const [x1, y1] = next.geometry.coordinates;
      const moved = x0 !== x1 || y0 !== y1;
      let changed: Array<{ key: string; value: unknown }> | null = null;
      for (const key of PROPS) {
        if (prev.properties[key] !== next.properties[key]) (changed ??= []).push({ key, value: next.properties[key] });
      }
      if (moved && changed) update.push({ id, newGeometry: next.geometry, addOrUpdateProperties: changed });
      else if (moved) update.push({ id, newGeometry: next.geometry });
      else if (changed) update.push({ id, addOrUpdateProperties: changed });
    }
    if (add.length === 0 && update.length === 0 && remove.length === 0) return null;
    return { add, update, remove };
  }
}

/** Devices whose alarm state differs between two alarmed sets. */
export function alarmChanges(before: ReadonlySet<string>, after: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const id of before) if (!after.has(id)) out.push(id);
  for (const id of after) if (!before.has(id)) out.push(id);
  return out;
}
