// A fake backend for the browser preview (`npm run dev` without Tauri) and for tests. Its
// devices are synthetic and marked simulated; the UI shows a banner while it is in use.
import type { Backend, ConnectionView, ConsoleInfo, DeviceView, LiveBatch, MetricsView } from './types';

export interface FakeOptions {
  devices: number;
  intervalMs: number;
  center: [number, number];
}

const connection: ConnectionView = {
  state: 'connected',
  broker: 'fake://browser-preview',
  last_error: null,
  next_attempt_ms: null,
  connects: 1,
  probe_rtt_ms: null,
  probe_ok_ms: null,
};

/** A deterministic synthetic fleet circling `center`. */
export function fakeFleet(count: number, center: [number, number], tMs: number): DeviceView[] {
  const kinds = ['vehicle', 'vehicle', 'bodycam', 'sensor'] as const;
  return Array.from({ length: count }, (_, i) => {
    const r = 0.01 + (i % 17) * 0.002;
    const a = (i * 2.399 + tMs / (20_000 + i * 50)) % (2 * Math.PI);
    return {
      id: `fake-${i}`,
      name: `Fake ${i + 1}`,
      kind: kinds[i % kinds.length],
      simulated: true,
      online: i % 9 !== 0,
      stale: false,
      lat: center[0] + r * Math.sin(a),
      lon: center[1] + r * 1.6 * Math.cos(a),
      heading: null,
      speed: 10,
      battery: 80,
      signal: -70,
      fix_ts_ms: tMs,
      last_seen_ms: tMs,
    };
  });
}

/** Synthetic metrics for the preview: counters that grow with `uptimeS`. */
export function fakeMetrics(uptimeS: number, devices: number, intervalMs: number): MetricsView {
  const messages = Math.floor((uptimeS * devices * 1000) / intervalMs);
  return {
    uptime_s: uptimeS,
    messages_native: messages,
    messages_owntracks: 0,
    messages_face: 0,
    records_position: messages,
    records_status: 0,
    records_event: 0,
    records_quarantine: 0,
    positions_dropped: 0,
    inbound_queue: 0,
    writer_queue: 0,
    writer_committed: messages,
    writer_batches: Math.floor(uptimeS * 5),
    writer_last_batch_rows: 0,
    writer_last_commit_ms: 0,
    writer_commit_seconds_total: 0,
    writer_stalled: false,
    connects: 1,
    probe_rtt_ms: null,
    push_latency: null,
  };
}

const started = Date.now();

export function createFakeBackend(opts: FakeOptions = { devices: 40, intervalMs: 250, center: [51.9225, 4.47917] }): Backend {
  const info: ConsoleInfo = {
    version: 'preview',
    broker_url: 'fake://browser-preview',
    embedded_broker: false,
    db_path: '(none)',
    client_id: 'browser-preview',
    topic_prefix: 'devices',
    map_style_url: null,
    simulated_devices: opts.devices,
  };
  return {
    kind: 'fake',
    consoleInfo: async () => info,
    retryNow: async () => {},
    recentQuarantine: async () => [
      {
        received_ms: Date.now() - 5000,
        topic: 'devices/fake-3/location',
        reason_code: 'out_of_range',
        reason: 'lat = 200 is outside -90..=90',
        payload_preview: '{"ts":1,"lat":200,"lon":4}',
        payload_len: 26,
      },
    ],
    metrics: async () => fakeMetrics((Date.now() - started) / 1000, opts.devices, opts.intervalMs),
    async subscribeLive(onBatch) {
      let seq = 0;
      const batch = (full: boolean): LiveBatch => {
        const devices = fakeFleet(opts.devices, opts.center, Date.now());
        return {
          seq,
          emitted_at_ms: Date.now(),
          full,
          devices,
          counts: { total: devices.length, online: devices.filter((d) => d.online).length, stale: 0 },
          connection,
          quarantined: 0,
          history: { queued: 0, committed: 0, stalled_since_ms: null, last_error: null },
          push_latency: null,
        };
      };
      onBatch(batch(true));
      setInterval(() => {
        seq += 1;
        onBatch(batch(false));
      }, opts.intervalMs);
    },
  };
}
