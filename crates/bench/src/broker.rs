//! A Mosquitto for one benchmark run (free loopback port, no persistence), and a fast publisher.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};

pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("mosquitto.conf");
        // Queue limits raised so that the broker itself never drops QoS 0 for a subscriber that
        // is briefly behind: the benchmark measures the subscribers, not the broker's policy.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_queued_bytes 0\n"
            ),
        )?;
        let binary = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mosquitto (apt-get install mosquitto)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("mosquitto did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            port,
            child,
            _dir: dir,
        })
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

/// A native-format location for device `n` of the benchmark fleet.
pub fn location(n: u32, seq: u64) -> (String, Vec<u8>) {
    let topic = format!("devices/bench-{n:05}/location");
    let ts = 1_700_000_000_000i64 + i64::try_from(seq).unwrap_or(0);
    let lat = 51.9 + f64::from(n % 1000) * 1e-4;
    let payload =
        format!(r#"{{"ts":{ts},"lat":{lat:.5},"lon":4.47917,"speed":12.5,"heading":90}}"#);
    (topic, payload.into_bytes())
}

/// Publishes `messages` QoS 0 locations round-robin over `devices`, as fast as the broker takes
/// them; returns the publisher's own elapsed time.
pub async fn publish_locations(port: u16, messages: u64, devices: u32) -> anyhow::Result<Duration> {
    publish_each(port, messages, move |seq| {
        location(u32::try_from(seq % u64::from(devices)).unwrap_or(0), seq)
    })
    .await
}

/// `rounds` fixes for each of `devices`, a second apart in device time (round-robin: every
/// device's trail fills, up to the console's ten minutes at 1 Hz), at most `per_second` a
/// second (0: as fast as the broker takes them; a broker drops QoS 0 messages a subscriber
/// falls behind on, and the trails would not fill); returns the publisher's elapsed time.
pub async fn publish_rounds(
    port: u16,
    devices: u32,
    rounds: u32,
    per_second: u64,
) -> anyhow::Result<Duration> {
    let messages = u64::from(devices) * u64::from(rounds);
    publish_each_at(port, messages, per_second, move |seq| {
        let n = u32::try_from(seq % u64::from(devices)).unwrap_or(0);
        let round = i64::try_from(seq / u64::from(devices)).unwrap_or(0);
        let topic = format!("devices/bench-{n:05}/location");
        let ts = 1_700_000_000_000i64 + round * 1000;
        let lat = 51.9 + f64::from(n % 1000) * 1e-4 + round as f64 * 1e-5;
        let payload =
            format!(r#"{{"ts":{ts},"lat":{lat:.6},"lon":4.47917,"speed":12.5,"heading":0}}"#);
        (topic, payload.into_bytes())
    })
    .await
}

/// Publishes `messages` QoS 0 messages, the `seq`th being `make(seq)`, as fast as the broker
/// takes them; returns the publisher's own elapsed time.
async fn publish_each(
    port: u16,
    messages: u64,
    make: impl Fn(u64) -> (String, Vec<u8>) + Send + 'static,
) -> anyhow::Result<Duration> {
    publish_each_at(port, messages, 0, make).await
}

/// [`publish_each`] at most `per_second` messages a second (0: no limit).
async fn publish_each_at(
    port: u16,
    messages: u64,
    per_second: u64,
    make: impl Fn(u64) -> (String, Vec<u8>) + Send + 'static,
) -> anyhow::Result<Duration> {
    let mut opts = MqttOptions::new("bench-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for seq in 0..messages {
            // Not before its time (once more than a millisecond ahead: a sleep per message
            // would be most of the work at tens of thousands a second).
            if let Some(at) = seq.saturating_mul(1_000_000_000).checked_div(per_second) {
                let due = start + Duration::from_nanos(at);
                if due > tokio::time::Instant::now() + Duration::from_millis(1) {
                    tokio::time::sleep_until(due).await;
                }
            }
            let (topic, payload) = make(seq);
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await?;
        }
        client.disconnect().await?;
        anyhow::Ok(())
    });
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => bail!("publisher connection failed: {e}"),
        }
    }
    producer.await??;
    Ok(started.elapsed())
}

/// A fix for device `n` of a fleet spread over about 20 x 20 km (100 devices a row: 1,000
/// devices are 10 rows, about 2 x 20 km), stamped `now_ms` (the wall-clock time it was due:
/// the console's device-to-screen latency is measured from then); each device drives a slow
/// circle of its own, so every fix moves its symbol.
pub fn live_location(n: u32, now_ms: i64) -> (String, Vec<u8>) {
    let topic = format!("devices/fleet-{n:05}/location");
    let side = 100.0;
    let (row, col) = (f64::from(n / 100), f64::from(n % 100));
    let phase = now_ms as f64 / 60_000.0 + f64::from(n);
    let lat = 51.82 + row / side * 0.18 + 0.0008 * phase.sin();
    let lon = 4.33 + col / side * 0.29 + 0.0012 * phase.cos();
    let heading = (phase.to_degrees() + 90.0).rem_euclid(360.0);
    let payload = format!(
        r#"{{"ts":{now_ms},"lat":{lat:.6},"lon":{lon:.6},"speed":11.0,"heading":{heading:.0}}}"#
    );
    (topic, payload.into_bytes())
}

/// Publishes one fix per device `hz` times a second, spread evenly, for `seconds`; returns how
/// many messages went out.
pub async fn publish_paced(port: u16, devices: u32, hz: u32, seconds: u64) -> anyhow::Result<u64> {
    publish_fleet(port, devices, hz, seconds, |n, seq, _| location(n, seq)).await
}

/// Like [`publish_paced`], but the fixes carry the wall-clock time each was due and move
/// ([`live_location`]); every 10 s it prints how far behind schedule the publisher ran.
pub async fn publish_live_fleet(
    port: u16,
    devices: u32,
    hz: u32,
    seconds: u64,
) -> anyhow::Result<u64> {
    publish_fleet(port, devices, hz, seconds, |n, _, due| {
        live_location(n, due)
    })
    .await
}

async fn publish_fleet(
    port: u16,
    devices: u32,
    hz: u32,
    seconds: u64,
    fix: impl Fn(u32, u64, i64) -> (String, Vec<u8>),
) -> anyhow::Result<u64> {
    let mut opts = MqttOptions::new(
        format!("bench-paced-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    // 100 ticks a second, each carrying its share of the rate. Each fix is stamped with the
    // time it was due, not the time it went out: a publisher held up on the shared cores
    // (or by a full client queue) would otherwise leave its own delay out of the latency
    // measured from the stamp (coordinated omission).
    let per_second = u64::from(devices) * u64::from(hz);
    if per_second == 0 {
        return Ok(0);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let started_ms = chrono::Utc::now().timestamp_millis();
    let mut seq = 0u64;
    let mut behind_ms = 0i64;
    // Tick t comes at t x 10 ms (the first at once): it sends the fixes due by then, none
    // early (each is stamped with the time it was due).
    for t in 0..=seconds * 100 {
        tick.tick().await;
        let due = per_second * t / 100;
        while seq < due {
            let n = u32::try_from(seq % u64::from(devices)).unwrap_or(0);
            let due_ms = started_ms + i64::try_from(seq * 1000 / per_second).unwrap_or(i64::MAX);
            behind_ms = behind_ms.max(chrono::Utc::now().timestamp_millis() - due_ms);
            let (topic, payload) = fix(n, seq, due_ms);
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await?;
            seq += 1;
        }
        if (t + 1) % 1000 == 0 {
            println!("fleet: {seq} sent; at most {behind_ms} ms behind schedule in the last 10 s");
            behind_ms = 0;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.abort();
    Ok(seq)
}
