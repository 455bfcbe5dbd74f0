//! SIMULATED face-recognition terminals ("mqtt/face" family), faithful to
//! `../shared/protocols/face-terminals-mqtt-face.md`, quirks included: numbers sent as strings,
//! one batch at a time (a second is refused with 410, and counted as a violation so tests can
//! fail on it), 417 when `PersonNum` does not match the list, a capacity (474 when full), a
//! per-person processing time, photos downloaded from `picURI` over HTTP (465 when the download
//! fails, 466 when it is not a JPEG), random photo rejections (468), `Online` re-sent until
//! `Online-Ack`, `Offline` as the MQTT will.
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
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    pub id: String,
    pub base_topic: String,
    pub broker_host: String,
    pub broker_port: u16,
    /// Most persons it stores (474 beyond).
    pub capacity: usize,
    /// Time to process one person of a batch (download, feature extraction, store).
    pub per_person: Duration,
    /// Share of photos rejected with 468 "no face".
    pub reject_rate: f64,
    pub heartbeat: Duration,
    pub seed: u64,
}

impl TerminalConfig {
    pub fn new(id: &str, broker_host: &str, broker_port: u16) -> Self {
        Self {
            id: id.to_owned(),
            base_topic: "mqtt/face".into(),
            broker_host: broker_host.to_owned(),
            broker_port,
            capacity: 50_000,
            per_person: Duration::from_millis(5),
            reject_rate: 0.0,
            heartbeat: Duration::from_secs(30),
            seed: 1,
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
    busy_now: bool,
}

pub type SharedStore = Arc<Mutex<TerminalStore>>;

fn now_text() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Runs one terminal until `cancel` fires. Dropping out without a clean disconnect (as here)
/// makes the broker publish the terminal's will, as a power cut would.
pub async fn run(cfg: TerminalConfig, store: SharedStore, cancel: CancellationToken) {
    let id = cfg.id.clone();
    let basic = format!("{}/basic", cfg.base_topic);
    let mut o = MqttOptions::new(format!("simterm-{id}"), &cfg.broker_host, cfg.broker_port);
    o.set_keep_alive(Duration::from_secs(10));
    o.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
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
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client builds");
            let mut beat = tokio::time::interval(cfg.heartbeat);
            let mut hello = tokio::time::interval(Duration::from_secs(3));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = hello.tick() => {
                        if !acked.load(std::sync::atomic::Ordering::SeqCst) {
                            let online = json!({"messageId": format!("on-{}", rng.random::<u32>()), "operator": "Online", "info": {
                                "facesluiceId": cfg.id, "username": "admin", "time": now_text(), "ip": "127.0.0.1",
                                "facesname": format!("Simulated terminal {}", cfg.id), "version": "SIMULATED-1.0"}});
                            let _ = client.publish(format!("{}/basic", cfg.base_topic), QoS::AtLeastOnce, false, online.to_string()).await;
                        }
                    }
                    _ = beat.tick() => {
                        let n = store.lock().expect("store").persons.len();
                        let hb = json!({"operator": "HeartBeat", "info": {"facesluiceId": cfg.id, "time": now_text(), "PersonNum": n.to_string()}});
                        let _ = client.publish(format!("{}/heartbeat", cfg.base_topic), QoS::AtMostOnce, false, hb.to_string()).await;
                    }
                    cmd = cmd_rx.recv() => {
                        let Some(cmd) = cmd else { return };
                        handle(&cfg, &client, &store, &acked, &http, &mut rng, &cancel, cmd).await;
                    }
                }
            }
        })
    };
    let cmd_topic = format!("{}/{}", cfg.base_topic, id);
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
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
    // A killed terminal: whatever batch was running is lost and its busy flag with it.
    store.lock().expect("store").busy_now = false;
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    cfg: &TerminalConfig,
    client: &AsyncClient,
    store: &SharedStore,
    acked: &std::sync::atomic::AtomicBool,
    http: &reqwest::Client,
    rng: &mut rand::rngs::StdRng,
    cancel: &CancellationToken,
    cmd: Value,
) {
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

/// One person of a batch: `None` when stored, else the error code.
async fn edit_one(
    cfg: &TerminalConfig,
    store: &SharedStore,
    http: &reqwest::Client,
    rng: &mut rand::rngs::StdRng,
    item: &Value,
) -> Option<u32> {
    let id = item["customId"].as_str().filter(|s| !s.is_empty())?;
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
        } = self;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let started = std::time::Instant::now();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for item in list {
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
