//! The shared incident topic: `watchfloor/incidents/{id}`, retained, QoS 1, one JSON
//! [`Incident`] per message (its newest version, with the last change). Every console publishes
//! its changes there and subscribes to all of them; the broker's retained copy gives a console
//! that starts later the current picture, and a persistent session delivers the versions sent
//! while it was away. See docs/protocol.md, "Incidents".

use std::collections::BTreeSet;

use tokio::sync::mpsc;

use super::model::Incident;
use super::IncidentBook;
use crate::link::Outbound;

/// The topic filter every console subscribes to.
pub const FILTER: &str = "watchfloor/incidents/+";
/// Highest incident version accepted: JavaScript's largest exact integer (2^53 - 1).
pub const MAX_VERSION: u64 = (1 << 53) - 1;
/// How far ahead of this console's clock another console's change may be stamped: their clocks
/// may disagree (a console with no time service), but not by days.
pub const MAX_CONSOLE_AHEAD_MS: i64 = super::book::KEEP_RESOLVED_MS;
/// Largest incident message accepted (notes are at most 2,000 characters).
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Where incident `id` is published.
pub fn topic(id: &str) -> String {
    format!("watchfloor/incidents/{id}")
}

/// Whether `topic` is under the shared incident topic.
pub fn is_incident_topic(topic: &str) -> bool {
    topic.starts_with("watchfloor/incidents/")
}

/// Why a message on the incident topic was refused (it goes to quarantine with this reason).
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("incident message of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("not an incident: {0}")]
    Json(String),
    #[error("incident id {found:?} does not match its topic's {topic:?}")]
    IdMismatch { found: String, topic: String },
    #[error("incident id {0:?} is not 16 hex digits")]
    BadId(String),
    #[error("incident field {0} is out of bounds")]
    OutOfBounds(&'static str),
}

impl SharedError {
    pub fn code(&self) -> &'static str {
        match self {
            SharedError::TooLarge(_) => "incident_too_large",
            SharedError::Json(_) => "incident_malformed",
            SharedError::IdMismatch { .. } | SharedError::BadId(_) => "incident_bad_id",
            SharedError::OutOfBounds(_) => "incident_out_of_bounds",
        }
    }
}

pub fn encode(incident: &Incident) -> Vec<u8> {
    serde_json::to_vec(incident).expect("an incident always serialises")
}

/// Decodes and checks another console's incident message.
/// `received_ms` is this console's clock on its arrival: a change stamped further ahead of it
/// than [`MAX_CONSOLE_AHEAD_MS`] is refused (it would win every tie and, resolved, never be
/// forgotten).
pub fn decode(topic: &str, payload: &[u8], received_ms: i64) -> Result<Incident, SharedError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(SharedError::TooLarge(payload.len()));
    }
    let level = topic.rsplit('/').next().unwrap_or_default();
    if level.len() != 16 || !level.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SharedError::BadId(level.to_owned()));
    }
    let i: Incident =
        serde_json::from_slice(payload).map_err(|e| SharedError::Json(e.to_string()))?;
    if i.id != level {
        return Err(SharedError::IdMismatch {
            found: i.id,
            topic: level.to_owned(),
        });
    }
    let short = |s: &str| s.chars().count() <= 4 * super::book::MAX_TEXT_CHARS;
    let texts = [&i.source, &i.kind, &i.title, &i.updated_by];
    if !texts.iter().all(|s| short(s))
        || ![&i.assignee, &i.resolution, &i.last_change.detail]
            .iter()
            .all(|s| s.as_deref().is_none_or(short))
    {
        return Err(SharedError::OutOfBounds("text"));
    }
    // Names and one-line texts carry no control character (a forged log line, a terminal
    // escape); notes and resolutions may hold line breaks and tabs.
    let one_line = |s: &str| !s.chars().any(char::is_control);
    let note = |s: &str| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    };
    if !texts.iter().all(|s| one_line(s))
        || !i.assignee.as_deref().is_none_or(one_line)
        || ![&i.resolution, &i.last_change.detail]
            .iter()
            .all(|s| s.as_deref().is_none_or(note))
    {
        return Err(SharedError::OutOfBounds("control character"));
    }
    // Versions count changes: a forged one near u64::MAX would leave no room for the next
    // change (and is past what the page's numbers hold exactly, 2^53).
    if i.version == 0 || i.version > MAX_VERSION || i.count == 0 {
        return Err(SharedError::OutOfBounds("version/count"));
    }
    if !(0..=received_ms.saturating_add(MAX_CONSOLE_AHEAD_MS)).contains(&i.updated_ms) {
        return Err(SharedError::OutOfBounds("updated_ms"));
    }
    let lat_ok = i.lat.is_none_or(|v| (-90.0..=90.0).contains(&v));
    let lon_ok = i.lon.is_none_or(|v| (-180.0..=180.0).contains(&v));
    if !(lat_ok && lon_ok) {
        return Err(SharedError::OutOfBounds("lat/lon"));
    }
    Ok(i)
}

/// Hands the link what the incident topics should hold: each incident's newest version, or an
/// empty retained message (a clearing) for one the book no longer holds. The link's queue is
/// bounded; what does not fit now is remembered by id and sent, in its then newest state, by
/// [`Publisher::flush`], so no change (and no republish after a reconnect, which may be
/// thousands) is lost to a full queue.
#[derive(Debug)]
pub struct Publisher {
    outbound: mpsc::Sender<Outbound>,
    unsent: BTreeSet<String>,
}

impl Publisher {
    pub fn new(outbound: mpsc::Sender<Outbound>) -> Self {
        Self {
            outbound,
            unsent: BTreeSet::new(),
        }
    }

    /// Publishes incident `id` as `book` holds it now (cleared when it holds none).
    pub fn publish(&mut self, id: &str, book: &IncidentBook) {
        if !self.unsent.is_empty() {
            // Behind already: keep the order of the backlog.
            self.unsent.insert(id.to_owned());
            self.flush(book);
        } else if !self.try_send(id, book) {
            tracing::warn!(incident = %id, "link queue full: incident topics will be published when it drains");
            self.unsent.insert(id.to_owned());
        }
    }

    /// Publishes every incident in `ids` (after a reconnect: all of them).
    pub fn publish_all(&mut self, ids: impl IntoIterator<Item = String>, book: &IncidentBook) {
        self.unsent.extend(ids);
        self.flush(book);
    }

    /// Sends what waits, as far as the link's queue takes it.
    pub fn flush(&mut self, book: &IncidentBook) {
        while let Some(id) = self.unsent.first().cloned() {
            if !self.try_send(&id, book) {
                return;
            }
            self.unsent.remove(&id);
        }
    }

    /// Sends one copy of `incident` that the broker does not keep (not retained): to answer a
    /// console that republished an older version, without putting back on the broker an
    /// incident that was cleared from it. False when the link's queue is full.
    pub fn send_once(&self, incident: &Incident) -> bool {
        let msg = Outbound {
            topic: topic(&incident.id),
            payload: encode(incident),
            retain: false,
        };
        self.outbound.try_send(msg).is_ok()
    }

    /// How many incident topics wait for room in the link's queue.
    pub fn backlog(&self) -> usize {
        self.unsent.len()
    }

    fn try_send(&self, id: &str, book: &IncidentBook) -> bool {
        let msg = Outbound {
            topic: topic(id),
            payload: book.get(id).map(encode).unwrap_or_default(),
            retain: true,
        };
        self.outbound.try_send(msg).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::{IncidentBook, Trigger};
    use watchfloor_protocol::Severity;

    /// The receiving console's clock in these tests (the sample was changed at 2).
    const NOW: i64 = 1_000;

    fn decode(topic: &str, payload: &[u8]) -> Result<Incident, SharedError> {
        super::decode(topic, payload, NOW)
    }

    fn sample() -> Incident {
        let mut book = IncidentBook::default();
        let t = Trigger {
            source: "v1".into(),
            kind: "panic".into(),
            key: "e1".into(),
            severity: Severity::High,
            title: "Van 1: panic".into(),
            at_ms: 1,
            position: None,
        };
        let id = book.raise(&t, 2).unwrap();
        book.get(&id).unwrap().clone()
    }

    #[test]
    fn what_a_full_link_queue_cannot_take_now_is_published_later_in_its_newest_state() {
        let mut book = IncidentBook::default();
        let ids: Vec<String> = (0..5)
            .map(|n| {
                let t = Trigger {
                    source: format!("v{n}"),
                    kind: "panic".into(),
                    key: "e1".into(),
                    severity: Severity::High,
                    title: format!("Van {n}: panic"),
                    at_ms: 1,
                    position: None,
                };
                book.raise(&t, 2).unwrap()
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(2);
        let mut publisher = Publisher::new(tx);
        publisher.publish_all(ids.clone(), &book);
        assert_eq!(publisher.backlog(), 3);
        // Meanwhile one waiting incident changes: it goes out as it is when there is room.
        let mut sorted = ids.clone();
        sorted.sort();
        book.act(
            &sorted[4],
            &crate::incidents::IncidentAction::Acknowledge,
            "ana",
            3,
        )
        .unwrap();
        let mut received = Vec::new();
        while let Ok(m) = rx.try_recv() {
            received.push(m);
        }
        publisher.publish(&sorted[2], &book); // joins the backlog, in order
        publisher.flush(&book);
        while let Ok(m) = rx.try_recv() {
            received.push(m);
        }
        publisher.flush(&book);
        while let Ok(m) = rx.try_recv() {
            received.push(m);
        }
        assert_eq!(publisher.backlog(), 0);
        let topics: Vec<&str> = received.iter().map(|m| m.topic.as_str()).collect();
        let expected: Vec<String> = sorted.iter().map(|id| topic(id)).collect();
        assert_eq!(topics, expected, "each once, none lost");
        let last = decode(&received[4].topic, &received[4].payload).unwrap();
        assert_eq!(last.version, 2, "sent as it was when there was room");
        assert!(received.iter().all(|m| m.retain));
        // A topic the book no longer holds is cleared (an empty retained message).
        let (tx, mut rx) = mpsc::channel(1);
        let mut publisher = Publisher::new(tx);
        publisher.publish("00000000000000aa", &book);
        assert!(rx.try_recv().unwrap().payload.is_empty());
    }

    #[test]
    fn an_incident_round_trips_through_its_topic() {
        let i = sample();
        assert_eq!(decode(&topic(&i.id), &encode(&i)).unwrap(), i);
    }

    #[test]
    fn hostile_messages_are_refused_with_a_reason() {
        let i = sample();
        let t = topic(&i.id);
        assert_eq!(decode(&t, b"{").unwrap_err().code(), "incident_malformed");
        assert_eq!(
            decode(&t, &vec![b' '; MAX_PAYLOAD + 1]).unwrap_err().code(),
            "incident_too_large"
        );
        assert_eq!(
            decode("watchfloor/incidents/#x", &encode(&i))
                .unwrap_err()
                .code(),
            "incident_bad_id"
        );
        assert_eq!(
            decode(&topic("00000000000000ff"), &encode(&i))
                .unwrap_err()
                .code(),
            "incident_bad_id"
        );
        let mut far = i.clone();
        far.lat = Some(91.0);
        assert_eq!(
            decode(&t, &encode(&far)).unwrap_err().code(),
            "incident_out_of_bounds"
        );
        let mut huge = i.clone();
        huge.title = "x".repeat(20_000);
        assert!(decode(&t, &encode(&huge)).is_err());
        let mut forged = i.clone();
        forged.updated_by = "ana\nINFO forged".into();
        assert_eq!(
            decode(&t, &encode(&forged)).unwrap_err().code(),
            "incident_out_of_bounds"
        );
        let mut escape = i.clone();
        escape.title = "\u{1b}[2Jcleared".into();
        assert_eq!(
            decode(&t, &encode(&escape)).unwrap_err().code(),
            "incident_out_of_bounds"
        );
        let mut note = i.clone();
        note.resolution = Some("line 1\nline 2".into());
        assert!(
            decode(&t, &encode(&note)).is_ok(),
            "a resolution may hold line breaks"
        );
        let mut huge_version = i.clone();
        huge_version.version = u64::MAX;
        assert_eq!(
            decode(&t, &encode(&huge_version)).unwrap_err().code(),
            "incident_out_of_bounds"
        );
        let mut zero = i.clone();
        zero.version = 0;
        assert_eq!(
            decode(&t, &encode(&zero)).unwrap_err().code(),
            "incident_out_of_bounds"
        );
        // Changed a day ahead of this console's clock (or before 1970): refused; less ahead
        // (another console's clock is off), taken.
        for updated_ms in [NOW + MAX_CONSOLE_AHEAD_MS + 1, -1] {
            let skewed = Incident {
                updated_ms,
                ..i.clone()
            };
            assert_eq!(
                decode(&t, &encode(&skewed)).unwrap_err().to_string(),
                "incident field updated_ms is out of bounds"
            );
        }
        let ahead = Incident {
            updated_ms: NOW + MAX_CONSOLE_AHEAD_MS,
            ..i
        };
        assert!(decode(&t, &encode(&ahead)).is_ok());
    }
}
