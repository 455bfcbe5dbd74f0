import { describe, expect, it } from 'vitest';
import { followToday, isoDay, jobShare, onlineWords, pct, perSecond, terminalOnline } from './format';

describe('sites formatting', () => {
  it('shows shares, rates and job progress', () => {
    expect(pct(null)).toBe('–');
    expect(pct(0.934)).toBe('93 %');
    expect(perSecond(0)).toBe('–');
    expect(perSecond(4.25)).toBe('4.3/s');
    expect(perSecond(95.2)).toBe('95/s');
    expect(jobShare(50, 10, 120)).toBe(0.5);
    expect(jobShare(0, 0, 0)).toBe(0);
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
    expect(jobShare(130, 0, 120)).toBe(1);
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

  it('moves a range showing today on to the next day at midnight, and leaves a chosen one', () => {
    const today = { from: '2026-11-23', to: '2026-11-23' };
    expect(followToday(today, '2026-11-23', '2026-11-23')).toBe(today);
    expect(followToday(today, '2026-11-23', '2026-11-24')).toEqual({ from: '2026-11-24', to: '2026-11-24' });
    const week = { from: '2026-11-17', to: '2026-11-23' };
    expect(followToday(week, '2026-11-23', '2026-11-24')).toBe(week);
  });
});
