//! The sync engine: one task that works off, terminal by terminal, the difference between what
//! the directory says a terminal should hold and what was last confirmed there.
//!
//! Per terminal, exactly one request is in flight (terminals refuse a second batch with 410).
//! A terminal seen for the first time in this run (or back after going offline or a silence) is
//! first asked `QueryProgress` (a batch sent before a restart may still be running: we wait for
//! it rather than be refused) and then `QueryPerson`, which tells what it really holds (asked
//! again after a removal it could not confirm). Then removals go first (`DeletePersons`, at most 200, so leavers
//! lose access soonest), then additions and changes (`EditPersonsNew`). Each request is matched
//! to its Ack by `messageId`; a request not answered by its deadline is given up (its Ack is
//! still applied if it comes late) and the terminal is probed again after a backoff.
//!
//! **Pacing.** The engine measures each terminal's processing time per person from its Acks and
//! sizes the next batch to take about `target_batch` (never over `max_batch`): long enough that
//! the round trip between two batches is a sliver of the terminal's time, short enough that a
//! terminal going offline loses little and progress moves visibly. The first batch is small, to
//! measure.
//!
//! Everything that must survive a restart is in SQLite (`directory`): confirmed persons,
//! failures, the job's progress and the requests in flight (whose late Acks are applied after a
//! restart too).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::TimeZone;
use chrono_tz::Tz;
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;
use watchfloor_protocol::face_sync::{
    self, error_meaning, is_transient, Ack, AckBody, Person, Presence, MAX_DELETE_BATCH,
    MAX_EDIT_BATCH,
};

use super::directory::{self, Employee, Failure, InFlight, Job, Terminal};
use super::photos::PhotoServer;
use crate::clock::now_ms;
use crate::link::{Acker, Inbound, Outbound};
use crate::store::quarantine::{self, QuarantineEntry};

/// How the engine works.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub base_topic: String,
    /// The terminals' clock zone (validity windows are sent in local time).
    pub zone: Tz,
    /// Terminals whose clocks are set to another zone (`[face] terminal_zones`).
    pub terminal_zones: BTreeMap<String, Tz>,
    /// Most persons per `EditPersonsNew` (1..=1000).
    pub max_batch: usize,
    /// The time one batch should take on a terminal.
    pub target_batch: Duration,
    /// Persons in a terminal's first batch, before its speed is known.
    pub first_batch: usize,
    /// The least time a terminal gets to answer.
    pub min_timeout: Duration,
    /// Times a person refused for a passing reason (photo download, busy) is sent again.
    pub max_attempts: u32,
    /// How long such a person waits after its first refusal ([`retry_delay`]).
    pub retry_after: Duration,
    /// Work only on these terminals (all when `None`).
    pub only: Option<HashSet<String>>,
}

impl SyncConfig {
    pub fn new(base_topic: &str, zone: Tz) -> Self {
        Self {
            base_topic: base_topic.to_owned(),
            zone,
            terminal_zones: BTreeMap::new(),
            max_batch: MAX_EDIT_BATCH,
            target_batch: Duration::from_secs(10),
            first_batch: 20,
            min_timeout: Duration::from_secs(15),
            max_attempts: 3,
            retry_after: Duration::from_secs(60),
            only: None,
        }
    }
}

/// What the UI or the CLI asks of the engine.
#[derive(Debug, Clone)]
pub enum Control {
    /// The directory changed (import, groups): plan again.
    Reload,
    /// Forget failures (of one terminal, or all) and try those persons again; resumes a
    /// cancelled job.
    Retry(Option<String>),
    /// Stop sending to a terminal until the next `Retry` or `Reload`.
    Cancel(String),
}

/// One terminal's sync, as the panels and `watchfloor sync` show it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TerminalProgress {
    pub terminal_id: String,
    pub name: Option<String>,
    /// `None`: not heard from yet in this run, or since a request went unanswered.
    pub online: Option<bool>,
    /// A request went unanswered past its deadline and the terminal has not answered since
    /// (heartbeats do not count); the sync keeps asking.
    pub no_answer: bool,
    #[ts(type = "number | null")]
    pub person_count: Option<u32>,
    /// Persons waiting to be sent (additions, changes and removals); `None` before planning.
    #[ts(type = "number | null")]
    pub pending: Option<u64>,
    #[ts(type = "number")]
    pub in_flight: u64,
    /// running | paused | done | cancelled | idle
    pub state: String,
    #[ts(type = "number")]
    pub total: u64,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub failed: u64,
    /// Persons per second over the job so far.
    pub throughput: f64,
    /// Share of the job's wall time the terminal spent on our requests.
    pub utilisation: f64,
    pub ms_per_person: Option<f64>,
    pub last_error: Option<String>,
}

impl TerminalProgress {
    /// Nothing left to do: everything planned was sent and answered (or the job was cancelled).
    pub fn settled(&self) -> bool {
        self.state == "cancelled"
            || (self.online == Some(true) && self.in_flight == 0 && self.pending == Some(0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Progress,
    Query,
    Edit,
    Delete,
}

impl Op {
    fn operator(self) -> &'static str {
        match self {
            Op::Progress => "QueryProgress",
            Op::Query => "QueryPerson",
            Op::Edit => "EditPersonsNew",
            Op::Delete => "DeletePersons",
        }
    }
}

struct Request {
    message_id: String,
    op: Op,
    items: Vec<(String, String)>,
    tokens: Vec<String>,
    sent: Instant,
    deadline: Instant,
}

/// Records the persons set aside on `t` as refused (the terminal took a batch without them, or
/// there was no one else to send), and lifts the halving.
fn blame_suspects(conn: &Connection, terminal: &str, t: &mut Term, now: i64) {
    if t.suspects.is_empty() {
        return;
    }
    t.batch_cap = None;
    for suspect in std::mem::take(&mut t.suspects) {
        let refused = directory::record_failure(
            conn,
            &Failure {
                terminal_id: terminal.to_owned(),
                employee_id: suspect.employee,
                content: suspect.content,
                errcode: suspect.code,
                reason: format!(
                    "refused with the whole request: {}",
                    error_meaning(suspect.code)
                ),
                attempts: 0,
                at_ms: now,
            },
        );
        match refused {
            Ok(_) => {
                if let Some(j) = t.job.as_mut() {
                    // Set aside, the person was left out of the job's total.
                    j.failed += 1;
                    j.total += 1;
                }
            }
            Err(e) => tracing::error!(terminal, error = %e, "could not record a refusal"),
        }
    }
}

/// A person a whole batch may have been refused for.
struct Suspect {
    employee: String,
    content: String,
    code: u32,
    /// When they were set aside: only a batch sent after it tells.
    at: Instant,
}

/// Persons refused alone, one after another, before a person the terminal holds is sent again
/// unchanged to tell whether it refuses them or everything (neighbours in the list with names
/// the firmware refuses, imported together, were taken for a terminal refusing everything).
const MAX_SUSPECTS: usize = 5;

#[derive(Default)]
struct Work {
    deletes: VecDeque<String>,
    upserts: VecDeque<String>,
}

impl Work {
    fn len(&self) -> usize {
        self.deletes.len() + self.upserts.len()
    }
}

struct Term {
    meta: Terminal,
    /// `None` until heard in this run, and again while a request goes unanswered.
    online: Option<bool>,
    /// A request went unanswered past its deadline, and nothing but heartbeats came since.
    no_answer: bool,
    /// `QueryProgress` said no batch is running (since the last silence or restart).
    idle: bool,
    reconciled: bool,
    cancelled: bool,
    work: Option<Work>,
    /// Persons were refused for a passing reason: plan again once the work runs out.
    replan_when_done: bool,
    /// `QueryProgress` requests refused or unanswered in a row: after
    /// [`PROGRESS_TRIES`], the terminal is taken as one without it (some firmware has none).
    progress_unanswered: u32,
    /// `QueryProgress` answers in a row saying a batch is running.
    progress_busy: u32,
    /// Persons accepted batches or deletions left unnamed, with how many times in a row.
    /// Keyed by id: the change (removal, or the content sent) and the rounds. Forgotten when
    /// an Ack names the person, or the terminal's list shows the change was made.
    unnamed_rounds: HashMap<String, (Op, String, u32)>,
    /// When to plan again for persons waiting for their next attempt (nothing else to send
    /// until then); cleared when the directory changes.
    replan_at: Option<Instant>,
    /// Persons a batch of one was refused for, set aside while the next batch tells whether
    /// the terminal refuses them or everything.
    suspects: Vec<Suspect>,
    /// [`MAX_SUSPECTS`] were set aside: a person the terminal holds is to be sent unchanged.
    probe_due: bool,
    /// That person, while their batch is answered.
    probing: Option<String>,
    /// The largest batch to send, while a batch refused whole is halved to find the person it
    /// was refused for; cleared when the terminal's work is done.
    batch_cap: Option<usize>,
    /// When the earliest person refused for a passing reason is due to be sent again
    /// ([`retry_delay`]): the job waits for it instead of ending.
    deferred_until_ms: Option<i64>,
    inflight: Option<Request>,
    /// Requests given up on, whose Acks are still applied when they come.
    late: VecDeque<Request>,
    /// Employees in the upserts of requests given up on and since dropped from `late` (it holds
    /// 8): what the terminal kept of them is not known until the next query.
    late_forgotten: HashSet<String>,
    /// When the last batch or deletion was sent: a query sent before it, answered late, tells
    /// what the terminal held before it.
    changed_at: Option<Instant>,
    retry_at: Option<Instant>,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    job: Option<Job>,
}

/// Why a terminal cannot download its photos, when that is so: the photo URLs name this machine
/// only (`local`, the default endpoint on 127.0.0.1) and the terminal is elsewhere (its Online
/// named a non-local address).
fn photo_hint(local: bool, served_at: std::net::SocketAddr, meta: &Terminal) -> Option<String> {
    if !local {
        return None;
    }
    let ip = meta
        .ip
        .as_deref()?
        .parse::<std::net::IpAddr>()
        .ok()
        .filter(|ip| !ip.is_loopback())?;
    Some(format!(
        "photos are served at {served_at}, which this terminal ({ip}) cannot reach: set [face] \
         photo_listen (and photo_url) to an address it can"
    ))
}

/// A terminal's error while it refuses persons for want of room.
const STORAGE_FULL: &str = "terminal storage full (474)";

/// `QueryProgress` requests refused or unanswered in a row before a terminal is taken as one
/// without it: the sync goes on to ask what it holds (and a batch still running there is
/// answered 410). Firmware without it was never synced: refused or never answered, it was
/// asked again, with backoff, for ever.
const PROGRESS_TRIES: u32 = 3;
/// The reasons recorded for a person [`UNNAMED_ROUNDS`] Acks in a row left unnamed.
const NEVER_NAMED_ADDED: &str =
    "the terminal's answers never said whether it took this person, or this change to them";
const NEVER_NAMED_REMOVED: &str =
    "the terminal's answers never said whether it removed this person, and its list still shows them";

/// Accepted batches or deletions in a row that name a person neither done nor failed, while
/// the terminal's list shows the change did not happen, before the person is recorded as
/// refused.
const UNNAMED_ROUNDS: u32 = 3;
/// `QueryProgress` answers saying busy before the sync goes on regardless: a minute at 1 s,
/// then 10 s apart, about 20 minutes in all.
const PROGRESS_BUSY_POLLS: u32 = 60 + 114;

/// How long a person refused for a passing reason (410, 464, 465) waits after its `attempts`-th
/// refusal: `first` (a minute by default), then 4 times as long, and so on.
fn retry_delay(first: Duration, attempts: u32) -> i64 {
    let first = i64::try_from(first.as_millis()).unwrap_or(i64::MAX);
    first.saturating_mul(4_i64.saturating_pow(attempts.saturating_sub(1).min(8)))
}

fn backoff() -> Box<dyn Iterator<Item = Duration> + Send> {
    Box::new(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build(),
    )
}

impl Term {
    /// The terminal said something of itself (Online, Offline) or answered (an Ack).
    fn heard(&mut self, online: bool) {
        self.online = Some(online);
        self.no_answer = false;
    }

    fn new(meta: Terminal) -> Self {
        Self {
            meta,
            online: None,
            no_answer: false,
            idle: false,
            reconciled: false,
            cancelled: false,
            work: None,
            replan_when_done: false,
            deferred_until_ms: None,
            progress_unanswered: 0,
            progress_busy: 0,
            unnamed_rounds: HashMap::new(),
            replan_at: None,
            suspects: Vec::new(),
            probe_due: false,
            probing: None,
            batch_cap: None,
            inflight: None,
            late: VecDeque::new(),
            late_forgotten: HashSet::new(),
            changed_at: None,
            retry_at: None,
            delays: backoff(),
            job: None,
        }
    }

    /// Stops waiting for the request in flight (its Ack is still applied if it comes in this
    /// run); returns its message id, whose stored record the caller drops.
    fn give_up_inflight(&mut self) -> Option<String> {
        self.work = None;
        let r = self.inflight.take()?;
        let id = r.message_id.clone();
        self.keep_unanswered(r);
        Some(id)
    }

    /// Keeps what `r` sent as not known to be stored (see [`Self::sent_unanswered`]): the next
    /// query's answer tells.
    fn keep_unanswered(&mut self, r: Request) {
        self.late.push_back(r);
        while self.late.len() > 8 {
            if let Some(old) = self.late.pop_front().filter(|r| r.op == Op::Edit) {
                self.late_forgotten
                    .extend(old.items.into_iter().map(|(id, _)| id));
            }
        }
    }

    /// Persons of an accepted batch or deletion its Ack names neither as done nor as failed
    /// (a firmware that sends only the counts, or echoes an id in another form): not known to
    /// be stored, or removed. They were taken off the work and nothing planned them again, so
    /// the job said "done" with a person pending, and a leaver kept door access. Now the
    /// terminal is asked what it holds once the work is sent, and planned again from that.
    ///
    /// A person left unnamed [`UNNAMED_ROUNDS`] times in a row (the change never shows on the
    /// terminal, and its answers never say why) is returned, to be recorded as refused: it was
    /// otherwise sent, asked about and sent again for ever.
    fn named_neither(
        &mut self,
        op: Op,
        items: &[(String, String)],
        unnamed: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        self.unnamed_rounds.retain(|id, _| {
            !items.iter().any(|(sent, _)| sent == id) || unnamed.iter().any(|(u, _)| u == id)
        });
        // A round counts the same change only: another content starts again.
        for (id, content) in &unnamed {
            if self
                .unnamed_rounds
                .get(id)
                .is_some_and(|(o, c, _)| *o != op || c != content)
            {
                self.unnamed_rounds.remove(id);
            }
        }
        if unnamed.is_empty() {
            return Vec::new();
        }
        tracing::warn!(
            persons = unnamed.len(),
            "{} answered without naming every person sent: asking the terminal what it holds",
            op.operator()
        );
        self.reconciled = false;
        self.replan_when_done = true;
        let (given_up, unnamed): (Vec<_>, Vec<_>) =
            unnamed.into_iter().partition(|(id, content)| {
                let entry =
                    self.unnamed_rounds
                        .entry(id.clone())
                        .or_insert((op, content.clone(), 0));
                entry.2 += 1;
                entry.2 >= UNNAMED_ROUNDS
            });
        for (id, _) in &given_up {
            self.unnamed_rounds.remove(id);
        }
        if op == Op::Edit && !unnamed.is_empty() {
            self.keep_unanswered(Request {
                // Not an id this console sends (those are hex), so no Ack is taken for it.
                message_id: "(persons an Ack named neither)".into(),
                op,
                items: unnamed,
                tokens: Vec::new(),
                sent: Instant::now(),
                deadline: Instant::now(),
            });
        }
        given_up
    }

    /// What the requests given up on sent: each employee an upsert among them carried, with its
    /// content, unless two carried different contents or an older one, since dropped from
    /// `late`, may have carried it too (which one the terminal kept is not known). A terminal
    /// that then lists such a person, new there, holds what was sent: that batch added it, and
    /// its Ack was lost (terminals often answer at QoS 0) or the terminal was cut off in the
    /// middle of it.
    fn sent_unanswered(&self) -> HashMap<&str, Option<&str>> {
        let mut sent: HashMap<&str, Option<&str>> = HashMap::new();
        for r in self.late.iter().filter(|r| r.op == Op::Edit) {
            for (id, content) in &r.items {
                if self.late_forgotten.contains(id) {
                    sent.insert(id.as_str(), None); // an older batch may have carried it too
                    continue;
                }
                sent.entry(id.as_str())
                    .and_modify(|held| {
                        if *held != Some(content.as_str()) {
                            *held = None;
                        }
                    })
                    .or_insert(Some(content.as_str()));
            }
        }
        sent
    }

    fn take_request(&mut self, message_id: &str) -> Option<Request> {
        if self
            .inflight
            .as_ref()
            .is_some_and(|r| r.message_id == message_id)
        {
            return self.inflight.take();
        }
        let i = self.late.iter().position(|r| r.message_id == message_id)?;
        self.late.remove(i)
    }
}

/// The engine's inputs and outputs.
pub struct EngineIo {
    pub inbound: crate::link::InboundQueue,
    pub acker: Acker,
    pub control: mpsc::Receiver<Control>,
    pub progress: watch::Sender<Vec<TerminalProgress>>,
}

/// The engine's state; [`Engine::run`] drives it.
pub struct Engine {
    cfg: SyncConfig,
    conn: Connection,
    photos: PhotoServer,
    employees: HashMap<String, Employee>,
    groups: HashMap<String, Vec<String>>,
    managed: HashSet<String>,
    next_expiry_ms: Option<i64>,
    /// [`directory::inputs_version`] when the directory was last read: when another process
    /// imports employees or sets groups, it moves and the sync plans again.
    inputs_read: i64,
    terms: BTreeMap<String, Term>,
    outbound: mpsc::Sender<Outbound>,
}

impl Engine {
    /// Loads the directory and the known terminals (plus `extra` ones named on the command line).
    pub fn new(
        cfg: SyncConfig,
        conn: Connection,
        photos: PhotoServer,
        outbound: mpsc::Sender<Outbound>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        // Requests older than a day will not be answered any more.
        // Housekeeping: if the file is busy now, the next start prunes.
        if let Err(e) = directory::prune_inflight(&conn, now_ms() - 86_400_000) {
            tracing::warn!(error = %e, "could not prune day-old sync requests");
        }
        let mut e = Self {
            cfg,
            conn,
            photos,
            employees: HashMap::new(),
            groups: HashMap::new(),
            managed: HashSet::new(),
            next_expiry_ms: None,
            inputs_read: -1,
            terms: BTreeMap::new(),
            outbound,
        };
        for t in directory::terminals(&e.conn)? {
            e.add_terminal(t);
        }
        for id in extra {
            if !e.terms.contains_key(id) {
                e.add_terminal(Terminal {
                    terminal_id: id.clone(),
                    ..Terminal::default()
                });
            }
        }
        e.reload()?;
        Ok(e)
    }

    /// The zone terminal `terminal`'s clock is set to.
    fn zone_of(&self, terminal: &str) -> Tz {
        self.cfg
            .terminal_zones
            .get(terminal)
            .copied()
            .unwrap_or(self.cfg.zone)
    }

    fn wanted(&self, terminal: &str) -> bool {
        self.cfg.only.as_ref().is_none_or(|o| o.contains(terminal))
    }

    fn add_terminal(&mut self, meta: Terminal) {
        let id = meta.terminal_id.clone();
        let mut t = Term::new(meta);
        t.job = directory::job(&self.conn, &id).ok().flatten();
        if let Some(j) = &t.job {
            t.cancelled = j.state == "cancelled";
        }
        self.terms.insert(id, t);
    }

    fn reload(&mut self) -> rusqlite::Result<()> {
        // Read first (a change committed while the rest is read moves it again, and is read
        // then), kept last (a read that fails leaves it to be tried again at the next tick).
        let inputs = directory::inputs_version(&self.conn)?;
        self.employees = directory::employees(&self.conn)?;
        self.groups = directory::groups(&self.conn)?;
        let managed = directory::managed_ids(&self.conn)?;
        // Ids new to the directory may already be on a terminal (put there by another system):
        // its last answer left them out as not ours. Ask again before sending, so that a
        // managed person the terminal lists without a row here is one it did not hold then
        // (what `Term::sent_unanswered` relies on).
        if managed.iter().any(|id| !self.managed.contains(id)) {
            for t in self.terms.values_mut() {
                t.reconciled = false;
            }
        }
        self.managed = managed;
        let now = now_ms();
        self.next_expiry_ms = self
            .employees
            .values()
            .filter_map(|e| e.valid_to_ms)
            .filter(|t| *t > now)
            .min();
        for t in self.terms.values_mut() {
            t.work = None;
            t.replan_at = None;
        }
        self.inputs_read = inputs;
        Ok(())
    }

    /// The directory changed (an import, a group set, here or by another process): read it
    /// again and plan every terminal, the cancelled ones too (a cancel holds until the next
    /// change of the directory or a Retry).
    fn replan(&mut self) {
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "could not reload the employee directory");
            return;
        }
        for t in self.terms.values_mut() {
            t.cancelled = false;
        }
    }

    /// Runs until `cancel` fires.
    pub async fn run(mut self, mut io: EngineIo, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ids: Vec<String> = self.terms.keys().cloned().collect();
        for id in &ids {
            self.plan(id);
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                msg = io.inbound.recv() => match msg {
                    Some(msg) => {
                        let token = msg.ack;
                        self.on_message(&msg).await;
                        if let Some(t) = token {
                            io.acker.ack(vec![t]);
                        }
                    }
                    None => break,
                },
                ctl = io.control.recv() => if let Some(ctl) = ctl {
                    self.on_control(ctl);
                },
                _ = tick.tick() => self.on_tick(),
            }
            self.pump_all().await;
            io.progress.send_if_modified(|p| {
                let next = self.progress();
                let changed = *p != next;
                *p = next;
                changed
            });
        }
    }

    fn on_control(&mut self, ctl: Control) {
        match ctl {
            Control::Reload => self.replan(),
            Control::Retry(which) => {
                if let Err(e) = directory::clear_failures(&self.conn, which.as_deref()) {
                    tracing::error!(error = %e, "could not clear sync failures");
                }
                for (id, t) in self.terms.iter_mut() {
                    if which.as_deref().is_none_or(|w| w == id) {
                        t.cancelled = false;
                        t.work = None;
                        t.retry_at = None;
                        t.replan_at = None;
                        t.suspects.clear();
                        (t.probe_due, t.probing) = (false, None);
                        t.batch_cap = None;
                        if let Some(j) = t.job.as_mut() {
                            j.retry_failed();
                            if let Err(e) = directory::save_job(&self.conn, j) {
                                tracing::error!(terminal = id, error = %e, "could not save a job");
                            }
                        }
                    }
                }
            }
            Control::Cancel(id) => {
                if let Some(t) = self.terms.get_mut(&id) {
                    t.cancelled = true;
                    t.work = None;
                    if let Some(j) = t.job.as_mut() {
                        j.state = "cancelled".into();
                        j.finished_ms = Some(now_ms());
                        let _ = directory::save_job(&self.conn, j);
                    }
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        for (id, t) in self.terms.iter_mut() {
            if t.inflight.as_ref().is_some_and(|r| r.deadline <= now) {
                let r = t.inflight.as_ref().expect("checked");
                let waited = now.duration_since(r.sent).as_secs();
                tracing::warn!(
                    terminal = id,
                    operator = r.op.operator(),
                    waited_s = waited,
                    "no Ack before the deadline; probing the terminal again"
                );
                t.meta.last_error = Some(format!(
                    "{} not answered within {waited} s",
                    r.op.operator()
                ));
                if r.op == Op::Progress {
                    t.progress_unanswered += 1;
                }
                if let Some(gone) = t.give_up_inflight() {
                    let _ = directory::take_inflight(&self.conn, &gone);
                }
                t.online = None;
                t.no_answer = true;
                t.idle = false;
                t.reconciled = false;
                t.retry_at = Some(now + t.delays.next().unwrap_or(Duration::from_secs(60)));
            }
        }
        if self.next_expiry_ms.is_some_and(|t| t <= now_ms()) {
            tracing::info!("an employee's validity ended: planning removals");
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "could not reload the employee directory");
            }
        }
        match directory::inputs_version(&self.conn) {
            Ok(n) if n != self.inputs_read => {
                tracing::info!(
                    "the employee directory or the terminal groups changed: planning again"
                );
                self.replan();
            }
            Ok(_) => {}
            // Busy (an import committing): the next tick looks again.
            Err(e) => tracing::debug!(error = %e, "could not read the directory's inputs version"),
        }
    }

    async fn on_message(&mut self, msg: &Inbound) {
        let base = self.cfg.base_topic.clone();
        if face_sync::terminal_of(&base, &msg.topic, "Ack").is_some() {
            match face_sync::decode_ack(&base, &msg.topic, &msg.payload) {
                Ok(ack) => self.on_ack(ack),
                Err(e) => self.quarantine(msg, "bad_ack", e.to_string()),
            }
            return;
        }
        match face_sync::decode_presence(&base, &msg.topic, &msg.payload) {
            Ok(p) => self.on_presence(p).await,
            // The recording pipeline quarantines presence it cannot read; here it is only noted.
            Err(e) => {
                tracing::debug!(topic = msg.topic, error = %e, "unreadable terminal presence")
            }
        }
    }

    fn quarantine(&self, msg: &Inbound, code: &'static str, reason: String) {
        tracing::warn!(topic = msg.topic, reason, "terminal Ack quarantined");
        let mut entry =
            QuarantineEntry::new(msg.received_ms, &msg.topic, &msg.payload, code, reason);
        entry.redelivered = msg.redelivered;
        let stored = quarantine::store(&self.conn, &entry);
        if let Err(e) = stored {
            tracing::error!(error = %e, "could not store a quarantined Ack");
        }
    }

    async fn on_presence(&mut self, p: Presence) {
        let id = p.terminal().to_owned();
        if let Presence::Online { message_id, .. } = &p {
            // Required by the protocol whatever we sync: without it the terminal re-sends Online.
            let out = Outbound {
                topic: face_sync::command_topic(&self.cfg.base_topic, &id),
                payload: face_sync::online_ack(&id, message_id.as_deref()),
                retain: false,
            };
            if self.outbound.try_send(out).is_err() {
                // The terminal sends Online again until it is answered.
                tracing::debug!(terminal = id, "link queue full: Online-Ack not sent now");
                return;
            }
        }
        if !self.terms.contains_key(&id) {
            tracing::info!(terminal = id, "new face terminal");
            self.add_terminal(Terminal {
                terminal_id: id.clone(),
                ..Terminal::default()
            });
        }
        let t = self.terms.get_mut(&id).expect("inserted above");
        t.meta.last_seen_ms = Some(now_ms());
        match p {
            Presence::Online {
                name, ip, firmware, ..
            } => {
                t.meta.name = name.or(t.meta.name.take());
                t.meta.ip = ip.or(t.meta.ip.take());
                t.meta.firmware = firmware.or(t.meta.firmware.take());
                // It may have restarted (what it holds is asked again), or only be repeating
                // an Online we missed: a request in flight keeps waiting for its Ack, but no
                // longer than `min_timeout` from now (a restarted terminal dropped it).
                if let Some(r) = t.inflight.as_mut() {
                    r.deadline = r.deadline.min(Instant::now() + self.cfg.min_timeout);
                }
                t.heard(true);
                t.idle = false;
                t.reconciled = false;
                t.retry_at = None;
                // Restarted, it may have lost persons or kept a leaver: planned again at once,
                // and asked about its progress afresh (a silence of the dead link before does
                // not make it one without QueryProgress).
                t.replan_at = None;
                t.progress_unanswered = 0;
                t.progress_busy = 0;
            }
            Presence::Offline { .. } => {
                if let Some(gone) = t.give_up_inflight() {
                    let _ = directory::take_inflight(&self.conn, &gone);
                }
                t.heard(false);
                if let Some(j) = t.job.as_mut().filter(|j| j.state == "running") {
                    j.state = "paused".into();
                    let _ = directory::save_job(&self.conn, j);
                }
            }
            Presence::HeartBeat { person_count, .. } => {
                t.meta.person_count = person_count.or(t.meta.person_count);
                if t.online != Some(true) {
                    // Alive, but a terminal that beats and never answers our requests (a
                    // missing topic permission, firmware without person sync) is still not
                    // answering: only an answer (or its Online) clears that.
                    t.online = Some(true);
                    t.idle = false;
                    t.reconciled = false;
                    t.retry_at = None;
                }
            }
        }
        t.meta.online = t.online == Some(true);
        if let Err(e) = directory::save_terminal(&self.conn, &t.meta) {
            tracing::error!(error = %e, "could not save a terminal");
        }
    }

    fn on_ack(&mut self, ack: Ack) {
        let Some(t) = self.terms.get_mut(&ack.terminal) else {
            tracing::debug!(
                terminal = ack.terminal,
                "Ack from a terminal this engine does not know"
            );
            return;
        };
        let mut asked_before_a_change = false;
        let (op, items, elapsed) = match t.take_request(&ack.message_id) {
            Some(r) => {
                self.photos.revoke(&r.tokens);
                let _ = directory::take_inflight(&self.conn, &r.message_id);
                asked_before_a_change = t.changed_at.is_some_and(|c| c > r.sent);
                (r.op, r.items, Some(r.sent.elapsed()))
            }
            // Sent before a restart, or by another console: only our own stored requests count.
            None => match directory::take_inflight(&self.conn, &ack.message_id) {
                Ok(Some(r)) if r.terminal_id == ack.terminal => {
                    let op = match r.operator.as_str() {
                        "EditPersonsNew" => Op::Edit,
                        "DeletePersons" => Op::Delete,
                        _ => return,
                    };
                    (op, r.items, None)
                }
                _ => {
                    tracing::debug!(
                        message_id = ack.message_id,
                        "Ack for a request this console did not send"
                    );
                    return;
                }
            },
        };
        t.heard(true);
        if op == Op::Query && asked_before_a_change {
            // A query given up on and answered after a batch or deletion was sent: it tells
            // what the terminal held before them. The next query's answer is used. (One
            // answered late with nothing sent since is used: a slow terminal's answer.)
            tracing::debug!(
                terminal = ack.terminal,
                "a late QueryPerson answer from before a change: not used"
            );
            return;
        }
        if !ack.accepted() {
            let code = ack.code.unwrap_or(0);
            let words = format!(
                "{} refused: {code} {}{}",
                op.operator(),
                error_meaning(code),
                ack.detail.map(|d| format!(" ({d})")).unwrap_or_default()
            );
            tracing::warn!(terminal = ack.terminal, "{words}");
            t.meta.last_error = Some(words);
            t.work = None;
            if op == Op::Progress {
                t.progress_unanswered += 1;
            }
            // A batch refused whole with a code that may be about one person in it (a name the
            // firmware cannot take) was sent again every minute for ever, and no one after it
            // was synced. It is halved until one person is left; refused alone, that person is
            // set aside and the next batch sent without them: taken, the person is recorded as
            // refused; refused too, the terminal refuses everything (no one is blamed, and the
            // halving stops).
            let about_someone = ack
                .code
                .is_some_and(|c| (400..500).contains(&c) && !matches!(c, 404 | 410 | 417));
            if op == Op::Edit && about_someone && !items.is_empty() {
                if items.len() > 1 {
                    t.batch_cap = Some(items.len() / 2);
                    t.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
                let probe_refused = t.probing.take().is_some_and(|p| p == items[0].0);
                if !probe_refused {
                    let (employee, content) = items[0].clone();
                    t.suspects.push(Suspect {
                        employee,
                        content,
                        code,
                        at: Instant::now(),
                    });
                    // Several refused alone in a row: a person the terminal already holds is
                    // sent again unchanged, to tell many refused names from a terminal that
                    // refuses everything.
                    t.probe_due = t.suspects.len() >= MAX_SUSPECTS;
                    t.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
                tracing::warn!(
                    terminal = ack.terminal,
                    code,
                    "a person the terminal holds was refused too: it refuses every batch; nobody is blamed"
                );
                t.suspects.clear();
                t.batch_cap = None;
            }
            t.retry_at = Some(Instant::now() + t.delays.next().unwrap_or(Duration::from_secs(60)));
            return;
        }
        t.delays = backoff();
        // Answered: an earlier error no longer describes the terminal, but for a full storage,
        // which holds until a batch stores someone again.
        if t.meta.last_error.as_deref() != Some(STORAGE_FULL) {
            t.meta.last_error = None;
        }
        let now = now_ms();
        // A batch sent after persons were set aside, without them, was taken: they are the ones
        // refused. (One sent before, late or from before a restart, tells nothing.)
        let sent_at = elapsed.map(|e| Instant::now() - e);
        let tells = op == Op::Edit
            && sent_at.is_some_and(|sent| t.suspects.iter().all(|s| s.at <= sent))
            && !items
                .iter()
                .any(|(e, _)| t.suspects.iter().any(|s| s.employee == *e));
        if tells {
            blame_suspects(&self.conn, &ack.terminal, t, now);
        }
        if op == Op::Edit {
            t.probing = None;
        }
        let result = match ack.body {
            AckBody::Edit { ok, failed } if op == Op::Edit => {
                let (photos_local, photos_at) =
                    (self.photos.urls_are_local_only(), self.photos.local_addr());
                let named: HashSet<&str> = ok
                    .iter()
                    .map(String::as_str)
                    .chain(failed.iter().map(|f| f.custom_id.as_str()))
                    .collect();
                let unnamed: Vec<(String, String)> = items
                    .iter()
                    .filter(|(id, _)| !named.contains(id.as_str()))
                    .cloned()
                    .collect();
                let given_up = t.named_neither(op, &items, unnamed);
                let content: HashMap<&str, &str> = items
                    .iter()
                    .map(|(id, c)| (id.as_str(), c.as_str()))
                    .collect();
                let stored: Vec<(String, String)> = ok
                    .iter()
                    .filter_map(|id| {
                        content
                            .get(id.as_str())
                            .map(|c| (id.clone(), c.to_string()))
                    })
                    .collect();
                if !stored.is_empty() && t.meta.last_error.as_deref() == Some(STORAGE_FULL) {
                    t.meta.last_error = None;
                }
                let mut permanent = 0;
                let mut transient = false;
                let res = (|| -> rusqlite::Result<()> {
                    let tx = self.conn.unchecked_transaction()?;
                    directory::confirm_stored(&tx, &ack.terminal, &stored, now)?;
                    for f in &failed {
                        let Some(c) = content.get(f.custom_id.as_str()) else {
                            continue;
                        };
                        let attempts = directory::record_failure(
                            &tx,
                            &Failure {
                                terminal_id: ack.terminal.clone(),
                                employee_id: f.custom_id.clone(),
                                content: c.to_string(),
                                errcode: f.errcode,
                                reason: error_meaning(f.errcode).to_owned(),
                                attempts: 0,
                                at_ms: now,
                            },
                        )?;
                        if is_transient(f.errcode) && attempts < self.cfg.max_attempts {
                            transient = true;
                        } else {
                            permanent += 1;
                        }
                        if f.errcode == 474 {
                            t.meta.last_error = Some(STORAGE_FULL.into());
                        }
                        // Photos it could not download, from URLs it cannot reach: say why (the
                        // answer cleared the hint given when the batch went).
                        if matches!(f.errcode, 464 | 465) {
                            if let Some(hint) = photo_hint(photos_local, photos_at, &t.meta) {
                                t.meta.last_error = Some(hint);
                            }
                        }
                    }
                    for (id, c) in &given_up {
                        directory::record_failure(
                            &tx,
                            &Failure {
                                terminal_id: ack.terminal.clone(),
                                employee_id: id.clone(),
                                content: c.clone(),
                                errcode: 0,
                                reason: NEVER_NAMED_ADDED.into(),
                                attempts: 0,
                                at_ms: now,
                            },
                        )?;
                        permanent += 1;
                    }
                    tx.commit()
                })();
                if let Some(elapsed) = elapsed.filter(|_| !items.is_empty()) {
                    let sample = elapsed.as_secs_f64() * 1000.0 / items.len() as f64;
                    t.meta.ms_per_person = Some(match t.meta.ms_per_person {
                        Some(old) => 0.6 * old + 0.4 * sample,
                        None => sample,
                    });
                }
                if let Some(j) = t.job.as_mut() {
                    j.done += stored.len() as u64;
                    j.failed += permanent;
                    j.busy_ms += elapsed.map_or(0, |e| e.as_millis() as u64);
                }
                // Persons refused for a passing reason are planned again once the rest is sent.
                t.replan_when_done |= transient;
                res
            }
            AckBody::Delete { ok, failed } if op == Op::Delete => {
                let unnamed: Vec<(String, String)> = items
                    .iter()
                    .filter(|(id, _)| !ok.contains(id) && !failed.contains(id))
                    .cloned()
                    .collect();
                let given_up = t.named_neither(op, &items, unnamed);
                if !failed.is_empty() {
                    // Unknown ids come back as failures: ask what the terminal really holds.
                    t.reconciled = false;
                }
                // Each refusal is counted: one the terminal still holds is removed again, up
                // to the attempts allowed, then shown as refused. (It was asked about and sent
                // again for ever, as fast as the terminal answered, and a leaver kept access
                // with nothing shown.) An id the terminal lacks is forgotten by the query.
                let sent: HashSet<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
                let res = (|| -> rusqlite::Result<u64> {
                    let tx = self.conn.unchecked_transaction()?;
                    directory::confirm_removed(&tx, &ack.terminal, &ok)?;
                    let mut refused_for_good = 0;
                    for (id, _) in &given_up {
                        directory::record_failure(
                            &tx,
                            &Failure {
                                terminal_id: ack.terminal.clone(),
                                employee_id: id.clone(),
                                content: directory::REMOVAL_CONTENT.into(),
                                errcode: 0,
                                reason: NEVER_NAMED_REMOVED.into(),
                                attempts: 0,
                                at_ms: now,
                            },
                        )?;
                        directory::raise_attempts(&tx, &ack.terminal, id, self.cfg.max_attempts)?;
                        refused_for_good += 1;
                    }
                    for id in failed.iter().filter(|id| sent.contains(id.as_str())) {
                        let attempts = directory::record_failure(
                            &tx,
                            &Failure {
                                terminal_id: ack.terminal.clone(),
                                employee_id: id.clone(),
                                content: directory::REMOVAL_CONTENT.into(),
                                errcode: 0,
                                reason: "the terminal did not remove this person".into(),
                                attempts: 0,
                                at_ms: now,
                            },
                        )?;
                        if attempts == self.cfg.max_attempts {
                            refused_for_good += 1;
                        }
                    }
                    tx.commit()?;
                    Ok(refused_for_good)
                })();
                if let Some(j) = t.job.as_mut() {
                    j.done += ok.len() as u64;
                    j.failed += *res.as_ref().unwrap_or(&0);
                    j.busy_ms += elapsed.map_or(0, |e| e.as_millis() as u64);
                }
                res.map(|_| ())
            }
            AckBody::Progress { status } if op == Op::Progress => {
                t.progress_unanswered = 0;
                if status == 0 {
                    t.idle = true;
                    t.progress_busy = 0;
                } else if t.progress_busy >= PROGRESS_BUSY_POLLS {
                    // Busy for 20 minutes on end: stuck, or a firmware that means something
                    // else by it. Go on; a batch still running is answered 410.
                    tracing::warn!(
                        terminal = ack.terminal,
                        status,
                        "QueryProgress has said busy for 20 minutes: going on"
                    );
                    t.idle = true;
                    t.progress_busy = 0;
                } else {
                    // A batch (perhaps ours, from before a restart) is still running: wait,
                    // every second for a minute, then every 10 s.
                    t.progress_busy += 1;
                    let wait = if t.progress_busy <= 60 { 1 } else { 10 };
                    t.retry_at = Some(Instant::now() + Duration::from_secs(wait));
                }
                Ok(())
            }
            AckBody::Query { custom_ids } if op == Op::Query => {
                t.meta.person_count = Some(custom_ids.len() as u32);
                t.reconciled = true;
                t.work = None;
                // What it holds is known anew: planned from it now, not after a retry's wait.
                t.replan_at = None;
                // An unnamed addition it lists, or an unnamed removal it no longer does, was
                // made: not counted against it. (An unnamed change to someone it already held
                // cannot be told from its list: still counted.)
                let listed: HashSet<&str> = custom_ids.iter().map(String::as_str).collect();
                let confirmed_before =
                    directory::confirmed(&self.conn, &ack.terminal).unwrap_or_default();
                t.unnamed_rounds.retain(|id, (op, _, _)| match op {
                    Op::Delete => listed.contains(id.as_str()),
                    _ => !listed.contains(id.as_str()) || confirmed_before.contains_key(id),
                });
                let present: HashSet<String> = custom_ids.into_iter().collect();
                let sent: HashMap<&str, &str> = t
                    .sent_unanswered()
                    .into_iter()
                    .filter_map(|(id, content)| Some((id, content?)))
                    .collect();
                let done = self.conn.unchecked_transaction().and_then(|tx| {
                    directory::reconcile(&tx, &ack.terminal, &present, &self.managed, &sent, now)?;
                    tx.commit()
                });
                if done.is_ok() {
                    t.late_forgotten.clear();
                }
                done
            }
            _ => {
                tracing::warn!(
                    terminal = ack.terminal,
                    operator = ack.operator,
                    "Ack does not match the request it names"
                );
                t.work = None;
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(terminal = ack.terminal, error = %e, "could not record an Ack; the persons will be sent again");
            t.work = None;
        }
        t.meta.online = true;
        t.meta.last_seen_ms = Some(now);
        let _ = directory::save_terminal(&self.conn, &t.meta);
        if let Some(j) = &t.job {
            let _ = directory::save_job(&self.conn, j);
        }
    }

    /// Computes a terminal's work from the directory and what it holds.
    fn plan(&mut self, id: &str) {
        let now = now_ms();
        let Some(t) = self.terms.get(id) else { return };
        if t.cancelled || !self.wanted(id) {
            return;
        }
        let desired = directory::desired(&self.employees, &self.groups, id, now);
        let (confirmed, failures) = match (
            directory::confirmed(&self.conn, id),
            directory::failures(&self.conn, Some(id)),
        ) {
            (Ok(c), Ok(f)) => (c, f),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(terminal = id, error = %e, "could not read what the terminal holds");
                return;
            }
        };
        let failures: HashMap<&str, &Failure> = failures
            .iter()
            .map(|f| (f.employee_id.as_str(), f))
            .collect();
        let mut upserts: Vec<String> = Vec::new();
        // Persons refused for a passing reason wait before they are sent again: all attempts
        // used up within a second (a photo host down for a minute, another tool's batch
        // running) parked them as failed for good.
        let mut deferred = 0_u64;
        let mut next_due: Option<i64> = None;
        for (eid, e) in &desired {
            if t.suspects.iter().any(|s| s.employee == *eid) {
                continue;
            }
            let content = e.content();
            if confirmed.get(*eid).and_then(|c| c.as_deref()) == Some(content.as_str()) {
                continue;
            }
            match failures.get(*eid).filter(|f| f.content == content) {
                Some(f) if !is_transient(f.errcode) || f.attempts >= self.cfg.max_attempts => {}
                Some(f)
                    if f.at_ms
                        .saturating_add(retry_delay(self.cfg.retry_after, f.attempts))
                        > now =>
                {
                    deferred += 1;
                    let due = f
                        .at_ms
                        .saturating_add(retry_delay(self.cfg.retry_after, f.attempts));
                    next_due = Some(next_due.map_or(due, |n| n.min(due)));
                }
                _ => upserts.push(eid.to_string()),
            }
        }
        upserts.sort();
        let mut deletes: Vec<String> = confirmed
            .keys()
            .filter(|eid| !desired.contains_key(eid.as_str()))
            .filter(|eid| {
                !failures.get(eid.as_str()).is_some_and(|f| {
                    f.content == directory::REMOVAL_CONTENT && f.attempts >= self.cfg.max_attempts
                })
            })
            .cloned()
            .collect();
        deletes.sort();
        // Refusals that no longer mean anything: a person refused while wanted here who no
        // longer is, or one refused removal whom the terminal no longer holds. They were kept
        // for good, listed as refused, and `sync --wait` failed on them for ever.
        for f in failures.values() {
            let wanted = desired.contains_key(f.employee_id.as_str());
            let held = confirmed.contains_key(&f.employee_id);
            let removal = f.content == directory::REMOVAL_CONTENT;
            if (!wanted && !removal) || (removal && (wanted || !held)) {
                if let Err(e) = directory::clear_failure(&self.conn, id, &f.employee_id) {
                    tracing::warn!(terminal = id, error = %e, "could not clear a refusal");
                }
            }
        }
        let work = Work {
            deletes: deletes.into(),
            upserts: upserts.into(),
        };
        let t = self.terms.get_mut(id).expect("checked above");
        t.deferred_until_ms = next_due;
        let pending = work.len() as u64 + deferred;
        let in_flight = t.inflight.as_ref().map_or(0, |r| r.items.len()) as u64;
        match t.job.as_mut() {
            Some(j) if j.state == "running" || j.state == "paused" => {
                j.total = j.done + j.failed + pending + in_flight;
            }
            _ if pending > 0 => {
                t.job = Some(Job {
                    terminal_id: id.to_owned(),
                    state: "running".into(),
                    started_ms: now,
                    finished_ms: None,
                    total: pending,
                    done: 0,
                    failed: 0,
                    busy_ms: 0,
                    last_error: None,
                });
            }
            _ => {}
        }
        if let Some(j) = &t.job {
            let _ = directory::save_job(&self.conn, j);
        }
        t.work = Some(work);
    }

    async fn pump_all(&mut self) {
        let ids: Vec<String> = self.terms.keys().cloned().collect();
        for id in ids {
            self.pump(&id).await;
        }
    }

    /// Sends the terminal its next request, if it has none in flight and is not waiting.
    async fn pump(&mut self, id: &str) {
        let now = Instant::now();
        {
            let Some(t) = self.terms.get(id) else { return };
            if t.inflight.is_some()
                || t.cancelled
                || t.online == Some(false)
                || t.retry_at.is_some_and(|r| r > now)
                || !self.wanted(id)
            {
                return;
            }
            if (t.online.is_none() || !t.idle) && t.progress_unanswered < PROGRESS_TRIES {
                self.send(id, Op::Progress, Vec::new()).await;
                return;
            }
            if !t.reconciled {
                self.send(id, Op::Query, Vec::new()).await;
                return;
            }
            if t.work.is_none() {
                if t.replan_at.is_some_and(|at| at > now) {
                    return;
                }
                self.terms.get_mut(id).expect("checked above").replan_at = None;
                self.plan(id);
            }
        }
        if self.terms.get(id).is_some_and(|t| t.probe_due) {
            self.send_probe(id).await;
            return;
        }
        let max = self.batch_size(id);
        let t = self.terms.get_mut(id).expect("checked above");
        if let Some(j) = t.job.as_mut().filter(|j| j.state == "paused") {
            j.state = "running".into();
        }
        let Some(work) = t.work.as_mut() else { return };
        let (op, ids): (Op, Vec<String>) = if !work.deletes.is_empty() {
            let n = work.deletes.len().min(MAX_DELETE_BATCH);
            (Op::Delete, work.deletes.drain(..n).collect())
        } else if !work.upserts.is_empty() {
            let n = work.upserts.len().min(max);
            (Op::Edit, work.upserts.drain(..n).collect())
        } else if t.replan_when_done {
            t.replan_when_done = false;
            t.work = None;
            return;
        } else if let Some(due) = t.deferred_until_ms.take() {
            // Persons wait for their next attempt: plan again then, or sooner when the
            // directory changes (a leaver must not wait on someone else's photo). The
            // terminal-wide backoff, `retry_at`, is for a terminal that refuses.
            let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
            t.work = None;
            t.replan_at = Some(now + Duration::from_millis(wait));
            return;
        } else {
            // Persons set aside with no one left to send after them: refused alone, blamed.
            blame_suspects(&self.conn, id, t, now_ms());
            t.batch_cap = None;
            if let Some(j) = t.job.as_mut().filter(|j| j.state == "running") {
                j.state = "done".into();
                j.finished_ms = Some(now_ms());
                let _ = directory::save_job(&self.conn, j);
                tracing::info!(
                    terminal = id,
                    done = j.done,
                    failed = j.failed,
                    "terminal in sync"
                );
            }
            return;
        };
        let items = ids
            .into_iter()
            .map(|eid| {
                let content = match op {
                    Op::Edit => self
                        .employees
                        .get(&eid)
                        .map(Employee::content)
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                (eid, content)
            })
            .collect();
        self.send(id, op, items).await;
    }

    /// Sends a person the terminal holds, unchanged (an upsert of what it has), after several
    /// were refused alone in a row: taken, they were refused for themselves and are blamed
    /// (see `on_ack`); refused, the terminal refuses everything. With no one to send, nobody
    /// is blamed.
    async fn send_probe(&mut self, id: &str) {
        let confirmed = directory::confirmed(&self.conn, id).unwrap_or_default();
        let probe = confirmed.iter().find_map(|(eid, held)| {
            let content = self.employees.get(eid)?.content();
            (held.as_deref() == Some(content.as_str())).then(|| (eid.clone(), content))
        });
        let Some(t) = self.terms.get_mut(id) else {
            return;
        };
        t.probe_due = false;
        match probe {
            Some((eid, content)) => {
                t.probing = Some(eid.clone());
                self.send(id, Op::Edit, vec![(eid, content)]).await;
            }
            None => {
                tracing::warn!(
                    terminal = id,
                    "persons refused alone in a row, and none held to tell why: nobody is blamed"
                );
                t.suspects.clear();
                t.batch_cap = None;
            }
        }
    }

    fn batch_size(&self, id: &str) -> usize {
        let cap = self.terms.get(id).and_then(|t| t.batch_cap);
        let max = self
            .cfg
            .max_batch
            .min(cap.unwrap_or(MAX_EDIT_BATCH))
            .clamp(1, MAX_EDIT_BATCH);
        match self.terms.get(id).and_then(|t| t.meta.ms_per_person) {
            Some(ms) if ms > 0.0 => {
                ((self.cfg.target_batch.as_secs_f64() * 1000.0 / ms) as usize).clamp(1, max)
            }
            _ => self.cfg.first_batch.clamp(1, max),
        }
    }

    /// Says so on the terminal (its panel row, and the log when it is not said already) when its photo
    /// URLs name this machine only and the terminal is elsewhere: the default photo endpoint
    /// listens on 127.0.0.1, and every person then failed 464 or 465 with no hint why.
    fn warn_if_photos_unreachable(&mut self, id: &str) {
        let local = self.photos.urls_are_local_only();
        let addr = self.photos.local_addr();
        let Some(t) = self.terms.get_mut(id) else {
            return;
        };
        // Not over another error (a request not answered says more).
        if t.meta.last_error.is_none() {
            if let Some(words) = photo_hint(local, addr, &t.meta) {
                tracing::warn!(terminal = id, "{words}");
                t.meta.last_error = Some(words);
            }
        }
    }

    async fn send(&mut self, id: &str, op: Op, items: Vec<(String, String)>) {
        let message_id = format!("wf-{:016x}", rand::random::<u64>());
        let per_person_ms = self
            .terms
            .get(id)
            .and_then(|t| t.meta.ms_per_person)
            .unwrap_or(1000.0);
        let expected = Duration::from_secs_f64(items.len() as f64 * per_person_ms / 1000.0);
        let sent = Instant::now();
        let deadline = sent + self.cfg.min_timeout.max(expected * 3);
        let mut tokens = Vec::new();
        let payload = match op {
            Op::Progress => face_sync::query_progress(&message_id),
            Op::Query => face_sync::query_person(&message_id),
            Op::Delete => {
                let ids: Vec<String> = items.iter().map(|(i, _)| i.clone()).collect();
                face_sync::delete_persons(&message_id, &ids)
            }
            Op::Edit => {
                self.warn_if_photos_unreachable(id);
                let persons: Vec<Person> = items
                    .iter()
                    .filter_map(|(eid, _)| self.employees.get(eid))
                    .map(|e| {
                        let (token, url) = self
                            .photos
                            .grant(PathBuf::from(&e.photo), deadline + Duration::from_secs(30));
                        tokens.push(token);
                        self.person(e, url, id)
                    })
                    .collect();
                if persons.is_empty() {
                    return;
                }
                face_sync::edit_persons(&message_id, &persons)
            }
        };
        if matches!(op, Op::Edit | Op::Delete) {
            let record = InFlight {
                message_id: message_id.clone(),
                terminal_id: id.to_owned(),
                operator: op.operator().to_owned(),
                items: items.clone(),
                sent_ms: now_ms(),
            };
            if let Err(e) = directory::save_inflight(&self.conn, &record) {
                tracing::error!(error = %e, "could not record a request in flight");
            }
        }
        tracing::debug!(
            terminal = id,
            operator = op.operator(),
            persons = items.len(),
            "sending"
        );
        let out = Outbound {
            topic: face_sync::command_topic(&self.cfg.base_topic, id),
            payload,
            retain: false,
        };
        if let Some(t) = self.terms.get_mut(id) {
            if matches!(op, Op::Edit | Op::Delete) {
                t.changed_at = Some(sent);
            }
            t.inflight = Some(Request {
                message_id,
                op,
                items,
                tokens,
                sent,
                deadline,
            });
        }
        // Never waits for the link: while the broker is away its queue fills, and waiting here
        // would stop this loop (deadlines, controls, progress) until it came back. A request
        // the queue cannot take is as good as lost on the way: its deadline fires and the
        // terminal is asked again.
        if self.outbound.try_send(out).is_err() {
            tracing::debug!(
                terminal = id,
                "link queue full: the request waits for its deadline"
            );
        }
    }

    /// Employee `e` as terminal `terminal` enrols them: the validity window in that terminal's
    /// clock zone.
    fn person(&self, e: &Employee, pic_uri: String, terminal: &str) -> Person {
        let zone = self.zone_of(terminal);
        let local = |ms: i64| {
            zone.timestamp_millis_opt(ms)
                .single()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        let valid = match (e.valid_from_ms, e.valid_to_ms) {
            (None, None) => None,
            (from, to) => Some((
                from.and_then(local)
                    .unwrap_or_else(|| "2000-01-01 00:00:00".into()),
                to.map(|t| t - 1000)
                    .and_then(local)
                    .unwrap_or_else(|| "2099-12-31 23:59:59".into()),
            )),
        };
        Person {
            custom_id: e.employee_id.clone(),
            name: e.name.clone(),
            person_type: e.person_type.wire(),
            valid,
            pic_uri,
        }
    }

    fn progress(&self) -> Vec<TerminalProgress> {
        let now = now_ms();
        self.terms
            .iter()
            .filter(|(id, _)| self.wanted(id))
            .map(|(id, t)| {
                let job = t.job.as_ref();
                let wall_ms = job
                    .map(|j| (j.finished_ms.unwrap_or(now) - j.started_ms).max(1) as f64)
                    .unwrap_or(1.0);
                let state = if t.cancelled {
                    "cancelled".to_owned()
                } else {
                    job.map_or_else(|| "idle".to_owned(), |j| j.state.clone())
                };
                TerminalProgress {
                    terminal_id: id.clone(),
                    name: t.meta.name.clone(),
                    online: t.online,
                    no_answer: t.no_answer,
                    person_count: t.meta.person_count,
                    pending: if t.reconciled {
                        t.work.as_ref().map(|w| w.len() as u64)
                    } else {
                        None
                    },
                    in_flight: t.inflight.as_ref().map_or(0, |r| r.items.len() as u64),
                    state,
                    total: job.map_or(0, |j| j.total),
                    done: job.map_or(0, |j| j.done),
                    failed: job.map_or(0, |j| j.failed),
                    throughput: job.map_or(0.0, |j| j.done as f64 * 1000.0 / wall_ms),
                    utilisation: job.map_or(0.0, |j| (j.busy_ms as f64 / wall_ms).min(1.0)),
                    ms_per_person: t.meta.ms_per_person,
                    last_error: t.meta.last_error.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request sent now, already past its deadline.
    fn request(message_id: &str, op: Op, items: &[(&str, &str)]) -> Request {
        Request {
            message_id: message_id.into(),
            op,
            items: items
                .iter()
                .map(|(id, c)| (id.to_string(), c.to_string()))
                .collect(),
            tokens: vec![],
            sent: Instant::now(),
            deadline: Instant::now(),
        }
    }

    /// Employee E1, Ann, everywhere and with no end.
    fn ann() -> Employee {
        Employee {
            employee_id: "E1".into(),
            name: "Ann".into(),
            photo: "/x.jpg".into(),
            photo_sha256: String::new(),
            terminals: Vec::new(),
            valid_from_ms: None,
            valid_to_ms: None,
            person_type: super::super::directory::PersonType::Allow,
        }
    }

    /// `r` sent to `t` and given up on.
    fn give_up(t: &mut Term, r: Request) {
        t.inflight = Some(r);
        t.give_up_inflight();
    }

    /// T1's accepted (code 200) answer to request `message_id`.
    fn t1_answer(message_id: &str, operator: &str, body: AckBody) -> Ack {
        Ack {
            terminal: "T1".into(),
            message_id: message_id.into(),
            operator: operator.into(),
            code: Some(200),
            detail: None,
            refused: false,
            body,
        }
    }

    /// An engine over a new history file holding terminal T1 (and what `prepare` adds), with
    /// the default settings but what `configure` changes; the file's folder, and what the
    /// engine sends.
    fn engine_for_t1(
        prepare: impl FnOnce(&mut Connection),
        configure: impl FnOnce(&mut SyncConfig),
    ) -> (Engine, mpsc::Receiver<Outbound>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        directory::save_terminal(
            &conn,
            &Terminal {
                terminal_id: "T1".into(),
                ..Terminal::default()
            },
        )
        .unwrap();
        prepare(&mut conn);
        let photos = PhotoServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let (out_tx, out_rx) = mpsc::channel(8);
        let mut cfg = SyncConfig::new("mqtt/face", chrono_tz::UTC);
        configure(&mut cfg);
        let engine = Engine::new(cfg, conn, photos, out_tx, &[]).unwrap();
        (engine, out_rx, dir)
    }

    #[test]
    fn what_unanswered_batches_sent_is_trusted_only_when_it_is_all_known() {
        let mut t = Term::new(Terminal::default());
        let edit = |n: usize, items: &[(&str, &str)]| request(&format!("m{n}"), Op::Edit, items);
        give_up(&mut t, edit(0, &[("old", "c0"), ("x", "c1")]));
        give_up(&mut t, edit(1, &[("x", "c2"), ("y", "c3")]));
        let sent = t.sent_unanswered();
        assert_eq!(sent.get("y"), Some(&Some("c3")));
        assert_eq!(sent.get("x"), Some(&None), "sent twice, differently");
        // Eight more: the first falls out of `late`, and with it what is known of "old".
        for n in 2..10 {
            give_up(&mut t, edit(n, &[("old", "c0"), ("z", "c4")]));
        }
        let sent = t.sent_unanswered();
        assert_eq!(sent.get("old"), Some(&None));
        assert_eq!(sent.get("z"), Some(&Some("c4")));
    }

    #[tokio::test]
    async fn a_card_ends_at_one_instant_written_in_each_terminal_s_own_clock() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        let photos = PhotoServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let (out_tx, _out_rx) = mpsc::channel(1);
        let mut cfg = SyncConfig::new("mqtt/face", chrono_tz::Europe::Amsterdam);
        cfg.terminal_zones
            .insert("T-07".into(), chrono_tz::Asia::Dubai);
        let engine = Engine::new(cfg, conn, photos, out_tx, &[]).unwrap();
        // valid_to 2026-12-31 in Amsterdam: the card ends at 2027-01-01 00:00 CET (exclusive).
        let end = chrono_tz::Europe::Amsterdam
            .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        let e = Employee {
            valid_to_ms: Some(end),
            ..ann()
        };
        let until = |t: &str| engine.person(&e, String::new(), t).valid.unwrap().1;
        assert_eq!(until("gate-1"), "2026-12-31 23:59:59");
        // Dubai is 3 h ahead of Amsterdam in winter: the same instant on its clock.
        assert_eq!(until("T-07"), "2027-01-01 02:59:59");
    }

    #[tokio::test]
    async fn new_employees_and_late_query_answers_are_not_taken_for_what_a_terminal_holds() {
        let (mut engine, _out_rx, dir) = engine_for_t1(|_| {}, |_| {});
        let db = dir.path().join("h.sqlite");
        engine.terms.get_mut("T1").unwrap().reconciled = true;
        // Nothing new in the directory: the terminal's last answer stands.
        engine.reload().unwrap();
        assert!(engine.terms["T1"].reconciled);
        // An employee imported (by another process): the terminal is asked again before
        // anything is sent, since it may hold that person already.
        let mut other = crate::store::open(&db).unwrap();
        directory::apply_import(&mut other, &[ann()], &HashSet::new(), false, 1).unwrap();
        engine.reload().unwrap();
        assert!(!engine.terms["T1"].reconciled);

        // A query given up on and answered late, listing E1.
        let answered_late = |engine: &mut Engine, message_id: &str, batch_sent_after: bool| {
            let term = engine.terms.get_mut("T1").unwrap();
            give_up(term, request(message_id, Op::Query, &[]));
            if batch_sent_after {
                term.changed_at = Some(Instant::now());
            }
            engine.on_ack(Ack {
                terminal: "T1".into(),
                message_id: message_id.into(),
                operator: "QueryPerson".into(),
                code: Some(200),
                detail: None,
                refused: false,
                body: AckBody::Query {
                    custom_ids: vec!["E1".into()],
                },
            });
        };
        // A batch went out after it: not used.
        answered_late(&mut engine, "q1", true);
        assert!(!engine.terms["T1"].reconciled);
        assert!(directory::confirmed(&engine.conn, "T1").unwrap().is_empty());
        // Nothing was sent since (a slow terminal): used.
        answered_late(&mut engine, "q2", false);
        assert!(engine.terms["T1"].reconciled);
        assert_eq!(
            directory::confirmed(&engine.conn, "T1").unwrap().get("E1"),
            Some(&None)
        );
    }

    #[tokio::test]
    async fn persons_an_ack_names_neither_way_are_asked_about_not_taken_as_done() {
        let (mut engine, _out_rx, _dir) = engine_for_t1(|_| {}, |_| {});
        let ack = t1_answer;
        let term = engine.terms.get_mut("T1").unwrap();
        term.reconciled = true;
        term.inflight = Some(request("m1", Op::Edit, &[("E1", "c1"), ("E2", "c2")]));
        // The terminal names E1 stored and says nothing of E2.
        engine.on_ack(ack(
            "m1",
            "EditPersonsNew",
            AckBody::Edit {
                ok: vec!["E1".into()],
                failed: vec![],
            },
        ));
        let term = &engine.terms["T1"];
        assert!(!term.reconciled && term.replan_when_done, "asked again");
        let confirmed = directory::confirmed(&engine.conn, "T1").unwrap();
        assert_eq!(confirmed.get("E1"), Some(&Some("c1".to_owned())));
        assert_eq!(confirmed.get("E2"), None, "not taken as stored");
        // The terminal's list has E2 (ours): it holds what was sent.
        engine.managed.extend(["E1".to_owned(), "E2".to_owned()]);
        engine.terms.get_mut("T1").unwrap().inflight = Some(request("q1", Op::Query, &[]));
        engine.on_ack(ack(
            "q1",
            "QueryPerson",
            AckBody::Query {
                custom_ids: vec!["E1".into(), "E2".into()],
            },
        ));
        let confirmed = directory::confirmed(&engine.conn, "T1").unwrap();
        assert_eq!(confirmed.get("E2"), Some(&Some("c2".to_owned())));
        assert!(
            !engine.terms["T1"].unnamed_rounds.contains_key("E2"),
            "a change the list shows made is not counted against the terminal"
        );
        // A deletion answered without one of its ids: the terminal is asked again too.
        let term = engine.terms.get_mut("T1").unwrap();
        term.replan_when_done = false;
        term.inflight = Some(request("d1", Op::Delete, &[("E1", ""), ("E2", "")]));
        engine.on_ack(ack(
            "d1",
            "DeletePersons",
            AckBody::Delete {
                ok: vec!["E1".into()],
                failed: vec![],
            },
        ));
        let term = &engine.terms["T1"];
        assert!(!term.reconciled && term.replan_when_done);
    }

    #[tokio::test]
    async fn a_removal_the_terminal_keeps_refusing_is_tried_three_times_then_shown_refused() {
        // A leaver the terminal holds.
        let (mut engine, _out_rx, _dir) = engine_for_t1(
            |conn| {
                directory::confirm_stored(conn, "T1", &[("E9".into(), "c9".into())], 1).unwrap();
            },
            |_| {},
        );
        engine.managed.insert("E9".into());
        let ack = |message_id: &str, body: AckBody| t1_answer(message_id, "DeletePersons", body);
        let planned = |engine: &mut Engine| {
            engine.plan("T1");
            let work = engine.terms["T1"].work.as_ref().unwrap();
            work.deletes.iter().cloned().collect::<Vec<_>>()
        };
        for n in 1..=3 {
            assert_eq!(planned(&mut engine), ["E9"], "attempt {n}");
            let message_id = format!("d{n}");
            engine.terms.get_mut("T1").unwrap().inflight =
                Some(request(&message_id, Op::Delete, &[("E9", "")]));
            engine.on_ack(ack(
                &message_id,
                AckBody::Delete {
                    ok: vec![],
                    failed: vec!["E9".into()],
                },
            ));
        }
        assert!(planned(&mut engine).is_empty(), "not sent a fourth time");
        let refused = directory::failures(&engine.conn, Some("T1")).unwrap();
        assert_eq!(
            refused
                .iter()
                .map(|f| (f.employee_id.as_str(), f.content.as_str(), f.attempts))
                .collect::<Vec<_>>(),
            [("E9", directory::REMOVAL_CONTENT, 3)]
        );
        assert_eq!(engine.terms["T1"].job.as_ref().map(|j| j.failed), Some(1));
        // Once the terminal no longer holds it, the refusal goes too.
        engine.terms.get_mut("T1").unwrap().inflight = Some(request("q1", Op::Query, &[]));
        engine.on_ack(Ack {
            operator: "QueryPerson".into(),
            ..ack("q1", AckBody::Query { custom_ids: vec![] })
        });
        assert!(planned(&mut engine).is_empty());
        assert!(directory::failures(&engine.conn, Some("T1"))
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_removal_the_terminal_answers_without_naming_is_given_up_after_three_rounds() {
        let (mut engine, _out_rx, _dir) = engine_for_t1(
            |conn| {
                directory::confirm_stored(conn, "T1", &[("E9".into(), "c9".into())], 1).unwrap();
            },
            |_| {},
        );
        engine.managed.insert("E9".into());
        for n in 1..=3 {
            engine.plan("T1");
            let deletes: Vec<_> = engine.terms["T1"]
                .work
                .as_ref()
                .unwrap()
                .deletes
                .iter()
                .cloned()
                .collect();
            assert_eq!(deletes, ["E9"], "round {n}");
            let message_id = format!("d{n}");
            engine.terms.get_mut("T1").unwrap().inflight =
                Some(request(&message_id, Op::Delete, &[("E9", "")]));
            // 200, and no list at all.
            engine.on_ack(Ack {
                terminal: "T1".into(),
                message_id,
                operator: "DeletePersons".into(),
                code: Some(200),
                detail: None,
                refused: false,
                body: AckBody::Delete {
                    ok: vec![],
                    failed: vec![],
                },
            });
            assert!(!engine.terms["T1"].reconciled, "asked what it holds");
            // Its list still shows E9 (it is still confirmed here).
        }
        engine.plan("T1");
        assert!(
            engine.terms["T1"].work.as_ref().unwrap().deletes.is_empty(),
            "given up"
        );
        let refused = directory::failures(&engine.conn, Some("T1")).unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].reason, NEVER_NAMED_REMOVED);
    }

    #[tokio::test]
    async fn a_terminal_elsewhere_is_told_it_cannot_reach_photos_on_this_machine_only() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        for (id, ip) in [("GATE", "10.0.0.7"), ("LOCAL", "127.0.0.1")] {
            directory::save_terminal(
                &conn,
                &Terminal {
                    terminal_id: id.into(),
                    ip: Some(ip.into()),
                    ..Terminal::default()
                },
            )
            .unwrap();
        }
        let photos = PhotoServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let (out_tx, _out_rx) = mpsc::channel(8);
        let cfg = SyncConfig::new("mqtt/face", chrono_tz::UTC);
        let mut engine = Engine::new(cfg, conn, photos, out_tx, &[]).unwrap();
        engine.warn_if_photos_unreachable("GATE");
        engine.warn_if_photos_unreachable("LOCAL");
        let said = engine.terms["GATE"].meta.last_error.clone().unwrap();
        assert!(
            said.starts_with("photos are served at 127.0.0.1:")
                && said.contains("which this terminal (10.0.0.7) cannot reach"),
            "{said}"
        );
        assert_eq!(engine.terms["LOCAL"].meta.last_error, None);
        // The answer to the batch, every photo failed 465, still says why.
        engine.terms.get_mut("GATE").unwrap().inflight =
            Some(request("m1", Op::Edit, &[("E1", "c1")]));
        engine.on_ack(Ack {
            terminal: "GATE".into(),
            message_id: "m1".into(),
            operator: "EditPersonsNew".into(),
            code: Some(200),
            detail: None,
            refused: false,
            body: AckBody::Edit {
                ok: vec![],
                failed: vec![face_sync::PersonError {
                    custom_id: "E1".into(),
                    errcode: 465,
                }],
            },
        });
        assert_eq!(engine.terms["GATE"].meta.last_error.as_ref(), Some(&said));
    }

    #[tokio::test]
    async fn a_person_refused_for_a_passing_reason_waits_before_the_next_attempt() {
        let (mut engine, _out_rx, _dir) = engine_for_t1(
            |conn| {
                directory::apply_import(conn, &[ann()], &HashSet::new(), false, 1).unwrap();
                // The photo download failed a moment ago (465, first attempt).
                directory::record_failure(
                    conn,
                    &Failure {
                        terminal_id: "T1".into(),
                        employee_id: "E1".into(),
                        content: ann().content(),
                        errcode: 465,
                        reason: "photo download failed or timed out".into(),
                        attempts: 0,
                        at_ms: now_ms(),
                    },
                )
                .unwrap();
            },
            |cfg| cfg.retry_after = Duration::from_millis(300),
        );
        engine.plan("T1");
        let t = &engine.terms["T1"];
        assert!(t.work.as_ref().unwrap().upserts.is_empty(), "not at once");
        assert!(t.deferred_until_ms.is_some());
        assert_eq!(
            t.job.as_ref().map(|j| (j.state.as_str(), j.total)),
            Some(("running", 1))
        );
        // With nothing else to send, the terminal waits for E1's turn: not with its backoff,
        // which would hold back a leaver imported meanwhile, but until the directory changes.
        let t = engine.terms.get_mut("T1").unwrap();
        (t.online, t.idle, t.reconciled) = (Some(true), true, true);
        engine.pump("T1").await;
        let t = &engine.terms["T1"];
        assert!(t.replan_at.is_some() && t.retry_at.is_none());
        engine.reload().unwrap();
        assert!(
            engine.terms["T1"].replan_at.is_none(),
            "a change plans at once"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        engine.plan("T1");
        let t = &engine.terms["T1"];
        assert_eq!(t.work.as_ref().unwrap().upserts, ["E1"], "due now");
        assert_eq!(t.deferred_until_ms, None);
    }

    #[tokio::test]
    async fn a_batch_refused_whole_is_halved_until_the_person_it_was_refused_for_is_found() {
        let (mut engine, _out_rx, _dir) = engine_for_t1(|_| {}, |_| {});
        let answer = |message_id: &str, code: Option<u32>| Ack {
            code,
            ..t1_answer(
                message_id,
                "EditPersonsNew",
                AckBody::Edit {
                    ok: vec![],
                    failed: vec![],
                },
            )
        };
        let sent = |engine: &mut Engine, message_id: &str, items: &[(&str, &str)], code| {
            engine.terms.get_mut("T1").unwrap().inflight =
                Some(request(message_id, Op::Edit, items));
            engine.on_ack(answer(message_id, code));
        };
        let refusals = |engine: &Engine| {
            directory::failures(&engine.conn, Some("T1"))
                .unwrap()
                .into_iter()
                .map(|f| (f.employee_id, f.errcode))
                .collect::<Vec<_>>()
        };
        let four = [("E1", "c1"), ("E2", "c2"), ("E3", "c3"), ("E4", "c4")];
        sent(&mut engine, "m1", &four, Some(400));
        assert_eq!(engine.batch_size("T1"), 2, "halved");
        // Alone, E2 and then its neighbour E3 are refused: set aside, not blamed yet.
        sent(&mut engine, "m2", &[("E2", "c2")], Some(400));
        sent(&mut engine, "m3", &[("E3", "c3")], Some(400));
        assert!(refusals(&engine).is_empty());
        // The next batch, without them, is taken: they were the ones.
        sent(&mut engine, "m4", &[("E4", "c4")], Some(200));
        assert_eq!(
            refusals(&engine),
            [("E2".to_owned(), 400), ("E3".to_owned(), 400)]
        );
        assert_eq!(engine.terms["T1"].batch_cap, None, "halving lifted");

        // Five persons refused alone in a row: a person the terminal holds is to be sent again
        // unchanged to tell whether it refuses them or everything; it holds nobody here, so
        // the ones set aside are not blamed.
        for n in 5..10 {
            let e = format!("E{n}");
            sent(&mut engine, &format!("m{n}"), &[(&e, "c")], Some(403));
        }
        let t = engine.terms.get_mut("T1").unwrap();
        assert!(t.probe_due && t.suspects.len() == MAX_SUSPECTS);
        (t.online, t.idle, t.reconciled, t.retry_at) = (Some(true), true, true, None);
        assert_eq!(refusals(&engine).len(), 2);
        engine.pump("T1").await;
        // (Planning also forgot E2's and E3's refusals: they are in no directory here.)
        assert!(
            refusals(&engine)
                .iter()
                .all(|(e, _)| !["E5", "E6", "E7", "E8", "E9"].contains(&e.as_str())),
            "nobody more blamed"
        );
        assert!(engine.terms["T1"].suspects.is_empty() && !engine.terms["T1"].probe_due);
        // Busy (410), or a "fail" with no code, is nobody's fault: no halving.
        sent(&mut engine, "m16", &four, Some(410));
        assert_eq!(engine.terms["T1"].batch_cap, None);
        engine.terms.get_mut("T1").unwrap().inflight = Some(request("m7", Op::Edit, &four));
        engine.on_ack(Ack {
            refused: true,
            ..answer("m7", None)
        });
        assert_eq!(engine.terms["T1"].batch_cap, None);
    }

    #[tokio::test]
    async fn a_terminal_without_query_progress_is_synced_all_the_same() {
        let (mut engine, mut out_rx, _dir) = engine_for_t1(|_| {}, |_| {});
        engine.terms.get_mut("T1").unwrap().online = Some(true);
        let mut asked = Vec::new();
        for n in 0..4 {
            engine.pump("T1").await;
            let sent = out_rx.try_recv().expect("a request");
            let v: serde_json::Value = serde_json::from_slice(&sent.payload).unwrap();
            let op = v["operator"].as_str().unwrap().to_owned();
            let message_id = v["messageId"].as_str().unwrap().to_owned();
            asked.push(op.clone());
            // The firmware refuses QueryProgress (it has none).
            engine.on_ack(Ack {
                terminal: "T1".into(),
                message_id,
                operator: op,
                code: Some(if n < 3 { 404 } else { 200 }),
                detail: None,
                refused: false,
                body: AckBody::Other,
            });
            engine.terms.get_mut("T1").unwrap().retry_at = None;
        }
        assert_eq!(
            asked,
            [
                "QueryProgress",
                "QueryProgress",
                "QueryProgress",
                "QueryPerson"
            ],
            "three refusals, then on without it"
        );
        assert_eq!(
            engine.terms["T1"].meta.last_error, None,
            "answered, the terminal's row no longer shows the refusals"
        );
    }

    #[tokio::test]
    async fn what_is_known_anew_ends_a_wait_and_a_full_storage_outlasts_other_answers() {
        let (mut engine, _out_rx, _dir) = engine_for_t1(|_| {}, |_| {});
        let answer = t1_answer;
        let later = || Some(Instant::now() + Duration::from_secs(3600));
        // Waiting for a person's next attempt: a QueryPerson answer plans at once.
        engine.terms.get_mut("T1").unwrap().replan_at = later();
        engine.terms.get_mut("T1").unwrap().inflight = Some(request("q1", Op::Query, &[]));
        engine.on_ack(answer(
            "q1",
            "QueryPerson",
            AckBody::Query { custom_ids: vec![] },
        ));
        assert!(engine.terms["T1"].replan_at.is_none());
        // So does the terminal's Online (restarted), which also forgets the QueryProgress
        // silences counted before.
        let t = engine.terms.get_mut("T1").unwrap();
        (t.replan_at, t.progress_unanswered) = (later(), PROGRESS_TRIES);
        engine
            .on_presence(Presence::Online {
                terminal: "T1".into(),
                name: None,
                ip: None,
                firmware: None,
                message_id: None,
            })
            .await;
        let t = &engine.terms["T1"];
        assert!(t.replan_at.is_none() && t.progress_unanswered == 0);
        // And Retry.
        engine.terms.get_mut("T1").unwrap().replan_at = later();
        engine.on_control(Control::Retry(None));
        assert!(engine.terms["T1"].replan_at.is_none());
        // A full storage stays on the row through answers that store nobody.
        engine.terms.get_mut("T1").unwrap().meta.last_error = Some(STORAGE_FULL.into());
        engine.terms.get_mut("T1").unwrap().inflight = Some(request("q2", Op::Query, &[]));
        engine.on_ack(answer(
            "q2",
            "QueryPerson",
            AckBody::Query { custom_ids: vec![] },
        ));
        assert_eq!(
            engine.terms["T1"].meta.last_error.as_deref(),
            Some(STORAGE_FULL)
        );
    }

    #[tokio::test]
    async fn a_link_that_takes_nothing_never_stops_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        let ids = ["t1", "t2", "t3"];
        for id in ids {
            let t = Terminal {
                terminal_id: id.into(),
                ..Terminal::default()
            };
            directory::save_terminal(&conn, &t).unwrap();
        }
        let photos = PhotoServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
        // A link queue of one that nobody drains: the broker is away. Each terminal is asked
        // for its progress at start; the second request finds the queue full.
        let (out_tx, _out_rx) = mpsc::channel(1);
        let cfg = SyncConfig::new("mqtt/face", chrono_tz::UTC);
        let engine = Engine::new(cfg, conn, photos, out_tx, &[]).unwrap();
        let (_in_tx, in_rx) = crate::link::inbound_queue(1, 1024);
        let (acker, _acks) = crate::link::ack_channel();
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        let (progress_tx, mut progress) = watch::channel(Vec::new());
        let io = EngineIo {
            inbound: in_rx,
            acker,
            control: ctl_rx,
            progress: progress_tx,
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(engine.run(io, cancel.clone()));
        // The supervisor's controls are still taken (more than their queue holds), and the
        // progress still moves.
        let controls = async {
            for _ in 0..20 {
                ctl_tx.send(Control::Retry(None)).await.unwrap();
            }
            ctl_tx.send(Control::Cancel("t2".into())).await.unwrap();
            progress
                .wait_for(|p| {
                    p.iter()
                        .any(|t| t.terminal_id == "t2" && t.state == "cancelled")
                })
                .await
                .map(|_| ())
        };
        tokio::time::timeout(Duration::from_secs(10), controls)
            .await
            .expect("the engine stopped taking controls while the link's queue was full")
            .unwrap();
        cancel.cancel();
        task.await.unwrap();
    }
}
