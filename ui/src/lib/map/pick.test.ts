import { describe, expect, it } from 'vitest';
import { pickClickTarget, type PickableFeature } from './pick';
import { CLUSTER_LAYER, DEVICE_LAYER, INCIDENT_LAYER } from './style';

const point = { type: 'Point', coordinates: [4.5, 51.9] };
const f = (layer: string, properties: Record<string, unknown>): PickableFeature => ({ layer: { id: layer }, properties, geometry: point });

describe('a click on the map', () => {
  it('picks the device, not the incident ring it sits on', () => {
    // MapLibre lists what is drawn on top first; the ring may come first or last.
    const ring = f(INCIDENT_LAYER, { id: 'inc-1' });
    const van = f(DEVICE_LAYER, { id: 'van-1' });
    expect(pickClickTarget([ring, van])).toEqual({ kind: 'device', id: 'van-1' });
    expect(pickClickTarget([van, ring])).toEqual({ kind: 'device', id: 'van-1' });
  });

  it('picks a cluster before an incident, and an incident alone', () => {
    const cluster = f(CLUSTER_LAYER, { cluster_id: 7, point_count: 12 });
    expect(pickClickTarget([f(INCIDENT_LAYER, { id: 'inc-1' }), cluster])).toEqual({ kind: 'cluster', clusterId: 7, at: [4.5, 51.9] });
    expect(pickClickTarget([f(INCIDENT_LAYER, { id: 'inc-1' })])).toEqual({ kind: 'incident', id: 'inc-1' });
  });

  it('picks nothing from the basemap or from features without an id', () => {
    expect(pickClickTarget([f('water', { id: 'w' }), f(DEVICE_LAYER, {})])).toBeNull();
    expect(pickClickTarget([])).toBeNull();
  });
});
