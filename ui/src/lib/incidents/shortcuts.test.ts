import { describe, expect, it } from 'vitest';
import { shortcutFor, TypingGuard, type KeyPress } from './shortcuts';

const press = (key: string, target: object | null = null, mods: Partial<KeyPress> = {}): KeyPress => ({
  key,
  target: target as EventTarget | null,
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  ...mods,
});
/** An element inside one matching `inside` (a selector), as `closest` finds it in a list. */
const within = (tagName: string, inside: string) => ({
  tagName,
  closest: (sel: string) => (sel.split(',').some((s) => s.trim() === inside) ? {} : null),
});
const mapCanvas = within('CANVAS', '.maplibregl-map');
const panel = within('ASIDE', '[data-own-arrows]');
const listRow = { tagName: 'DIV', closest: () => null };

describe('incident shortcuts', () => {
  it('map the keys to actions', () => {
    expect(['j', 'ArrowDown', 'k', 'ArrowUp', 'a', 'm', 'r', 'x'].map((k) => shortcutFor(press(k, listRow)))).toEqual([
      'next',
      'next',
      'previous',
      'previous',
      'acknowledge',
      'assign-to-me',
      'resolve',
      null,
    ]);
  });

  it('leave the arrow keys to a focused map, which pans with them', () => {
    expect(shortcutFor(press('ArrowDown', mapCanvas))).toBeNull();
    expect(shortcutFor(press('ArrowUp', mapCanvas))).toBeNull();
    // Nor those of a floating panel (the quarantine list, health), which scroll it.
    expect(shortcutFor(press('ArrowDown', panel))).toBeNull();
    // Letters mean nothing to the map: they still act.
    expect(shortcutFor(press('j', mapCanvas))).toBe('next');
    expect(shortcutFor(press('a', mapCanvas))).toBe('acknowledge');
  });

  it('leave keys to text fields, list boxes and modified presses', () => {
    expect(shortcutFor(press('a', { tagName: 'INPUT' }))).toBeNull();
    expect(shortcutFor(press('a', { tagName: 'TEXTAREA' }))).toBeNull();
    expect(shortcutFor(press('a', { tagName: 'SELECT' }))).toBeNull();
    expect(shortcutFor(press('a', { tagName: 'DIV', isContentEditable: true }))).toBeNull();
    expect(shortcutFor(press('r', listRow, { ctrlKey: true }))).toBeNull();
  });
});

describe('TypingGuard', () => {
  it('keeps the shortcuts off after the field being typed into is removed, until the next deliberate move', () => {
    const guard = new TypingGuard();
    const field = { tagName: 'INPUT', isConnected: true };
    expect(guard.blocks()).toBe(false);
    guard.focusIn(field);
    // Its form is taken away (the incident was resolved elsewhere): the focus falls to the page.
    field.isConnected = false;
    expect(guard.blocks()).toBe(true);
    expect(guard.blocks()).toBe(true);
    guard.chose(); // a click
    expect(guard.blocks()).toBe(false);
    guard.focusIn(field);
    guard.focusIn({ tagName: 'BUTTON', isConnected: true }); // Tab to a button
    expect(guard.blocks()).toBe(false);
  });

  it('does not block once the focus is put on the panel after the operator sent the form', () => {
    const guard = new TypingGuard();
    const field = { tagName: 'INPUT', isConnected: true };
    guard.focusIn(field);
    field.isConnected = false; // Enter in the resolution note: resolved, the form goes
    guard.focusIn({ tagName: 'SECTION', isConnected: true }); // the panel takes the focus
    expect(guard.blocks()).toBe(false);
  });

  it('does not block while the field stays, nor after the focus was on something not typed into', () => {
    const guard = new TypingGuard();
    guard.focusIn({ tagName: 'INPUT', isConnected: true });
    expect(guard.blocks()).toBe(false);
    const row = { tagName: 'DIV', isConnected: true };
    guard.focusIn(row);
    row.isConnected = false;
    expect(guard.blocks()).toBe(false);
  });
});
