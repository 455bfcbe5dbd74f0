// The device panel's recent events: read from history when the selected device changes, then
// every 10 s, and never more often. A batch that brings the same device again (ten a second
// while it moves) is not a new selection, and a reply for a device no longer shown is dropped.
// A new device is announced first (`onswitch`), so the panel clears what it showed of the last
// one: its rows, or its error, must not stand under the new device's name while it is read.

import type { EventView } from '../backend';

export const EVENTS_REFRESH_MS = 10_000;

export class RecentEvents {
  #id: string | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Bumped on every change of device, so a reply can tell whether it is still wanted. */
  #generation = 0;

  constructor(
    private readonly read: (id: string) => Promise<EventView[]>,
    private readonly onrows: (rows: EventView[]) => void,
    private readonly onerror: (message: string) => void,
    private readonly onswitch: () => void = () => {},
    private readonly refreshMs = EVENTS_REFRESH_MS,
  ) {}

  /** Show `id`'s events: read them now and every `refreshMs`, unless `id` is already shown. */
  show(id: string): void {
    if (id === this.#id) return;
    this.stop();
    this.#id = id;
    this.onswitch();
    const generation = this.#generation;
    const load = () =>
      this.read(id).then(
        (rows) => generation === this.#generation && this.onrows(rows),
        (e: { message?: string }) => generation === this.#generation && this.onerror(e?.message ?? String(e)),
      );
    void load();
    this.#timer = setInterval(load, this.refreshMs);
  }

  /** Stop reading; replies still on their way are dropped. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#id = null;
    this.#generation++;
  }
}
