// Map symbols drawn on a canvas: the device symbol per kind and state and the heading arrow
// (all added when the map loads), cluster badges and text labels (drawn when MapLibre first
// asks for them, through its missing-image resolver). The app ships no glyph fonts (the offline basemap has no
// text), so labels are images too: only those on screen are ever drawn, and each once.
import { DISPLAY_STATES, type DisplayState } from '../devices/filter';

export const STATE_COLORS: Record<DisplayState, string> = {
  alarm: '#ef4444',
  offline: '#6b7280',
  stale: '#f59e0b',
  moving: '#22c55e',
  stopped: '#38bdf8',
};

/** The letter drawn inside a device's symbol, by kind. */
export const KIND_GLYPHS: Record<string, string> = {
  vehicle: 'V',
  sensor: 'S',
  bodycam: 'C',
  phone: 'P',
  terminal: 'T',
  other: '•',
};

const RATIO = 2; // drawn at twice the size for sharp edges on HiDPI and wall screens

export interface DrawnImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

function canvas(w: number, h: number): [CanvasRenderingContext2D, () => DrawnImage] {
  const c = document.createElement('canvas');
  c.width = w * RATIO;
  c.height = h * RATIO;
  const ctx = c.getContext('2d')!;
  ctx.scale(RATIO, RATIO);
  return [ctx, () => ({ width: c.width, height: c.height, data: ctx.getImageData(0, 0, c.width, c.height).data })];
}

/** `dev:{kind}:{state}:{sim}`: a filled disc in the state's colour with the kind's letter. */
export function deviceIcon(kind: string, state: DisplayState, simulated: boolean): DrawnImage {
  const size = 26;
  const [ctx, done] = canvas(size, size);
  const r = size / 2 - 2;
  ctx.beginPath();
  ctx.arc(size / 2, size / 2, r, 0, Math.PI * 2);
  ctx.fillStyle = STATE_COLORS[state];
  ctx.fill();
  ctx.lineWidth = simulated ? 3 : 2;
  ctx.strokeStyle = simulated ? '#a78bfa' : '#0b1220';
  if (simulated) ctx.setLineDash([3, 2]);
  ctx.stroke();
  ctx.fillStyle = state === 'offline' ? '#f3f4f6' : '#0b1220';
  ctx.font = 'bold 13px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(KIND_GLYPHS[kind] ?? KIND_GLYPHS.other, size / 2, size / 2 + 1);
  return done();
}

/** `arrow`: a wedge pointing north, placed ahead of the device symbol and rotated by heading. */
export function arrowIcon(): DrawnImage {
  const size = 44;
  const [ctx, done] = canvas(size, size);
  ctx.beginPath();
  ctx.moveTo(size / 2, 1);
  ctx.lineTo(size / 2 + 6, 10);
  ctx.lineTo(size / 2 - 6, 10);
  ctx.closePath();
  ctx.fillStyle = '#e5edf7';
  ctx.strokeStyle = '#0b1220';
  ctx.lineWidth = 1.5;
  ctx.fill();
  ctx.stroke();
  return done();
}

/** `label:{text}`: the text on a dark plate, readable over any basemap. */
export function labelIcon(text: string): DrawnImage {
  const shown = text.length > 40 ? `${text.slice(0, 39)}…` : text;
  const font = '600 13px system-ui, sans-serif';
  const measure = document.createElement('canvas').getContext('2d')!;
  measure.font = font;
  const w = Math.ceil(measure.measureText(shown).width) + 10;
  const h = 19;
  const [ctx, done] = canvas(w, h);
  ctx.fillStyle = 'rgba(11,18,32,0.82)';
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, 4);
  ctx.fill();
  ctx.fillStyle = '#f8fafc';
  ctx.font = font;
  ctx.textBaseline = 'middle';
  ctx.fillText(shown, 5, h / 2 + 1);
  return done();
}

/** `cluster:{count}:{alarm}`: a disc with the count; red when a device in it is in alarm. */
export function clusterIcon(count: string, alarm: boolean): DrawnImage {
  const size = count.length > 3 ? 46 : 38;
  const [ctx, done] = canvas(size, size);
  ctx.beginPath();
  ctx.arc(size / 2, size / 2, size / 2 - 2, 0, Math.PI * 2);
  ctx.fillStyle = alarm ? 'rgba(239,68,68,0.9)' : 'rgba(56,189,248,0.85)';
  ctx.fill();
  ctx.lineWidth = 2;
  ctx.strokeStyle = '#0b1220';
  ctx.stroke();
  ctx.fillStyle = '#0b1220';
  ctx.font = 'bold 13px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(count, size / 2, size / 2 + 1);
  return done();
}

/** Draws the image MapLibre asked for by id, or null for an id that is not ours. */
export function drawImage(id: string): DrawnImage | null {
  if (id === 'arrow') return arrowIcon();
  if (id.startsWith('label:')) return labelIcon(id.slice('label:'.length));
  const parts = id.split(':');
  if (parts[0] === 'dev' && parts.length === 4) return deviceIcon(parts[1], parts[2] as DisplayState, parts[3] === '1');
  if (parts[0] === 'cluster' && parts.length === 3) return clusterIcon(parts[1], parts[2] === '1');
  return null;
}

export const PIXEL_RATIO = RATIO;

/**
 * The images every map needs from the start: each device symbol (kind x state x simulated) and
 * the heading arrow. Supplying them from 'styleimagemissing' instead lost the race now and then:
 * a device that turned to alarm was drawn with its arrow and label but no symbol until its tile
 * was laid out again (the incidents GUI test failed 1 run in 4 on it).
 */
export function preloadedImageIds(): string[] {
  const ids = ['arrow'];
  for (const kind of Object.keys(KIND_GLYPHS)) {
    for (const state of DISPLAY_STATES) for (const sim of ['0', '1']) ids.push(`dev:${kind}:${state}:${sim}`);
  }
  return ids;
}

/** Most images drawn on demand (names, cluster badges) the map holds at once: a few times what
 * one view shows (names hide beyond 400 devices in view), about 40 MB at most. */
export const MAX_ON_DEMAND_IMAGES = 1_000;

/**
 * The images drawn on demand that the map holds, oldest first. Every name ever shown and every
 * badge count became an image kept for the life of the page (a night of panning over 10,000
 * devices, or a device renaming itself over and over, grew it by the hundreds of megabytes).
 * Past the cap the oldest are taken back: tiles already laid out keep their copy, and a tile
 * laid out again asks for a name it lacks, which is drawn again.
 */
export class OnDemandImages {
  #held = new Set<string>();

  constructor(private readonly cap = MAX_ON_DEMAND_IMAGES) {}

  /** Records `id` as given to the map; returns the ids to take back from it. */
  added(id: string): string[] {
    this.#held.delete(id);
    this.#held.add(id);
    const evicted: string[] = [];
    for (const oldest of this.#held) {
      if (this.#held.size <= this.cap) break;
      this.#held.delete(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }

  get size(): number {
    return this.#held.size;
  }
}

