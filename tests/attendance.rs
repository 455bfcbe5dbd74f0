//! Attendance and intruders from a SIMULATED face terminal on a real Mosquitto, through the
//! console as a user runs it (`watchfloor record --config`), which also runs the employee sync:
//! imported employees reach the terminal; its records are stored once however often the terminal
//! re-pushes them, in the terminal's own zone; PushAck goes out once a record is stored (and,
//! when it was off, for the records still waiting after a restart); a block-list match and a
//! stranger capture open incidents with their images kept; the log joins the directory and the
//! daily report gives first in and last out.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use tokio_util::sync::CancellationToken;
use watchfloor_core::store::{self, attendance};
use watchfloor_sim::terminal::{self, SimRecord, TerminalConfig, TerminalStore};

fn config(dir: &Path, name: &str, push_ack: bool) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[face]\nsync = true\ntime_zone = \"UTC\"\npush_ack = {push_ack}\n\
             terminal_zones = {{ GATE = \"Asia/Dubai\" }}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn record(custom_id: Option<&str>, verify: u8, person_type: u8) -> SimRecord {
    SimRecord {
        custom_id: custom_id.map(str::to_owned),
        name: "as the terminal spells it".into(),
        verify,
        person_type,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_once_in_the_terminals_zone_answered_after_commit_and_raise_incidents() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let db_arg = db.display().to_string();
    std::fs::write(dir.path().join("face.jpg"), face_jpeg()).unwrap();
    let csv = dir.path().join("staff.csv");
    std::fs::write(
        &csv,
        "employee_id,name,photo,person_type\nE1,Ann Lee,face.jpg,allow\nE2,Bo Chan,face.jpg,allow\nE3,Cy Dorn,face.jpg,block\n",
    )
    .unwrap();
    let (code, out, err) = run_with_output(&[
        "employees",
        "import",
        csv.to_str().unwrap(),
        "--db",
        &db_arg,
    ]);
    assert_eq!(code, 0, "{out}{err}");

    // A terminal whose clock is set to Dubai (UTC+4), re-pushing unanswered records every 300 ms.
    let mut cfg = TerminalConfig::new("GATE", "127.0.0.1", broker.port);
    cfg.heartbeat = Duration::from_secs(2);
    cfg.repush = Duration::from_millis(300);
    cfg.utc_offset_s = Some(4 * 3600);
    let store = Arc::new(Mutex::new(TerminalStore::default()));
    let cancel = CancellationToken::new();
    let term = tokio::spawn(terminal::run(cfg, Arc::clone(&store), cancel.clone()));

    // The console, with PushAck off: the terminal keeps re-pushing.
    let no_ack = config(dir.path(), "no-ack.toml", false);
    let mut console = Watchfloor::record_with(&broker, &db, &["--config", &no_ack]);
    let synced = eventually(Duration::from_secs(30), || {
        store.lock().unwrap().persons.len() == 3
    });
    assert!(
        synced,
        "the console's sync did not put the three employees on the terminal:\n{}",
        console.log()
    );

    {
        let mut s = store.lock().unwrap();
        s.queue_record(record(Some("E1"), 1, 0)); // Ann comes in
        s.queue_record(record(Some("E2"), 2, 0)); // Bo is refused
        s.queue_record(record(Some("E3"), 1, 1)); // Cy is on the block list
        s.queue_record(record(None, 3, 0)); // a stranger
    }
    let stored = eventually(Duration::from_secs(15), || {
        try_query_i64(&db, "SELECT count(*) FROM attendance") == 3
            && store.lock().unwrap().record_pushes >= 12
    });
    let pushes = store.lock().unwrap().record_pushes;
    assert!(
        stored,
        "records not stored or not re-pushed ({pushes} pushes)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.lock().unwrap().queue_record(record(Some("E1"), 1, 0)); // Ann leaves
    assert!(eventually(Duration::from_secs(10), || {
        try_query_i64(&db, "SELECT count(*) FROM attendance") == 4
    }));
    {
        let s = store.lock().unwrap();
        assert_eq!(s.push_acks, 0, "PushAck was sent although turned off");
        assert_eq!(s.unacked.len(), 5);
    }
    assert_eq!(console.stop_with(Signal::SIGTERM).code(), Some(0));
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM attendance"),
        4,
        "every re-push stored once"
    );

    // Again with PushAck: the records still waiting are answered, and stored no twice.
    let with_ack = config(dir.path(), "ack.toml", true);
    let mut console = Watchfloor::record_with(&broker, &db, &["--config", &with_ack]);
    let answered = eventually(Duration::from_secs(15), || {
        let s = store.lock().unwrap();
        s.unacked.is_empty() && s.push_acks == 5
    });
    let unanswered: Vec<String> = store.lock().unwrap().unacked.keys().cloned().collect();
    assert!(answered, "unanswered: {unanswered:?}\n{}", console.log());
    assert_eq!(console.stop_with(Signal::SIGTERM).code(), Some(0));
    cancel.cancel();
    term.await.unwrap();

    let conn = store::open_read_only(&db).unwrap();
    // In Dubai's zone the terminal's clock reads now; read as UTC it would be 4 h in the future
    // (and refused).
    let skew = query_i64(&db, "SELECT max(abs(ts_ms - received_ms)) FROM attendance");
    assert!(
        skew < 60_000,
        "record times are {skew} ms off their receipt"
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM attendance WHERE ts_ms > received_ms + 5000"
        ),
        0
    );

    let log = attendance::log(&conn, &attendance::AttendanceFilter::default()).unwrap();
    let outcomes: Vec<(&str, &str, bool)> = log
        .iter()
        .map(|r| {
            (
                r.person_name.as_deref().unwrap_or("-"),
                r.outcome.as_str(),
                r.employee,
            )
        })
        .rev()
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Ann Lee", "granted", true),
            ("Bo Chan", "refused", true),
            ("Cy Dorn", "blocklist", true),
            ("Ann Lee", "granted", true),
        ],
        "names come from the directory"
    );
    let day = &log[0].local_time[..10];
    let report = attendance::daily(&conn, day, day).unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].person_id, "E1");
    assert_eq!(report[0].records, 2);
    assert!(report[0].first_in < report[0].last_out);

    for (kind, severity) in [
        ("blocklist_match", "critical"),
        ("stranger_capture", "high"),
    ] {
        assert_eq!(
            query_i64(
                &db,
                &format!("SELECT count(*) FROM incidents WHERE kind = '{kind}' AND severity = '{severity}'")
            ),
            1,
            "{kind} incident"
        );
        let images = attendance::event_images(&conn, "face:GATE", kind, 0, i64::MAX, 5).unwrap();
        assert_eq!(images.len(), 1, "{kind} image");
        assert!(images[0]
            .data_url
            .starts_with("data:image/jpeg;base64,/9j/"));
    }
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM face_images"),
        3,
        "the block-list match, the refusal and the stranger keep their image; the others do not"
    );
}

/// A push the console refuses (a similarity that is no number) is kept in quarantine with
/// its reason and still answered once that row is stored: a terminal with reliable re-push
/// would otherwise push it again for ever, a new quarantine row each time.
#[test]
fn a_push_refused_for_a_bad_field_is_quarantined_and_still_answered() {
    push_is_answered_and_kept(
        "",
        &chrono::Utc::now(),
        r#""similarity1":"high","#,
        Some("malformed"),
        None,
    );
}

/// A push stamped a day ahead of the console's clock (a terminal whose clock is wrong) is
/// kept, stamped on arrival, and answered: refused, it was answered all the same, and the
/// terminal deleted a record nobody could count.
#[test]
fn a_push_from_a_terminal_with_a_wrong_clock_is_kept_stamped_on_arrival_and_answered() {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    push_is_answered_and_kept("", &tomorrow, "", None, None);
}

#[test]
fn a_push_from_a_terminal_beyond_the_device_limit_is_quarantined_and_still_answered() {
    push_is_answered_and_kept(
        "[live]\nmax_devices = 1\n",
        &chrono::Utc::now(),
        "",
        Some("device_limit"),
        Some("veh-1"),
    );
}

/// A RecPush from terminal DOOR stamped `time`, with `extra_info` in its `info`, is answered
/// with a PushAck; refused with `reason_code` (after `fill_with`, when given, has reported and
/// so filled live state), it is kept in quarantine with its reason, else as an attendance row.
fn push_is_answered_and_kept(
    extra_config: &str,
    time: &chrono::DateTime<chrono::Utc>,
    extra_info: &str,
    reason_code: Option<&str>,
    fill_with: Option<&str>,
) {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let with_ack = config(dir.path(), "ack.toml", true);
    let with_ack = {
        let text = std::fs::read_to_string(&with_ack).unwrap();
        std::fs::write(&with_ack, format!("{extra_config}{text}")).unwrap();
        with_ack
    };
    let mut console = Watchfloor::record_with(&broker, &db, &["--config", &with_ack]);
    console.wait_for_log("connected to broker", Duration::from_secs(20));
    if let Some(device) = fill_with {
        assert!(try_publish_event(broker.port, device, "fills-live-state"));
        assert_events_stored(
            &db,
            &["fills-live-state".to_owned()],
            Duration::from_secs(15),
        );
    }

    let push = format!(
        r#"{{"operator":"RecPush","info":{{{extra_info}"facesluiceId":"DOOR","RecordID":"R-REFUSED","VerifyStatus":"1","time":"{}"}}}}"#,
        time.format("%Y-%m-%d %H:%M:%S")
    );
    // As a terminal does: push again until answered.
    let ack = publish_until_answered(broker.port, "mqtt/face/DOOR/Rec", &push, "mqtt/face/DOOR");
    let Some(ack) = ack else {
        panic!("no PushAck for the refused push:\n{}", console.log())
    };
    assert_eq!(ack["operator"], "PushAck");
    assert_eq!(ack["info"]["SnapOrRecordID"], "R-REFUSED");
    assert_eq!(ack["info"]["PushAckType"], "1");
    assert_eq!(console.stop_with(Signal::SIGTERM).code(), Some(0));

    let Some(reason_code) = reason_code else {
        assert_eq!(query_i64(&db, "SELECT count(*) FROM quarantine"), 0);
        assert_eq!(
            query_i64(
                &db,
                "SELECT count(*) FROM attendance WHERE record_id LIKE 'R-REFUSED@%'
                 AND abs(ts_ms - received_ms) < 60000"
            ),
            1,
            "kept, stamped on arrival"
        );
        return;
    };
    assert!(
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM quarantine WHERE topic = 'mqtt/face/DOOR/Rec' \
                 AND reason_code = '{reason_code}'"
            )
        ) >= 1,
        "the refused push is kept with its reason"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM attendance"), 0);
}
