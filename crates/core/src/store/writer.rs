//! The writer thread: the only code that writes live data to the history file.
//!
//! Records arrive over a bounded channel; the thread commits them in batches, one transaction per
//! batch with cached prepared statements. A batch closes when it holds [`MAX_BATCH`] records,
//! [`LINGER`] after its first record, or at once when it carries acknowledgements and nothing
//! else is waiting: a broker lets a client hold only a few QoS 1 messages unacknowledged
//! (Mosquitto: 20), so holding acks for the full linger would cap QoS 1 at a few hundred
//! messages a second.
//!
//! **Nothing acknowledged is ever missing.** A record that came with an [`AckToken`] is handed to
//! the `on_commit` callback only after its transaction has committed, in arrival order. A batch
//! that cannot be committed (disk full, database locked by another process) is retried, with a
//! growing pause, until it can; meanwhile the queue fills, ingest waits, QoS 1 messages wait
//! unacknowledged at the broker, and [`WriterStats`] carries the alarm (`stalled_since_ms`,
//! `last_error`). Only when shutting down does the writer give up on a failing batch: its QoS 1
//! messages were never acknowledged, so the broker delivers them again next time.
//!
//! **Power loss.** Batches that carry acknowledgements commit with `synchronous = FULL` (the WAL
//! is fsynced before the commit returns, so an acknowledged message survives a power cut); batches
//! of QoS 0 positions alone commit with `NORMAL` (safe against a crash of Watchfloor, while a
//! power cut may lose the last second of positions, which the devices do not resend anyway).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use watchfloor_protocol::face::AccessRecord;
use watchfloor_protocol::{DeviceEvent, DeviceId, Fix, Status};

use super::quarantine::QuarantineEntry;
use super::retention::{self, Retention};
use super::{attendance, events, incidents, positions, quarantine, statuses};
use crate::clock::now_ms;
use crate::incidents::{AuditEntry, Incident};
use crate::link::{AckToken, Outbound};

/// Most records committed in one transaction. Large on purpose: the positions index is keyed by
/// device, so a batch from a busy fleet touches one index page per device, and each commit
/// writes every page it touched to the WAL. At 2,000 rows per batch and 1,000 devices that was
/// one 4 KiB page written per row (40k rows/s here); at 10,000 it is 112k rows/s
/// (docs/BENCHMARKS.md). A full batch is about 1.5 MiB of records.
pub const MAX_BATCH: usize = 10_000;
/// How long a batch waits for company after its first record.
pub const LINGER: Duration = Duration::from_millis(50);
/// How often retention pruning runs when it found little to do.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The pause between chunks while there is a backlog to prune: ingest batches run in between.
const PRUNE_AGAIN: Duration = Duration::from_millis(200);
/// Longest pause between attempts at a batch that keeps failing.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Most bytes of images (face terminals' snapshots, up to 1 MiB each) in the writer's queue and
/// its batch at once. The queue is bounded by records, 16,384 of them: all images, while the
/// disk is full and terminals re-push unanswered snapshots every few seconds, that was gigabytes.
/// Past it images wait in the outbox, whose own bound then stops ingest.
pub const MAX_QUEUED_IMAGE_BYTES: u64 = 64 * 1024 * 1024;

/// One row to store.
#[derive(Debug, Clone)]
pub enum Record {
    Position {
        device: DeviceId,
        fix: Fix,
        received_ms: i64,
        /// It may be stored already: replayed by the broker from its retained store (at each
        /// connect of the console), or part of a QoS 1 message (an OwnTracks location), which
        /// the broker delivers again when its acknowledgement was lost with a connection.
        /// Stored only if the file does not hold that fix already.
        maybe_stored: bool,
    },
    Status {
        device: DeviceId,
        status: Status,
        received_ms: i64,
    },
    Event {
        device: DeviceId,
        event: DeviceEvent,
        received_ms: i64,
    },
    Quarantine(QuarantineEntry),
    /// A face terminal's access record, for the attendance log.
    Access {
        record: AccessRecord,
        received_ms: i64,
    },
    /// The JPEG kept with a device event (a stranger capture, a block-list match).
    FaceImage {
        device: DeviceId,
        event_id: String,
        jpeg: Vec<u8>,
        received_ms: i64,
    },
    /// An incident's new state (boxed: it is the largest record).
    Incident(Box<Incident>),
    IncidentAudit(AuditEntry),
    /// Stores nothing: carries the acknowledgement of a QoS 1 message that has nothing to
    /// store (a cleared retained incident, one every console has forgotten), so that it is
    /// acknowledged in order with the messages before it.
    Nothing,
}

/// A record and what it is owed once stored: for a QoS 1 message its acknowledgement, for a
/// face terminal's record the PushAck that lets the terminal forget it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub record: Record,
    pub ack: Option<AckToken>,
    pub reply: Option<Outbound>,
}

impl Queued {
    /// The bytes of image this record holds (a face terminal's snapshot), else 0.
    pub fn image_bytes(&self) -> u64 {
        match &self.record {
            Record::FaceImage { jpeg, .. } => jpeg.len() as u64,
            _ => 0,
        }
    }

    pub fn new(record: Record, ack: Option<AckToken>) -> Self {
        Self {
            record,
            ack,
            reply: None,
        }
    }

    fn owed(&self) -> bool {
        self.ack.is_some() || self.reply.is_some()
    }
}

/// What one committed batch owes, in arrival order.
#[derive(Debug, Default)]
pub struct Committed {
    pub acks: Vec<AckToken>,
    pub replies: Vec<Outbound>,
}

/// Called with what each committed batch owes.
pub type OnCommit = Box<dyn FnMut(Committed) + Send>;

/// Counters the writer keeps, readable from any thread.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records committed.
    pub committed: AtomicU64,
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Records in the last committed batch.
    pub last_batch_rows: AtomicU64,
    /// Duration of the last commit, microseconds.
    pub last_commit_us: AtomicU64,
    /// Time spent in commits since start, microseconds.
    pub commit_us_total: AtomicU64,
    /// Rows removed by retention since start.
    pub pruned: AtomicU64,
    /// Refused messages the broker sent again whose first copy was stored already, so not
    /// stored twice (taken off the pipeline's count of quarantined messages).
    pub quarantine_repeats: AtomicU64,
    /// Records given up on at shutdown because their batch kept failing (each is also logged).
    pub failed: AtomicU64,
    /// When the current run of failed commits began (epoch ms), 0 when writing is healthy.
    pub stalled_since_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl WriterStats {
    /// The error of the failing commit while writing is stalled.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// `Some((since_ms, error))` while commits are failing.
    pub fn stall(&self) -> Option<(i64, String)> {
        match self.stalled_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some((since, self.last_error().unwrap_or_default())),
        }
    }

    fn set_stalled(&self, error: String) {
        let _ = self.stalled_since_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error);
        }
    }

    fn clear_stall(&self) -> bool {
        let was = self.stalled_since_ms.swap(0, Ordering::Relaxed);
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
        was != 0
    }
}

/// The sending side of the writer's queue: records, and the bytes of images among them that
/// are not committed yet (sent and in the queue, or in the batch being committed).
#[derive(Clone)]
pub struct WriterQueue {
    tx: flume::Sender<Queued>,
    image_bytes: Arc<AtomicU64>,
}

// The errors hand the record back, as flume's own do: boxing them would cost an allocation on
// every refused send to save a copy nobody makes.
#[allow(clippy::result_large_err)]
impl WriterQueue {
    /// A queue over `tx` whose reader takes `image_bytes` back as it commits.
    pub fn new(tx: flume::Sender<Queued>, image_bytes: Arc<AtomicU64>) -> Self {
        Self { tx, image_bytes }
    }

    pub fn try_send(&self, q: Queued) -> Result<(), flume::TrySendError<Queued>> {
        let bytes = q.image_bytes();
        self.image_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.tx.try_send(q).inspect_err(|_| {
            self.image_bytes.fetch_sub(bytes, Ordering::Relaxed);
        })
    }

    pub async fn send_async(&self, q: Queued) -> Result<(), flume::SendError<Queued>> {
        let bytes = q.image_bytes();
        self.image_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.tx.send_async(q).await.inspect_err(|_| {
            self.image_bytes.fetch_sub(bytes, Ordering::Relaxed);
        })
    }

    pub fn send(&self, q: Queued) -> Result<(), flume::SendError<Queued>> {
        let bytes = q.image_bytes();
        self.image_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.tx.send(q).inspect_err(|_| {
            self.image_bytes.fetch_sub(bytes, Ordering::Relaxed);
        })
    }

    /// Records in the queue.
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }

    /// Bytes of images sent and not yet committed.
    pub fn image_bytes(&self) -> u64 {
        self.image_bytes.load(Ordering::Relaxed)
    }

    /// Whether `q` fits the image budget now ([`MAX_QUEUED_IMAGE_BYTES`]; a record with no image
    /// always does, and so does one image alone, whatever its size).
    pub fn has_room_for_image_of(&self, q: &Queued) -> bool {
        let bytes = q.image_bytes();
        let queued = self.image_bytes();
        bytes == 0 || queued == 0 || queued + bytes <= MAX_QUEUED_IMAGE_BYTES
    }
}

/// Handle to the writer thread.
pub struct Writer {
    tx: WriterQueue,
    thread: JoinHandle<()>,
    stats: Arc<WriterStats>,
    closing: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer thread on `conn`, with a queue of `capacity` records.
    pub fn spawn(
        conn: Connection,
        capacity: usize,
        on_commit: OnCommit,
        retention: Retention,
    ) -> std::io::Result<Self> {
        let (tx, rx) = flume::bounded(capacity);
        let image_bytes = Arc::new(AtomicU64::new(0));
        let tx = WriterQueue::new(tx, Arc::clone(&image_bytes));
        let stats = Arc::new(WriterStats::default());
        let closing = Arc::new(AtomicBool::new(false));
        let thread = {
            let stats = Arc::clone(&stats);
            let closing = Arc::clone(&closing);
            std::thread::Builder::new()
                .name("history-writer".into())
                .spawn(move || {
                    BatchWriter {
                        conn,
                        stats,
                        closing,
                        on_commit,
                        full_sync: false,
                        retention,
                        next_prune: Instant::now(),
                        prune_cursor: retention::Cursor::default(),
                        prune_clock: retention::PruneClock::default(),
                        image_bytes,
                        gave_up: false,
                    }
                    .run(rx)
                })?
        };
        Ok(Self {
            tx,
            thread,
            stats,
            closing,
        })
    }

    /// A sender for records. The thread ends once all senders (and this handle) are dropped.
    pub fn sender(&self) -> WriterQueue {
        self.tx.clone()
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// From now on a batch that keeps failing is given up after one more attempt (its QoS 1
    /// messages unacknowledged, so the broker delivers them again). Set when shutdown begins:
    /// the stages in front of the writer can only finish once it takes records again, and with
    /// a full disk it never would.
    pub fn begin_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Drops this handle's sender and waits until everything queued is committed (or, for a
    /// batch that keeps failing, given up on after one more attempt). Other senders must be
    /// dropped first, or this waits for them.
    pub fn finish(self) {
        self.closing.store(true, Ordering::Relaxed);
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("history writer thread panicked; its last batch may be missing");
        }
    }
}

struct BatchWriter {
    conn: Connection,
    stats: Arc<WriterStats>,
    closing: Arc<AtomicBool>,
    on_commit: OnCommit,
    /// The connection's current `synchronous` setting is FULL.
    full_sync: bool,
    retention: Retention,
    /// When the next prune chunk is due.
    next_prune: Instant,
    /// Where the pass of age pruning under way has got to.
    prune_cursor: retention::Cursor,
    /// The time age pruning goes by (not a clock stepped forward).
    prune_clock: retention::PruneClock,
    /// Bytes of images sent and not committed ([`WriterQueue`]): taken back after each batch.
    image_bytes: Arc<AtomicU64>,
    /// A batch was given up while closing: no acknowledgement goes out after it. One message's
    /// records can straddle two batches (its acknowledgement rides on its last record), so a
    /// later batch that commits may owe the broker the acknowledgement of a message whose other
    /// rows were in the batch given up.
    gave_up: bool,
}

impl BatchWriter {
    fn run(mut self, rx: flume::Receiver<Queued>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            // Idle, the thread still wakes to prune when retention is on.
            let first = if self.retention.is_off() {
                rx.recv().map_err(|_| flume::RecvTimeoutError::Disconnected)
            } else {
                rx.recv_deadline(self.next_prune)
            };
            let first = match first {
                Ok(q) => q,
                Err(flume::RecvTimeoutError::Timeout) => {
                    self.prune();
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => break,
            };
            let mut owed = usize::from(first.owed());
            batch.push(first);
            let deadline = Instant::now() + LINGER;
            while batch.len() < MAX_BATCH {
                if owed > 0 && rx.is_empty() {
                    break; // acks are waiting and nothing else is: commit now
                }
                match rx.recv_deadline(deadline) {
                    Ok(q) => {
                        owed += usize::from(q.owed());
                        batch.push(q);
                    }
                    Err(_) => break,
                }
            }
            self.commit_until_done(&batch);
            let images: u64 = batch.iter().map(Queued::image_bytes).sum();
            self.image_bytes.fetch_sub(images, Ordering::Relaxed);
            batch.clear();
            if !self.retention.is_off() && Instant::now() >= self.next_prune {
                self.prune();
            }
        }
    }

    /// One chunk of retention pruning (a short transaction of its own); the next is due soon
    /// when this one was full, else after [`PRUNE_EVERY`].
    fn prune(&mut self) {
        let now = self.prune_clock.now(now_ms(), crate::clock::boot_ms());
        let pruned = self
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .and_then(|()| {
                retention::prune_chunk_from(
                    &self.conn,
                    &self.retention,
                    now,
                    &mut self.prune_cursor,
                )
            })
            .and_then(|n| self.conn.execute_batch("COMMIT").map(|()| n));
        let wait = match pruned {
            Ok(pruned) => {
                self.stats.pruned.fetch_add(pruned.rows, Ordering::Relaxed);
                if pruned.rows > 0 {
                    tracing::debug!(rows = pruned.rows, "pruned old history rows");
                }
                if pruned.more {
                    PRUNE_AGAIN
                } else {
                    PRUNE_EVERY
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                // What the chunk passed over was rolled back with it: the pass starts again.
                self.prune_cursor = retention::Cursor::default();
                tracing::warn!(error = %e, "pruning old history failed; will try again");
                PRUNE_EVERY
            }
        };
        self.next_prune = Instant::now() + wait;
    }

    /// Commits `batch`, retrying for as long as it takes (see the module docs).
    fn commit_until_done(&mut self, batch: &[Queued]) {
        let mut pause = Duration::from_millis(100);
        for attempt in 1u64.. {
            let started = Instant::now();
            match self.commit(batch) {
                Ok(repeats) => {
                    let s = &self.stats;
                    s.committed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    s.quarantine_repeats.fetch_add(repeats, Ordering::Relaxed);
                    s.batches.fetch_add(1, Ordering::Relaxed);
                    s.last_batch_rows
                        .store(batch.len() as u64, Ordering::Relaxed);
                    let us = started.elapsed().as_micros() as u64;
                    s.last_commit_us.store(us, Ordering::Relaxed);
                    s.commit_us_total.fetch_add(us, Ordering::Relaxed);
                    if s.clear_stall() {
                        tracing::warn!(attempts = attempt, "history writing resumed");
                    }
                    let committed = Committed {
                        acks: batch.iter().filter_map(|q| q.ack).collect(),
                        replies: batch.iter().filter_map(|q| q.reply.clone()).collect(),
                    };
                    let owed = !committed.acks.is_empty() || !committed.replies.is_empty();
                    if owed && self.gave_up {
                        tracing::warn!(acks = committed.acks.len(),
                            "committed after a batch was given up: its acknowledgements are withheld, and the broker will deliver those messages again");
                    } else if owed {
                        (self.on_commit)(committed);
                    }
                    return;
                }
                Err(e) => {
                    let words = e.to_string();
                    if attempt == 1 {
                        tracing::error!(error = %words, rows = batch.len(),
                            "history writing paused: commit failed; QoS 1 acknowledgements held until it succeeds");
                    }
                    self.stats.set_stalled(words);
                    if self.closing.load(Ordering::Relaxed) && attempt >= 2 {
                        let unacked = batch.iter().filter(|q| q.ack.is_some()).count();
                        self.stats
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::error!(rows = batch.len(), unacked,
                            "shutting down with a batch that cannot be committed: its QoS 1 messages were not acknowledged and the broker will deliver them again");
                        self.gave_up = true;
                        return;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        }
    }

    /// Commits `batch` in one transaction; the redelivered refused messages it did not store
    /// again.
    fn commit(&mut self, batch: &[Queued]) -> rusqlite::Result<u64> {
        // What is owed an answer (a QoS 1 acknowledgement, or a terminal's PushAck, which lets it
        // delete the record) is synced to disk before the answer goes: a power cut after it
        // must not lose the row.
        let want_full = batch.iter().any(Queued::owed);
        if want_full != self.full_sync {
            let mode = if want_full { "FULL" } else { "NORMAL" };
            self.conn.pragma_update(None, "synchronous", mode)?;
            self.full_sync = want_full;
        }
        let tx = self.conn.transaction()?;
        let mut quarantine_repeats = 0;
        {
            let mut pos = tx.prepare_cached(positions::INSERT)?;
            let mut pos_unless_stored = tx.prepare_cached(positions::INSERT_UNLESS_STORED)?;
            let mut sta = tx.prepare_cached(statuses::INSERT)?;
            let mut evt = tx.prepare_cached(events::INSERT)?;
            let mut inc = tx.prepare_cached(incidents::UPSERT)?;
            let mut aud = tx.prepare_cached(incidents::INSERT_AUDIT)?;
            let mut acc = tx.prepare_cached(attendance::INSERT)?;
            let mut img = tx.prepare_cached(attendance::INSERT_IMAGE)?;
            for q in batch {
                match &q.record {
                    Record::Position {
                        device,
                        fix,
                        received_ms,
                        maybe_stored,
                    } => {
                        let stmt = if *maybe_stored {
                            &mut pos_unless_stored
                        } else {
                            &mut pos
                        };
                        positions::insert(stmt, device, fix, *received_ms)?;
                    }
                    Record::Status {
                        device,
                        status,
                        received_ms,
                    } => statuses::insert(&mut sta, device, status, *received_ms)?,
                    Record::Event {
                        device,
                        event,
                        received_ms,
                    } => events::insert(&mut evt, device, event, *received_ms)?,
                    Record::Quarantine(entry) => {
                        if !quarantine::store(&tx, entry)? {
                            quarantine_repeats += 1;
                        }
                    }
                    Record::Access {
                        record,
                        received_ms,
                    } => attendance::insert(&mut acc, record, *received_ms)?,
                    Record::FaceImage {
                        device,
                        event_id,
                        jpeg,
                        received_ms,
                    } => attendance::insert_image(&mut img, device, event_id, jpeg, *received_ms)?,
                    Record::Incident(i) => incidents::upsert(&mut inc, i)?,
                    Record::IncidentAudit(a) => incidents::insert_audit(&mut aud, a)?,
                    Record::Nothing => {}
                }
            }
        }
        tx.commit()?;
        Ok(quarantine_repeats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn position(ts: i64) -> Record {
        Record::Position {
            device: DeviceId::parse("v").unwrap(),
            fix: Fix {
                ts_ms: ts,
                lat: 1.0,
                lon: 2.0,
                alt: None,
                heading: None,
                speed: None,
                accuracy: None,
            },
            received_ms: ts,
            maybe_stored: false,
        }
    }

    fn event(n: u16) -> Record {
        Record::Event {
            device: DeviceId::parse("c").unwrap(),
            event: DeviceEvent {
                event_id: format!("e{n}"),
                ts_ms: i64::from(n),
                event_type: "button".into(),
                severity: watchfloor_protocol::Severity::Info,
                message: None,
                position: None,
                stamped_on_arrival: false,
            },
            received_ms: 0,
        }
    }

    /// A writer on `conn` driven by the test itself (no thread, no queue).
    fn batch_writer(conn: Connection, on_commit: OnCommit, closing: bool) -> BatchWriter {
        BatchWriter {
            conn,
            stats: Arc::default(),
            closing: Arc::new(AtomicBool::new(closing)),
            on_commit,
            full_sync: false,
            retention: Retention::default(),
            next_prune: Instant::now(),
            prune_cursor: retention::Cursor::default(),
            prune_clock: retention::PruneClock::default(),
            image_bytes: Arc::default(),
            gave_up: false,
        }
    }

    fn collecting_acks() -> (OnCommit, mpsc::Receiver<Committed>) {
        let (tx, rx) = mpsc::channel();
        (
            Box::new(move |committed| {
                let _ = tx.send(committed);
            }),
            rx,
        )
    }

    fn count(path: &std::path::Path, table: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn everything_sent_before_finish_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let (on_commit, _acks) = collecting_acks();
        let writer = Writer::spawn(
            crate::store::open(&path).unwrap(),
            16,
            on_commit,
            Retention::default(),
        )
        .unwrap();
        let tx = writer.sender();
        let rows = 2 * MAX_BATCH as i64 + 500;
        for ts in 0..rows {
            let record = position(ts);
            tx.send(Queued::new(record, None)).unwrap();
        }
        drop(tx);
        let stats = writer.stats();
        writer.finish();
        assert_eq!(
            count(&path, "positions"),
            rows,
            "finish() returns only after the last batch is committed"
        );
        assert_eq!(stats.committed.load(Ordering::Relaxed), rows as u64);
        assert!(
            stats.batches.load(Ordering::Relaxed) >= 3,
            "{rows} rows need at least 3 batches of {MAX_BATCH}"
        );
    }

    #[test]
    fn acks_follow_the_commit_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let (on_commit, acks) = collecting_acks();
        let writer = Writer::spawn(
            crate::store::open(&path).unwrap(),
            64,
            on_commit,
            Retention::default(),
        )
        .unwrap();
        let tx = writer.sender();
        for n in 1..=100u16 {
            let ack = Some(AckToken { epoch: 1, pkid: n });
            tx.send(Queued::new(event(n), ack)).unwrap();
            tx.send(Queued::new(position(i64::from(n)), None)).unwrap();
        }
        drop(tx);
        writer.finish();
        let got: Vec<u16> = acks
            .try_iter()
            .flat_map(|c| c.acks)
            .map(|a| a.pkid)
            .collect();
        assert_eq!(got, (1..=100).collect::<Vec<_>>());
        assert_eq!(count(&path, "events"), 100);
    }

    #[test]
    fn a_terminal_records_push_ack_is_released_only_after_its_row_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let (on_commit, committed) = collecting_acks();
        let conn = crate::store::open(&path).unwrap();
        let writer = Writer::spawn(conn, 64, on_commit, Retention::default()).unwrap();
        let record = AccessRecord {
            terminal: "T1".into(),
            record_id: "7".into(),
            key: "7@20261123T080000".into(),
            ts_ms: 1,
            local_time: "2026-11-23 08:00:00".into(),
            person_id: Some("E1".into()),
            person_name: None,
            verify_status: 1,
            person_type: 0,
            similarity: None,
            backlog: false,
        };
        let reply = Outbound {
            topic: "mqtt/face/T1".into(),
            payload: b"PushAck 7".to_vec(),
            retain: false,
        };
        // Twice, as a terminal re-pushes: one row, both answered.
        for _ in 0..2 {
            let access = Record::Access {
                record: record.clone(),
                received_ms: 1,
            };
            let mut q = Queued::new(access, None);
            q.reply = Some(reply.clone());
            writer.sender().send(q).unwrap();
        }
        let first = committed
            .recv_timeout(Duration::from_secs(10))
            .expect("the reply follows the commit");
        assert_eq!(
            count(&path, "attendance"),
            1,
            "the row is there when its reply is"
        );
        writer.finish();
        let replies: Vec<Outbound> = std::iter::once(first)
            .chain(committed.try_iter())
            .flat_map(|c| c.replies)
            .collect();
        assert_eq!(replies, vec![reply.clone(), reply]);
    }

    #[test]
    fn image_bytes_are_given_back_as_their_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (on_commit, _committed) = collecting_acks();
        let conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        let writer = Writer::spawn(conn, 64, on_commit, Retention::default()).unwrap();
        let queue = writer.sender();
        for i in 0..3 {
            let image = Record::FaceImage {
                device: DeviceId::parse("t1").unwrap(),
                event_id: format!("snap-{i}"),
                jpeg: vec![0; 1000],
                received_ms: 1,
            };
            queue.send(Queued::new(image, None)).unwrap();
        }
        assert!(queue.image_bytes() <= 3000);
        let stats = writer.stats();
        let deadline = Instant::now() + Duration::from_secs(10);
        while queue.image_bytes() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            queue.image_bytes(),
            0,
            "every committed image's bytes given back"
        );
        assert_eq!(stats.committed.load(Ordering::Relaxed), 3);
        drop(queue);
        writer.finish();
    }

    /// A test-driven writer on a history file of its own (kept while the folder lives).
    fn writer_on_a_file() -> (tempfile::TempDir, BatchWriter) {
        let dir = tempfile::tempdir().unwrap();
        let (on_commit, _committed) = collecting_acks();
        let conn = crate::store::open(&dir.path().join("h.sqlite")).unwrap();
        (dir, batch_writer(conn, on_commit, false))
    }

    #[test]
    fn a_batch_owed_only_a_push_ack_is_synced_to_disk() {
        let (_dir, mut writer) = writer_on_a_file();
        let synchronous = |w: &BatchWriter| -> i64 {
            w.conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        let quarantined = || {
            Record::Quarantine(crate::store::quarantine::QuarantineEntry::new(
                1,
                "mqtt/face/T1/Rec",
                b"x",
                "test",
                "why".into(),
            ))
        };
        let mut owed = Queued::new(quarantined(), None);
        owed.reply = Some(Outbound {
            topic: "mqtt/face/T1".into(),
            payload: b"PushAck 7".to_vec(),
            retain: false,
        });
        writer.commit(&[owed]).unwrap();
        assert_eq!(synchronous(&writer), 2, "FULL before a PushAck");
        writer.commit(&[Queued::new(quarantined(), None)]).unwrap();
        assert_eq!(synchronous(&writer), 1, "NORMAL when nothing is owed");
    }

    #[test]
    fn a_refused_message_sent_again_is_counted_as_a_repeat_once_committed() {
        let (_dir, mut writer) = writer_on_a_file();
        let refused = |payload: &[u8], redelivered: bool| {
            let mut entry = crate::store::quarantine::QuarantineEntry::new(
                1,
                "devices/x/status",
                payload,
                "malformed",
                "bad".into(),
            );
            entry.redelivered = redelivered;
            Queued::new(Record::Quarantine(entry), None)
        };
        writer.commit_until_done(&[refused(b"{bad", false)]);
        // The broker sends it again, beside a redelivery whose first copy was never stored.
        writer.commit_until_done(&[refused(b"{bad", true), refused(b"{worse", true)]);
        let stats = &writer.stats;
        assert_eq!(stats.quarantine_repeats.load(Ordering::Relaxed), 1);
        assert_eq!(stats.committed.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_locked_database_pauses_acks_raises_the_alarm_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let conn = crate::store::open(&path).unwrap();
        conn.busy_timeout(Duration::from_millis(50)).unwrap();
        let (on_commit, acks) = collecting_acks();
        let writer = Writer::spawn(conn, 64, on_commit, Retention::default()).unwrap();
        let stats = writer.stats();

        // Another process takes the write lock and keeps it.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let tx = writer.sender();
        for n in 1..=5u16 {
            let ack = Some(AckToken { epoch: 1, pkid: n });
            tx.send(Queued::new(event(n), ack)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.stall().is_none() {
            assert!(
                Instant::now() < deadline,
                "no alarm while the database is locked"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stats.last_error().unwrap().contains("locked"));
        assert!(
            acks.recv_timeout(Duration::from_millis(500)).is_err(),
            "nothing may be acknowledged before it is committed"
        );

        blocker.execute_batch("ROLLBACK").unwrap();
        let first = acks
            .recv_timeout(Duration::from_secs(10))
            .expect("acks flow once the lock is gone");
        let mut got: Vec<u16> = first.acks.iter().map(|a| a.pkid).collect();
        drop(tx);
        writer.finish();
        got.extend(acks.try_iter().flat_map(|c| c.acks).map(|a| a.pkid));
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(count(&path, "events"), 5);
        assert!(stats.stall().is_none(), "the alarm clears after a commit");
    }

    #[test]
    fn no_acknowledgement_goes_out_after_a_batch_given_up_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let conn = crate::store::open(&path).unwrap();
        conn.busy_timeout(Duration::from_millis(20)).unwrap();
        let (on_commit, acks) = collecting_acks();
        let mut writer = batch_writer(conn, on_commit, true);
        // A message's first record cannot be committed while closing (the file is locked):
        // given up after two tries.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        writer.commit_until_done(&[Queued::new(event(1), None)]);
        assert_eq!(count(&path, "events"), 0);
        // Its last record, carrying its acknowledgement, goes in the next batch, which commits.
        blocker.execute_batch("ROLLBACK").unwrap();
        let ack = Some(AckToken { epoch: 1, pkid: 7 });
        writer.commit_until_done(&[Queued::new(event(2), ack)]);
        assert_eq!(count(&path, "events"), 1);
        assert!(
            acks.try_recv().is_err(),
            "the broker must deliver the message again: part of it was never stored"
        );
    }

    #[test]
    fn the_writer_prunes_expired_rows_between_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let conn = crate::store::open(&path).unwrap();
        {
            let mut stmt = conn.prepare(positions::INSERT).unwrap();
            let dev = DeviceId::parse("v").unwrap();
            for ts in 0..100 {
                let Record::Position { fix, .. } = position(ts) else {
                    unreachable!()
                };
                positions::insert(&mut stmt, &dev, &fix, 1_000).unwrap(); // received in 1970
            }
        }
        let (on_commit, _acks) = collecting_acks();
        let keep_a_day = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        };
        let writer = Writer::spawn(conn, 16, on_commit, keep_a_day).unwrap();
        let stats = writer.stats();
        let mut record = position(5);
        if let Record::Position { received_ms, .. } = &mut record {
            *received_ms = now_ms();
        }
        writer.sender().send(Queued::new(record, None)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.pruned.load(Ordering::Relaxed) < 100 {
            assert!(Instant::now() < deadline, "expired rows were not pruned");
            std::thread::sleep(Duration::from_millis(10));
        }
        writer.finish();
        assert_eq!(count(&path, "positions"), 1, "only the fresh row is left");
    }
}
