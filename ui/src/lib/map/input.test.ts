import { describe, expect, it } from 'vitest';
import { zoomsOnly } from './input';

describe('zoomsOnly', () => {
  it('tells zooming the map from panning it away', () => {
    expect(zoomsOnly({ type: 'wheel' })).toBe(true);
    expect(zoomsOnly({ type: 'dblclick' })).toBe(true);
    expect(zoomsOnly({ type: 'click' })).toBe(true); // the zoom buttons
    expect(zoomsOnly({ type: 'keydown', key: '+' })).toBe(true);
    expect(zoomsOnly({ type: 'keydown', key: '-' })).toBe(true);
    expect(zoomsOnly({ type: 'keydown', key: 'ArrowLeft' })).toBe(false);
    expect(zoomsOnly({ type: 'mousedown' })).toBe(false);
    expect(zoomsOnly({ type: 'touchstart' })).toBe(false);
  });
});
