//! The writer thread: the only code that writes live data to the history file.
//!
//! Records arrive over a bounded channel; the thread commits them in batches, one transaction per
//! batch with cached prepared statements. A batch closes when it holds [`MAX_BATCH`] records or
//! [`LINGER`] after its first record, whichever comes first, so a quiet fleet is written within
//! tens of milliseconds and a busy one in large, cheap transactions. When every sender is gone
//! the thread commits what it holds and ends; [`Writer::finish`] waits for that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use watchfloor_protocol::{DeviceEvent, DeviceId, Fix, Status};

use super::quarantine::QuarantineEntry;
use super::{events, positions, quarantine, statuses};

/// Most records committed in one transaction.
pub const MAX_BATCH: usize = 2000;
/// How long a batch waits for company after its first record.
pub const LINGER: Duration = Duration::from_millis(50);

/// One row to store.
#[derive(Debug, Clone)]
pub enum Record {
    Position {
        device: DeviceId,
        fix: Fix,
        received_ms: i64,
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
}

/// Counters the writer keeps, readable from any thread.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records committed.
    pub committed: AtomicU64,
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Duration of the last commit, microseconds.
    pub last_commit_us: AtomicU64,
    /// Records that could not be stored after retries (each is also logged).
    pub failed: AtomicU64,
}

/// Handle to the writer thread.
pub struct Writer {
    tx: flume::Sender<Record>,
    thread: JoinHandle<()>,
    stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread on `conn`, with a queue of `capacity` records.
    pub fn spawn(conn: Connection, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = flume::bounded(capacity);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || run(conn, rx, &thread_stats))?;
        Ok(Self { tx, thread, stats })
    }

    /// A sender for records. The thread ends once all senders (and this handle) are dropped.
    pub fn sender(&self) -> flume::Sender<Record> {
        self.tx.clone()
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Records waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Drops this handle's sender and waits until everything queued is committed. Other senders
    /// must be dropped first, or this waits for them.
    pub fn finish(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("history writer thread panicked; its last batch may be missing");
        }
    }
}

fn run(mut conn: Connection, rx: flume::Receiver<Record>, stats: &WriterStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        let deadline = Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match rx.recv_deadline(deadline) {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        commit_with_retry(&mut conn, &batch, stats);
        batch.clear();
    }
}

fn commit_with_retry(conn: &mut Connection, batch: &[Record], stats: &WriterStats) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let started = Instant::now();
        match commit(conn, batch) {
            Ok(()) => {
                stats
                    .committed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats
                    .last_commit_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, rows = batch.len(), "history commit failed; retrying");
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
            Err(e) => {
                stats
                    .failed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::error!(error = %e, rows = batch.len(), "history commit failed {ATTEMPTS} times; these rows are not stored");
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Record]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut pos = tx.prepare_cached(positions::INSERT)?;
        let mut sta = tx.prepare_cached(statuses::INSERT)?;
        let mut evt = tx.prepare_cached(events::INSERT)?;
        let mut qua = tx.prepare_cached(quarantine::INSERT)?;
        for record in batch {
            match record {
                Record::Position {
                    device,
                    fix,
                    received_ms,
                } => positions::insert(&mut pos, device, fix, *received_ms)?,
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
                Record::Quarantine(entry) => quarantine::insert(&mut qua, entry)?,
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_sent_before_finish_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let writer = Writer::spawn(crate::store::open(&path).unwrap(), 16).unwrap();
        let tx = writer.sender();
        let dev = DeviceId::parse("v").unwrap();
        for ts in 0..5000 {
            let fix = Fix {
                ts_ms: ts,
                lat: 1.0,
                lon: 2.0,
                alt: None,
                heading: None,
                speed: None,
                accuracy: None,
            };
            tx.send(Record::Position {
                device: dev.clone(),
                fix,
                received_ms: ts,
            })
            .unwrap();
        }
        drop(tx);
        let stats = writer.stats();
        writer.finish();
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            n, 5000,
            "finish() returns only after the last batch is committed"
        );
        assert_eq!(stats.committed.load(Ordering::Relaxed), 5000);
        assert!(
            stats.batches.load(Ordering::Relaxed) >= 3,
            "5000 rows need at least 3 batches of {MAX_BATCH}"
        );
    }
}
