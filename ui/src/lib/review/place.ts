// Where the reviewer was in the file, kept in the window's sessionStorage: a page that replaces
// the window's previous one (reloaded after its web process crashed or hung: the watchdog in
// src-tauri/desktop/watchdog.rs) opens at the same instant, range and device instead of the
// file's first second. A new review window has none.

/** The reviewer's place in one file. */
export interface ReviewPlace {
  path: string;
  from: number;
  to: number;
  at: number;
  device: string | null;
}

const KEY = 'watchfloor.review.place.v1';

/** Saves `place`. Best effort: a storage that refuses only costs the restore. */
export function savePlace(storage: Storage, place: ReviewPlace): void {
  try {
    storage.setItem(KEY, JSON.stringify(place));
  } catch {
    // nothing to restore then
  }
}

/** The place saved for the file at `path`, kept within the file's span `[first, last]`; null
 * for another file, none saved, or one that does not read as a place. */
export function loadPlace(storage: Storage, path: string, first: number, last: number): ReviewPlace | null {
  let p: unknown;
  try {
    p = JSON.parse(storage.getItem(KEY) ?? 'null');
  } catch {
    return null;
  }
  if (typeof p !== 'object' || p === null) return null;
  const { path: saved, from, to, at, device } = p as Record<string, unknown>;
  if (saved !== path || ![from, to, at].every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
  const clamp = (n: number, lo: number, hi: number) => Math.min(Math.max(n, lo), hi);
  const f = clamp(from as number, first, last);
  const t = clamp(to as number, f, last);
  return { path, from: f, to: t, at: clamp(at as number, f, t), device: typeof device === 'string' ? device : null };
}
