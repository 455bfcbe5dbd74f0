//! `watchfloor record` against a real Mosquitto: what devices publish (here with
//! `mosquitto_pub`) reaches live state (logged) and the history file, and SIGTERM stops the
//! recorder cleanly with everything flushed.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn record_stores_what_devices_publish_and_stops_cleanly_on_sigterm() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");

    // Published before the recorder starts: the retained status must seed live state at connect.
    publish(
        broker.port,
        "devices/van-7/status",
        r#"{"online":true,"ts":"2026-01-01T00:00:00Z","kind":"vehicle","name":"Van 7"}"#,
        1,
        true,
    );

    let mut rec = Watchfloor::record(&broker, &db);
    rec.wait_for_log("device=van-7", Duration::from_secs(10));

    let t = now_ms();
    for i in 0..3 {
        let fix = format!(
            r#"{{"ts":{},"lat":51.9{i},"lon":4.4{i},"speed":12.5,"heading":90}}"#,
            t + i
        );
        publish(broker.port, "devices/van-7/location", &fix, 0, false);
    }
    publish(
        broker.port,
        "devices/cam-2/location",
        &format!(r#"{{"ts":{t},"lat":51.95,"lon":4.5}}"#),
        0,
        false,
    );
    publish(
        broker.port,
        "devices/cam-2/events",
        &format!(r#"{{"id":"e-1","ts":{t},"type":"panic","severity":"critical"}}"#),
        1,
        false,
    );
    // A redelivered event (same id) must not be stored twice.
    publish(
        broker.port,
        "devices/cam-2/events",
        &format!(r#"{{"id":"e-1","ts":{t},"type":"panic","severity":"critical"}}"#),
        1,
        false,
    );
    // Bad input is quarantined with its reason; the good messages around it are unaffected.
    publish(
        broker.port,
        "devices/cam-2/location",
        &format!(r#"{{"ts":{},"lat":200,"lon":4}}"#, now_ms()),
        0,
        false,
    );

    rec.wait_for_log("device=cam-2", Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(
            &db,
            "SELECT count(*) FROM positions"
        ) == 4),
        "the four fixes are written while the recorder runs (WAL: readable by another process)"
    );

    // Export reads the file while the recorder is still writing it.
    let db_arg = db.to_str().unwrap();
    let (code, out, err) = run_with_output(&[
        "export",
        "--db",
        db_arg,
        "--what",
        "positions",
        "--format",
        "ndjson",
        "--device",
        "van-7",
    ]);
    assert_eq!(code, 0, "{err}");
    let lats: Vec<f64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["lat"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        lats,
        [51.90, 51.91, 51.92],
        "van-7's track, in device-time order"
    );
    let (code, out, err) = run_with_output(&["export", "--db", db_arg, "--what", "quarantine"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("received_ms,time_utc,topic,reason_code,reason"),
        "{out}"
    );
    assert!(out.contains("devices/cam-2/location"), "{out}");

    let status = rec.stop_with(Signal::SIGTERM);
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean stop; log:\n{}",
        rec.log()
    );
    assert!(
        rec.log().contains("history flushed"),
        "the recorder says it flushed"
    );

    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'van-7'"
        ),
        3
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id = 'van-7' AND online = 1"
        ),
        1,
        "the retained status was received at connect"
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE device_id = 'cam-2'"),
        1,
        "the duplicate event was absorbed"
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM quarantine WHERE reason LIKE 'lat = 200%'"
        ),
        1,
        "the bad fix is kept with its reason"
    );
    let newest_lat = query_i64(&db, "SELECT CAST(lat * 100 AS INTEGER) FROM positions WHERE device_id = 'van-7' ORDER BY ts_ms DESC LIMIT 1");
    assert_eq!(newest_lat, 5192, "positions are stored as published");
}

#[test]
fn a_second_recorder_on_the_same_history_file_is_refused_in_words() {
    // Two would connect as the same MQTT client (the id is kept in the file) and the broker
    // would drop each when the other connects, all night.
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut first = Watchfloor::record(&broker, &db);
    let url = broker.url();
    let (code, _out, err) =
        run_with_output(&["record", "--broker", &url, "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("in use by another Watchfloor console or recorder")
            && err.contains(&format!("process {}", first.pid())),
        "{err}"
    );
    assert_eq!(first.connects(), 1, "the first was never disturbed");
    assert!(first.stop_with(Signal::SIGTERM).success());
    // Free again once the first has stopped.
    let mut again = Watchfloor::record(&broker, &db);
    assert!(again.stop_with(Signal::SIGTERM).success());
}

#[test]
fn a_hangup_stops_a_recorder_cleanly_unless_it_runs_under_nohup() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    // A closed terminal sends SIGHUP: the recorder flushes and exits 0, as on SIGTERM.
    let mut rec = Watchfloor::record(&broker, &db);
    let status = rec.stop_with(Signal::SIGHUP);
    assert_eq!(status.code(), Some(0), "log:\n{}", rec.log());
    assert!(rec.log().contains("history flushed"), "{}", rec.log());
    // Under nohup the user asked it to outlive the terminal: the hangup is not a stop.
    let url = broker.url();
    let mut kept =
        Watchfloor::start_under_nohup(&["record", "--broker", &url, "--db", db.to_str().unwrap()]);
    kept.wait_for_log("connected to broker", Duration::from_secs(10));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(kept.pid() as i32),
        Signal::SIGHUP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        kept.is_running(),
        "a hangup stopped it under nohup; log:\n{}",
        kept.log()
    );
    assert!(kept.stop_with(Signal::SIGTERM).success());
}

#[test]
fn a_killed_simulator_goes_offline_through_its_last_wills() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut rec = Watchfloor::record(&broker, &db);

    let mut sim = Watchfloor::start(&["sim", "--broker", &broker.url(), "--devices", "3"]);
    assert!(
        eventually(Duration::from_secs(15), || try_query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM statuses WHERE online = 1 AND simulated = 1"
        ) == 3),
        "three simulated devices announce themselves online, marked simulated"
    );
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM positions"
        ) == 3),
        "and report positions"
    );

    // kill -9: no goodbye from the devices; the broker must publish each device's will.
    sim.stop_with(Signal::SIGKILL);
    assert!(
        eventually(Duration::from_secs(15), || try_query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM statuses WHERE online = 0"
        ) == 3),
        "every device's last will (offline) reaches the history; log:\n{}",
        rec.log()
    );
    rec.wait_for_log("went offline", Duration::from_secs(5));
    assert_eq!(rec.stop_with(Signal::SIGTERM).code(), Some(0));
    // Each will carries its connection's start; it is stored at the instant it ended the
    // session, after every fix and status of it, so review shows the device offline from then.
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM statuses s WHERE online = 0
               AND ts_ms > (SELECT max(ts_ms) FROM statuses WHERE device_id = s.device_id AND online = 1)
               AND ts_ms > (SELECT max(ts_ms) FROM positions WHERE device_id = s.device_id)"
        ),
        3,
        "each device's newest row in the history is its will"
    );
}

#[test]
fn owntracks_phones_are_recorded_under_their_own_namespace() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut rec = Watchfloor::record(&broker, &db);
    let tst = now_ms() / 1000;

    // As the OwnTracks app publishes: QoS 1, location retained; an old app's string numbers.
    let location = format!(
        r#"{{"_type":"location","tid":"jd","lat":"51.91","lon":4.48,"tst":{tst},"vel":18,"batt":77}}"#
    );
    publish(broker.port, "owntracks/jane.doe/phone", &location, 1, true);
    let transition = format!(
        r#"{{"_type":"transition","lat":51.91,"lon":4.48,"tst":{tst},"event":"leave","desc":"Depot","rid":"d1"}}"#
    );
    publish(
        broker.port,
        "owntracks/jane.doe/phone/event",
        &transition,
        1,
        false,
    );
    publish(
        broker.port,
        "owntracks/jane.doe/phone/event",
        &transition,
        1,
        false,
    );
    publish(
        broker.port,
        "owntracks/bob/tablet",
        r#"{"_type":"encrypted","data":"x"}"#,
        1,
        false,
    );
    // A native device with a look-alike name stays a different device.
    publish(
        broker.port,
        "devices/jane.doe.phone/location",
        &format!(r#"{{"ts":{},"lat":1,"lon":1}}"#, now_ms()),
        0,
        false,
    );
    publish(
        broker.port,
        "owntracks/jane.doe/phone",
        &format!(r#"{{"_type":"lwt","tst":{tst}}}"#),
        1,
        false,
    );

    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id = 'ot:jane.doe.phone' AND online = 0"
        ) == 1),
        "the last will takes the phone offline; log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());

    assert_eq!(
        query_i64(&db, "SELECT CAST(round(speed * 10) AS INTEGER) FROM positions WHERE device_id = 'ot:jane.doe.phone'"),
        50,
        "vel 18 km/h is stored as 5.0 m/s"
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM statuses WHERE device_id = 'ot:jane.doe.phone' AND online = 1 AND battery = 77"),
        1
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE device_id = 'ot:jane.doe.phone' AND type = 'geofence_leave'"),
        1,
        "the repeated transition is stored once"
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'jane.doe.phone'"
        ),
        1
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM quarantine WHERE reason_code = 'unsupported' AND topic = 'owntracks/bob/tablet'"),
        1,
        "an encrypted payload is kept with its reason"
    );
}

#[test]
fn a_retained_location_replayed_at_each_connect_is_stored_once() {
    // An OwnTracks phone's location is retained: the broker sends it again at every
    // subscription, so at each reconnect of the console and each start of a recorder.
    let mut broker = Mosquitto::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let tst = now_ms() / 1000 - 3600;
    let location =
        format!(r#"{{"_type":"location","tid":"jd","lat":51.91,"lon":4.48,"tst":{tst}}}"#);
    publish(broker.port, "owntracks/jane/phone", &location, 1, true);
    let count = "SELECT count(*) FROM positions WHERE device_id = 'ot:jane.phone'";

    let mut rec = Watchfloor::record(&broker, &db);
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, count) == 1),
        "the retained location is stored; log:\n{}",
        rec.log()
    );
    // The broker restarts: the recorder connects and subscribes again, and hears it again.
    broker.restart();
    assert!(
        eventually(Duration::from_secs(30), || rec.connects() == 2),
        "reconnected; log:\n{}",
        rec.log()
    );
    // A live fix after the replay, so the replay has surely been through the writer.
    let live = format!(
        r#"{{"_type":"location","lat":51.92,"lon":4.48,"tst":{}}}"#,
        tst + 60
    );
    publish(broker.port, "owntracks/jane/phone", &live, 1, false);
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, count) == 2),
        "log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    // A new recorder on the file hears the retained one once more.
    let mut rec = Watchfloor::record(&broker, &db);
    let later = format!(
        r#"{{"_type":"location","lat":51.93,"lon":4.48,"tst":{}}}"#,
        tst + 120
    );
    publish(broker.port, "owntracks/jane/phone", &later, 1, false);
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, count) >= 3),
        "log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(query_i64(&db, count), 3, "each fix once");
    assert_eq!(
        query_i64(&db, &format!("{count} AND ts_ms = {}", tst * 1000)),
        1,
        "the retained fix once, however often it was replayed"
    );
}

#[test]
fn clearing_retained_messages_is_not_a_refusal() {
    // A site retires devices: their retained status (and an OwnTracks phone's location) is
    // cleared with an empty retained message, as MQTT has it. The console hears the empty
    // messages, live, and keeps nothing of them, quarantine included.
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut rec = Watchfloor::record(&broker, &db);
    for topic in [
        "devices/old-van/status",
        "devices/old-van/location",
        "owntracks/jane/phone",
    ] {
        publish(broker.port, topic, "", 1, true);
    }
    publish(
        broker.port,
        "devices/new-van/status",
        &format!(r#"{{"online":true,"ts":{}}}"#, now_ms()),
        1,
        false,
    );
    wait_for_rows(
        &db,
        &rec,
        "SELECT count(*) FROM statuses WHERE device_id = 'new-van'",
        1,
        Duration::from_secs(10),
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(query_i64(&db, "SELECT count(*) FROM quarantine"), 0);
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id <> 'new-van'"
        ),
        0
    );
}

#[test]
fn face_terminals_presence_and_records_are_recorded_once_in_their_zone() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(&config, "[face]\ntime_zone = \"Asia/Tokyo\"\n").unwrap();
    let mut rec = Watchfloor::record_with(&broker, &db, &["--config", config.to_str().unwrap()]);

    // Ten minutes ago, on a Tokyo wall clock (UTC+9, no DST), as the terminal writes it.
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms + 9 * 3_600_000)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let then_ms = (now_ms() - 600_000) / 1000 * 1000;
    let then = local(then_ms);
    publish(
        broker.port,
        "mqtt/face/basic",
        &format!(
            r#"{{"messageId":"m1","operator":"Online","info":{{"facesluiceId":"T100","time":"{then}","ip":"10.0.0.7","facesname":"Gate North"}}}}"#
        ),
        0,
        false,
    );
    let rec_push = format!(
        r#"{{"operator":"RecPush","info":{{"customId":"","personId":"88","RecordID":"5501","VerifyStatus":"1","PersonType":"1","similarity1":"93.5","persionName":"J. Smith","facesluiceId":"T100","time":"{then}","pic":"{}"}}}}"#,
        "A".repeat(200_000)
    );
    // A terminal re-pushes a record it has no PushAck for: stored once.
    publish(broker.port, "mqtt/face/T100/Rec", &rec_push, 1, false);
    publish(broker.port, "mqtt/face/T100/Rec", &rec_push, 1, false);
    // Reset since (or replaced under its id), it numbers a later record 5501 again: stored.
    let after_reset = local(then_ms + 60_000);
    publish(
        broker.port,
        "mqtt/face/T100/Rec",
        &format!(
            r#"{{"operator":"RecPush","info":{{"customId":"E7","RecordID":"5501","VerifyStatus":"1","PersonType":"0","facesluiceId":"T100","time":"{after_reset}"}}}}"#
        ),
        1,
        false,
    );
    publish(
        broker.port,
        "mqtt/face/basic",
        r#"{"operator":"Offline","info":{"facesluiceId":"T100"}}"#,
        0,
        false,
    );

    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id = 'face:T100' AND online = 0"
        ) == 1),
        "the Offline will is recorded; log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            "SELECT ts_ms FROM statuses WHERE device_id = 'face:T100' AND online = 1"
        ),
        then_ms,
        "the terminal's local time is read in its configured zone"
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE device_id = 'face:T100' AND event_id LIKE 'rec-5501@%' AND type = 'blocklist_match' AND severity = 'critical'"),
        1
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE device_id = 'face:T100' AND event_id LIKE 'rec-5501@%' AND type = 'access_granted'"),
        1,
        "the record of the reset terminal is another event"
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM attendance WHERE terminal_id = 'T100' AND record_id LIKE '5501@%'"
        ),
        2,
        "two attendance rows: the re-pushed record once, and the one after the reset"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM quarantine"), 0);
}

/// A broker, a history file in a folder of its own, and a recorder connected to the broker.
fn connected_recorder() -> (Mosquitto, tempfile::TempDir, std::path::PathBuf, Watchfloor) {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let rec = Watchfloor::record(&broker, &db);
    rec.wait_for_log("connected to broker", Duration::from_secs(20));
    (broker, dir, db, rec)
}

/// Waits until `sql` (a count) reads `n` in `db`, else fails with the recorder's log.
fn wait_for_rows(db: &std::path::Path, rec: &Watchfloor, sql: &str, n: i64, within: Duration) {
    assert!(
        eventually(within, || try_query_i64(db, sql) == n),
        "{sql} never read {n}; log:\n{}",
        rec.log()
    );
}

/// Publishes a status of device `marker` and waits until the recorder has stored it: what the
/// broker sent before it (at a connect, a replay) has been handled by then.
fn store_marker(broker: &Mosquitto, db: &std::path::Path, rec: &Watchfloor, marker: &str) {
    publish(
        broker.port,
        &format!("devices/{marker}/status"),
        &format!(r#"{{"ts":{},"online":true}}"#, now_ms()),
        1,
        false,
    );
    assert!(
        eventually(Duration::from_secs(15), || try_query_i64(
            db,
            &format!("SELECT count(*) FROM statuses WHERE device_id = '{marker}'")
        ) == 1),
        "log:\n{}",
        rec.log()
    );
}

/// A device that dies before it sends anything after its connect status: its will carries the
/// same time as that status, and is stored after it (review shows it offline).
#[test]
fn a_will_at_the_time_of_its_connect_status_is_stored_after_it() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let t = now_ms() - 1_000;
    for online in [true, false] {
        publish(
            broker.port,
            "devices/w1/status",
            &format!(r#"{{"ts":{t},"online":{online}}}"#),
            1,
            false,
        );
    }
    wait_for_rows(
        &db,
        &rec,
        "SELECT count(*) FROM statuses WHERE device_id = 'w1' AND online = 0",
        1,
        Duration::from_secs(10),
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            &format!("SELECT count(*) FROM statuses WHERE device_id = 'w1' AND online = 0 AND ts_ms > {t}")
        ),
        1
    );
}

/// A device that reconnects at once: the broker publishes its old connection's will as the new
/// one takes over, and the new session's first status, on the device's clock, can carry a time
/// a little before the instant the will was stored with. It came after the will and is stored
/// after it (review shows the device online again, not offline until its next status).
#[test]
fn a_session_that_starts_right_after_a_will_is_stored_after_it() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let t = now_ms() - 1_000;
    let status = |ts: i64, online: bool| {
        publish(
            broker.port,
            "devices/w3/status",
            &format!(r#"{{"ts":{ts},"online":{online}}}"#),
            1,
            false,
        )
    };
    status(t, true);
    let stored = |sql: &str| eventually(Duration::from_secs(10), || try_query_i64(&db, sql) == 1);
    assert!(
        stored("SELECT count(*) FROM statuses WHERE device_id = 'w3'"),
        "log:\n{}",
        rec.log()
    );
    // The will comes 400 ms after the connect status: stored about 400 ms after it.
    std::thread::sleep(Duration::from_millis(400));
    status(t, false);
    assert!(
        stored("SELECT count(*) FROM statuses WHERE device_id = 'w3' AND online = 0"),
        "log:\n{}",
        rec.log()
    );
    // The new session's status, stamped 100 ms after the old connect by the device's clock.
    status(t + 100, true);
    wait_for_rows(
        &db,
        &rec,
        "SELECT count(*) FROM statuses WHERE device_id = 'w3' AND online = 1",
        2,
        Duration::from_secs(10),
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    let will = query_i64(
        &db,
        "SELECT ts_ms FROM statuses WHERE device_id = 'w3' AND online = 0",
    );
    assert!(
        will >= t + 400,
        "the will is stored when it came: {will} vs {t}"
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT online FROM statuses WHERE device_id = 'w3' ORDER BY ts_ms DESC LIMIT 1"
        ),
        1,
        "the newest row of the device is the status that brought it back"
    );
}

/// A device that died while the recorder was stopped: its will, replayed from the broker's
/// retained store at the next start, carries its session's start, and is stored after the
/// last row of that session (review shows the device offline from then, not online for good).
#[test]
fn a_will_replayed_at_start_is_stored_after_what_the_file_holds() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let connect = now_ms() - 60_000;
    let mut rec = Watchfloor::record(&broker, &db);
    rec.wait_for_log("connected to broker", Duration::from_secs(20));
    for (ts, online) in [(connect, true), (connect + 30_000, true)] {
        publish(
            broker.port,
            "devices/w2/status",
            &format!(r#"{{"ts":{ts},"online":{online}}}"#),
            1,
            true,
        );
    }
    wait_for_rows(
        &db,
        &rec,
        "SELECT count(*) FROM statuses WHERE device_id = 'w2'",
        2,
        Duration::from_secs(10),
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    // The device dies meanwhile: the broker publishes its will (retained) at its connect time.
    publish(
        broker.port,
        "devices/w2/status",
        &format!(r#"{{"ts":{connect},"online":false}}"#),
        1,
        true,
    );
    // It reaches the restarted recorder twice: queued for its session, and replayed retained;
    // and a third time, replayed, at the start after. Stored once.
    for start in 1..=2 {
        let rec = Watchfloor::record(&broker, &db);
        rec.wait_for_log("connected to broker", Duration::from_secs(20));
        // A marker published now is handled after what the broker sent at the connect.
        store_marker(&broker, &db, &rec, &format!("mark-{start}"));
        let mut rec = rec;
        assert!(rec.stop_with(Signal::SIGTERM).success());
        assert_eq!(
            query_i64(
                &db,
                "SELECT count(*) FROM statuses WHERE device_id = 'w2' AND online = 0"
            ),
            1,
            "the will is stored once (start {start})"
        );
    }
    assert_eq!(
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM statuses WHERE device_id = 'w2' AND online = 0 AND ts_ms <= {}",
                connect + 30_000
            )
        ),
        0,
        "no copy of the will is stored before the last row of its session"
    );
}

/// A QoS 1 OwnTracks location delivered twice (the broker sends it again when its
/// acknowledgement was lost with a connection: here, published twice) is one position.
#[test]
fn a_qos1_location_delivered_again_is_stored_once() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let tst = now_ms() / 1000 - 5;
    let location = format!(r#"{{"_type":"location","lat":51.9,"lon":4.47,"tst":{tst}}}"#);
    for _ in 0..2 {
        publish(broker.port, "owntracks/bo/phone", &location, 1, false);
    }
    // A marker after both: handled after them.
    publish(
        broker.port,
        "owntracks/bo/phone",
        r#"{"_type":"lwt","tst":1}"#,
        1,
        false,
    );
    wait_for_rows(
        &db,
        &rec,
        "SELECT count(*) FROM statuses WHERE device_id = 'ot:bo.phone' AND online = 0",
        1,
        Duration::from_secs(10),
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'ot:bo.phone'"
        ),
        1
    );
}

/// A phone's `lwt` delivered twice (again after a dropped link, a kill, or as the broker's
/// retained copy at a reconnect: here, published twice) is one offline row, although each copy
/// is stamped with its own arrival.
#[test]
fn an_lwt_delivered_again_is_stored_once() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let tst = now_ms() / 1000 - 5;
    let location = format!(r#"{{"_type":"location","lat":51.9,"lon":4.47,"tst":{tst}}}"#);
    publish(broker.port, "owntracks/cy/phone", &location, 1, false);
    for _ in 0..2 {
        publish(
            broker.port,
            "owntracks/cy/phone",
            r#"{"_type":"lwt","tst":1}"#,
            1,
            false,
        );
    }
    store_marker(&broker, &db, &rec, "mark-lwt");
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id = 'ot:cy.phone' AND online = 0"
        ),
        1
    );
}

/// A phone's retained `lwt`, replayed by the broker at each start of the recorder, is one row.
#[test]
fn a_retained_lwt_replayed_at_each_start_is_stored_once() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let tst = now_ms() / 1000 - 5;
    let location = format!(r#"{{"_type":"location","lat":51.9,"lon":4.47,"tst":{tst}}}"#);
    publish(broker.port, "owntracks/di/phone", &location, 1, false);
    publish(
        broker.port,
        "owntracks/di/phone",
        r#"{"_type":"lwt","tst":1}"#,
        1,
        true,
    );
    store_marker(&broker, &db, &rec, "mark-r0");
    assert!(rec.stop_with(Signal::SIGTERM).success());
    for start in 1..=2 {
        let mut rec = Watchfloor::record(&broker, &db);
        // The probe is subscribed last: once it comes back, every subscription (and the
        // broker's retained replay for each) has been handled.
        rec.wait_for_log("broker probe came back", Duration::from_secs(20));
        store_marker(&broker, &db, &rec, &format!("mark-r{start}"));
        assert!(rec.stop_with(Signal::SIGTERM).success());
    }
    let offline = "SELECT count(*) FROM statuses WHERE device_id = 'ot:di.phone' AND online = 0";
    assert_eq!(query_i64(&db, offline), 1);
}

/// A phone whose clock runs two minutes ahead of the console's: its `lwt` (stamped with the
/// console's clock on arrival) is stored after its last location, not before it (review showed
/// it online for good).
#[test]
fn an_lwt_is_stored_after_the_rows_of_a_phone_whose_clock_is_ahead() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let tst = now_ms() / 1000 + 120;
    let location = format!(r#"{{"_type":"location","lat":51.9,"lon":4.47,"tst":{tst}}}"#);
    publish(broker.port, "owntracks/ed/phone", &location, 1, false);
    publish(
        broker.port,
        "owntracks/ed/phone",
        r#"{"_type":"lwt","tst":1}"#,
        1,
        false,
    );
    store_marker(&broker, &db, &rec, "mark-ahead");
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            "SELECT online FROM statuses WHERE device_id = 'ot:ed.phone' ORDER BY ts_ms DESC LIMIT 1"
        ),
        0,
        "the phone's newest status is its will"
    );
}

/// A phone's `lwt` has no time of its own and is stamped on arrival; the location the phone
/// sends when it is back carries its fix time, which can be earlier (a fix it took before).
/// The phone is online again in review too: that status is stored after the will.
#[test]
fn a_phone_back_after_its_lwt_is_stored_online_after_it() {
    let (broker, _dir, db, mut rec) = connected_recorder();
    let tst = now_ms() / 1000;
    let location =
        |tst: i64| format!(r#"{{"_type":"location","lat":51.9,"lon":4.47,"tst":{tst}}}"#);
    publish(
        broker.port,
        "owntracks/ann/phone",
        &location(tst - 20),
        1,
        false,
    );
    publish(
        broker.port,
        "owntracks/ann/phone",
        r#"{"_type":"lwt","tst":1}"#,
        1,
        false,
    );
    let rows = |online: u8| {
        format!(
            "SELECT count(*) FROM statuses WHERE device_id = 'ot:ann.phone' AND online = {online}"
        )
    };
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, &rows(0))
            == 1),
        "log:\n{}",
        rec.log()
    );
    publish(
        broker.port,
        "owntracks/ann/phone",
        &location(tst - 10),
        1,
        false,
    );
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, &rows(1))
            == 2),
        "log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        query_i64(
            &db,
            "SELECT online FROM statuses WHERE device_id = 'ot:ann.phone' ORDER BY ts_ms DESC LIMIT 1"
        ),
        1,
        "the newest status of the phone is the one that brought it back"
    );
}

/// A broker that grants QoS 1 subscriptions at QoS 0 only (Mosquitto's `max_qos`; or one that
/// refuses a filter, by its access rules): the link says so, and which, instead of showing
/// itself connected while messages may be lost or never come. (Mosquitto refuses the console's
/// own connection there, its will being QoS 1, closing it without a word: the console says
/// where to look. The employee sync's link, which has no will, connects and shows the check.)
#[test]
fn a_subscription_granted_below_its_qos_is_said() {
    let broker = Mosquitto::with_config("persistence false\nmax_qos 0\n");
    let dir = tempfile::tempdir().unwrap();
    let url = broker.url();
    let db = dir.path().join("h.sqlite");
    let mut rec = Watchfloor::start(&["record", "--broker", &url, "--db", db.to_str().unwrap()]);
    assert!(
        eventually(Duration::from_secs(10), || rec
            .log()
            .contains("mqtt/face/+/Ack: granted at QoS 0 instead of 1")),
        "log:\n{}",
        rec.log()
    );
    assert!(
        eventually(Duration::from_secs(10), || rec.log().contains(
            "the broker closed the connection before accepting it; its log says why"
        )),
        "log:\n{}",
        rec.log()
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert!(
        !rec.log().contains("probe: granted"),
        "the probe's filter asks for QoS 0: nothing to say; log:\n{}",
        rec.log()
    );
}

/// Two consoles started with the same client id take the session from each other at every
/// connect. Each connection drops at once, and each console waits longer before the next (up
/// to 5 s): starting the backoff again at every connect, they reconnected a few times a second
/// for ever, and the broker published their wills at each.
#[test]
fn consoles_sharing_a_client_id_do_not_reconnect_in_a_storm() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let same = ["--client-id", "twin-console"];
    let mut a = Watchfloor::record_with(&broker, &dir.path().join("a.sqlite"), &same);
    let mut b = Watchfloor::record_with(&broker, &dir.path().join("b.sqlite"), &same);
    std::thread::sleep(Duration::from_secs(12));
    let connects = (a.connects(), b.connects());
    assert!(a.stop_with(Signal::SIGTERM).success());
    assert!(b.stop_with(Signal::SIGTERM).success());
    // With the backoff started again at each connect: 25 to 50 each in 12 s. Waiting 0.5, 1, 2,
    // 4 and then 5 s (with jitter up to as much again): at most 8.
    assert!(
        connects.0 <= 10 && connects.1 <= 10,
        "connects in 12 s: {connects:?}; log of a:\n{}",
        a.log()
    );
    assert!(
        connects.0 >= 2 && connects.1 >= 2,
        "they did take the session from each other: {connects:?}"
    );
}

/// The broker replays a dead device's retained will at every reconnect of the console: stored
/// once, at the instant it ended the session (each replay added an offline row).
#[test]
fn a_will_replayed_at_each_reconnect_is_stored_once() {
    let mut broker = Mosquitto::start_persistent();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut rec = Watchfloor::record(&broker, &db);
    rec.wait_for_log("connected to broker", Duration::from_secs(20));
    let t = now_ms() - 1_000;
    for online in [true, false] {
        publish(
            broker.port,
            "devices/w4/status",
            &format!(r#"{{"ts":{t},"online":{online}}}"#),
            1,
            true,
        );
    }
    let offline_rows = "SELECT count(*) FROM statuses WHERE device_id = 'w4' AND online = 0";
    assert!(
        eventually(Duration::from_secs(10), || try_query_i64(&db, offline_rows)
            == 1),
        "log:\n{}",
        rec.log()
    );
    for restart in 1..=2 {
        broker.restart();
        assert!(
            eventually(Duration::from_secs(30), || rec.connects() > restart),
            "reconnects; log:\n{}",
            rec.log()
        );
        // A marker published now is handled after the replay at the reconnect.
        store_marker(&broker, &db, &rec, &format!("mark-{restart}"));
    }
    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(query_i64(&db, offline_rows), 1, "log:\n{}", rec.log());
}

/// With no employee sync in the process (`[face] sync = false`, for scheduled `watchfloor sync`
/// runs) the recorder answers a terminal's Online itself, as the protocol requires.
#[test]
fn a_recorder_without_the_sync_still_answers_a_terminals_online() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(&config, "[face]\nsync = false\n").unwrap();
    let mut rec = Watchfloor::record_with(&broker, &db, &["--config", config.to_str().unwrap()]);
    rec.wait_for_log("connected to broker", Duration::from_secs(20));
    let online = format!(
        r#"{{"messageId":"on-1","operator":"Online","info":{{"facesluiceId":"T7","time":"{}"}}}}"#,
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
    );
    // As a terminal does: Online again until answered.
    let ack = publish_until_answered(broker.port, "mqtt/face/basic", &online, "mqtt/face/T7");
    let Some(ack) = ack else {
        panic!("no Online-Ack; log:\n{}", rec.log())
    };
    assert_eq!(ack["operator"], "Online-Ack");
    assert_eq!(ack["messageId"], "on-1");
    assert_eq!(ack["info"]["facesluiceId"], "T7");
    assert!(rec.stop_with(Signal::SIGTERM).success());
}

/// `GET path` on 127.0.0.1:port; the whole response as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn record_serves_prometheus_metrics_when_asked() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut rec = Watchfloor::record_with(&broker, &db, &["--metrics", &metrics]);
    publish(
        broker.port,
        "devices/v1/location",
        &format!(r#"{{"ts":{},"lat":1,"lon":2}}"#, now_ms()),
        0,
        false,
    );
    publish(broker.port, "devices/v1/location", "not json", 0, false);

    let mut text = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            text = http_get(port, "/metrics");
            text.contains("watchfloor_records_total{kind=\"quarantine\"} 1\n")
        }),
        "{text}"
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    assert!(
        text.contains("watchfloor_messages_received_total{adapter=\"native\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("watchfloor_records_total{kind=\"position\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("watchfloor_broker_connected 1\n"), "{text}");
    assert!(
        text.contains("watchfloor_broker_connects_total 1\n"),
        "{text}"
    );
    assert!(http_get(port, "/").starts_with("HTTP/1.1 404"));
    // A scraper's parameters do not make it another page.
    assert!(http_get(port, "/metrics?name[]=x").starts_with("HTTP/1.1 200"));
    assert!(rec.stop_with(Signal::SIGTERM).success());

    // A port already in use is said before anything is recorded, and nothing is.
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let other = dir.path().join("other.sqlite");
    let url = broker.url();
    let mut refused = Watchfloor::start(&[
        "record",
        "--broker",
        &url,
        "--db",
        other.to_str().unwrap(),
        "--metrics",
        &taken,
    ]);
    let status = refused.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "log:\n{}", refused.log());
    assert!(
        refused.log().contains("cannot serve metrics on"),
        "{}",
        refused.log()
    );
    assert!(
        !other.exists(),
        "refused before the history file is opened (or anything recorded): {}",
        refused.log()
    );
}

#[test]
fn a_huge_qos1_message_is_quarantined_and_the_session_moves_on() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let rec = Watchfloor::record(&broker, &db);

    // 3 MB: far over the native 64 KiB limit. Refusing the packet itself would leave it
    // unacknowledged and redelivered at every reconnect; it must be taken and quarantined.
    let huge = format!(
        r#"{{"id":"huge","ts":1,"type":"x","severity":"info","message":"{}"}}"#,
        "a".repeat(3_000_000)
    );
    publish(broker.port, "devices/cam-9/events", &huge, 1, false);
    assert!(try_publish_event(broker.port, "cam-9", "after-huge"));

    assert_events_stored(&db, &["after-huge".to_owned()], Duration::from_secs(15));
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM quarantine WHERE reason_code = 'oversized' AND payload_len > 3000000"),
        1
    );
    assert_eq!(rec.connects(), 1, "no reconnect loop; log:\n{}", rec.log());
}

#[test]
fn devices_beyond_the_limit_are_quarantined_and_the_known_ones_carry_on() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let config = dir.path().join("limit.toml");
    std::fs::write(&config, "[live]\nmax_devices = 3\n").unwrap();
    let mut rec = Watchfloor::record_with(&broker, &db, &["--config", config.to_str().unwrap()]);
    rec.wait_for_log("connected to broker", Duration::from_secs(20));

    // Three devices fill live state; two more (QoS 1 events, so each is owed a decision)
    // are refused with the reason, and the first three still report.
    for dev in ["d1", "d2", "d3"] {
        assert!(try_publish_event(broker.port, dev, &format!("{dev}-first")));
    }
    assert_events_stored(
        &db,
        &["d1-first", "d2-first", "d3-first"].map(String::from),
        Duration::from_secs(15),
    );
    for dev in ["d4", "d5"] {
        assert!(try_publish_event(broker.port, dev, &format!("{dev}-first")));
    }
    assert!(try_publish_event(broker.port, "d2", "d2-later"));
    assert_events_stored(
        &db,
        &["d1-first", "d2-first", "d2-later", "d3-first"].map(String::from),
        Duration::from_secs(15),
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            try_query_i64(
            &db,
            "SELECT count(*) FROM quarantine WHERE reason_code = 'device_limit' AND reason LIKE '%max_devices%'"
        ) == 2
        }),
        "log:\n{}",
        rec.log()
    );
    assert!(
        rec.log().contains("[live] max_devices"),
        "warned in the log"
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
}
