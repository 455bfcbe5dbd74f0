import { describe, expect, it } from 'vitest';
import { LatestRequest } from './latest';

/** A backend whose answers the test releases one by one. */
function manual() {
  const pending: { key: number; resolve: (v: string) => void; reject: (e: unknown) => void }[] = [];
  const run = (key: number) => new Promise<string>((resolve, reject) => pending.push({ key, resolve, reject }));
  return { pending, run };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('LatestRequest', () => {
  it('runs one request at a time, only the newest wish waiting, and hands on every answer in order', async () => {
    const backend = manual();
    const shown: [number, string][] = [];
    const errors: unknown[] = [];
    const latest = new LatestRequest(backend.run, (k, v) => shown.push([k, v]), (e) => errors.push(e));
    latest.ask(1);
    latest.ask(2);
    latest.ask(3); // 2 is dropped: only the newest waits
    expect(backend.pending.map((p) => p.key)).toEqual([1]);
    backend.pending[0].resolve('one');
    await settle();
    // 3 was waiting: 1's answer is shown meanwhile (playback asks at every frame, and a view
    // that waited for a reply nothing overtook never changed).
    expect(shown).toEqual([[1, 'one']]);
    expect(backend.pending.map((p) => p.key)).toEqual([1, 3]);
    backend.pending[1].resolve('three');
    await settle();
    expect(shown).toEqual([
      [1, 'one'],
      [3, 'three'],
    ]);
    latest.ask(4);
    backend.pending[2].reject(new Error('gone'));
    await settle();
    expect(errors).toHaveLength(1);
    latest.ask(5); // free again after an error
    expect(backend.pending.map((p) => p.key)).toEqual([1, 3, 4, 5]);
  });
});
