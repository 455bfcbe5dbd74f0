import { describe, expect, it } from 'vitest';
import type { EmployeeRow } from '../backend';
import { applyEmployeeList, departure, shows } from './employees';

const row = (id: string, on = 0): EmployeeRow => ({
  employee_id: id,
  name: `Name ${id}`,
  person_type: 'allow',
  valid_from_ms: null,
  valid_to_ms: null,
  terminals: [],
  removed: false,
  on_terminals: on,
  failures: 0,
});

describe('applyEmployeeList', () => {
  const held = [row('E1'), row('E3'), row('E5')];

  it('takes a complete list as it is', () => {
    const all = [row('E9')];
    expect(applyEmployeeList(held, { version: 7, complete: true, rows: all })).toBe(all);
  });

  it('keeps the very list when nothing changed, so nothing re-renders', () => {
    expect(applyEmployeeList(held, { version: 7, complete: false, rows: [] })).toBe(held);
  });

  it('replaces changed rows in place and inserts new ones in id order', () => {
    const next = applyEmployeeList(held, { version: 8, complete: false, rows: [row('E3', 2), row('E4'), row('E0')] });
    expect(next.map((e) => e.employee_id)).toEqual(['E0', 'E1', 'E3', 'E4', 'E5']);
    expect(next.find((e) => e.employee_id === 'E3')?.on_terminals).toBe(2);
    expect(held[1].on_terminals).toBe(0); // the list held is not modified
  });
});

describe('employee filters', () => {
  const now = 1_000_000;
  it('tells leavers still on a terminal from those gone from every one, expired ones too', () => {
    const current = row('E1', 2);
    const removedOn = { ...row('E2', 1), removed: true };
    const removedGone = { ...row('E3', 0), removed: true };
    const expiredOn = { ...row('E4', 3), valid_to_ms: now };
    const notYet = row('E5', 0);
    expect([current, removedOn, removedGone, expiredOn, notYet].map((e) => departure(e, now))).toEqual([null, 'leaving', 'left', 'leaving', null]);
    const listed = (show: Parameters<typeof shows>[1]) => [current, removedOn, removedGone, expiredOn, notYet].filter((e) => shows(e, show, now)).map((e) => e.employee_id);
    expect(listed('leaving')).toEqual(['E2', 'E4']);
    expect(listed('left')).toEqual(['E3']);
    // "On no terminal yet" is for employees still to be placed, not for those who left.
    expect(listed('not_on_terminals')).toEqual(['E5']);
    expect(listed('all')).toHaveLength(5);
  });
});
