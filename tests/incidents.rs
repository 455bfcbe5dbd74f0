//! Incidents across consoles on a real Mosquitto: two consoles (pipelines in this process, each
//! with its own history file and operator) open one incident for one device event, see each
//! other's acknowledgement and assignment, a console started later receives the current
//! picture from the retained topic, hostile incident messages are quarantined, and each history
//! file holds the incident and its audit trail.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use watchfloor_core::incidents::{Incident, IncidentAction, IncidentState, SeenIncident};
use watchfloor_core::settings::{ConfigFile, Overrides};
use watchfloor_core::{Pipeline, Settings};

async fn console(broker: &Mosquitto, db: &Path, operator: &str) -> Pipeline {
    let settings = Settings::resolve(
        ConfigFile::default(),
        Overrides {
            broker: Some(broker.url()),
            db: Some(db.to_owned()),
            operator: Some(operator.into()),
            ..Overrides::default()
        },
    )
    .expect("valid settings");
    Pipeline::start(&settings).await.expect("pipeline starts")
}

/// Polls the console's snapshot until an incident satisfies `check`.
async fn wait_for_incident(
    p: &Pipeline,
    what: &str,
    check: impl Fn(&Incident) -> bool,
) -> (Incident, Duration) {
    let started = Instant::now();
    loop {
        let snap = p.feed().snapshot().await.expect("pipeline runs");
        if let Some(i) = snap.incidents.iter().find(|i| check(i)) {
            return (i.clone(), started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: not seen within 15 s; incidents held: {:?}",
            snap.incidents
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn publish_async(port: u16, topic: &'static str, payload: String, retain: bool) {
    tokio::task::spawn_blocking(move || publish(port, topic, &payload, 1, retain))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consoles_on_one_broker_share_one_picture_of_incidents() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let (db_a, db_b, db_c) = (
        dir.path().join("a.sqlite"),
        dir.path().join("b.sqlite"),
        dir.path().join("c.sqlite"),
    );
    let a = console(&broker, &db_a, "ana").await;
    let b = console(&broker, &db_b, "bo").await;
    for p in [&a, &b] {
        let ok = tokio::time::timeout(Duration::from_secs(10), async {
            while p.connection().connects == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        ok.await.expect("console connects");
    }
    // Let both subscriptions settle before the event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let port = broker.port;
    let now = now_ms();
    publish_async(
        port,
        "devices/v1/status",
        format!(r#"{{"online":true,"ts":{now},"kind":"vehicle","name":"Van 1"}}"#),
        true,
    )
    .await;
    publish_async(
        port,
        "devices/v1/events",
        format!(r#"{{"id":"e1","ts":{now},"type":"panic_button","severity":"critical","lat":51.9,"lon":4.48}}"#),
        false,
    )
    .await;

    let is_panic = |i: &Incident| i.source == "v1" && i.kind == "panic_button";
    let (on_a, _) = wait_for_incident(&a, "panic on A", is_panic).await;
    let (on_b, _) = wait_for_incident(&b, "panic on B", is_panic).await;
    assert_eq!(on_a.id, on_b.id, "one device event, one incident id");
    assert_eq!(on_a.title, "Van 1: panic button");
    assert_eq!((on_a.lat, on_a.lon), (Some(51.9), Some(4.48)));
    let id = on_a.id.clone();

    // Ana acknowledges on A; B shows it.
    let acked = a
        .feed()
        .act(id.clone(), IncidentAction::Acknowledge, None)
        .await
        .unwrap()
        .expect("a new incident can be acknowledged");
    assert_eq!(acked.version, 2);
    let (seen, took) = wait_for_incident(&b, "ack on B", |i| {
        i.id == id && i.state == IncidentState::Acknowledged
    })
    .await;
    assert_eq!(seen.updated_by, "ana");
    eprintln!("acknowledgement on A reached B in {took:?}");

    // Bo assigns it to himself on B; A shows it.
    b.feed()
        .act(id.clone(), IncidentAction::Assign { to: "bo".into() }, None)
        .await
        .unwrap()
        .unwrap();
    let (seen, _) = wait_for_incident(&a, "assign on A", |i| {
        i.id == id && i.state == IncidentState::Assigned
    })
    .await;
    assert_eq!((seen.assignee.as_deref(), seen.version), (Some("bo"), 3));

    // Ana, whose screen still showed it acknowledged and unassigned, presses "assign to me":
    // refused, saying who has it, and Bo keeps it.
    let as_ana_saw = SeenIncident {
        state: IncidentState::Acknowledged,
        severity: acked.severity,
        assignee: None,
    };
    let refused = a
        .feed()
        .act(
            id.clone(),
            IncidentAction::Assign { to: "ana".into() },
            Some(as_ana_saw),
        )
        .await
        .unwrap()
        .expect_err("an incident assigned since it was seen is not taken over");
    assert_eq!(refused.code(), "incident_changed");
    assert!(refused.to_string().contains("assigned to bo"), "{refused}");
    let (held, _) = wait_for_incident(&a, "A still holds Bo's", |i| i.id == id).await;
    assert_eq!((held.assignee.as_deref(), held.version), (Some("bo"), 3));

    // A repeat of the cause bumps the counter on both, not a second incident.
    publish_async(
        port,
        "devices/v1/events",
        format!(
            r#"{{"id":"e2","ts":{},"type":"panic_button","severity":"critical"}}"#,
            now + 1
        ),
        false,
    )
    .await;
    wait_for_incident(&a, "repeat on A", |i| i.id == id && i.count == 2).await;
    wait_for_incident(&b, "repeat on B", |i| i.id == id && i.count == 2).await;

    // The van's last will: an offline incident (vehicles are watched by default).
    publish_async(
        port,
        "devices/v1/status",
        format!(r#"{{"online":false,"ts":{}}}"#, now + 2),
        true,
    )
    .await;
    let (offline, _) = wait_for_incident(&a, "offline on A", |i| i.kind == "offline").await;
    assert_eq!(offline.title, "Van 1 (vehicle) went offline");

    // A hostile message on the incident topic is quarantined, and changes nothing.
    publish_async(port, "watchfloor/incidents/zz", "{\"id\":1}".into(), false).await;
    publish_async(
        port,
        "watchfloor/incidents/0123456789abcdef",
        "not json".into(),
        false,
    )
    .await;
    // A forged copy of the open offline incident at the last version every console accepts
    // would leave it unable to take another change: quarantined.
    let mut forged = offline.clone();
    forged.version = (1 << 53) - 1;
    forged.state = IncidentState::Acknowledged;
    let forged_topic: &'static str =
        Box::leak(format!("watchfloor/incidents/{}", offline.id).into_boxed_str());
    publish_async(
        port,
        forged_topic,
        serde_json::to_string(&forged).unwrap(),
        true,
    )
    .await;
    // Published retained, it replaced the true copy on the broker for a moment: A and B put
    // theirs back, so a console started later hears of the incident. (At most once every 10 s
    // per incident: one put back earlier in this test, when the two consoles raised it at once,
    // can hold this one back that long; the wait covers it.)
    let restored = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(25), || {
            retained(port, forged_topic).is_some_and(|r| {
                serde_json::from_str::<Incident>(&r).is_ok_and(|i| i.version < 1_000)
            })
        })
    });
    assert!(restored.await.unwrap(), "the forged copy is still retained");

    // A console started later gets the current picture from the retained messages.
    let c = console(&broker, &db_c, "cy").await;
    let (late, _) = wait_for_incident(&c, "retained state on C", |i| i.id == id).await;
    assert_eq!(
        (late.state, late.assignee.as_deref(), late.count),
        (IncidentState::Assigned, Some("bo"), 2)
    );
    // ...and resolving it there reaches the first two.
    c.feed()
        .act(
            id.clone(),
            IncidentAction::Resolve {
                note: "driver pressed by mistake".into(),
            },
            None,
        )
        .await
        .unwrap()
        .unwrap();
    for p in [&a, &b] {
        wait_for_incident(p, "resolution", |i| {
            i.id == id && i.state == IncidentState::Resolved
        })
        .await;
    }
    // Invalid actions are refused with a reason.
    let refused = a
        .feed()
        .act(id.clone(), IncidentAction::Acknowledge, None)
        .await
        .unwrap();
    assert_eq!(refused.unwrap_err().code(), "invalid_transition");

    for p in [a, b, c] {
        p.shutdown().await;
    }
    for db in [&db_a, &db_b] {
        assert_eq!(query_i64(db, "SELECT count(*) FROM incidents"), 2, "{db:?}");
        let trail = audit(db, &id);
        assert_eq!(
            trail,
            [
                ("system", "opened"),
                ("ana", "acknowledged"),
                ("bo", "assigned"),
                ("cy", "resolved"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned())),
            "audit trail in {db:?}"
        );
        assert_eq!(
            query_i64(
                db,
                "SELECT count(*) FROM quarantine WHERE topic LIKE 'watchfloor/incidents/%'"
            ),
            3,
            "hostile incident messages quarantined in {db:?}"
        );
        assert_eq!(
            query_i64(
                db,
                "SELECT count(*) FROM quarantine WHERE reason_code = 'incident_out_of_bounds'
                 AND reason LIKE 'version 9007199254740991 is more than 10000000 past%'"
            ),
            1,
            "{db:?}"
        );
        assert_eq!(
            query_i64(
                db,
                "SELECT count(*) FROM incidents WHERE kind = 'offline' AND state = 'new'"
            ),
            1,
            "the offline incident as it was, in {db:?}"
        );
    }
}

fn audit(db: &Path, id: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    watchfloor_core::store::incidents::audit(&conn, id)
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.action))
        .collect()
}

/// The retained message on `topic`, if the broker holds one (a fresh `mosquitto_sub`).
fn retained(port: u16, topic: &str) -> Option<String> {
    let out = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic])
        .args(["--retained-only", "-C", "1", "-W", "2"])
        .output()
        .expect("mosquitto_sub is installed");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_incidents_leave_the_broker_and_a_losing_edit_never_reaches_the_file() {
    let broker = Mosquitto::start();
    let port = broker.port;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.sqlite");
    // An incident resolved two days ago, still retained by the broker (every console has
    // forgotten it: it would be replayed at every reconnect, for ever).
    let now = now_ms();
    let old_id = "00000000000000aa";
    let old = format!(
        r#"{{"id":"{old_id}","source":"v9","kind":"panic_button","severity":"critical",
        "title":"Van 9: panic button","state":"resolved","assignee":null,"resolution":"ok",
        "count":1,"first_seen_ms":{t},"last_seen_ms":{t},"lat":null,"lon":null,"version":2,
        "updated_ms":{t},"updated_by":"ana","last_change":{{"action":"resolved","detail":"ok"}}}}"#,
        t = now - 2 * 24 * 3600 * 1000
    );
    let old_topic = "watchfloor/incidents/00000000000000aa";
    let published = old.clone();
    tokio::task::spawn_blocking(move || publish(port, old_topic, &published, 1, true))
        .await
        .unwrap();
    assert!(retained(port, old_topic).is_some());

    // Another, which A itself resolved (version 3) and forgot two days ago, republished open
    // at version 2 by a console that was away since before the resolution.
    let away_id = "00000000000000cc";
    {
        let conn = watchfloor_core::store::open(&db).unwrap();
        let forgotten = old
            .replace(old_id, away_id)
            .replace(r#""version":2"#, r#""version":3"#);
        let i: Incident = serde_json::from_str(&forgotten).unwrap();
        watchfloor_core::store::incidents::upsert(
            &mut conn
                .prepare(watchfloor_core::store::incidents::UPSERT)
                .unwrap(),
            &i,
        )
        .unwrap();
    }
    let from_away = old
        .replace(old_id, away_id)
        .replace(r#""state":"resolved""#, r#""state":"acknowledged""#)
        .replace(r#""resolution":"ok""#, r#""resolution":null"#)
        .replace(
            r#""action":"resolved","detail":"ok""#,
            r#""action":"acknowledged","detail":null"#,
        );
    let away_topic = "watchfloor/incidents/00000000000000cc";
    tokio::task::spawn_blocking(move || publish(port, away_topic, &from_away, 1, true))
        .await
        .unwrap();

    // What the away console hears on that topic from now on.
    let heard = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", away_topic])
        .args(["-C", "3", "-W", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let a = console(&broker, &db, "ana").await;
    // A answers the away console's old copy with the last version in its history file, once
    // and not retained: the away console takes it (it is newer) and stops showing it open.
    let heard = tokio::task::spawn_blocking(move || heard.wait_with_output().unwrap())
        .await
        .unwrap();
    let answered = String::from_utf8_lossy(&heard.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Incident>(l).ok())
        .any(|i| i.version == 3 && i.state == IncidentState::Resolved);
    assert!(
        answered,
        "no answer from history: {}",
        String::from_utf8_lossy(&heard.stdout)
    );
    // A takes neither back, and clears both from the broker.
    let cleared = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            retained(port, old_topic).is_none() && retained(port, away_topic).is_none()
        })
    });
    assert!(
        cleared.await.unwrap(),
        "the expired or forgotten incident is still retained"
    );
    let snap = a.feed().snapshot().await.unwrap();
    assert!(snap
        .incidents
        .iter()
        .all(|i| i.id != old_id && i.id != away_id));

    // An incident A opened (version 1), then an edit of the same version that loses the
    // tie-break (resolved, where A's is open), published retained as every console does: A
    // keeps its own, in memory and in the file, and puts it back on the broker.
    publish_async(
        port,
        "devices/v1/events",
        format!(r#"{{"id":"e1","ts":{now},"type":"panic_button","severity":"critical"}}"#),
        false,
    )
    .await;
    let (held, _) = wait_for_incident(&a, "panic on A", |i| i.source == "v1").await;
    let mut loser = held.clone();
    loser.state = IncidentState::Resolved;
    loser.resolution = Some("forged".into());
    loser.updated_ms = held.updated_ms - 1;
    loser.updated_by = "system".into();
    let loser_topic: &'static str =
        Box::leak(format!("watchfloor/incidents/{}", held.id).into_boxed_str());
    let before = a.metrics().snapshot().messages_incidents;
    publish_async(
        port,
        loser_topic,
        serde_json::to_string(&loser).unwrap(),
        true,
    )
    .await;
    // A cleared retained message from another console (an empty message) is no error.
    let cleared = tokio::task::spawn_blocking(move || {
        std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-r",
                "-n",
            ])
            .args(["-t", "watchfloor/incidents/00000000000000bb"])
            .status()
            .expect("mosquitto_pub is installed")
    });
    assert!(cleared.await.unwrap().success());
    let metrics = a.metrics();
    let taken = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            metrics.snapshot().messages_incidents >= before + 2
        })
    });
    assert!(taken.await.unwrap(), "both messages reach the console");
    let snap = a.feed().snapshot().await.unwrap();
    let kept = snap.incidents.iter().find(|i| i.id == held.id).unwrap();
    assert_eq!((kept.state, kept.version), (IncidentState::New, 1));
    // The broker held the loser for a moment; a console started now gets A's.
    let restored = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            retained(port, loser_topic).is_some_and(|r| {
                serde_json::from_str::<Incident>(&r).is_ok_and(|i| i.state == IncidentState::New)
            })
        })
    });
    assert!(
        restored.await.unwrap(),
        "the broker still holds the losing copy: {:?}",
        retained(port, loser_topic)
    );
    a.shutdown().await; // the writer commits what it was given
    let stored = |sql: &str| query_i64(&db, &sql.replace("ID", &held.id));
    assert_eq!(
        stored("SELECT count(*) FROM incidents WHERE id = 'ID' AND state = 'new' AND resolution IS NULL"),
        1,
        "the file holds A's version, not the losing edit"
    );
    assert_eq!(
        stored("SELECT count(*) FROM incidents WHERE id = '00000000000000aa'"),
        0
    );
    assert_eq!(stored("SELECT count(*) FROM quarantine"), 0);
}

/// A window's feed hears that live state stopped, although the feed (and so the batch channel)
/// is still held: the desktop says so instead of freezing the map under "connected".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_hears_that_live_state_stopped() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let p = console(&broker, &dir.path().join("h.sqlite"), "ana").await;
    let feed = p.feed();
    let mut batches = feed.subscribe();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), feed.ended())
            .await
            .is_err(),
        "running: not ended"
    );
    p.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), feed.ended())
        .await
        .expect("the feed hears the end of live state");
    // The batch channel itself stays open while the feed is held: waiting on it alone would
    // wait for ever.
    while batches.try_recv().is_ok() {}
    assert!(matches!(
        batches.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Empty)
    ));
}

/// An idle console writes nothing: the tick's empty incident drain once sent an empty record
/// to the writer ten times a second, which filled its outbox in minutes during a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_console_sends_its_writer_nothing() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let p = console(&broker, &dir.path().join("h.sqlite"), "ana").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = p.writer_stats();
    assert_eq!(
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "twenty ticks of nothing to store"
    );
    p.shutdown().await;
}
