// The Employees panel's list, kept current from what the backend sends: the whole directory, or
// the rows that changed since the version the panel holds (sync_employees).
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
