// What a user's input to the map did, as far as following a device cares.

/** Keys MapLibre's keyboard handler zooms with (around the centre); its arrows pan. */
const ZOOM_KEYS = new Set(['+', '=', '-', '_']);

/** Whether the input that started a move of the map only zooms it, keeping its centre or
 * coming back to it (the wheel, a double-click, the zoom buttons, the + and - keys), rather
 * than panning it away (a drag, the arrow keys, a touch). */
export function zoomsOnly(input: { type: string; key?: string }): boolean {
  switch (input.type) {
    case 'wheel':
    case 'dblclick':
    case 'click':
      return true;
    case 'keydown':
      return ZOOM_KEYS.has(input.key ?? '');
    default:
      return false;
  }
}
