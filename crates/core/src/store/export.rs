//! Export of history tables as CSV, NDJSON or GeoJSON, and of device tracks as GeoJSON lines or
//! KML, streamed: rows go from SQLite's cursor to the writer one at a time, so memory stays flat
//! however large the file is.
//!
//! Every export adds `time_utc` (RFC 3339, milliseconds) beside the epoch-ms column it is derived
//! from. Rows come in arrival order, or in device-time order when one device is asked for (its
//! track). Quarantined payloads are bytes as received: they are written as text, with invalid
//! UTF-8 shown as U+FFFD.

use std::io::Write;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{Map, Value};
use watchfloor_protocol::DeviceId;

/// Which table to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Positions,
    Statuses,
    Events,
    Quarantine,
    /// Positions drawn as one line per device (geojson or kml).
    Tracks,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Positions | Table::Tracks => "positions",
            Table::Statuses => "statuses",
            Table::Events => "events",
            Table::Quarantine => "quarantine",
        }
    }

    /// The columns exported, in order (`time_utc` is computed from `time_column`).
    fn select_list(self) -> &'static str {
        match self {
            Table::Positions | Table::Tracks => {
                "device_id, ts_ms, {time} AS time_utc, lat, lon, alt, heading, speed, accuracy, received_ms"
            }
            Table::Statuses => {
                "device_id, ts_ms, {time} AS time_utc, online, battery, signal, kind, name, simulated, received_ms"
            }
            Table::Events => {
                "device_id, event_id, ts_ms, {time} AS time_utc, type, severity, message, lat, lon, received_ms"
            }
            Table::Quarantine => {
                "received_ms, {time} AS time_utc, topic, reason_code, reason, payload_len, payload"
            }
        }
    }

    fn time_column(self) -> &'static str {
        match self {
            Table::Quarantine => "received_ms",
            _ => "ts_ms",
        }
    }

    fn has_device(self) -> bool {
        !matches!(self, Table::Quarantine)
    }

    fn has_location(self) -> bool {
        matches!(self, Table::Positions | Table::Events | Table::Tracks)
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// One GeoJSON FeatureCollection; each row a Point feature (events without a position have
    /// a null geometry, which GeoJSON allows); for tracks, a LineString per device.
    Geojson,
    /// KML 2.2 (Google Earth, QGIS): tracks only, a Placemark with a LineString per device.
    Kml,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportQuery {
    pub table: Table,
    pub format: Format,
    pub device: Option<DeviceId>,
    /// Inclusive lower bound on the table's time column (epoch ms).
    pub since_ms: Option<i64>,
    /// Exclusive upper bound.
    pub until_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Unsupported(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the export: {0}")]
    Csv(#[from] csv::Error),
}

impl ExportError {
    /// The reader went away (`watchfloor export ... | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            ExportError::Io(e) => Some(e),
            ExportError::Csv(e) => match e.kind() {
                csv::ErrorKind::Io(e) => Some(e),
                _ => None,
            },
            _ => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Streams the rows `q` selects from `conn` to `out`; returns how many were written.
pub fn export(conn: &Connection, q: &ExportQuery, out: impl Write) -> Result<u64, ExportError> {
    // A range that holds no time (a date given twice, the bounds swapped) exported a header
    // and nothing else, exit 0, as if the file held nothing then; `report` refuses it.
    if let (Some(since), Some(until)) = (q.since_ms, q.until_ms) {
        if until <= since {
            return Err(ExportError::Unsupported(
                "--until must be after --since (--since is inclusive, --until exclusive)".into(),
            ));
        }
    }
    if q.device.is_some() && !q.table.has_device() {
        return Err(ExportError::Unsupported(format!(
            "--device does not apply to {}: its rows have no device id (filter by time instead)",
            q.table.name()
        )));
    }
    if q.format == Format::Geojson && !q.table.has_location() {
        return Err(ExportError::Unsupported(format!(
            "geojson needs locations: {} has none (use positions or events, or csv/ndjson)",
            q.table.name()
        )));
    }
    if q.table == Table::Tracks {
        return tracks(conn, q, out);
    }
    if q.format == Format::Kml {
        return Err(ExportError::Unsupported(
            "kml is for tracks: use --what tracks (or csv, ndjson, geojson for rows)".into(),
        ));
    }
    let sql = rows_sql(q);
    let mut stmt = conn.prepare(&sql)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query((
        q.device.as_ref().map(|d| d.as_str()),
        q.since_ms,
        q.until_ms,
    ))?;
    let mut sink = Sink::new(q.format, &columns, out)?;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        let values: Vec<ValueRef<'_>> = (0..columns.len())
            .map(|i| row.get_ref(i))
            .collect::<rusqlite::Result<_>>()?;
        sink.row(&values)?;
        n += 1;
    }
    sink.finish()?;
    Ok(n)
}

/// One line per device (ordered by device id), its points in device-time order. Each device's
/// first and last time come from two index seeks before its points are streamed, so the
/// header of its feature or Placemark can carry them.
fn tracks(conn: &Connection, q: &ExportQuery, out: impl Write) -> Result<u64, ExportError> {
    let kml = match q.format {
        Format::Geojson => false,
        Format::Kml => true,
        _ => {
            return Err(ExportError::Unsupported(
                "tracks are lines: use geojson or kml (or --what positions for rows)".into(),
            ))
        }
    };
    // One snapshot for the whole export: a console writing the file meanwhile (or pruning it)
    // cannot make a device's fix count and its fixes disagree, and a point is a point.
    let _snapshot = conn
        .is_autocommit()
        .then(|| conn.unchecked_transaction())
        .transpose()?;
    let (since, until) = (
        q.since_ms.unwrap_or(i64::MIN),
        q.until_ms.unwrap_or(i64::MAX),
    );
    let devices: Vec<String> = match &q.device {
        Some(d) => vec![d.as_str().to_owned()],
        None => crate::review::frame::device_meta(conn)?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    // A track whose longitudes span more than half the world may cross the antimeridian: in
    // GeoJSON it is a MultiLineString cut there (RFC 7946, 3.1.9), so that no part is drawn
    // the long way round, across the whole map.
    let mut bounds = conn.prepare_cached(
        "SELECT min(ts_ms), max(ts_ms), count(*), max(lon) - min(lon) > 180 FROM positions
         WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3",
    )?;
    let mut points = conn.prepare_cached(
        "SELECT lon, lat FROM positions WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
         ORDER BY ts_ms, id",
    )?;
    let mut out = std::io::BufWriter::new(out);
    if kml {
        out.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document><name>Watchfloor tracks</name>\n",
        )?;
    } else {
        out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    }
    let mut written = 0u64;
    for device in devices {
        let (from, to, n, wide): (Option<i64>, Option<i64>, i64, Option<bool>) = bounds
            .query_row((&device, since, until), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        let (from_utc, to_utc) = (rfc3339(from), rfc3339(to));
        // A line needs two positions (GeoJSON and KML alike): a device with one fix in the
        // range is a point.
        let point = n == 1;
        // KML stays one line: Google Earth draws tessellated lines over the globe, the short
        // way round (a flat-map GIS may not).
        let cut = !kml && !point && wide == Some(true);
        if kml {
            write!(
                out,
                "<Placemark><name>{}</name><TimeSpan><begin>{from_utc}</begin><end>{to_utc}</end></TimeSpan>{}<coordinates>",
                xml_escape(&device),
                if point { "<Point>" } else { "<LineString><tessellate>1</tessellate>" }
            )?;
        } else {
            if written > 0 {
                out.write_all(b",")?;
            }
            let props = serde_json::json!({
                "device_id": device, "from_utc": from_utc, "to_utc": to_utc, "fixes": n,
            });
            write!(
                out,
                "{{\"type\":\"Feature\",\"properties\":{props},\"geometry\":{{\"type\":\"{}\",\"coordinates\":{}",
                match (point, cut) {
                    (true, _) => "Point",
                    (false, false) => "LineString",
                    (false, true) => "MultiLineString",
                },
                match (point, cut) {
                    (true, _) => "",
                    (false, false) => "[",
                    (false, true) => "[[",
                }
            )?;
        }
        let mut rows = points.query((&device, since, until))?;
        let mut last: Option<(f64, f64)> = None;
        while let Some(r) = rows.next()? {
            let (lon, lat): (f64, f64) = (r.get(0)?, r.get(1)?);
            let first = last.is_none();
            match (kml, last) {
                (true, _) => write!(out, "{}{lon},{lat}", if first { "" } else { " " })?,
                (false, None) => write!(out, "[{lon},{lat}]")?,
                (false, Some(from)) => {
                    if cut {
                        if let Some((edge, at_lat)) = antimeridian_crossing(from, (lon, lat)) {
                            write!(out, ",[{edge},{at_lat}]],[[{},{at_lat}]", -edge)?;
                        }
                    }
                    write!(out, ",[{lon},{lat}]")?;
                }
            }
            last = Some((lon, lat));
        }
        out.write_all(match (kml, point, cut) {
            (true, true, _) => b"</coordinates></Point></Placemark>\n".as_slice(),
            (true, false, _) => b"</coordinates></LineString></Placemark>\n",
            (false, true, _) => b"}}",
            (false, false, false) => b"]}}",
            (false, false, true) => b"]]}}",
        })?;
        written += 1;
    }
    out.write_all(if kml { b"</Document></kml>\n" } else { b"]}\n" })?;
    out.flush()?;
    Ok(written)
}

/// Where the short way from `a` to `b` (lon, lat) crosses the antimeridian, if it does: the
/// edge it leaves by (180 going east, -180 going west) and the latitude there (linear in
/// degrees, as the line is drawn).
fn antimeridian_crossing(a: (f64, f64), b: (f64, f64)) -> Option<(f64, f64)> {
    let d = b.0 - a.0;
    let (edge, short) = match d {
        d if d < -180.0 => (180.0, d + 360.0),
        d if d > 180.0 => (-180.0, d - 360.0),
        _ => return None,
    };
    // From 180 to -180 (both edges are valid longitudes): one place, left at once.
    let f = if short == 0.0 {
        0.0
    } else {
        (edge - a.0) / short
    };
    Some((edge, a.1 + (b.1 - a.1) * f))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes rows in one format.
enum Sink<'c, W: Write> {
    Csv(Box<csv::Writer<W>>),
    Ndjson {
        out: std::io::BufWriter<W>,
        columns: &'c [String],
    },
    Geojson {
        out: std::io::BufWriter<W>,
        columns: &'c [String],
        lat: usize,
        lon: usize,
        first: bool,
    },
}

impl<'c, W: Write> Sink<'c, W> {
    fn new(format: Format, columns: &'c [String], out: W) -> Result<Self, ExportError> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(columns)?;
                Sink::Csv(Box::new(w))
            }
            Format::Ndjson => Sink::Ndjson {
                out: std::io::BufWriter::new(out),
                columns,
            },
            Format::Geojson => {
                let mut out = std::io::BufWriter::new(out);
                out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n")?;
                let find = |name: &str| columns.iter().position(|c| c == name);
                let (Some(lat), Some(lon)) = (find("lat"), find("lon")) else {
                    return Err(ExportError::Unsupported("no lat/lon columns".into()));
                };
                Sink::Geojson {
                    out,
                    columns,
                    lat,
                    lon,
                    first: true,
                }
            }
            Format::Kml => {
                return Err(ExportError::Unsupported("kml is for tracks".into()));
            }
        })
    }

    fn row(&mut self, values: &[ValueRef<'_>]) -> Result<(), ExportError> {
        match self {
            Sink::Csv(w) => {
                w.write_record(values.iter().map(|v| csv_field(*v)))?;
            }
            Sink::Ndjson { out, columns } => {
                serde_json::to_writer(&mut *out, &object(columns, values, &[]))
                    .map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            Sink::Geojson {
                out,
                columns,
                lat,
                lon,
                first,
            } => {
                let geometry = match (values[*lat], values[*lon]) {
                    (ValueRef::Real(la), ValueRef::Real(lo)) => serde_json::json!({
                        "type": "Point",
                        "coordinates": [lo, la],
                    }),
                    _ => Value::Null,
                };
                let feature = serde_json::json!({
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": object(columns, values, &[*lat, *lon]),
                });
                if !*first {
                    out.write_all(b",\n")?;
                }
                *first = false;
                serde_json::to_writer(&mut *out, &feature).map_err(std::io::Error::from)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::Csv(mut w) => w.flush()?,
            Sink::Ndjson { mut out, .. } => out.flush()?,
            Sink::Geojson { mut out, .. } => {
                out.write_all(b"\n]}\n")?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

fn object(columns: &[String], values: &[ValueRef<'_>], skip: &[usize]) -> Map<String, Value> {
    columns
        .iter()
        .zip(values)
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, (c, v))| (c.clone(), json_value(*v)))
        .collect()
}

fn json_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        // serde_json turns a non-finite float into null; the store never holds one anyway.
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::from(String::from_utf8_lossy(t)),
    }
}

fn csv_field(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            crate::spreadsheet::cell(&String::from_utf8_lossy(t)).into_owned()
        }
    }
}

/// The query of a row export: every value bound (`?1` device, `?2` since, `?3` until), only
/// fixed column and table names formatted in.
fn rows_sql(q: &ExportQuery) -> String {
    let time = q.table.time_column();
    let mut sql = format!(
        "SELECT {} FROM {} WHERE 1",
        q.table.select_list().replace(
            "{time}",
            &format!("strftime('%Y-%m-%dT%H:%M:%fZ', {time} / 1000.0, 'unixepoch')")
        ),
        q.table.name()
    );
    // Every value is bound as a parameter; only fixed column names are formatted in. A filter
    // not given is `?N IS NULL` (true, and keeps the three parameters uniform), not an OR with
    // the comparison: SQLite uses no index for `?1 IS NULL OR device_id = ?1`, so one device's
    // day scanned and sorted the whole table, holding its snapshot (and the log) meanwhile.
    let device_given = q.device.is_some() && q.table.has_device();
    sql.push_str(if device_given {
        " AND device_id = ?1"
    } else {
        " AND ?1 IS NULL" // a device for a table without one is refused above
    });
    sql.push_str(&if q.since_ms.is_some() {
        format!(" AND {time} >= ?2")
    } else {
        " AND ?2 IS NULL".to_owned()
    });
    sql.push_str(&if q.until_ms.is_some() {
        format!(" AND {time} < ?3")
    } else {
        " AND ?3 IS NULL".to_owned()
    });
    sql.push_str(if q.device.is_some() {
        " ORDER BY ts_ms, id"
    } else {
        " ORDER BY id"
    });

    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_track_across_the_antimeridian_is_cut_there_in_geojson() {
        // A ship east across the antimeridian and back west; beside it a van half a world
        // from nothing, whose track stays one line.
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES
               ('ship', 1, -17.0, 179.8, 1), ('ship', 2, -16.0, -179.8, 2),
               ('ship', 3, -16.0, -179.6, 3), ('ship', 4, -15.0, 179.6, 4),
               ('van', 1, 52.0, 4.5, 1), ('van', 2, 52.0, 4.6, 2);",
        )
        .unwrap();
        let (n, text) = run(&conn, query(Table::Tracks, Format::Geojson));
        assert_eq!(n, 2);
        let v: Value = serde_json::from_str(&text).unwrap();
        let ship = &v["features"][0];
        assert_eq!(ship["properties"]["device_id"], "ship");
        assert_eq!(ship["properties"]["fixes"], 4, "the crossings add no fixes");
        assert_eq!(ship["geometry"]["type"], "MultiLineString");
        let parts: Vec<Vec<Vec<f64>>> =
            serde_json::from_value(ship["geometry"]["coordinates"].clone()).unwrap();
        let round = |parts: Vec<Vec<Vec<f64>>>| -> Vec<Vec<Vec<f64>>> {
            parts
                .into_iter()
                .map(|p| {
                    p.into_iter()
                        .map(|c| c.into_iter().map(|x| (x * 1e6).round() / 1e6).collect())
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            round(parts),
            [
                vec![vec![179.8, -17.0], vec![180.0, -16.5]],
                vec![
                    vec![-180.0, -16.5],
                    vec![-179.8, -16.0],
                    vec![-179.6, -16.0],
                    vec![-180.0, -15.5]
                ],
                vec![vec![180.0, -15.5], vec![179.6, -15.0]],
            ],
            "cut where each leg crosses, at the latitude it crosses"
        );
        assert_eq!(v["features"][1]["geometry"]["type"], "LineString");

        // From one edge to the other (180 and -180 are both valid): cut where it stands, not
        // at a latitude of 0/0.
        assert_eq!(
            antimeridian_crossing((180.0, 10.0), (-180.0, 11.0)),
            Some((180.0, 10.0))
        );
        assert_eq!(
            antimeridian_crossing((-180.0, 10.0), (180.0, 11.0)),
            Some((-180.0, 10.0))
        );
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES
               ('buoy', 1, 10.0, 180.0, 1), ('buoy', 2, 11.0, -180.0, 2);",
        )
        .unwrap();
        let mut q = query(Table::Tracks, Format::Geojson);
        q.device = Some(DeviceId::parse("buoy").unwrap());
        let (_, text) = run(&conn, q);
        let v: Value = serde_json::from_str(&text).expect("valid JSON");
        let parts: Vec<Vec<Vec<f64>>> =
            serde_json::from_value(v["features"][0]["geometry"]["coordinates"].clone()).unwrap();
        assert_eq!(
            parts,
            [
                vec![vec![180.0, 10.0], vec![180.0, 10.0]],
                vec![vec![-180.0, 10.0], vec![-180.0, 11.0]]
            ]
        );
    }

    use crate::store::quarantine::QuarantineEntry;
    use crate::store::{events, positions, quarantine};
    use watchfloor_protocol::{DeviceEvent, Fix, Severity};

    fn fixture() -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        let mut pos = conn.prepare(positions::INSERT).unwrap();
        for (dev, ts, lat) in [
            ("van-1", 2000, 51.0),
            ("van-2", 1500, 52.0),
            ("van-1", 1000, 50.0),
        ] {
            let fix = Fix {
                ts_ms: ts,
                lat,
                lon: 4.5,
                alt: None,
                heading: Some(90.0),
                speed: None,
                accuracy: None,
            };
            positions::insert(&mut pos, &DeviceId::parse(dev).unwrap(), &fix, ts + 5).unwrap();
        }
        let mut evt = conn.prepare(events::INSERT).unwrap();
        for (id, position, message) in [
            ("e1", Some((51.5, 4.4)), Some("door \"3\", north\nside")),
            ("e2", None, Some("=HYPERLINK(\"http://x\")")),
        ] {
            let e = DeviceEvent {
                event_id: id.into(),
                ts_ms: 3000,
                event_type: "door".into(),
                severity: Severity::Medium,
                message: message.map(str::to_owned),
                position,
                stamped_on_arrival: false,
            };
            events::insert(&mut evt, &DeviceId::parse("gate-1").unwrap(), &e, 3001).unwrap();
        }
        let mut qua = conn.prepare(quarantine::INSERT).unwrap();
        let entry = QuarantineEntry::new(4000, "devices/x/status", b"{\xff", "json", "bad".into());
        quarantine::insert(&mut qua, &entry).unwrap();
        drop((pos, evt, qua));
        conn
    }

    fn run(conn: &Connection, q: ExportQuery) -> (u64, String) {
        let mut out = Vec::new();
        let n = export(conn, &q, &mut out).unwrap();
        (n, String::from_utf8(out).unwrap())
    }

    fn query(table: Table, format: Format) -> ExportQuery {
        ExportQuery {
            table,
            format,
            device: None,
            since_ms: None,
            until_ms: None,
        }
    }

    #[test]
    fn one_devices_day_is_read_through_its_index_not_the_whole_table() {
        let conn = fixture();
        let day = ExportQuery {
            device: Some(DeviceId::parse("van-1").unwrap()),
            since_ms: Some(1_000),
            until_ms: Some(2_000),
            ..query(Table::Positions, Format::Csv)
        };
        let plan =
            crate::store::query_plan(&rows_sql(&day), ("van-1", 1_000_i64, 2_000_i64)).join("; ");
        assert!(
            plan.contains(
                "USING INDEX positions_by_device_time (device_id=? AND ts_ms>? AND ts_ms<?)"
            ),
            "{plan}"
        );
        // And the rows are the same as before.
        assert_eq!(run(&conn, day).0, 1);
    }

    #[test]
    fn csv_has_a_header_readable_times_and_survives_awkward_text() {
        let conn = fixture();
        let (n, text) = run(&conn, query(Table::Events, Format::Csv));
        assert_eq!(n, 2);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(&header[..4], ["device_id", "event_id", "ts_ms", "time_utc"]);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&rows[0][3], "1970-01-01T00:00:03.000Z");
        assert_eq!(&rows[0][6], "door \"3\", north\nside");
        assert_eq!(
            &rows[1][6], "'=HYPERLINK(\"http://x\")",
            "a device's formula is text to a spreadsheet"
        );
        assert_eq!(&rows[1][7], "", "a missing value is an empty field");
    }

    #[test]
    fn ndjson_is_one_object_per_line_with_typed_values() {
        let conn = fixture();
        let (n, text) = run(&conn, query(Table::Positions, Format::Ndjson));
        assert_eq!(n, 3);
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["device_id"], "van-1");
        assert_eq!(rows[0]["lat"], 51.0);
        assert_eq!(rows[0]["heading"], 90.0);
        assert_eq!(rows[0]["alt"], Value::Null);
        assert_eq!(rows[0]["ts_ms"], 2000, "arrival order without --device");
    }

    #[test]
    fn device_and_time_filters_give_one_track_in_device_time_order() {
        let conn = fixture();
        let mut q = query(Table::Positions, Format::Ndjson);
        q.device = Some(DeviceId::parse("van-1").unwrap());
        let (_, text) = run(&conn, q.clone());
        let ts: Vec<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["ts_ms"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ts, [1000, 2000]);

        q.since_ms = Some(1000);
        q.until_ms = Some(2000);
        let (n, _) = run(&conn, q);
        assert_eq!(n, 1, "since is inclusive, until exclusive");
    }

    #[test]
    fn geojson_points_are_lon_lat_and_events_without_position_have_null_geometry() {
        let conn = fixture();
        let (_, text) = run(&conn, query(Table::Events, Format::Geojson));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let features = doc["features"].as_array().unwrap();
        assert_eq!(doc["type"], "FeatureCollection");
        assert_eq!(features.len(), 2);
        assert_eq!(
            features[0]["geometry"]["coordinates"],
            serde_json::json!([4.4, 51.5])
        );
        assert_eq!(features[0]["properties"]["event_id"], "e1");
        assert!(features[0]["properties"].get("lat").is_none());
        assert_eq!(features[1]["geometry"], Value::Null);

        let (n, text) = run(&conn, query(Table::Positions, Format::Geojson));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["features"].as_array().unwrap().len() as u64, n);
    }

    #[test]
    fn tracks_are_one_line_per_device_in_geojson_and_kml() {
        let conn = fixture();
        let (n, text) = run(&conn, query(Table::Tracks, Format::Geojson));
        assert_eq!(n, 2);
        let v: Value = serde_json::from_str(&text).unwrap();
        let f = &v["features"][0];
        assert_eq!(f["properties"]["device_id"], "van-1");
        assert_eq!(f["properties"]["fixes"], 2);
        assert_eq!(f["properties"]["from_utc"], "1970-01-01T00:00:01.000Z");
        assert_eq!(f["geometry"]["type"], "LineString");
        let coords: Vec<Vec<f64>> =
            serde_json::from_value(f["geometry"]["coordinates"].clone()).unwrap();
        assert_eq!(
            coords,
            [[4.5, 50.0], [4.5, 51.0]],
            "device-time order, lon before lat"
        );
        // van-2 has one fix: a point (a line of one position is not valid GeoJSON or KML).
        let one = &v["features"][1];
        assert_eq!(one["properties"]["device_id"], "van-2");
        assert_eq!(one["geometry"]["type"], "Point");
        let at: Vec<f64> = serde_json::from_value(one["geometry"]["coordinates"].clone()).unwrap();
        assert_eq!(at, [4.5, 52.0]);
        let mut q = query(Table::Tracks, Format::Kml);
        q.device = Some(DeviceId::parse("van-2").unwrap());
        let (n, kml) = run(&conn, q);
        assert_eq!(n, 1);
        assert!(kml.starts_with("<?xml"));
        assert!(kml.contains("<name>van-2</name>"));
        assert!(
            kml.contains("<Point><coordinates>4.5,52</coordinates></Point>"),
            "{kml}"
        );
        assert!(kml.trim_end().ends_with("</kml>"));
        let mut out = Vec::new();
        let err = export(&conn, &query(Table::Tracks, Format::Csv), &mut out).unwrap_err();
        assert!(err.to_string().contains("tracks are lines"));
        let err = export(&conn, &query(Table::Events, Format::Kml), &mut out).unwrap_err();
        assert!(err.to_string().contains("kml is for tracks"));
    }

    #[test]
    fn quarantine_payloads_are_text_with_invalid_bytes_replaced() {
        let conn = fixture();
        let (_, text) = run(&conn, query(Table::Quarantine, Format::Ndjson));
        let row: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(row["payload"], "{\u{fffd}");
        assert_eq!(row["reason_code"], "json");
    }

    #[test]
    fn combinations_that_mean_nothing_are_refused_in_words() {
        let conn = fixture();
        let mut out = Vec::new();
        let err = export(&conn, &query(Table::Statuses, Format::Geojson), &mut out).unwrap_err();
        assert!(err.to_string().contains("geojson needs locations"), "{err}");
        let mut q = query(Table::Quarantine, Format::Csv);
        q.device = Some(DeviceId::parse("x").unwrap());
        let err = export(&conn, &q, &mut out).unwrap_err();
        assert!(err.to_string().contains("--device does not apply"), "{err}");
        let mut q = query(Table::Events, Format::Csv);
        (q.since_ms, q.until_ms) = (Some(1_000), Some(1_000));
        let err = export(&conn, &q, &mut out).unwrap_err();
        assert!(
            err.to_string().contains("--until must be after --since"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_table_exports_a_header_or_an_empty_collection() {
        let conn = crate::store::open_in_memory().unwrap();
        let (n, text) = run(&conn, query(Table::Statuses, Format::Csv));
        assert_eq!(n, 0);
        assert!(text.starts_with("device_id,ts_ms,time_utc,online"));
        let (_, text) = run(&conn, query(Table::Positions, Format::Geojson));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["features"], serde_json::json!([]));
    }
}
