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

/** How far a job got, as the bar draws it: the share done (green, from the left) and the
 * share failed (red, right after it), each 0..1 and together at most 1. A finished job with
 * nobody to send (`total` 0) is a full bar. */
export function jobShares(done: number, failed: number, total: number, finished: boolean): { done: number; failed: number } {
  if (total <= 0) return { done: finished ? 1 : 0, failed: 0 };
  const d = Math.min(1, done / total);
  return { done: d, failed: Math.min(1 - d, failed / total) };
}

/** Whether a terminal is online: as this console's sync heard it, else (no sync here, or
 * not heard by it yet) as the console's live state has it (`live`: the terminal's device,
 * `face:{id}`), else unknown. What an earlier run stored is not now ("last seen" beneath says
 * when that was). */
export function terminalOnline(
  row: { online: boolean | null; no_answer: boolean },
  live: { online: boolean; stale: boolean } | undefined,
): boolean | null {
  if (row.online !== null) return row.online;
  if (row.no_answer || !live || live.stale) return null;
  return live.online;
}

/** {@link terminalOnline} in words, saying where an answer came from when it is not the
 * sync's, and when the terminal beats but does not answer the sync. */
export function onlineWords(
  row: { online: boolean | null; no_answer: boolean },
  live: { online: boolean; stale: boolean } | undefined,
): string {
  if (row.no_answer) return row.online ? 'online, not answering' : 'not answering';
  const online = terminalOnline(row, live);
  if (online !== null) return row.online === null ? `${online ? 'online' : 'offline'} (live)` : online ? 'online' : 'offline';
  return live?.online && live.stale ? 'silent (live)' : 'not heard yet';
}

/** Today as YYYY-MM-DD, optionally `days` away: the calendar day in `zone` (an IANA name,
 * the terminals' zone), else this workstation's. */
export function isoDay(days = 0, now = Date.now(), zone?: string): string {
  const d = new Date(now + days * 86_400_000);
  if (zone) {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(d);
    const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
    return `${part('year')}-${part('month')}-${part('day')}`;
  }
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${d.getFullYear()}-${m}-${day}`;
}

/** The calendar day of instant `ms` in `zone` (the terminals' zone; else this workstation's),
 * written as the workstation's locale writes dates. */
export function validityDay(ms: number, zone?: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: zone, dateStyle: 'medium' }).format(ms);
  } catch {
    return new Date(ms).toLocaleDateString(); // a zone this browser does not know
  }
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
