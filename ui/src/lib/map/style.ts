// Map style specs as typed constants: the offline basemap and the device layers.
import type { CircleLayerSpecification, StyleSpecification } from 'maplibre-gl';

export const DEVICE_SOURCE = 'devices';
export const DEVICE_LAYER = 'device-dots';

export const colors = {
  sea: '#0b1220',
  land: '#1a2436',
  border: '#3b4a63',
  online: '#22c55e',
  stale: '#f59e0b',
  offline: '#6b7280',
  simulatedRing: '#a78bfa',
  ring: '#0b1220',
};

/** The bundled basemap: land and borders from Natural Earth, served by the app itself, so the
 * map works with no network. `base` is the page's base URL. */
export function offlineStyle(base: string): StyleSpecification {
  return {
    version: 8,
    name: 'Watchfloor offline',
    sources: {
      land: { type: 'geojson', data: new URL('basemap/land.json', base).href },
      borders: { type: 'geojson', data: new URL('basemap/borders.json', base).href },
    },
    layers: [
      { id: 'sea', type: 'background', paint: { 'background-color': colors.sea } },
      { id: 'land', type: 'fill', source: 'land', paint: { 'fill-color': colors.land } },
      {
        id: 'borders',
        type: 'line',
        source: 'borders',
        paint: { 'line-color': colors.border, 'line-width': ['interpolate', ['linear'], ['zoom'], 2, 0.5, 8, 1.5] },
      },
    ],
  };
}

export const deviceDots: CircleLayerSpecification = {
  id: DEVICE_LAYER,
  type: 'circle',
  source: DEVICE_SOURCE,
  paint: {
    'circle-radius': ['interpolate', ['linear'], ['zoom'], 3, 3.5, 10, 6, 16, 9],
    'circle-color': ['match', ['get', 'state'], 'online', colors.online, 'stale', colors.stale, colors.offline],
    'circle-stroke-width': ['case', ['get', 'simulated'], 2.5, 1.5],
    'circle-stroke-color': ['case', ['get', 'simulated'], colors.simulatedRing, colors.ring],
  },
};
