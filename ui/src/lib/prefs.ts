// What the console remembers between runs on this workstation (localStorage): theme, text
// size, panel widths, the side panel's tab, the selected device, filters and the map view. Anything unreadable or of
// the wrong shape falls back to the default field by field, so a damaged entry never stops the
// console from starting.
import { DEFAULT_DEVICE_FILTER, type DeviceFilter } from './devices/filter';
import { DEFAULT_INCIDENT_FILTER, validIncidentFilter, type IncidentFilter } from './incidents/store';

export interface MapView {
  center: [number, number]; // [lon, lat]
  zoom: number;
}

export interface Prefs {
  theme: 'dark' | 'light';
  /** Root text scale: 1 on a laptop, up to 2 on a wall screen. */
  textScale: number;
  /** Width of the side panel in em of the root text, so that it grows with the text: on a
   * wall screen (text up to 22 px, and the text scale) as on a laptop (13 px). */
  sideWidthEm: number;
  selectedDevice: string | null;
  follow: boolean;
  deviceFilter: DeviceFilter;
  incidentFilter: IncidentFilter;
  mapView: MapView | null;
  /** The side panel's tab: the incident list or the device list. */
  tab: 'incidents' | 'devices';
}

/** The side panel's narrowest and widest, em (the window caps it at 60% of its width too). */
export const SIDE_WIDTH_EM = { min: 18, max: 64 } as const;

export function clampSideWidth(em: number): number {
  return Math.min(SIDE_WIDTH_EM.max, Math.max(SIDE_WIDTH_EM.min, em));
}

/** The side panel's width after `key` on its focused resize handle (a step of 1 em; Home and
 * End go to the ends), or null for a key that does not resize. */
export function keyResize(em: number, key: string): number | null {
  switch (key) {
    case 'ArrowLeft':
      return clampSideWidth(em - 1);
    case 'ArrowRight':
      return clampSideWidth(em + 1);
    case 'Home':
      return SIDE_WIDTH_EM.min;
    case 'End':
      return SIDE_WIDTH_EM.max;
    default:
      return null;
  }
}

export const DEFAULT_PREFS: Prefs = {
  theme: 'dark',
  textScale: 1,
  sideWidthEm: 28,
  selectedDevice: null,
  follow: false,
  deviceFilter: DEFAULT_DEVICE_FILTER,
  incidentFilter: DEFAULT_INCIDENT_FILTER,
  mapView: null,
  tab: 'incidents',
};

const KEY = 'watchfloor.prefs.v1';

function pick<T extends object>(defaults: T, raw: unknown): T {
  if (typeof raw !== 'object' || raw === null) return { ...defaults };
  const out = { ...defaults };
  for (const k of Object.keys(defaults) as Array<keyof T>) {
    const v = (raw as Record<string, unknown>)[k as string];
    const d = defaults[k];
    if (v === undefined) continue;
    if (d !== null && typeof d === 'object' && !Array.isArray(d)) out[k] = pick(d as object, v) as T[keyof T];
    else if (d === null || typeof v === typeof d) out[k] = v as T[keyof T];
  }
  return out;
}

function validMapView(v: unknown): MapView | null {
  const m = v as MapView | null;
  const ok =
    m !== null &&
    Array.isArray(m?.center) &&
    m.center.length === 2 &&
    m.center.every((n) => Number.isFinite(n)) &&
    Math.abs(m.center[1]) <= 85 &&
    Number.isFinite(m.zoom);
  return ok ? { center: [m.center[0], m.center[1]], zoom: m.zoom } : null;
}

/** `pxPerEm`: the root text size now, to convert a side panel width saved in px by an earlier
 * version into em (the same width on the same screen). */
export function parsePrefs(text: string | null, pxPerEm = 14): Prefs {
  let raw: unknown = null;
  try {
    raw = text ? JSON.parse(text) : null;
  } catch {
    raw = null;
  }
  const p = pick(DEFAULT_PREFS, raw);
  p.theme = p.theme === 'light' ? 'light' : 'dark';
  p.textScale = Math.min(2, Math.max(0.8, Number(p.textScale) || 1));
  const legacyPx = Number((raw as { sideWidth?: unknown } | null)?.sideWidth);
  if ((raw as Partial<Prefs> | null)?.sideWidthEm === undefined && legacyPx > 0 && pxPerEm > 0) p.sideWidthEm = legacyPx / pxPerEm;
  p.sideWidthEm = clampSideWidth(Number(p.sideWidthEm) || DEFAULT_PREFS.sideWidthEm);
  p.selectedDevice = typeof p.selectedDevice === 'string' ? p.selectedDevice : null;
  p.mapView = validMapView((raw as Partial<Prefs> | null)?.mapView ?? null);
  p.incidentFilter = validIncidentFilter(p.incidentFilter);
  p.tab = p.tab === 'devices' ? 'devices' : 'incidents';
  return p;
}

export function loadPrefs(storage: Pick<Storage, 'getItem'> = localStorage, pxPerEm = 14): Prefs {
  try {
    return parsePrefs(storage.getItem(KEY), pxPerEm);
  } catch {
    return parsePrefs(null);
  }
}

export function savePrefs(p: Prefs, storage: Pick<Storage, 'setItem'> = localStorage): void {
  try {
    storage.setItem(KEY, JSON.stringify(p));
  } catch {
    // Storage full or disabled: the console works, it just forgets on restart.
  }
}
