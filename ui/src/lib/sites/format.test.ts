import { describe, expect, it } from 'vitest';
import { isoDay, jobShare, pct, perSecond } from './format';

describe('sites formatting', () => {
  it('shows shares, rates and job progress', () => {
    expect(pct(null)).toBe('–');
    expect(pct(0.934)).toBe('93 %');
    expect(perSecond(0)).toBe('–');
    expect(perSecond(4.25)).toBe('4.3/s');
    expect(perSecond(95.2)).toBe('95/s');
    expect(jobShare(50, 10, 120)).toBe(0.5);
    expect(jobShare(0, 0, 0)).toBe(0);
    expect(jobShare(130, 0, 120)).toBe(1);
  });

  it('gives local calendar days', () => {
    const noon = new Date(2026, 10, 23, 12, 0, 0).getTime();
    expect(isoDay(0, noon)).toBe('2026-11-23');
    expect(isoDay(-1, noon)).toBe('2026-11-22');
  });
});
