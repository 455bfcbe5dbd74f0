import { describe, expect, it } from 'vitest';
import { LiveModel } from './model';
import { fakeFleet } from '../backend/fake';
import type { LiveBatch } from '../backend';

function batch(seq: number, full: boolean, devices = fakeFleet(3, [0, 0], 1000), removed: string[] = []): LiveBatch {
  return {
    seq,
    full,
    emitted_at_ms: 0,
    devices,
    removed,
    counts: { total: devices.length, online: devices.length, stale: 0 },
    connection: { state: 'connected', broker: 'mqtt://x:1', last_error: null, next_attempt_ms: null, connects: 1, probe_rtt_ms: 2.5, probe_ok_ms: 0, subscription_problem: null },
    quarantined: 0,
    history: { queued: 0, committed: 0, stalled_since_ms: null, last_error: null },
    push_latency: null,
    incidents: [],
    unacknowledged: 0,
  };
}

describe('LiveModel', () => {
  it('merges partial batches by device id', () => {
    const m = new LiveModel();
    m.apply(batch(0, true));
    const moved = { ...fakeFleet(1, [0, 0], 1000)[0], lat: 10 };
    expect(m.apply(batch(1, false, [moved]))).toBe(true);
    expect(m.devices.size).toBe(3);
    expect(m.devices.get(moved.id)?.lat).toBe(10);
  });

  it('ignores a batch older than the snapshot it raced', () => {
    const m = new LiveModel();
    m.apply(batch(5, true));
    const stale = { ...fakeFleet(1, [0, 0], 1000)[0], lat: -3 };
    expect(m.apply(batch(5, false, [stale]))).toBe(false);
    expect(m.devices.get(stale.id)?.lat).not.toBe(-3);
  });

  it('ignores changes that come before its first snapshot (the previous page\'s stream, after a reload)', () => {
    const m = new LiveModel();
    expect(m.apply(batch(40, false))).toBe(false);
    expect(m.devices.size).toBe(0);
    expect(m.apply(batch(41, true))).toBe(true);
    expect(m.apply(batch(42, false))).toBe(true);
  });

  it('replaces everything on a full batch', () => {
    const m = new LiveModel();
    m.apply(batch(0, true, fakeFleet(5, [0, 0], 0)));
    m.apply(batch(9, true, fakeFleet(2, [0, 0], 0)));
    expect(m.devices.size).toBe(2);
    expect(m.simulated).toBe(2);
  });

  it('keeps the simulated count as partial batches change it', () => {
    const m = new LiveModel();
    const fleet = fakeFleet(3, [0, 0], 0);
    m.apply(batch(0, true, fleet));
    expect(m.simulated).toBe(3);
    m.apply(batch(1, false, [{ ...fleet[0], simulated: false }]));
    expect(m.simulated).toBe(2);
    m.apply(batch(2, false, [{ ...fleet[0], id: 'real-1', simulated: false }, { ...fleet[1] }]));
    expect(m.simulated).toBe(2);
  });

  it('drops the devices the backend forgot, and their share of the simulated count', () => {
    const m = new LiveModel();
    const fleet = fakeFleet(3, [0, 0], 0);
    m.apply(batch(0, true, fleet));
    m.apply(batch(1, false, [], [fleet[1].id, 'never-held']));
    expect([...m.devices.keys()]).toEqual([fleet[0].id, fleet[2].id]);
    expect(m.simulated).toBe(2);
  });
});
