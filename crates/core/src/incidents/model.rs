//! The incident as every console and the history file hold it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;
use watchfloor_protocol::Severity;

/// Where an incident stands in its lifecycle: new -> acknowledged -> assigned -> resolved, and
/// back to new when reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum IncidentState {
    New,
    Acknowledged,
    Assigned,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::New => "new",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Assigned => "assigned",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "new" => IncidentState::New,
            "acknowledged" => IncidentState::Acknowledged,
            "assigned" => IncidentState::Assigned,
            "resolved" => IncidentState::Resolved,
            _ => return None,
        })
    }

    pub fn is_open(self) -> bool {
        self != IncidentState::Resolved
    }
}

/// The last change made to an incident: what the retained topic carries, and one audit row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Change {
    /// "opened", "acknowledged", "assigned", "resolved", "reopened", "note", "repeated",
    /// "escalated", "merged".
    pub action: String,
    /// The operator's note, the assignee, the resolution, or the merge target.
    pub detail: Option<String>,
}

/// One incident, as shown in the list and shared between consoles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Incident {
    /// Derived from what opened it ([`incident_id`]), so two consoles that see the same device
    /// event open the same incident.
    pub id: String,
    /// The device id, or `quarantine` for a quarantine flood.
    pub source: String,
    /// What happened: the device event's type, `offline`, `stale`, `quarantine_flood`.
    pub kind: String,
    #[ts(type = "\"critical\" | \"high\" | \"medium\" | \"low\" | \"info\"")]
    pub severity: Severity,
    /// One line for the list.
    pub title: String,
    pub state: IncidentState,
    pub assignee: Option<String>,
    pub resolution: Option<String>,
    /// How many times it happened while open (repeats bump this instead of opening another).
    pub count: u32,
    #[ts(type = "number")]
    pub first_seen_ms: i64,
    #[ts(type = "number")]
    pub last_seen_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Increases by one with every change, on whichever console made it.
    #[ts(type = "number")]
    pub version: u64,
    #[ts(type = "number")]
    pub updated_ms: i64,
    /// The operator (or `system`) who made the last change.
    pub updated_by: String,
    pub last_change: Change,
}

impl Incident {
    /// Orders by what a dispatcher must see first: open before resolved, then severity, then
    /// the oldest first (it has waited longest).
    pub fn triage_key(&self) -> (bool, Severity, i64) {
        (!self.state.is_open(), self.severity, self.first_seen_ms)
    }
}

/// What an operator can do to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "action", rename_all = "snake_case")]
#[ts(export)]
pub enum IncidentAction {
    Acknowledge,
    /// Assign to a named operator (acknowledges it too).
    Assign {
        to: String,
    },
    /// Close it; the note says how it ended.
    Resolve {
        note: String,
    },
    /// Open a resolved incident again, as new.
    Reopen,
    /// A free-text note; the state does not change.
    Note {
        text: String,
    },
}

/// What the operator saw of an incident when they acted on it. An action on an incident that
/// has changed in any of these since (another console assigned or resolved it, a repeat
/// escalated it) is refused, with what changed: a resolution note written for a high alarm must
/// not close the critical one it has become, and "assign to me" must not take over an incident
/// a colleague was given a moment before. Repeats that change none of these (the counter, the
/// last-seen time) do not refuse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SeenIncident {
    pub state: IncidentState,
    #[ts(type = "\"critical\" | \"high\" | \"medium\" | \"low\" | \"info\"")]
    pub severity: Severity,
    pub assignee: Option<String>,
}

impl SeenIncident {
    /// What of `now` differs from what was seen, in words; `None` when nothing does.
    pub fn changes_in(&self, now: &Incident) -> Option<String> {
        let mut changed = Vec::new();
        if now.state != self.state {
            changed.push(format!("it is {} now", now.state.as_str()));
        }
        if now.severity != self.severity {
            changed.push(format!(
                "its severity went from {} to {}",
                self.severity.as_str(),
                now.severity.as_str()
            ));
        }
        if now.assignee != self.assignee {
            changed.push(match &now.assignee {
                Some(who) => format!("it is assigned to {who}"),
                None => "it is no longer assigned".to_owned(),
            });
        }
        (!changed.is_empty()).then(|| {
            format!(
                "{} ({} by {})",
                changed.join(", "),
                now.last_change.action,
                now.updated_by
            )
        })
    }
}

/// One row of an incident's audit trail: who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditEntry {
    pub incident_id: String,
    #[ts(type = "number")]
    pub version: u64,
    #[ts(type = "number")]
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
    /// The state after the change.
    pub state: IncidentState,
}

impl AuditEntry {
    /// The audit row for an incident's last change.
    pub fn of(incident: &Incident) -> Self {
        Self {
            incident_id: incident.id.clone(),
            version: incident.version,
            at_ms: incident.updated_ms,
            actor: incident.updated_by.clone(),
            action: incident.last_change.action.clone(),
            detail: incident.last_change.detail.clone(),
            state: incident.state,
        }
    }
}

/// A stable id for the incident opened by `key` (the device event id, the silence it started
/// with...) of `kind` at `source`: the first 16 hex digits of their SHA-256. Every console
/// derives the same id from the same cause, so two consoles never open two incidents for one
/// device event, and the id is safe as an MQTT topic level whatever the device sent.
pub fn incident_id(source: &str, kind: &str, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [source, kind, key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_short_and_separate_their_parts() {
        let a = incident_id("v1", "panic", "e1");
        assert_eq!(a, incident_id("v1", "panic", "e1"));
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, incident_id("v1", "panic", "e2"));
        // Moving characters across either separator gives another id.
        assert_ne!(incident_id("v1p", "anic", "e1"), a, "source | kind");
        assert_ne!(incident_id("v1", "panice", "1"), a, "kind | key");
    }

    #[test]
    fn actions_use_the_documented_json() {
        let a: IncidentAction = serde_json::from_str(r#"{"action":"assign","to":"Dana"}"#).unwrap();
        assert_eq!(a, IncidentAction::Assign { to: "Dana".into() });
        assert!(serde_json::from_str::<IncidentAction>(r#"{"action":"delete"}"#).is_err());
    }
}
