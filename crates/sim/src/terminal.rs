//! SIMULATED face-recognition terminals ("mqtt/face" family), following
//! `../shared/protocols/face-terminals-mqtt-face.md`: numbers sent as strings, one batch at a
//! time (a second is refused with 410, and counted as a violation so tests can fail on it), 417
//! when `PersonNum` does not match the list (and, our choice of code where the notes name none,
//! when it is outside 1-1000 for an edit or 0-200 for a deletion), 461 for a person without a
//! `customId`, a capacity (474 when full), a per-person processing time, photos downloaded from
//! `picURI` over HTTP (465 when the download fails, 466 when it is not a JPEG, 467 over
//! 1,000,000 bytes), random photo rejections (468), `Online` re-sent until
//! `Online-Ack`, `Offline` as the MQTT will, going offline mid-batch (`offline_rate`), and
//! access records (`RecPush`, `StrSnapPush`) re-pushed until the platform's `PushAck`.
//!
//! A terminal's stored persons live in a [`TerminalStore`] shared with the caller, which
//! survives [`run`] being stopped and started again: a killed terminal keeps what it had
//! stored, like flash memory, and loses the batch it was working on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// How a simulated terminal behaves.
#[derive(Clone)]
pub struct TerminalConfig {
    pub id: String,
    pub base_topic: String,
    pub broker_host: String,
    pub broker_port: u16,
    /// TLS to the broker (as the console reaches it); `None`: plain TCP.
    pub transport: Option<rumqttc::Transport>,
    /// Username and password, when the broker asks for them.
    pub credentials: Option<(String, String)>,
    /// Most persons it stores (474 beyond).
    pub capacity: usize,
    /// Time to process one person of a batch (download, feature extraction, store).
    pub per_person: Duration,
    /// Share of photos rejected with 468 "no face".
    pub reject_rate: f64,
    pub heartbeat: Duration,
    pub seed: u64,
    /// A recognition record every so often (a stored person; now and then a refusal or a
    /// stranger capture); `None`: only the records queued with [`TerminalStore::queue_record`].
    pub records: Option<Duration>,
    /// How long an unanswered record waits before it is pushed again.
    pub repush: Duration,
    /// Share of batches during which the terminal drops off the network (its will fires), to
    /// come back after `offline_for` with the batch lost and what it had stored kept.
    pub offline_rate: f64,
    pub offline_for: Duration,
    /// The terminal's clock, seconds east of UTC; `None`: this machine's zone.
    pub utc_offset_s: Option<i32>,
}

impl TerminalConfig {
    pub fn new(id: &str, broker_host: &str, broker_port: u16) -> Self {
        Self {
            id: id.to_owned(),
            base_topic: "mqtt/face".into(),
            broker_host: broker_host.to_owned(),
            broker_port,
            transport: None,
            credentials: None,
            capacity: 50_000,
            per_person: Duration::from_millis(5),
            reject_rate: 0.0,
            heartbeat: Duration::from_secs(30),
            seed: 1,
            records: None,
            repush: Duration::from_secs(5),
            offline_rate: 0.0,
            offline_for: Duration::from_secs(3),
            utc_offset_s: None,
        }
    }
}

/// A person as the terminal stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPerson {
    pub name: String,
    pub person_type: u8,
    /// Times an `EditPersonsNew` wrote this person (1 = added once, never re-sent).
    pub writes: u32,
}

/// What a terminal holds and what it saw; shared with the test or the caller.
#[derive(Debug, Default)]
pub struct TerminalStore {
    pub persons: BTreeMap<String, StoredPerson>,
    /// Batches (EditPersonsNew, DeletePersons) received.
    pub batches: u64,
    /// Batches received while one was still running (refused with 410): a platform bug.
    pub violations: u64,
    /// Time spent processing batches.
    pub busy: Duration,
    pub online_acks: u64,
    /// Records waiting for their PushAck, by `Rec/{RecordID}` or `Snap/{SnapID}`.
    pub unacked: BTreeMap<String, PendingRecord>,
    /// Records published, first pushes and re-pushes.
    pub record_pushes: u64,
    pub push_acks: u64,
    /// Times the terminal dropped off the network mid-batch.
    pub drops: u64,
    busy_now: bool,
    outbox: Vec<SimRecord>,
    next_record_id: u64,
}

/// A record to push: who was seen, and what the terminal decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    /// `None`: a stranger capture (`StrSnapPush`).
    pub custom_id: Option<String>,
    pub name: String,
    /// 1 allowed, 2 refused, 3 not registered.
    pub verify: u8,
    /// 0 allow-list, 1 block-list.
    pub person_type: u8,
}

/// A pushed record not yet answered.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub topic: String,
    pub payload: String,
    last_sent: std::time::Instant,
}

impl TerminalStore {
    /// Queues a record; the terminal pushes it within a quarter second, and again until acked.
    pub fn queue_record(&mut self, record: SimRecord) {
        self.outbox.push(record);
    }
}

/// A small valid JPEG (a 1x1 grey pixel would do; markers are what the console checks).
const TINY_JPEG_B64: &str = "/9j/4AAQ/9k=";

pub type SharedStore = Arc<Mutex<TerminalStore>>;

/// The terminal's local time, as terminals stamp it: no zone, no offset.
fn now_text(cfg: &TerminalConfig) -> String {
    const FORMAT: &str = "%Y-%m-%d %H:%M:%S";
    match cfg.utc_offset_s.and_then(chrono::FixedOffset::east_opt) {
        Some(offset) => chrono::Utc::now()
            .with_timezone(&offset)
            .format(FORMAT)
            .to_string(),
        None => chrono::Local::now().format(FORMAT).to_string(),
    }
}

/// Runs one terminal until `cancel` fires. Dropping out without a clean disconnect (as here)
/// makes the broker publish the terminal's will, as a power cut would.
pub async fn run(cfg: TerminalConfig, store: SharedStore, cancel: CancellationToken) {
    loop {
        let drop_now = Arc::new(tokio::sync::Notify::new());
        let dropped = session(
            cfg.clone(),
            Arc::clone(&store),
            cancel.child_token(),
            Arc::clone(&drop_now),
        )
        .await;
        if !dropped || cancel.is_cancelled() {
            return;
        }
        store.lock().expect("store").drops += 1;
        tracing::info!(
            terminal = cfg.id,
            "SIMULATED terminal dropped off the network mid-batch"
        );
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(cfg.offline_for) => {}
        }
    }
}

/// One connection's life; `true` when it ended by dropping off the network mid-batch.
async fn session(
    cfg: TerminalConfig,
    store: SharedStore,
    cancel: CancellationToken,
    drop_now: Arc<tokio::sync::Notify>,
) -> bool {
    let id = cfg.id.clone();
    let basic = format!("{}/basic", cfg.base_topic);
    let mut o = MqttOptions::new(format!("simterm-{id}"), &cfg.broker_host, cfg.broker_port);
    o.set_keep_alive(Duration::from_secs(10));
    o.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
    if let Some(transport) = &cfg.transport {
        o.set_transport(transport.clone());
    }
    if let Some((user, pass)) = &cfg.credentials {
        o.set_credentials(user, pass);
    }
    o.set_last_will(LastWill::new(
        &basic,
        serde_json::to_vec(&json!({"operator": "Offline", "info": {"facesluiceId": id}}))
            .expect("json"),
        QoS::AtLeastOnce,
        false,
    ));
    let (client, mut events) = AsyncClient::new(o, 64);
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let online_acked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let cfg = cfg.clone();
        let client = client.clone();
        let store = Arc::clone(&store);
        let acked = Arc::clone(&online_acked);
        let cancel = cancel.clone();
        let drop_now = Arc::clone(&drop_now);
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client builds");
            let mut beat = tokio::time::interval(cfg.heartbeat);
            let mut hello = tokio::time::interval(Duration::from_secs(3));
            let mut pushes = tokio::time::interval(Duration::from_millis(250));
            let mut generate =
                tokio::time::interval(cfg.records.unwrap_or(Duration::from_secs(3600)));
            generate.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = pushes.tick() => push_records(&cfg, &client, &store).await,
                    _ = generate.tick(), if cfg.records.is_some() => {
                        let mut s = store.lock().expect("store");
                        let record = invent_record(&s, &mut rng);
                        s.outbox.push(record);
                    }
                    _ = hello.tick() => {
                        if !acked.load(std::sync::atomic::Ordering::SeqCst) {
                            let online = json!({"messageId": format!("on-{}", rng.random::<u32>()), "operator": "Online", "info": {
                                "facesluiceId": cfg.id, "username": "admin", "time": now_text(&cfg), "ip": "127.0.0.1",
                                "facesname": format!("Simulated terminal {}", cfg.id), "version": "SIMULATED-1.0"}});
                            let _ = client.publish(format!("{}/basic", cfg.base_topic), QoS::AtLeastOnce, false, online.to_string()).await;
                        }
                    }
                    _ = beat.tick() => {
                        let n = store.lock().expect("store").persons.len();
                        let hb = json!({"operator": "HeartBeat", "info": {"facesluiceId": cfg.id, "time": now_text(&cfg), "PersonNum": n.to_string()}});
                        let _ = client.publish(format!("{}/heartbeat", cfg.base_topic), QoS::AtMostOnce, false, hb.to_string()).await;
                    }
                    cmd = cmd_rx.recv() => {
                        let Some(cmd) = cmd else { return };
                        let ctx = Ctx { cfg: &cfg, client: &client, store: &store, acked: &acked, http: &http, cancel: &cancel, drop_now: &drop_now };
                        handle(&ctx, &mut rng, cmd).await;
                    }
                }
            }
        })
    };
    let cmd_topic = format!("{}/{}", cfg.base_topic, id);
    let mut dropped = false;
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = drop_now.notified() => {
                dropped = true;
                break;
            }
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                online_acked.store(false, std::sync::atomic::Ordering::SeqCst);
                let _ = client.try_subscribe(&cmd_topic, QoS::AtLeastOnce);
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == cmd_topic => {
                match serde_json::from_slice::<Value>(&p.payload) {
                    Ok(v) => {
                        let _ = cmd_tx.send(v);
                    }
                    Err(e) => {
                        tracing::warn!(terminal = id, error = %e, "SIMULATED terminal got unreadable JSON")
                    }
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    worker.abort();
    // Ends a batch still running (a drop off the network loses it like a kill does).
    cancel.cancel();
    // A killed terminal: whatever batch was running is lost and its busy flag with it.
    store.lock().expect("store").busy_now = false;
    dropped
}

/// What a command's handler reaches.
struct Ctx<'a> {
    cfg: &'a TerminalConfig,
    client: &'a AsyncClient,
    store: &'a SharedStore,
    acked: &'a std::sync::atomic::AtomicBool,
    http: &'a reqwest::Client,
    cancel: &'a CancellationToken,
    drop_now: &'a Arc<tokio::sync::Notify>,
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn handle(ctx: &Ctx<'_>, rng: &mut rand::rngs::StdRng, cmd: Value) {
    let Ctx {
        cfg,
        client,
        store,
        acked,
        http,
        cancel,
        drop_now,
    } = *ctx;
    let op = cmd["operator"].as_str().unwrap_or_default().to_owned();
    let message_id = cmd["messageId"].as_str().unwrap_or_default().to_owned();
    let ack_topic = format!("{}/{}/Ack", cfg.base_topic, cfg.id);
    let reply = |code: &str, info: Value| {
        let mut info = info;
        info["facesluiceId"] = json!(cfg.id);
        json!({"messageId": message_id, "operator": format!("{op}-Ack"), "code": code, "info": info}).to_string()
    };
    match op.as_str() {
        "Online-Ack" => {
            acked.store(true, std::sync::atomic::Ordering::SeqCst);
            store.lock().expect("store").online_acks += 1;
        }
        "PushAck" => {
            let info = &cmd["info"];
            let kind = if num(&info["PushAckType"]) == Some(2) {
                "Snap"
            } else {
                "Rec"
            };
            let id = match &info["SnapOrRecordID"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut s = store.lock().expect("store");
            if s.unacked.remove(&format!("{kind}/{id}")).is_some() {
                s.push_acks += 1;
            }
        }
        "EditPersonsNew" | "DeletePersons" => {
            let busy = {
                let mut s = store.lock().expect("store");
                s.batches += 1;
                s.violations += u64::from(s.busy_now);
                s.busy_now
            };
            if busy {
                let r = reply("410", json!({"result": "fail", "detail": "device is busy"}));
                let _ = client.publish(&ack_topic, QoS::AtMostOnce, false, r).await;
                return;
            }
            let declared = num(&cmd["PersonNum"]);
            let list: Vec<Value> = if op == "EditPersonsNew" {
                cmd["info"].as_array().cloned().unwrap_or_default()
            } else {
                cmd["info"]["customId"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            };
            // The documented limits: 1 to 1000 persons an edit, 0 to 200 a deletion. The code
            // a real firmware answers beyond them is not in the protocol notes: 417 here.
            let limits = if op == "EditPersonsNew" {
                1..=1000
            } else {
                0..=200
            };
            if !limits.contains(&(list.len() as u64)) {
                let r = reply(
                    "417",
                    json!({"result": "fail", "detail": "PersonNum out of range"}),
                );
                let _ = client.publish(&ack_topic, QoS::AtMostOnce, false, r).await;
                return;
            }
            if declared != Some(list.len() as u64) {
                let r = reply(
                    "417",
                    json!({"result": "fail", "detail": "PersonNum does not match"}),
                );
                let _ = client.publish(&ack_topic, QoS::AtMostOnce, false, r).await;
                return;
            }
            store.lock().expect("store").busy_now = true;
            let job = Batch {
                cfg: cfg.clone(),
                client: client.clone(),
                store: Arc::clone(store),
                http: http.clone(),
                seed: rng.random(),
                op,
                message_id,
                list,
                cancel: cancel.clone(),
                drop_now: Arc::clone(drop_now),
            };
            tokio::spawn(job.process());
        }
        "QueryProgress" => {
            let busy = store.lock().expect("store").busy_now;
            let r = reply(
                "200",
                json!({"result": "ok", "Status": if busy { "1" } else { "0" }}),
            );
            let _ = client.publish(&ack_topic, QoS::AtLeastOnce, false, r).await;
        }
        "QueryPerson" => {
            let ids: Vec<String> = store
                .lock()
                .expect("store")
                .persons
                .keys()
                .cloned()
                .collect();
            let r = reply("200", json!({"result": "ok", "customId": ids.join(",")}));
            let _ = client.publish(&ack_topic, QoS::AtLeastOnce, false, r).await;
        }
        _ => {
            let r = reply(
                "404",
                json!({"result": "fail", "detail": "operator not simulated"}),
            );
            let _ = client.publish(&ack_topic, QoS::AtMostOnce, false, r).await;
        }
    }
}

/// A record for a stored person (mostly allowed, now and then refused), or a stranger.
fn invent_record(s: &TerminalStore, rng: &mut rand::rngs::StdRng) -> SimRecord {
    let roll: f64 = rng.random();
    let person = (!s.persons.is_empty())
        .then(|| s.persons.iter().nth(rng.random_range(0..s.persons.len())))
        .flatten();
    match person {
        Some((id, p)) if roll < 0.95 => SimRecord {
            custom_id: Some(id.clone()),
            name: p.name.clone(),
            verify: if roll < 0.9 { 1 } else { 2 },
            person_type: p.person_type,
        },
        _ => SimRecord {
            custom_id: None,
            name: String::new(),
            verify: 3,
            person_type: 0,
        },
    }
}

/// Where a run's RecordIDs and SnapIDs start: a real terminal keeps counting across restarts
/// (the console takes a RecordID it has as a redelivery, acknowledges it and keeps the first),
/// so a simulator counting from 1 at every start had its records after the first run dropped
/// as repeats. Counting from its start second times 1,000 keeps each run's ids above the last
/// run's at anything under 1,000 records a second.
fn first_record_id(now: std::time::SystemTime) -> u64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_mul(1000))
}

/// Publishes queued records and re-pushes those whose PushAck is overdue.
async fn push_records(cfg: &TerminalConfig, client: &AsyncClient, store: &SharedStore) {
    let due: Vec<(String, String)> = {
        let mut s = store.lock().expect("store");
        for r in std::mem::take(&mut s.outbox) {
            if s.next_record_id == 0 {
                s.next_record_id = first_record_id(std::time::SystemTime::now());
            }
            s.next_record_id += 1;
            let n = s.next_record_id;
            let (key, topic, payload) = record_payload(cfg, n, &r);
            s.unacked.insert(
                key,
                PendingRecord {
                    topic,
                    payload,
                    // Due at once.
                    last_sent: std::time::Instant::now() - cfg.repush,
                },
            );
        }
        let now = std::time::Instant::now();
        let mut due = Vec::new();
        for p in s.unacked.values_mut() {
            if now.duration_since(p.last_sent) >= cfg.repush {
                p.last_sent = now;
                due.push((p.topic.clone(), p.payload.clone()));
            }
        }
        s.record_pushes += due.len() as u64;
        due
    };
    for (topic, payload) in due {
        // Real terminals often publish records at QoS 0: PushAck is what makes them reliable.
        let _ = client.publish(topic, QoS::AtMostOnce, false, payload).await;
    }
}

fn record_payload(cfg: &TerminalConfig, n: u64, r: &SimRecord) -> (String, String, String) {
    let base = &cfg.base_topic;
    let id = &cfg.id;
    match &r.custom_id {
        None => (
            format!("Snap/{n}"),
            format!("{base}/{id}/Snap"),
            json!({"messageId": format!("snap-{n}"), "operator": "StrSnapPush", "info": {
                "facesluiceId": id, "SnapID": n.to_string(), "time": now_text(cfg),
                "targetPosInScene": [10, 10, 90, 90], "pic": TINY_JPEG_B64}})
            .to_string(),
        ),
        Some(custom) => (
            format!("Rec/{n}"),
            format!("{base}/{id}/Rec"),
            json!({"messageId": format!("rec-{n}"), "operator": "RecPush", "info": {
                "customId": custom, "personId": n.to_string(), "RecordID": n.to_string(),
                "VerifyStatus": r.verify.to_string(), "PersonType": r.person_type.to_string(),
                "similarity1": "91.5", "Sendintime": "1", "personName": r.name,
                "facesluiceId": id, "time": now_text(cfg), "PushType": "0",
                "targetPosInScene": [10, 10, 90, 90], "pic": TINY_JPEG_B64}})
            .to_string(),
        ),
    }
}

/// One person of a batch: `None` when stored, else the error code.
async fn edit_one(
    cfg: &TerminalConfig,
    store: &SharedStore,
    http: &reqwest::Client,
    rng: &mut rand::rngs::StdRng,
    item: &Value,
) -> Option<u32> {
    let Some(id) = item["customId"].as_str().filter(|s| !s.is_empty()) else {
        return Some(461);
    };
    let Some(uri) = item["picURI"].as_str().filter(|s| !s.is_empty()) else {
        return Some(463);
    };
    let photo = match http.get(uri).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.ok(),
        _ => None,
    };
    let Some(photo) = photo else { return Some(465) };
    if photo.is_empty() || !photo.starts_with(&[0xFF, 0xD8]) {
        return Some(466);
    }
    if photo.len() > 1_000_000 {
        return Some(467);
    }
    if cfg.reject_rate > 0.0 && rng.random_bool(cfg.reject_rate.min(1.0)) {
        return Some(468);
    }
    let mut s = store.lock().expect("store");
    if !s.persons.contains_key(id) && s.persons.len() >= cfg.capacity {
        return Some(474);
    }
    let p = s.persons.entry(id.to_owned()).or_insert(StoredPerson {
        name: String::new(),
        person_type: 0,
        writes: 0,
    });
    p.name = item["name"].as_str().unwrap_or_default().to_owned();
    p.person_type = num(&item["personType"]).unwrap_or(0) as u8;
    p.writes += 1;
    None
}

/// A batch being worked on, in its own task so that the terminal keeps answering (and refusing
/// a second batch) meanwhile.
struct Batch {
    cfg: TerminalConfig,
    client: AsyncClient,
    store: SharedStore,
    http: reqwest::Client,
    seed: u64,
    op: String,
    message_id: String,
    list: Vec<Value>,
    cancel: CancellationToken,
    drop_now: Arc<tokio::sync::Notify>,
}

impl Batch {
    async fn process(self) {
        let Batch {
            cfg,
            client,
            store,
            http,
            seed,
            op,
            message_id,
            list,
            cancel,
            drop_now,
        } = self;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let started = std::time::Instant::now();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        // Dropping off the network half-way: the first half is stored, no Ack is sent.
        let drop_at = (cfg.offline_rate > 0.0 && rng.random_bool(cfg.offline_rate.min(1.0)))
            .then_some(list.len() / 2);
        for (n, item) in list.into_iter().enumerate() {
            if Some(n) == drop_at {
                drop_now.notify_one();
                return;
            }
            let pause = if op == "EditPersonsNew" {
                cfg.per_person
            } else {
                cfg.per_person / 4
            };
            tokio::select! {
                // Killed mid-batch: what was stored stays, the rest and the Ack are lost.
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            if op == "DeletePersons" {
                let id = item.as_str().unwrap_or_default().to_owned();
                if store.lock().expect("store").persons.remove(&id).is_some() {
                    ok.push(json!({"customId": id}));
                } else {
                    failed.push(json!({"customId": id, "errcode": "462"}));
                }
                continue;
            }
            let id = item["customId"].as_str().unwrap_or_default().to_owned();
            match edit_one(&cfg, &store, &http, &mut rng, &item).await {
                None => ok.push(json!({"customId": id})),
                Some(c) => failed.push(json!({"customId": id, "errcode": c.to_string()})),
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        {
            let mut s = store.lock().expect("store");
            s.busy_now = false;
            s.busy += started.elapsed();
        }
        let info = if op == "EditPersonsNew" {
            json!({"result": "ok", "AddSucNum": ok.len().to_string(), "AddErrNum": failed.len().to_string(),
                   "AddSucInfo": ok, "AddErrInfo": failed, "facesluiceId": cfg.id})
        } else {
            json!({"result": "ok", "DelSucNum": ok.len().to_string(), "DelErrNum": failed.len().to_string(),
                   "DelSucInfo": ok, "DelErrInfo": failed, "facesluiceId": cfg.id})
        };
        let ack = json!({"messageId": message_id, "operator": format!("{op}-Ack"), "code": "200", "info": info});
        let _ = client
            .publish(
                format!("{}/{}/Ack", cfg.base_topic, cfg.id),
                QoS::AtLeastOnce,
                false,
                ack.to_string(),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_later_run_counts_its_records_from_above_an_earlier_ones() {
        let start = UNIX_EPOCH + Duration::from_secs(1_796_600_000);
        let first_run = first_record_id(start);
        // A minute's run at 900 records a second, then a restart.
        let last_of_first_run = first_run + 60 * 900;
        let second_run = first_record_id(start + Duration::from_secs(60));
        assert!(
            second_run > last_of_first_run,
            "{second_run} <= {last_of_first_run}"
        );
    }
}
