//! The embedded broker (rumqttd) that runs when no broker is configured: it must honour
//! retained messages and last wills, which device status depends on, and carry a simulated
//! fleet end to end into the history file.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

fn start_embedded(db: &std::path::Path, extra: &[&str]) -> (Watchfloor, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["record", "--listen", &listen, "--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    let rec = Watchfloor::start(&args);
    rec.wait_for_log("embedded broker listening", Duration::from_secs(10));
    rec.wait_for_log("connected to broker", Duration::from_secs(10));
    (rec, port)
}

/// One message from `topic` via `mosquitto_sub`, or None after `secs`.
fn receive_one(port: u16, topic: &str, secs: u32) -> Option<String> {
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            &secs.to_string(),
        ])
        .stderr(Stdio::null())
        .output()
        .expect("mosquitto_sub is installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn embedded_broker_honours_retained_messages_and_last_wills() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rec, port) = start_embedded(&dir.path().join("h.sqlite"), &[]);

    publish(port, "test/retained", "kept", 1, true);
    assert_eq!(
        receive_one(port, "test/retained", 5).as_deref(),
        Some("kept"),
        "a later subscriber gets the retained message"
    );

    // A client with a retained will, killed without DISCONNECT.
    let mut doomed = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "test/ignored",
            "-i",
            "doomed",
        ])
        .args([
            "--will-topic",
            "test/will",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
            "--will-retain",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("mosquitto_sub is installed");
    std::thread::sleep(Duration::from_millis(500));
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    assert_eq!(
        receive_one(port, "test/will", 5).as_deref(),
        Some("gone"),
        "the will is published and retained"
    );

    assert_eq!(rec.stop_with(Signal::SIGTERM).code(), Some(0));
}

#[test]
fn simulated_fleet_reaches_history_through_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let (mut rec, _port) = start_embedded(&db, &["--simulate", "5"]);

    assert!(
        eventually(Duration::from_secs(15), || try_query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM positions"
        ) == 5),
        "all five simulated devices report positions; log:\n{}",
        rec.log()
    );
    rec.wait_for_log("simulated=true", Duration::from_secs(5));
    assert_eq!(
        rec.stop_with(Signal::SIGTERM).code(),
        Some(0),
        "log:\n{}",
        rec.log()
    );
    // On a clean stop each simulated device says goodbye with a retained offline status.
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM statuses WHERE online = 0 AND simulated = 1"
        ),
        5
    );
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM quarantine"),
        0,
        "the simulator speaks the documented format"
    );
}
