//! The command line's contract: bad flags and bad config values are one clear line naming the
//! value, with exit status 2.

mod common;

use common::run_to_end;

fn assert_usage_error(args: &[&str], needle: &str) {
    let (code, stderr) = run_to_end(args);
    assert_eq!(code, 2, "{args:?} is a usage error; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(lines[0].contains(needle), "{:?} names {needle:?}", lines[0]);
}

#[test]
fn unknown_flag_is_one_line_with_status_2() {
    assert_usage_error(&["record", "--brokr", "x"], "--brokr");
}

#[test]
fn bad_flag_value_names_the_value() {
    assert_usage_error(
        &["record", "--broker", "http://example.com"],
        "\"http://example.com\"",
    );
    assert_usage_error(&["record", "--simulate", "lots"], "lots");
    assert_usage_error(&["record", "--listen", "localhost"], "\"localhost\"");
    assert_usage_error(
        &["sim", "--devices", "5000000"],
        "5000000 is not in 0..=100000",
    );
}

#[test]
fn a_usage_error_keeps_what_clap_says_under_it_on_its_one_line() {
    // The arguments missing, not only that some are.
    assert_usage_error(
        &["export", "--db", "x.sqlite"],
        "the following required arguments were not provided: --what <WHAT>",
    );
    // The values possible.
    assert_usage_error(
        &["export", "--db", "x.sqlite", "--what", "nonsense"],
        "[possible values: positions,",
    );
    // The similar argument.
    assert_usage_error(
        &["record", "--brokr", "x"],
        "a similar argument exists: '--broker'",
    );
}

#[test]
fn a_command_without_its_subcommand_shows_its_help_with_status_2() {
    let (code, stderr) = run_to_end(&["credentials"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Usage: watchfloor credentials"), "{stderr}");
}

#[test]
fn listing_terminals_of_a_file_that_is_not_there_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("histroy.sqlite");
    let (code, stderr) = run_to_end(&["terminals", "list", "--db", typo.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!typo.exists(), "no empty history file made");
}

#[test]
fn a_listing_read_by_head_ends_quietly() {
    // `terminals list | head -c 1`: the reader goes away early; no panic, no error, exit 0. One
    // group of 5,000 terminals is a line larger than the pipe's buffer, so the write fails.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let db = db.to_str().unwrap();
    let terminals: Vec<String> = (0..5_000).map(|t| format!("terminal-{t:05}")).collect();
    let mut args = vec!["terminals", "group", "--db", db, "everyone"];
    args.extend(terminals.iter().map(String::as_str));
    assert_eq!(run_to_end(&args).0, 0);
    let bin = env!("CARGO_BIN_EXE_watchfloor");
    let err = dir.path().join("stderr.txt");
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{bin}' terminals list --db '{db}' 2>'{}' | head -c 1 > /dev/null",
            err.display()
        ))
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "", "nothing said");
}

#[test]
fn bad_config_value_names_the_value_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("watchfloor.toml");
    std::fs::write(&cfg, "[ui]\nbatch_interval_ms = 0\n").unwrap();
    assert_usage_error(
        &["record", "--config", cfg.to_str().unwrap()],
        "ui.batch_interval_ms \"0\"",
    );
    std::fs::write(&cfg, "topic_prefx = \"x\"\n").unwrap();
    assert_usage_error(
        &["record", "--config", cfg.to_str().unwrap()],
        "topic_prefx",
    );
    assert_usage_error(
        &["record", "--config", "/nonexistent/watchfloor.toml"],
        "/nonexistent/watchfloor.toml",
    );
}

#[test]
fn help_and_version_exit_zero() {
    let (code, _) = run_to_end(&["--version"]);
    assert_eq!(code, 0);
}

#[test]
fn export_refuses_bad_queries_and_missing_files_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sqlite");
    let missing = missing.to_str().unwrap();

    let (code, stderr) = run_to_end(&["export", "--db", missing, "--what", "events"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    let (code, stderr) = run_to_end(&[
        "export",
        "--db",
        missing,
        "--what",
        "events",
        "--since",
        "yesterday",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("yesterday"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (code, stderr) = run_to_end(&[
        "export", "--db", missing, "--what", "events", "--device", "a/b",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("a/b"), "{stderr}");

    let (code, stderr) = run_to_end(&["export", "--db", missing, "--what", "gps"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gps"), "{stderr}");
}

/// A face terminal written as it names itself (T-07) finds nothing: it is stored as the
/// console shows it (face:T-07), and export says so instead of an empty file without a word.
#[test]
fn export_of_a_terminal_by_its_bare_id_says_what_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let conn = watchfloor_core::store::open(&db).unwrap();
    conn.execute(
        "INSERT INTO statuses (device_id, ts_ms, online, simulated, received_ms)
         VALUES ('face:T-07', 1795000000000, 1, 0, 1795000000000)",
        [],
    )
    .unwrap();
    drop(conn);
    let db = db.to_str().unwrap();
    let (code, stderr) = run_to_end(&[
        "export", "--db", db, "--what", "statuses", "--device", "T-07",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no rows for device T-07; the file holds face:T-07"),
        "{stderr}"
    );
    let (code, stderr) = run_to_end(&[
        "export",
        "--db",
        db,
        "--what",
        "statuses",
        "--device",
        "face:T-07",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("no rows"), "{stderr}");
}

#[test]
fn a_running_sync_stopped_by_sigterm_stops_cleanly_instead_of_dying() {
    use common::Watchfloor;
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    // No broker listens there: the sync keeps trying, as it would through an outage.
    let broker = format!("mqtt://127.0.0.1:{}", common::free_port());
    let mut sync = Watchfloor::start(&["sync", "--db", db.to_str().unwrap(), "--broker", &broker]);
    sync.wait_for_log("syncing until", std::time::Duration::from_secs(30));
    let status = sync.stop_with(Signal::SIGTERM);
    // Its own summary's status (no terminal came online: 1), not death by the signal as before.
    assert_eq!(status.code(), Some(1), "{status:?}; log:\n{}", sync.log());
}

#[test]
fn a_report_on_a_file_with_nothing_in_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    drop(watchfloor_core::store::open(&db).unwrap());
    let (code, stderr) = run_to_end(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--what",
        "incidents",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("holds no fixes or statuses to report on: give --since and --until"),
        "not \"--until must be after --since\", which neither was given: {stderr}"
    );
}

#[test]
fn a_command_that_does_not_connect_does_not_read_the_certificate_files() {
    // A site's config copied to a reviewer's laptop: its CA file is not there, and that is no
    // reason to refuse an export.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    drop(watchfloor_core::store::open(&db).unwrap());
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        "broker = \"mqtts://broker.site.example:8883\"\n[mqtt]\nca_file = \"/nonexistent/site-ca.pem\"\n",
    )
    .unwrap();
    let (code, stderr) = run_to_end(&[
        "export",
        "--config",
        config.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--what",
        "positions",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[cfg(feature = "desktop")]
#[test]
fn a_console_with_no_display_says_so_before_it_starts_anything() {
    // Started over ssh or from a service: no window can open. It says why and exits 1, with no
    // pipeline started (no history file made), instead of a panic inside the window library.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(["--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_RUNTIME_DIR") // where GTK finds a Wayland compositor's default socket
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("watchfloor: cannot open a window") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing started");
}
