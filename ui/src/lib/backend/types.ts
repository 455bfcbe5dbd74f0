// The UI's view of the backend's types. The interfaces themselves are generated from Rust by
// ts-rs into ./generated (do not edit those files; run `cargo test` to regenerate).
export type { ConnectionView } from './generated/ConnectionView';
export type { ConsoleInfo } from './generated/ConsoleInfo';
export type { DeviceCounts } from './generated/DeviceCounts';
export type { DeviceView } from './generated/DeviceView';
export type { HistoryHealth } from './generated/HistoryHealth';
export type { LinkState } from './generated/LinkState';
export type { LiveBatch } from './generated/LiveBatch';
export type { LatencyView } from './generated/LatencyView';
export type { MetricsView } from './generated/MetricsView';
export type { QuarantineView } from './generated/QuarantineView';
export type { Incident } from './generated/Incident';
export type { IncidentAction } from './generated/IncidentAction';
export type { SeenIncident } from './generated/SeenIncident';
export type { IncidentState } from './generated/IncidentState';
export type { AuditEntry } from './generated/AuditEntry';
export type { EventView } from './generated/EventView';
export type { TrailPoint } from './generated/TrailPoint';
export type { TerminalRow } from './generated/TerminalRow';
export type { EmployeeRow } from './generated/EmployeeRow';
export type { EmployeeList } from './generated/EmployeeList';
export type { Placement } from './generated/Placement';
export type { Failure } from './generated/Failure';
export type { ImportReport } from './generated/ImportReport';
export type { AttendanceRow } from './generated/AttendanceRow';
export type { AttendanceFilter } from './generated/AttendanceFilter';
export type { DailyRow } from './generated/DailyRow';
export type { DailyFilter } from './generated/DailyFilter';
export type { DailyPage } from './generated/DailyPage';
export type { EventImage } from './generated/EventImage';
export type { ReviewInfo } from './generated/ReviewInfo';
export type { ReviewFrame } from './generated/ReviewFrame';
export type { Track } from './generated/Track';
export type { TrackPoint } from './generated/TrackPoint';
export type { TripSummary } from './generated/TripSummary';
export type { Stop } from './generated/Stop';
export type { Direction } from './generated/Direction';
export type { DeviceMeta } from './generated/DeviceMeta';
export type { ViewExport } from './generated/ViewExport';
export type { DocumentFormat } from './generated/DocumentFormat';
export type { ReportKind } from './generated/ReportKind';
export type { SyncOverview } from './generated/SyncOverview';
export type { SyncAction } from './generated/SyncAction';
export type { AppMode } from './generated/AppMode';
export type { ReviewStarted } from './generated/ReviewStarted';
export type { CommandError } from './generated/CommandError';

import type { ConsoleInfo } from './generated/ConsoleInfo';
import type { LiveBatch } from './generated/LiveBatch';
import type { MetricsView } from './generated/MetricsView';
import type { QuarantineView } from './generated/QuarantineView';
import type { AuditEntry } from './generated/AuditEntry';
import type { EventView } from './generated/EventView';
import type { Incident } from './generated/Incident';
import type { IncidentAction } from './generated/IncidentAction';
import type { SeenIncident } from './generated/SeenIncident';
import type { TrailPoint } from './generated/TrailPoint';
import type { EmployeeList } from './generated/EmployeeList';
import type { Placement } from './generated/Placement';
import type { Failure } from './generated/Failure';
import type { ImportReport } from './generated/ImportReport';
import type { AttendanceRow } from './generated/AttendanceRow';
import type { AttendanceFilter } from './generated/AttendanceFilter';
import type { DailyFilter } from './generated/DailyFilter';
import type { DailyPage } from './generated/DailyPage';
import type { EventImage } from './generated/EventImage';
import type { ReviewFrame } from './generated/ReviewFrame';
import type { Track } from './generated/Track';
import type { Direction } from './generated/Direction';
import type { ViewExport } from './generated/ViewExport';
import type { SyncOverview } from './generated/SyncOverview';
import type { SyncAction } from './generated/SyncAction';
import type { AppMode } from './generated/AppMode';
import type { ReviewStarted } from './generated/ReviewStarted';


/** Everything the UI may ask of the backend. The only implementation that talks to Tauri is
 * ./tauri.ts; ./fake.ts serves the browser preview and tests. */
export interface Backend {
  /** Which implementation this is: the real console, or labelled fake data. */
  readonly kind: 'tauri' | 'fake';
  consoleInfo(): Promise<ConsoleInfo>;
  /** The pipeline's counters and gauges now (the health panel polls it). */
  metrics(): Promise<MetricsView>;
  /** The newest quarantined messages, newest first. */
  recentQuarantine(limit: number): Promise<QuarantineView[]>;
  /** Try the broker again now instead of at the end of the backoff. */
  retryNow(): Promise<void>;
  /** A device's newest stored events, newest first. */
  deviceEvents(device: string, limit: number): Promise<EventView[]>;
  /** A device's recent trail from live state, oldest first. */
  deviceTrail(device: string): Promise<TrailPoint[]>;
  /** Applies an operator's action (as this console's operator); rejects with a CommandError, with
   * code `incident_changed` when the incident changed in state, severity or assignee since
   * `seen` (what the operator was shown). */
  actOnIncident(id: string, action: IncidentAction, seen?: SeenIncident): Promise<Incident>;
  /** An incident's audit trail, oldest first. */
  incidentAudit(id: string): Promise<AuditEntry[]>;
  /** A desktop notification; rejects with code `notifications_unavailable` when none can show. */
  notify(title: string, body: string): Promise<void>;
  /** Whether desktop notifications can show (the service's name), without showing one; rejects
   * like `notify`. */
  checkNotifications(): Promise<string>;
  /** The count of unacknowledged incidents for the window title and tray. */
  setAttention(unacknowledged: number): Promise<void>;
  /** Terminals with their sync job. */
  syncOverview(): Promise<SyncOverview>;
  /** The employee directory (leavers being removed included) and its version: every row when
   * `knownVersion` is null, else only the rows changed since that version (merge them by id). */
  syncEmployees(knownVersion: number | null): Promise<EmployeeList>;
  /** One employee's state on every terminal. */
  syncPlacements(employeeId: string): Promise<Placement[]>;
  /** Persons terminals refused, for one terminal or all. */
  syncFailures(terminal: string | null): Promise<Failure[]>;
  /** Retry failed persons / cancel a terminal's job / plan again; rejects with `sync_off` when
   * this console does not run the sync. */
  syncControl(action: SyncAction, terminal: string | null): Promise<void>;
  /** Puts a terminal in exactly these groups (the sync plans again); rejects with `bad_group`
   * and the reason for a name that cannot be one. */
  setTerminalGroups(terminal: string, groups: string[]): Promise<void>;
  /** Imports the employee CSV the operator picks in the backend's file dialog; null when the
   * dialog was cancelled. One that would remove many employees imports nothing and says so
   * (`unconfirmed`); `confirm` true imports that file (the backend keeps it: the page never
   * names one), removing at most as many as the report said, and only if the file did not
   * change since; false drops the question (null). */
  importEmployees(confirm?: boolean): Promise<ImportReport | null>;
  /** The attendance log, newest first. */
  attendanceLog(filter: AttendanceFilter): Promise<AttendanceRow[]>;
  /** First in and last out per employee and day (terminal-local days, inclusive): the first
   * `filter.limit` person-days, by day then person, and whether there are more. */
  attendanceDaily(filter: DailyFilter): Promise<DailyPage>;
  /** Writes the log or the daily report as CSV where the operator says in a save dialog;
   * resolves to the path written, null when cancelled. */
  exportAttendance(report: 'log' | 'daily', filter: AttendanceFilter): Promise<string | null>;
  /** Images kept with a device's events of one type over an incident's span, first to last
   * seen (the backend widens it as pruning does), newest first. */
  eventImages(device: string, eventType: string, fromMs: number, toMs: number): Promise<EventImage[]>;
  /** The live console, or a review window with its file's facts. */
  appMode(): Promise<AppMode>;
  /** Review: the picture at an instant. */
  reviewFrame(atMs: number): Promise<ReviewFrame>;
  /** Review: one incident's audit trail up to an instant. */
  reviewAudit(id: string, atMs: number): Promise<AuditEntry[]>;
  /** Review: the next (or previous) moment something happened, or null. */
  reviewStep(atMs: number, direction: Direction): Promise<number | null>;
  /** Review: when the next incident opened, or null. */
  reviewNextIncident(atMs: number): Promise<number | null>;
  /** Review: a device's track over a range with stops, totals and battery. */
  reviewTrack(device: string, fromMs: number, toMs: number, minStopS: number | null): Promise<Track>;
  /** Review: writes part of the view or a report where the reviewer says in a save dialog;
   * resolves to the path written, null when cancelled. */
  reviewExport(request: ViewExport): Promise<string | null>;
  /** The live console: the operator picks a history file in a dialog and it opens read-only in
   * a review window of its own; resolves to the file, null when cancelled; rejects with
   * `review_refused` (and the reason) when the file cannot be reviewed. */
  openReview(): Promise<ReviewStarted | null>;
  /** Calls `onBatch` with a full snapshot, then with coalesced batches, until the page closes;
   * `onEnded` with the reason if the backend stops sending them while it runs (a defect). */
  subscribeLive(onBatch: (batch: LiveBatch) => void, onEnded?: (reason: string) => void): Promise<void>;
}
