// Live device state in the UI: keyed by id, replaced a batch at a time.
//
// The backend sends a full snapshot first, then batches holding only the devices that changed.
// A batch whose seq is not above the last one applied is stale (it raced the snapshot) and is
// ignored; a full batch always replaces everything.
import type { ConnectionView, DeviceCounts, DeviceView, HistoryHealth, LiveBatch } from '../backend';

export class LiveModel {
  readonly devices = new Map<string, DeviceView>();
  counts: DeviceCounts = { total: 0, online: 0, stale: 0 };
  connection: ConnectionView | null = null;
  quarantined = 0;
  history: HistoryHealth | null = null;
  /** Simulated devices currently known. */
  simulated = 0;
  private lastSeq = -1;

  /** Applies a batch; returns false when it was stale and ignored. Changes before the first
   * snapshot are ignored too: after a reload, the previous page's stream can still deliver a
   * batch or two before the backend replaces it, and they are no news to this page. */
  apply(batch: LiveBatch): boolean {
    if (batch.full) {
      this.devices.clear();
      this.simulated = 0;
    } else if (this.lastSeq < 0 || batch.seq <= this.lastSeq) {
      return false;
    }
    this.lastSeq = batch.seq;
    // The simulated count follows the changes (a batch costs its own size, not the fleet's).
    for (const d of batch.devices) {
      const before = this.devices.get(d.id);
      this.simulated += Number(d.simulated) - Number(before?.simulated ?? false);
      this.devices.set(d.id, d);
    }
    // Forgotten by the backend (offline or silent for days): gone from the list and the map.
    for (const id of batch.removed) {
      const before = this.devices.get(id);
      if (!before) continue;
      this.simulated -= Number(before.simulated);
      this.devices.delete(id);
    }
    this.counts = batch.counts;
    this.connection = batch.connection;
    this.quarantined = batch.quarantined;
    this.history = batch.history;
    return true;
  }
}
