//! Every device where it was at one instant: the fix before and the fix after, interpolated
//! when they are close enough together to say the device went straight from one to the other.
//!
//! Each device costs a few index seeks (`positions_by_device_time`, the statuses' unique key), so
//! a frame of 250 devices over a month of fixes is a few milliseconds whatever the file's size.

use rusqlite::{Connection, OptionalExtension};
use watchfloor_protocol::DeviceKind;

use crate::view::DeviceView;

/// A device known to the file: its id and its last declared name and kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct DeviceMeta {
    pub id: String,
    pub name: Option<String>,
    #[ts(
        type = "\"vehicle\" | \"sensor\" | \"bodycam\" | \"phone\" | \"terminal\" | \"other\" | null"
    )]
    pub kind: Option<&'static str>,
    pub simulated: bool,
    /// The operator's groups the device is in (the reviewing console's `[groups]`).
    pub groups: std::sync::Arc<[String]>,
}

/// How a frame is drawn.
#[derive(Debug, Clone, Copy)]
pub struct FrameParams {
    /// A device whose fix is older than this at the instant is drawn stale.
    pub stale_after_ms: i64,
    /// Fixes further apart than this are not interpolated between (the device was silent).
    pub max_gap_ms: i64,
    /// The zone of the terminals' calendar days (`[face] time_zone`): the attendance report
    /// counts the days a range covers in it.
    pub day_zone: chrono_tz::Tz,
}

impl Default for FrameParams {
    fn default() -> Self {
        Self {
            stale_after_ms: 120_000,
            max_gap_ms: 120_000,
            day_zone: chrono_tz::UTC,
        }
    }
}

/// Every device with a fix, with its newest name and kind from `statuses`.
pub fn device_meta(conn: &Connection) -> rusqlite::Result<Vec<DeviceMeta>> {
    meta_of(conn, ids_in(conn, Table::Positions)?)
}

/// Every device with a fix or a status (a sensor may send statuses only), for the
/// availability report.
pub fn reporting_devices(conn: &Connection) -> rusqlite::Result<Vec<DeviceMeta>> {
    let mut ids = ids_in(conn, Table::Positions)?;
    ids.extend(ids_in(conn, Table::Statuses)?);
    ids.sort();
    ids.dedup();
    meta_of(conn, ids)
}

/// The tables whose rows name a device first in an index.
#[derive(Clone, Copy)]
enum Table {
    Positions,
    Statuses,
}

/// The device ids in `table`, found by skipping through its index (one seek per device rather
/// than a scan of every row), in order.
fn ids_in(conn: &Connection, table: Table) -> rusqlite::Result<Vec<String>> {
    let table = match table {
        Table::Positions => "positions",
        Table::Statuses => "statuses",
    };
    let mut ids = conn.prepare(&format!(
        "WITH RECURSIVE d(id) AS (
             SELECT min(device_id) FROM {table}
             UNION ALL
             SELECT (SELECT min(device_id) FROM {table} WHERE device_id > d.id) FROM d
             WHERE d.id IS NOT NULL)
         SELECT id FROM d WHERE id IS NOT NULL"
    ))?;
    let ids = ids.query_map([], |r| r.get(0))?.collect();
    ids
}

/// `ids` with each one's newest name and kind from `statuses`.
fn meta_of(conn: &Connection, ids: Vec<String>) -> rusqlite::Result<Vec<DeviceMeta>> {
    let mut meta = conn.prepare(
        "SELECT name, kind, simulated FROM statuses WHERE device_id = ?1 AND kind IS NOT NULL
         ORDER BY ts_ms DESC LIMIT 1",
    )?;
    ids.into_iter()
        .map(|id| {
            let (name, kind, simulated) = meta
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)? != 0,
                    ))
                })
                .optional()?
                .unwrap_or((None, None, false));
            Ok(DeviceMeta {
                id,
                name,
                kind: kind.map(|k| DeviceKind::from_wire(&k).as_str()),
                simulated,
                groups: std::sync::Arc::new([]),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Fix {
    ts_ms: i64,
    lat: f64,
    lon: f64,
    heading: Option<f64>,
    speed: Option<f64>,
    accuracy: Option<f64>,
}

/// Where each of `devices` was at `at_ms`: one with no fix by then but a status is there with
/// no place (lat and lon `None`); one heard from neither way by then is left out. (The review
/// window asks for the devices with fixes; `review --at` for every reporting device.)
pub fn frame_at(
    conn: &Connection,
    devices: &[DeviceMeta],
    at_ms: i64,
    p: FrameParams,
) -> rusqlite::Result<Vec<DeviceView>> {
    let mut before = conn.prepare_cached(
        "SELECT ts_ms, lat, lon, heading, speed, accuracy FROM positions
         WHERE device_id = ?1 AND ts_ms <= ?2 ORDER BY ts_ms DESC, id DESC LIMIT 1",
    )?;
    let mut after = conn.prepare_cached(
        "SELECT ts_ms, lat, lon, heading, speed, accuracy FROM positions
         WHERE device_id = ?1 AND ts_ms > ?2 ORDER BY ts_ms, id LIMIT 1",
    )?;
    let mut status = conn.prepare_cached(
        "SELECT online, battery, signal, ts_ms FROM statuses
         WHERE device_id = ?1 AND ts_ms <= ?2 ORDER BY ts_ms DESC, online DESC LIMIT 1",
    )?;
    let fix = |r: &rusqlite::Row<'_>| {
        Ok(Fix {
            ts_ms: r.get(0)?,
            lat: r.get(1)?,
            lon: r.get(2)?,
            heading: r.get(3)?,
            speed: r.get(4)?,
            accuracy: r.get(5)?,
        })
    };
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let (online, battery, signal, status_ts) = status
            .query_row((&d.id, at_ms), |r| {
                Ok((
                    Some(r.get::<_, i64>(0)? != 0),
                    r.get::<_, Option<f64>>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    Some(r.get::<_, i64>(3)?),
                ))
            })
            .optional()?
            .unwrap_or((None, None, None, None));
        let Some(prev) = before.query_row((&d.id, at_ms), fix).optional()? else {
            // No fix by then, but a status (a sensor or a face terminal that sends no
            // position, or a vehicle before its first fix): it is there, online or not, with
            // no place. A device not heard from by then is not.
            if let (Some(online), Some(said_ms)) = (online, status_ts) {
                out.push(unplaced(d, online, battery, signal, said_ms, at_ms, p));
            }
            continue;
        };
        let next = after.query_row((&d.id, at_ms), fix).optional()?;
        let next = next.filter(|n| n.ts_ms - prev.ts_ms <= p.max_gap_ms);
        let mut here = match &next {
            Some(n) => interpolate(&prev, n, at_ms),
            None => prev,
        };
        // A device that sent no speed moves at the pace of its fixes, as live state estimates
        // it: to the fix after the instant (or the one before, when none follows) from the
        // newest fix at least ESTIMATE_SPAN_MS older, so a 1 Hz device's few metres between
        // adjacent fixes are not taken for standing still.
        let estimate = match here.speed {
            Some(_) => None,
            None => {
                let end = next.unwrap_or(prev);
                let from_ms = prev.ts_ms.min(end.ts_ms - crate::live::ESTIMATE_SPAN_MS);
                let start = if from_ms == prev.ts_ms {
                    Some(prev)
                } else {
                    before.query_row((&d.id, from_ms), fix).optional()?
                };
                start.and_then(|s| {
                    crate::live::motion_between(
                        (s.ts_ms, s.lat, s.lon),
                        (end.ts_ms, end.lat, end.lon),
                        end.accuracy,
                    )
                })
            }
        };
        if let Some((speed, heading)) = estimate {
            here.speed = Some(speed);
            here.heading = here.heading.or(heading);
        }
        // Silent since the newest thing it said, fix or status, as the live console counts it
        // (stale in `unplaced` from it): a parked vehicle sending only heartbeats was amber all
        // night.
        let last_seen_ms = prev.ts_ms.max(status_ts.unwrap_or(i64::MIN));
        // Without a status a device is online, as live state shows one that has sent locations
        // but never a status: then stale once its fixes stop (it used to go offline instead,
        // grey where the live console had shown it amber).
        let online = online.unwrap_or(true);
        out.push(DeviceView {
            // Its last fix older than the stale limit while it still reported (statuses): as
            // the live console draws it, not moving.
            fix_old: online && at_ms - prev.ts_ms > p.stale_after_ms,
            lat: Some(here.lat),
            lon: Some(here.lon),
            heading: here.heading,
            speed: here.speed,
            speed_estimated: estimate.is_some(),
            fix_ts_ms: Some(prev.ts_ms),
            ..unplaced(d, online, battery, signal, last_seen_ms, at_ms, p)
        });
    }
    Ok(out)
}

/// Device `d` as a frame shows it at `at_ms` with no place: what it said last (`online`,
/// `battery`, `signal`, heard at `last_seen_ms`), stale when that is older than the limit. The
/// frame of a device with a fix fills in its place on top of this. Review orders fixes by
/// device time; it has no receipt order to judge clocks by (`clock_behind` false).
fn unplaced(
    d: &DeviceMeta,
    online: bool,
    battery: Option<f64>,
    signal: Option<f64>,
    last_seen_ms: i64,
    at_ms: i64,
    p: FrameParams,
) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        name: d.name.clone(),
        kind: d.kind,
        simulated: d.simulated,
        online,
        stale: online && at_ms - last_seen_ms > p.stale_after_ms,
        clock_behind: false,
        fix_old: false,
        lat: None,
        lon: None,
        heading: None,
        speed: None,
        speed_estimated: false,
        battery,
        signal,
        fix_ts_ms: None,
        last_seen_ms,
        groups: std::sync::Arc::clone(&d.groups),
    }
}

/// The point on the straight line between two fixes at `at_ms`, heading and speed from the
/// nearer fix.
fn interpolate(a: &Fix, b: &Fix, at_ms: i64) -> Fix {
    let span = (b.ts_ms - a.ts_ms) as f64;
    let f = if span > 0.0 {
        ((at_ms - a.ts_ms) as f64 / span).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let near = if f < 0.5 { a } else { b };
    // The short way round: across the antimeridian (179.9 to -179.9) is 0.2 degrees, not 359.8.
    let dlon = match b.lon - a.lon {
        d if d > 180.0 => d - 360.0,
        d if d < -180.0 => d + 360.0,
        d => d,
    };
    let lon = match a.lon + dlon * f {
        l if l > 180.0 => l - 360.0,
        l if l < -180.0 => l + 360.0,
        l => l,
    };
    Fix {
        ts_ms: at_ms,
        lat: a.lat + (b.lat - a.lat) * f,
        lon,
        heading: near.heading,
        speed: near.speed,
        accuracy: near.accuracy,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn fixture() -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('v1', 1000, 51.0, 4.0, 10.0, 0),
               ('v1', 11000, 51.1, 4.2, 12.0, 0),
               ('v1', 500000, 52.0, 5.0, 0.0, 0),
               ('s1', 2000, 50.0, 3.0, NULL, 0);
             INSERT INTO statuses (device_id, ts_ms, online, battery, signal, kind, name, simulated, received_ms) VALUES
               ('v1', 900, 1, 80.0, -70.0, 'vehicle', 'Van 1', 0, 0),
               ('v1', 20000, 0, NULL, NULL, NULL, NULL, 0, 0),
               ('s1', 1500, 1, 50.0, NULL, 'sensor', 'Gate sensor', 1, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn devices_are_found_with_their_newest_declared_name_and_kind() {
        let conn = fixture();
        let meta = device_meta(&conn).unwrap();
        let ids: Vec<_> = meta.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["s1", "v1"]);
        assert_eq!(meta[1].name.as_deref(), Some("Van 1"));
        assert_eq!(meta[1].kind, Some("vehicle"));
        assert!(meta[0].simulated);
    }

    #[test]
    fn a_frame_interpolates_between_close_fixes_and_marks_silence() {
        let conn = fixture();
        let meta = device_meta(&conn).unwrap();
        let p = FrameParams::default();

        // Before anything: nobody.
        assert!(frame_at(&conn, &meta, 899, p).unwrap().is_empty());
        // v1 said it was online before its first fix: it is there, with no place to draw.
        let early = frame_at(&conn, &meta, 999, p).unwrap();
        assert_eq!(early.len(), 1);
        assert!(early[0].id == "v1" && early[0].online && early[0].lat.is_none());

        // A sensor that sends statuses only is there too, where the devices asked for
        // include it (review --at asks for every reporting device).
        conn.execute(
            "INSERT INTO statuses (device_id, ts_ms, online, battery, signal, kind, name, simulated, received_ms)
             VALUES ('t1', 3000, 1, NULL, NULL, 'terminal', 'Door', 0, 0)",
            [],
        )
        .unwrap();
        let everyone = reporting_devices(&conn).unwrap();
        let f = frame_at(&conn, &everyone, 6000, p).unwrap();
        let t1 = f.iter().find(|d| d.id == "t1").expect("the terminal");
        assert!(t1.online && t1.lat.is_none() && t1.fix_ts_ms.is_none());
        assert_eq!(t1.last_seen_ms, 3000);

        // Halfway between v1's first two fixes.
        let f = frame_at(&conn, &meta, 6000, p).unwrap();
        let v1 = f.iter().find(|d| d.id == "v1").unwrap();
        assert!((v1.lat.unwrap() - 51.05).abs() < 1e-9);
        assert!((v1.lon.unwrap() - 4.1).abs() < 1e-9);
        assert_eq!(v1.fix_ts_ms, Some(1000));
        assert_eq!(v1.battery, Some(80.0));
        assert!(v1.online && !v1.stale);

        // Exactly on a fix: that fix.
        let f = frame_at(&conn, &meta, 11000, p).unwrap();
        let v1 = f.iter().find(|d| d.id == "v1").unwrap();
        assert_eq!((v1.lat, v1.lon), (Some(51.1), Some(4.2)));

        // After its will said offline, with a gap too long to interpolate across.
        let f = frame_at(&conn, &meta, 300_000, p).unwrap();
        let v1 = f.iter().find(|d| d.id == "v1").unwrap();
        assert_eq!((v1.lat, v1.lon), (Some(51.1), Some(4.2)), "held, not slid");
        assert!(!v1.online && !v1.stale);

        // s1 is online (its last status says so) but silent: stale.
        let s1 = f.iter().find(|d| d.id == "s1").unwrap();
        assert!(s1.online && s1.stale);
    }

    #[test]
    fn a_parked_device_still_sending_statuses_is_not_silent() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('p1', 0, 50.0, 4.0, 0.0, 0);
             INSERT INTO statuses (device_id, ts_ms, online, battery, signal, kind, name, simulated, received_ms) VALUES
               ('p1', 0, 1, 90.0, NULL, 'vehicle', NULL, 0, 0),
               ('p1', 600000, 1, 88.0, NULL, NULL, NULL, 0, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let at = |ms| {
            frame_at(&conn, &meta, ms, FrameParams::default())
                .unwrap()
                .remove(0)
        };
        let heartbeat = at(660_000);
        assert!(heartbeat.online && !heartbeat.stale, "{heartbeat:?}");
        assert_eq!(heartbeat.last_seen_ms, 600_000);
        // Its fix is eleven minutes old: not moving, as far as anyone knows (as live shows it).
        assert!(heartbeat.fix_old && !at(60_000).fix_old);
        // Two minutes after its last heartbeat it is.
        assert!(at(721_000).stale);
    }

    #[test]
    fn a_device_that_sent_no_speed_moves_at_the_pace_of_its_fixes() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('w1', 0, 50.0, 4.0, NULL, 0),
               ('w1', 10000, 50.001, 4.0, NULL, 0),
               ('w1', 20000, 50.001, 4.0, NULL, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let p = FrameParams::default();
        let at = |ms| frame_at(&conn, &meta, ms, p).unwrap().remove(0);
        let moving = at(5000);
        assert!((moving.speed.unwrap() - 11.12).abs() < 0.05, "{moving:?}");
        assert!(moving.heading.unwrap() < 0.5, "north: {moving:?}");
        assert!(moving.speed_estimated);
        let parked = at(15000);
        assert_eq!((parked.speed, parked.heading), (Some(0.0), None));
        // After the last fix, as live state saw it then: from the fix 10 s before it.
        let last = at(25000);
        assert_eq!(
            (last.speed, last.speed_estimated),
            (Some(0.0), true),
            "{last:?}"
        );
        // Nothing to measure from: no estimate.
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('lone', 0, 51.0, 4.0, NULL, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let lone = frame_at(&conn, &meta, 5000, p)
            .unwrap()
            .into_iter()
            .find(|d| d.id == "lone")
            .unwrap();
        assert_eq!((lone.speed, lone.speed_estimated), (None, false));
    }

    #[test]
    fn between_two_fixes_across_the_antimeridian_a_device_is_the_short_way_round() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms) VALUES
               ('ship', 0, -17.0, 179.9, 5.0, 0),
               ('ship', 10000, -17.0, -179.7, 5.0, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let at = |ms| {
            frame_at(&conn, &meta, ms, FrameParams::default())
                .unwrap()
                .remove(0)
                .lon
                .unwrap()
        };
        // A quarter of the way: 0.1 degrees east of 179.9 is 180.0 (the same meridian as -180).
        assert!((at(2500).abs() - 180.0).abs() < 1e-9, "{}", at(2500));
        // Three quarters: 0.3 degrees past it, at -179.8 (it used to be near 45 east).
        assert!((at(7500) - -179.8).abs() < 1e-9, "{}", at(7500));
    }

    #[test]
    fn a_device_that_never_sent_a_status_goes_stale_not_offline_as_live_state_shows_it() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms)
             VALUES ('p1', 0, 50.0, 4.0, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let p = FrameParams::default();
        let at = |ms| frame_at(&conn, &meta, ms, p).unwrap().remove(0);
        let fresh = at(1000);
        assert!(fresh.online && !fresh.stale, "{fresh:?}");
        let silent = at(p.stale_after_ms + 1);
        assert!(silent.online && silent.stale, "{silent:?}");
    }

    #[test]
    fn a_parked_phone_with_a_wide_accuracy_is_standing_as_live_state_reads_it() {
        // 30 m of wander over 10 s from a fix that says it is good to 30 m: standing (twice the
        // accuracy is the noise), as live state reads it.
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, accuracy, received_ms) VALUES
               ('ph', 0, 50.0, 4.0, 30.0, 0),
               ('ph', 10000, 50.00027, 4.0, 30.0, 0);",
        )
        .unwrap();
        let meta = device_meta(&conn).unwrap();
        let v = frame_at(&conn, &meta, 5000, FrameParams::default())
            .unwrap()
            .remove(0);
        assert_eq!((v.speed, v.heading), (Some(0.0), None), "{v:?}");
    }

    #[test]
    fn a_slow_device_reporting_every_second_is_not_read_as_standing_still() {
        // 5 m/s (18 km/h) north, one fix a second: 5 m between adjacent fixes, under the 10 m
        // that counts as standing still, but 50 m over the 10 s span live state measures.
        let conn = crate::store::open_in_memory().unwrap();
        for t in 0..=30 {
            conn.execute(
                "INSERT INTO positions (device_id, ts_ms, lat, lon, speed, received_ms)
                 VALUES ('slow', ?1, ?2, 4.0, NULL, 0)",
                (t * 1000, 50.0 + t as f64 * 5.0 / 111_195.0),
            )
            .unwrap();
        }
        let meta = device_meta(&conn).unwrap();
        let p = FrameParams::default();
        let v = frame_at(&conn, &meta, 20_500, p).unwrap().remove(0);
        assert!((v.speed.unwrap() - 5.0).abs() < 0.05, "{v:?}");
        assert!(
            v.heading.unwrap() < 0.5 || v.heading.unwrap() > 359.5,
            "{v:?}"
        );
        assert!(v.speed_estimated);
    }
}
