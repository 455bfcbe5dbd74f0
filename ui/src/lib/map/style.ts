// Map style specs as typed constants: the offline basemap and the live layers.
import type {
  CircleLayerSpecification,
  ExpressionSpecification,
  GeoJSONSourceSpecification,
  LineLayerSpecification,
  StyleSpecification,
  SymbolLayerSpecification,
} from 'maplibre-gl';

export const DEVICE_SOURCE = 'devices';
export const INCIDENT_SOURCE = 'incidents';
export const TRAIL_SOURCE = 'trail';

export const DEVICE_LAYER = 'device-symbols';
export const CLUSTER_LAYER = 'device-clusters';
export const LABEL_LAYER = 'device-labels';
export const HEADING_LAYER = 'device-heading';
export const INCIDENT_LAYER = 'incident-rings';
export const TRAIL_LAYER = 'trail-line';

/** The last zoom whose tiles are clustered (MapLibre's clusterMaxZoom): clusters show below
 * CLUSTER_MAX_ZOOM + 1, and from there on every device is drawn on its own. */
export const CLUSTER_MAX_ZOOM = 11;
/** Labels show from this zoom on (they would cover each other further out). */
export const LABEL_MIN_ZOOM = 12;
/** More devices than this in view and labels hide, whatever the zoom: nobody reads hundreds of
 * names at once, and laying them out halved the map's frame rate with 2,300 devices in view. */
export const MAX_LABELLED = 400;

export const colors = {
  sea: '#0b1220',
  land: '#1a2436',
  border: '#3b4a63',
  seaLight: '#c9d8e6',
  landLight: '#eef1f4',
  borderLight: '#9aa8b8',
  trail: '#38bdf8',
};

/** The bundled basemap: land and borders from Natural Earth, served by the app itself, so the
 * map works with no network. `base` is the page's base URL. */
export function offlineStyle(base: string, theme: 'dark' | 'light' = 'dark'): StyleSpecification {
  const light = theme === 'light';
  return {
    version: 8,
    name: 'Watchfloor offline',
    sources: {
      land: { type: 'geojson', data: new URL('basemap/land.json', base).href },
      borders: { type: 'geojson', data: new URL('basemap/borders.json', base).href },
    },
    layers: [
      { id: 'sea', type: 'background', paint: { 'background-color': light ? colors.seaLight : colors.sea } },
      { id: 'land', type: 'fill', source: 'land', paint: { 'fill-color': light ? colors.landLight : colors.land } },
      {
        id: 'borders',
        type: 'line',
        source: 'borders',
        paint: {
          'line-color': light ? colors.borderLight : colors.border,
          'line-width': ['interpolate', ['linear'], ['zoom'], 2, 0.5, 8, 1.5],
        },
      },
    ],
  };
}

const empty = { type: 'FeatureCollection' as const, features: [] };

export const deviceSource: GeoJSONSourceSpecification = {
  type: 'geojson',
  data: empty,
  // Features are keyed by device id, so updateData can move one device without resending all.
  promoteId: 'id',
  cluster: true,
  clusterRadius: 45,
  clusterMaxZoom: CLUSTER_MAX_ZOOM,
  // How many devices in a cluster are in alarm: such a cluster is drawn red.
  clusterProperties: { alarm: ['+', ['case', ['==', ['get', 'state'], 'alarm'], 1, 0]] },
};

export const simpleSource: GeoJSONSourceSpecification = { type: 'geojson', data: empty };

const notCluster: ExpressionSpecification = ['!', ['has', 'point_count']];

/** The page's root text size in px in a window `width` px wide, before the operator's text
 * scale: app.css's `clamp(13px, 0.4vw + 8px, 22px)`. */
export function baseTextPx(width: number): number {
  return Math.min(22, Math.max(13, 0.004 * width + 8));
}

/** How much larger than on a laptop the map's symbols, badges and names are drawn: they grow with
 * the page's text, by the operator's text scale and by the window (1 up to 1,250 px wide, 1.2 at
 * 1,920, 1.7 on a 4K wall screen). In steps of 0.05, so resizing a window does not lay the map
 * out again for every pixel. */
export function mapSymbolScale(textScale: number, windowWidth: number): number {
  return Math.round(((textScale * baseTextPx(windowWidth)) / 13) * 20) / 20;
}

/** Symbol size by zoom, times the map's symbol scale (mapSymbolScale). */
export function iconSize(scale: number): ExpressionSpecification {
  return ['interpolate', ['linear'], ['zoom'], 3, 0.7 * scale, 10, 0.9 * scale, 15, 1.1 * scale];
}

export function liveLayers(scale: number): Array<SymbolLayerSpecification | CircleLayerSpecification | LineLayerSpecification> {
  return [
    {
      id: TRAIL_LAYER,
      type: 'line',
      source: TRAIL_SOURCE,
      layout: { 'line-join': 'round', 'line-cap': 'round' },
      paint: {
        // Coloured by speed where the fix has one: blue standing, green, amber, red from 90 km/h.
        'line-color': [
          'case',
          ['==', ['typeof', ['get', 'kmh']], 'number'],
          ['interpolate', ['linear'], ['get', 'kmh'], 0, '#60a5fa', 20, '#22c55e', 50, '#eab308', 90, '#ef4444'],
          colors.trail,
        ],
        'line-width': 3,
        'line-opacity': 0.85,
      },
    },
    {
      id: INCIDENT_LAYER,
      type: 'circle',
      source: INCIDENT_SOURCE,
      paint: {
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 3, 10, 14, 22],
        'circle-color': 'rgba(239,68,68,0.12)',
        'circle-stroke-width': ['match', ['get', 'state'], 'new', 3.5, 2],
        'circle-stroke-color': ['match', ['get', 'severity'], 'critical', '#ef4444', 'high', '#f97316', 'medium', '#f59e0b', '#94a3b8'],
      },
    },
    {
      id: CLUSTER_LAYER,
      type: 'symbol',
      source: DEVICE_SOURCE,
      filter: ['has', 'point_count'],
      layout: {
        'icon-image': ['concat', 'cluster:', ['get', 'point_count_abbreviated'], ':', ['case', ['>', ['get', 'alarm'], 0], '1', '0']],
        'icon-allow-overlap': true,
        'icon-size': scale,
      },
    },
    {
      id: HEADING_LAYER,
      type: 'symbol',
      source: DEVICE_SOURCE,
      filter: ['all', notCluster, ['>=', ['get', 'heading'], 0]],
      layout: {
        'icon-image': 'arrow',
        'icon-rotate': ['get', 'heading'],
        'icon-rotation-alignment': 'map',
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
        'icon-size': iconSize(scale),
      },
    },
    {
      id: DEVICE_LAYER,
      type: 'symbol',
      source: DEVICE_SOURCE,
      filter: notCluster,
      layout: {
        'icon-image': ['concat', 'dev:', ['get', 'kind'], ':', ['get', 'state'], ':', ['case', ['get', 'simulated'], '1', '0']],
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
        'icon-size': iconSize(scale),
        // Higher keys are drawn last, on top: alarms over everything.
        'symbol-sort-key': ['match', ['get', 'state'], 'alarm', 5, 'moving', 4, 'stopped', 3, 'stale', 2, 1],
      },
    },
    {
      id: LABEL_LAYER,
      type: 'symbol',
      source: DEVICE_SOURCE,
      filter: notCluster,
      minzoom: LABEL_MIN_ZOOM,
      layout: {
        'icon-image': ['concat', 'label:', ['get', 'label']],
        'icon-anchor': 'top',
        'icon-offset': [0, 15],
        'icon-size': scale,
        'icon-padding': 1,
      },
    },
  ];
}

/**
 * Whether a map error means the online style cannot be used, and the bundled basemap should
 * show instead: one before the first load (the style, its sprite, glyphs or a source's
 * TileJSON failing), unless it is a single tile's (a 5xx, a network blip). MapLibre counts a
 * failed tile as done and loads the map all the same; taken for the style failing, it threw a
 * working online style away for the whole session. Later errors leave the map as it is. (Glyphs
 * that fail do not come here: MapLibre draws them itself and only warns.)
 */
export function errorDefeatsStyle(error: { tile?: unknown }, mapLoaded: boolean): boolean {
  return !mapLoaded && error.tile === undefined;
}

/** Whether the online style's tiles failed as a whole by the map's first load: some failed and
 * none loaded (a tile server down, a style cached while offline). One that shows some tiles is
 * kept; a style with no tiles of its own (a background only) is too. */
export function tilesDefeatStyle(tiles: { loaded: number; failed: number }): boolean {
  return tiles.failed > 0 && tiles.loaded === 0;
}
