import { describe, expect, it } from 'vitest';
import type { Incident } from '../backend';
import { MemoryStorage } from '../testing/memory-storage';
import { loadHeld, saveHeld } from './handover';
import { alertText, IncidentStore, PendingAlerts, sameMembers, seenOf, stepAfterLeaving, stepSelection, type IncidentFilter } from './store';
import { createFakeBackend, fakeIncidents } from '../backend/fake';

function incident(over: Partial<Incident>): Incident {
  return {
    id: 'a',
    source: 'v1',
    kind: 'panic_button',
    severity: 'critical',
    title: 'Van 1: panic button',
    state: 'new',
    assignee: null,
    resolution: null,
    count: 1,
    first_seen_ms: 1000,
    last_seen_ms: 1000,
    lat: null,
    lon: null,
    version: 1,
    updated_ms: 1000,
    updated_by: 'system',
    last_change: { action: 'opened', detail: null },
    ...over,
  };
}

const open: IncidentFilter = { state: 'open', minSeverity: 'info', text: '' };

describe('IncidentStore', () => {
  it('lists open incidents by severity, then the oldest first, resolved last', () => {
    const s = new IncidentStore();
    s.apply(
      [
        incident({ id: 'low-old', severity: 'low', first_seen_ms: 1 }),
        incident({ id: 'crit-new', severity: 'critical', first_seen_ms: 50 }),
        incident({ id: 'crit-old', severity: 'critical', first_seen_ms: 10 }),
        incident({ id: 'done', severity: 'critical', first_seen_ms: 0, state: 'resolved' }),
      ],
      true,
      'high',
    );
    expect(s.list(open, 'me').map((i) => i.id)).toEqual(['crit-old', 'crit-new', 'low-old']);
    expect(s.list({ ...open, state: 'all' }, 'me').map((i) => i.id)).toEqual(['crit-old', 'crit-new', 'low-old', 'done']);
    expect(s.list({ ...open, minSeverity: 'high' }, 'me').map((i) => i.id)).toEqual(['crit-old', 'crit-new']);
    expect(s.list({ ...open, text: 'LOW' }, 'me')).toHaveLength(0);
    expect(s.list({ ...open, text: 'van 1' }, 'me')).toHaveLength(3);
    expect(s.unacknowledged()).toBe(3);
  });

  it('filters what is assigned to me', () => {
    const s = new IncidentStore();
    s.apply([incident({ id: 'x', state: 'assigned', assignee: 'dana' }), incident({ id: 'y', state: 'assigned', assignee: 'eli' })], true, 'high');
    expect(s.list({ ...open, state: 'mine' }, 'dana').map((i) => i.id)).toEqual(['x']);
  });

  it('alerts for new and reopened incidents at the threshold, never for a snapshot or an older version', () => {
    const s = new IncidentStore();
    expect(s.apply([incident({ id: 'old' })], true, 'high')).toEqual([]);
    const fresh = incident({ id: 'b' });
    expect(s.apply([fresh, incident({ id: 'c', severity: 'medium' })], false, 'high')).toEqual([fresh]);
    // A repeat (still new) does not alert again; acknowledging and reopening does.
    expect(s.apply([{ ...fresh, version: 2, count: 2 }], false, 'high')).toEqual([]);
    s.apply([{ ...fresh, version: 3, state: 'resolved' }], false, 'high');
    const reopened = { ...fresh, version: 4, state: 'new' as const };
    expect(s.apply([reopened], false, 'high')).toEqual([reopened]);
    // Acknowledged, then new again with a repeat: reopened and counted again while the page
    // was behind, or an acknowledgement undone for a round trip; either way it alerts.
    s.apply([{ ...fresh, version: 5, state: 'acknowledged' }], false, 'high');
    const newAgain = { ...fresh, version: 6, state: 'new' as const, last_change: { action: 'repeated', detail: null } };
    expect(s.apply([newAgain], false, 'high')).toEqual([newAgain]);
    // A late, older version is ignored.
    s.apply([{ ...fresh, version: 2, state: 'acknowledged' }], false, 'high');
    expect(s.byId.get('b')?.version).toBe(6);
  });

  it('alerts again when a repeat escalates an open incident past the threshold, whatever its state', () => {
    const s = new IncidentStore();
    const high = incident({ id: 'e', severity: 'high', state: 'acknowledged', version: 2 });
    s.apply([high], true, 'critical');
    const escalated = { ...high, severity: 'critical' as const, version: 3, count: 2, last_change: { action: 'escalated', detail: 'high -> critical' } };
    expect(s.apply([escalated], false, 'critical')).toEqual([escalated]);
    expect(alertText([escalated]).body).toBe('panic button at v1 (escalated: high -> critical)');
    // A repeat at the same severity does not; nor does an escalation below the threshold.
    expect(s.apply([{ ...escalated, version: 4, count: 3 }], false, 'critical')).toEqual([]);
    const low = incident({ id: 'l', severity: 'low' });
    s.apply([low], false, 'critical');
    expect(s.apply([{ ...low, severity: 'medium', version: 2 }], false, 'critical')).toEqual([]);
  });

  it('says an incident escalated when the batch brings the repeat after the escalation', () => {
    const s = new IncidentStore();
    const high = incident({ id: 'm', severity: 'high', state: 'acknowledged', version: 2 });
    s.apply([high], true, 'critical');
    // Escalated (v3) and repeated (v4) between two batches: the page gets v4, a "repeated".
    const repeated = { ...high, severity: 'critical' as const, version: 4, count: 3, last_change: { action: 'repeated', detail: null } };
    const [alert] = s.apply([repeated], false, 'critical');
    expect(alertText([alert]).body).toBe('panic button at v1 (escalated: high -> critical)');
    expect(s.byId.get('m')?.last_change.action).toBe('repeated');
  });

  it('forgets incidents resolved more than a day ago, never open ones', () => {
    const s = new IncidentStore();
    const day = 24 * 3600 * 1000;
    s.apply([incident({ id: 'open', updated_ms: 0 }), incident({ id: 'done', state: 'resolved', updated_ms: 0 })], true, 'high');
    expect(s.prune(day - 1)).toBe(false);
    expect(s.prune(day)).toBe(true);
    expect([...s.byId.keys()]).toEqual(['open']);
    expect(s.prune(10 * day)).toBe(false);
  });

  it('marks sources with a severe open incident as alarmed', () => {
    const s = new IncidentStore();
    s.apply([incident({ source: 'v1' }), incident({ id: 'z', source: 'v2', severity: 'low' }), incident({ id: 'r', source: 'v3', state: 'resolved' })], true, 'high');
    expect([...s.alarmedSources()]).toEqual(['v1']);
  });

  it('summarises one or several alerts in one notification', () => {
    expect(alertText([incident({})]).title).toBe('CRITICAL: Van 1: panic button');
    const many = alertText([incident({ severity: 'high', title: 'h' }), incident({ id: 'q', title: 'worst' })]);
    expect(many).toEqual({ title: '2 new incidents', body: 'Most severe: worst' });
  });
});

describe('a snapshot after the window fell behind', () => {
  it('alerts for what opened, reopened or escalated while it was behind, and for nothing else', () => {
    const s = new IncidentStore();
    const held = incident({ id: 'held', severity: 'high', state: 'acknowledged', version: 2 });
    const done = incident({ id: 'done', state: 'resolved', version: 3 });
    expect(s.apply([held, done, incident({ id: 'quiet' })], true, 'high')).toEqual([]);
    const opened = incident({ id: 'opened' });
    const escalated = { ...held, severity: 'critical' as const, version: 3 };
    const reopened = { ...done, state: 'new' as const, version: 4 };
    const low = incident({ id: 'low', severity: 'low' });
    const alerts = s.apply([escalated, reopened, opened, low, incident({ id: 'quiet' })], true, 'high');
    expect(alerts.map((i) => i.id).sort()).toEqual(['done', 'held', 'opened']);
    expect(s.byId.size).toBe(5);
  });
});

describe('a page that replaces the window\'s previous one', () => {
  it('alerts in its first snapshot for what opened, reopened or escalated since the old page, and for nothing else', () => {
    const old = new IncidentStore();
    const acked = incident({ id: 'acked', severity: 'high', state: 'acknowledged', version: 2 });
    const done = incident({ id: 'done', state: 'resolved', version: 3 });
    old.apply([acked, done, incident({ id: 'quiet' })], true, 'high');
    const storage = new MemoryStorage();
    saveHeld(storage, old.held());

    // The web process died; the reloaded page inherits what the old one held.
    const page = new IncidentStore();
    page.inherit(loadHeld(storage)!);
    const opened = incident({ id: 'opened' });
    const escalated = { ...acked, severity: 'critical' as const, version: 3 };
    const reopened = { ...done, state: 'new' as const, version: 4 };
    const low = incident({ id: 'low', severity: 'low' });
    const alerts = page.apply([escalated, reopened, opened, low, incident({ id: 'quiet' })], true, 'high');
    expect(alerts.map((i) => i.id).sort()).toEqual(['done', 'opened', 'acked'].sort());
    // What it inherited is spent: a later snapshot is compared with what the page holds.
    expect(page.apply([escalated, reopened, opened, low, incident({ id: 'quiet' })], true, 'high')).toEqual([]);
  });

  it('alerts nothing in a new window, where nothing was handed over', () => {
    const storage = new MemoryStorage();
    expect(loadHeld(storage)).toBeNull();
    const page = new IncidentStore();
    expect(page.apply([incident({ id: 'x' })], true, 'high')).toEqual([]);
  });

  it('hands over open incidents only, and reads back only rows that make sense', () => {
    const s = new IncidentStore();
    s.apply([incident({ id: 'o', version: 5, state: 'assigned', severity: 'medium' }), incident({ id: 'r', state: 'resolved' })], true, 'high');
    const storage = new MemoryStorage();
    saveHeld(storage, s.held());
    expect(loadHeld(storage)).toEqual(new Map([['o', { version: 5, state: 'assigned', severity: 'medium' }]]));
    storage.setItem('watchfloor.incidents.held.v1', JSON.stringify([['a', 1, 'new', 'critical'], ['b', 1, 'lost', 'high'], ['c', '1', 'new', 'high'], 'junk']));
    expect([...loadHeld(storage)!.keys()]).toEqual(['a']);
    storage.setItem('watchfloor.incidents.held.v1', '{not json');
    expect(loadHeld(storage)).toBeNull();
  });

  it('removes an earlier handover when the storage refuses a new one, rather than keep it out of date', () => {
    const storage = new MemoryStorage();
    const s = new IncidentStore();
    s.apply([incident({ id: 'first' })], true, 'high');
    saveHeld(storage, s.held());
    const full = Object.assign(Object.create(storage) as MemoryStorage, {
      setItem: () => {
        throw new DOMException('quota exceeded', 'QuotaExceededError');
      },
    });
    s.apply([incident({ id: 'second' })], false, 'high');
    saveHeld(full, s.held());
    expect(loadHeld(storage)).toBeNull();
  });
});

describe('stepSelection', () => {
  it('moves from the selected row, or from where it was when it left the list', () => {
    expect(stepSelection(2, 2, 1, 5)).toBe(3);
    expect(stepSelection(0, 0, -1, 5)).toBe(0);
    expect(stepSelection(4, 4, 1, 5)).toBe(4);
    // Row 3 was acknowledged under "Unacknowledged" and left: j takes the row now at 3, k the one before.
    expect(stepSelection(-1, 3, 1, 5)).toBe(3);
    expect(stepSelection(-1, 3, -1, 5)).toBe(2);
    // It was the last row: j stays on the new last.
    expect(stepSelection(-1, 5, 1, 5)).toBe(4);
    expect(stepSelection(-1, null, 1, 5)).toBe(0);
    expect(stepSelection(-1, 3, 1, 0)).toBeNull();
  });
});

describe('stepping on after the selection left', () => {
  it('goes to the row that was next to it, wherever the list put it since', () => {
    // [A, B, C, X, Y] with X selected; X is acknowledged and leaves while a new, more severe
    // N sorts on top: [N, A, B, C, Y]. j goes to Y (the position, 3, was C: skipped before).
    const neighbours = { before: 'C', after: 'Y' };
    const ids = ['N', 'A', 'B', 'C', 'Y'];
    expect(stepAfterLeaving(ids, neighbours, 1)).toBe(4);
    expect(stepAfterLeaving(ids, neighbours, -1)).toBe(3);
    // The neighbour left too: by position.
    expect(stepAfterLeaving(['N', 'A'], neighbours, 1)).toBeNull();
    expect(stepAfterLeaving(ids, { before: null, after: null }, 1)).toBeNull();
    expect(stepAfterLeaving(ids, null, 1)).toBeNull();
  });
});

describe('PendingAlerts', () => {
  it('holds each incident once, in its newest version', () => {
    const p = new PendingAlerts();
    const opened = incident({ id: 'x', severity: 'high' });
    const escalated = { ...opened, severity: 'critical' as const, version: 2 };
    p.add([opened]);
    p.add([escalated, incident({ id: 'y' })]);
    p.add([opened]);
    expect(p.size).toBe(2);
    const taken = p.take();
    expect(taken.find((i) => i.id === 'x')).toEqual(escalated);
    expect(alertText(taken).title).toBe('2 new incidents');
    expect(p.size).toBe(0);
  });

  it('drops what was handled while it waited, and alerts the rest as they stand', () => {
    const p = new PendingAlerts();
    const acked = incident({ id: 'a' });
    const resolved = incident({ id: 'r', severity: 'high' });
    const escalated = incident({ id: 'e', state: 'acknowledged', severity: 'critical', version: 3 });
    const waiting = incident({ id: 'w', severity: 'high' });
    p.add([acked, resolved, escalated, waiting]);
    const now = new Map([
      ['a', { ...acked, state: 'acknowledged' as const, version: 2 }],
      ['r', { ...resolved, state: 'resolved' as const, version: 2 }],
      ['e', escalated], // an escalation of an acknowledged incident still alerts
      ['w', { ...waiting, severity: 'critical' as const, version: 2 }],
    ]);
    const taken = p.take((id) => now.get(id));
    expect(taken.map((i) => [i.id, i.severity])).toEqual([
      ['e', 'critical'],
      ['w', 'critical'],
    ]);
    // A note added to an escalated incident while the alert waited: still told as escalated.
    const up = incident({ id: 'u', severity: 'critical', version: 2, last_change: { ...escalated.last_change, action: 'escalated', detail: 'high -> critical' } });
    p.add([up]);
    const noted = { ...up, version: 3, last_change: { ...up.last_change, action: 'noted' as const, detail: 'on my way' } };
    const [told] = p.take(() => noted);
    expect([told.version, told.last_change.action]).toEqual([3, 'escalated']);
    expect(alertText([told]).body).toContain('(escalated: high -> critical)');
  });
});

describe('acting on the incident as it was seen', () => {
  it('sends what the operator was shown, and the (fake) backend refuses a changed incident', async () => {
    const backend = createFakeBackend();
    const held = fakeIncidents(Date.now())[0];
    const seen = seenOf(held);
    expect(seen).toEqual({ state: held.state, severity: held.severity, assignee: held.assignee });
    // Someone else assigns it...
    await backend.actOnIncident(held.id, { action: 'assign', to: 'dana' });
    // ...so an "assign to me" from the screen before is refused, saying who has it.
    await expect(backend.actOnIncident(held.id, { action: 'assign', to: 'preview' }, seen)).rejects.toMatchObject({
      code: 'incident_changed',
      message: expect.stringContaining('assigned to dana'),
    });
    // A note is taken whatever changed.
    await expect(backend.actOnIncident(held.id, { action: 'note', text: 'seen' }, seen)).resolves.toMatchObject({ id: held.id });
  });
});

describe('alarmed devices', () => {
  it('are the same set when the same devices are in alarm, whatever the order', () => {
    expect(sameMembers(new Set(['a', 'b']), new Set(['b', 'a']))).toBe(true);
    expect(sameMembers(new Set(['a', 'b']), new Set(['a']))).toBe(false);
    expect(sameMembers(new Set(['a', 'b']), new Set(['a', 'c']))).toBe(false);
    expect(sameMembers(new Set(), new Set())).toBe(true);
  });
});
