import { describe, expect, it } from 'vitest';
import { Drafts, TypedSince } from './drafts';

describe('incident drafts', () => {
  it('keeps what was typed per incident until it is sent, and nothing empty', () => {
    const d = new Drafts();
    expect(d.get('i1')).toEqual({ note: '', resolution: '', assignee: '' });
    d.set('i1', { note: '', resolution: 'Patrol found the door sh', assignee: '' });
    d.set('i2', { note: 'called', resolution: '', assignee: 'ann' });
    expect(d.get('i1').resolution).toBe('Patrol found the door sh');
    expect(d.get('i2')).toEqual({ note: 'called', resolution: '', assignee: 'ann' });
    // A copy: editing what was handed out does not change the draft.
    d.get('i1').resolution = 'x';
    expect(d.get('i1').resolution).toBe('Patrol found the door sh');
    // Sent: the field is emptied, and an all-empty draft is forgotten.
    d.set('i1', { note: '', resolution: '', assignee: '' });
    expect(d.size).toBe(1);
  });

  it('hands a refused send back to the panel open on the incident, or to the next one', () => {
    const d = new Drafts();
    const told: string[] = [];
    // The panel that sent was closed; another is open on the same incident.
    const stop = d.onRefused((id) => told.push(id));
    d.refused('i1', { note: 'called the driver', resolution: '', assignee: '' }, 'incident i1 is resolved');
    expect(told).toEqual(['i1']);
    expect(d.get('i1').note).toBe('called the driver');
    expect(d.takeRefusal('i1')).toBe('incident i1 is resolved');
    expect(d.takeRefusal('i1'), 'shown once').toBeNull();
    // With no panel open, the reason waits for the next one.
    stop();
    d.refused('i2', { note: '', resolution: 'towed', assignee: '' }, 'version limit');
    expect(told).toEqual(['i1']);
    expect(d.takeRefusal('i2')).toBe('version limit');
  });
});

describe('TypedSince', () => {
  it('keeps the incident as it was when the operator began typing, until the text is sent', () => {
    const since = new TypedSince<string>();
    let shown = 'high';
    since.typed('resolution', 'f', () => shown);
    shown = 'critical'; // a repeat escalates it while they type
    since.typed('resolution', 'false alarm', () => shown);
    expect(since.take('resolution')).toBe('high');
    expect(since.take('resolution')).toBeUndefined(); // sent: the next text starts afresh
    since.typed('resolution', 'x', () => shown);
    since.typed('resolution', '', () => shown); // emptied
    since.typed('resolution', 'y', () => 'medium');
    expect(since.take('resolution')).toBe('medium');
    // The operator's own action (acknowledge) moves a kept sight on to its result...
    since.typed('resolution', 'false alarm', () => 'new');
    since.acted('new', 'acknowledged');
    expect(since.take('resolution')).toBe('acknowledged');
    since.acted('new', 'assigned'); // nothing typed: nothing kept
    expect(since.take('resolution')).toBeUndefined();
    // ...but not a sight the incident had already left when the action was sent (it escalated
    // while the resolution was typed): sending the text is still refused.
    since.typed('resolution', 'false alarm', () => 'high');
    since.acted('critical', 'critical, acknowledged');
    expect(since.take('resolution')).toBe('high');
    since.typed('assignee', 'bo', () => shown);
    since.clear();
    expect(since.take('assignee')).toBeUndefined();
  });
});
