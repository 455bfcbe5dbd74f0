//! Which happenings open an incident, and with what severity: device events at or above a
//! configured severity (face terminals' block-list matches and stranger captures among them),
//! devices of chosen kinds going offline or silent, and floods of quarantined messages.

use watchfloor_protocol::{DeviceEvent, DeviceId, Severity};

use super::model::incident_id;

/// What the rules see fit to raise; the book turns it into a new incident or a repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub source: String,
    pub kind: String,
    /// What makes this occurrence itself (the device event id, the silence's start...): with
    /// source and kind it gives the incident id when it opens one.
    pub key: String,
    pub severity: Severity,
    pub title: String,
    /// When it happened (device time when the device said, else receipt time).
    pub at_ms: i64,
    pub position: Option<(f64, f64)>,
}

impl Trigger {
    /// The id of the incident this trigger opens if none is open for its source and kind.
    pub fn incident_id(&self) -> String {
        incident_id(&self.source, &self.kind, &self.key)
    }
}

/// The kind of the incident a device going offline opens.
pub const OFFLINE_KIND: &str = "offline";
/// The kind of the incident a device going stale opens.
pub const STALE_KIND: &str = "stale";
/// The kind of the incident a minute of many quarantined messages opens.
pub const FLOOD_KIND: &str = "quarantine_flood";
/// The kind of the incident that counts a source's triggers beyond its limit
/// ([`super::book::MAX_OPEN_KINDS_PER_SOURCE`]).
pub const OVERFLOW_KIND: &str = "too_many_kinds";
/// The kinds the console raises itself (one incident each per source at most): never counted
/// on the overflow incident, and a device event typed like one is kept apart as
/// `event_{type}`.
pub const CONSOLE_KINDS: [&str; 4] = [OFFLINE_KIND, STALE_KIND, FLOOD_KIND, OVERFLOW_KIND];

/// The configured rules (`[incidents]` in the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRules {
    /// Device events this severe or more open incidents.
    pub min_event_severity: Severity,
    /// Device kinds whose going offline opens an incident ("vehicle", "bodycam"...).
    pub offline_kinds: Vec<String>,
    /// Device kinds whose falling silent (stale) opens an incident.
    pub stale_kinds: Vec<String>,
    /// Quarantined messages within one minute that make a flood; 0 turns the rule off.
    pub quarantine_flood_per_min: u32,
}

impl Default for IncidentRules {
    fn default() -> Self {
        Self {
            min_event_severity: Severity::High,
            offline_kinds: ["vehicle", "bodycam", "terminal"]
                .map(String::from)
                .to_vec(),
            stale_kinds: ["vehicle", "bodycam"].map(String::from).to_vec(),
            quarantine_flood_per_min: 100,
        }
    }
}

/// The name shown for a device: its own name, else its id.
fn label<'a>(device: &'a DeviceId, name: Option<&'a str>) -> &'a str {
    name.unwrap_or(device.as_str())
}

impl IncidentRules {
    /// A device event, if it is severe enough.
    pub fn on_event(
        &self,
        device: &DeviceId,
        name: Option<&str>,
        event: &DeviceEvent,
    ) -> Option<Trigger> {
        // Severity orders most urgent first.
        if event.severity > self.min_event_severity {
            return None;
        }
        let who = label(device, name);
        let what = event.event_type.replace('_', " ");
        let title = match &event.message {
            Some(m) => format!("{who}: {what}: {m}"),
            None => format!("{who}: {what}"),
        };
        // An event type named like one of the console's own kinds ("offline", say) is kept
        // apart from them: it neither lands on the console's incident of that kind nor
        // escapes the per-device limit on kinds that they are spared.
        let kind = if CONSOLE_KINDS.contains(&event.event_type.as_str()) {
            format!("event_{}", event.event_type)
        } else {
            event.event_type.clone()
        };
        Some(Trigger {
            source: device.to_string(),
            kind,
            key: event.event_id.clone(),
            severity: event.severity,
            title,
            at_ms: event.ts_ms,
            position: event.position,
        })
    }

    /// A device of `kind` went offline at `ts_ms`. `cause_ms` tells this going offline from
    /// others, the same on every console: the offline status's own time, or for a last will
    /// with no time of its own (stamped on arrival, by each console's clock) the newest time
    /// the device put on anything before it.
    pub fn on_offline(
        &self,
        device: &DeviceId,
        name: Option<&str>,
        kind: Option<&str>,
        (ts_ms, cause_ms): (i64, i64),
        position: Option<(f64, f64)>,
    ) -> Option<Trigger> {
        let kind = kind?;
        self.offline_kinds
            .iter()
            .any(|k| k == kind)
            .then(|| Trigger {
                source: device.to_string(),
                kind: OFFLINE_KIND.into(),
                key: cause_ms.to_string(),
                severity: Severity::High,
                title: format!("{} ({kind}) went offline", label(device, name)),
                at_ms: ts_ms,
                position,
            })
    }

    /// An online device of `kind` fell silent, or (`clock_behind`) reports only times older
    /// than what it reported before; `last_ts_ms` is the device time of the last thing it said that was
    /// taken (the same on every console, so they derive the same incident).
    #[allow(clippy::too_many_arguments)]
    pub fn on_stale(
        &self,
        device: &DeviceId,
        name: Option<&str>,
        kind: Option<&str>,
        last_ts_ms: i64,
        now_ms: i64,
        position: Option<(f64, f64)>,
        clock_behind: bool,
    ) -> Option<Trigger> {
        let kind = kind?;
        let what = if clock_behind {
            "reports only times older than its last report (was its clock set back?)"
        } else {
            "has gone silent"
        };
        self.stale_kinds.iter().any(|k| k == kind).then(|| Trigger {
            source: device.to_string(),
            kind: STALE_KIND.into(),
            key: last_ts_ms.to_string(),
            severity: Severity::Medium,
            title: format!("{} ({kind}) {what}", label(device, name)),
            at_ms: now_ms,
            position,
        })
    }
}

/// Counts quarantined messages per wall-clock minute and raises one trigger per minute that
/// reaches the threshold.
#[derive(Debug, Default)]
pub struct FloodWatch {
    minute: i64,
    count: u32,
    raised: bool,
}

impl FloodWatch {
    pub fn on_quarantined(&mut self, rules: &IncidentRules, now_ms: i64) -> Option<Trigger> {
        let limit = rules.quarantine_flood_per_min;
        let minute = now_ms.div_euclid(60_000);
        if minute != self.minute {
            *self = Self {
                minute,
                count: 0,
                raised: false,
            };
        }
        self.count = self.count.saturating_add(1);
        if limit == 0 || self.raised || self.count < limit {
            return None;
        }
        self.raised = true;
        Some(Trigger {
            source: "quarantine".into(),
            kind: FLOOD_KIND.into(),
            key: minute.to_string(),
            severity: Severity::Medium,
            title: format!("{limit} or more malformed messages within a minute (see Quarantine)"),
            at_ms: now_ms,
            position: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: Severity) -> DeviceEvent {
        DeviceEvent {
            event_id: "e1".into(),
            ts_ms: 5,
            event_type: "panic_button".into(),
            severity,
            message: Some("pressed".into()),
            position: Some((1.0, 2.0)),
            stamped_on_arrival: false,
        }
    }

    #[test]
    fn events_open_incidents_from_the_configured_severity_up() {
        let rules = IncidentRules::default(); // high and critical
        let dev = DeviceId::parse("v1").unwrap();
        let t = rules
            .on_event(&dev, Some("Van 1"), &event(Severity::Critical))
            .unwrap();
        assert_eq!(t.title, "Van 1: panic button: pressed");
        assert_eq!((t.kind.as_str(), t.key.as_str()), ("panic_button", "e1"));
        assert!(rules.on_event(&dev, None, &event(Severity::High)).is_some());
        assert!(rules
            .on_event(&dev, None, &event(Severity::Medium))
            .is_none());
        let named_like_ours = DeviceEvent {
            event_type: OFFLINE_KIND.into(),
            ..event(Severity::High)
        };
        let t = rules.on_event(&dev, None, &named_like_ours).unwrap();
        assert_eq!(t.kind, "event_offline");
    }

    #[test]
    fn offline_and_stale_follow_the_configured_kinds() {
        let rules = IncidentRules::default();
        let dev = DeviceId::parse("s1").unwrap();
        assert!(rules
            .on_offline(&dev, None, Some("vehicle"), (9, 9), None)
            .is_some());
        assert!(rules
            .on_offline(&dev, None, Some("sensor"), (9, 9), None)
            .is_none());
        assert!(rules.on_offline(&dev, None, None, (9, 9), None).is_none());
        let t = rules
            .on_stale(&dev, None, Some("bodycam"), 7, 100, None, false)
            .unwrap();
        assert_eq!((t.key.as_str(), t.severity), ("7", Severity::Medium));
        assert!(t.title.ends_with("has gone silent"), "{}", t.title);
        let behind = rules
            .on_stale(&dev, None, Some("bodycam"), 7, 100, None, true)
            .unwrap();
        assert!(
            behind.title.contains("older than its last report"),
            "{}",
            behind.title
        );
        assert!(rules
            .on_stale(&dev, None, Some("phone"), 7, 100, None, false)
            .is_none());
    }

    #[test]
    fn a_flood_raises_once_per_minute_at_the_threshold() {
        let rules = IncidentRules {
            quarantine_flood_per_min: 3,
            ..IncidentRules::default()
        };
        let mut watch = FloodWatch::default();
        let raised: Vec<bool> = (0..6)
            .map(|i| watch.on_quarantined(&rules, 60_000 + i).is_some())
            .collect();
        assert_eq!(raised, [false, false, true, false, false, false]);
        // The next minute counts afresh: its third raises again.
        let raised: Vec<bool> = (0..4)
            .map(|i| watch.on_quarantined(&rules, 120_000 + i).is_some())
            .collect();
        assert_eq!(raised, [false, false, true, false]);
        let off = IncidentRules {
            quarantine_flood_per_min: 0,
            ..IncidentRules::default()
        };
        let mut watch = FloodWatch::default();
        assert!((0..500).all(|i| watch.on_quarantined(&off, i).is_none()));
    }
}
