// What the operator has typed into an incident's fields and not yet sent (a note, a
// resolution, an assignee), kept while the incident's panel is closed: clicking a device on the
// map switches the side panel to Devices, which used to throw half a resolution note away.
// Held for the life of the page, only while not empty.

export interface Draft {
  note: string;
  resolution: string;
  assignee: string;
}

const EMPTY: Draft = { note: '', resolution: '', assignee: '' };

export class Drafts {
  #byIncident = new Map<string, Draft>();
  /** Why an incident's last send was refused, until its panel has shown it. */
  #refusals = new Map<string, string>();
  #listeners = new Set<(id: string) => void>();

  get(id: string): Draft {
    return { ...(this.#byIncident.get(id) ?? EMPTY) };
  }

  set(id: string, draft: Draft): void {
    if (draft.note || draft.resolution || draft.assignee) this.#byIncident.set(id, { ...draft });
    else this.#byIncident.delete(id);
  }

  /** A send was refused after its panel may have closed (and another opened on the same
   * incident): the text goes back into the draft, the reason is kept, and the panel open on
   * the incident, if any, is told (they used to land in the closed one, and be lost). */
  refused(id: string, draft: Draft, why: string): void {
    this.set(id, draft);
    this.#refusals.set(id, why);
    for (const listener of this.#listeners) listener(id);
  }

  /** The reason a send on `id` was refused, once (the panel that shows it takes it). */
  takeRefusal(id: string): string | null {
    const why = this.#refusals.get(id) ?? null;
    this.#refusals.delete(id);
    return why;
  }

  /** Calls `listener` with the incident's id whenever a send on it is refused; returns the
   * function that stops it. */
  onRefused(listener: (id: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get size(): number {
    return this.#byIncident.size;
  }
}

/** The page's drafts, shared by every incident panel it opens. */
export const drafts = new Drafts();

/** The incident as it was when the operator began typing a resolution or an assignee: what
 * sending that text acts on (see `SeenIncident`). An escalation that comes while they type
 * then refuses the send, and they look again. */
export class TypedSince<T> {
  #since: { resolution: T | null; assignee: T | null } = { resolution: null, assignee: null };

  /** The field now holds `value`; `now` is the incident as shown now. */
  typed(field: 'resolution' | 'assignee', value: string, now: () => T): void {
    if (!value) this.#since[field] = null;
    else this.#since[field] ??= now();
  }

  /** What the field's text was typed for, forgotten as it is sent. */
  take(field: 'resolution' | 'assignee'): T | undefined {
    const seen = this.#since[field] ?? undefined;
    this.#since[field] = null;
    return seen;
  }

  /** This page's own action, sent for the incident as `sent`, was taken and left it as `now`: a
   * sight kept for a text being typed that is `sent` moves on to `now` (the operator made that
   * change: acknowledging, then sending the resolution typed before, must not be refused as
   * changed). One that differs (the incident changed since the text was begun) stays, so that
   * sending the text is refused and the operator looks again. */
  acted(sent: T, now: T): void {
    const same = (a: T | null) => a !== null && JSON.stringify(a) === JSON.stringify(sent);
    if (same(this.#since.resolution)) this.#since.resolution = now;
    if (same(this.#since.assignee)) this.#since.assignee = now;
  }

  /** The panel shows another incident. */
  clear(): void {
    this.#since = { resolution: null, assignee: null };
  }
}
