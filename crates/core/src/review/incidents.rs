//! Incidents as they stood at one instant, rebuilt from the audit trail: an incident exists
//! from its `opened` row on, and its state, assignee and resolution are those its audited
//! changes up to the instant left it with.
//!
//! The list at an instant is what a console's list held then: every incident open, and those
//! resolved less than [`KEEP_RESOLVED_MS`] before (a console lets go of them after that). The
//! ones resolved earlier are only counted; the incidents report has them all.
//!
//! What the audit does not record is taken from the incident's row: title, kind, severity (a
//! repeat may have raised it later) and place. Repeats are not audited (they would flood the
//! trail); the count at an instant is the number of the device's stored events of that type
//! from the first up to the instant, or the stored count once the last repeat has happened.
//!
//! The trails are read from the file once ([`Trails`]) and topped up with the rows a running
//! console has added since: a frame then folds them in memory instead of reading the whole
//! audit table again.
//!
//! Once retention has taken the events of an incident's start, its count at an instant is
//! approximate: the count the file has, less the repeats kept after the instant.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use watchfloor_protocol::Severity;

use crate::incidents::book::KEEP_RESOLVED_MS;
use crate::incidents::model::Change;
use crate::incidents::{AuditEntry, Incident, IncidentState};
use crate::store::incidents as table;

/// The incident list at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsThen {
    /// Open then, or resolved less than [`KEEP_RESOLVED_MS`] before, in triage order.
    pub shown: Vec<Incident>,
    /// Opened before the instant and resolved [`KEEP_RESOLVED_MS`] or longer before it.
    pub resolved_earlier: u32,
}

/// How much later than an incident's opening its first event may have arrived (delivery) for
/// the file to be taken as holding its events.
const KEPT_SLACK_MS: i64 = 60_000;

/// Every incident's audit trail in a history file, read once.
#[derive(Debug, Default)]
pub struct Trails {
    by_id: HashMap<String, Trail>,
    /// The newest audit row read (rows are only ever added, with growing ids).
    read_up_to: i64,
    /// The repeats of the incidents counted at an instant so far.
    repeats: Repeats,
}

/// The times of one source's events of one type (an incident's repeats), read once per
/// (source, type) and then only the rows stored since: counting them at an instant is a
/// binary search, where a query walked every event of the device at every frame (a month of a
/// device repeating every 10 s: 260,000 rows a frame).
#[derive(Debug, Default)]
struct Repeats {
    by_key: HashMap<(String, String), Vec<i64>>,
    /// Keys whose times were appended to out of order, to sort before the next search.
    unsorted: HashSet<(String, String)>,
    /// The newest event row read; `None` before the first key is read.
    read_up_to: Option<i64>,
    /// When the oldest event left in the file arrived (`i64::MAX`: none); read again at each
    /// catch-up (retention goes on in a running console's file).
    oldest_event_ms: Option<i64>,
}

impl Repeats {
    /// How many of `source`'s `kind` events have `from_ms <= ts <= to_ms`, and the last one's
    /// time.
    fn between(
        &mut self,
        conn: &Connection,
        (source, kind): (&str, &str),
        from_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<(usize, Option<i64>)> {
        if self.read_up_to.is_none() {
            self.catch_up(conn)?; // incidents_at catches up once per frame
        }
        let key = (source.to_owned(), kind.to_owned());
        let resort = self.unsorted.remove(&key);
        let read_up_to = self.read_up_to.unwrap_or(0);
        let times = match self.by_key.entry(key) {
            Entry::Occupied(held) => held.into_mut(),
            Entry::Vacant(new) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT ts_ms FROM events WHERE device_id = ?1 AND type = ?2 AND id <= ?3",
                )?;
                let mut times = stmt
                    .query_map((source, kind, read_up_to), |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                times.sort_unstable();
                new.insert(times)
            }
        };
        if resort {
            times.sort_unstable();
        }
        let lo = times.partition_point(|&t| t < from_ms);
        let hi = times.partition_point(|&t| t <= to_ms);
        Ok((hi.saturating_sub(lo), (hi > lo).then(|| times[hi - 1])))
    }

    /// Whether the file still holds the events from `from_ms` on (retention has not taken any
    /// that old): only then can an incident's repeats be counted again.
    fn kept_since(&mut self, conn: &Connection, from_ms: i64) -> rusqlite::Result<bool> {
        use rusqlite::OptionalExtension;
        if self.oldest_event_ms.is_none() {
            // Retention deletes in arrival order: the first row left is where it stopped.
            self.oldest_event_ms = Some(
                conn.query_row(
                    "SELECT received_ms FROM events ORDER BY id LIMIT 1",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .unwrap_or(i64::MAX),
            );
        }
        // Received later than the incident opened (give or take its delivery), the first row
        // left says retention took the events of its start (all of them, in an empty table).
        Ok(self.oldest_event_ms.unwrap_or(i64::MAX) <= from_ms.saturating_add(KEPT_SLACK_MS))
    }

    /// Appends the events stored since the last call to the keys already read (a running
    /// console's file grows); the first call only notes where the table ends.
    fn catch_up(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.oldest_event_ms = None;
        let newest: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        let read = match self.read_up_to {
            Some(read) if read == newest => return Ok(()),
            Some(read) if read < newest => read,
            // The first call; or retention emptied the table and ids started again (they are
            // rowids, not AUTOINCREMENT): every key is read afresh when next asked for.
            _ => {
                self.by_key.clear();
                self.unsorted.clear();
                self.oldest_event_ms = None;
                self.read_up_to = Some(newest);
                return Ok(());
            }
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, device_id, type, ts_ms FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query([read, newest])?;
        while let Some(r) = rows.next()? {
            let key: (String, String) = (r.get(1)?, r.get(2)?);
            if let Some(times) = self.by_key.get_mut(&key) {
                let t: i64 = r.get(3)?;
                // Usually the newest: appended in order. A late one is sorted in before the
                // next search.
                if times.last().is_some_and(|&last| t < last) {
                    self.unsorted.insert(key);
                }
                times.push(t);
            }
        }
        self.read_up_to = Some(newest);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Trail {
    /// Oldest first: by version, then time, then the order they were stored in.
    entries: Vec<(i64, AuditEntry)>,
    /// When it first opened (`i64::MAX` while no `opened` row is known: notes or merges from
    /// another console that arrived before it).
    opened_ms: i64,
    /// The latest time among the entries.
    latest_ms: i64,
    /// Whether the whole trail leaves it resolved.
    ends_resolved: bool,
}

impl Trail {
    /// The entries up to `at_ms`, oldest first.
    fn until(&self, at_ms: i64) -> impl Iterator<Item = &AuditEntry> {
        self.entries
            .iter()
            .map(|(_, a)| a)
            .filter(move |a| a.at_ms <= at_ms)
    }

    /// The entry that leaves it as it stood at `at_ms`, if it had opened by then.
    fn last_until(&self, at_ms: i64) -> Option<&AuditEntry> {
        if self.opened_ms > at_ms {
            return None;
        }
        if self.latest_ms <= at_ms {
            return self.entries.last().map(|(_, a)| a);
        }
        self.until(at_ms).last()
    }
}

impl Trails {
    /// Reads the audit rows stored since the last call (all of them the first time).
    pub fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let newest: Option<i64> =
            conn.query_row("SELECT max(id) FROM incident_audit", [], |r| r.get(0))?;
        if newest.is_none_or(|n| n <= self.read_up_to) {
            return Ok(());
        }
        let mut stmt = conn.prepare_cached(
            "SELECT incident_id, version, at_ms, actor, action, detail, state, id
             FROM incident_audit WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([self.read_up_to])?;
        let mut touched = HashSet::new();
        while let Some(r) = rows.next()? {
            let entry = table::audit_row(r)?;
            let row: i64 = r.get(7)?;
            self.read_up_to = self.read_up_to.max(row);
            touched.insert(entry.incident_id.clone());
            self.by_id
                .entry(entry.incident_id.clone())
                .or_default()
                .entries
                .push((row, entry));
        }
        for id in touched {
            let t = self.by_id.get_mut(&id).expect("just added");
            t.entries.sort_by_key(|(row, a)| (a.version, a.at_ms, *row));
            t.opened_ms = t
                .entries
                .iter()
                .filter(|(_, a)| a.action == "opened")
                .map(|(_, a)| a.at_ms)
                .min()
                .unwrap_or(i64::MAX);
            t.latest_ms = t.entries.iter().map(|(_, a)| a.at_ms).max().unwrap_or(0);
            t.ends_resolved = t
                .entries
                .last()
                .is_some_and(|(_, a)| a.state == IncidentState::Resolved);
        }
        Ok(())
    }

    /// One incident's trail up to `at_ms`, oldest first.
    pub fn audit_until(&self, incident_id: &str, at_ms: i64) -> Vec<AuditEntry> {
        self.by_id
            .get(incident_id)
            .map(|t| t.until(at_ms).cloned().collect())
            .unwrap_or_default()
    }

    /// The incident list at `at_ms` (see the module's notes), its rows read from `conn`.
    pub fn incidents_at(
        &mut self,
        conn: &Connection,
        at_ms: i64,
    ) -> rusqlite::Result<IncidentsThen> {
        let forgotten_before = at_ms.saturating_sub(KEEP_RESOLVED_MS);
        self.repeats.catch_up(conn)?;
        let mut shown = Vec::new();
        let mut resolved_earlier = 0u32;
        for (id, trail) in &self.by_id {
            // Resolved for good long before the instant: counted without folding its trail.
            if trail.ends_resolved
                && trail.latest_ms <= forgotten_before
                && trail.opened_ms <= at_ms
            {
                resolved_earlier += 1;
                continue;
            }
            let Some(last) = trail.last_until(at_ms) else {
                continue; // not yet opened
            };
            if last.state == IncidentState::Resolved && last.at_ms <= forgotten_before {
                resolved_earlier += 1;
                continue;
            }
            let Some(now) = table::get(conn, id)? else {
                continue;
            };
            let mut i = now.clone();
            (i.state, i.assignee, i.resolution) = (IncidentState::New, None, None);
            // The severity it opened with: before its first escalation, if it had one.
            if let Some((from, _)) = trail
                .entries
                .iter()
                .find_map(|(_, a)| (a.action == "escalated").then(|| escalation(a)).flatten())
            {
                i.severity = from;
            }
            for a in trail.until(at_ms) {
                match a.action.as_str() {
                    "assigned" => i.assignee = a.detail.clone(),
                    "resolved" | "merged" => i.resolution = a.detail.clone(),
                    "reopened" => (i.assignee, i.resolution) = (None, None),
                    "escalated" => {
                        if let Some((_, to)) = escalation(a) {
                            i.severity = to;
                        }
                    }
                    _ => {}
                }
                i.state = a.state;
            }
            i.version = last.version;
            i.updated_ms = last.at_ms;
            i.updated_by = last.actor.clone();
            i.last_change = Change {
                action: last.action.clone(),
                detail: last.detail.clone(),
            };
            if at_ms < now.last_seen_ms {
                let (seen, last) =
                    self.repeats
                        .between(conn, (&i.source, &i.kind), now.first_seen_ms, at_ms)?;
                // Counted again while the file holds the events since it opened. Once retention
                // took some (counted, it looked like a single occurrence), it is the count the
                // file has less the repeats after the instant (the newest, which retention
                // takes last).
                if self.repeats.kept_since(conn, now.first_seen_ms)? {
                    i.count = u32::try_from(seen.max(1)).unwrap_or(u32::MAX);
                } else {
                    let (after, _) = self.repeats.between(
                        conn,
                        (&i.source, &i.kind),
                        at_ms.saturating_add(1),
                        now.last_seen_ms,
                    )?;
                    let after = u32::try_from(after).unwrap_or(u32::MAX);
                    i.count = now.count.saturating_sub(after).max(1);
                }
                // The last repeat up to the instant (the console's own kinds, offline or stale,
                // have no events: their first sighting).
                i.last_seen_ms = last.unwrap_or(now.first_seen_ms).max(now.first_seen_ms);
            }
            shown.push(i);
        }
        // The id breaks ties (incidents opened in one millisecond): the same order every frame
        // and every export, whatever order the map above gave.
        shown.sort_by(|a, b| {
            a.triage_key()
                .cmp(&b.triage_key())
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(IncidentsThen {
            shown,
            resolved_earlier,
        })
    }
}

/// An escalation's severities, from its detail (`"medium -> critical"`, as the incident book
/// writes it); `None` for any other entry.
fn escalation(a: &AuditEntry) -> Option<(Severity, Severity)> {
    let (from, to) = a.detail.as_deref()?.split_once(" -> ")?;
    Some((Severity::parse(from)?, Severity::parse(to)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::model::Change;
    use watchfloor_protocol::Severity;

    fn trails(conn: &Connection) -> Trails {
        let mut t = Trails::default();
        t.refresh(conn).unwrap();
        t
    }

    /// Incident `id` as a file holds it at the end: v1's panic, three events, resolved.
    fn resolved_panic(id: &str) -> Incident {
        Incident {
            id: id.into(),
            source: "v1".into(),
            kind: "panic".into(),
            severity: Severity::Critical,
            title: "Panic".into(),
            state: IncidentState::Resolved,
            assignee: Some("bo".into()),
            resolution: Some("false alarm".into()),
            count: 3,
            first_seen_ms: 1000,
            last_seen_ms: 8000,
            lat: None,
            lon: None,
            version: 4,
            updated_ms: 9000,
            updated_by: "bo".into(),
            last_change: Change {
                action: "resolved".into(),
                detail: Some("false alarm".into()),
            },
        }
    }

    fn store(
        conn: &Connection,
        i: &Incident,
        trail: &[(i64, &str, &str, Option<&str>, IncidentState)],
    ) {
        table::upsert(&mut conn.prepare(table::UPSERT).unwrap(), i).unwrap();
        let mut stmt = conn.prepare(table::INSERT_AUDIT).unwrap();
        for (n, (at, actor, action, detail, state)) in trail.iter().enumerate() {
            table::insert_audit(
                &mut stmt,
                &AuditEntry {
                    incident_id: i.id.clone(),
                    version: n as u64 + 1,
                    at_ms: *at,
                    actor: (*actor).into(),
                    action: (*action).into(),
                    detail: detail.map(Into::into),
                    state: *state,
                },
            )
            .unwrap();
        }
    }

    #[test]
    fn states_assignees_and_counts_are_those_of_the_instant() {
        let conn = crate::store::open_in_memory().unwrap();
        conn.execute_batch(
            "INSERT INTO events (device_id, event_id, ts_ms, type, severity, received_ms) VALUES
               ('v1', 'e1', 1000, 'panic', 'critical', 0),
               ('v1', 'e2', 3000, 'panic', 'critical', 0),
               ('v1', 'e3', 8000, 'panic', 'critical', 0);",
        )
        .unwrap();
        let now = resolved_panic("i1");
        use IncidentState::*;
        store(
            &conn,
            &now,
            &[
                (1100, "system", "opened", None, New),
                (2000, "dana", "acknowledged", None, Acknowledged),
                (4000, "dana", "assigned", Some("bo"), Assigned),
                (9000, "bo", "resolved", Some("false alarm"), Resolved),
            ],
        );

        let mut trails = trails(&conn);
        assert!(
            trails.incidents_at(&conn, 1000).unwrap().shown.is_empty(),
            "not yet opened"
        );
        let mut at = |t| trails.incidents_at(&conn, t).unwrap().shown.remove(0);
        let i = at(1100);
        assert_eq!((i.state, i.count, i.assignee.clone()), (New, 1, None));
        let i = at(3500);
        assert_eq!((i.state, i.count), (Acknowledged, 2));
        assert_eq!(i.last_seen_ms, 3000, "its last repeat, not the instant");
        // A running console stores a repeat that happened at 3200 (it came late): counted.
        conn.execute(
            "INSERT INTO events (device_id, event_id, ts_ms, type, severity, received_ms)
             VALUES ('v1', 'e2b', 3200, 'panic', 'critical', 0)",
            [],
        )
        .unwrap();
        let i = at(3500);
        assert_eq!((i.count, i.last_seen_ms), (3, 3200));
        // Retention emptied the table and ids started again at 1: read afresh, not missed.
        conn.execute_batch(
            "DELETE FROM events;
             INSERT INTO events (device_id, event_id, ts_ms, type, severity, received_ms)
               VALUES ('v1', 'n1', 1500, 'panic', 'critical', 100000);",
        )
        .unwrap();
        // The events of its start are gone (the first row left arrived long after it opened):
        // the count is the file's, less the repeats kept after the instant.
        let i = at(3500);
        assert_eq!((i.count, i.last_seen_ms), (3, 1500));
        assert_eq!(at(1200).count, 2, "3, less the one kept at 1500");
        assert_eq!(i.updated_by, "dana");
        let i = at(5000);
        assert_eq!((i.state, i.assignee.as_deref()), (Assigned, Some("bo")));
        assert_eq!(i.resolution, None);
        let i = at(10_000);
        assert_eq!((i.state, i.count), (Resolved, 3));
        assert_eq!(i.resolution.as_deref(), Some("false alarm"));
        assert_eq!(trails.audit_until("i1", 4000).len(), 3);
    }

    #[test]
    fn the_severity_is_the_one_of_the_instant_before_and_after_an_escalation() {
        use IncidentState::*;
        let conn = crate::store::open_in_memory().unwrap();
        let mut now = resolved_panic("i2");
        (now.state, now.severity) = (Acknowledged, Severity::Critical);
        store(
            &conn,
            &now,
            &[
                (1100, "system", "opened", None, New),
                (2000, "dana", "acknowledged", None, Acknowledged),
                (
                    3000,
                    "system",
                    "escalated",
                    Some("medium -> critical"),
                    Acknowledged,
                ),
            ],
        );
        let mut trails = trails(&conn);
        let mut at = |t| trails.incidents_at(&conn, t).unwrap().shown.remove(0);
        assert_eq!(at(2500).severity, Severity::Medium, "before the escalation");
        assert_eq!(at(3000).severity, Severity::Critical);
        // An incident never escalated keeps the severity it has.
        let never = resolved_panic("i3");
        store(&conn, &never, &[(1100, "system", "opened", None, New)]);
        let mut trails = super::tests::trails(&conn);
        let shown = trails.incidents_at(&conn, 1200).unwrap().shown;
        let i3 = shown.iter().find(|i| i.id == "i3").unwrap();
        assert_eq!(i3.severity, Severity::Critical);
    }

    #[test]
    fn a_day_after_its_resolution_an_incident_leaves_the_list_and_is_counted() {
        use IncidentState::*;
        let conn = crate::store::open_in_memory().unwrap();
        let day = KEEP_RESOLVED_MS;
        store(
            &conn,
            &resolved_panic("i1"),
            &[
                (1000, "system", "opened", None, New),
                (9000, "bo", "resolved", Some("false alarm"), Resolved),
            ],
        );
        let mut trails = trails(&conn);
        let mut then = |t| trails.incidents_at(&conn, t).unwrap();
        assert_eq!(
            (
                then(9000 + day - 1).shown.len(),
                then(9000 + day - 1).resolved_earlier
            ),
            (1, 0)
        );
        // Gone at the instant a console forgets it (book::expired).
        let later = then(9000 + day);
        assert_eq!((later.shown.len(), later.resolved_earlier), (0, 1));
        assert_eq!(
            then(999).resolved_earlier,
            0,
            "not opened yet: not counted either"
        );
    }

    #[test]
    fn an_incident_reopened_after_a_day_is_listed_from_its_reopening_on() {
        use IncidentState::*;
        let conn = crate::store::open_in_memory().unwrap();
        let day = KEEP_RESOLVED_MS;
        let reopened = 9000 + 2 * day;
        store(
            &conn,
            &resolved_panic("i1"),
            &[
                (1000, "system", "opened", None, New),
                (9000, "bo", "resolved", Some("false alarm"), Resolved),
                (reopened, "dana", "reopened", None, New),
            ],
        );
        let mut trails = trails(&conn);
        let mut then = |t| trails.incidents_at(&conn, t).unwrap();
        assert_eq!(then(reopened - 1).resolved_earlier, 1);
        let i = then(reopened).shown.remove(0);
        assert_eq!(
            (i.state, i.resolution, i.updated_by.as_str()),
            (New, None, "dana")
        );
    }

    #[test]
    fn rows_a_running_console_adds_after_the_first_read_are_seen() {
        use IncidentState::*;
        let conn = crate::store::open_in_memory().unwrap();
        let mut i = resolved_panic("i1");
        (i.state, i.version) = (New, 1);
        store(&conn, &i, &[(1000, "system", "opened", None, New)]);
        let mut trails = trails(&conn);
        assert_eq!(
            trails.incidents_at(&conn, 5000).unwrap().shown[0].state,
            New
        );

        // A note that arrived before the incident it is about, from another console.
        let mut note = resolved_panic("i2");
        note.version = 1;
        store(
            &conn,
            &note,
            &[(2000, "bo", "noted", Some("on my way"), New)],
        );
        // i1 acknowledged: its version 2.
        table::insert_audit(
            &mut conn.prepare(table::INSERT_AUDIT).unwrap(),
            &AuditEntry {
                incident_id: "i1".into(),
                version: 2,
                at_ms: 3000,
                actor: "dana".into(),
                action: "acknowledged".into(),
                detail: None,
                state: Acknowledged,
            },
        )
        .unwrap();
        trails.refresh(&conn).unwrap();
        let then = trails.incidents_at(&conn, 5000).unwrap();
        let ids: Vec<(&str, IncidentState)> = then
            .shown
            .iter()
            .map(|i| (i.id.as_str(), i.state))
            .collect();
        assert_eq!(ids, [("i1", Acknowledged)], "i2 has not opened here");
        assert_eq!(trails.audit_until("i1", 5000).len(), 2);
        assert_eq!(trails.audit_until("i1", 2999).len(), 1);
    }
}
