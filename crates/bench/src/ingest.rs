//! `ingest` and `memory`: the real `watchfloor record` process against a real Mosquitto.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::broker::{self, Mosquitto};

/// `watchfloor record` as a child process.
struct Recorder {
    child: Child,
    db: std::path::PathBuf,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Recorder {
    fn start(watchfloor: &Path, broker: &Mosquitto) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("bench.sqlite");
        let log = dir.path().join("record.log");
        let child = Command::new(watchfloor)
            .args(["record", "--broker", &broker.url(), "--db"])
            .arg(&db)
            .env("RUST_LOG", "info,rumqttc=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (cargo build --release --no-default-features)",
                    watchfloor.display()
                )
            })?;
        let rec = Self {
            child,
            db,
            log,
            _dir: dir,
        };
        // Subscribed once its presence is retained on the broker (published right after the
        // subscriptions at connect).
        let deadline = Instant::now() + Duration::from_secs(15);
        while !presence_seen(broker.port) {
            if Instant::now() > deadline {
                bail!("watchfloor record did not connect within 15 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(rec)
    }

    fn count(&self, table: &str) -> u64 {
        rusqlite::Connection::open_with_flags(&self.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(
                    &format!("SELECT coalesce(max(id), 0) FROM {table}"),
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map_or(0, |n| u64::try_from(n).unwrap_or(0))
    }

    /// (VmRSS, VmHWM, RssAnon) in KiB, from /proc. RssAnon is the process's own memory; the
    /// rest of RSS is mapped library pages (a desktop build maps WebKit and GTK even headless),
    /// shared with every other process that maps them.
    fn memory_kib(&self) -> anyhow::Result<(u64, u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((field("VmRSS:"), field("VmHWM:"), field("RssAnon:")))
    }
}

impl Recorder {
    /// Stops the recorder with SIGTERM, as an operator would; the messages it says it received.
    fn stop_for_received(&mut self) -> anyhow::Result<u64> {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(signalled.success(), "could not signal the recorder");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the recorder did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&self.log)?;
        log.lines()
            .rev()
            .find_map(|l| l.split("received=").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .context("the recorder's last line names no received count")
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn presence_seen(port: u16) -> bool {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "watchfloor/consoles/+", "-C", "1", "-W", "1"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

pub fn ingest(watchfloor: &Path, messages: u64, devices: u32) -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let rec = Recorder::start(watchfloor, &broker)?;
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-t", "devices/+/location", "-C", &messages.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .context("starting mosquitto_sub (apt-get install mosquitto-clients)")?;
    std::thread::sleep(Duration::from_millis(500)); // mosquitto_sub subscribed

    let started = Instant::now();
    let rt = runtime()?;
    let publish = rt.block_on(broker::publish_locations(broker.port, messages, devices))?;

    // Both subscribers drain in parallel; note when each has everything.
    let (mut sub_done, mut rec_done) = (None, None);
    let deadline = started + Duration::from_secs(300);
    while sub_done.is_none() || rec_done.is_none() {
        if sub_done.is_none() && sub.try_wait()?.is_some() {
            sub_done = Some(started.elapsed());
        }
        if rec_done.is_none() && rec.count("positions") >= messages {
            rec_done = Some(started.elapsed());
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stored = rec.count("positions");
    let rate = |d: Option<Duration>| {
        d.map_or("did not finish".to_owned(), |d| {
            format!(
                "{:.0} msg/s ({:.2} s)",
                messages as f64 / d.as_secs_f64(),
                d.as_secs_f64()
            )
        })
    };
    println!("| ingest: {messages} QoS 0 locations, {devices} devices | |");
    println!("|---|---|");
    println!(
        "| publisher (rumqttc) | {:.0} msg/s ({:.2} s) |",
        messages as f64 / publish.as_secs_f64(),
        publish.as_secs_f64()
    );
    println!("| mosquitto_sub, all received | {} |", rate(sub_done));
    println!(
        "| watchfloor record, all committed to SQLite | {} |",
        rate(rec_done)
    );
    println!("| rows stored by record | {stored} of {messages} |");
    if let (Some(s), Some(r)) = (sub_done, rec_done) {
        println!(
            "| record rate / mosquitto_sub rate | {:.2} |",
            s.as_secs_f64() / r.as_secs_f64()
        );
    }
    let _ = sub.kill();
    let _ = sub.wait();
    Ok(())
}

pub fn memory(watchfloor: &Path, devices: u32, fixes: u32) -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let mut rec = Recorder::start(watchfloor, &broker)?;
    let (idle_rss, _, idle_anon) = rec.memory_kib()?;
    let rt = runtime()?;
    // `fixes` rounds of one fix per device, a second apart in device time: 3 (the default)
    // gives every device a position and a short trail; 600 fills every trail (ten minutes at
    // 1 Hz), the most live state holds.
    let messages = u64::from(devices) * u64::from(fixes);
    // Paced (25,000 a second), so that the broker drops none and every trail fills.
    rt.block_on(broker::publish_rounds(broker.port, devices, fixes, 25_000))?;
    // Every fix stored; or, under a flood the writer sheds QoS 0 history rows from (live
    // state took every fix all the same), no new row for 3 s.
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut last, mut still_since) = (0, Instant::now());
    loop {
        let stored = rec.count("positions");
        if stored >= messages || still_since.elapsed() > Duration::from_secs(3) {
            println!("stored {stored} of {messages} fixes (QoS 0 history rows may be shed under a flood; live state takes every fix)");
            break;
        }
        if stored != last {
            (last, still_since) = (stored, Instant::now());
        }
        if Instant::now() > deadline {
            bail!("record stored {stored} of {messages} in 600 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (rss, hwm, anon) = rec.memory_kib()?;
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "| memory: watchfloor record, {devices} live devices, {fixes} fixes each | RSS | of which private (RssAnon) |"
    );
    println!("|---|---|---|");
    println!(
        "| idle, connected | {:.1} MiB | {:.1} MiB |",
        mib(idle_rss),
        mib(idle_anon)
    );
    println!(
        "| with {devices} devices | {:.1} MiB | {:.1} MiB |",
        mib(rss),
        mib(anon)
    );
    println!("| peak RSS (VmHWM) | {:.1} MiB | |", mib(hwm));
    // Every fix reached the console (a lower bound: the count is of every message it took, the
    // fixes being all this bench sends), or the trails are not as full as asked.
    let received = rec.stop_for_received()?;
    println!("received {received} messages, {messages} fixes sent");
    if received < messages {
        bail!("the broker or the link dropped fixes: the trails hold fewer than asked");
    }
    Ok(())
}

pub fn latency(watchfloor: &Path, devices: u32, hz: u32, seconds: u64) -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let rec = Recorder::start(watchfloor, &broker)?;
    let rt = runtime()?;
    let sent = rt.block_on(broker::publish_paced(broker.port, devices, hz, seconds))?;
    // The recorder logs its summary every 10 s; the last one covers a full window under load.
    let log = std::fs::read_to_string(&rec.log)?;
    let Some(line) = log
        .lines()
        .rev()
        .find(|l| l.contains("live state") && l.contains("push_p99_ms="))
    else {
        bail!("no latency summary in the recorder's log:\n{log}");
    };
    let field = |name: &str| {
        // `name=12` or `name=Some(1.25)`, whichever way the field was logged.
        line.split(&format!("{name}="))
            .nth(1)
            .map(|r| r.trim_start_matches("Some("))
            .map(|r| {
                r.chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect()
            })
            .unwrap_or_else(|| "?".to_owned())
    };
    println!("| latency: {devices} devices x {hz} Hz for {seconds} s ({sent} messages) | |");
    println!("|---|---|");
    println!(
        "| MQTT receipt -> UI batch emitted (batch interval {} ms) | p50 {} ms, p99 {} ms |",
        watchfloor_core::settings::DEFAULT_BATCH_INTERVAL_MS,
        field("push_p50_ms"),
        field("push_p99_ms")
    );
    println!("| broker probe round trip | {} ms |", field("probe_rtt_ms"));
    Ok(())
}
