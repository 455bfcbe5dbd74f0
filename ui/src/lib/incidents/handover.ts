// What a page hands the next page of the same window: the incidents it held, in the window's
// sessionStorage. A page is replaced when the console reloads it (its web process crashed or
// hung: src-tauri/desktop/watchdog.rs) or the operator does; the new page compares its first
// snapshot with what the old one held, so an incident that opened while the screen was down
// still alerts. sessionStorage lives as long as the window, not the web process, and a new
// console starts with none (so its first snapshot alerts nothing, as before).
import type { IncidentState } from '../backend/generated/IncidentState';
import { SEVERITIES, type HeldIncident } from './store';

const KEY = 'watchfloor.incidents.held.v1';
const STATES: readonly IncidentState[] = ['new', 'acknowledged', 'assigned', 'resolved'];

let warned = false;

/** Saves `held` for the window's next page. Best effort: when the storage refuses (full), what
 * an earlier save left is removed rather than kept out of date (it would make the next page
 * alert again what was alerted since); the next page then alerts nothing for its first
 * snapshot. */
export function saveHeld(storage: Storage, held: ReadonlyMap<string, HeldIncident>): void {
  const rows: [string, number, IncidentState, HeldIncident['severity']][] = [];
  for (const [id, h] of held) rows.push([id, h.version, h.state, h.severity]);
  try {
    storage.setItem(KEY, JSON.stringify(rows));
  } catch (e) {
    try {
      storage.removeItem(KEY);
    } catch {
      // nothing more to do
    }
    if (!warned) console.warn('the incidents held could not be saved for a reload', e);
    warned = true;
  }
}

/** What the window's previous page saved, or null when there was none (a new window) or it is
 * unreadable. Rows that do not read as an incident are skipped. */
export function loadHeld(storage: Storage): Map<string, HeldIncident> | null {
  let rows: unknown;
  try {
    const raw = storage.getItem(KEY);
    if (raw === null) return null;
    rows = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!Array.isArray(rows)) return null;
  const held = new Map<string, HeldIncident>();
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== 4) continue;
    const [id, version, state, severity] = row as unknown[];
    if (
      typeof id === 'string' &&
      typeof version === 'number' &&
      STATES.includes(state as IncidentState) &&
      SEVERITIES.includes(severity as HeldIncident['severity'])
    ) {
      held.set(id, { version, state: state as IncidentState, severity: severity as HeldIncident['severity'] });
    }
  }
  return held;
}
