// Live devices as GeoJSON for the map's device source.
import type { FeatureCollection, Point } from 'geojson';
import type { DeviceView } from '../backend';

export interface DeviceProps {
  id: string;
  label: string;
  online: boolean;
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
      properties: { id: d.id, label: d.name ?? d.id, online: d.online, simulated: d.simulated, kind: d.kind ?? 'other' },
    });
  }
  return { type: 'FeatureCollection', features };
}
