// Small formatting helpers shared by the employee-sync and attendance panels.

/** A share 0..1 as a whole percentage, or a dash. */
export function pct(share: number | null): string {
  return share === null ? '–' : `${Math.round(share * 100)} %`;
}

/** Persons per second, or a dash. */
export function perSecond(rate: number | null): string {
  if (rate === null || rate === 0) return '–';
  return rate >= 10 ? `${Math.round(rate)}/s` : `${rate.toFixed(1)}/s`;
}

/** How far a job got, 0..1 (failed persons count as processed). */
export function jobShare(done: number, failed: number, total: number): number {
  return total <= 0 ? 0 : Math.min(1, (done + failed) / total);
}

/** A terminal's presence as this console's sync heard it: `null` until it has heard anything
 * (what an earlier run stored is not now; "last seen" beneath says when that was). */
export function onlineWords(online: boolean | null): string {
  if (online === null) return 'not heard yet';
  return online ? 'online' : 'offline';
}

/** Today (local calendar day) as YYYY-MM-DD, optionally `days` away. */
export function isoDay(days = 0, now = Date.now()): string {
  const d = new Date(now + days * 86_400_000);
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${d.getFullYear()}-${m}-${day}`;
}

/** The day range a live view shows once the day it showed as "today" (`shownToday`) is over:
 * a range that was exactly that day moves on to `today` (the log left open overnight keeps
 * showing the new day's arrivals); a range the operator chose stays. */
export function followToday(range: { from: string; to: string }, shownToday: string, today: string): { from: string; to: string } {
  if (today === shownToday || range.from !== shownToday || range.to !== shownToday) return range;
  return { from: today, to: today };
}

/** An error from the backend, as a sentence. */
export function errorText(e: unknown): string {
  const err = e as { message?: string };
  return err?.message ?? String(e);
}
