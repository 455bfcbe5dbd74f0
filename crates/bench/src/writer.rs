//! `writer`: the history writer thread alone, into a fresh file on the local disk. `prune`: the
//! age pruning it does between its batches, with and without open incidents whose evidence it
//! keeps.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use watchfloor_core::link::AckToken;
use watchfloor_core::store::{
    self,
    retention::Retention,
    writer::{Committed, Queued, Record, Writer, MAX_BATCH},
};
use watchfloor_protocol::{DeviceEvent, DeviceId, Fix, Severity};

pub fn writer(rows: u64, events: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let devices: Vec<DeviceId> = (0..1000)
        .map(|n| DeviceId::parse(&format!("bench-{n:05}")))
        .collect::<Result<_, _>>()?;

    // QoS 0 path: positions, no acks, synchronous = NORMAL.
    let writer = Writer::spawn(
        store::open(&dir.path().join("pos.sqlite"))?,
        16_384,
        Box::new(|_| {}),
        Retention::default(),
    )?;
    let stats = writer.stats();
    let tx = writer.sender();
    let started = Instant::now();
    for seq in 0..rows {
        let device = devices[usize::try_from(seq % 1000).unwrap_or(0)].clone();
        let fix = Fix {
            ts_ms: 1_700_000_000_000 + i64::try_from(seq).unwrap_or(0),
            lat: 51.9,
            lon: 4.47,
            alt: None,
            heading: Some(90.0),
            speed: Some(12.0),
            accuracy: Some(5.0),
        };
        let record = Record::Position {
            device,
            fix,
            received_ms: 0,
            maybe_stored: false,
        };
        tx.send(Queued::new(record, None))?;
    }
    drop(tx);
    writer.finish();
    let pos_elapsed = started.elapsed();
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);

    // QoS 1 path: events, each acknowledged after its commit (synchronous = FULL), fed at the
    // pace a broker allows: at most 20 unacknowledged (Mosquitto's default).
    let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let (acked_tx, acked_rx) = std::sync::mpsc::channel::<usize>();
    let on_commit = {
        let (sent_at, latency) = (Arc::clone(&sent_at), Arc::clone(&latency));
        Box::new(move |committed: Committed| {
            let acks = committed.acks;
            let now = Instant::now();
            let sent = sent_at.lock().expect("bench lock");
            let mut h = latency.lock().expect("bench lock");
            for a in &acks {
                let us = now.duration_since(sent[a.epoch as usize]).as_micros();
                let _ = h.record(u64::try_from(us).unwrap_or(u64::MAX));
            }
            let _ = acked_tx.send(acks.len());
        })
    };
    let writer = Writer::spawn(
        store::open(&dir.path().join("evt.sqlite"))?,
        16_384,
        on_commit,
        Retention::default(),
    )?;
    let tx = writer.sender();
    let started = Instant::now();
    let mut in_flight = 0usize;
    for seq in 0..events {
        while in_flight >= 20 {
            in_flight -= acked_rx.recv_timeout(Duration::from_secs(30))?;
        }
        sent_at.lock().expect("bench lock").push(Instant::now());
        let event = DeviceEvent {
            event_id: format!("e{seq}"),
            ts_ms: 1_700_000_000_000,
            event_type: "button".into(),
            severity: Severity::Info,
            message: None,
            position: None,
            stamped_on_arrival: false,
        };
        let record = Record::Event {
            device: devices[usize::try_from(seq % 1000).unwrap_or(0)].clone(),
            event,
            received_ms: 0,
        };
        let ack = Some(AckToken {
            epoch: seq,
            pkid: 1,
        });
        tx.send(Queued::new(record, ack))?;
        in_flight += 1;
    }
    drop(tx);
    writer.finish();
    let evt_elapsed = started.elapsed();
    let h = latency.lock().expect("bench lock");

    println!("| writer (batches of up to {MAX_BATCH}, local disk) | |");
    println!("|---|---|");
    println!(
        "| positions, synchronous=NORMAL | {:.0} rows/s ({rows} rows in {:.2} s, {batches} commits) |",
        rows as f64 / pos_elapsed.as_secs_f64(),
        pos_elapsed.as_secs_f64()
    );
    println!(
        "| events acked after commit, synchronous=FULL, 20 in flight | {:.0} events/s |",
        events as f64 / evt_elapsed.as_secs_f64()
    );
    println!(
        "| queue-to-ack latency, events | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    Ok(())
}

/// Age-prunes a file of `events` device events over 1,000 face terminals, all past the age
/// limit, a chunk at a time, as the writer does. Each terminal's events are nine granted entries
/// to one stranger capture, which carries a 256-byte face image. Three files: no incident; 20
/// resolved incidents on every terminal (what the partial index leaves unread); `open`
/// terminals each with an open stranger-capture incident over all its events (every capture
/// asked whether it is among the newest kept).
pub fn prune(events: u64, open: u64) -> anyhow::Result<()> {
    use watchfloor_core::store::retention::{self, EVIDENCE_KEPT};
    println!("| age pruning, {events} events (a tenth with an image), 1,000 terminals (in memory) | chunks | per chunk p50 / p99 / max | rows/s | kept |");
    println!("|---|---|---|---|---|");
    for (incidents, resolved) in [(0, 0), (0, 20), (open, 0)] {
        let conn = store::open_in_memory()?;
        let devices: Vec<DeviceId> = (0..1000)
            .map(|n| DeviceId::parse(&format!("bench-{n:05}")))
            .collect::<Result<_, _>>()?;
        {
            let tx = conn.unchecked_transaction()?;
            let mut evt = tx.prepare(store::events::INSERT)?;
            let mut img = tx.prepare(store::attendance::INSERT_IMAGE)?;
            for seq in 0..events {
                let device = &devices[usize::try_from(seq % 1000)?];
                let capture = (seq / 1000) % 10 == 9;
                let event = DeviceEvent {
                    event_id: format!("e{seq}"),
                    ts_ms: i64::try_from(seq)?,
                    event_type: if capture {
                        "stranger_capture"
                    } else {
                        "access_granted"
                    }
                    .into(),
                    severity: Severity::High,
                    message: None,
                    position: None,
                    stamped_on_arrival: false,
                };
                store::events::insert(&mut evt, device, &event, 0)?;
                if capture {
                    store::attendance::insert_image(
                        &mut img,
                        device,
                        &event.event_id,
                        &[0u8; 256],
                        0,
                    )?;
                }
            }
            let mut incident = tx.prepare(
                "INSERT INTO incidents (id, source, kind, severity, title, state, count, first_seen_ms,
                     last_seen_ms, version, updated_ms, updated_by, last_action)
                 VALUES (?1 || '#' || ?2, ?1, 'stranger_capture', 'high', 'bench', ?3, 1, ?4, ?5, 1, 0, 'system', 'opened')",
            )?;
            let span = i64::try_from(events)?;
            for (n, device) in devices.iter().enumerate() {
                for r in 0..resolved {
                    let from = span * r / 20;
                    incident.execute((device.as_str(), r, "resolved", from, from + span / 20))?;
                }
                if u64::try_from(n)? < incidents {
                    // From the terminal's first capture (the events take turns by terminal).
                    incident.execute((
                        device.as_str(),
                        "open",
                        "new",
                        i64::try_from(9_000 + n)?,
                        span,
                    ))?;
                }
            }
            drop(incident);
            drop((evt, img));
            tx.commit()?;
        }
        let keep_a_day = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        };
        let mut per_chunk = Histogram::<u64>::new(3)?;
        let mut rows = 0u64;
        // The writer's: one pass, on past the rows each chunk found kept at its head.
        let mut cursor = retention::Cursor::default();
        let started = Instant::now();
        loop {
            let chunk = Instant::now();
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let pruned =
                retention::prune_chunk_from(&conn, &keep_a_day, 10 * 86_400_000, &mut cursor)?;
            conn.execute_batch("COMMIT")?;
            per_chunk.record(u64::try_from(chunk.elapsed().as_micros())?)?;
            rows += pruned.rows;
            if !pruned.more {
                break;
            }
        }
        let elapsed = started.elapsed();
        let kept: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        let ms = |us: u64| us as f64 / 1000.0;
        println!(
            "| {incidents} open incidents (each keeps its first and newest {EVIDENCE_KEPT} captures), {} resolved | {} | {:.1} / {:.1} / {:.1} ms | {:.0} | {kept} events |",
            resolved * 1000,
            per_chunk.len(),
            ms(per_chunk.value_at_quantile(0.5)),
            ms(per_chunk.value_at_quantile(0.99)),
            ms(per_chunk.max()),
            rows as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
