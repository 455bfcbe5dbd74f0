// Rates from two metrics snapshots: what the health panel shows as "per second".
import type { MetricsView } from '../backend';

export interface Rates {
  /** Messages per second from the broker, all adapters. */
  messages: number;
  /** Rows per second committed to the history file. */
  committed: number;
  /** Messages per second quarantined. */
  quarantined: number;
}

function total(m: MetricsView): number {
  return m.messages_native + m.messages_owntracks + m.messages_face;
}

/** Per-second rates between `prev` and `next`; null when they do not span time (or the
 * pipeline restarted in between, which resets counters). */
export function rates(prev: MetricsView, next: MetricsView): Rates | null {
  const dt = next.uptime_s - prev.uptime_s;
  if (dt <= 0 || total(next) < total(prev)) return null;
  return {
    messages: (total(next) - total(prev)) / dt,
    committed: (next.writer_committed - prev.writer_committed) / dt,
    quarantined: (next.records_quarantine - prev.records_quarantine) / dt,
  };
}

/** Average commit time in ms, or null before the first commit. */
export function averageCommitMs(m: MetricsView): number | null {
  return m.writer_batches > 0 ? (m.writer_commit_seconds_total * 1000) / m.writer_batches : null;
}
