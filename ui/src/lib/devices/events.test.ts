import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventView } from '../backend';
import { RecentEvents } from './events';

function event(id: string): EventView {
  return { event_id: id, ts_ms: 0, event_type: 'panic', severity: 'high', message: null };
}

describe('RecentEvents', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reads once per device however often the same device is shown, then on the interval', async () => {
    const read = vi.fn(async (id: string) => [event(id)]);
    const shown: EventView[][] = [];
    const events = new RecentEvents(read, (rows) => shown.push(rows), () => {}, () => {}, 10_000);
    for (let i = 0; i < 50; i++) events.show('van-1'); // fifty batches bringing the selected device
    await vi.advanceTimersByTimeAsync(9_999);
    expect(read).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(read).toHaveBeenCalledTimes(2);
    expect(shown.map((r) => r[0].event_id)).toEqual(['van-1', 'van-1']);
    events.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(read).toHaveBeenCalledTimes(2);
  });

  it("drops a reply for a device no longer shown, so A's events never land under B", async () => {
    const replies = new Map<string, (rows: EventView[]) => void>();
    const read = (id: string) => new Promise<EventView[]>((resolve) => replies.set(id, resolve));
    const shown: string[] = [];
    const events = new RecentEvents(read, (rows) => shown.push(rows[0].event_id), () => {});
    events.show('a');
    events.show('b');
    replies.get('b')!([event('b')]);
    replies.get('a')!([event('a')]); // A's slow answer arrives last
    await vi.advanceTimersByTimeAsync(0);
    expect(shown).toEqual(['b']);
    events.stop();
  });

  it('reports a failed read for the device shown, and not for one left', async () => {
    let fail: (e: unknown) => void = () => {};
    const read = (id: string) => (id === 'a' ? new Promise<EventView[]>((_, reject) => (fail = reject)) : Promise.reject({ message: 'history locked' }));
    const errors: string[] = [];
    const events = new RecentEvents(read, () => {}, (m) => errors.push(m));
    events.show('a');
    events.show('b');
    fail({ message: 'late failure for a' });
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual(['history locked']);
    events.stop();
  });

  it('announces each new device before reading it, and not a device shown again', async () => {
    const log: string[] = [];
    const read = async (id: string) => (log.push(`read ${id}`), [event(id)]);
    const events = new RecentEvents(read, (rows) => log.push(`rows ${rows[0].event_id}`), () => {}, () => log.push('switch'));
    events.show('a');
    events.show('a');
    await vi.advanceTimersByTimeAsync(0);
    events.show('b');
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['switch', 'read a', 'rows a', 'switch', 'read b', 'rows b']);
    events.stop();
  });
});
