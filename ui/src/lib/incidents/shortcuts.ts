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

/** The map has the focus (its arrow keys pan it: MapLibre's keyboard handler), or a floating
 * panel does (they scroll it): the arrows must not also move the incident selection under the
 * operator's next `a`. */
function ownsArrows(target: Focusable | null): boolean {
  return !!target?.closest?.('.maplibregl-map, [data-own-arrows]');
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
      return ownsArrows(target) ? null : 'next';
    case 'ArrowUp':
      return ownsArrows(target) ? null : 'previous';
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

/** A text field that had the focus and is gone: typing went on, but into nothing. */
export interface Removable extends Focusable {
  isConnected?: boolean;
}

/** Keeps the shortcuts off while the operator is still typing into a text field that was taken
 * away under them (another console resolved the incident whose resolution note they were
 * writing, and the form went): the focus falls to the page, and the next letters of the note
 * would otherwise select, acknowledge, assign and resolve other incidents. The shortcuts come
 * back with the operator's next deliberate move: a pointer press, or the focus put somewhere
 * (the incident panel takes it when the operator's own Enter in the field took the form away).
 * (Read from `focusin`, not `focusout`: a field removed with the focus fires no event that
 * browsers agree on; the focus moving anywhere else fires `focusin`.) */
export class TypingGuard {
  private field: Removable | null = null;

  /** A `focusin` in the window: the text field that has the focus now, if it is one. */
  focusIn(target: EventTarget | Removable | null): void {
    const t = target as Removable | null;
    this.field = typing(t) ? t : null;
  }

  /** A `pointerdown` in the window: the operator chose. */
  chose(): void {
    this.field = null;
  }

  /** Whether a key press must not act: the text field that had the focus was removed from the
   * page, and the focus has been nowhere since. */
  blocks(): boolean {
    return this.field !== null && this.field.isConnected === false;
  }
}
