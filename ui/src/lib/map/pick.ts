// What a click on the map picks. Several layers can lie under one point (an alarmed device sits
// on its own incident's ring); the click acts on one of them: a device before a cluster before
// an incident. The layers' own click listeners each fired, so one click selected the device and
// then the incident, and the incident's tab won.

import { CLUSTER_LAYER, DEVICE_LAYER, INCIDENT_LAYER } from './style';

/** The layers a click can pick from, first wins. */
export const PICKABLE_LAYERS = [DEVICE_LAYER, CLUSTER_LAYER, INCIDENT_LAYER] as const;

export type Pick =
  | { kind: 'device'; id: string }
  | { kind: 'cluster'; clusterId: number; at: [number, number] }
  | { kind: 'incident'; id: string };

/** What MapLibre's queryRenderedFeatures returns, as far as a pick reads it. */
export interface PickableFeature {
  layer: { id: string };
  properties: Record<string, unknown> | null;
  geometry: { type: string; coordinates?: unknown };
}

export function pickClickTarget(features: readonly PickableFeature[]): Pick | null {
  for (const layer of PICKABLE_LAYERS) {
    for (const f of features) {
      if (f.layer.id !== layer) continue;
      const p = f.properties ?? {};
      if (layer === CLUSTER_LAYER) {
        if (f.geometry.type === 'Point' && typeof p.cluster_id === 'number') {
          return { kind: 'cluster', clusterId: p.cluster_id, at: f.geometry.coordinates as [number, number] };
        }
      } else if (typeof p.id === 'string') {
        return layer === DEVICE_LAYER ? { kind: 'device', id: p.id } : { kind: 'incident', id: p.id };
      }
    }
  }
  return null;
}
