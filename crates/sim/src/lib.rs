//! Simulated field devices, for demos, tests and load. Every simulated device says so in its
//! status (`"simulated": true`), and the console labels it: no operator may mistake one for a
//! real unit.
//!
//! Each device is its own MQTT client, as a real one is, with its own last will, so that a
//! killed simulator looks to the console exactly like a fleet losing power. Motion is in
//! [`motion`] (pure, seeded); the MQTT side is in [`device`]. Simulated face terminals (person
//! sync, presence) are in [`terminal`].

pub mod device;
pub mod motion;
pub mod terminal;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use motion::Kind;

/// What to simulate and where to publish it.
#[derive(Clone)]
pub struct SimConfig {
    pub broker_host: String,
    pub broker_port: u16,
    /// TLS as the console reaches the broker (its CA, client certificate, verification);
    /// `None`: plain TCP.
    pub transport: Option<rumqttc::Transport>,
    /// The console's `[mqtt]` username and password, when the broker asks for them.
    pub credentials: Option<(String, String)>,
    pub topic_prefix: String,
    pub devices: u32,
    /// Location reporting interval of moving devices.
    pub interval: Duration,
    /// Centre of the fleet's area (lat, lon).
    pub center: (f64, f64),
    /// Seed for routes and events; the same seed gives the same fleet.
    pub seed: u64,
}

/// A running simulated fleet.
pub struct Simulator {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Simulator {
    /// Starts `cfg.devices` devices, each connecting on its own.
    pub fn spawn(cfg: SimConfig) -> Self {
        let cfg = Arc::new(cfg);
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for index in 0..cfg.devices {
            let dev = device::SimDevice::new(index, &cfg);
            tasks.spawn(device::run(dev, Arc::clone(&cfg), cancel.child_token()));
        }
        tracing::info!(devices = cfg.devices, broker = %format!("{}:{}", cfg.broker_host, cfg.broker_port), "simulated fleet started (SIMULATED devices)");
        Self { cancel, tasks }
    }

    /// Stops every device: each publishes a retained offline status and disconnects.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
