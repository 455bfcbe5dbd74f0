//! `incidents` (each incident's current state, one row per id) and `incident_audit` (every
//! change: who, when, what). Rows come from the writer thread; a version never overwrites a
//! newer one, and the same audit row received twice (a QoS 1 redelivery) is stored once.

use rusqlite::{Connection, Row, Statement};
use watchfloor_protocol::Severity;

use crate::incidents::model::Change;
use crate::incidents::{AuditEntry, Incident, IncidentState};

pub const DDL: &str = "
CREATE TABLE incidents (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    title         TEXT NOT NULL,
    state         TEXT NOT NULL,
    assignee      TEXT,
    resolution    TEXT,
    count         INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    lat           REAL,
    lon           REAL,
    version       INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    updated_by    TEXT NOT NULL,
    last_action   TEXT NOT NULL,
    last_detail   TEXT
) STRICT;
CREATE INDEX incidents_by_state ON incidents (state, updated_ms);
CREATE TABLE incident_audit (
    id          INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT,
    state       TEXT NOT NULL,
    UNIQUE (incident_id, version, actor, action)
) STRICT;
CREATE INDEX incident_audit_by_time ON incident_audit (at_ms);
";

/// Open incidents by cause: pruning asks of every event it would take whether an open incident
/// of its device and type keeps it (`store::retention`). Partial, so a cause's resolved
/// incidents (a sensor that drops out daily has hundreds) are not read for the answer.
pub const DDL_OPEN_BY_CAUSE: &str = "
CREATE INDEX incidents_open_by_cause ON incidents (source, kind) WHERE state <> 'resolved';
";

pub const UPSERT: &str = "INSERT INTO incidents
    (id, source, kind, severity, title, state, assignee, resolution, count, first_seen_ms,
     last_seen_ms, lat, lon, version, updated_ms, updated_by, last_action, last_detail)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
    ON CONFLICT (id) DO UPDATE SET
        severity = excluded.severity, title = excluded.title, state = excluded.state,
        assignee = excluded.assignee, resolution = excluded.resolution, count = excluded.count,
        first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms,
        lat = excluded.lat, lon = excluded.lon, version = excluded.version,
        updated_ms = excluded.updated_ms, updated_by = excluded.updated_by,
        last_action = excluded.last_action, last_detail = excluded.last_detail
    WHERE excluded.version >= incidents.version";

pub const INSERT_AUDIT: &str = "INSERT OR IGNORE INTO incident_audit
    (incident_id, version, at_ms, actor, action, detail, state)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub fn upsert(stmt: &mut Statement<'_>, i: &Incident) -> rusqlite::Result<()> {
    stmt.execute(rusqlite::params![
        i.id,
        i.source,
        i.kind,
        i.severity.as_str(),
        i.title,
        i.state.as_str(),
        i.assignee,
        i.resolution,
        i.count,
        i.first_seen_ms,
        i.last_seen_ms,
        i.lat,
        i.lon,
        i64::try_from(i.version).unwrap_or(i64::MAX),
        i.updated_ms,
        i.updated_by,
        i.last_change.action,
        i.last_change.detail,
    ])?;
    Ok(())
}

pub fn insert_audit(stmt: &mut Statement<'_>, a: &AuditEntry) -> rusqlite::Result<()> {
    stmt.execute(rusqlite::params![
        a.incident_id,
        i64::try_from(a.version).unwrap_or(i64::MAX),
        a.at_ms,
        a.actor,
        a.action,
        a.detail,
        a.state.as_str(),
    ])?;
    Ok(())
}

fn state(s: &str) -> IncidentState {
    IncidentState::parse(s).unwrap_or(IncidentState::New)
}

fn incident(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        source: r.get(1)?,
        kind: r.get(2)?,
        severity: Severity::parse(&r.get::<_, String>(3)?).unwrap_or(Severity::Info),
        title: r.get(4)?,
        state: state(&r.get::<_, String>(5)?),
        assignee: r.get(6)?,
        resolution: r.get(7)?,
        count: r.get(8)?,
        first_seen_ms: r.get(9)?,
        last_seen_ms: r.get(10)?,
        lat: r.get(11)?,
        lon: r.get(12)?,
        version: u64::try_from(r.get::<_, i64>(13)?).unwrap_or(0),
        updated_ms: r.get(14)?,
        updated_by: r.get(15)?,
        last_change: Change {
            action: r.get(16)?,
            detail: r.get(17)?,
        },
    })
}

const COLUMNS: &str = "id, source, kind, severity, title, state, assignee, resolution, count,
    first_seen_ms, last_seen_ms, lat, lon, version, updated_ms, updated_by, last_action, last_detail";

/// Every open incident, and those resolved since `resolved_since_ms`.
pub fn load_current(conn: &Connection, resolved_since_ms: i64) -> rusqlite::Result<Vec<Incident>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM incidents WHERE state != 'resolved' OR updated_ms >= ?1"
    ))?;
    let rows = stmt.query_map([resolved_since_ms], incident)?;
    rows.collect()
}

/// `(id, version, updated_ms)` of the incidents resolved (last changed) within
/// `since_ms..until_ms`: those a console forgot, or will, and must not take back.
pub fn resolved_between(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
) -> rusqlite::Result<Vec<(String, u64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT id, version, updated_ms FROM incidents
         WHERE state = 'resolved' AND updated_ms >= ?1 AND updated_ms < ?2",
    )?;
    let rows = stmt.query_map([since_ms, until_ms], |r| {
        Ok((
            r.get(0)?,
            u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            r.get(2)?,
        ))
    })?;
    rows.collect()
}

/// One incident's audit trail, oldest first.
pub fn audit(conn: &Connection, incident_id: &str) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT incident_id, version, at_ms, actor, action, detail, state FROM incident_audit
         WHERE incident_id = ?1 ORDER BY version, at_ms, id",
    )?;
    let rows = stmt.query_map([incident_id], audit_row)?;
    rows.collect()
}

/// An audit row from `incident_id, version, at_ms, actor, action, detail, state`.
pub fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        incident_id: r.get(0)?,
        version: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        at_ms: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        detail: r.get(5)?,
        state: state(&r.get::<_, String>(6)?),
    })
}

/// One incident as last stored.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Incident>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1"))?
        .query_row([id], incident)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::{IncidentAction, IncidentBook, Trigger};

    #[test]
    fn incidents_and_their_audit_trail_round_trip_and_never_go_back_a_version() {
        let conn = crate::store::open_in_memory().unwrap();
        let mut book = IncidentBook::default();
        let t = Trigger {
            source: "v1".into(),
            kind: "panic".into(),
            key: "e1".into(),
            severity: Severity::Critical,
            title: "Van 1: panic".into(),
            at_ms: 10,
            position: Some((51.0, 4.0)),
        };
        let id = book.raise(&t, 11).unwrap();
        book.act(&id, &IncidentAction::Assign { to: "Bo".into() }, "ana", 20)
            .unwrap();
        let changes = book.take_changes();
        let mut up = conn.prepare(UPSERT).unwrap();
        let mut au = conn.prepare(INSERT_AUDIT).unwrap();
        for c in changes.iter().chain(changes.iter()) {
            upsert(&mut up, &c.incident).unwrap();
            if let Some(a) = &c.audit {
                insert_audit(&mut au, a).unwrap();
            }
        }
        // An older version arriving late changes nothing.
        upsert(&mut up, &changes[0].incident).unwrap();
        let loaded = load_current(&conn, 0).unwrap();
        assert_eq!(loaded, vec![book.get(&id).unwrap().clone()]);
        let trail: Vec<(String, String)> = audit(&conn, &id)
            .unwrap()
            .into_iter()
            .map(|a| (a.actor, a.action))
            .collect();
        assert_eq!(
            trail,
            [("system", "opened"), ("ana", "assigned")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );

        // Resolved at 30: listed among those resolved in a range that holds 30, open ones never.
        assert!(resolved_between(&conn, 0, 1000).unwrap().is_empty());
        book.act(
            &id,
            &IncidentAction::Resolve { note: "ok".into() },
            "ana",
            30,
        )
        .unwrap();
        for c in book.take_changes() {
            upsert(&mut up, &c.incident).unwrap();
        }
        assert_eq!(resolved_between(&conn, 30, 31).unwrap(), [(id, 3, 30)]);
        assert!(resolved_between(&conn, 31, 1000).unwrap().is_empty());
    }
}
