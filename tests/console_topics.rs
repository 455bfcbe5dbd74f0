//! The console's own topics against a real Mosquitto: retained presence (online after connect,
//! offline after a clean stop, offline through the last will after `kill -9`) and the probe
//! that comes back through the broker.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// The retained presence of every console, as an independent client sees it.
fn presences(port: u16) -> Vec<serde_json::Value> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "watchfloor/consoles/+", "--retained-only", "-W", "1"])
        .output()
        .expect("mosquitto_sub is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("presence is JSON"))
        .collect()
}

fn online(port: u16) -> Option<bool> {
    presences(port).first().and_then(|p| p["online"].as_bool())
}

#[test]
fn presence_is_retained_and_follows_clean_stops_and_crashes() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");

    let mut rec = Watchfloor::record(&broker, &db);
    assert!(
        eventually(Duration::from_secs(10), || online(broker.port)
            == Some(true)),
        "online presence after connect: {:?}",
        presences(broker.port)
    );
    let p = presences(broker.port);
    assert_eq!(p.len(), 1);
    assert!(p[0]["ts"].as_i64().unwrap() > 0 && p[0]["version"].is_string());

    assert!(rec.stop_with(Signal::SIGTERM).success());
    assert_eq!(
        online(broker.port),
        Some(false),
        "a clean stop says offline"
    );

    let mut rec = Watchfloor::record(&broker, &db);
    assert!(eventually(Duration::from_secs(10), || online(broker.port)
        == Some(true)));
    rec.stop_with(Signal::SIGKILL);
    assert!(
        eventually(Duration::from_secs(10), || online(broker.port)
            == Some(false)),
        "the last will marks a killed console offline"
    );
    assert_eq!(
        presences(broker.port).len(),
        1,
        "same console id, one presence"
    );
}

#[test]
fn the_probe_comes_back_through_the_broker_with_a_round_trip() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let mut rec = Watchfloor::record(&broker, &db);
    rec.wait_for_log("broker probe came back", Duration::from_secs(20));
    let line = rec
        .log()
        .lines()
        .find(|l| l.contains("broker probe came back"))
        .unwrap()
        .to_owned();
    let rtt: f64 = line
        .split("rtt_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rtt in {line:?}"));
    assert!(rtt > 0.0 && rtt < 10_000.0, "round trip {rtt} ms");
    assert_eq!(
        try_query_i64(&db, "SELECT count(*) FROM quarantine"),
        0,
        "probes and presence are not mistaken for device messages"
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());
}
