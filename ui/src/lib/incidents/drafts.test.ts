import { describe, expect, it } from 'vitest';
import { Drafts } from './drafts';

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
});
