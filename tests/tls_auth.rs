//! TLS and authentication against a real Mosquitto that requires both a client certificate and a
//! username/password: the recorder connects with the configured CA, client certificate and
//! password (from the environment, or from a real OS keyring: GNOME Keyring on a private session
//! bus), refuses a broker whose certificate it cannot verify unless the config names that very
//! broker as unverified, and refuses a plaintext password in the config file and a key file
//! others can read.

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
            tls.private_client_key()
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

    // Simulated devices reach the same broker as the console does: its CA, client certificate
    // and password (they went without, and were refused, before).
    let mut sim = Watchfloor::start_with_env(
        &[
            "sim",
            "--devices",
            "3",
            "--terminals",
            "1",
            "--broker",
            &format!("mqtts://127.0.0.1:{}", broker.port),
            "--config",
            config(dir.path(), &tls, true).to_str().unwrap(),
        ],
        &[("WATCHFLOOR_MQTT_PASSWORD", "s3cret")],
    );
    let simulated = || {
        common::try_query_i64(
            &db,
            "SELECT count(DISTINCT device_id) FROM statuses WHERE simulated = 1",
        )
    };
    assert!(
        common::eventually(Duration::from_secs(20), || simulated() == 3),
        "3 simulated devices recorded, got {}; sim log:\n{}",
        simulated(),
        sim.log()
    );
    // And so does the simulated face terminal (its Online is recorded as a status).
    let terminal = || {
        common::try_query_i64(
            &db,
            "SELECT count(*) FROM statuses WHERE device_id LIKE '%sim-terminal-1'",
        )
    };
    assert!(
        common::eventually(Duration::from_secs(20), || terminal() > 0),
        "the simulated terminal recorded; sim log:\n{}",
        sim.log()
    );
    assert!(sim.stop_with(Signal::SIGTERM).success());
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

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Linux only: the keyring is a private D-Bus session with GNOME Keyring (the Secret Service).
#[cfg(target_os = "linux")]
#[test]
fn the_password_and_client_key_come_from_the_os_keyring_and_nowhere_else() {
    let tls = TlsFiles::generate();
    let broker = Mosquitto::start_tls(&tls, "console", "kr-s3cret");
    let keyring = SessionKeyring::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    // No password and no client_key in the file: both come from the keyring.
    let cfg = write(
        dir.path(),
        "keyring.toml",
        &format!(
            "[mqtt]\nusername = \"console\"\nca_file = \"{}\"\nclient_cert = \"{}\"\n",
            tls.path("ca.pem"),
            tls.path("client.pem")
        ),
    );
    let creds = |sub: &[&str], input: &str| {
        let mut args = vec!["credentials"];
        args.extend_from_slice(sub);
        args.extend_from_slice(&["--broker", &url, "--config", &cfg]);
        run_with_input(&args, &keyring.env(), input)
    };
    let (code, out, err) = creds(&["set-password"], "kr-s3cret\n");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("stored the password of console at 127.0.0.1"),
        "{out}"
    );
    let key = tls.private_client_key();
    let (code, _, err) = creds(&["import-key", &key], "");
    assert_eq!(code, 0, "{err}");
    let (_, status, _) = creds(&["status"], "");
    assert_eq!(status.matches(": stored").count(), 2, "{status}");
    assert!(
        !status.contains("kr-s3cret"),
        "status never shows a secret: {status}"
    );

    let env: Vec<(&str, String)> = keyring.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut rec = Watchfloor::start_with_env(
        &[
            "record",
            "--broker",
            &url,
            "--db",
            db.to_str().unwrap(),
            "--config",
            &cfg,
        ],
        &env,
    );
    rec.wait_for_log("connected to broker", Duration::from_secs(10));
    assert!(
        rec.log().contains("broker password from the OS keyring"),
        "{}",
        rec.log()
    );
    assert!(
        !rec.log().contains("kr-s3cret"),
        "the password never reaches the log"
    );
    assert!(rec.stop_with(Signal::SIGTERM).success());

    // Without the keyring (no session bus), the client key cannot be had: refused at start,
    // in one line that says where it should have come from.
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        &url,
        "--db",
        db.to_str().unwrap(),
        "--config",
        &cfg,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("OS keyring"), "{err}");

    let (code, out, _) = creds(&["delete"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("removed the password of console") && out.contains("the client key"),
        "{out}"
    );
    let (_, status, _) = creds(&["status"], "");
    assert_eq!(status.matches("not stored").count(), 2, "{status}");
}

#[test]
fn an_unverified_broker_is_reached_only_where_named_and_said_loudly() {
    let tls = TlsFiles::generate();
    let broker = Mosquitto::start_tls(&tls, "console", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    // No ca_file: the system roots do not know the test CA; verification is off for this broker.
    let cfg = write(
        dir.path(),
        "unverified.toml",
        &format!(
            "[mqtt]\nusername = \"console\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\ninsecure_skip_verify = \"127.0.0.1:{}\"\n",
            tls.path("client.pem"),
            tls.private_client_key(),
            broker.port
        ),
    );
    let mut rec = record_tls(&broker, &db, std::path::Path::new(&cfg), "s3cret");
    rec.wait_for_log("connected to broker", Duration::from_secs(10));
    assert!(rec.log().contains("NOT VERIFIED"), "{}", rec.log());
    assert!(rec.stop_with(Signal::SIGTERM).success());

    // Named for another port: refused at start.
    let other = write(
        dir.path(),
        "other.toml",
        &format!(
            "[mqtt]\ninsecure_skip_verify = \"127.0.0.1:{}\"\n",
            broker.port + 1
        ),
    );
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        &url,
        "--db",
        db.to_str().unwrap(),
        "--config",
        &other,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("names another broker"), "{err}");
}

#[test]
fn plaintext_secrets_are_refused_at_start() {
    let tls = TlsFiles::generate();
    let dir = tempfile::tempdir().unwrap();
    let plain = write(
        dir.path(),
        "plain.toml",
        "[mqtt]\nusername = \"u\"\npassword = \"hunter2\"\n",
    );
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--config",
        &plain,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("credentials set-password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let open_key = write(
        dir.path(),
        "open-key.toml",
        &format!(
            "[mqtt]\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
            tls.path("ca.pem"),
            tls.path("client.pem"),
            tls.path("client.key") // world-readable
        ),
    );
    let (code, err) = run_to_end(&[
        "record",
        "--broker",
        "mqtts://127.0.0.1:1",
        "--config",
        &open_key,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("readable by other users"), "{err}");
}
