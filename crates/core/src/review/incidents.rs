//! Incidents as they stood at one instant, rebuilt from the audit trail: an incident exists
//! from its `opened` row on, and its state, assignee and resolution are those its audited
//! changes up to the instant left it with.
//!
//! What the audit does not record is taken from the incident's row: title, kind, severity (a
//! repeat may have raised it later) and place. Repeats are not audited (they would flood the
//! trail); the count at an instant is the number of the device's stored events of that type
//! from the first up to the instant, or the stored count once the last repeat has happened.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::incidents::model::Change;
use crate::incidents::{AuditEntry, Incident, IncidentState};
use crate::store::incidents as table;

/// Every incident opened at or before `at_ms`, as it stood then, in triage order.
pub fn incidents_at(conn: &Connection, at_ms: i64) -> rusqlite::Result<Vec<Incident>> {
    let mut trails: HashMap<String, Vec<AuditEntry>> = HashMap::new();
    for a in audit_until(conn, None, at_ms)? {
        trails.entry(a.incident_id.clone()).or_default().push(a);
    }
    let mut events = conn.prepare_cached(
        "SELECT count(*) FROM events WHERE device_id = ?1 AND type = ?2
           AND ts_ms >= ?3 AND ts_ms <= ?4",
    )?;
    let mut out = Vec::new();
    for (id, trail) in trails {
        if !trail.iter().any(|a| a.action == "opened") {
            continue; // only notes or merges known before it opened here: not yet there
        }
        let Some(now) = table::get(conn, &id)? else {
            continue;
        };
        let mut i = now.clone();
        (i.state, i.assignee, i.resolution) = (IncidentState::New, None, None);
        for a in &trail {
            match a.action.as_str() {
                "assigned" => i.assignee = a.detail.clone(),
                "resolved" | "merged" => i.resolution = a.detail.clone(),
                "reopened" => (i.assignee, i.resolution) = (None, None),
                _ => {}
            }
            i.state = a.state;
        }
        let last = trail.last().expect("non-empty");
        i.version = last.version;
        i.updated_ms = last.at_ms;
        i.updated_by = last.actor.clone();
        i.last_change = Change {
            action: last.action.clone(),
            detail: last.detail.clone(),
        };
        if at_ms < now.last_seen_ms {
            let seen: i64 =
                events.query_row((&i.source, &i.kind, now.first_seen_ms, at_ms), |r| r.get(0))?;
            i.count = u32::try_from(seen.max(1)).unwrap_or(u32::MAX);
            i.last_seen_ms = at_ms.max(now.first_seen_ms);
        }
        out.push(i);
    }
    // The id breaks ties (incidents opened in one millisecond): the same order every frame
    // and every export, whatever order the map above gave.
    out.sort_by(|a, b| {
        a.triage_key()
            .cmp(&b.triage_key())
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(out)
}

/// The audit trail (one incident's, or every incident's) up to `at_ms`, oldest first.
pub fn audit_until(
    conn: &Connection,
    incident_id: Option<&str>,
    at_ms: i64,
) -> rusqlite::Result<Vec<AuditEntry>> {
    match incident_id {
        Some(id) => conn
            .prepare_cached(ONE_TRAIL)?
            .query_map((at_ms, id), table::audit_row)?
            .collect(),
        None => conn
            .prepare_cached(ALL_TRAILS)?
            .query_map([at_ms], table::audit_row)?
            .collect(),
    }
}

// Two statements, not one with `?2 IS NULL OR incident_id = ?2`: SQLite plans that once for
// both cases, and one incident's trail then scanned the whole audit table (per frame while an
// incident is selected, per incident in `review --at`).
const ONE_TRAIL: &str = "SELECT incident_id, version, at_ms, actor, action, detail, state
     FROM incident_audit WHERE incident_id = ?2 AND at_ms <= ?1
     ORDER BY incident_id, version, at_ms, id";
const ALL_TRAILS: &str = "SELECT incident_id, version, at_ms, actor, action, detail, state
     FROM incident_audit WHERE at_ms <= ?1
     ORDER BY incident_id, version, at_ms, id";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::model::Change;
    use watchfloor_protocol::Severity;

    #[test]
    fn one_incidents_trail_is_read_through_its_key_not_a_scan() {
        let plan = crate::store::query_plan(ONE_TRAIL, ("0", 0));
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX") && p.contains("incident_id=?")),
            "{plan:?}"
        );
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
        let now = Incident {
            id: "i1".into(),
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
        };
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

        assert!(
            incidents_at(&conn, 1000).unwrap().is_empty(),
            "not yet opened"
        );
        let at = |t| incidents_at(&conn, t).unwrap().remove(0);
        let i = at(1100);
        assert_eq!((i.state, i.count, i.assignee.clone()), (New, 1, None));
        let i = at(3500);
        assert_eq!((i.state, i.count), (Acknowledged, 2));
        assert_eq!(i.updated_by, "dana");
        let i = at(5000);
        assert_eq!((i.state, i.assignee.as_deref()), (Assigned, Some("bo")));
        assert_eq!(i.resolution, None);
        let i = at(10_000);
        assert_eq!((i.state, i.count), (Resolved, 3));
        assert_eq!(i.resolution.as_deref(), Some("false alarm"));
        assert_eq!(audit_until(&conn, Some("i1"), 4000).unwrap().len(), 3);
    }
}
