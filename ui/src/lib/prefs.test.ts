import { describe, expect, it } from 'vitest';
import { DEFAULT_PREFS, keyResize, loadPrefs, parsePrefs, savePrefs, SIDE_WIDTH_EM } from './prefs';

describe('prefs', () => {
  it('round-trip through storage', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const p = { ...DEFAULT_PREFS, theme: 'light' as const, selectedDevice: 'v7', tab: 'devices' as const, mapView: { center: [4.4, 51.9] as [number, number], zoom: 12 } };
    p.deviceFilter = { ...p.deviceFilter, kind: 'bodycam', sort: 'last_seen' };
    savePrefs(p, storage);
    expect(loadPrefs(storage)).toEqual(p);
  });

  it('keep the side panel in em, converting a width saved in px by an earlier version', () => {
    expect(parsePrefs(JSON.stringify({ sideWidth: 420 }), 14).sideWidthEm).toBe(30);
    expect(parsePrefs(JSON.stringify({ sideWidth: 420, sideWidthEm: 20 }), 14).sideWidthEm).toBe(20);
    expect(parsePrefs(JSON.stringify({ sideWidthEm: 500 })).sideWidthEm).toBe(64);
    expect(parsePrefs(JSON.stringify({ sideWidth: -3 })).sideWidthEm).toBe(DEFAULT_PREFS.sideWidthEm);
  });

  it('fall back field by field on damaged or hostile input', () => {
    expect(parsePrefs('not json')).toEqual(DEFAULT_PREFS);
    const p = parsePrefs(JSON.stringify({ theme: 'neon', textScale: 40, sideWidthEm: 'wide', selectedDevice: 5, mapView: { center: [0, 200], zoom: 3 }, deviceFilter: { kind: 'vehicle', text: 7 } }));
    expect(p.theme).toBe('dark');
    expect(p.textScale).toBe(2);
    expect(p.sideWidthEm).toBe(DEFAULT_PREFS.sideWidthEm);
    expect(p.selectedDevice).toBeNull();
    expect(p.mapView).toBeNull();
    expect(p.deviceFilter).toEqual({ ...DEFAULT_PREFS.deviceFilter, kind: 'vehicle' });
    // An unknown incident state or severity would hide every incident: each falls back alone.
    const q = parsePrefs(JSON.stringify({ incidentFilter: { state: 'archived', minSeverity: 'high', text: 'van' } }));
    expect(q.incidentFilter).toEqual({ state: 'open', minSeverity: 'high', text: 'van' });
    expect(parsePrefs(JSON.stringify({ incidentFilter: { state: 'mine', minSeverity: 'urgent' } })).incidentFilter).toEqual({ state: 'mine', minSeverity: 'info', text: '' });
    expect(parsePrefs(JSON.stringify({ tab: 'sites' })).tab).toBe('incidents');
  });
});

describe('the side panel resized from the keyboard', () => {
  it('steps 1 em with the arrows, jumps with Home and End, and stays within bounds', () => {
    expect(keyResize(28, 'ArrowRight')).toBe(29);
    expect(keyResize(28, 'ArrowLeft')).toBe(27);
    expect(keyResize(SIDE_WIDTH_EM.max, 'ArrowRight')).toBe(SIDE_WIDTH_EM.max);
    expect(keyResize(SIDE_WIDTH_EM.min, 'ArrowLeft')).toBe(SIDE_WIDTH_EM.min);
    expect(keyResize(28, 'Home')).toBe(SIDE_WIDTH_EM.min);
    expect(keyResize(28, 'End')).toBe(SIDE_WIDTH_EM.max);
    expect(keyResize(28, 'a')).toBeNull();
  });
});
