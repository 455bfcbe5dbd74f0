//! Helpers for the end-to-end tests: a real Mosquitto on a free port, the real `watchfloor`
//! binary as a child process, and reads of the history file it writes. Every process started
//! here is stopped by its guard's `Drop`, pass or fail.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
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

/// Mosquitto from the system packages, on a free loopback port, anonymous.
pub struct Mosquitto {
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
    /// Where a persistent broker saves its state (`mosquitto.db`); `None` for one that forgets.
    saved_state: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// A broker that forgets everything when stopped.
    pub fn start() -> Self {
        Self::with_config("persistence false\n")
    }

    /// A broker that keeps sessions, their queued QoS 1 messages and retained messages across a
    /// graceful restart (saved on SIGTERM), as a production broker is configured. Its defaults
    /// are kept: 20 QoS 1 messages in flight per client, 1000 queued for an absent one.
    pub fn start_persistent() -> Self {
        Self::with_config("persistence true\npersistence_location {dir}/\n")
    }

    /// A broker that takes only TLS (with a client certificate) and a username/password:
    /// `tls` holds the material, `user`/`password` the one account.
    pub fn start_tls(tls: &TlsFiles, user: &str, password: &str) -> Self {
        let dir = tls.dir.path();
        let passwd = dir.join("passwd");
        let status = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&passwd)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd is installed with mosquitto");
        assert!(status.success());
        readable_by_all(dir);
        let p = |name: &str| dir.join(name).display().to_string();
        Self::with_config(&format!(
            "persistence false\nallow_anonymous false\npassword_file {}\ncafile {}\n\
             certfile {}\nkeyfile {}\nrequire_certificate true\n",
            p("passwd"),
            p("ca.pem"),
            p("server.pem"),
            p("server.key")
        ))
    }

    /// A broker with `extra` in its configuration.
    pub fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Started as root (as in CI), Mosquitto drops to the `mosquitto` user before it saves its
        // state: without write access here its persistence fails (logged only), every restart
        // forgets the sessions and their queued messages, and a restart test only passes while
        // nothing is in flight.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("temp dir permissions");
        let saved_state = extra
            .contains("persistence true")
            .then(|| dir.path().join("mosquitto.db"));
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let extra = extra.replace("{dir}", dir.path().to_str().expect("UTF-8 temp path"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
        )
        .unwrap();
        let mut broker = Self {
            port,
            conf,
            child: None,
            saved_state,
            _dir: dir,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/setup.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port, "mosquitto");
    }

    /// Stops the broker gracefully (SIGTERM: a persistent one saves its state) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Stops and starts the broker again on the same port with the same configuration. A
    /// persistent broker must have saved its state on the way down, or the restart would test
    /// nothing.
    pub fn restart(&mut self) {
        self.stop();
        if let Some(saved) = &self.saved_state {
            assert!(
                saved.exists(),
                "the persistent broker saved no state at {} when stopped",
                saved.display()
            );
        }
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// Test material only: lets a broker that dropped root privileges read it.
fn readable_by_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    set(dir, 0o755).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        set(&entry.unwrap().path(), 0o644).unwrap();
    }
}

/// A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with the
/// `openssl` command line tool (ECDSA P-256).
pub struct TlsFiles {
    pub dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Watchfloor test CA",
            ],
        ]
        .concat());
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            std::fs::write(dir.path().join(format!("{name}.ext")), ext).unwrap();
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        // Mosquitto started as root drops to its own user before it reads keys and passwords.
        readable_by_all(dir.path());
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The client key as the console's own file: a copy only its owner can read (the console
    /// refuses a key file others can read; the originals are world-readable for Mosquitto).
    pub fn private_client_key(&self) -> String {
        use std::os::unix::fs::PermissionsExt;
        let copy = self.dir.path().join("console-client.key");
        std::fs::copy(self.dir.path().join("client.key"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
        copy.display().to_string()
    }
}

/// A private D-Bus session bus with GNOME Keyring's Secret Service on it, unlocked, in a home
/// of its own: a real OS keyring for the tests, gone when dropped.
pub struct SessionKeyring {
    bus: Child,
    pub address: String,
    home: tempfile::TempDir,
}

impl SessionKeyring {
    pub fn start() -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (scripts/setup.sh installs it)");
        let mut address = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(bus.stdout.take().expect("piped")),
            &mut address,
        )
        .expect("dbus-daemon prints its address");
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "bus address: {address:?}");
        // gnome-keyring creates and unlocks the login keyring with the password on stdin, then
        // serves the Secret Service on the bus until the bus goes away.
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring is installed (scripts/setup.sh installs it)");
        daemon
            .stdin
            .take()
            .expect("piped")
            .write_all(b"watchfloor-test-keyring")
            .unwrap();
        assert!(
            daemon.wait().unwrap().success(),
            "gnome-keyring-daemon --unlock"
        );
        Self { bus, address, home }
    }

    /// The environment a program needs to use this keyring.
    pub fn env(&self) -> Vec<(&str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
            ("HOME", self.home.path().display().to_string()),
        ]
    }
}

impl Drop for SessionKeyring {
    fn drop(&mut self) {
        // The keyring daemon leaves with its bus.
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// Runs `watchfloor` to completion with `env` and `input` on stdin: (exit code, stdout, stderr).
pub fn run_with_input(args: &[&str], env: &[(&str, String)], input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Publishes `payload` on `topic` (QoS 1) every 300 ms, as a terminal repeats a message until
/// it is answered, until one message arrives on `answer_topic` (within 20 s); returns it. The
/// first may come before the console, or the listener, has subscribed.
pub fn publish_until_answered(
    port: u16,
    topic: &str,
    payload: &str,
    answer_topic: &str,
) -> Option<serde_json::Value> {
    let mut answers = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", answer_topic, "-C", "1", "-W", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed");
    let answered = eventually(Duration::from_secs(20), || {
        publish(port, topic, payload, 1, false);
        std::thread::sleep(Duration::from_millis(300));
        answers.try_wait().unwrap().is_some()
    });
    if !answered {
        let _ = answers.kill();
    }
    let out = answers.wait_with_output().unwrap();
    answered
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// Publishes one message with `mosquitto_pub` (a real, independent MQTT client).
pub fn publish(port: u16, topic: &str, payload: &str, qos: u8, retain: bool) {
    assert!(
        try_publish(port, topic, payload, qos, retain),
        "mosquitto_pub to {topic} failed"
    );
}

/// Like [`publish`]; returns whether the broker accepted the message (for QoS 1: it sent the
/// PUBACK, so the message is the broker's responsibility from then on).
pub fn try_publish(port: u16, topic: &str, payload: &str, qos: u8, retain: bool) -> bool {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        topic,
        // The payload on stdin (no argument-length limit for large payloads); an empty one
        // with -n, which -s refuses (clearing a retained message).
        if payload.is_empty() { "-n" } else { "-s" },
        "-q",
        &qos.to_string(),
    ]);
    if retain {
        cmd.arg("-r");
    }
    cmd.stdin(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("mosquitto_pub is installed");
    let written = {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(payload.as_bytes()).is_ok()
    };
    let exited_ok = child.wait().expect("mosquitto_pub runs").success();
    written && exited_ok
}

/// Publishes a native-format QoS 1 event with id `event_id` from device `device`.
pub fn try_publish_event(port: u16, device: &str, event_id: &str) -> bool {
    let payload = format!(
        r#"{{"id":"{event_id}","ts":{},"type":"button","severity":"info"}}"#,
        now_ms()
    );
    try_publish(
        port,
        &format!("devices/{device}/events"),
        &payload,
        1,
        false,
    )
}

/// Every stored event id, sorted (duplicates would show twice).
pub fn event_ids(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT event_id FROM events ORDER BY event_id") else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

/// Waits until the history file holds exactly `expected` events (as a sorted id list), and
/// fails with the difference if it does not within `timeout`.
pub fn assert_events_stored(db: &Path, expected: &[String], timeout: Duration) {
    let mut want = expected.to_vec();
    want.sort();
    let mut got = Vec::new();
    let arrived = eventually(timeout, || {
        got = event_ids(db);
        got.len() >= want.len()
    });
    let missing: Vec<_> = want.iter().filter(|id| !got.contains(id)).collect();
    let extra: Vec<_> = got.iter().filter(|id| !want.contains(id)).collect();
    assert!(
        arrived && missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "stored {} of {} events; missing {missing:?}; unexpected {extra:?}",
        got.len(),
        want.len()
    );
}

/// The `watchfloor` binary as a child process, its stderr (the log) captured to a file.
pub struct Watchfloor {
    child: Child,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Watchfloor {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_watchfloor")), args, env)
    }

    /// Started as `nohup watchfloor ARGS`: with SIGHUP ignored, as a user does to keep a
    /// recorder running after logging out.
    pub fn start_under_nohup(args: &[&str]) -> Self {
        let mut nohup = Command::new("nohup");
        nohup.arg(env!("CARGO_BIN_EXE_watchfloor"));
        Self::spawn(nohup, args, &[])
    }

    fn spawn(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("watchfloor.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = command
            .args(args)
            .env("RUST_LOG", "info,rumqttd=off,rumqttc=warn")
            .envs(env.iter().copied())
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

    /// How many times the log says the console's own session connected (the employee sync's
    /// session, `{client id}-sync`, is not counted).
    pub fn connects(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("connected to broker") && !l.contains("-sync "))
            .count()
    }

    /// `watchfloor record` against `broker` into `db`, once it has connected.
    pub fn record(broker: &Mosquitto, db: &Path) -> Self {
        Self::record_with(broker, db, &[])
    }

    /// Like [`Watchfloor::record`], with extra arguments (`--config PATH`, ...).
    pub fn record_with(broker: &Mosquitto, db: &Path, extra: &[&str]) -> Self {
        let url = broker.url();
        let mut args = vec![
            "record",
            "--broker",
            &url,
            "--db",
            db.to_str().expect("temp paths are UTF-8"),
        ];
        args.extend_from_slice(extra);
        let rec = Self::start(&args);
        rec.wait_for_log("connected to broker", Duration::from_secs(10));
        rec
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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

    /// Waits (up to `timeout`) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "watchfloor did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits (up to 15 s) for the process to exit.
    pub fn stop_with(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("the process is ours to signal");
        self.wait_exit(Duration::from_secs(15))
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
    let (code, _, stderr) = run_with_output(args);
    (code, stderr)
}

/// Runs `watchfloor` to completion and returns (exit code, stdout, stderr).
pub fn run_with_output(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
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

/// The smallest JPEG header the import's size check reads (SOI + SOF0, 240x320).
pub fn face_jpeg() -> Vec<u8> {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x40, 0x00, 0xF0,
    ];
    b.extend([
        0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9,
    ]);
    b
}
