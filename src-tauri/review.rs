//! `watchfloor review FILE --at TIME` and `watchfloor report`: reading a history file offline
//! from the command line (the review window is `desktop::review`),
//! with no broker and no network. Both open the file through `review::ReviewFile`, which never
//! writes to it.

use std::io::Write;
use std::process::ExitCode;

use watchfloor_core::review::{self, frame::FrameParams, report, ReviewFile};
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
pub fn review(args: &ReviewArgs, stale_after_ms: i64) -> ExitCode {
    let Some(at) = args.at else {
        eprintln!("watchfloor: give --at TIME");
        return ExitCode::from(2);
    };
    let file = match open(&args.file) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let params = FrameParams {
        stale_after_ms,
        ..FrameParams::default()
    };
    let picture = (|| -> rusqlite::Result<serde_json::Value> {
        let conn = file.conn();
        let devices = review::frame::frame_at(conn, file.devices(), at, params)?;
        let incidents = review::incidents::incidents_at(conn, at)?;
        let mut shown = Vec::with_capacity(incidents.len());
        for i in incidents {
            let audit = review::incidents::audit_until(conn, Some(&i.id), at)?;
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

/// Writes one report for the range (default: the whole file) to stdout.
pub fn report(db: &std::path::Path, args: &ReportArgs) -> ExitCode {
    let file = match open(db) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let span = match review::timeline::span(file.conn(), file.devices()) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let from = args.since.or(span.map(|s| s.from_ms)).unwrap_or(0);
    let to = args.until.or(span.map(|s| s.to_ms + 1)).unwrap_or(0);
    if to <= from {
        eprintln!("watchfloor: --until must be after --since");
        return ExitCode::from(2);
    }
    let subtitle = format!(
        "{} from {} to {} (UTC)",
        args.what_name(),
        utc(from),
        utc(to)
    );
    let written = match args.what {
        ReportWhat::Incidents => incidents(&file, from, to, args.format, &subtitle),
        ReportWhat::Availability => availability(&file, from, to, args, &subtitle),
        ReportWhat::Attendance => attendance_days(&file, from, to, args.format, &subtitle),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => failed(format!("{e:#}")),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

impl ReportArgs {
    fn what_name(&self) -> &'static str {
        match self.what {
            ReportWhat::Incidents => "Incidents",
            ReportWhat::Availability => "Device availability",
            ReportWhat::Attendance => "Attendance",
        }
    }
}

fn csv_out<T: serde::Serialize>(rows: &[T]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

fn html_out(page: &report::Page<'_>) -> anyhow::Result<()> {
    std::io::stdout()
        .lock()
        .write_all(report::html(page).as_bytes())?;
    Ok(())
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.0}")).unwrap_or_default()
}

fn incidents(
    file: &ReviewFile,
    from: i64,
    to: i64,
    format: ReportFormat,
    subtitle: &str,
) -> anyhow::Result<()> {
    let timings = report::incident_timings(file.conn(), from, to)?;
    if format == ReportFormat::Csv {
        return csv_out(&timings);
    }
    let groups = report::incident_groups(&timings);
    let label = |g: &report::IncidentGroup| format!("{} ({})", g.kind, g.severity);
    html_out(&report::Page {
        title: "Incidents",
        subtitle: format!("{subtitle}: {} incidents", timings.len()),
        charts: vec![
            report::Chart {
                title: "Incidents by type and severity".into(),
                bars: groups
                    .iter()
                    .map(|g| (label(g), f64::from(g.count)))
                    .collect(),
                unit: "",
            },
            report::Chart {
                title: "Median time to acknowledge".into(),
                bars: groups
                    .iter()
                    .filter_map(|g| g.ack_median_s.map(|s| (label(g), s)))
                    .collect(),
                unit: "s",
            },
        ],
        header: vec![
            "type",
            "severity",
            "count",
            "acknowledged",
            "resolved",
            "ack median s",
            "ack mean s",
            "ack max s",
            "resolve median s",
            "resolve mean s",
        ],
        rows: groups
            .iter()
            .map(|g| {
                vec![
                    g.kind.clone(),
                    g.severity.clone(),
                    g.count.to_string(),
                    g.acknowledged.to_string(),
                    g.resolved.to_string(),
                    secs(g.ack_median_s),
                    secs(g.ack_mean_s),
                    secs(g.ack_max_s),
                    secs(g.resolve_median_s),
                    secs(g.resolve_mean_s),
                ]
            })
            .collect(),
    })
}

fn availability(
    file: &ReviewFile,
    from: i64,
    to: i64,
    args: &ReportArgs,
    subtitle: &str,
) -> anyhow::Result<()> {
    let rows = report::availability(
        file.conn(),
        file.devices(),
        from,
        to,
        i64::from(args.max_gap) * 1000,
    )?;
    if args.format == ReportFormat::Csv {
        return csv_out(&rows);
    }
    let name = |a: &report::Availability| a.name.clone().unwrap_or_else(|| a.device_id.clone());
    html_out(&report::Page {
        title: "Device availability",
        subtitle: format!("{subtitle}: {} devices", rows.len()),
        charts: vec![report::Chart {
            title: "Online share".into(),
            bars: rows
                .iter()
                .map(|a| (name(a), (a.online_share * 1000.0).round() / 10.0))
                .collect(),
            unit: "%",
        }],
        header: vec![
            "device",
            "name",
            "online h",
            "online %",
            "fixes",
            "gaps",
            "longest gap min",
        ],
        rows: rows
            .iter()
            .map(|a| {
                vec![
                    a.device_id.clone(),
                    a.name.clone().unwrap_or_default(),
                    format!("{:.1}", a.online_ms as f64 / 3_600_000.0),
                    format!("{:.1}", a.online_share * 100.0),
                    a.fixes.to_string(),
                    a.gaps.to_string(),
                    format!("{:.1}", a.longest_gap_ms as f64 / 60_000.0),
                ]
            })
            .collect(),
    })
}

fn attendance_days(
    file: &ReviewFile,
    from: i64,
    to: i64,
    format: ReportFormat,
    subtitle: &str,
) -> anyhow::Result<()> {
    // Terminal-local calendar days; the UTC range's days bound them closely enough for a
    // report (a terminal's day never starts more than 14 h from UTC's).
    let day = |ms: i64| utc(ms).get(..10).unwrap_or_default().to_owned();
    let rows = attendance::daily(file.conn(), &day(from), &day(to - 1))?;
    if format == ReportFormat::Csv {
        return csv_out(&rows);
    }
    html_out(&report::Page {
        title: "Attendance",
        subtitle: format!("{subtitle}: {} person-days", rows.len()),
        charts: Vec::new(),
        header: vec![
            "day", "employee", "name", "first in", "at", "last out", "at", "records",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.day.clone(),
                    r.person_id.clone(),
                    r.person_name.clone().unwrap_or_default(),
                    r.first_in.clone(),
                    r.first_terminal.clone(),
                    r.last_out.clone(),
                    r.last_terminal.clone(),
                    r.records.to_string(),
                ]
            })
            .collect(),
    })
}
