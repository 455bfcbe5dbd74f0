//! TLS and authentication against a real Mosquitto that requires both a client certificate and a
//! username/password: the recorder connects with the configured CA, client certificate and
//! password (from the environment, never the config file), and refuses a broker whose
//! certificate it cannot verify.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

fn config(dir: &std::path::Path, tls: &TlsFiles, with_ca: bool) -> std::path::PathBuf {
    let mut text = String::from("[mqtt]\nusername = \"console\"\n");
    if with_ca {
        text += &format!(
            "ca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
            tls.path("ca.pem"),
            tls.path("client.pem"),
            tls.path("client.key")
        );
    }
    let path = dir.join(if with_ca { "good.toml" } else { "no-ca.toml" });
    std::fs::write(&path, text).unwrap();
    path
}

fn record_tls(
    broker: &Mosquitto,
    db: &std::path::Path,
    config: &std::path::Path,
    password: &str,
) -> Watchfloor {
    Watchfloor::start_with_env(
        &[
            "record",
            "--broker",
            &format!("mqtts://127.0.0.1:{}", broker.port),
            "--db",
            db.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("WATCHFLOOR_MQTT_PASSWORD", password)],
    )
}

#[test]
fn mqtts_with_a_private_ca_client_certificate_and_password_records_and_verifies() {
    let tls = TlsFiles::generate();
    let broker = Mosquitto::start_tls(&tls, "console", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");

    let mut rec = record_tls(&broker, &db, &config(dir.path(), &tls, true), "s3cret");
    rec.wait_for_log("connected to broker", Duration::from_secs(10));
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1"])
        .args([
            "--cafile",
            &tls.path("ca.pem"),
            "--cert",
            &tls.path("client.pem"),
            "--key",
            &tls.path("client.key"),
        ])
        .args([
            "-u",
            "console",
            "-P",
            "s3cret",
            "-t",
            "devices/cam-1/events",
        ])
        .args([
            "-m",
            &format!(
                r#"{{"id":"tls-1","ts":{},"type":"panic","severity":"critical"}}"#,
                now_ms()
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_events_stored(&db, &["tls-1".to_owned()], Duration::from_secs(10));
    assert!(
        !rec.log().contains("s3cret"),
        "the password never reaches the log"
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());

    // A wrong password: refused by the broker, said in the log, retried with backoff.
    let mut rec = record_tls(&broker, &db, &config(dir.path(), &tls, true), "wrong");
    rec.wait_for_log("broker connection failed", Duration::from_secs(10));
    assert!(!rec.log().contains("connected to broker"), "{}", rec.log());
    rec.stop_with(Signal::SIGTERM);

    // No CA configured: the system roots do not know our test CA, so the broker is refused.
    let mut rec = record_tls(&broker, &db, &config(dir.path(), &tls, false), "s3cret");
    rec.wait_for_log("broker connection failed", Duration::from_secs(10));
    let log = rec.log();
    assert!(
        log.contains("UnknownIssuer") || log.to_lowercase().contains("certificate"),
        "the failure names the certificate problem: {log}"
    );
    assert!(!log.contains("connected to broker"), "{log}");
    rec.stop_with(Signal::SIGTERM);
}

#[test]
fn tls_settings_that_cannot_work_are_refused_at_start() {
    let tls = TlsFiles::generate();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tls, true);
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("mqtt.ca_file") && err.contains("mqtts://"),
        "{err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("[mqtt]\nca_file = \"{}\"\n", tls.path("ca.key")),
    )
    .unwrap();
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        "mqtts://127.0.0.1:1",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a PEM file with a CERTIFICATE"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
