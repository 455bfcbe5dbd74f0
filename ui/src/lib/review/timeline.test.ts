import { describe, expect, it } from 'vitest';
import { advance, clock, duration, fromLocalInput, landing, toLocalInput, zoneLabel } from './timeline';

describe('review timeline', () => {
  it('plays at the chosen speed and stops at the end', () => {
    expect(advance(1000, 16, 60, 1_000_000)).toBe(1000 + 960);
    expect(advance(999_000, 1000, 1000, 1_000_000)).toBe(1_000_000);
    expect(advance(5, -3, 10, 100)).toBe(5);
  });

  it('names the zone the times are in, with its offset at that instant', () => {
    const winter = Date.UTC(2026, 0, 15, 12);
    const summer = Date.UTC(2026, 6, 15, 12);
    expect(zoneLabel(winter, 'Europe/Amsterdam')).toBe('UTC+01:00 Europe/Amsterdam');
    expect(zoneLabel(summer, 'Europe/Amsterdam')).toBe('UTC+02:00 Europe/Amsterdam');
    expect(zoneLabel(winter, 'America/New_York')).toBe('UTC-05:00 America/New_York');
    expect(zoneLabel(winter, 'UTC')).toBe('UTC');
    expect(zoneLabel(winter, 'Europe/London')).toBe('UTC+00:00 Europe/London');
  });

  it('round-trips local input values to the second', () => {
    const t = new Date(2026, 10, 23, 2, 14, 5).getTime();
    expect(toLocalInput(t)).toBe('2026-11-23T02:14:05');
    expect(fromLocalInput(toLocalInput(t))).toBe(t);
    expect(fromLocalInput('')).toBeNull();
    expect(fromLocalInput('not a time')).toBeNull();
  });

  it('says durations in words a dispatcher reads at a glance', () => {
    expect(duration(12_400)).toBe('12 s');
    expect(duration(250_000)).toBe('4 min 10 s');
    expect(duration(7_500_000)).toBe('2 h 05 min');
  });

  it('steps only within the range, and names a moment outside it', () => {
    expect(landing(500, 100, 900, 'none')).toEqual({ at: 500 });
    expect(landing(100, 100, 900, 'none')).toEqual({ at: 100 });
    expect(landing(null, 100, 900, 'nothing happens after this instant')).toEqual({ error: 'nothing happens after this instant' });
    expect(landing(950, 100, 900, 'none')).toEqual({ error: `that happens at ${clock(950)}, outside the range: widen the range to go there` });
    expect('error' in landing(50, 100, 900, 'none')).toBe(true);
  });
});
