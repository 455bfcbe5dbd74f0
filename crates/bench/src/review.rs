//! Review at size: `gen-history` writes a month of a fleet into a history file (in arrival
//! order, as the recorder would), `review` measures what a reviewer waits for on it: opening
//! and the first frame, scrubbing, one device's 24-hour track, the incident list at an instant
//! and the reports.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng};
use watchfloor_core::review::{self, frame::FrameParams, trips::TripParams, ReviewFile};
use watchfloor_core::store;

/// Writes `devices` devices reporting every `interval_s` for `days` days, ending now, plus
/// statuses every 10 minutes, an event per device per day and an incident with its audit
/// trail (opened, acknowledged, resolved) for one event in `incident_every`.
pub fn generate(
    out: &Path,
    devices: u32,
    days: u32,
    interval_s: u32,
    seed: u64,
    incident_every: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(incident_every > 0, "--incident-every must be at least 1");
    if out.exists() {
        anyhow::bail!("{} exists; remove it first", out.display());
    }
    let started = Instant::now();
    let mut conn = store::open(out)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let step_ms = i64::from(interval_s) * 1000;
    let end = watchfloor_core::clock::now_ms() / step_ms * step_ms;
    let start = end - i64::from(days) * 86_400_000;
    // Each device wanders around Rotterdam: a heading that drifts, a speed that changes, a
    // parked spell now and then.
    let mut state: Vec<(f64, f64, f64, f64)> = (0..devices)
        .map(|_| {
            (
                51.92 + rng.random_range(-0.05..0.05),
                4.47 + rng.random_range(-0.08..0.08),
                rng.random_range(0.0..360.0),
                0.0,
            )
        })
        .collect();
    let mut rows = 0u64;
    let mut t = start;
    let mut event_no = 0u64;
    while t < end {
        let tx = conn.transaction()?;
        {
            let mut pos = tx.prepare_cached(store::positions::INSERT)?;
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO statuses (device_id, ts_ms, online, battery, signal, kind,
                    name, simulated, received_ms) VALUES (?1, ?2, 1, ?3, ?4, 'vehicle', ?5, 1, ?2)",
            )?;
            let mut ev = tx.prepare_cached(
                "INSERT INTO events (device_id, event_id, ts_ms, type, severity, message, lat, lon,
                    received_ms) VALUES (?1, ?2, ?3, 'panic', 'high', 'generated', ?4, ?5, ?3)",
            )?;
            let mut inc = tx.prepare_cached(
                "INSERT INTO incidents (id, source, kind, severity, title, state, assignee,
                    resolution, count, first_seen_ms, last_seen_ms, lat, lon, version, updated_ms,
                    updated_by, last_action, last_detail)
                 VALUES (?1, ?2, 'panic', 'high', 'Panic (generated)', 'resolved', 'dana', 'ok', 1,
                    ?3, ?3, ?4, ?5, 3, ?6, 'dana', 'resolved', 'ok')",
            )?;
            let mut audit = tx.prepare_cached(store::incidents::INSERT_AUDIT)?;
            // One hour of reports per transaction.
            let until = (t + 3_600_000).min(end);
            while t < until {
                for (k, s) in state.iter_mut().enumerate() {
                    let id = format!("gen-{k:04}");
                    if rng.random_bool(0.01) {
                        s.3 = if s.3 > 0.0 {
                            0.0
                        } else {
                            rng.random_range(3.0..25.0)
                        };
                    }
                    s.2 = (s.2 + rng.random_range(-20.0..20.0)).rem_euclid(360.0);
                    let d = s.3 * f64::from(interval_s);
                    s.0 += d * s.2.to_radians().cos() / 111_200.0;
                    s.1 += d * s.2.to_radians().sin() / (111_200.0 * s.0.to_radians().cos());
                    // Stay in the region: outside it, head back to its centre.
                    if (s.0 - 51.92).abs() > 0.15 || (s.1 - 4.47).abs() > 0.25 {
                        s.2 = (4.47 - s.1)
                            .atan2(51.92 - s.0)
                            .to_degrees()
                            .rem_euclid(360.0);
                    }
                    pos.execute(rusqlite::params![
                        id,
                        t,
                        s.0,
                        s.1,
                        None::<f64>,
                        s.2,
                        s.3,
                        5.0,
                        t + 40
                    ])?;
                    rows += 1;
                    if t % 600_000 == 0 {
                        let battery =
                            100.0 - ((t - start) % 86_400_000) as f64 / 86_400_000.0 * 80.0;
                        st.execute(rusqlite::params![
                            id,
                            t,
                            battery,
                            -70.0,
                            format!("Unit {k}")
                        ])?;
                    }
                    if rng.random_bool(1.0 / (86_400.0 / f64::from(interval_s))) {
                        event_no += 1;
                        let eid = format!("e{event_no}");
                        ev.execute(rusqlite::params![id, eid, t, s.0, s.1])?;
                        if event_no.is_multiple_of(incident_every) {
                            let iid = format!("gen-inc-{event_no}");
                            let ack = t + rng.random_range(5_000..300_000);
                            let done = ack + rng.random_range(60_000..3_600_000);
                            inc.execute(rusqlite::params![iid, id, t, s.0, s.1, done])?;
                            for (v, at, actor, action, state) in [
                                (1, t, "system", "opened", "new"),
                                (2, ack, "dana", "acknowledged", "acknowledged"),
                                (3, done, "dana", "resolved", "resolved"),
                            ] {
                                audit.execute(rusqlite::params![
                                    iid,
                                    v,
                                    at,
                                    actor,
                                    action,
                                    None::<String>,
                                    state
                                ])?;
                            }
                        }
                    }
                }
                t += step_ms;
            }
        }
        tx.commit()?;
    }
    drop(conn);
    let size = std::fs::metadata(out)?.len();
    println!(
        "wrote {rows} positions, {event_no} events, {} incidents for {devices} devices over {days} days to {} ({:.0} MiB) in {:.0} s",
        event_no / incident_every,
        out.display(),
        size as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Times what a reviewer waits for on `db` (opened read-only, as the console does).
pub fn measure(db: &Path, scrubs: usize) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let file = ReviewFile::open(db).context("opening for review")?;
    let opened = t0.elapsed();
    let span =
        review::timeline::span(file.conn(), file.devices())?.context("the file holds nothing")?;
    let first = review::frame::frame_at(
        file.conn(),
        file.devices(),
        span.from_ms,
        FrameParams::default(),
    )?;
    let first_frame = t0.elapsed();

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut frames = Vec::with_capacity(scrubs);
    let mut drawn = 0;
    for _ in 0..scrubs {
        let at = rng.random_range(span.from_ms..=span.to_ms);
        let t = Instant::now();
        drawn =
            review::frame::frame_at(file.conn(), file.devices(), at, FrameParams::default())?.len();
        frames.push(t.elapsed());
    }
    frames.sort();
    let pct = |p: f64| frames[((frames.len() - 1) as f64 * p) as usize];

    let device = &file.devices()[file.devices().len() / 2].id;
    let day_from = span.to_ms - 86_400_000;
    let t = Instant::now();
    let track = review::trips::track(&file, device, day_from, span.to_ms, TripParams::default())?;
    let track_time = t.elapsed();
    // Another device's day: the slice readers opened by the first track are kept.
    let other = &file.devices()[file.devices().len() / 3].id;
    let t = Instant::now();
    let other_track =
        review::trips::track(&file, other, day_from, span.to_ms, TripParams::default())?;
    let other_track_time = t.elapsed();

    // The first list reads every audit trail; later ones read what was added since (nothing,
    // here) and fold the trails in memory.
    let t = Instant::now();
    let incidents = file.incidents_at(span.to_ms)?;
    let incidents_time = t.elapsed();
    let t = Instant::now();
    file.incidents_at(span.to_ms)?;
    let incidents_again = t.elapsed();
    let mut lists = Vec::with_capacity(scrubs);
    let mut shown_max = 0;
    for _ in 0..scrubs {
        let at = rng.random_range(span.from_ms..=span.to_ms);
        let t = Instant::now();
        shown_max = shown_max.max(file.incidents_at(at)?.shown.len());
        lists.push(t.elapsed());
    }
    lists.sort();
    let list_pct = |p: f64| lists[((lists.len() - 1) as f64 * p) as usize];

    let t = Instant::now();
    let timings = review::report::incident_timings(file.conn(), span.from_ms, span.to_ms + 1)?;
    let report_time = t.elapsed();

    let t = Instant::now();
    let avail = review::report::availability(
        file.conn(),
        file.devices(),
        span.to_ms - 86_400_000,
        span.to_ms,
        300_000,
    )?;
    let avail_time = t.elapsed();

    println!(
        "file: {} ({:.0} MiB, {} devices)",
        db.display(),
        std::fs::metadata(db)?.len() as f64 / 1_048_576.0,
        file.devices().len()
    );
    println!();
    println!("| what | time |");
    println!("|---|---|");
    println!("| open (read-only, device list) | {} |", ms(opened));
    println!(
        "| open + span + first frame ({} devices) | {} |",
        first.len(),
        ms(first_frame)
    );
    println!("| scrub: one frame at a random instant ({drawn} devices), p50 / p99 / max of {scrubs} | {} / {} / {} |", ms(pct(0.5)), ms(pct(0.99)), ms(*frames.last().expect("scrubs > 0")));
    println!(
        "| one device's 24-hour track ({} fixes, {} stops) with trip totals | {} |",
        track.points.len(),
        track.summary.stops.len(),
        ms(track_time)
    );
    println!(
        "| another device's 24-hour track ({} fixes), readers kept | {} |",
        other_track.points.len(),
        ms(other_track_time)
    );
    println!(
        "| incident list at the last instant, first read ({} listed, {} resolved earlier) | {} |",
        incidents.shown.len(),
        incidents.resolved_earlier,
        ms(incidents_time)
    );
    println!(
        "| the same list again (trails held) | {} |",
        ms(incidents_again)
    );
    println!(
        "| incident list at a random instant, p50 / p99 / max of {} (at most {shown_max} listed) | {} / {} / {} |",
        lists.len(),
        ms(list_pct(0.5)),
        ms(list_pct(0.99)),
        ms(list_pct(1.0))
    );
    println!(
        "| incident response-time report, whole span ({} incidents) | {} |",
        timings.len(),
        ms(report_time)
    );
    println!(
        "| availability report, last 24 h, every device ({}) | {} |",
        avail.len(),
        ms(avail_time)
    );
    Ok(())
}
