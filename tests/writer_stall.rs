//! The history writer stalled (its file locked by another process) under a flood of positions
//! that fills its queue: the console goes on. Live state still takes fixes and the snapshot a
//! new window asks for still comes; a QoS 1 event that arrives meanwhile waits, unacknowledged,
//! and is stored once the file is free. Before the writer's outbox, the live task waited on the
//! full queue for that event, and with it the map, stale checks and every operator action.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use watchfloor_core::settings::{ConfigFile, Overrides};
use watchfloor_core::{Pipeline, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_never_stops_the_live_console() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let console = console_on(&broker, &db).await;

    // Another process takes the write lock and keeps it: every commit fails.
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    // More QoS 0 positions than the writer's queue holds (16,384), in one mosquitto_pub.
    let port = broker.port;
    let now = now_ms();
    tokio::task::spawn_blocking(move || {
        let mut publisher = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "0", "-l"])
            .args(["-t", "devices/v1/location"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub is installed");
        let mut stdin = publisher.stdin.take().unwrap();
        for i in 0..30_000 {
            let lat = 51.0 + f64::from(i) * 1e-6;
            writeln!(
                stdin,
                r#"{{"ts":{},"lat":{lat},"lon":4.0}}"#,
                now + i64::from(i)
            )
            .unwrap();
        }
        drop(stdin);
        assert!(publisher.wait().unwrap().success());
    })
    .await
    .unwrap();
    // A QoS 1 event: it must wait for the writer, and nothing else may wait with it.
    let event_port = port;
    let published =
        tokio::task::spawn_blocking(move || try_publish_event(event_port, "cam-1", "stalled-1"));
    assert!(published.await.unwrap());
    tokio::task::spawn_blocking(move || {
        let fix = format!(r#"{{"ts":{now},"lat":52.5,"lon":5.5}}"#);
        publish(port, "devices/v2/location", &fix, 0, false);
    })
    .await
    .unwrap();

    // The live side goes on: a snapshot comes back, holding the device that reported last.
    let started = Instant::now();
    loop {
        let snapshot = tokio::time::timeout(Duration::from_secs(5), console.feed().snapshot())
            .await
            .expect("the live task answered a snapshot while the writer was stalled")
            .expect("the pipeline runs");
        if snapshot.devices.iter().any(|d| d.id == "v2") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "device v2 never reached live state while the writer was stalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A position is given up once it has waited 250 ms for room (`POSITION_WAIT`), at the live
    // task's next pass: not always by the time v2 shows (it failed so once on a loaded machine).
    let waited = Instant::now();
    while console.metrics().snapshot().positions_dropped == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the flood filled the writer's queue (else this test proves nothing)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(event_ids(&db).is_empty(), "nothing could be written yet");

    // The file is free again: the event is stored (it waited, unacknowledged).
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        assert_events_stored(&db2, &["stalled-1".to_owned()], Duration::from_secs(60));
    })
    .await
    .unwrap();
    console.shutdown().await;
}

/// While the file is locked, acknowledgements are held and the broker stops sending QoS 1
/// once its window of unacknowledged messages is full: a vehicle heard by its QoS 1 statuses
/// only falls silent at the console although it speaks. That is no reason to call it stale
/// (and raise "has gone silent" on every console): a device that speaks at QoS 1 keeps its state
/// while the stall lasts; one heard at QoS 0 only is judged as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_held_at_the_broker_by_a_stalled_writer_are_not_called_silent() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut config = ConfigFile::default();
    config.live.stale_after_s = Some(8);
    let console = console_with(&broker, &db, config).await;
    let port = broker.port;
    let status = move || {
        let payload = format!(r#"{{"ts":{},"online":true,"kind":"vehicle"}}"#, now_ms());
        publish(port, "devices/van-q/status", &payload, 1, false);
    };
    tokio::task::spawn_blocking(status).await.unwrap();
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        assert!(eventually(Duration::from_secs(10), || try_query_i64(
            &db2,
            "SELECT count(*) FROM statuses WHERE device_id = 'van-q'"
        ) == 1));
    })
    .await
    .unwrap();

    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // A first event: the writer notices the stall once its commit has waited out its busy
    // timeout (5 s).
    tokio::task::spawn_blocking(move || assert!(try_publish_event(port, "noise", "n-0")))
        .await
        .unwrap();
    let noticed = Instant::now();
    while console.writer_stats().stall().is_none() {
        assert!(
            noticed.elapsed() < Duration::from_secs(30),
            "the stall is noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The van reports (the broker's window still has room: it is heard), then other devices'
    // QoS 1 events fill the window of unacknowledged messages.
    tokio::task::spawn_blocking(status).await.unwrap();
    tokio::task::spawn_blocking(move || {
        for n in 1..40 {
            assert!(try_publish_event(port, "noise", &format!("n-{n}")));
        }
    })
    .await
    .unwrap();
    // The van goes on reporting, every 2 s, for twice the stale limit: held at the broker. A
    // tracker's QoS 0 fixes still come at 0 and 2 s, and then stop: it is called silent.
    let fix = move |k: i64| {
        let payload = format!(
            r#"{{"ts":{},"lat":51.9,"lon":{}}}"#,
            now_ms(),
            4.0 + k as f64 * 1e-4
        );
        publish(port, "devices/trk-0/location", &payload, 0, false);
    };
    for k in 0..8 {
        tokio::task::spawn_blocking(status).await.unwrap();
        if k < 2 {
            tokio::task::spawn_blocking(move || fix(k)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let snapshot = console.feed().snapshot().await.expect("running");
    let tracker = snapshot
        .devices
        .iter()
        .find(|d| d.id == "trk-0")
        .expect("tracker in live state");
    assert!(
        tracker.stale,
        "a tracker whose QoS 0 fixes stopped during the stall is silent"
    );
    let van = snapshot
        .devices
        .iter()
        .find(|d| d.id == "van-q")
        .expect("van in live state");
    assert!(
        !van.stale,
        "a van held at the broker by the stall is not stale"
    );
    assert!(
        !snapshot.incidents.iter().any(|i| i.source == "van-q"),
        "no incident for the van: {:?}",
        snapshot.incidents
    );
    assert!(
        console.writer_stats().stall().is_some(),
        "the writer was stalled all along (else this test proves nothing)"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        let expected: Vec<String> = (0..40).map(|n| format!("n-{n}")).collect();
        let mut expected = expected;
        expected.sort();
        assert_events_stored(&db2, &expected, Duration::from_secs(60));
    })
    .await
    .unwrap();
    console.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_does_not_hold_shutdown_up_for_ever() {
    // Malformed messages: each a quarantine row, which is never given up under overload (unlike
    // a position), so the writer's queue and the outbox fill, live state stops reading, and the
    // link's queue fills behind it. Before, shutdown waited for the live task, which waited for
    // the writer, which was told to give up failing batches only after the live task had ended.
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let console = console_on(&broker, &db).await;
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let port = broker.port;
    tokio::task::spawn_blocking(move || {
        let mut publisher = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "0", "-l"])
            .args(["-t", "devices/junk/location"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub is installed");
        let mut stdin = publisher.stdin.take().unwrap();
        for i in 0..40_000 {
            writeln!(stdin, "not json {i}").unwrap();
        }
        drop(stdin);
        assert!(publisher.wait().unwrap().success());
    })
    .await
    .unwrap();
    // Wait until live state has stopped reading: the outbox is full.
    let started = Instant::now();
    while console.metrics().snapshot().writer_queue < 20_000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the writer's queue and outbox never filled (else this test proves nothing)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The file stays locked. A hang detector, not a speed figure: each failing batch takes two
    // 5 s busy waits before it is given up.
    tokio::time::timeout(Duration::from_secs(240), console.shutdown())
        .await
        .expect("shutdown finished with the history file still locked");
    drop(blocker);
}

/// A console (the pipeline, no window) on `broker` writing to `db`, connected and subscribed.
async fn console_on(broker: &Mosquitto, db: &std::path::Path) -> Pipeline {
    console_with(broker, db, ConfigFile::default()).await
}

async fn console_with(broker: &Mosquitto, db: &std::path::Path, config: ConfigFile) -> Pipeline {
    let settings = Settings::resolve(
        config,
        Overrides {
            broker: Some(broker.url()),
            db: Some(db.to_path_buf()),
            ..Overrides::default()
        },
    )
    .expect("valid settings");
    let console = Pipeline::start(&settings).await.expect("pipeline starts");
    let connected = Instant::now();
    while console.connection().connects == 0 {
        assert!(
            connected.elapsed() < Duration::from_secs(10),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the subscriptions settle
    console
}
