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
    let mut opts = MqttOptions::new("bench-publisher", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        for seq in 0..messages {
            let n = u32::try_from(seq % u64::from(devices)).unwrap_or(0);
            let (topic, payload) = location(n, seq);
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

/// A fix for device `n` of a fleet spread over about 20 x 20 km, stamped with the wall clock
/// (so the console's device-to-screen latency is measured from when it was sent); each device
/// drives a slow circle of its own, so every fix moves its symbol.
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

/// Like [`publish_paced`], but the fixes carry the wall clock and move ([`live_location`]).
pub async fn publish_live_fleet(
    port: u16,
    devices: u32,
    hz: u32,
    seconds: u64,
) -> anyhow::Result<u64> {
    publish_fleet(port, devices, hz, seconds, |n, _, now| {
        live_location(n, now)
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
    // 100 ticks a second, each carrying its share of the rate.
    let per_second = u64::from(devices) * u64::from(hz);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut seq = 0u64;
    for t in 0..seconds * 100 {
        tick.tick().await;
        let due = per_second * (t + 1) / 100;
        while seq < due {
            let n = u32::try_from(seq % u64::from(devices)).unwrap_or(0);
            let now = chrono::Utc::now().timestamp_millis();
            let (topic, payload) = fix(n, seq, now);
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await?;
            seq += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver.abort();
    Ok(seq)
}
