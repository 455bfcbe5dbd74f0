// What the review window can export, and the request each choice becomes: part of the current
// view (every device at the instant, the incidents as they stood then, the selected device's
// track over the range) or a report over the range. The backend writes it
// (crates/core/src/review/document.rs).
import type { DocumentFormat, ViewExport } from '../backend';

export type ExportChoice = 'devices' | 'incidents' | 'track' | 'report_incidents' | 'report_availability' | 'report_attendance';

export interface ExportOption {
  choice: ExportChoice;
  label: string;
  formats: DocumentFormat[];
}

/** Every choice with the formats it comes in, first the default. */
export const EXPORT_OPTIONS: readonly ExportOption[] = [
  { choice: 'devices', label: 'Devices at this instant', formats: ['csv', 'geojson'] },
  { choice: 'incidents', label: 'Incidents as they stood', formats: ['csv'] },
  { choice: 'track', label: "Selected device's track", formats: ['geojson', 'kml'] },
  { choice: 'report_incidents', label: 'Report: incidents and response times', formats: ['html', 'csv'] },
  { choice: 'report_availability', label: 'Report: device availability', formats: ['html', 'csv'] },
  { choice: 'report_attendance', label: 'Report: attendance per day', formats: ['html', 'csv'] },
];

export interface ViewContext {
  /** The instant drawn. */
  atMs: number;
  /** The range on the timeline, inclusive of both ends. */
  fromMs: number;
  toMs: number;
  /** The device picked for its track, or null. */
  device: string | null;
}

/** The request for a choice, or a reason it cannot be made now. */
export function exportRequest(choice: ExportChoice, format: DocumentFormat, ctx: ViewContext): ViewExport | { error: string } {
  const option = EXPORT_OPTIONS.find((o) => o.choice === choice);
  if (!option || !option.formats.includes(format)) return { error: `${option?.label ?? choice} does not come as ${format}` };
  // The timeline's range includes its last instant; the backend's ranges exclude their end.
  const range = { from_ms: Math.round(ctx.fromMs), to_ms: Math.round(ctx.toMs) + 1 };
  const at_ms = Math.round(ctx.atMs);
  switch (choice) {
    case 'devices':
      return { what: 'devices', at_ms, format };
    case 'incidents':
      return { what: 'incidents', at_ms };
    case 'track':
      if (!ctx.device) return { error: 'pick a device first: its track over the range is exported' };
      return { what: 'track', device: ctx.device, format, ...range };
    case 'report_incidents':
      return { what: 'report', kind: 'incidents', format, ...range };
    case 'report_availability':
      return { what: 'report', kind: 'availability', format, ...range };
    case 'report_attendance':
      return { what: 'report', kind: 'attendance', format, ...range };
  }
}
