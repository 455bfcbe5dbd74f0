import { describe, expect, it } from 'vitest';
import { pansByKey } from './input';

describe('pansByKey', () => {
  it('tells the arrow keys, which pan the map away, from every input that zooms', () => {
    expect(pansByKey({ type: 'keydown', key: 'ArrowLeft' })).toBe(true);
    expect(pansByKey({ type: 'keydown', key: 'ArrowDown' })).toBe(true);
    expect(pansByKey({ type: 'keydown', key: '+' })).toBe(false);
    expect(pansByKey({ type: 'keydown', key: '-' })).toBe(false);
    expect(pansByKey({ type: 'wheel' })).toBe(false);
    expect(pansByKey({ type: 'dblclick' })).toBe(false);
    expect(pansByKey({ type: 'click' })).toBe(false); // the zoom buttons
    expect(pansByKey({ type: 'touchstart' })).toBe(false); // a pinch (a touch drag fires dragstart)
  });
});
