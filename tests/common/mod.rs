//! Helpers for the end-to-end tests: a real Mosquitto on a free port, the real `watchfloor`
//! binary as a child process, and reads of the history file it writes. Every process started
//! here is stopped by its guard's `Drop`, pass or fail.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback is available")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Polls `check` until it returns true or `timeout` passes; returns whether it did.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mosquitto from the system packages, on a free loopback port, anonymous, no persistence.
pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/setup.sh installs it)");
        wait_for_port(port, "mosquitto");
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto_binary() -> PathBuf {
    // Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    for p in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "mosquitto".into()
}

/// Publishes one message with `mosquitto_pub` (a real, independent MQTT client).
pub fn publish(port: u16, topic: &str, payload: &str, qos: u8, retain: bool) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-m",
        payload,
        "-q",
        &qos.to_string(),
    ]);
    if retain {
        cmd.arg("-r");
    }
    let status = cmd.status().expect("mosquitto_pub is installed");
    assert!(status.success(), "mosquitto_pub to {topic} failed");
}

/// The `watchfloor` binary as a child process, its stderr (the log) captured to a file.
pub struct Watchfloor {
    child: Child,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Watchfloor {
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("watchfloor.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
            .args(args)
            .env("RUST_LOG", "info,rumqttd=off,rumqttc=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the watchfloor binary was built");
        Self {
            child,
            log_path,
            _dir: dir,
        }
    }

    /// `watchfloor record` against `broker` into `db`, once it has connected.
    pub fn record(broker: &Mosquitto, db: &Path) -> Self {
        let rec = Self::start(&[
            "record",
            "--broker",
            &broker.url(),
            "--db",
            db.to_str().expect("temp paths are UTF-8"),
        ]);
        rec.wait_for_log("connected to broker", Duration::from_secs(10));
        rec
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        assert!(
            eventually(timeout, || self.log().contains(needle)),
            "log never said {needle:?}; log:\n{}",
            self.log()
        );
    }

    /// Sends `signal` and waits (up to 15 s) for the process to exit.
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("the process is ours to signal");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "watchfloor did not exit within 15 s of {signal}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watchfloor {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `watchfloor` to completion and returns (exit code, stderr).
pub fn run_to_end(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One integer from the history file (opened read-only, as a second process would).
pub fn query_i64(db: &Path, sql: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("history file exists");
    conn.query_row(sql, [], |r| r.get(0)).expect("query runs")
}

/// Like [`query_i64`], but 0 while the file or its tables do not exist yet.
pub fn try_query_i64(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
