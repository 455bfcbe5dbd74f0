//! The MQTT link: one task that owns the rumqttc event loop, keeps the connection up and hands
//! every received publish to the pipeline.
//!
//! rumqttc reconnects by itself on the next `poll` after an error; this task decides *when* that
//! poll happens (exponential backoff with jitter, so a broker restart is not met by a storm of
//! our own), re-subscribes after every connect, and publishes its [`ConnectionView`] on a watch
//! channel for the UI and the log. Received publishes go out over a queue bounded in messages and
//! bytes ([`inbound_queue`]): if the pipeline falls behind, this task waits, TCP fills, and the
//! broker holds the backlog.
//!
//! **QoS 1 is acknowledged by hand** (rumqttc's manual acks): each QoS 1 publish travels on with
//! an [`AckToken`], and the PUBACK goes out only when the history writer hands the token back
//! after its transaction committed. The session is persistent (clean session off, stable client
//! id), so whatever was not acknowledged when the console stopped, crashed or lost the network is
//! delivered again when it returns. A token is only honoured in the connection it came from
//! (its `epoch`): after a reconnect the broker redelivers every unacknowledged message, and that
//! copy is the one acknowledged. rumqttc likewise discards PUBACKs still queued at a disconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use rumqttc::QoS;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::console_topics::{self, Presence, Probe};

mod session;
use crate::settings::{BrokerUrl, MqttSettings};
use crate::view::{ConnectionView, LinkState};
pub use session::{check_client_transport, client_transport};
use session::{Client, EventLoop, SessionEvent};

/// Largest MQTT packet taken from the broker. Far above every decoder's payload limit (1 MiB at
/// most), so an oversized message is received and quarantined with its reason instead of killing
/// the connection: a QoS 1 packet the client refuses is never acknowledged, so the broker would
/// send it again at every reconnect and the session would never move past it. Above this size
/// that still happens: MQTT 5 tells the broker our limit (it then withholds bigger messages);
/// under 3.1.1 set the broker's own limit below it (Mosquitto: `message_size_limit`).
pub const MAX_PACKET_BYTES: usize = 64 * 1024 * 1024;
/// Largest packet we send: a face terminal batch of 1000 persons with photo URLs is a few
/// hundred KiB; everything else (presence, probe, incidents) is small.
pub const MAX_OUTGOING_PACKET_BYTES: usize = 4 * 1024 * 1024;
/// How long a stopping link waits for the acknowledgements of what it handed over (the history
/// writer's last commits) before it disconnects anyway. The writer gives up on a batch it cannot
/// commit after one more attempt when stopping, so this is reached only by a stuck disk.
pub const STOP_DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// The part of [`STOP_DRAIN_LIMIT`] kept for the offline presence and DISCONNECT.
const DISCONNECT_TIME: Duration = Duration::from_secs(1);

/// How the link connects.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub broker: BrokerUrl,
    pub client_id: String,
    /// Credentials, TLS material and keep-alive.
    pub mqtt: MqttSettings,
    /// Topic filters subscribed after every connect.
    pub subscriptions: Vec<(String, QoS)>,
    /// Start a fresh session at each connect instead of resuming the broker-held one. Off by
    /// default: a resumed session is what delivers the QoS 1 messages sent while we were away.
    pub clean_session: bool,
    /// This session is the console's: it keeps the retained presence (online at connect,
    /// offline at a clean stop, the will for a crash). A helper session (employee sync) does not.
    pub presence: bool,
}

/// The acknowledgement a QoS 1 publish is owed once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    /// Which connection delivered it (see the module docs).
    pub epoch: u64,
    pub pkid: u16,
}

/// Where the history writer returns tokens of committed messages.
#[derive(Debug, Clone)]
pub struct Acker {
    tx: mpsc::UnboundedSender<AckToken>,
}

impl Acker {
    /// Queues PUBACKs for `tokens`, in order. (Unbounded, yet bounded in practice: a token exists
    /// only for a message the broker let us hold unacknowledged.)
    pub fn ack(&self, tokens: Vec<AckToken>) {
        for t in tokens {
            // The link is gone at shutdown: the message stays unacknowledged and comes again.
            let _ = self.tx.send(t);
        }
    }
}

/// The sending side of [`Acker`], consumed by [`run`].
pub struct AckQueue {
    rx: mpsc::UnboundedReceiver<AckToken>,
}

pub fn ack_channel() -> (Acker, AckQueue) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Acker { tx }, AckQueue { rx })
}

/// A publish received from the broker.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub topic: String,
    pub payload: Bytes,
    pub retained: bool,
    /// Receiver clock at arrival (epoch ms).
    pub received_ms: i64,
    /// Set for QoS 1: hand it back (via [`Acker`]) once the message is stored.
    pub ack: Option<AckToken>,
    /// It came at QoS 1 (also when there is nothing to acknowledge: a publish read by a
    /// connection that failed).
    pub qos1: bool,
    /// The broker says it sent this message before (MQTT's DUP flag): a QoS 1 message not
    /// acknowledged on a connection that failed, or before the console stopped. Its first copy
    /// may be stored already.
    pub redelivered: bool,
}

/// The queue from the link to what consumes its messages (the live task, the employee sync),
/// bounded by messages and by bytes of payload: a count alone let it hold gigabytes while the
/// consumer was held up and large messages came in (a face terminal's snapshot is up to 1 MiB;
/// a message up to [`MAX_PACKET_BYTES`] is taken so that it can be quarantined). When either
/// bound is reached the link waits, TCP fills and the broker holds the rest. A message larger
/// than the byte bound waits for an empty queue and then goes alone.
pub fn inbound_queue(messages: usize, bytes: u32) -> (InboundSender, InboundQueue) {
    let (tx, rx) = mpsc::channel(messages);
    let room = Arc::new(Semaphore::new(bytes as usize));
    let sender = InboundSender {
        tx,
        room: Arc::clone(&room),
        bytes,
    };
    (sender, InboundQueue { rx, room, bytes })
}

/// The link's side of [`inbound_queue`].
pub struct InboundSender {
    tx: mpsc::Sender<(Inbound, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    bytes: u32,
}

/// The consumer of the queue is gone.
#[derive(Debug)]
pub struct QueueClosed;

impl InboundSender {
    /// Waits for room (in messages and in bytes), then queues `msg`.
    pub async fn send(&self, msg: Inbound) -> Result<(), QueueClosed> {
        let cost = u32::try_from(msg.payload.len()).map_or(self.bytes, |n| n.min(self.bytes));
        let permit = Arc::clone(&self.room)
            .acquire_many_owned(cost)
            .await
            .map_err(|_| QueueClosed)?;
        self.tx.send((msg, permit)).await.map_err(|_| QueueClosed)
    }
}

/// The consumer's side of [`inbound_queue`].
pub struct InboundQueue {
    rx: mpsc::Receiver<(Inbound, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    bytes: u32,
}

impl InboundQueue {
    /// The next message; `None` once the link ended and the queue is empty. Its bytes leave
    /// the queue's count as it is taken.
    pub async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv().await.map(|(msg, _room)| msg)
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Bytes of payload waiting.
    pub fn queued_bytes(&self) -> usize {
        (self.bytes as usize).saturating_sub(self.room.available_permits())
    }
}

/// A connect that the broker ended before its CONNACK says only "Connection closed by peer
/// abruptly" (MQTT 3.1.1 has no code for most refusals): the words say where the reason is, and
/// the usual ones (Mosquitto with `max_qos 0` refuses the console's will, which is QoS 1; the
/// employee sync's session has no will).
fn closed_before_accepting(words: String, with_will: bool) -> String {
    if !(words.contains("closed by peer") || words.contains("reset by peer")) {
        return words;
    }
    let will = if with_will {
        "; Mosquitto's max_qos 0 or retain_available false, which refuse this console's QoS 1 \
         retained will"
    } else {
        ""
    };
    format!(
        "{words}: the broker closed the connection before accepting it; its log says why (a \
         listener that expects TLS or MQTT 5{will}; an access rule or a plugin)"
    )
}

/// A connection that lasted this long before it dropped was a working one: the next attempt
/// starts the backoff from its first delay. One that dropped sooner (a message the console
/// cannot take, resent first at every connect; a second console with the same client id; a
/// broker that refuses it after its CONNACK) starts it from twice the delay the last such one
/// did, up to [`MAX_FLAP_DELAY`]: starting from 250 ms at every connect, the console retried a
/// few times a second for ever, and every cycle made the broker publish its will (other
/// consoles saw it flap), replay every retained status and take every incident again.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);
/// The most a connection that keeps dropping soon after it is made waits before the next.
const MAX_FLAP_DELAY: Duration = Duration::from_secs(5);
/// The backoff's first delay.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// The first delay after `flaps` connections in a row that dropped soon after they were made.
fn first_delay_after(flaps: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << flaps.min(16))
        .min(MAX_FLAP_DELAY)
}

/// Adds a subscription problem to what the connection view says.
fn add_problem(view: &mut ConnectionView, problem: String) {
    view.subscription_problem = Some(match view.subscription_problem.take() {
        Some(before) => format!("{before}; {problem}"),
        None => problem,
    });
}

fn backoff_from(first: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A QoS 1 message this console publishes: its incident changes (retained) and face-terminal
/// commands (not retained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Runs the link until `cancel` fires. Then it stops handing messages over (closing `inbound`),
/// keeps the connection served while the acknowledgements and replies for what it did hand over
/// come back (until the senders of `acks` and `outbound` are all gone, at most
/// [`STOP_DRAIN_LIMIT`]), marks the console offline and disconnects politely. A clean stop so
/// leaves the broker nothing stored to deliver again.
pub async fn run(
    cfg: LinkConfig,
    inbound: InboundSender,
    acks: AckQueue,
    state: watch::Sender<ConnectionView>,
    outbound: mpsc::Receiver<Outbound>,
    retry_now: Arc<Notify>,
    cancel: CancellationToken,
) {
    let (client, mut eventloop) = session::open(&cfg, 256);
    let presence = cfg
        .presence
        .then(|| console_topics::presence_topic(&cfg.client_id));
    let probe = console_topics::probe_topic(&cfg.client_id);
    let started = Instant::now();
    let mut delays = backoff_from(FIRST_DELAY);
    // Bumped at every connect and every connection loss: the epoch an ack token must match.
    let epoch = Arc::new(AtomicU64::new(0));
    let mut acker = tokio::spawn(send_acks(client.clone(), acks, Arc::clone(&epoch)));
    let prober = tokio::spawn(send_probes(
        client.clone(),
        probe.clone(),
        started,
        state.subscribe(),
        cancel.clone(),
    ));
    let mut publisher = tokio::spawn(send_outbound(client.clone(), outbound, state.subscribe()));
    let mut view = ConnectionView::connecting(&cfg.broker.to_string());
    state.send_replace(view.clone());
    let mut connected_at_ms = 0;
    // When the current connection was made, while it is up; and how many in a row dropped
    // soon after they were made.
    let mut up_since: Option<Instant> = None;
    let mut flaps = 0u32;
    // Subscriptions queued on this connection and not sent yet, in order (one filter per
    // SUBSCRIBE); and those sent and not answered, by packet id. A connection that fails takes
    // both with it (the session drops the unsent SUBSCRIBEs rumqttc would send first on the
    // next, one of whose writes may also have failed after its Outgoing event): every connect
    // subscribes to everything again.
    let mut unsent: VecDeque<(String, QoS)> = VecDeque::new();
    let mut sent: HashMap<u16, (String, QoS)> = HashMap::new();
    // The last connection error logged: a connection that keeps dropping the same way is
    // said once, not at every cycle.
    let mut logged_error: Option<String> = None;

    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(SessionEvent::Connected { session_present }) => {
                epoch.fetch_add(1, Ordering::SeqCst);
                up_since = Some(Instant::now());
                let subscriptions = cfg
                    .subscriptions
                    .iter()
                    .cloned()
                    .chain([(probe.clone(), QoS::AtMostOnce)]);
                sent.clear();
                unsent.clear();
                view.subscription_problem = None;
                for (filter, qos) in subscriptions {
                    match client.try_subscribe(&filter, qos) {
                        Ok(()) => unsent.push_back((filter, qos)),
                        Err(e) => {
                            tracing::error!(error = %e, filter, "could not queue subscription");
                            add_problem(&mut view, format!("{filter}: not sent ({e})"));
                        }
                    }
                }
                if let Some(presence) = &presence {
                    let online = Presence::payload(true, Some(now_ms()));
                    if let Err(e) = client.try_publish(presence, QoS::AtLeastOnce, true, online) {
                        tracing::warn!(error = %e, "could not queue the console's presence");
                    }
                }
                view.connects += 1;
                connected_at_ms = now_ms();
                tracing::info!(broker = %view.broker, client_id = %cfg.client_id, connects = view.connects, session_present, "connected to broker");
                view.state = LinkState::Connected;
                view.last_error = None;
                view.next_attempt_ms = None;
                state.send_replace(view.clone());
            }
            Ok(SessionEvent::SubscribeSent { pkid }) => {
                if let Some(subscription) = unsent.pop_front() {
                    sent.insert(pkid, subscription);
                }
            }
            Ok(SessionEvent::Subscribed { pkid, granted }) => {
                let Some((filter, asked)) = sent.remove(&pkid) else {
                    continue;
                };
                if let Some(granted) = granted.into_iter().next() {
                    let problem = match granted {
                        None => Some(format!("{filter}: refused by the broker")),
                        Some(g) if (g as u8) < (asked as u8) => Some(format!(
                            "{filter}: granted at QoS {} instead of {} (messages may be lost)",
                            g as u8, asked as u8
                        )),
                        Some(_) => None,
                    };
                    if let Some(problem) = problem {
                        tracing::error!(broker = %view.broker, "subscription {problem}: what it carries does not reach this console as it should (the broker's access rules?)");
                        add_problem(&mut view, problem);
                        state.send_replace(view.clone());
                    }
                }
            }
            Ok(SessionEvent::Message { topic, payload, .. }) if topic == probe => {
                if let Some(rtt) = probe_round_trip(&payload, started) {
                    let rtt_ms = rtt.as_secs_f64() * 1000.0;
                    if view.probe_ok_ms.is_none_or(|t| t < connected_at_ms) {
                        tracing::info!(rtt_ms, "broker probe came back");
                    }
                    view.probe_rtt_ms = Some(rtt_ms);
                    view.probe_ok_ms = Some(now_ms());
                    state.send_replace(view.clone());
                }
            }
            Ok(SessionEvent::Message {
                topic,
                payload,
                retain,
                pkid,
                qos1,
                dup,
            }) => {
                let ack = pkid.map(|pkid| AckToken {
                    epoch: epoch.load(Ordering::SeqCst),
                    pkid,
                });
                let msg = Inbound {
                    topic,
                    payload,
                    retained: retain,
                    received_ms: now_ms(),
                    ack,
                    qos1,
                    redelivered: dup,
                };
                let sent = tokio::select! {
                    _ = cancel.cancelled() => break,
                    sent = inbound.send(msg) => sent,
                };
                if sent.is_err() {
                    break; // the pipeline is gone: nothing left to deliver to
                }
            }
            Ok(_) => {}
            Err(mut words) => {
                epoch.fetch_add(1, Ordering::SeqCst);
                sent.clear();
                unsent.clear();
                match up_since.take() {
                    Some(t) if t.elapsed() >= STABLE_CONNECTION => {
                        flaps = 0;
                        delays = backoff_from(FIRST_DELAY);
                        logged_error = None;
                    }
                    Some(_) => {
                        flaps = flaps.saturating_add(1);
                        delays = backoff_from(first_delay_after(flaps));
                    }
                    // The connect itself failed: the backoff goes on.
                    None => words = closed_before_accepting(words, cfg.presence),
                }
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                if logged_error.as_deref() != Some(words.as_str()) {
                    logged_error = Some(words.clone());
                    if words.contains("payload size limit exceeded") {
                        tracing::error!(broker = %view.broker, limit_bytes = MAX_PACKET_BYTES,
                            "the broker keeps sending a message larger than this console accepts; set the broker's message size limit below it (Mosquitto: message_size_limit) or use MQTT 5");
                    }
                    tracing::warn!(broker = %view.broker, error = %words, retry_in_ms = delay.as_millis() as u64, "broker connection failed");
                }
                view.state = LinkState::BackingOff;
                // A round trip of a connection that is gone says nothing of the next (it was
                // exported as the broker's health all through an outage).
                view.probe_rtt_ms = None;
                view.last_error = Some(words);
                view.next_attempt_ms = Some(now_ms() + delay.as_millis() as i64);
                state.send_replace(view.clone());
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                    _ = retry_now.notified() => {
                        tracing::info!(broker = %view.broker, "retrying now, as asked");
                    }
                }
                view.state = LinkState::Connecting;
                view.next_attempt_ms = None;
                state.send_replace(view.clone());
            }
        }
    }
    // Stop handing messages over: what comes from now on is not acknowledged, and the broker
    // keeps it for the next session.
    drop(inbound);
    prober.abort();
    // Not connected (or the connection fails while draining): there is nothing to close, and
    // polling would connect again and send old acknowledgements on the new connection.
    let deadline = tokio::time::Instant::now() + STOP_DRAIN_LIMIT;
    let up = view.state == LinkState::Connected
        // The last second is kept for the goodbye, however long the writer took.
        && serve_until_answered(
            &mut eventloop,
            &mut acker,
            &mut publisher,
            deadline - DISCONNECT_TIME,
        )
        .await;
    // What they queued stays queued, ahead of DISCONNECT; nothing more is queued after it.
    acker.abort();
    publisher.abort();
    if up {
        disconnect(&client, &mut eventloop, presence.as_ref(), deadline).await;
    }
    view.state = LinkState::Stopped;
    state.send_replace(view);
}

/// The probe's round trip, if `payload` is one of ours and not stale.
fn probe_round_trip(payload: &[u8], started: Instant) -> Option<Duration> {
    let p = Probe::parse(payload)?;
    let now_us = u64::try_from(started.elapsed().as_micros()).ok()?;
    let rtt = Duration::from_micros(now_us.checked_sub(p.sent_us)?);
    (rtt <= console_topics::PROBE_TIMEOUT).then_some(rtt)
}

/// Publishes a probe every [`console_topics::PROBE_INTERVAL`] while connected.
async fn send_probes(
    client: Client,
    topic: String,
    started: Instant,
    state: watch::Receiver<ConnectionView>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(console_topics::PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 0u64.. {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if state.borrow().state != LinkState::Connected {
            continue;
        }
        let probe = Probe {
            seq,
            sent_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        // QoS 0 and try_: a probe that cannot go out now is simply a lost probe.
        let _ = client.try_publish(&topic, QoS::AtMostOnce, false, probe.payload());
    }
}

/// Publishes the console's own messages, waiting while the link is down so that they
/// queue here (bounded) rather than in rumqttc. A message rumqttc has sent but the broker has
/// not acknowledged is sent again after a reconnect (the session is persistent).
async fn send_outbound(
    client: Client,
    mut outbound: mpsc::Receiver<Outbound>,
    mut state: watch::Receiver<ConnectionView>,
) {
    while let Some(msg) = outbound.recv().await {
        if state
            .wait_for(|v| v.state == LinkState::Connected)
            .await
            .is_err()
        {
            return;
        }
        if let Err(e) = client
            .publish(&msg.topic, QoS::AtLeastOnce, msg.retain, msg.payload)
            .await
        {
            tracing::warn!(error = %e, topic = msg.topic, "could not publish");
            return;
        }
    }
}

/// Forwards ack tokens to rumqttc as PUBACKs, dropping those of an earlier connection. Ends
/// when every sender of ack tokens is gone.
async fn send_acks(client: Client, mut acks: AckQueue, epoch: Arc<AtomicU64>) {
    while let Some(token) = acks.rx.recv().await {
        if token.epoch != epoch.load(Ordering::SeqCst) {
            continue; // the broker redelivers it on this connection; that copy gets the ack
        }
        if client.ack(token.pkid).await.is_err() {
            return; // the event loop is gone
        }
    }
}

/// After a stop: serves the connection (so queued PUBACKs and publishes are written) until the
/// ack and outbound tasks have forwarded everything their senders will ever send, the
/// connection fails, or `deadline`. Messages that arrive meanwhile are neither handed over nor
/// acknowledged. Returns whether the connection is still up.
async fn serve_until_answered(
    eventloop: &mut EventLoop,
    acker: &mut tokio::task::JoinHandle<()>,
    publisher: &mut tokio::task::JoinHandle<()>,
    deadline: tokio::time::Instant,
) -> bool {
    let answered = async {
        let _ = acker.await;
        let _ = publisher.await;
    };
    tokio::pin!(answered);
    let limit = tokio::time::sleep_until(deadline);
    tokio::pin!(limit);
    loop {
        tokio::select! {
            _ = &mut answered => return true,
            _ = &mut limit => {
                tracing::warn!(limit_s = STOP_DRAIN_LIMIT.as_secs(),
                    "stopping before every stored message was acknowledged; the broker will deliver those again");
                return true;
            }
            event = eventloop.poll() => if event.is_err() {
                return false;
            }
        }
    }
}

/// Says the console is offline (a clean stop; the broker sends the will only for a crash) and
/// DISCONNECTs, both queued behind everything already asked (the last PUBACKs and PushAcks,
/// which can fill rumqttc's request queue: these wait for room rather than being dropped),
/// while the event loop is polled so that the queue drains, until DISCONNECT is sent, the
/// connection fails, or `deadline`.
async fn disconnect(
    client: &Client,
    eventloop: &mut EventLoop,
    presence: Option<&String>,
    deadline: tokio::time::Instant,
) {
    let asker = {
        let client = client.clone();
        let presence = presence.cloned();
        tokio::spawn(async move {
            if let Some(topic) = presence {
                let offline = Presence::payload(false, Some(now_ms()));
                let _ = client
                    .publish(&topic, QoS::AtLeastOnce, true, offline)
                    .await;
            }
            let _ = client.disconnect().await;
        })
    };
    let sent = tokio::time::timeout_at(deadline, async {
        while let Ok(event) = eventloop.poll().await {
            if matches!(event, SessionEvent::DisconnectSent) {
                return true;
            }
        }
        false
    })
    .await;
    if sent.is_err() {
        tracing::warn!(
            limit_s = STOP_DRAIN_LIMIT.as_secs(),
            "stopping before DISCONNECT went out; what was not acknowledged is delivered again"
        );
    }
    asker.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_that_keep_dropping_wait_longer_each_time_up_to_a_limit() {
        let firsts: Vec<u128> = (0..8).map(|n| first_delay_after(n).as_millis()).collect();
        assert_eq!(firsts, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(first_delay_after(u32::MAX), MAX_FLAP_DELAY);
    }

    fn message(bytes: usize) -> Inbound {
        Inbound {
            topic: "t".into(),
            payload: Bytes::from(vec![0; bytes]),
            retained: false,
            received_ms: 0,
            ack: None,
            qos1: false,
            redelivered: false,
        }
    }

    /// Polls `f` once: its output if it is done without waiting.
    fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.poll(&mut cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        }
    }

    fn sent_at_once(tx: &InboundSender, msg: Inbound) -> bool {
        poll_once(std::pin::pin!(tx.send(msg))).is_some_and(|r| r.is_ok())
    }

    #[tokio::test]
    async fn the_link_queue_is_bounded_in_bytes_as_well_as_in_messages() {
        let (tx, mut rx) = inbound_queue(100, 1000);
        assert!(sent_at_once(&tx, message(600)));
        assert_eq!(rx.queued_bytes(), 600);
        // Room for 99 more messages, not for 600 more bytes: the link waits...
        let mut second = Box::pin(tx.send(message(600)));
        assert!(poll_once(second.as_mut()).is_none());
        assert_eq!(rx.len(), 1);
        // ...until the first is taken.
        assert_eq!(rx.recv().await.unwrap().payload.len(), 600);
        second.await.unwrap();
        assert_eq!((rx.len(), rx.queued_bytes()), (1, 600));

        // A message larger than the whole bound waits for an empty queue, then goes alone.
        let mut huge = Box::pin(tx.send(message(5000)));
        assert!(poll_once(huge.as_mut()).is_none());
        rx.recv().await.unwrap();
        huge.await.unwrap();
        assert_eq!(rx.queued_bytes(), 1000);
        assert_eq!(rx.recv().await.unwrap().payload.len(), 5000);
        assert_eq!(rx.queued_bytes(), 0);

        // The count bound still holds for empty payloads.
        let (tx, rx) = inbound_queue(2, 1000);
        for _ in 0..2 {
            assert!(sent_at_once(&tx, message(0)));
        }
        assert!(poll_once(std::pin::pin!(tx.send(message(0)))).is_none());
        drop(rx);
        assert!(tx.send(message(0)).await.is_err(), "the consumer is gone");
    }

    #[tokio::test]
    async fn retry_now_cuts_a_backoff_short() {
        // A port nobody listens on: every attempt fails and the backoff grows.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = LinkConfig {
            broker: BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}"), "test").unwrap(),
            client_id: "retry-test".into(),
            mqtt: MqttSettings {
                keep_alive: Duration::from_secs(15),
                ..MqttSettings::default()
            },
            subscriptions: vec![],
            clean_session: true,
            presence: true,
        };
        let (inbound, _rx) = inbound_queue(1, 1024);
        let (_acker, acks) = ack_channel();
        let (state_tx, mut state) = watch::channel(ConnectionView::connecting("x"));
        let retry = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let (_outbound, outbound_rx) = mpsc::channel(1);
        let link = tokio::spawn(run(
            cfg,
            inbound,
            acks,
            state_tx,
            outbound_rx,
            Arc::clone(&retry),
            cancel.clone(),
        ));

        // Wait for a backoff of more than two seconds (the delay doubles from 250 ms).
        let next = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                state.changed().await.unwrap();
                let v = state.borrow_and_update().clone();
                if let (LinkState::BackingOff, Some(next)) = (v.state, v.next_attempt_ms) {
                    if next - now_ms() > 2_000 {
                        return next;
                    }
                }
            }
        })
        .await
        .expect("the backoff grows past 2 s");
        assert!(
            state.borrow().last_error.is_some(),
            "the failure is said in words"
        );

        retry.notify_one();
        tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                state.changed().await.unwrap();
                if state.borrow_and_update().state == LinkState::Connecting {
                    return;
                }
            }
        })
        .await
        .expect("the link tries again at once");
        assert!(now_ms() < next, "before the scheduled attempt");
        cancel.cancel();
        link.await.unwrap();
    }
}
