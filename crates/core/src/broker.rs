//! The embedded MQTT broker (rumqttd), started when no external broker is configured so that a
//! small site needs no other server and devices can point straight at the workstation.
//!
//! rumqttd runs on threads of its own and has no stop call: the broker lives until the process
//! ends, which is exactly the lifetime of a console or recorder that started it. It honours
//! retained messages and last wills (since rumqttd 0.18), which Watchfloor depends on for device
//! status; `tests/embedded_broker.rs` checks both. It keeps nothing on disk: retained messages
//! and queued QoS 1 messages are lost when the process ends (see README).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// A running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    pub listen: SocketAddr,
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the embedded broker cannot listen on {addr}: {source} (is another broker running? pass --listen or --broker)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded broker did not accept connections on {addr} within {waited:?}")]
    NotListening { addr: SocketAddr, waited: Duration },
    #[error("cannot start the embedded broker thread: {0}")]
    Thread(std::io::Error),
}

fn config(listen: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        // Face terminals push snapshots as base64 inside JSON; 4 MiB holds the largest.
        max_payload_size: 4 * 1024 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "watchfloor-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 20_000,
            max_outgoing_packet_count: 500,
            // rumqttd keeps an in-memory log per subscribed filter: 8 segments of 4 MiB bounds
            // what a slow subscriber can make it hold.
            max_segment_size: 4 * 1024 * 1024,
            max_segment_count: 8,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("watchfloor-v4".to_owned(), server)])),
        ..Default::default()
    }
}

/// True when an MQTT 3.1.1 CONNECT to `addr` is answered with an accepting CONNACK.
fn answers_connect(addr: SocketAddr) -> bool {
    const CLIENT_ID: &[u8] = b"watchfloor-readiness-probe";
    let mut connect = vec![0x10, (12 + CLIENT_ID.len()) as u8];
    // Protocol name "MQTT", level 4 (3.1.1), clean session, keep-alive 10 s.
    connect.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A]);
    connect.extend_from_slice(&(CLIENT_ID.len() as u16).to_be_bytes());
    connect.extend_from_slice(CLIENT_ID);
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(&connect)?;
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack)?;
        stream.write_all(&[0xE0, 0x00])?; // DISCONNECT
        Ok(connack == [0x20, 0x02, 0x00, 0x00])
    };
    attempt().unwrap_or(false)
}

/// Starts the broker on `listen` and returns once it accepts connections.
pub fn start(listen: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    // rumqttd reports a failed bind only inside its own thread; try the address first so the
    // user gets a clear error instead of a console that never connects.
    let probe = TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
        addr: listen,
        source,
    })?;
    let listen = probe.local_addr().map_err(|source| BrokerError::Bind {
        addr: listen,
        source,
    })?;
    drop(probe);

    let mut broker = Broker::new(config(listen));
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, %listen, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;

    // Ready once it answers an MQTT CONNECT. (A bare TCP probe would make rumqttd log an
    // aborted handshake as an error.)
    let waited = Duration::from_secs(5);
    let started = Instant::now();
    while started.elapsed() < waited {
        if answers_connect(listen) {
            tracing::info!(%listen, "embedded broker listening");
            return Ok(EmbeddedBroker { listen });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening {
        addr: listen,
        waited,
    })
}
