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

  get(id: string): Draft {
    return { ...(this.#byIncident.get(id) ?? EMPTY) };
  }

  set(id: string, draft: Draft): void {
    if (draft.note || draft.resolution || draft.assignee) this.#byIncident.set(id, { ...draft });
    else this.#byIncident.delete(id);
  }

  get size(): number {
    return this.#byIncident.size;
  }
}

/** The page's drafts, shared by every incident panel it opens. */
export const drafts = new Drafts();
