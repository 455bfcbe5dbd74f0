//! Between the live task and the history writer's bounded queue: the backpressure policy.
//!
//! Records are handed to the writer's queue at once when it has room. When it is full (the
//! writer is behind: a burst, a full disk, a locked file) they wait here, in order, and the live
//! task goes on: the map, stale checks, incident actions and snapshots never wait on the disk.
//! The first thing given up is the history row of a QoS 0 position that waited
//! [`POSITION_WAIT`]: live state already took the fix, the device sends another within seconds,
//! and nothing acknowledges it; the drop is counted (`positions_dropped`). Everything else
//! (statuses, events, quarantine, every record of a message owed an acknowledgement) waits as
//! long as it takes. Once [`Outbox::is_full`], the live task stops reading from the broker: QoS 1
//! then waits at the broker, unacknowledged, and is never dropped. Order is kept, so
//! acknowledgements still go out in the order the messages came.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::writer::{Queued, Record, WriterQueue};
use crate::metrics::Counters;

/// How long a QoS 0 position waits for room in a full writer queue before its history row is
/// given up: long enough to ride out a burst, short enough that the backlog stays small.
pub const POSITION_WAIT: Duration = Duration::from_millis(250);
/// Most records waiting here; beyond it the live task stops reading from the broker.
pub const MAX_WAITING: usize = 4096;
/// Most bytes of images waiting here (a face terminal's snapshot is up to 1 MiB), beside the
/// writer's own budget ([`super::writer::MAX_QUEUED_IMAGE_BYTES`]).
pub const MAX_WAITING_IMAGE_BYTES: u64 = 32 * 1024 * 1024;

/// The writer is gone (shutdown): the record could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub struct WriterGone;

struct Waiting {
    queued: Queued,
    /// A position no acknowledgement depends on: given up after [`POSITION_WAIT`].
    droppable: bool,
    since: Instant,
}

pub struct Outbox {
    store: WriterQueue,
    waiting: VecDeque<Waiting>,
    image_bytes: u64,
}

impl Outbox {
    pub fn new(store: WriterQueue) -> Self {
        Self {
            store,
            waiting: VecDeque::new(),
            image_bytes: 0,
        }
    }

    /// Records not yet written: in the writer's queue, and waiting here for room in it.
    pub fn queued(&self) -> usize {
        self.store.len() + self.waiting.len()
    }

    /// Hands `queued` to the writer, or keeps it waiting in order. `owed`: its message is owed
    /// an acknowledgement (or a terminal's PushAck), so it is never given up.
    pub fn push(&mut self, queued: Queued, owed: bool) -> Result<(), WriterGone> {
        let queued = if self.waiting.is_empty() && self.store.has_room_for_image_of(&queued) {
            match self.store.try_send(queued) {
                Ok(()) => return Ok(()),
                Err(flume::TrySendError::Disconnected(_)) => return Err(WriterGone),
                Err(flume::TrySendError::Full(q)) => q,
            }
        } else {
            queued
        };
        let droppable = !owed && matches!(queued.record, Record::Position { .. });
        self.image_bytes += queued.image_bytes();
        self.waiting.push_back(Waiting {
            queued,
            droppable,
            since: Instant::now(),
        });
        Ok(())
    }

    /// Hands the writer what fits, then gives up the positions that still wait after
    /// [`POSITION_WAIT`].
    pub fn flush(&mut self, counters: &Counters) -> Result<(), WriterGone> {
        while let Some(w) = self.waiting.pop_front() {
            if !self.store.has_room_for_image_of(&w.queued) {
                self.waiting.push_front(w);
                break;
            }
            let bytes = w.queued.image_bytes();
            match self.store.try_send(w.queued) {
                Ok(()) => self.image_bytes -= bytes,
                Err(flume::TrySendError::Full(queued)) => {
                    self.waiting.push_front(Waiting { queued, ..w });
                    break;
                }
                Err(flume::TrySendError::Disconnected(_)) => {
                    self.waiting.clear();
                    self.image_bytes = 0;
                    return Err(WriterGone);
                }
            }
        }
        if self.waiting.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let before = self.waiting.len();
        self.waiting
            .retain(|w| !(w.droppable && now.duration_since(w.since) >= POSITION_WAIT));
        let given_up = (before - self.waiting.len()) as u64;
        if given_up > 0 {
            let total = counters
                .positions_dropped
                .fetch_add(given_up, Ordering::Relaxed)
                + given_up;
            // Logged as the count passes each power of two, not once per row.
            if (total - given_up).leading_zeros() != total.leading_zeros() {
                tracing::warn!(
                    dropped = total,
                    "history writer is behind: dropping QoS 0 position rows (live state keeps them)"
                );
            }
        }
        Ok(())
    }

    /// Whether records wait for room.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether the live task should stop reading from the broker until the writer catches up.
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= MAX_WAITING || self.image_bytes >= MAX_WAITING_IMAGE_BYTES
    }

    /// At shutdown: hands the writer everything still waiting, however long it takes (the
    /// positions too: nothing is being read any more).
    pub async fn drain(&mut self) -> Result<(), WriterGone> {
        while let Some(w) = self.waiting.pop_front() {
            self.store
                .send_async(w.queued)
                .await
                .map_err(|_| WriterGone)?;
        }
        self.image_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::AckToken;
    use watchfloor_protocol::{DeviceId, Fix, Severity};

    fn position() -> Record {
        Record::Position {
            device: DeviceId::parse("v").unwrap(),
            fix: Fix {
                ts_ms: 1,
                lat: 0.0,
                lon: 0.0,
                alt: None,
                heading: None,
                speed: None,
                accuracy: None,
            },
            received_ms: 1,
            maybe_stored: false,
        }
    }

    fn event(id: &str) -> Record {
        Record::Event {
            device: DeviceId::parse("c").unwrap(),
            event: watchfloor_protocol::DeviceEvent {
                event_id: id.into(),
                ts_ms: 1,
                event_type: "x".into(),
                severity: Severity::Info,
                message: None,
                position: None,
                stamped_on_arrival: false,
            },
            received_ms: 1,
        }
    }

    fn event_id(q: &Queued) -> String {
        match &q.record {
            Record::Event { event, .. } => event.event_id.clone(),
            Record::Position { .. } => "position".into(),
            _ => "other".into(),
        }
    }

    #[tokio::test]
    async fn a_full_writer_queue_never_blocks_and_gives_up_only_unowed_positions() {
        let (tx, rx) = flume::bounded(1);
        let counters = Counters::default();
        let mut outbox = Outbox::new(WriterQueue::new(tx, Default::default()));
        let ack = Some(AckToken { epoch: 1, pkid: 1 });
        // Room for one; the rest wait, in order, and pushing never blocks.
        outbox.push(Queued::new(event("e1"), None), false).unwrap();
        outbox.push(Queued::new(position(), None), false).unwrap();
        outbox.push(Queued::new(event("e2"), ack), true).unwrap();
        // The position of an acknowledged OwnTracks location (its ack rides on the status).
        outbox.push(Queued::new(position(), None), true).unwrap();
        outbox.push(Queued::new(event("e3"), None), false).unwrap();
        assert_eq!(rx.len(), 1);
        assert!(!outbox.is_empty() && !outbox.is_full());

        // The writer takes one before the wait is over: the next in line follows, nothing lost.
        assert_eq!(event_id(&rx.recv().unwrap()), "e1");
        outbox.flush(&counters).unwrap();
        assert_eq!(event_id(&rx.recv().unwrap()), "position");
        assert_eq!(counters.positions_dropped.load(Ordering::Relaxed), 0);

        // Still full after POSITION_WAIT: an unowed position is given up (none is left), the
        // owed one stays; the order of the rest is kept.
        outbox.push(Queued::new(position(), None), false).unwrap();
        tokio::time::sleep(POSITION_WAIT).await;
        outbox.flush(&counters).unwrap();
        assert_eq!(counters.positions_dropped.load(Ordering::Relaxed), 1);
        let mut order = Vec::new();
        while !outbox.is_empty() || !rx.is_empty() {
            order.push(event_id(&rx.recv().unwrap()));
            outbox.flush(&counters).unwrap();
        }
        assert_eq!(order, ["e2", "position", "e3"]);
        assert_eq!(counters.positions_dropped.load(Ordering::Relaxed), 1);

        // Too much waiting: the live task is told to stop reading.
        for _ in 0..=MAX_WAITING {
            outbox.push(Queued::new(event("x"), None), false).unwrap();
        }
        assert!(outbox.is_full());
        // The writer gone: said, not hidden.
        drop(rx);
        assert_eq!(outbox.flush(&counters), Err(WriterGone));
        assert_eq!(
            outbox.push(Queued::new(event("late"), None), false),
            Err(WriterGone)
        );
    }

    #[tokio::test]
    async fn at_shutdown_everything_waiting_reaches_the_writer() {
        let (tx, rx) = flume::bounded(1);
        let mut outbox = Outbox::new(WriterQueue::new(tx, Default::default()));
        for id in ["a", "b", "c"] {
            outbox.push(Queued::new(event(id), None), false).unwrap();
        }
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(q) = rx.recv_async().await {
                got.push(event_id(&q));
            }
            got
        });
        outbox.drain().await.unwrap();
        drop(outbox);
        assert_eq!(reader.await.unwrap(), ["a", "b", "c"]);
    }

    fn image(kib: usize) -> Queued {
        Queued::new(
            Record::FaceImage {
                device: DeviceId::parse("t1").unwrap(),
                event_id: "snap-1".into(),
                jpeg: vec![0; kib * 1024],
                received_ms: 1,
            },
            None,
        )
    }

    #[tokio::test]
    async fn images_wait_here_once_the_writers_image_budget_is_spent() {
        use super::super::writer::MAX_QUEUED_IMAGE_BYTES;
        use std::sync::atomic::AtomicU64;
        use std::sync::Arc;
        // A queue with room for many records, and the writer stuck (nothing committed).
        let (tx, rx) = flume::bounded(16_384);
        let committed_bytes = Arc::new(AtomicU64::new(0));
        let mut outbox = Outbox::new(WriterQueue::new(tx, Arc::clone(&committed_bytes)));
        let counters = Counters::default();
        let mut pushed = 0u64;
        while !outbox.is_full() {
            outbox.push(image(512), true).unwrap();
            pushed += 1;
            assert!(pushed < 10_000, "the outbox never said it was full");
        }
        let in_writer = committed_bytes.load(Ordering::Relaxed);
        assert!(in_writer <= MAX_QUEUED_IMAGE_BYTES, "{in_writer}");
        assert_eq!(rx.len() as u64 * 512 * 1024, in_writer);
        // 64 MiB in the writer's queue, 32 MiB here: ingest stops at 96 MiB, not gigabytes.
        assert_eq!(pushed * 512 * 1024, in_writer + MAX_WAITING_IMAGE_BYTES);
        // While the budget is spent, nothing moves although the queue has room...
        outbox.flush(&counters).unwrap();
        assert_eq!(rx.len() as u64 * 512 * 1024, in_writer, "no image moved");
        // ...and once the writer commits its batch and gives the bytes back, the rest follow.
        let batch: Vec<Queued> = rx.drain().collect();
        let freed: u64 = batch.iter().map(Queued::image_bytes).sum();
        committed_bytes.fetch_sub(freed, Ordering::Relaxed);
        outbox.flush(&counters).unwrap();
        assert!(outbox.is_empty() && !outbox.is_full());
        assert_eq!(rx.len() as u64 * 512 * 1024, MAX_WAITING_IMAGE_BYTES);
    }
}
