//! Offline review of a history produced by a scripted run: a console (a pipeline in this
//! process) records two devices' fixes from Mosquitto and a panic event; the script
//! acknowledges, assigns and resolves the incident at known instants. Then the file is read by
//! `watchfloor review FILE --at` and `watchfloor report`, as a reviewer would, with the broker
//! gone: positions at chosen instants match what was published (exact on a fix, interpolated
//! between), incident states at chosen instants match the audit trail, reports match counts
//! computed here, and the file's bytes are unchanged afterwards.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use watchfloor_core::incidents::IncidentAction;
use watchfloor_core::settings::{ConfigFile, Overrides};
use watchfloor_core::{Pipeline, Settings};

fn digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn review_at(db: &Path, at_ms: i64) -> Value {
    let (code, out, err) =
        run_with_output(&["review", db.to_str().unwrap(), "--at", &at_ms.to_string()]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn device<'a>(picture: &'a Value, id: &str) -> &'a Value {
    picture["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {picture}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_reviews_to_what_happened_and_the_file_is_untouched() {
    let mut broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let settings = Settings::resolve(
        ConfigFile::default(),
        Overrides {
            broker: Some(broker.url()),
            db: Some(db.clone()),
            operator: Some("dana".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    let console = Pipeline::start(&settings).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || console.connection().connects
            > 0),
        "the console connects"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Two vans, a fix every 10 s for 10 minutes, starting 20 minutes ago: van-1 drives north
    // 0.001 deg per fix, van-2 stands still.
    let port = broker.port;
    let t0 = (now_ms() - 20 * 60_000) / 1000 * 1000;
    let published = tokio::task::spawn_blocking(move || {
        publish(
            port,
            "devices/van-1/status",
            &format!(r#"{{"online":true,"ts":{t0},"kind":"vehicle","name":"Van 1","battery":90}}"#),
            1,
            true,
        );
        let mut n = 0;
        for k in 0..60i64 {
            let ts = t0 + k * 10_000;
            let lat = 51.9 + 0.001 * k as f64;
            publish(
                port,
                "devices/van-1/location",
                &format!(r#"{{"ts":{ts},"lat":{lat},"lon":4.48,"speed":11.1}}"#),
                1,
                false,
            );
            publish(
                port,
                "devices/van-2/location",
                &format!(r#"{{"ts":{ts},"lat":51.8,"lon":4.4,"speed":0}}"#),
                1,
                false,
            );
            n += 2;
        }
        n
    })
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || try_query_i64(
            &db,
            "SELECT count(*) FROM positions"
        ) == published),
        "every fix stored"
    );

    // A panic, then the dispatcher's work on it at known instants.
    let now = now_ms();
    tokio::task::spawn_blocking(move || {
        publish(
            port,
            "devices/van-1/events",
            &format!(r#"{{"id":"p1","ts":{now},"type":"panic_button","severity":"critical","lat":51.95,"lon":4.48}}"#),
            1,
            false,
        )
    })
    .await
    .unwrap();
    let mut id = None;
    assert!(eventually(Duration::from_secs(15), || {
        id = try_query_text(&db, "SELECT id FROM incidents WHERE kind = 'panic_button'");
        id.is_some()
    }));
    let id = id.unwrap();
    let mut acted = Vec::new();
    for action in [
        IncidentAction::Acknowledge,
        IncidentAction::Assign { to: "bo".into() },
        IncidentAction::Resolve {
            note: "false alarm".into(),
        },
    ] {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let done = console
            .feed()
            .act(id.clone(), action, None)
            .await
            .unwrap()
            .expect("the action is allowed");
        acted.push(done.updated_ms);
    }
    console.shutdown().await;
    broker.stop();

    let opened_ms = query_i64(
        &db,
        "SELECT at_ms FROM incident_audit WHERE action = 'opened'",
    );
    // (That read-only look may leave an empty log and index beside the file: SQLite's doing,
    // and part of the "before" picture.)
    let (db_before, side_before) = (digest(&db), side_files(&db));

    // Positions: exactly on a fix, and halfway between two.
    let p = review_at(&db, t0 + 30_000);
    let v1 = device(&p, "van-1");
    assert_eq!(v1["lat"].as_f64(), Some(51.903));
    assert_eq!(v1["name"], "Van 1");
    assert_eq!(v1["battery"].as_f64(), Some(90.0));
    assert_eq!(
        v1["groups"],
        serde_json::json!([]),
        "no [groups] configured"
    );
    let p = review_at(&db, t0 + 35_000);
    let lat = device(&p, "van-1")["lat"].as_f64().unwrap();
    assert!((lat - 51.9035).abs() < 1e-9, "interpolated: {lat}");
    assert_eq!(device(&p, "van-2")["lat"].as_f64(), Some(51.8));
    // The reviewer's own [groups] place the recorded devices.
    let config = db.with_file_name("reviewer.toml");
    std::fs::write(
        &config,
        "[groups]\nVans = [\"van-*\"]\nFirst = [\"van-1\"]\n",
    )
    .unwrap();
    let (code, out, err) = run_with_output(&[
        "review",
        db.to_str().unwrap(),
        "--at",
        &(t0 + 35_000).to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let grouped: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        device(&grouped, "van-1")["groups"],
        serde_json::json!(["First", "Vans"])
    );
    assert_eq!(
        device(&grouped, "van-2")["groups"],
        serde_json::json!(["Vans"])
    );
    // Before anything was published: nobody.
    let p = review_at(&db, t0 - 1);
    assert_eq!(p["devices"].as_array().unwrap().len(), 0);
    // Long after the last fix: held there, and stale.
    let p = review_at(&db, t0 + 590_000 + 600_000);
    let v1 = device(&p, "van-1");
    assert_eq!(v1["lat"].as_f64(), Some(51.9 + 0.001 * 59.0));
    assert_eq!(v1["stale"], true);

    // Incidents as they stood, and their audit trail up to then.
    let state_at = |t: i64| {
        let p = review_at(&db, t);
        let incidents = p["incidents"].as_array().unwrap().clone();
        incidents
            .iter()
            .find(|i| i["incident"]["id"] == id.as_str())
            .map(|i| {
                (
                    i["incident"]["state"].as_str().unwrap().to_owned(),
                    i["incident"]["assignee"].as_str().map(str::to_owned),
                    i["audit"].as_array().unwrap().len(),
                )
            })
    };
    assert_eq!(state_at(opened_ms - 1), None, "not yet opened");
    assert_eq!(state_at(opened_ms), Some(("new".into(), None, 1)));
    assert_eq!(state_at(acted[0]), Some(("acknowledged".into(), None, 2)));
    assert_eq!(
        state_at(acted[2] - 1),
        Some(("assigned".into(), Some("bo".into()), 3))
    );
    assert_eq!(
        state_at(acted[2]),
        Some(("resolved".into(), Some("bo".into()), 4))
    );
    // A day after its resolution a console's list has let go of it: counted, not listed.
    let day = watchfloor_core::incidents::book::KEEP_RESOLVED_MS;
    assert_eq!(
        state_at(acted[2] + day - 1),
        Some(("resolved".into(), Some("bo".into()), 4))
    );
    assert_eq!(state_at(acted[2] + day), None);
    assert_eq!(
        review_at(&db, acted[2] + day)["incidents_resolved_earlier"],
        1
    );
    assert_eq!(review_at(&db, acted[2])["incidents_resolved_earlier"], 0);

    // Reports, against figures computed here.
    let (code, csv, err) = run_with_output(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--what",
        "incidents",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let header = csv.lines().next().unwrap().split(',').collect::<Vec<_>>();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let ack_s: f64 = rows[0][col("ack_s")].parse().unwrap();
    let resolve_s: f64 = rows[0][col("resolve_s")].parse().unwrap();
    assert_eq!(ack_s, (acted[0] - opened_ms) as f64 / 1000.0);
    assert_eq!(resolve_s, (acted[2] - opened_ms) as f64 / 1000.0);
    assert_eq!(&rows[0][col("acknowledged_by")], "dana");

    let (code, csv, err) = run_with_output(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--what",
        "availability",
        "--since",
        &t0.to_string(),
        "--until",
        &(t0 + 300_000).to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let fixes: Vec<(String, u32)> = csv::Reader::from_reader(csv.as_bytes())
        .deserialize::<(String, String, i64, f64, u32, u32, i64)>()
        .map(|r| {
            let r = r.unwrap();
            (r.0, r.4)
        })
        .collect();
    // Five minutes hold 30 of each van's fixes (every 10 s from t0).
    assert_eq!(fixes, [("van-1".into(), 30), ("van-2".into(), 30)]);

    let (code, html, _) = run_with_output(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--what",
        "incidents",
        "--format",
        "html",
    ]);
    assert_eq!(code, 0);
    assert!(html.contains("<svg") && html.contains("panic_button (critical)"));

    // Tracks out as KML: van-1's 60 fixes in one line.
    let (code, kml, err) = run_with_output(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--what",
        "tracks",
        "--format",
        "kml",
        "--device",
        "van-1",
    ]);
    assert_eq!(code, 0, "{err}");
    let coords = kml
        .split("<coordinates>")
        .nth(1)
        .and_then(|s| s.split("</coordinates>").next())
        .unwrap();
    assert_eq!(coords.split(' ').count(), 60);

    // A database from a newer Watchfloor is refused in words, and nothing was written.
    assert_eq!(
        digest(&db),
        db_before,
        "the history file's bytes are unchanged"
    );
    assert_eq!(
        side_files(&db),
        side_before,
        "the log and index beside it are as they were"
    );
    let newer = dir.path().join("newer.sqlite");
    std::fs::copy(&db, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let (code, _, err) = run_with_output(&["review", newer.to_str().unwrap(), "--at", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("newer than this Watchfloor"), "{err}");
}

/// The -wal and -shm beside the file: whether each exists, and the log's bytes.
fn side_files(db: &Path) -> (Option<Vec<u8>>, bool) {
    let beside = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    (std::fs::read(beside("-wal")).ok(), beside("-shm").exists())
}

fn try_query_text(db: &Path, sql: &str) -> Option<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(sql, [], |r| r.get(0)).ok()
}
