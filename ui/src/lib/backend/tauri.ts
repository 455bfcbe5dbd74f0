// The one module that talks to Tauri. Everything else uses the Backend interface.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type {
  AuditEntry,
  Backend,
  ConsoleInfo,
  EventView,
  Incident,
  LiveBatch,
  MetricsView,
  QuarantineView,
  TrailPoint,
  SyncOverview,
  EmployeeList,
  Placement,
  Failure,
  ImportReport,
  AttendanceRow,
  DailyPage,
  EventImage,
  AppMode,
  ReviewFrame,
  Track,
  ViewExport,
  ReviewStarted,
} from './types';

export const tauriBackend: Backend = {
  kind: 'tauri',
  consoleInfo: () => invoke<ConsoleInfo>('console_info'),
  metrics: () => invoke<MetricsView>('metrics'),
  retryNow: () => invoke<void>('retry_now'),
  recentQuarantine: (limit) => invoke<QuarantineView[]>('recent_quarantine', { limit }),
  deviceEvents: (device, limit) => invoke<EventView[]>('device_events', { device, limit }),
  deviceTrail: (device) => invoke<TrailPoint[]>('device_trail', { device }),
  actOnIncident: (id, action, seen) => invoke<Incident>('act_on_incident', { id, action, seen: seen ?? null }),
  incidentAudit: (id) => invoke<AuditEntry[]>('incident_audit', { id }),
  notify: (title, body) => invoke<void>('notify', { title, body }),
  checkNotifications: () => invoke<string>('check_notifications'),
  setAttention: (unacknowledged) => invoke<void>('set_attention', { unacknowledged }),
  syncOverview: () => invoke<SyncOverview>('sync_overview'),
  syncEmployees: (knownVersion) => invoke<EmployeeList>('sync_employees', { knownVersion }),
  syncPlacements: (employeeId) => invoke<Placement[]>('sync_placements', { employeeId }),
  syncFailures: (terminal) => invoke<Failure[]>('sync_failures', { terminal }),
  syncControl: (action, terminal) => invoke<void>('sync_control', { action, terminal }),
  setTerminalGroups: (terminal, groups) => invoke<void>('set_terminal_groups', { terminal, groups }),
  importEmployees: (confirm) => invoke<ImportReport | null>('import_employees', { confirm: confirm ?? null }),
  attendanceLog: (filter) => invoke<AttendanceRow[]>('attendance_log', { filter }),
  attendanceDaily: (filter) => invoke<DailyPage>('attendance_daily', { filter }),
  exportAttendance: (report, filter) => invoke<string | null>('export_attendance', { report, filter }),
  eventImages: (device, eventType, fromMs, toMs) => invoke<EventImage[]>('event_images', { device, eventType, fromMs, toMs }),
  appMode: () => invoke<AppMode>('app_mode'),
  reviewFrame: (atMs) => invoke<ReviewFrame>('review_frame', { atMs }),
  reviewAudit: (id, atMs) => invoke<AuditEntry[]>('review_audit', { id, atMs }),
  reviewStep: (atMs, direction) => invoke<number | null>('review_step', { atMs, direction }),
  reviewNextIncident: (atMs) => invoke<number | null>('review_next_incident', { atMs }),
  reviewTrack: (device, fromMs, toMs, minStopS) => invoke<Track>('review_track', { device, fromMs, toMs, minStopS }),
  reviewExport: (request: ViewExport) => invoke<string | null>('review_export', { request }),
  openReview: () => invoke<ReviewStarted | null>('open_review'),
  async subscribeLive(onBatch, onEnded) {
    // Listen first: the backend's snapshot is the first event after subscribe_live.
    await listen<LiveBatch>('watchfloor://live', (e) => onBatch(e.payload));
    await listen<string>('watchfloor://live-ended', (e) => onEnded?.(e.payload));
    await invoke('subscribe_live');
  },
};
