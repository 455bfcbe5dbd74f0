// A fake backend for the browser preview (`npm run dev` without Tauri) and for tests. Its
// devices are synthetic and marked simulated; the UI shows a banner while it is in use.
import type { Backend, ConnectionView, ConsoleInfo, DeviceView, EmployeeRow, Incident, IncidentAction, LiveBatch, MetricsView, ReviewInfo, SeenIncident, TrackPoint } from './types';

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
  subscription_problem: null,
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
      clock_behind: false,
      fix_old: false,
      lat: center[0] + r * Math.sin(a),
      lon: center[1] + r * 1.6 * Math.cos(a),
      heading: null,
      speed: 10,
      speed_estimated: false,
      battery: 80,
      signal: -70,
      fix_ts_ms: tMs,
      last_seen_ms: tMs,
      groups: FAKE_GROUPS.filter((_, g) => i % (g + 2) === 0),
    };
  });
}

/** The preview's operator groups (a console has them from `[groups]` in its config). */
export const FAKE_GROUPS = ['Fake north', 'Fake south'];

/** Synthetic metrics for the preview: counters that grow with `uptimeS`. */
export function fakeMetrics(uptimeS: number, devices: number, intervalMs: number): MetricsView {
  const messages = Math.floor((uptimeS * devices * 1000) / intervalMs);
  return {
    uptime_s: uptimeS,
    messages_native: messages,
    messages_owntracks: 0,
    messages_face: 0,
    messages_incidents: 0,
    records_position: messages,
    records_status: 0,
    records_event: 0,
    records_quarantine: 0,
    records_incident: 0,
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
    broker_connected: true,
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
    operator: 'preview',
    notify_min_severity: 'high',
    sound: false,
    tls_unverified: false,
    credential_problem: null,
    device_groups: FAKE_GROUPS,
    trail_minutes: 10,
    terminal_zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  };
  const incidents = new Map<string, Incident>(fakeIncidents(Date.now()).map((i) => [i.id, i]));
  let changed: Incident[] = [];
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
        payload_preview: '{"ts":1795421700250,"lat":200,"lon":4}',
        payload_len: 26,
      },
    ],
    deviceEvents: async () => [],
    deviceTrail: async () => [],
    incidentAudit: async () => [],
    notify: async () => {},
    checkNotifications: async () => 'fake backend: no desktop notifications',
    setAttention: async () => {},
    async actOnIncident(id, action, seen) {
      const held = incidents.get(id);
      if (!held) throw { code: 'not_found', message: `no incident ${id}` };
      const differs = seen && action.action !== 'note' ? changedSince(seen, held) : null;
      if (differs) throw { code: 'incident_changed', message: `the incident changed since you saw it: ${differs}. Nothing was done; look again` };
      const next = applyFakeAction(held, action, info.operator);
      incidents.set(id, next);
      changed.push(next);
      return next;
    },
    ...fakeSites(),
    ...fakeReview(opts.devices, opts.center),
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
          removed: [],
          counts: { total: devices.length, online: devices.filter((d) => d.online).length, stale: 0 },
          connection,
          quarantined: 0,
          history: { queued: 0, committed: 0, stalled_since_ms: null, last_error: null },
          push_latency: null,
          incidents: full ? [...incidents.values()] : changed.splice(0),
          unacknowledged: [...incidents.values()].filter((i) => i.state === 'new').length,
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

/** Two labelled fake incidents for the preview. */
export function fakeIncidents(now: number): Incident[] {
  const base = {
    assignee: null,
    resolution: null,
    count: 1,
    version: 1,
    updated_by: 'system',
    last_change: { action: 'opened', detail: null },
    state: 'new' as const,
  };
  return [
    { ...base, id: 'fa0000000000000a', source: 'fake-1', kind: 'panic_button', severity: 'critical', title: 'Fake 2: panic button (FAKE)', first_seen_ms: now - 90_000, last_seen_ms: now - 90_000, updated_ms: now - 90_000, lat: 51.93, lon: 4.48 },
    { ...base, id: 'fa0000000000000b', source: 'fake-9', kind: 'offline', severity: 'high', title: 'Fake 10 (vehicle) went offline (FAKE)', first_seen_ms: now - 30_000, last_seen_ms: now - 30_000, updated_ms: now - 30_000, lat: 51.91, lon: 4.46 },
  ];
}

/** What of `now` differs from what was `seen`, in words (as the backend says it, less who);
 * null when nothing does. The backend's check (`SeenIncident::changes_in`), for the fake one. */
function changedSince(seen: SeenIncident, now: Incident): string | null {
  const out: string[] = [];
  if (now.state !== seen.state) out.push(`it is ${now.state} now`);
  if (now.severity !== seen.severity) out.push(`its severity went from ${seen.severity} to ${now.severity}`);
  if (now.assignee !== seen.assignee) out.push(now.assignee ? `it is assigned to ${now.assignee}` : 'it is no longer assigned');
  return out.length ? out.join(', ') : null;
}

function applyFakeAction(i: Incident, a: IncidentAction, actor: string): Incident {
  const next: Incident = { ...i, version: i.version + 1, updated_ms: Date.now(), updated_by: actor };
  switch (a.action) {
    case 'acknowledge':
      return { ...next, state: 'acknowledged', last_change: { action: 'acknowledged', detail: null } };
    case 'assign':
      return { ...next, state: 'assigned', assignee: a.to, last_change: { action: 'assigned', detail: a.to } };
    case 'resolve':
      return { ...next, state: 'resolved', resolution: a.note, last_change: { action: 'resolved', detail: a.note } };
    case 'reopen':
      return { ...next, state: 'new', resolution: null, assignee: null, last_change: { action: 'reopened', detail: null } };
    case 'note':
      return { ...next, last_change: { action: 'note', detail: a.text } };
  }
}

/** Labelled fake terminals, employees and attendance for the preview (no sync runs). */
function fakeSites(): Pick<
  Backend,
  | 'syncOverview'
  | 'syncEmployees'
  | 'syncPlacements'
  | 'syncFailures'
  | 'syncControl'
  | 'setTerminalGroups'
  | 'importEmployees'
  | 'attendanceLog'
  | 'attendanceDaily'
  | 'exportAttendance'
  | 'eventImages'
> {
  const now = Date.now();
  const off = { code: 'sync_off', message: 'the browser preview runs no sync (FAKE data)' };
  return {
    syncOverview: async () => ({
      running: false,
      problem: null,
      link: null,
      terminals: [
        { terminal_id: 'fake-gate-1', name: 'Fake gate 1 (FAKE)', ip: '10.0.0.7', firmware: 'FAKE', online: true, no_answer: false, person_count: 120, confirmed: 120, last_seen_ms: now - 20_000, groups: ['gates'], state: 'running', total: 200, done: 120, failed: 2, pending: 78, throughput: 95.2, utilisation: 0.93, ms_per_person: 10, last_error: null },
        { terminal_id: 'fake-gate-2', name: 'Fake gate 2 (FAKE)', ip: '10.0.0.8', firmware: 'FAKE', online: false, no_answer: false, person_count: 0, confirmed: 0, last_seen_ms: now - 600_000, groups: [], state: 'paused', total: 200, done: 0, failed: 0, pending: 200, throughput: 0, utilisation: 0, ms_per_person: null, last_error: 'terminal offline' },
      ],
    }),
    // The preview's directory never changes: version 1, every row for a panel without them.
    syncEmployees: async (knownVersion) => ({
      version: 1,
      complete: knownVersion !== 1,
      rows: knownVersion === 1 ? [] : fakeEmployees(),
    }),
    syncPlacements: async () => [
      { terminal_id: 'fake-gate-1', terminal_name: 'Fake gate 1 (FAKE)', assigned: true, state: 'synced', errcode: null, reason: null, attempts: null, confirmed_ms: now - 60_000 },
      { terminal_id: 'fake-gate-2', terminal_name: 'Fake gate 2 (FAKE)', assigned: true, state: 'pending', errcode: null, reason: null, attempts: null, confirmed_ms: null },
    ],
    syncFailures: async () => [
      { terminal_id: 'fake-gate-1', employee_id: 'FAKE0007', content: '', errcode: 468, reason: 'no face found in the photo', attempts: 1, at_ms: now - 30_000 },
    ],
    syncControl: async () => {
      throw off;
    },
    setTerminalGroups: async () => {
      throw off;
    },
    importEmployees: async () => {
      throw off;
    },
    attendanceLog: async () =>
      Array.from({ length: 30 }, (_, i) => ({
        terminal_id: 'fake-gate-1',
        terminal_name: 'Fake gate 1 (FAKE)',
        record_id: String(1000 - i),
        ts_ms: now - i * 60_000,
        local_time: new Date(now - i * 60_000).toISOString().slice(0, 19).replace('T', ' '),
        person_id: `FAKE${String(i % 12).padStart(4, '0')}`,
        person_name: `Fake Person ${i % 12}`,
        employee: true,
        outcome: i % 10 === 3 ? 'refused' : 'granted',
        similarity: 90,
        backlog: false,
      })),
    attendanceDaily: async ({ from_day: fromDay }) => ({
      more: false,
      rows: Array.from({ length: 12 }, (_, i) => ({
        day: fromDay,
        person_id: `FAKE${String(i).padStart(4, '0')}`,
        person_name: `Fake Person ${i}`,
        employee: true,
        first_in: `${fromDay} 08:0${i % 10}:00`,
        last_out: `${fromDay} 17:3${i % 10}:00`,
        first_terminal: 'fake-gate-1',
        last_terminal: 'fake-gate-1',
        records: 4,
      })),
    }),
    exportAttendance: async () => {
      throw { code: 'fake', message: 'the browser preview cannot write files (FAKE data)' };
    },
    eventImages: async () => [],
  };
}

/** The review window in the browser preview (open it with `?review`): the fake fleet's
 * positions over the last hour, labelled FAKE. Steps and incidents are not simulated. */
function fakeReview(
  devices: number,
  center: [number, number],
): Pick<Backend, 'appMode' | 'reviewFrame' | 'reviewAudit' | 'reviewStep' | 'reviewNextIncident' | 'reviewTrack' | 'reviewExport' | 'openReview'> {
  const to = Date.now();
  const from = to - 3_600_000;
  const review = typeof location !== 'undefined' && new URLSearchParams(location.search).has('review');
  const info: ReviewInfo = {
    path: 'FAKE history (browser preview)',
    opened: 'immutable',
    span: { from_ms: from, to_ms: to },
    devices: fakeFleet(devices, center, from).map((d) => ({ id: d.id, name: d.name, kind: d.kind, simulated: true, groups: d.groups })),
  };
  return {
    appMode: async () => (review ? { mode: 'review', info } : { mode: 'live' }),
    reviewFrame: async (atMs) => ({ at_ms: atMs, devices: fakeFleet(devices, center, atMs), incidents: [], incidents_resolved_earlier: 0, attendance: [] }),
    reviewAudit: async () => [],
    reviewStep: async (atMs, direction) => (direction === 'forward' ? Math.min(to, atMs + 60_000) : Math.max(from, atMs - 60_000)),
    reviewNextIncident: async () => null,
    reviewExport: async () => {
      throw { code: 'fake', message: 'the browser preview cannot write files (FAKE data)' };
    },
    openReview: async () => {
      throw { code: 'fake', message: 'the browser preview cannot open files (FAKE data)' };
    },
    async reviewTrack(device, fromMs, toMs) {
      const i = Number(device.replace('fake-', ''));
      const points: TrackPoint[] = [];
      for (let t = fromMs; t < toMs; t += 30_000) {
        const d = fakeFleet(i + 1, center, t)[i];
        points.push({ ts_ms: t, lat: d.lat!, lon: d.lon!, speed: d.speed });
      }
      return {
        device_id: device,
        points,
        fixes: points.length,
        battery: [],
        summary: { distance_m: 0, moving_ms: 0, stopped_ms: 0, silent_ms: 0, max_speed: 10, avg_speed: 0, stops: [] },
      };
    },
  };
}

/** Two hundred labelled fake employees for the preview's Employees panel. */
function fakeEmployees(): EmployeeRow[] {
  return Array.from({ length: 200 }, (_, i) => ({
    employee_id: `FAKE${String(i).padStart(4, '0')}`,
    name: `Fake Person ${i}`,
    person_type: i % 50 === 0 ? 'block' : 'allow',
    valid_from_ms: null,
    valid_to_ms: null,
    terminals: [],
    removed: false,
    on_terminals: i < 120 ? 1 : 0,
    failures: i === 7 || i === 9 ? 1 : 0,
  }));
}
