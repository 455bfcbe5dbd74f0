// The Employees panel's list, kept current from what the backend sends: the whole directory, or
// the rows that changed since the version the panel holds (sync_employees); and which rows each
// of its filters shows.
import type { EmployeeList, EmployeeRow } from '../backend';

/** The list after `update`: replaced when complete, else its rows merged in by id (a changed
 * employee replaces its row, a new one is inserted in id order; employees are never deleted).
 * Returns `held` itself when nothing changed, so the panel does not re-render. */
export function applyEmployeeList(held: EmployeeRow[], update: EmployeeList): EmployeeRow[] {
  if (update.complete) return update.rows;
  if (update.rows.length === 0) return held;
  const at = new Map(held.map((e, i) => [e.employee_id, i]));
  const next = held.slice();
  const added: EmployeeRow[] = [];
  for (const row of update.rows) {
    const i = at.get(row.employee_id);
    if (i === undefined) added.push(row);
    else next[i] = row;
  }
  if (added.length === 0) return next;
  // Ids compared as the backend orders them (SQLite's binary order of UTF-8 bytes matches
  // code point order, which plain string comparison gives for ids without astral characters).
  return next.concat(added).sort((a, b) => (a.employee_id < b.employee_id ? -1 : a.employee_id > b.employee_id ? 1 : 0));
}

/** An employee who is gone from the directory (removed by an import, or past `valid_to`): still
 * on some terminal (`leaving`: the sync is removing them) or on none any more (`left`); null for
 * a current employee. */
export function departure(e: EmployeeRow, nowMs: number): 'leaving' | 'left' | null {
  const gone = e.removed || (e.valid_to_ms !== null && e.valid_to_ms <= nowMs);
  if (!gone) return null;
  return e.on_terminals > 0 ? 'leaving' : 'left';
}

export type EmployeeShow = 'all' | 'failed' | 'not_on_terminals' | 'block' | 'leaving' | 'left';

/** Whether the panel's filter `show` lists employee `e`. */
export function shows(e: EmployeeRow, show: EmployeeShow, nowMs: number): boolean {
  switch (show) {
    case 'failed':
      return e.failures > 0;
    case 'not_on_terminals':
      return e.on_terminals === 0 && departure(e, nowMs) === null;
    case 'block':
      return e.person_type === 'block';
    case 'leaving':
    case 'left':
      return departure(e, nowMs) === show;
    default:
      return true;
  }
}
