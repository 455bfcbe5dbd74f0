//! What a reviewer takes away, written out as a document: a report over a range (CSV rows, or
//! the printable HTML page with its charts), and the review window's current view (every device
//! where it was at the instant, the incidents as they stood then, the selected device's track).
//! One place for both callers, `watchfloor report` (to stdout) and the review window's export
//! (to a file the reviewer names), so the two never differ.

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ts_rs::TS;
use watchfloor_protocol::DeviceId;

use super::frame::{self, FrameParams};
use super::report::{self, Availability, Chart, IncidentGroup, Page};
use super::ReviewFile;
use crate::store::attendance;
use crate::store::export::{self, ExportError, ExportQuery, Table};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ReportKind {
    /// Incidents by type and severity with response times (one line per incident in CSV).
    Incidents,
    /// Online time, fixes and silences per device.
    Availability,
    /// First in and last out per employee and day (the terminals' calendar days).
    Attendance,
}

impl ReportKind {
    fn slug(self) -> &'static str {
        match self {
            ReportKind::Incidents => "incidents-report",
            ReportKind::Availability => "availability-report",
            ReportKind::Attendance => "attendance-report",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ReportKind::Incidents => "Incidents",
            ReportKind::Availability => "Device availability",
            ReportKind::Attendance => "Attendance",
        }
    }
}

/// The file format of a document. Not every part comes in every format: reports are CSV or
/// HTML, devices CSV or GeoJSON, incidents CSV, tracks GeoJSON or KML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DocumentFormat {
    Csv,
    Html,
    Geojson,
    Kml,
}

impl DocumentFormat {
    pub fn extension(self) -> &'static str {
        match self {
            DocumentFormat::Csv => "csv",
            DocumentFormat::Html => "html",
            DocumentFormat::Geojson => "geojson",
            DocumentFormat::Kml => "kml",
        }
    }
}

/// What the review window exports: part of its current view, or a report over its range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "what", rename_all = "snake_case")]
#[ts(export)]
pub enum ViewExport {
    /// Every device where it was at the instant (CSV or GeoJSON points).
    Devices {
        #[ts(type = "number")]
        at_ms: i64,
        format: DocumentFormat,
    },
    /// The incident list as a console's list held it at the instant (CSV): every incident open
    /// then, and those resolved within the day before it, as they stood then. Incidents
    /// resolved earlier are in the incidents report, not here.
    Incidents {
        #[ts(type = "number")]
        at_ms: i64,
    },
    /// One device's track over the range (GeoJSON line or KML).
    Track {
        device: String,
        #[ts(type = "number")]
        from_ms: i64,
        #[ts(type = "number")]
        to_ms: i64,
        format: DocumentFormat,
    },
    /// A report over the range (CSV or the printable HTML page).
    Report {
        kind: ReportKind,
        format: DocumentFormat,
        #[ts(type = "number")]
        from_ms: i64,
        #[ts(type = "number")]
        to_ms: i64,
    },
}

impl ViewExport {
    /// A file name that says what it holds, for when the reviewer gives none.
    pub fn file_name(&self) -> String {
        let stamp = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
                .unwrap_or_default()
        };
        let (stem, format) = match self {
            ViewExport::Devices { at_ms, format } => {
                (format!("devices-{}", stamp(*at_ms)), *format)
            }
            ViewExport::Incidents { at_ms } => {
                (format!("incidents-{}", stamp(*at_ms)), DocumentFormat::Csv)
            }
            ViewExport::Track {
                device,
                from_ms,
                to_ms,
                format,
            } => {
                // Device ids may hold characters a file name must not (`:` in `ot:`, `/`).
                let safe: String = device
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                (
                    format!("track-{safe}-{}-{}", stamp(*from_ms), stamp(*to_ms)),
                    *format,
                )
            }
            ViewExport::Report {
                kind,
                format,
                from_ms,
                to_ms,
            } => (
                format!("{}-{}-{}", kind.slug(), stamp(*from_ms), stamp(*to_ms)),
                *format,
            ),
        };
        format!("watchfloor-{stem}.{}", format.extension())
    }
}

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct ReportRequest {
    pub kind: ReportKind,
    pub format: DocumentFormat,
    /// The range, `from_ms <= t < to_ms`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Availability: silences between fixes longer than this count as gaps.
    pub max_gap_ms: i64,
    /// Attendance: the zone of the terminals' calendar days (`[face] time_zone`).
    pub day_zone: chrono_tz::Tz,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The part does not come in that format, or the request means nothing (an empty range).
    #[error("{0}")]
    Unsupported(String),
    #[error("reading the history file: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("{0}")]
    Export(#[from] ExportError),
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
    #[error("writing the report: {0}")]
    Csv(#[from] csv::Error),
}

impl DocumentError {
    /// The reader went away (`watchfloor report | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            DocumentError::Write(e) => Some(e),
            DocumentError::Csv(e) => match e.kind() {
                csv::ErrorKind::Io(e) => Some(e),
                _ => None,
            },
            DocumentError::Export(e) => return e.is_broken_pipe(),
            DocumentError::Read(_) | DocumentError::Unsupported(_) => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

fn unsupported(what: &str, format: DocumentFormat, allowed: &str) -> DocumentError {
    DocumentError::Unsupported(format!(
        "{what} can be exported as {allowed}, not {}",
        format.extension()
    ))
}

/// Writes one part of the review window's view, or a report; returns how many items it holds
/// (devices, incidents, tracks, report lines).
pub fn write_view(
    file: &ReviewFile,
    req: &ViewExport,
    params: FrameParams,
    out: impl Write,
) -> Result<usize, DocumentError> {
    match req {
        ViewExport::Devices { at_ms, format } => {
            let devices = frame::frame_at(file.conn(), file.devices(), *at_ms, params)?;
            write_devices(&devices, *at_ms, *format, out)
        }
        ViewExport::Incidents { at_ms } => {
            let incidents = file.incidents_at(*at_ms)?;
            write_incidents(&incidents.shown, *at_ms, out)
        }
        ViewExport::Track {
            device,
            from_ms,
            to_ms,
            format,
        } => {
            let format = match format {
                DocumentFormat::Geojson => export::Format::Geojson,
                DocumentFormat::Kml => export::Format::Kml,
                other => return Err(unsupported("a track", *other, "geojson or kml")),
            };
            let device = DeviceId::parse_qualified(device)
                .map_err(|e| DocumentError::Unsupported(format!("device {device:?}: {e}")))?;
            let q = ExportQuery {
                table: Table::Tracks,
                format,
                device: Some(device),
                since_ms: Some(*from_ms),
                until_ms: Some(*to_ms),
            };
            Ok(export::export(file.conn(), &q, out)? as usize)
        }
        ViewExport::Report {
            kind,
            format,
            from_ms,
            to_ms,
        } => write_report(
            file,
            &ReportRequest {
                kind: *kind,
                format: *format,
                from_ms: *from_ms,
                to_ms: *to_ms,
                max_gap_ms: DEFAULT_MAX_GAP_MS,
                day_zone: params.day_zone,
            },
            out,
        ),
    }
}

/// Availability's gap limit when none is given (the CLI's `--max-gap` default).
pub const DEFAULT_MAX_GAP_MS: i64 = 300_000;

/// Devices where they were at `at_ms`: CSV rows, or GeoJSON points (devices that had no fix by
/// then are CSV rows without a position, and GeoJSON features with a null geometry).
pub fn write_devices(
    devices: &[crate::view::DeviceView],
    at_ms: i64,
    format: DocumentFormat,
    mut out: impl Write,
) -> Result<usize, DocumentError> {
    match format {
        DocumentFormat::Csv => {
            let mut w = crate::spreadsheet::Writer::from_writer(out);
            w.write_record([
                "at_utc",
                "device_id",
                "name",
                "kind",
                "simulated",
                "online",
                "stale",
                "lat",
                "lon",
                "speed_kmh",
                "heading",
                "battery",
                "fix_time_utc",
            ])?;
            let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            for d in devices {
                w.write_record([
                    utc(at_ms),
                    d.id.clone(),
                    d.name.clone().unwrap_or_default(),
                    d.kind.unwrap_or("").to_owned(),
                    d.simulated.to_string(),
                    d.online.to_string(),
                    d.stale.to_string(),
                    num(d.lat),
                    num(d.lon),
                    num(d.speed.map(|s| (s * 3.6 * 10.0).round() / 10.0)),
                    num(d.heading),
                    num(d.battery),
                    d.fix_ts_ms.map(utc).unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        DocumentFormat::Geojson => {
            let features: Vec<serde_json::Value> = devices
                .iter()
                .map(|d| {
                    let geometry = match (d.lat, d.lon) {
                        (Some(lat), Some(lon)) => {
                            json!({"type": "Point", "coordinates": [lon, lat]})
                        }
                        _ => serde_json::Value::Null,
                    };
                    json!({
                        "type": "Feature",
                        "geometry": geometry,
                        "properties": {
                            "device_id": d.id, "name": d.name, "kind": d.kind,
                            "simulated": d.simulated, "online": d.online, "stale": d.stale,
                            "speed_kmh": d.speed.map(|s| s * 3.6), "heading": d.heading,
                            "battery": d.battery, "fix_time_utc": d.fix_ts_ms.map(utc),
                        },
                    })
                })
                .collect();
            let doc = json!({
                "type": "FeatureCollection",
                "at_utc": utc(at_ms),
                "features": features,
            });
            serde_json::to_writer(&mut out, &doc).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        other => return Err(unsupported("devices", other, "csv or geojson")),
    }
    Ok(devices.len())
}

/// Incidents as they stood at `at_ms` (CSV, triage order as the window lists them).
pub fn write_incidents(
    incidents: &[crate::incidents::Incident],
    at_ms: i64,
    out: impl Write,
) -> Result<usize, DocumentError> {
    let mut w = crate::spreadsheet::Writer::from_writer(out);
    w.write_record([
        "at_utc",
        "incident_id",
        "source",
        "type",
        "severity",
        "title",
        "state",
        "assignee",
        "resolution",
        "count",
        "opened_utc",
        "last_seen_utc",
        "last_change_utc",
        "last_change_by",
        "lat",
        "lon",
    ])?;
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for i in incidents {
        w.write_record([
            utc(at_ms),
            i.id.clone(),
            i.source.clone(),
            i.kind.clone(),
            i.severity.as_str().to_owned(),
            i.title.clone(),
            i.state.as_str().to_owned(),
            i.assignee.clone().unwrap_or_default(),
            i.resolution.clone().unwrap_or_default(),
            i.count.to_string(),
            utc(i.first_seen_ms),
            utc(i.last_seen_ms),
            utc(i.updated_ms),
            i.updated_by.clone(),
            num(i.lat),
            num(i.lon),
        ])?;
    }
    w.flush()?;
    Ok(incidents.len())
}

/// Writes the report; returns how many rows (incidents, devices, person-days) it holds.
pub fn write_report(
    file: &ReviewFile,
    req: &ReportRequest,
    out: impl Write,
) -> Result<usize, DocumentError> {
    if req.to_ms <= req.from_ms {
        return Err(DocumentError::Unsupported(
            "the range is empty: its end must be after its start".into(),
        ));
    }
    if !matches!(req.format, DocumentFormat::Csv | DocumentFormat::Html) {
        return Err(unsupported("a report", req.format, "csv or html"));
    }
    let subtitle = format!(
        "{} from {} to {} (UTC)",
        req.kind.title(),
        utc(req.from_ms),
        utc(req.to_ms)
    );
    match req.kind {
        ReportKind::Incidents => incidents(file, req, &subtitle, out),
        ReportKind::Availability => availability(file, req, &subtitle, out),
        ReportKind::Attendance => attendance_days(file, req, &subtitle, out),
    }
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn csv_rows<T: Serialize + Default>(rows: &[T], out: impl Write) -> Result<usize, DocumentError> {
    let mut w = crate::spreadsheet::Writer::from_writer(out);
    for r in rows {
        w.serialize(r)?;
    }
    w.ensure_header::<T>()?;
    w.flush()?;
    Ok(rows.len())
}

fn page(p: &Page<'_>, n: usize, mut out: impl Write) -> Result<usize, DocumentError> {
    out.write_all(report::html(p).as_bytes())?;
    out.flush()?;
    Ok(n)
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.0}")).unwrap_or_default()
}

fn incidents(
    file: &ReviewFile,
    req: &ReportRequest,
    subtitle: &str,
    out: impl Write,
) -> Result<usize, DocumentError> {
    let timings = report::incident_timings(file.conn(), req.from_ms, req.to_ms)?;
    if req.format == DocumentFormat::Csv {
        return csv_rows(&timings, out);
    }
    let groups = report::incident_groups(&timings);
    let label = |g: &IncidentGroup| format!("{} ({})", g.kind, g.severity);
    let p = Page {
        title: "Incidents",
        subtitle: format!("{subtitle}: {} incidents", timings.len()),
        charts: vec![
            Chart {
                title: "Incidents by type and severity".into(),
                bars: groups
                    .iter()
                    .map(|g| (label(g), f64::from(g.count)))
                    .collect(),
                unit: "",
            },
            Chart {
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
    };
    page(&p, timings.len(), out)
}

fn availability(
    file: &ReviewFile,
    req: &ReportRequest,
    subtitle: &str,
    out: impl Write,
) -> Result<usize, DocumentError> {
    let rows = report::availability(
        file.conn(),
        &super::frame::reporting_devices(file.conn())?,
        req.from_ms,
        req.to_ms,
        req.max_gap_ms,
    )?;
    if req.format == DocumentFormat::Csv {
        return csv_rows(&rows, out);
    }
    let name = |a: &Availability| a.name.clone().unwrap_or_else(|| a.device_id.clone());
    let p = Page {
        title: "Device availability",
        subtitle: format!("{subtitle}: {} devices", rows.len()),
        charts: vec![Chart {
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
    };
    page(&p, rows.len(), out)
}

fn attendance_days(
    file: &ReviewFile,
    req: &ReportRequest,
    subtitle: &str,
    out: impl Write,
) -> Result<usize, DocumentError> {
    // The terminals' calendar days that the range touches, in their zone (a range from local
    // midnight to midnight is that one day, not also the day before in UTC).
    let day = |ms: i64| {
        chrono::TimeZone::timestamp_millis_opt(&req.day_zone, ms)
            .earliest()
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let rows = attendance::daily(file.conn(), &day(req.from_ms), &day(req.to_ms - 1))?;
    if req.format == DocumentFormat::Csv {
        return csv_rows(&rows, out);
    }
    let p = Page {
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
    };
    page(&p, rows.len(), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    /// A closed history file holding the frame fixture's two devices.
    fn reviewed() -> (tempfile::TempDir, ReviewFile) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let conn = store::open(&db).unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('v1', 1000, 51.0, 4.0, 10.0, 0),
               ('v1', 11000, 51.1, 4.2, 12.0, 0),
               ('s1', 2000, 50.0, 3.0, NULL, 0);
             INSERT INTO statuses (device_id, ts_ms, online, battery, signal, kind, name, simulated, received_ms) VALUES
               ('v1', 900, 1, 80.0, -70.0, 'vehicle', 'Van, \"one\"', 0, 0),
               ('s1', 1500, 1, 50.0, NULL, 'sensor', 'Gate sensor', 1, 0);",
        )
        .unwrap();
        drop(conn);
        let file = ReviewFile::open(&db).unwrap();
        (dir, file)
    }

    fn write(file: &ReviewFile, req: &ViewExport) -> Result<(usize, String), DocumentError> {
        let mut out = Vec::new();
        let n = write_view(file, req, FrameParams::default(), &mut out)?;
        Ok((n, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn devices_at_an_instant_are_rows_with_their_interpolated_position() {
        let (_dir, file) = reviewed();
        let req = ViewExport::Devices {
            at_ms: 6000,
            format: DocumentFormat::Csv,
        };
        let (n, text) = write(&file, &req).unwrap();
        assert_eq!(n, 2);
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let header = rows.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
        let v1 = rows.iter().find(|r| &r[col("device_id")] == "v1").unwrap();
        assert_eq!(
            &v1[col("name")],
            "Van, \"one\"",
            "quoting survives the round trip"
        );
        assert_eq!(
            &v1[col("lat")],
            "51.05",
            "halfway between the fixes at 1 s and 11 s"
        );
        assert_eq!(&v1[col("at_utc")], "1970-01-01T00:00:06.000Z");
        let s1 = rows.iter().find(|r| &r[col("device_id")] == "s1").unwrap();
        assert_eq!(&s1[col("simulated")], "true");
    }

    #[test]
    fn devices_as_geojson_are_points_in_lon_lat_order() {
        let (_dir, file) = reviewed();
        let req = ViewExport::Devices {
            at_ms: 11000,
            format: DocumentFormat::Geojson,
        };
        let (_, text) = write(&file, &req).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let v1 = doc["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["properties"]["device_id"] == "v1")
            .unwrap();
        assert_eq!(v1["geometry"]["coordinates"], json!([4.2, 51.1]));
        assert_eq!(v1["properties"]["kind"], "vehicle");
    }

    #[test]
    fn a_track_is_one_line_for_the_device_over_the_range() {
        let (_dir, file) = reviewed();
        let req = ViewExport::Track {
            device: "v1".into(),
            from_ms: 0,
            to_ms: 20_000,
            format: DocumentFormat::Kml,
        };
        let (n, text) = write(&file, &req).unwrap();
        assert_eq!(n, 1, "one line, for v1 only");
        assert!(text.contains("<LineString>"), "{text}");
        assert!(
            text.contains("4.2,51.1"),
            "its second fix, lon before lat: {text}"
        );
        assert!(
            !text.contains("50"),
            "s1's fix is not in v1's track: {text}"
        );
    }

    #[test]
    fn a_format_a_part_does_not_come_in_is_refused_in_words() {
        let (_dir, file) = reviewed();
        let req = ViewExport::Track {
            device: "v1".into(),
            from_ms: 0,
            to_ms: 20_000,
            format: DocumentFormat::Html,
        };
        let e = write(&file, &req).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a track can be exported as geojson or kml, not html"
        );
        let req = ViewExport::Report {
            kind: ReportKind::Incidents,
            format: DocumentFormat::Csv,
            from_ms: 10,
            to_ms: 10,
        };
        assert!(matches!(
            write(&file, &req),
            Err(DocumentError::Unsupported(_))
        ));
    }

    #[test]
    fn an_availability_page_holds_its_chart_and_one_row_per_device() {
        let (_dir, file) = reviewed();
        let req = ViewExport::Report {
            kind: ReportKind::Availability,
            format: DocumentFormat::Html,
            from_ms: 0,
            to_ms: 20_000,
        };
        let (n, text) = write(&file, &req).unwrap();
        assert_eq!(n, 2);
        assert!(text.starts_with("<!doctype html>"));
        assert!(text.contains("<svg"), "the online-share chart is drawn");
        assert!(text.contains("Gate sensor"));
    }

    #[test]
    fn the_attendance_report_counts_the_days_of_the_range_in_the_terminals_zone() {
        let (dir, file) = reviewed();
        drop(file);
        let db = dir.path().join("h.sqlite");
        let conn = store::open(&db).unwrap();
        // Two allowed recognitions, on the 22nd and the 23rd of November, terminal-local.
        conn.execute_batch(
            "INSERT INTO attendance (terminal_id, record_id, ts_ms, local_time, local_day, person_id,
                 verify_status, person_type, backlog, received_ms) VALUES
               ('T1', 'r1', 0, '2026-11-22 23:30:00', '2026-11-22', 'E1', 1, 0, 0, 0),
               ('T1', 'r2', 0, '2026-11-23 08:00:00', '2026-11-23', 'E1', 1, 0, 0, 0);",
        )
        .unwrap();
        drop(conn);
        let file = ReviewFile::open(&db).unwrap();
        // The 23rd, midnight to midnight in Amsterdam (UTC+1): 22 Nov 23:00 to 23 Nov 23:00 UTC.
        let zone = chrono_tz::Europe::Amsterdam;
        let midnight = |d: u32| {
            chrono::TimeZone::with_ymd_and_hms(&zone, 2026, 11, d, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        let report = |day_zone| {
            let req = ReportRequest {
                kind: ReportKind::Attendance,
                format: DocumentFormat::Csv,
                from_ms: midnight(23),
                to_ms: midnight(24),
                max_gap_ms: DEFAULT_MAX_GAP_MS,
                day_zone,
            };
            let mut out = Vec::new();
            let n = write_report(&file, &req, &mut out).unwrap();
            (n, String::from_utf8(out).unwrap())
        };
        let (n, text) = report(zone);
        assert_eq!(n, 1, "{text}");
        assert!(
            text.contains("2026-11-23") && !text.contains("2026-11-22"),
            "{text}"
        );
        // Read in UTC, the same range starts on the 22nd: the day the zone keeps out.
        assert_eq!(report(chrono_tz::UTC).0, 2);
    }

    #[test]
    fn a_csv_report_with_no_rows_still_says_its_columns() {
        let (_dir, file) = reviewed();
        for (kind, first_column) in [
            (ReportKind::Incidents, "incident_id,"),
            (ReportKind::Attendance, "day,person_id,"),
        ] {
            let req = ReportRequest {
                kind,
                format: DocumentFormat::Csv,
                from_ms: 0,
                to_ms: 1,
                max_gap_ms: DEFAULT_MAX_GAP_MS,
                day_zone: chrono_tz::UTC,
            };
            let mut out = Vec::new();
            assert_eq!(write_report(&file, &req, &mut out).unwrap(), 0);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.starts_with(first_column) && text.lines().count() == 1,
                "{kind:?}: {text:?}"
            );
        }
    }

    #[test]
    fn file_names_say_what_they_hold_and_carry_no_path_characters() {
        let req = ViewExport::Track {
            device: "ot:dana/../phone".into(),
            from_ms: 0,
            to_ms: 60_000,
            format: DocumentFormat::Geojson,
        };
        assert_eq!(
            req.file_name(),
            "watchfloor-track-ot_dana_.._phone-19700101T000000Z-19700101T000100Z.geojson"
        );
        assert!(!req.file_name().contains('/'));
    }
}
