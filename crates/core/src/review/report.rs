//! Reports over a time range: incidents by type and severity with their response times
//! (new -> acknowledged -> resolved), and device availability (online time, silences). The
//! attendance report is `store::attendance::daily`. Each comes out as rows (for CSV and the
//! UI) and as one printable HTML page with its charts drawn in inline SVG (no script, no
//! network: it prints to PDF from any browser).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde::Serialize;
use ts_rs::TS;

use super::frame::DeviceMeta;

/// One incident opened in the range, with how long it waited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct IncidentTiming {
    pub incident_id: String,
    pub source: String,
    pub kind: String,
    pub severity: String,
    #[ts(type = "number")]
    pub opened_ms: i64,
    /// Opened to the first acknowledgement, assignment or resolution (seconds).
    pub ack_s: Option<f64>,
    pub acknowledged_by: Option<String>,
    /// Opened to the first resolution (seconds).
    pub resolve_s: Option<f64>,
}

/// Incidents of one type and severity.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct IncidentGroup {
    pub kind: String,
    pub severity: String,
    pub count: u32,
    pub acknowledged: u32,
    pub resolved: u32,
    pub ack_median_s: Option<f64>,
    pub ack_mean_s: Option<f64>,
    pub ack_max_s: Option<f64>,
    pub resolve_median_s: Option<f64>,
    pub resolve_mean_s: Option<f64>,
}

/// Every incident opened with `from_ms <= opened < to_ms`, oldest first. An incident merged
/// into another (two consoles opened it from different events before hearing of each other)
/// is the same happening counted twice: left out, the one kept stands for both.
pub fn incident_timings(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<IncidentTiming>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.incident_id, i.source, i.kind, i.severity, o.at_ms,
            (SELECT a.at_ms FROM incident_audit a WHERE a.incident_id = o.incident_id
               AND a.action IN ('acknowledged', 'assigned', 'resolved') ORDER BY a.at_ms, a.id LIMIT 1),
            (SELECT a.actor FROM incident_audit a WHERE a.incident_id = o.incident_id
               AND a.action IN ('acknowledged', 'assigned', 'resolved') ORDER BY a.at_ms, a.id LIMIT 1),
            (SELECT a.at_ms FROM incident_audit a WHERE a.incident_id = o.incident_id
               AND a.action = 'resolved' ORDER BY a.at_ms, a.id LIMIT 1)
         FROM incident_audit o JOIN incidents i ON i.id = o.incident_id
         WHERE o.action = 'opened' AND o.at_ms >= ?1 AND o.at_ms < ?2
           AND NOT EXISTS (SELECT 1 FROM incident_audit m
                           WHERE m.incident_id = o.incident_id AND m.action = 'merged')
         ORDER BY o.at_ms, o.id",
    )?;
    let rows = stmt.query_map((from_ms, to_ms), |r| {
        let opened: i64 = r.get(4)?;
        let since = |t: Option<i64>| t.map(|t| (t - opened).max(0) as f64 / 1000.0);
        Ok(IncidentTiming {
            incident_id: r.get(0)?,
            source: r.get(1)?,
            kind: r.get(2)?,
            severity: r.get(3)?,
            opened_ms: opened,
            ack_s: since(r.get(5)?),
            acknowledged_by: r.get(6)?,
            resolve_s: since(r.get(7)?),
        })
    })?;
    rows.collect()
}

/// The timings grouped by type and severity, most frequent first.
pub fn incident_groups(timings: &[IncidentTiming]) -> Vec<IncidentGroup> {
    let mut by: BTreeMap<(&str, &str), Vec<&IncidentTiming>> = BTreeMap::new();
    for t in timings {
        by.entry((&t.kind, &t.severity)).or_default().push(t);
    }
    let mut groups: Vec<IncidentGroup> = by
        .into_iter()
        .map(|((kind, severity), ts)| {
            let acks: Vec<f64> = ts.iter().filter_map(|t| t.ack_s).collect();
            let resolves: Vec<f64> = ts.iter().filter_map(|t| t.resolve_s).collect();
            IncidentGroup {
                kind: kind.to_owned(),
                severity: severity.to_owned(),
                count: ts.len() as u32,
                acknowledged: acks.len() as u32,
                resolved: resolves.len() as u32,
                ack_median_s: median(&acks),
                ack_mean_s: mean(&acks),
                ack_max_s: acks.iter().copied().reduce(f64::max),
                resolve_median_s: median(&resolves),
                resolve_mean_s: mean(&resolves),
            }
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
    groups
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len().is_multiple_of(2) {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One device's availability over the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Availability {
    pub device_id: String,
    pub name: Option<String>,
    /// Time the device's statuses said online (or, for a device that sends no status, time
    /// covered by fixes no further apart than the gap limit), in ms.
    #[ts(type = "number")]
    pub online_ms: i64,
    /// Online share of the range, 0..1.
    pub online_share: f64,
    pub fixes: u32,
    /// Silences longer than the gap limit: between fixes, and from the range's start to the
    /// first fix and from the last to its end (all of it, for a device with none).
    pub gaps: u32,
    #[ts(type = "number")]
    pub longest_gap_ms: i64,
}

/// Availability of every device over `from_ms <= t < to_ms`.
pub fn availability(
    conn: &Connection,
    devices: &[DeviceMeta],
    from_ms: i64,
    to_ms: i64,
    max_gap_ms: i64,
) -> rusqlite::Result<Vec<Availability>> {
    let span = (to_ms - from_ms).max(1);
    let mut fixes = conn.prepare_cached(
        "SELECT ts_ms FROM positions WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
         ORDER BY ts_ms",
    )?;
    let mut before = conn.prepare_cached(
        "SELECT online FROM statuses WHERE device_id = ?1 AND ts_ms < ?2
         ORDER BY ts_ms DESC, online DESC LIMIT 1",
    )?;
    let mut changes = conn.prepare_cached(
        "SELECT ts_ms, online FROM statuses WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3
         ORDER BY ts_ms, online",
    )?;
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let (mut n, mut gaps, mut longest, mut covered) = (0u32, 0u32, 0i64, 0i64);
        let mut prev: Option<i64> = None;
        let mut silence = |dt: i64| {
            if dt > max_gap_ms {
                gaps += 1;
                longest = longest.max(dt);
            }
        };
        for t in fixes.query_map((&d.id, from_ms, to_ms), |r| r.get::<_, i64>(0))? {
            let t = t?;
            n += 1;
            let dt = t - prev.unwrap_or(from_ms);
            silence(dt);
            if prev.is_some() && dt <= max_gap_ms {
                covered += dt;
            }
            prev = Some(t);
        }
        // A device that stopped reporting before the end (or never reported) was silent till
        // then.
        silence(to_ms - prev.unwrap_or(from_ms));
        let initially: Option<bool> = before
            .query_row((&d.id, from_ms), |r| Ok(r.get::<_, i64>(0)? != 0))
            .ok();
        let transitions: Vec<(i64, bool)> = changes
            .query_map((&d.id, from_ms, to_ms), |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let online_ms = if initially.is_none() && transitions.is_empty() {
            covered
        } else {
            let mut on = initially.unwrap_or(false);
            let mut since = from_ms;
            let mut total = 0;
            for (t, online) in transitions {
                if on {
                    total += t - since;
                }
                (on, since) = (online, t);
            }
            if on {
                total += to_ms - since;
            }
            total
        };
        out.push(Availability {
            device_id: d.id.clone(),
            name: d.name.clone(),
            online_ms,
            online_share: online_ms as f64 / span as f64,
            fixes: n,
            gaps,
            longest_gap_ms: longest,
        });
    }
    Ok(out)
}

/// A printable page: a title, one bar chart per series, one table.
pub struct Page<'a> {
    pub title: &'a str,
    pub subtitle: String,
    pub charts: Vec<Chart<'a>>,
    pub header: Vec<&'a str>,
    pub rows: Vec<Vec<String>>,
}

/// A bar chart: one bar per label, values in `unit`.
pub struct Chart<'a> {
    pub title: String,
    pub bars: Vec<(String, f64)>,
    pub unit: &'a str,
}

/// The page as standalone HTML (inline CSS and SVG, no script), laid out for A4.
pub fn html(page: &Page<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font:13px system-ui,sans-serif;margin:24px;color:#111}}\
         h1{{font-size:20px;margin:0}}p.sub{{color:#555;margin:4px 0 16px}}\
         table{{border-collapse:collapse;width:100%;margin-top:16px}}\
         th,td{{border-bottom:1px solid #ccc;padding:3px 6px;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}\
         figure{{margin:12px 0;break-inside:avoid}}figcaption{{font-weight:600}}\
         @page{{size:A4;margin:15mm}}</style></head><body><h1>{t}</h1><p class=\"sub\">{s}</p>",
        t = escape(page.title),
        s = escape(&page.subtitle)
    );
    for c in &page.charts {
        h.push_str(&bar_chart(&c.title, &c.bars, c.unit));
    }
    h.push_str("<table><thead><tr>");
    for c in &page.header {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr></thead><tbody>");
    for row in &page.rows {
        h.push_str("<tr>");
        for cell in row {
            let numeric = cell.parse::<f64>().is_ok();
            let _ = write!(
                h,
                "<td{}>{}</td>",
                if numeric { " class=\"n\"" } else { "" },
                escape(cell)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></body></html>\n");
    h
}

/// A horizontal bar chart in SVG, one bar per label, the value written at its end.
fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    const ROW: usize = 18;
    const LABEL: f64 = 180.0;
    const WIDTH: f64 = 640.0;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let height = bars.len().max(1) * ROW + 4;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\">",
        escape(title)
    );
    for (k, (label, value)) in bars.iter().enumerate() {
        let y = k * ROW;
        let w = if max > 0.0 {
            (value / max) * (WIDTH - LABEL - 90.0)
        } else {
            0.0
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{l}</text>\
             <rect x=\"{LABEL}\" y=\"{ry}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"#3b6fb6\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\" font-size=\"12\">{v} {u}</text>",
            ty = y + 13,
            l = escape(label),
            ry = y + 3,
            bh = ROW - 5,
            vx = LABEL + w + 4.0,
            v = if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            },
            u = escape(unit)
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_times_come_from_the_first_acknowledgement_and_resolution() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO incidents (id, source, kind, severity, title, state, count, first_seen_ms,
                 last_seen_ms, version, updated_ms, updated_by, last_action)
               VALUES ('a', 'v1', 'panic', 'critical', 'P', 'resolved', 1, 0, 0, 3, 0, 'x', 'resolved'),
                      ('b', 'v2', 'panic', 'critical', 'P', 'new', 1, 0, 0, 1, 0, 'x', 'opened'),
                      ('c', 'v3', 'offline', 'medium', 'O', 'assigned', 1, 0, 0, 2, 0, 'x', 'assigned');
             INSERT INTO incident_audit (incident_id, version, at_ms, actor, action, detail, state) VALUES
               ('a', 1, 10000, 'system', 'opened', NULL, 'new'),
               ('a', 2, 40000, 'dana', 'acknowledged', NULL, 'acknowledged'),
               ('a', 3, 130000, 'dana', 'resolved', 'ok', 'resolved'),
               ('b', 1, 20000, 'system', 'opened', NULL, 'new'),
               ('c', 1, 30000, 'system', 'opened', NULL, 'new'),
               ('c', 2, 35000, 'bo', 'note', 'looking', 'new'),
               ('c', 3, 90000, 'bo', 'assigned', 'bo', 'assigned');
             INSERT INTO incidents (id, source, kind, severity, title, state, count, first_seen_ms,
                 last_seen_ms, version, updated_ms, updated_by, last_action)
               VALUES ('b2', 'v2', 'panic', 'critical', 'P', 'resolved', 1, 0, 0, 2, 0, 'system', 'merged');
             INSERT INTO incident_audit (incident_id, version, at_ms, actor, action, detail, state) VALUES
               ('b2', 1, 20001, 'system', 'opened', NULL, 'new'),
               ('b2', 2, 20500, 'system', 'merged', 'merged into b', 'resolved');",
        )
        .unwrap();
        let t = incident_timings(&conn, 0, 100_000).unwrap();
        assert_eq!(t.len(), 3, "the merged duplicate is not counted: {t:?}");
        assert_eq!((t[0].ack_s, t[0].resolve_s), (Some(30.0), Some(120.0)));
        assert_eq!(t[0].acknowledged_by.as_deref(), Some("dana"));
        assert_eq!((t[1].ack_s, t[1].resolve_s), (None, None));
        assert_eq!(t[2].ack_s, Some(60.0), "a note is not a response");
        let g = incident_groups(&t);
        assert_eq!(
            (g[0].kind.as_str(), g[0].count, g[0].acknowledged),
            ("panic", 2, 1)
        );
        assert_eq!(g[0].ack_median_s, Some(30.0));
        assert_eq!(g[1].kind, "offline");
        assert_eq!(incident_timings(&conn, 15_000, 25_000).unwrap().len(), 1);
    }

    #[test]
    fn availability_follows_statuses_and_counts_silences() {
        let conn = crate::review::frame::tests::fixture();
        // A gate that sends statuses only: online from 5000 on.
        conn.execute(
            "INSERT INTO statuses (device_id, ts_ms, online, battery, signal, kind, name,
                 simulated, received_ms) VALUES ('g1', 5000, 1, NULL, NULL, 'sensor', 'Gate', 0, 0)",
            [],
        )
        .unwrap();
        let devices = crate::review::frame::reporting_devices(&conn).unwrap();
        let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["g1", "s1", "v1"]);
        // v1: online from 900, offline at 20000. Over [0, 40000): 19100 ms online. Fixes at
        // 1000 and 11000: silent 10 s between them and 29 s after the last.
        let a = availability(&conn, &devices, 0, 40_000, 5_000).unwrap();
        let v1 = a.iter().find(|d| d.device_id == "v1").unwrap();
        assert_eq!(v1.online_ms, 19_100);
        assert_eq!(v1.fixes, 2);
        assert_eq!((v1.gaps, v1.longest_gap_ms), (2, 29_000));
        let s1 = a.iter().find(|d| d.device_id == "s1").unwrap();
        assert_eq!(s1.online_ms, 40_000 - 1500);
        assert_eq!(
            (s1.gaps, s1.longest_gap_ms),
            (1, 38_000),
            "silent after its one fix"
        );
        let g1 = a.iter().find(|d| d.device_id == "g1").unwrap();
        assert_eq!((g1.online_ms, g1.fixes), (35_000, 0));
        assert_eq!((g1.gaps, g1.longest_gap_ms), (1, 40_000), "no fix at all");
        // A range its fixes fill leaves no silence at the edges.
        let inner = availability(&conn, &devices, 1_000, 11_001, 20_000).unwrap();
        let v1 = inner.iter().find(|d| d.device_id == "v1").unwrap();
        assert_eq!((v1.gaps, v1.longest_gap_ms), (0, 0));
    }

    #[test]
    fn the_page_escapes_what_devices_named_and_draws_one_bar_per_row() {
        let page = Page {
            title: "Incidents",
            subtitle: "from <a> to <b>".into(),
            charts: vec![Chart {
                title: "By type".into(),
                bars: vec![("<script>".into(), 3.0), ("offline".into(), 1.0)],
                unit: "incidents",
            }],
            header: vec!["type", "count"],
            rows: vec![vec!["<b>x</b>".into(), "3".into()]],
        };
        let h = html(&page);
        assert!(!h.contains("<script>"));
        assert!(h.contains("&lt;script&gt;"));
        assert_eq!(h.matches("<rect").count(), 2);
        assert!(h.contains("<td class=\"n\">3</td>"));
    }
}
