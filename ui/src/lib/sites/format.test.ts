import { describe, expect, it } from 'vitest';
import { followToday, isoDay, jobShares, onlineWords, pct, perSecond, terminalOnline, validityDay } from './format';

describe('sites formatting', () => {
  it('shows shares, rates and job progress', () => {
    expect(pct(null)).toBe('–');
    expect(pct(0.934)).toBe('93 %');
    expect(perSecond(0)).toBe('–');
    expect(perSecond(4.25)).toBe('4.3/s');
    expect(perSecond(95.2)).toBe('95/s');
    expect(jobShares(50, 10, 120, false)).toEqual({ done: 50 / 120, failed: 10 / 120 });
    expect(jobShares(0, 0, 0, false)).toEqual({ done: 0, failed: 0 });
    expect(jobShares(0, 0, 0, true)).toEqual({ done: 1, failed: 0 }); // a finished job of nobody
    const heard = (online: boolean | null, no_answer = false) => ({ online, no_answer });
    expect([true, false, null].map((o) => onlineWords(heard(o), undefined))).toEqual(['online', 'offline', 'not heard yet']);
    // The sync's word first; live state only when the sync has none; silence is said.
    const live = (online: boolean, stale = false) => ({ online, stale });
    expect(onlineWords(heard(false), live(true))).toBe('offline');
    expect(onlineWords(heard(null), live(true))).toBe('online (live)');
    expect(onlineWords(heard(null), live(false))).toBe('offline (live)');
    expect(onlineWords(heard(null), live(true, true))).toBe('silent (live)');
    expect(terminalOnline(heard(null), live(true, true))).toBe(null);
    expect(onlineWords(heard(null, true), live(true))).toBe('not answering');
    // It beats but does not answer the sync's requests.
    expect(onlineWords(heard(true, true), undefined)).toBe('online, not answering');
    expect(jobShares(130, 0, 120, false)).toEqual({ done: 1, failed: 0 });
    expect(jobShares(100, 30, 120, false).failed).toBeCloseTo(20 / 120);
  });

  it('gives local calendar days', () => {
    const noon = new Date(2026, 10, 23, 12, 0, 0).getTime();
    expect(isoDay(0, noon)).toBe('2026-11-23');
    expect(isoDay(-1, noon)).toBe('2026-11-22');
    // The terminals' zone decides, not the workstation's: 22:30 UTC is the next day in Dubai.
    const lateUtc = Date.UTC(2026, 10, 23, 22, 30);
    expect(isoDay(0, lateUtc, 'UTC')).toBe('2026-11-23');
    expect(isoDay(0, lateUtc, 'Asia/Dubai')).toBe('2026-11-24');
    expect(isoDay(-1, lateUtc, 'Asia/Dubai')).toBe('2026-11-23');
  });

  it("shows a validity bound as the day in the terminals' zone", () => {
    // valid_to 2026-03-31 imported for New York: the next midnight there, 04:00 UTC on 1 April;
    // its last valid instant is 31 March there, whatever the workstation's zone.
    const firstInvalid = Date.UTC(2026, 3, 1, 4, 0);
    const shown = validityDay(firstInvalid - 1, 'America/New_York');
    expect(shown).toBe(new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(2026, 2, 31)));
    expect(validityDay(firstInvalid - 1, 'Asia/Dubai')).toBe(
      new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(2026, 3, 1)),
    );
    expect(validityDay(0, 'Not/AZone')).toBe(new Date(0).toLocaleDateString());
  });

  it('moves a range showing today on to the next day at midnight, and leaves a chosen one', () => {
    const today = { from: '2026-11-23', to: '2026-11-23' };
    expect(followToday(today, '2026-11-23', '2026-11-23')).toBe(today);
    expect(followToday(today, '2026-11-23', '2026-11-24')).toEqual({ from: '2026-11-24', to: '2026-11-24' });
    const week = { from: '2026-11-17', to: '2026-11-23' };
    expect(followToday(week, '2026-11-23', '2026-11-24')).toBe(week);
  });
});
