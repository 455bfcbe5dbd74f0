import { describe, expect, it } from 'vitest';
import { dueAgain, pollNewest } from './poll';

describe('pollNewest', () => {
  it('shows every answer newer than the one shown, and drops older ones that come late', async () => {
    const answers: ((v: number) => void)[] = [];
    let tick = (): void => {};
    const shown: number[] = [];
    const poll = pollNewest(
      () => new Promise<number>((resolve) => answers.push(resolve)),
      1000,
      (v) => shown.push(v),
      () => shown.push(-1),
      (t) => {
        tick = t;
        return () => (tick = () => {});
      },
    );
    tick();
    tick();
    // The third call answers first, then the first (late: dropped), then the second (dropped).
    answers[2](3);
    answers[0](1);
    answers[1](2);
    await Promise.resolve();
    await Promise.resolve();
    expect(shown).toEqual([3]);
    tick();
    answers[3](4);
    await Promise.resolve();
    expect(shown).toEqual([3, 4]);
    poll.stop();
    tick();
    expect(answers).toHaveLength(4);
  });
});

describe('dueAgain', () => {
  it('lets fast reads follow every tick and waits ten times as long as a slow one', () => {
    // A 4 ms read: due at the next tick, even one that comes a little early.
    expect(dueAgain(0, 4, 2_990)).toBe(true);
    // A 700 ms read: not before 7 s from its start (the ticks at 3 and 6 s pass).
    expect(dueAgain(0, 700, 6_000)).toBe(false);
    expect(dueAgain(0, 700, 7_000)).toBe(true);
  });
});
