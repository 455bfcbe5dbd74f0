//! One MQTT session, 3.1.1 or 5, behind one small API, so the link's logic (backoff, acks,
//! probe, presence) is written once. rumqttc has a separate client for each version; this module
//! is the only code that knows both.
//!
//! MQTT 5 specifics: a persistent session is `clean_start = false` plus a session expiry
//! interval ([`SESSION_EXPIRY_S`]); under 3.1.1 the broker keeps it until it is told otherwise
//! (Mosquitto: `persistent_client_expiration`).

use std::collections::VecDeque;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS as V5QoS;
use rumqttc::{v5, QoS, Transport};

use super::{LinkConfig, MAX_OUTGOING_PACKET_BYTES, MAX_PACKET_BYTES};
use crate::console_topics::{self, Presence};
use crate::settings::{BrokerUrl, MqttSettings, MqttVersion};

/// How long an MQTT 5 broker keeps our session (and queues QoS 1 for it) while we are away.
pub const SESSION_EXPIRY_S: u32 = 7 * 24 * 3600;

/// What the event loop reported, in version-neutral terms.
#[derive(Debug)]
pub enum SessionEvent {
    Connected {
        session_present: bool,
    },
    Message {
        topic: String,
        payload: Bytes,
        retain: bool,
        /// Set for QoS 1 (and 2): the packet id to acknowledge.
        pkid: Option<u16>,
        /// It came at QoS 1 or 2 (also when there is nothing to acknowledge: a publish a failed
        /// connection had read).
        qos1: bool,
        /// The broker sent it before (the DUP flag: redelivered in a resumed session).
        dup: bool,
    },
    /// A SUBSCRIBE went out with this packet id (requests are sent in the order queued).
    SubscribeSent {
        pkid: u16,
    },
    /// A SUBACK: for each filter of the SUBSCRIBE `pkid`, the QoS granted, or `None` when the
    /// broker refused it.
    Subscribed {
        pkid: u16,
        granted: Vec<Option<QoS>>,
    },
    DisconnectSent,
    Other,
}

#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

pub struct EventLoop {
    inner: Loop,
    /// What a connection that failed had read but not handed out, then its error: given out
    /// before anything of the next connection (see [`EventLoop::poll`]).
    stranded: VecDeque<Result<SessionEvent, String>>,
}

enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

/// Whether the client certificate and key can be used, where the console builds its TLS
/// configuration itself (`mqtt.insecure_skip_verify`): a key rustls refuses otherwise failed
/// every connection attempt with a certificate error that named the wrong cause.
pub fn check_client_transport(broker: &BrokerUrl, mqtt: &MqttSettings) -> Result<(), String> {
    if broker.tls && mqtt.skip_verify {
        unverified::config(mqtt.client_auth.as_ref()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn transport(cfg: &LinkConfig) -> Option<Transport> {
    client_transport(&cfg.broker, &cfg.mqtt)
}

/// The transport a client of `broker` uses under `[mqtt]` (the console's link, and the
/// simulated devices of `sim` and `--simulate`): `None` for plain TCP.
///
/// Certificate verification is on (rustls): against the configured CA, or the platform's
/// trusted roots; off only where `mqtt.insecure_skip_verify` names this very broker.
pub fn client_transport(broker: &BrokerUrl, mqtt: &MqttSettings) -> Option<Transport> {
    debug_assert!(
        mqtt.files.ca.is_none() || mqtt.ca_pem.is_some(),
        "the CA file is read by Settings::with_secrets before anything connects"
    );
    if !broker.tls {
        return None;
    }
    if mqtt.skip_verify {
        return Some(unverified::transport(mqtt.client_auth.as_ref()));
    }
    Some(match &mqtt.ca_pem {
        Some(ca) => Transport::tls(ca.clone(), mqtt.client_auth.clone(), None),
        None => Transport::tls_with_default_config(),
    })
}

/// TLS that accepts any server certificate, for the one broker the operator named. The
/// handshake's signatures are still checked (the server must hold the key of the certificate it
/// shows), so the link is encrypted, but not authenticated: anyone in the path can pose as the
/// broker. The console says so in red for as long as it runs.
mod unverified {
    use std::sync::Arc;

    use rumqttc::tokio_rustls::rustls::{
        self,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
        DigitallySignedStruct, SignatureScheme,
    };
    use rumqttc::{TlsConfiguration, Transport};

    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    pub fn transport(client_auth: Option<&(Vec<u8>, Vec<u8>)>) -> Transport {
        match config(client_auth) {
            Ok(c) => Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(c))),
            // Checked before the link starts ([`super::check_client_transport`]): unreachable
            // there; a config rustls refuses fails every connection attempt.
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS without verification");
                Transport::tls_with_default_config()
            }
        }
    }

    /// The rustls configuration: no verification of the broker, our client certificate.
    pub fn config(
        client_auth: Option<&(Vec<u8>, Vec<u8>)>,
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            });
        let config = builder.and_then(|b| match client_auth {
            Some((cert, key)) => {
                use rustls::pki_types::pem::PemObject;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                    .filter_map(Result::ok)
                    .collect();
                match PrivateKeyDer::from_pem_slice(key) {
                    Ok(k) => b.with_client_auth_cert(certs, k),
                    Err(e) => Err(rustls::Error::General(format!("client key: {e}"))),
                }
            }
            None => Ok(b.with_no_client_auth()),
        });
        config
    }
}

/// A client and its event loop for `cfg`, with our last will (presence offline, retained) when
/// the session keeps the console's presence.
pub fn open(cfg: &LinkConfig, capacity: usize) -> (Client, EventLoop) {
    let will_topic = console_topics::presence_topic(&cfg.client_id);
    let will = Presence::payload(false, None);
    match cfg.mqtt.version {
        MqttVersion::V311 => {
            let mut o =
                rumqttc::MqttOptions::new(&cfg.client_id, &cfg.broker.host, cfg.broker.port);
            o.set_keep_alive(cfg.mqtt.keep_alive);
            if let Some((user, pass)) = &cfg.mqtt.credentials {
                o.set_credentials(user, pass);
            }
            o.set_max_packet_size(MAX_PACKET_BYTES, MAX_OUTGOING_PACKET_BYTES);
            o.set_clean_session(cfg.clean_session);
            o.set_manual_acks(true);
            if cfg.presence {
                o.set_last_will(rumqttc::LastWill::new(
                    will_topic,
                    will,
                    QoS::AtLeastOnce,
                    true,
                ));
            }
            if let Some(t) = transport(cfg) {
                o.set_transport(t);
            }
            let (c, l) = rumqttc::AsyncClient::new(o, capacity);
            (Client::V4(c), EventLoop::new(Loop::V4(Box::new(l))))
        }
        MqttVersion::V5 => {
            let mut o = v5::MqttOptions::new(&cfg.client_id, &cfg.broker.host, cfg.broker.port);
            o.set_keep_alive(cfg.mqtt.keep_alive);
            if let Some((user, pass)) = &cfg.mqtt.credentials {
                o.set_credentials(user, pass);
            }
            // Sent in CONNECT: the broker withholds anything bigger from us.
            o.set_max_packet_size(Some(MAX_PACKET_BYTES as u32));
            o.set_clean_start(cfg.clean_session);
            if !cfg.clean_session {
                o.set_session_expiry_interval(Some(SESSION_EXPIRY_S));
            }
            o.set_manual_acks(true);
            if cfg.presence {
                o.set_last_will(v5::mqttbytes::v5::LastWill::new(
                    will_topic,
                    will,
                    V5QoS::AtLeastOnce,
                    true,
                    None,
                ));
            }
            if let Some(t) = transport(cfg) {
                o.set_transport(t);
            }
            let (c, l) = v5::AsyncClient::new(o, capacity);
            (Client::V5(c), EventLoop::new(Loop::V5(Box::new(l))))
        }
    }
}

impl EventLoop {
    fn new(inner: Loop) -> Self {
        Self {
            inner,
            stranded: VecDeque::new(),
        }
    }

    /// The next event; an error is the connection failing (the next poll reconnects).
    ///
    /// rumqttc reads up to ten packets at a time and keeps those it has not handed out yet. When
    /// the same read ends the connection (a broker that restarts sends its last publishes and
    /// closes), it keeps them across the reconnect and hands them out after the next
    /// connection's ConnAck, where their acknowledgements would go to the new connection with
    /// the old one's packet ids: a PUBACK for a message of the new session not yet stored. So
    /// they are handed out here, before the error, with nothing to acknowledge (the broker
    /// delivers them again if it kept the session).
    pub async fn poll(&mut self) -> Result<SessionEvent, String> {
        if let Some(next) = self.stranded.pop_front() {
            return next;
        }
        let result = self.inner.poll().await;
        if let Err(error) = &result {
            self.inner.drop_pending_subscriptions();
            let read = self.inner.take_read_publishes();
            if !read.is_empty() {
                self.stranded.extend(read.into_iter().map(Ok));
                self.stranded.push_back(Err(error.clone()));
                return self.stranded.pop_front().unwrap_or(result);
            }
        }
        result
    }
}

impl Loop {
    async fn poll(&mut self) -> Result<SessionEvent, String> {
        Ok(match self {
            Loop::V4(l) => v4_event(l.poll().await.map_err(|e| e.to_string())?),
            Loop::V5(l) => v5_event(l.poll().await.map_err(|e| e.to_string())?),
        })
    }

    /// Drops the SUBSCRIBEs a failed connection left unsent (rumqttc keeps them, to send first
    /// on a resumed session): the link subscribes to everything again at every connect, and
    /// matches each SUBACK to the SUBSCRIBE it sent on that connection.
    fn drop_pending_subscriptions(&mut self) {
        match self {
            Loop::V4(l) => l
                .pending
                .retain(|r| !matches!(r, rumqttc::Request::Subscribe(_))),
            Loop::V5(l) => l
                .pending
                .retain(|r| !matches!(r, v5::Request::Subscribe(_))),
        }
    }

    /// Takes the publishes read from the connection and not handed out yet, with no packet id
    /// to acknowledge: that connection is gone, a PUBACK for it can only reach the next one,
    /// and the broker delivers them again if it kept the session. Drops the rest of what it
    /// read (acknowledgements and answers that belong to that connection).
    fn take_read_publishes(&mut self) -> Vec<SessionEvent> {
        let read: Vec<SessionEvent> = match self {
            Loop::V4(l) => l.state.events.drain(..).map(v4_event).collect(),
            Loop::V5(l) => l.state.events.drain(..).map(v5_event).collect(),
        };
        read.into_iter()
            .filter_map(|e| match e {
                SessionEvent::Message {
                    topic,
                    payload,
                    retain,
                    pkid: _,
                    qos1,
                    dup,
                } => Some(SessionEvent::Message {
                    topic,
                    payload,
                    retain,
                    pkid: None,
                    qos1,
                    dup,
                }),
                _ => None,
            })
            .collect()
    }
}

fn v4_event(event: rumqttc::Event) -> SessionEvent {
    use rumqttc::{Event, Outgoing, Packet};
    match event {
        Event::Incoming(Packet::ConnAck(a)) => SessionEvent::Connected {
            session_present: a.session_present,
        },
        Event::Incoming(Packet::Publish(p)) => SessionEvent::Message {
            pkid: (p.qos != QoS::AtMostOnce).then_some(p.pkid),
            qos1: p.qos != QoS::AtMostOnce,
            dup: p.dup,
            topic: p.topic,
            payload: p.payload,
            retain: p.retain,
        },
        Event::Outgoing(Outgoing::Subscribe(pkid)) => SessionEvent::SubscribeSent { pkid },
        Event::Incoming(Packet::SubAck(a)) => SessionEvent::Subscribed {
            pkid: a.pkid,
            granted: a
                .return_codes
                .into_iter()
                .map(|c| match c {
                    rumqttc::SubscribeReasonCode::Success(q) => Some(q),
                    rumqttc::SubscribeReasonCode::Failure => None,
                })
                .collect(),
        },
        Event::Outgoing(Outgoing::Disconnect) => SessionEvent::DisconnectSent,
        _ => SessionEvent::Other,
    }
}

fn v5_event(event: v5::Event) -> SessionEvent {
    use rumqttc::Outgoing;
    use v5::mqttbytes::v5::Packet;
    use v5::Event;
    match event {
        Event::Incoming(Packet::ConnAck(a)) => SessionEvent::Connected {
            session_present: a.session_present,
        },
        Event::Incoming(Packet::Publish(p)) => SessionEvent::Message {
            pkid: (p.qos != V5QoS::AtMostOnce).then_some(p.pkid),
            qos1: p.qos != V5QoS::AtMostOnce,
            dup: p.dup,
            // MQTT topics are UTF-8 by the standard; anything else is shown as is.
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload,
            retain: p.retain,
        },
        Event::Outgoing(Outgoing::Subscribe(pkid)) => SessionEvent::SubscribeSent { pkid },
        Event::Incoming(Packet::SubAck(a)) => SessionEvent::Subscribed {
            pkid: a.pkid,
            granted: a
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v5::mqttbytes::v5::SubscribeReasonCode::Success(q) => Some(match q {
                        V5QoS::AtMostOnce => QoS::AtMostOnce,
                        V5QoS::AtLeastOnce => QoS::AtLeastOnce,
                        V5QoS::ExactlyOnce => QoS::ExactlyOnce,
                    }),
                    _ => None,
                })
                .collect(),
        },
        Event::Outgoing(Outgoing::Disconnect) => SessionEvent::DisconnectSent,
        _ => SessionEvent::Other,
    }
}

fn v5_qos(qos: QoS) -> V5QoS {
    match qos {
        QoS::AtMostOnce => V5QoS::AtMostOnce,
        QoS::AtLeastOnce => V5QoS::AtLeastOnce,
        QoS::ExactlyOnce => V5QoS::ExactlyOnce,
    }
}

impl Client {
    pub fn try_subscribe(&self, filter: &str, qos: QoS) -> Result<(), String> {
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos).map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_subscribe(filter, v5_qos(qos))
                .map_err(|e| e.to_string()),
        }
    }

    pub fn try_publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .try_publish(topic, qos, retain, payload)
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_publish(topic, v5_qos(qos), retain, payload)
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues a publish, waiting for room in the request queue.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Client::V4(c) => c
                .publish(topic, qos, retain, payload)
                .await
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .publish(topic, v5_qos(qos), retain, payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues the PUBACK for QoS 1 packet `pkid`, waiting for room in the request queue.
    pub async fn ack(&self, pkid: u16) -> Result<(), String> {
        match self {
            Client::V4(c) => {
                let mut p = rumqttc::Publish::new("", QoS::AtLeastOnce, Vec::new());
                p.pkid = pkid;
                c.ack(&p).await.map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let mut p =
                    v5::mqttbytes::v5::Publish::new("", V5QoS::AtLeastOnce, Vec::new(), None);
                p.pkid = pkid;
                c.ack(&p).await.map_err(|e| e.to_string())
            }
        }
    }

    /// Queues DISCONNECT behind everything already queued, waiting for room.
    pub async fn disconnect(&self) -> Result<(), String> {
        match self {
            Client::V4(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Client::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_client_key_that_cannot_be_used_is_said_before_the_link_starts() {
        let broker = BrokerUrl::parse("mqtts://127.0.0.1:8883", "test").unwrap();
        let mut mqtt = MqttSettings {
            skip_verify: true,
            ..MqttSettings::default()
        };
        assert_eq!(check_client_transport(&broker, &mqtt), Ok(()));
        mqtt.client_auth = Some((b"not a certificate".to_vec(), b"not a key".to_vec()));
        let err = check_client_transport(&broker, &mqtt).unwrap_err();
        assert!(err.contains("client key"), "{err}");
        // Plain TCP, or a verified broker (rumqttc reads the key itself and says so): no check.
        let plain = BrokerUrl::parse("mqtt://127.0.0.1:1883", "test").unwrap();
        assert_eq!(check_client_transport(&plain, &mqtt), Ok(()));
    }

    /// A QoS 1 PUBLISH of `payload` on topic `t`, packet id `pkid`, in MQTT 3.1.1 or 5.
    fn publish(v5: bool, pkid: u16, payload: &[u8]) -> Vec<u8> {
        let mut body = vec![0, 1, b't'];
        body.extend(pkid.to_be_bytes());
        if v5 {
            body.push(0); // no properties
        }
        body.extend(payload);
        let mut packet = vec![0x32, body.len() as u8];
        packet.extend(body);
        packet
    }

    fn connack(v5: bool) -> Vec<u8> {
        if v5 {
            vec![0x20, 3, 0, 0, 0]
        } else {
            vec![0x20, 2, 0, 0]
        }
    }

    /// A broker that, on the first connection, answers the CONNECT and then sends three QoS 1
    /// publishes and closes in one write (a broker going down mid-stream); on the second it
    /// answers the CONNECT, sends the first again (DUP set: it was not acknowledged) and stays.
    async fn broker_that_closes_after_three(v5: bool) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let (mut first, _) = listener.accept().await.unwrap();
            let _connect = first.read(&mut buf).await.unwrap();
            first.write_all(&connack(v5)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut burst = Vec::new();
            for pkid in 1..=3 {
                burst.extend(publish(v5, pkid, format!("old-{pkid}").as_bytes()));
            }
            first.write_all(&burst).await.unwrap();
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            let _connect = second.read(&mut buf).await.unwrap();
            second.write_all(&connack(v5)).await.unwrap();
            let mut again = publish(v5, 1, b"old-1");
            again[0] |= 0x08; // DUP
            second.write_all(&again).await.unwrap();
            // Hold the connection until the test ends.
            let _ = second.read(&mut buf).await;
        });
        port
    }

    #[tokio::test]
    async fn what_a_failed_connection_read_is_handed_out_before_its_error() {
        for v5 in [false, true] {
            let port = broker_that_closes_after_three(v5).await;
            let cfg = LinkConfig {
                broker: BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}"), "test").unwrap(),
                client_id: "stranded-test".into(),
                mqtt: MqttSettings {
                    keep_alive: Duration::from_secs(15),
                    version: if v5 {
                        MqttVersion::V5
                    } else {
                        MqttVersion::V311
                    },
                    ..MqttSettings::default()
                },
                subscriptions: vec![],
                clean_session: false,
                presence: false,
            };
            let (_client, mut eventloop) = open(&cfg, 16);
            let mut seen = Vec::new();
            let result = tokio::time::timeout(Duration::from_secs(10), async {
                let mut connects = 0;
                while connects < 2 || seen.len() < 7 {
                    match eventloop.poll().await {
                        Ok(SessionEvent::Connected { .. }) => {
                            connects += 1;
                            seen.push("connected".to_string());
                            if connects == 1 {
                                // Let the burst and the close arrive before the next read, so
                                // one read takes both.
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                        }
                        Ok(SessionEvent::Message {
                            payload, pkid, dup, ..
                        }) => {
                            let text = String::from_utf8_lossy(&payload).into_owned();
                            if connects == 1 {
                                // Nothing of a connection that failed is acknowledged: an ack
                                // queued now would go out on the next connection.
                                assert_eq!(pkid, None, "no packet id to acknowledge");
                                seen.push(text);
                            } else {
                                // The copy sent again says so (MQTT's DUP flag).
                                assert_eq!(pkid, Some(1));
                                seen.push(format!("{text} again: {dup}"));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => seen.push("error".to_string()),
                    }
                }
            })
            .await;
            assert!(
                result.is_ok(),
                "v5 {v5}: two connections within 10 s: {seen:?}"
            );
            assert_eq!(
                seen,
                [
                    "connected",
                    "old-1",
                    "old-2",
                    "old-3",
                    "error",
                    "connected",
                    "old-1 again: true"
                ],
                "v5 {v5}: the old connection's messages come before its error, not after the next ConnAck"
            );
        }
    }
}
