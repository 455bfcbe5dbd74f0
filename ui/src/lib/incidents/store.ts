// Incidents in the UI: the newest version of each, kept by id, listed in triage order, and the
// rule that decides which changes alert the dispatcher.
import type { Incident, SeenIncident } from '../backend';

export type Severity = Incident['severity'];

/** What the operator is shown of `i`, sent with an action on it (see `SeenIncident`). */
export function seenOf(i: Incident): SeenIncident {
  return { state: i.state, severity: i.severity, assignee: i.assignee };
}

export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** 0 is the most urgent. */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isOpen(i: Incident): boolean {
  return i.state !== 'resolved';
}

/** Open before resolved, then most severe, then the one waiting longest. */
export function compareTriage(a: Incident, b: Incident): number {
  return (
    Number(!isOpen(a)) - Number(!isOpen(b)) ||
    severityRank(a.severity) - severityRank(b.severity) ||
    a.first_seen_ms - b.first_seen_ms ||
    a.id.localeCompare(b.id)
  );
}

export type StateFilter = 'open' | 'new' | 'mine' | 'resolved' | 'all';
export const STATE_FILTERS: readonly StateFilter[] = ['open', 'new', 'mine', 'resolved', 'all'];

export interface IncidentFilter {
  state: StateFilter;
  /** Show this severity and worse. */
  minSeverity: Severity;
  /** Matched against title, source and kind, case-insensitively. */
  text: string;
}

export const DEFAULT_INCIDENT_FILTER: IncidentFilter = { state: 'open', minSeverity: 'info', text: '' };

/** `f` with any value this version does not know (a damaged or older saved filter) replaced by
 * the default's: an unknown state or severity would otherwise hide every incident. */
export function validIncidentFilter(f: IncidentFilter): IncidentFilter {
  return {
    state: STATE_FILTERS.includes(f.state) ? f.state : DEFAULT_INCIDENT_FILTER.state,
    minSeverity: SEVERITIES.includes(f.minSeverity) ? f.minSeverity : DEFAULT_INCIDENT_FILTER.minSeverity,
    text: typeof f.text === 'string' ? f.text : '',
  };
}

/** Resolved incidents stay listed this long after their last change, as in the backend's book
 * (`KEEP_RESOLVED_MS` in crates/core/src/incidents/book.rs), which then forgets them too. */
export const KEEP_RESOLVED_MS = 24 * 3600 * 1000;

/** What a page knows of an incident it held, enough to tell news from what it had seen. */
export type HeldIncident = Pick<Incident, 'version' | 'state' | 'severity'>;

export class IncidentStore {
  readonly byId = new Map<string, Incident>();
  /** Whether a snapshot has been applied: the first one is what was there before the window. */
  private primed = false;
  /** What the window's previous page held (see `inherit`), until the first snapshot. */
  private inherited: ReadonlyMap<string, HeldIncident> | null = null;

  /**
   * Takes over what the window's previous page held, when this page replaces one (its web
   * process crashed or hung and the console reloaded it, or the operator reloaded): the first
   * snapshot is then compared with it like any later one, so what opened or escalated while
   * the screen was down still alerts. Without it the first snapshot alerts nothing.
   */
  inherit(held: ReadonlyMap<string, HeldIncident>): void {
    if (!this.primed) this.inherited = held;
  }

  /** What the next page of this window should inherit: the open incidents (a resolved one that
   * reopens is news either way). */
  held(): Map<string, HeldIncident> {
    const out = new Map<string, HeldIncident>();
    for (const i of this.byId.values()) {
      if (isOpen(i)) out.set(i.id, { version: i.version, state: i.state, severity: i.severity });
    }
    return out;
  }

  /**
   * Applies the incidents of a batch (all of them when `full`) and returns those that should
   * alert now, at `alertAt` or worse: seen for the first time or reopened, as new; or open and
   * escalated (a repeat worse than before), whatever its state. The first full snapshot (the
   * window opening) alerts nothing: those incidents are not news. A later one (the window fell
   * behind and the backend sent everything instead of the batches it missed) is compared with
   * what was held, so what opened or escalated meanwhile still alerts; so is a first one after
   * `inherit`.
   */
  apply(incidents: readonly Incident[], full: boolean, alertAt: Severity): Incident[] {
    const before: ReadonlyMap<string, HeldIncident> = full ? (this.inherited ?? new Map(this.byId)) : this.byId;
    const quiet = full && !this.primed && this.inherited === null;
    if (full) {
      this.byId.clear();
      this.primed = true;
      this.inherited = null;
    }
    const alerts: Incident[] = [];
    for (const i of incidents) {
      const held = before.get(i.id);
      if (!full && held && held.version > i.version) continue;
      this.byId.set(i.id, i);
      // New to this page, or new again: reopened, also when its resolution and reopening (and
      // a repeat after) reach the page at once. (An acknowledgement undone for a round trip by
      // a version another console built without it alerts too: protocol.md, "a version built
      // on a loser". The page cannot tell it from a reopening followed by a repeat, and a
      // missed reopening is the worse mistake.)
      const becameNew = i.state === 'new' && (!held || held.state !== 'new');
      const escalated = held !== undefined && isOpen(i) && severityRank(i.severity) < severityRank(held.severity);
      if (!quiet && (becameNew || escalated) && severityRank(i.severity) <= severityRank(alertAt)) {
        // An escalation and a repeat after it in one batch reach the page as the repeat: the
        // alert still says it escalated, and from what.
        const said =
          escalated && !becameNew && i.last_change.action !== 'escalated'
            ? { ...i, last_change: { action: 'escalated', detail: `${held.severity} -> ${i.severity}` } }
            : i;
        alerts.push(said);
      }
    }
    return alerts;
  }

  /** Forgets incidents resolved more than KEEP_RESOLVED_MS before `nowMs`; returns whether any
   * went. (A console runs for days: its list would otherwise hold every incident since it
   * started, while a restarted one would not.) */
  prune(nowMs: number): boolean {
    let gone = false;
    for (const [id, i] of this.byId) {
      if (!isOpen(i) && nowMs - i.updated_ms >= KEEP_RESOLVED_MS) gone = this.byId.delete(id) || gone;
    }
    return gone;
  }

  /** The incidents passing `f`, in triage order. */
  list(f: IncidentFilter, operator: string): Incident[] {
    const text = f.text.trim().toLowerCase();
    const maxRank = severityRank(f.minSeverity);
    const out: Incident[] = [];
    for (const i of this.byId.values()) {
      if (severityRank(i.severity) > maxRank) continue;
      const keep =
        f.state === 'all' ||
        (f.state === 'open' && isOpen(i)) ||
        (f.state === 'new' && i.state === 'new') ||
        (f.state === 'resolved' && !isOpen(i)) ||
        (f.state === 'mine' && isOpen(i) && i.assignee === operator);
      if (!keep) continue;
      if (text && !`${i.title} ${i.source} ${i.kind}`.toLowerCase().includes(text)) continue;
      out.push(i);
    }
    return out.sort(compareTriage);
  }

  unacknowledged(): number {
    let n = 0;
    for (const i of this.byId.values()) if (i.state === 'new') n++;
    return n;
  }

  /** Devices with an open incident at `minSeverity` or worse: drawn "in alarm" on the map. */
  alarmedSources(minSeverity: Severity = 'high'): Set<string> {
    const out = new Set<string>();
    for (const i of this.byId.values()) {
      if (isOpen(i) && severityRank(i.severity) <= severityRank(minSeverity)) out.add(i.source);
    }
    return out;
  }
}

/** Whether two sets hold the same members. */
export function sameMembers<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * The row `j` (`delta` 1) or `k` (-1) moves to in a list of `length` rows. `index` is the
 * selected row's, -1 when it is not in the list (none selected, or it just left: acknowledged
 * under the Unacknowledged filter); `last` is where the selection last was, so that the row
 * that took its place, or the one before, comes next instead of the top.
 */
export function stepSelection(index: number, last: number | null, delta: 1 | -1, length: number): number | null {
  if (length === 0) return null;
  let next: number;
  if (index >= 0) next = index + delta;
  else if (last === null) next = 0;
  else next = delta > 0 ? last : last - 1;
  return Math.min(length - 1, Math.max(0, next));
}

/** The rows either side of the selection, remembered while it is in the list. */
export interface Neighbours {
  before: string | null;
  after: string | null;
}

/**
 * The row `j` (`delta` 1) or `k` (-1) moves to once the selection has left the list (it was
 * acknowledged under the Unacknowledged filter): the row that was after it (or before it),
 * wherever that row is now, since the list may have re-sorted in the same batch (a new, more
 * severe incident on top moved every row down one, and the position picked a row the
 * dispatcher had skipped). `null` when that row is gone too: go by position
 * ([`stepSelection`]).
 */
export function stepAfterLeaving(ids: readonly string[], neighbours: Neighbours | null, delta: 1 | -1): number | null {
  const id = delta > 0 ? neighbours?.after : neighbours?.before;
  const at = id ? ids.indexOf(id) : -1;
  return at >= 0 ? at : null;
}

/** Incidents waiting for the next notification, each once (its newest version): an incident
 * that opened and escalated within the throttle is one incident, not two. */
export class PendingAlerts {
  private readonly byId = new Map<string, Incident>();

  add(list: readonly Incident[]): void {
    for (const i of list) {
      const held = this.byId.get(i.id);
      if (!held || held.version <= i.version) this.byId.set(i.id, i);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /** The waiting incidents still worth an alert, as they stand now (`current`: the list's
   * newest version, undefined when it is gone), emptied. An alert waits up to 2 s behind the
   * last; meanwhile a new incident may have been acknowledged, or any resolved, and then
   * nobody needs the notification and the tone. */
  take(current: (id: string) => Incident | undefined = () => undefined): Incident[] {
    const out: Incident[] = [];
    for (const waiting of this.byId.values()) {
      const now = current(waiting.id) ?? waiting;
      const handled = !isOpen(now) || (waiting.state === 'new' && now.state !== 'new' && now.version > waiting.version);
      // As it stands now, but with the change that made it alert: a note added meanwhile must
      // not turn "(escalated: …)" into a plain new incident.
      if (!handled) out.push(now.version >= waiting.version ? { ...now, last_change: waiting.last_change } : waiting);
    }
    this.byId.clear();
    return out;
  }
}

/** The one-line summary for a notification. */
export function alertText(alerts: readonly Incident[]): { title: string; body: string } {
  if (alerts.length === 1) {
    const [i] = alerts;
    const escalated = i.last_change.action === 'escalated' ? ` (escalated: ${i.last_change.detail ?? ''})` : '';
    return { title: `${i.severity.toUpperCase()}: ${i.title}`, body: `${i.kind.replace(/_/g, ' ')} at ${i.source}${escalated}` };
  }
  const worst = [...alerts].sort(compareTriage)[0];
  return { title: `${alerts.length} new incidents`, body: `Most severe: ${worst.title}` };
}
