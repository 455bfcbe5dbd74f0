import { describe, expect, it } from 'vitest';
import { averageCommitMs, rates } from './rates';
import { fakeMetrics } from '../backend/fake';

describe('health rates', () => {
  it('are per second over the time between snapshots', () => {
    const a = fakeMetrics(10, 100, 1000);
    const b = { ...fakeMetrics(12, 100, 1000), messages_face: 10, records_quarantine: 4 };
    const r = rates(a, b)!;
    expect(r.messages).toBeCloseTo((200 + 10) / 2);
    expect(r.committed).toBeCloseTo(100);
    expect(r.quarantined).toBeCloseTo(2);
  });

  it('are unknown when no time passed or counters went backwards (a restart)', () => {
    const a = fakeMetrics(10, 100, 1000);
    expect(rates(a, a)).toBeNull();
    expect(rates(a, fakeMetrics(11, 1, 1000))).toBeNull();
  });

  it('average the commit time over batches', () => {
    expect(averageCommitMs({ ...fakeMetrics(1, 1, 1000), writer_batches: 0 })).toBeNull();
    expect(averageCommitMs({ ...fakeMetrics(1, 1, 1000), writer_batches: 4, writer_commit_seconds_total: 0.02 })).toBeCloseTo(5);
  });
});
