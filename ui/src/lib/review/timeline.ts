// The review timeline's arithmetic: playback steps, the speeds offered, and the conversions
// between epoch ms and what the time inputs and labels show.

/** Playback speeds offered (times real time). */
export const SPEEDS = [1, 10, 60, 300, 1000] as const;

/** Where playback is after `elapsedMs` of wall time at `speed`, stopping at `to`. */
export function advance(at: number, elapsedMs: number, speed: number, to: number): number {
  return Math.min(to, at + Math.max(0, elapsedMs) * speed);
}

/** `2026-11-23 02:14:05` in the workstation's zone. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The workstation's zone at `ms`, as the times in this window are: `UTC+01:00 Europe/Amsterdam`.
 * A reviewer elsewhere than the site sees whose clock the scrubber's 09:14 is (attendance
 * records are on the terminals' own clocks, and reports in UTC). `zone` is for tests. */
export function zoneLabel(ms: number, zone?: string): string {
  const name = zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? '';
  const part = new Intl.DateTimeFormat('en-GB', { timeZone: name || undefined, timeZoneName: 'longOffset' })
    .formatToParts(new Date(ms))
    .find((p) => p.type === 'timeZoneName')?.value;
  // 'GMT+01:00'; at offset 0 'GMT' (WebKit) or 'GMT+00:00' (V8).
  const offset = !part || part === 'GMT' ? 'UTC+00:00' : part.replace('GMT', 'UTC');
  if (name === 'UTC' || name === 'Etc/UTC') return 'UTC';
  return name ? `${offset} ${name}` : offset;
}

/** The value of an `<input type="datetime-local">` for `ms` (local time, to the second). */
export function toLocalInput(ms: number): string {
  return clock(ms).replace(' ', 'T');
}

/** Epoch ms from an `<input type="datetime-local">` value, or null when it is empty or invalid. */
export function fromLocalInput(value: string): number | null {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t : null;
}

/** "2 h 05 min", "4 min 10 s", "12 s". */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * Where a step lands: `t` is the moment the backend found (the next or previous event, the
 * next incident), `none` what to say when there is none. A moment outside the range `[from,
 * to]` is not jumped to (the scrubber cannot show it): it is named, so the reviewer can widen
 * the range.
 */
export function landing(t: number | null, from: number, to: number, none: string): { at: number } | { error: string } {
  if (t === null) return { error: none };
  if (t < from || t > to) return { error: `that happens at ${clock(t)}, outside the range: widen the range to go there` };
  return { at: t };
}
