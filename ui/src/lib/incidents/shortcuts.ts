// The incident list's keyboard shortcuts, read from a key press anywhere in the window: which
// action a key asks for, or none when the key belongs to what has the focus.

export type Shortcut = 'next' | 'previous' | 'acknowledge' | 'assign-to-me' | 'resolve';

/** What a key press carries, as far as the shortcuts read it (a KeyboardEvent is one). */
export interface KeyPress {
  key: string;
  target: EventTarget | null;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
}

interface Focusable {
  tagName?: string;
  isContentEditable?: boolean;
  closest?: (selector: string) => unknown;
}

/** Text is being typed, or a list box worked, where the key lands. */
function typing(target: Focusable | null): boolean {
  return !!target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT' || !!target.isContentEditable);
}

/** The map has the focus: its arrow keys pan it (MapLibre's keyboard handler) and must not
 * also move the incident selection under the operator's next `a`. */
function onMap(target: Focusable | null): boolean {
  return !!target?.closest?.('.maplibregl-map');
}

export function shortcutFor(e: KeyPress): Shortcut | null {
  const target = e.target as Focusable | null;
  if (typing(target) || e.ctrlKey || e.metaKey || e.altKey) return null;
  switch (e.key) {
    case 'j':
      return 'next';
    case 'k':
      return 'previous';
    case 'ArrowDown':
      return onMap(target) ? null : 'next';
    case 'ArrowUp':
      return onMap(target) ? null : 'previous';
    case 'a':
      return 'acknowledge';
    case 'm':
      return 'assign-to-me';
    case 'r':
      return 'resolve';
    default:
      return null;
  }
}
