// What a user's input to the map did, as far as following a device cares.

/** Keys MapLibre's keyboard handler pans the map with (its + and - zoom around the centre). */
const PAN_KEYS = new Set(['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight']);

/** Whether the input that started a move of the map pans it away by key: the arrow keys. A
 * drag (mouse or touch) says so with MapLibre's `dragstart`; every other input zooms (the wheel,
 * a double-click or double-tap, a pinch, the zoom buttons, + and -) and keeps the centre, or
 * comes back to it. */
export function pansByKey(input: { type: string; key?: string }): boolean {
  return input.type === 'keydown' && PAN_KEYS.has(input.key ?? '');
}
