//! One simulated device as an MQTT client: connects with a retained last will, announces itself
//! online, reports its position every interval, its status every 30 intervals, and now and then
//! an event. On shutdown it says it is offline and disconnects; if it is killed instead, the
//! broker publishes its will.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use watchfloor_protocol::native::{EventPayload, LocationPayload, StatusPayload};
use watchfloor_protocol::Severity;

use crate::motion::{Kind, Motion};
use crate::SimConfig;

/// Status is re-sent every this many intervals (battery and signal drift).
const STATUS_EVERY: u64 = 30;
/// Sensors report position every this many intervals; they do not move.
const SENSOR_LOCATION_EVERY: u64 = 30;
/// Chance per interval that a device raises an event (about one per device per 10 minutes at 1 Hz).
const EVENT_CHANCE: f64 = 1.0 / 600.0;

/// The state of one simulated device.
pub struct SimDevice {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    motion: Motion,
    battery: f64,
    rng: StdRng,
    events_sent: u64,
    /// Unique per process run, so event ids never repeat across simulator restarts.
    run_stamp: i64,
}

impl SimDevice {
    pub fn new(index: u32, cfg: &SimConfig) -> Self {
        let kind = Kind::for_index(index);
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ (u64::from(index) << 20));
        let motion = Motion::new(kind, cfg.center, &mut rng);
        // Ids and names count from 1 and share the number, so "Cam 27" is "sim-cam-0027".
        let n = index + 1;
        let (id, name) = match kind {
            Kind::Vehicle => (format!("sim-veh-{n:04}"), format!("Unit {n}")),
            Kind::Bodycam => (format!("sim-cam-{n:04}"), format!("Cam {n}")),
            Kind::Sensor => (format!("sim-sen-{n:04}"), format!("Sensor {n}")),
        };
        let battery = rng.random_range(55.0..100.0);
        Self {
            id,
            name,
            kind,
            motion,
            battery,
            rng,
            events_sent: 0,
            run_stamp: now_ms(),
        }
    }

    fn topic(&self, cfg: &SimConfig, suffix: &str) -> String {
        format!("{}/{}/{suffix}", cfg.topic_prefix, self.id)
    }

    fn status(&mut self, online: bool, ts: i64) -> Vec<u8> {
        let payload = StatusPayload {
            online,
            ts: Value::from(ts),
            battery: Some((self.battery * 10.0).round() / 10.0),
            signal: Some(self.rng.random_range(-105.0f64..-60.0).round()),
            kind: Some(self.kind.wire_name().into()),
            name: Some(self.name.clone()),
            simulated: true,
        };
        to_json(&payload)
    }

    fn location(&mut self, dt_s: f64) -> Vec<u8> {
        let s = self.motion.step(dt_s, &mut self.rng);
        let moving = s.speed > 0.0;
        let payload = LocationPayload {
            ts: Value::from(now_ms()),
            lat: s.lat,
            lon: s.lon,
            alt: None,
            heading: moving.then_some((s.heading * 10.0).round() / 10.0 % 360.0),
            speed: Some((s.speed * 10.0).round() / 10.0),
            accuracy: Some(self.rng.random_range(3.0f64..12.0).round()),
        };
        to_json(&payload)
    }

    fn maybe_event(&mut self) -> Option<Vec<u8>> {
        if !self.rng.random_bool(EVENT_CHANCE) {
            return None;
        }
        let choices: &[(&str, Severity, &str)] = match self.kind {
            Kind::Vehicle => &[
                ("harsh_braking", Severity::Medium, "Harsh braking detected"),
                ("speeding", Severity::Low, "Speed above the zone limit"),
                ("collision", Severity::High, "Impact sensor triggered"),
                (
                    "panic_button",
                    Severity::Critical,
                    "Driver pressed the panic button",
                ),
            ],
            Kind::Bodycam => &[
                ("recording_started", Severity::Info, "Recording started"),
                ("man_down", Severity::Critical, "No movement after a fall"),
                ("low_storage", Severity::Low, "Storage above 90 %"),
            ],
            Kind::Sensor => &[
                (
                    "threshold_exceeded",
                    Severity::High,
                    "Reading above threshold",
                ),
                ("tamper", Severity::Medium, "Enclosure opened"),
            ],
        };
        let (kind, severity, message) = choices[self.rng.random_range(0..choices.len())];
        self.events_sent += 1;
        let s = self.motion.sample();
        let payload = EventPayload {
            id: format!("{}-{}-{}", self.id, self.run_stamp, self.events_sent),
            ts: Value::from(now_ms()),
            event_type: kind.into(),
            severity,
            message: Some(message.into()),
            lat: Some(s.lat),
            lon: Some(s.lon),
        };
        Some(to_json(&payload))
    }
}

fn to_json<T: serde::Serialize>(payload: &T) -> Vec<u8> {
    // Serialising these plain structs of numbers and strings cannot fail.
    serde_json::to_vec(payload).unwrap_or_default()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs one device until `cancel` fires, reconnecting (with a fresh last will) when the broker
/// goes away.
pub async fn run(mut dev: SimDevice, cfg: Arc<SimConfig>, cancel: CancellationToken) {
    // Spread the fleet's first reports over one interval instead of a burst.
    let offset = dev
        .rng
        .random_range(0..cfg.interval.as_millis().max(1) as u64);
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep(Duration::from_millis(offset)) => {}
    }
    let mut retry = Duration::from_millis(500);
    loop {
        match session(&mut dev, &cfg, &cancel).await {
            SessionEnd::Cancelled => return,
            SessionEnd::Lost(e) => {
                tracing::debug!(device = %dev.id, error = %e, "simulated device lost its broker; retrying");
                let jitter = Duration::from_millis(dev.rng.random_range(0..500));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(retry + jitter) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(15));
            }
        }
    }
}

enum SessionEnd {
    Cancelled,
    Lost(String),
}

/// One connection: its last will carries this connection's timestamp (see docs/protocol.md).
async fn session(dev: &mut SimDevice, cfg: &SimConfig, cancel: &CancellationToken) -> SessionEnd {
    let connected_at = now_ms();
    let status_topic = dev.topic(cfg, "status");
    let mut opts = MqttOptions::new(
        format!("{}-{}", dev.id, dev.run_stamp),
        &cfg.broker_host,
        cfg.broker_port,
    );
    opts.set_keep_alive(Duration::from_secs(20));
    opts.set_last_will(LastWill::new(
        &status_topic,
        dev.status(false, connected_at),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(transport) = &cfg.transport {
        opts.set_transport(transport.clone());
    }
    if let Some((user, pass)) = &cfg.credentials {
        opts.set_credentials(user, pass);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let dt_s = cfg.interval.as_secs_f64();
    let mut ticks = 0u64;
    let mut connected = false;
    let mut pending_events: Vec<Vec<u8>> = Vec::new();

    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                if connected {
                    let offline = dev.status(false, now_ms());
                    let _ = client.try_publish(&status_topic, QoS::AtLeastOnce, true, offline);
                    let _ = client.try_disconnect();
                    drain_until_disconnect(&mut eventloop).await;
                }
                return SessionEnd::Cancelled;
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    let online = dev.status(true, connected_at);
                    let _ = client.try_publish(&status_topic, QoS::AtLeastOnce, true, online);
                }
                Ok(_) => {}
                Err(e) => return SessionEnd::Lost(e.to_string()),
            },
            _ = tick.tick(), if connected => {
                ticks += 1;
                dev.battery = (dev.battery - 0.002 * dt_s).max(3.0);
                if dev.kind != Kind::Sensor || ticks % SENSOR_LOCATION_EVERY == 1 {
                    let loc = dev.location(dt_s);
                    // QoS 0: if the client queue is full the report is simply skipped, as a
                    // real tracker would.
                    let _ = client.try_publish(dev.topic(cfg, "location"), QoS::AtMostOnce, false, loc);
                } else {
                    dev.motion.step(dt_s, &mut dev.rng);
                }
                if ticks.is_multiple_of(STATUS_EVERY) {
                    let status = dev.status(true, now_ms());
                    let _ = client.try_publish(&status_topic, QoS::AtLeastOnce, true, status);
                }
                if let Some(event) = dev.maybe_event() {
                    pending_events.push(event);
                }
                // QoS 1 events are never skipped: one that does not fit in the queue waits.
                while let Some(event) = pending_events.pop() {
                    if client.try_publish(dev.topic(cfg, "events"), QoS::AtLeastOnce, false, event.clone()).is_err() {
                        pending_events.push(event);
                        break;
                    }
                }
            }
        }
    }
}

async fn drain_until_disconnect(eventloop: &mut EventLoop) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(event) = eventloop.poll().await {
            if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}
