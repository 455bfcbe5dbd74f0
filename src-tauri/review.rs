//! `watchfloor review FILE --at TIME` and `watchfloor report`: reading a history file offline
//! from the command line (the review window is `desktop::review`),
//! with no broker and no network. Both open the file through `review::ReviewFile`, which never
//! writes to it.

use std::io::Write;
use std::process::ExitCode;

use watchfloor_core::review::document::{self, DocumentFormat, ReportKind, ReportRequest};
use watchfloor_core::review::{self, frame::FrameParams, ReviewFile};
use watchfloor_core::store::attendance::{self, AttendanceFilter};

use crate::cli::{ReportArgs, ReportFormat, ReportWhat, ReviewArgs};

fn open(path: &std::path::Path) -> Result<ReviewFile, ExitCode> {
    ReviewFile::open(path).map_err(|e| {
        eprintln!("watchfloor: {e}");
        ExitCode::from(1)
    })
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("watchfloor: {e}");
    ExitCode::from(1)
}

/// Prints the picture at `--at` as one JSON document: every device where it was, incidents as
/// they stood with their audit trail up to then, and the last 100 attendance records.
pub fn review(args: &ReviewArgs, settings: &watchfloor_core::Settings) -> ExitCode {
    let Some(at) = args.at.map(|t| t.ms_in(settings.terminal_day_zone())) else {
        eprintln!("watchfloor: give --at TIME");
        return ExitCode::from(2);
    };
    let mut file = match open(&args.file) {
        Ok(f) => f,
        Err(code) => return code,
    };
    file.place_in_groups(&settings.device_groups);
    let params = FrameParams {
        stale_after_ms: i64::try_from(settings.live.stale_after.as_millis()).unwrap_or(i64::MAX),
        ..FrameParams::default()
    };
    let picture = (|| -> rusqlite::Result<serde_json::Value> {
        let conn = file.conn();
        // Every device heard from by then, also those that send no position (sensors, face
        // terminals), with a null place: the window's map draws the others only.
        let mut everyone = review::frame::reporting_devices(conn)?;
        for d in &mut everyone {
            d.groups = settings.device_groups.groups_of(&d.id).into();
        }
        let devices = review::frame::frame_at(conn, &everyone, at, params)?;
        let incidents = file.incidents_at(at)?;
        let mut shown = Vec::with_capacity(incidents.shown.len());
        for i in incidents.shown {
            let audit = file.audit_until(&i.id, at)?;
            shown.push(serde_json::json!({ "incident": i, "audit": audit }));
        }
        let attendance = attendance::log(
            conn,
            &AttendanceFilter {
                until_ms: Some(at),
                limit: Some(100),
                ..AttendanceFilter::default()
            },
        )?;
        Ok(serde_json::json!({
            "file": args.file.display().to_string(),
            "opened": file.opened(),
            "at_ms": at,
            "at_utc": utc(at),
            "span": review::timeline::span(conn, file.devices())?,
            "devices": devices,
            "incidents": shown,
            "incidents_resolved_earlier": incidents.resolved_earlier,
            "attendance": attendance,
        }))
    })();
    match picture {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            match serde_json::to_writer_pretty(&mut out, &v)
                .and_then(|()| writeln!(out).map_err(serde_json::Error::io))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) => {
                    ExitCode::SUCCESS
                }
                Err(e) => failed(e),
            }
        }
        Err(e) => failed(e),
    }
}

/// Writes one report for the range (default: the whole file) to stdout; attendance counts the
/// days of `day_zone` (the terminals').
pub fn report(db: &std::path::Path, args: &ReportArgs, day_zone: chrono_tz::Tz) -> ExitCode {
    let file = match open(db) {
        Ok(f) => f,
        Err(code) => return code,
    };
    // The file's span, widened by the statuses received while recording: a status-only
    // sensor's availability is something to report on, also beside an event or an incident
    // (alone, those made the default range a millisecond).
    let span = review::timeline::span(file.conn(), file.devices()).and_then(|s| {
        let statuses = review::frame::reporting_devices(file.conn())
            .and_then(|devices| review::timeline::status_span(file.conn(), &devices))?;
        Ok(review::timeline::Span::union(s, statuses))
    });
    let span = match span {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let from = args
        .since
        .map(|t| t.ms_in(day_zone))
        .or(span.map(|s| s.from_ms))
        .unwrap_or(0);
    let to = args
        .until
        .map(|t| t.ms_in(day_zone))
        .or(span.map(|s| s.to_ms + 1))
        .unwrap_or(0);
    if to <= from {
        if span.is_none() && (args.since.is_none() || args.until.is_none()) {
            eprintln!(
                "watchfloor: {} holds no fixes or statuses to report on: give --since and --until",
                db.display()
            );
        } else if args.until.is_none() {
            eprintln!(
                "watchfloor: --since is after the end of what {} holds: give --until too",
                db.display()
            );
        } else if args.since.is_none() {
            eprintln!(
                "watchfloor: --until is before the start of what {} holds: give --since too",
                db.display()
            );
        } else {
            eprintln!("watchfloor: --until must be after --since");
        }
        return ExitCode::from(2);
    }
    let req = ReportRequest {
        kind: match args.what {
            ReportWhat::Incidents => ReportKind::Incidents,
            ReportWhat::Availability => ReportKind::Availability,
            ReportWhat::Attendance => ReportKind::Attendance,
        },
        format: match args.format {
            ReportFormat::Csv => DocumentFormat::Csv,
            ReportFormat::Html => DocumentFormat::Html,
        },
        from_ms: from,
        to_ms: to,
        max_gap_ms: i64::from(args.max_gap) * 1000,
        day_zone,
    };
    match document::write_report(&file, &req, std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => failed(e),
    }
}
