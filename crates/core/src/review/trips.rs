//! A device's track over a range, with its stops and trip totals, and the battery series the
//! chart beside the map draws.
//!
//! A stop is a stretch of at least `min_stop_ms` during which every fix stays within
//! `stop_radius_m` of where the stretch began (GPS jitter of a parked vehicle does not count as
//! driving), but for one fix at a time that jumps out and back (a glitch); a gap between two
//! fixes of a stop is part of it, however long (a tracker reporting rarely while parked).
//! Another gap between fixes longer than `max_gap_ms` is neither moving nor stopped: the device
//! was silent, and its time is reported apart.

use serde::Serialize;
use ts_rs::TS;

use crate::geo::haversine_m;

/// One fix of the track; `speed` in m/s, as reported or, when the device sent none, derived
/// from the distance to the previous fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TrackPoint {
    #[ts(type = "number")]
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Stop {
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
    pub lat: f64,
    pub lon: f64,
}

/// Trip totals over the range.
#[derive(Debug, Clone, PartialEq, Default, Serialize, TS)]
#[ts(export)]
pub struct TripSummary {
    pub distance_m: f64,
    #[ts(type = "number")]
    pub moving_ms: i64,
    #[ts(type = "number")]
    pub stopped_ms: i64,
    /// Time in gaps longer than `max_gap_ms` (no fixes).
    #[ts(type = "number")]
    pub silent_ms: i64,
    /// m/s.
    pub max_speed: f64,
    /// Distance over moving time, m/s.
    pub avg_speed: f64,
    pub stops: Vec<Stop>,
}

#[derive(Debug, Clone, Copy, serde::Deserialize, TS)]
#[ts(export)]
pub struct TripParams {
    #[ts(type = "number")]
    pub min_stop_ms: i64,
    pub stop_radius_m: f64,
    #[ts(type = "number")]
    pub max_gap_ms: i64,
}

impl Default for TripParams {
    fn default() -> Self {
        Self {
            min_stop_ms: 180_000,
            stop_radius_m: 50.0,
            max_gap_ms: 300_000,
        }
    }
}

/// Most points of a track (and of its battery series) sent to the window: the line on the map
/// and the chart hold a few thousand points well; a month at 1 Hz is 2.6 million.
pub const MAX_TRACK_POINTS: usize = 5_000;

/// A device's track with its analysis.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Track {
    pub device_id: String,
    /// The fixes to draw: every one, or evenly spread ones (the first and the last among them)
    /// when there are more than [`MAX_TRACK_POINTS`].
    pub points: Vec<TrackPoint>,
    /// How many fixes the range holds (the summary is of all of them).
    pub fixes: u32,
    pub summary: TripSummary,
    /// `[ts_ms, battery %]` from the device's statuses over the range.
    #[ts(type = "Array<[number, number]>")]
    pub battery: Vec<(i64, f64)>,
}

/// Loads `device`'s fixes with `from_ms <= ts < to_ms` and analyses them.
pub fn track(
    file: &super::ReviewFile,
    device: &str,
    from_ms: i64,
    to_ms: i64,
    p: TripParams,
) -> rusqlite::Result<Track> {
    let rows = file.track_rows(device, from_ms, to_ms)?;
    let mut points: Vec<TrackPoint> = Vec::with_capacity(rows.len());
    for r in rows {
        // A fix without speed moves at the pace of its fixes, measured as live state measures
        // it: from the newest fix at least ESTIMATE_SPAN_MS older (else the one before), with
        // jitter under 10 m read as standing and jumps over 360 km/h as none. Between adjacent
        // fixes, a 60 m jump in a second read as 216 km/h: the trip's top speed, red segments,
        // and a chart flattened under it.
        let derived = r.speed.is_none().then(|| {
            let span_start =
                points.partition_point(|p| p.ts_ms <= r.ts_ms - crate::live::ESTIMATE_SPAN_MS);
            let from = span_start.checked_sub(1).or(points.len().checked_sub(1))?;
            let from = &points[from];
            crate::live::motion_between(
                (from.ts_ms, from.lat, from.lon),
                (r.ts_ms, r.lat, r.lon),
                r.accuracy,
            )
            .map(|(speed, _)| speed)
        });
        points.push(TrackPoint {
            ts_ms: r.ts_ms,
            lat: r.lat,
            lon: r.lon,
            speed: r.speed.or(derived.flatten()),
        });
    }
    let mut battery = file.conn().prepare_cached(
        "SELECT ts_ms, battery FROM statuses
         WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND battery IS NOT NULL
         ORDER BY ts_ms",
    )?;
    let battery = battery
        .query_map((device, from_ms, to_ms), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Track {
        device_id: device.to_owned(),
        summary: analyse(&points, p),
        fixes: u32::try_from(points.len()).unwrap_or(u32::MAX),
        points: thin(points, MAX_TRACK_POINTS),
        battery: thin(battery, MAX_TRACK_POINTS),
    })
}

/// At most `max` (at least 2) of `items`, evenly spread, the first and the last kept.
fn thin<T>(items: Vec<T>, max: usize) -> Vec<T> {
    let n = items.len();
    if n <= max {
        return items;
    }
    let max = max.max(2);
    // The k-th kept item is the one at k * (n - 1) / (max - 1): 0 first, n - 1 last.
    let mut next = 0;
    let mut k = 0;
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            (i == next).then(|| {
                k += 1;
                next = k * (n - 1) / (max - 1);
                item
            })
        })
        .collect()
}

/// Distance, moving and stopped time, speeds and stops of a time-ordered track.
pub fn analyse(points: &[TrackPoint], p: TripParams) -> TripSummary {
    let mut s = TripSummary::default();
    let mut i = 0;
    while i + 1 < points.len() {
        // Does a stop start here? Extend while every fix stays near points[i]: one fix that
        // jumps out and back (a GPS glitch) does not end it, and a gap between two fixes in
        // the same place is part of it (a tracker reporting every 10 minutes while parked was
        // "silent" all night, with no stop listed).
        let anchor = points[i];
        let near = |k: usize| {
            haversine_m(anchor.lat, anchor.lon, points[k].lat, points[k].lon) <= p.stop_radius_m
        };
        let mut j = i;
        loop {
            if j + 1 < points.len() && near(j + 1) {
                j += 1;
            } else if j + 2 < points.len()
                && near(j + 2)
                && points[j + 2].ts_ms - points[j].ts_ms <= p.max_gap_ms
            {
                j += 2;
            } else {
                break;
            }
        }
        if j > i && points[j].ts_ms - anchor.ts_ms >= p.min_stop_ms {
            s.stopped_ms += points[j].ts_ms - anchor.ts_ms;
            s.stops.push(Stop {
                from_ms: anchor.ts_ms,
                to_ms: points[j].ts_ms,
                lat: anchor.lat,
                lon: anchor.lon,
            });
            i = j;
            continue;
        }
        let (a, b) = (points[i], points[i + 1]);
        let dt = b.ts_ms - a.ts_ms;
        if dt > p.max_gap_ms {
            s.silent_ms += dt;
        } else {
            s.moving_ms += dt;
            s.distance_m += haversine_m(a.lat, a.lon, b.lat, b.lon);
        }
        i += 1;
    }
    s.max_speed = points
        .iter()
        .filter_map(|p| p.speed)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    s.avg_speed = if s.moving_ms > 0 {
        s.distance_m / (s.moving_ms as f64 / 1000.0)
    } else {
        0.0
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(ts_s: i64, lat: f64, lon: f64) -> TrackPoint {
        TrackPoint {
            ts_ms: ts_s * 1000,
            lat,
            lon,
            speed: None,
        }
    }

    #[test]
    fn a_long_track_is_thinned_evenly_keeping_both_ends() {
        let pts: Vec<i64> = (0..12_345).collect();
        let kept = thin(pts.clone(), MAX_TRACK_POINTS);
        assert_eq!(kept.len(), MAX_TRACK_POINTS);
        assert_eq!((kept[0], *kept.last().unwrap()), (0, 12_344));
        assert!(kept.windows(2).all(|w| (2..=3).contains(&(w[1] - w[0]))));
        assert_eq!(
            thin(pts[..10].to_vec(), MAX_TRACK_POINTS).len(),
            10,
            "short: all"
        );
    }

    #[test]
    fn speeds_derived_for_a_track_ride_over_a_position_jump() {
        // A parked tracker at 1 Hz, without speeds, whose fix jumps 60 m for one second.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        {
            let conn = crate::store::open(&db).unwrap();
            for t in 0..=20i64 {
                let lat = if t == 10 {
                    51.0 + 60.0 / 111_195.0
                } else {
                    51.0
                };
                conn.execute(
                    "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms)
                     VALUES ('p', ?1, ?2, 4.0, 0)",
                    (t * 1000, lat),
                )
                .unwrap();
            }
            // Then it drives north at 15 m/s, one fix a second.
            for t in 21..=60i64 {
                let lat = 51.0 + (t - 20) as f64 * 15.0 / 111_195.0;
                conn.execute(
                    "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms)
                     VALUES ('p', ?1, ?2, 4.0, 0)",
                    (t * 1000, lat),
                )
                .unwrap();
            }
        }
        let file = crate::review::ReviewFile::open(&db).unwrap();
        let t = track(&file, "p", 0, 61_000, TripParams::default()).unwrap();
        // Between adjacent fixes the jump read 60 m/s (216 km/h); over the 10 s span, 6.
        let jump = t.points.iter().find(|p| p.ts_ms == 10_000).unwrap();
        assert!(jump.speed.unwrap() < 6.1, "{jump:?}");
        assert!(
            (t.summary.max_speed - 15.0).abs() < 0.1,
            "the drive sets the top speed: {}",
            t.summary.max_speed
        );
    }

    #[test]
    fn drive_park_drive_gives_one_stop_and_the_totals() {
        // 0.001 deg of latitude is ~111 m. Drive 10 fixes 10 s apart (1 km at ~11 m/s), park
        // for 5 minutes with 5 m of jitter, drive again, then go silent for 10 minutes and
        // come back somewhere else.
        let mut pts = Vec::new();
        for k in 0..=9 {
            pts.push(pt(k * 10, 51.0 + 0.001 * k as f64, 4.0));
        }
        let park = 51.009;
        for k in 1..=30 {
            let jitter = if k % 2 == 0 { 0.00004 } else { 0.0 };
            pts.push(pt(90 + k * 10, park + jitter, 4.0));
        }
        for k in 1..=5 {
            pts.push(pt(390 + k * 10, park + 0.001 * k as f64, 4.0));
        }
        // Heard again 10 minutes later, elsewhere (in the same place it would be a stop).
        pts.push(pt(440 + 600, park + 0.008, 4.0));
        let s = analyse(&pts, TripParams::default());
        assert_eq!(s.stops.len(), 1, "{:?}", s.stops);
        assert_eq!((s.stops[0].from_ms, s.stops[0].to_ms), (90_000, 390_000));
        assert_eq!(s.stopped_ms, 300_000);
        assert_eq!(s.moving_ms, 90_000 + 50_000);
        assert_eq!(s.silent_ms, 600_000);
        // 9 + 5 legs of ~111 m.
        assert!(
            (s.distance_m - 14.0 * 111.2).abs() < 5.0,
            "{}",
            s.distance_m
        );
        assert!((s.avg_speed - s.distance_m / 140.0).abs() < 1e-9);
    }

    #[test]
    fn one_glitch_does_not_split_a_stop_and_a_parked_tracker_s_gaps_are_part_of_it() {
        // Parked 10 minutes at 1 fix / 10 s; one fix 80 m off at 300 s (a GPS glitch).
        let mut pts: Vec<TrackPoint> = (0..=60).map(|k| pt(k * 10, 51.0, 4.0)).collect();
        pts[30].lat += 80.0 / 111_195.0;
        let s = analyse(&pts, TripParams::default());
        assert_eq!(s.stops.len(), 1, "{:?}", s.stops);
        assert_eq!((s.stopped_ms, s.distance_m), (600_000, 0.0));
        // Overnight: a fix every 10 minutes (gaps over the 5-minute limit) in the same place.
        let night: Vec<TrackPoint> = (0..=48).map(|k| pt(k * 600, 51.0, 4.0)).collect();
        let s = analyse(&night, TripParams::default());
        assert_eq!(
            (s.stops.len(), s.stopped_ms, s.silent_ms),
            (1, 48 * 600_000, 0)
        );
        // A gap between two places is still silence.
        let away = [pt(0, 51.0, 4.0), pt(900, 51.01, 4.0)];
        assert_eq!(analyse(&away, TripParams::default()).silent_ms, 900_000);
    }

    #[test]
    fn a_short_halt_is_not_a_stop_and_reported_speed_wins_for_the_maximum() {
        let mut pts = vec![pt(0, 51.0, 4.0), pt(60, 51.0, 4.0), pt(70, 51.001, 4.0)];
        pts[2].speed = Some(30.0);
        let s = analyse(&pts, TripParams::default());
        assert!(s.stops.is_empty());
        assert_eq!(s.moving_ms, 70_000);
        assert_eq!(s.max_speed, 30.0);
        assert_eq!(analyse(&[], TripParams::default()), TripSummary::default());
    }
}
