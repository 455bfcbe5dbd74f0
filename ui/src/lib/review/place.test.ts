import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../testing/memory-storage';
import { loadPlace, savePlace } from './place';

describe('the reviewer\'s place across a reload', () => {
  it('comes back for the same file, kept within its span', () => {
    const s = new MemoryStorage();
    savePlace(s, { path: '/h.sqlite', from: 100, to: 900, at: 450, device: 'van-7' });
    expect(loadPlace(s, '/h.sqlite', 0, 1000)).toEqual({ path: '/h.sqlite', from: 100, to: 900, at: 450, device: 'van-7' });
    // The file is shorter than the place (a copy): clamped into it.
    expect(loadPlace(s, '/h.sqlite', 200, 400)).toEqual({ path: '/h.sqlite', from: 200, to: 400, at: 400, device: 'van-7' });
  });

  it('is nothing for another file, none saved, or a damaged one', () => {
    const s = new MemoryStorage();
    expect(loadPlace(s, '/h.sqlite', 0, 1000)).toBeNull();
    savePlace(s, { path: '/other.sqlite', from: 1, to: 2, at: 1, device: null });
    expect(loadPlace(s, '/h.sqlite', 0, 1000)).toBeNull();
    s.setItem('watchfloor.review.place.v1', '{"path":"/h.sqlite","from":"x","to":2,"at":1}');
    expect(loadPlace(s, '/h.sqlite', 0, 1000)).toBeNull();
    s.setItem('watchfloor.review.place.v1', '{not json');
    expect(loadPlace(s, '/h.sqlite', 0, 1000)).toBeNull();
  });
});
