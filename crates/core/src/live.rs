//! Live state: the latest known state of every device, owned by one task.
//!
//! [`LiveState`] is plain data with no clock and no I/O: callers pass the receive time in, and it
//! answers with what changed. Invariants:
//! - a device never moves backwards in time: a fix (or status) older than the one held is
//!   ignored for live state (history still stores it);
//! - a duplicate (same timestamp) changes nothing but last-seen;
//! - every device that changed since the last [`LiveState::take_changes`] is returned once, with
//!   its newest state, however many messages it sent in between;
//! - an online device silent for longer than `stale_after` is marked stale by
//!   [`LiveState::sweep_stale`] (and un-marked by its next message, unless that is older than
//!   what is held); so is one whose every fix and status for that long was older than what is
//!   held (its clock was set back: it reports, but what the map shows of it is not moving on),
//!   with `clock_behind` set, and only a message stamped at or after what is held un-marks
//!   that one (older events and duplicates neither start nor end such a run);
//! - each device keeps a trail of its recent fixes (at most `trail` old, at most
//!   [`MAX_TRAIL_POINTS`]) in device-time order, for the map's selected device.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use watchfloor_protocol::{DeviceId, DeviceKind, Fix, NativeMessage, Status};

use crate::groups::DeviceGroups;
use crate::settings::LiveSettings;
use crate::view::{DeviceCounts, DeviceView, TrailPoint};

/// Most fixes kept in one device's trail (10 minutes at 1 Hz).
pub const MAX_TRAIL_POINTS: usize = 600;

/// What applying a message did to live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The device was not known before this message.
    NewDevice,
    /// The device's state moved forward.
    Updated,
    /// The message is older than (or equal to) what is held; live state is unchanged apart
    /// from last-seen.
    Outdated,
}

/// Everything known about one device now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    pub fix: Option<Fix>,
    pub status: Option<Status>,
    /// Device timestamp of the status that last turned the device online: the start of its
    /// current session. A last will carries the timestamp of the connection it belongs to, so
    /// an offline status at or after this instant ends the session even though newer (periodic)
    /// statuses were seen in between.
    pub online_since_ms: Option<i64>,
    /// The window ([`OFFLINE_CAUSE_WINDOW_MS`]) of the will stamped on arrival before the
    /// latest one, and of the latest: a second outage in one window is an outage of its own.
    will_windows: (Option<i64>, Option<i64>),
    /// The time the history stored the last will that ended the device's session with
    /// ([`LiveState::note_session_end`]), until a status brings it back online: the status
    /// that starts its next session is stored after it.
    session_end_stored_ms: Option<i64>,
    /// Some of its messages come at QoS 1 (statuses, events, an OwnTracks phone's locations),
    /// which a broker holds back while the console's acknowledgements are held
    /// ([`LiveState::deliveries_held`]).
    speaks_at_qos1: bool,
    /// Its fixes come at QoS 1 (an OwnTracks phone's locations; native locations are
    /// subscribed at QoS 0): held back with the rest while acknowledgements are.
    fixes_at_qos1: bool,
    /// The newest time the device's own clock put on a status. A status stamped on arrival
    /// (a last will with no time) is not compared with it: that would pit the console's clock
    /// against the device's, and a device whose clock is behind would stay offline after its
    /// will until its clock caught up with the console's.
    device_status_ms: Option<i64>,
    /// Receiver clock of the last message of any kind (epoch ms); for a message the broker
    /// replayed from its retained store, the time the device put on it, at most its receipt
    /// ([`LiveState::apply_replayed`]).
    pub last_seen_ms: i64,
    /// Online, but silent for longer than the stale limit at the last sweep (or reporting only
    /// times older than what is held for that long: see `behind_since_ms`).
    pub stale: bool,
    /// Receiver clock of the first of an unbroken run of fixes and statuses all older than the
    /// ones held; `None` once one moves the device forward.
    pub behind_since_ms: Option<i64>,
    /// Stale because of such a run, not silence: the device's clock is behind its past.
    pub clock_behind: bool,
    /// Receiver clock when the fix held was heard (for a replayed one, the time it was said,
    /// at most its receipt, as for last-seen).
    fix_heard_ms: i64,
    /// Online and heard from, but its fix is older than the stale limit at the last sweep: a
    /// vehicle whose GPS lost its fix (a tunnel, a garage) while its tracker goes on sending
    /// statuses. It is not drawn moving at its last speed for as long as that lasts.
    pub fix_old: bool,
    /// Receiver clock when the console first heard of the device through a replay of the
    /// broker's retained message, until it speaks itself: its silence is counted from then,
    /// not from the (maybe hours old) time on the replay. A vehicle that sends only fixes,
    /// its retained status from the morning, would otherwise turn stale (and raise "has gone
    /// silent") at the start of every console, before its next fix a second later.
    replay_grace_from_ms: Option<i64>,
    /// Recent fixes, oldest first.
    trail: VecDeque<TrailFix>,
    /// The operator's groups this device is in (placed when it is first seen).
    pub groups: std::sync::Arc<[String]>,
    /// The fix's speed (and its heading, if it had none) were estimated from the device's
    /// earlier fixes: it sent none ([`estimate_motion`]).
    pub speed_estimated: bool,
}

impl DeviceState {
    /// Applies a status if it moves the device forward; see `online_since_ms` for last wills
    /// and `device_status_ms` for statuses stamped on arrival.
    fn apply_status(&mut self, incoming: &Status, replayed: bool) -> bool {
        let (held_ts, held_online) = match &self.status {
            Some(held) => (Some(held.ts_ms), held.online),
            None => (None, false),
        };
        let applies = if incoming.stamped_on_arrival && incoming.online {
            // Presence from a device whose clock cannot be read (a terminal not set): it says
            // "online now", whatever the clocks; but not as a replay of the broker's retained
            // copy (stamped on its replay, it would bring a device that went offline back).
            !replayed || held_ts.is_none()
        } else if incoming.stamped_on_arrival {
            // A will with no time of its own: the broker publishes it after every message of
            // the connection it ends, so it ends the session held whatever the clocks say
            // (and says nothing new of a device already offline).
            held_online || held_ts.is_none()
        } else {
            let ends_session = !incoming.online
                && held_online
                && self
                    .online_since_ms
                    .is_some_and(|since| incoming.ts_ms >= since);
            newer(self.device_status_ms, incoming.ts_ms) || ends_session
        };
        if !applies {
            return false;
        }
        if !incoming.stamped_on_arrival {
            self.device_status_ms = self.device_status_ms.max(Some(incoming.ts_ms));
        }
        if incoming.online && !held_online {
            self.online_since_ms = Some(incoming.ts_ms);
        }
        if incoming.online {
            self.session_end_stored_ms = None;
        }
        if incoming.stamped_on_arrival && !incoming.online {
            self.will_windows = (
                self.will_windows.1,
                Some(incoming.ts_ms.div_euclid(OFFLINE_CAUSE_WINDOW_MS)),
            );
        }
        // A last will is usually just `{"online": false}`: what the device said about itself
        // before (kind, name, simulated, last battery and signal) still describes it.
        let mut status = incoming.clone();
        if let Some(held) = &self.status {
            status.kind = status.kind.or(held.kind);
            status.simulated |= held.simulated;
            if status.name.is_none() {
                status.name.clone_from(&held.name);
            }
            status.battery = status.battery.or(held.battery);
            status.signal = status.signal.or(held.signal);
        }
        self.status = Some(status);
        true
    }

    /// The time the history stored the will that ended the device's last session with, while
    /// it has not come back online.
    pub fn session_end_stored_ms(&self) -> Option<i64> {
        self.session_end_stored_ms
    }

    /// The name the device gave itself, if any.
    pub fn name(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.name.as_deref())
    }

    /// Whether the device says it is simulated (`"simulated": true` in its status).
    pub fn simulated(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.simulated)
    }

    /// The name incidents give the device `id`: its own name (else `None`, its id), marked
    /// "(simulated)" for a simulated one, so an incident it raises (its title, its desktop
    /// alert, its row in a report) is never taken for a real device's.
    pub fn incident_name(&self, id: &DeviceId) -> Option<String> {
        match (self.name(), self.simulated()) {
            (name, true) => Some(format!("{} (simulated)", name.unwrap_or(id.as_str()))),
            (Some(name), false) => Some(name.to_owned()),
            (None, false) => None,
        }
    }

    /// The device's kind ("vehicle", "bodycam"...), if it said.
    pub fn kind(&self) -> Option<&'static str> {
        self.status
            .as_ref()
            .and_then(|s| s.kind)
            .map(DeviceKind::as_str)
    }

    /// The current fix as (lat, lon).
    pub fn position(&self) -> Option<(f64, f64)> {
        self.fix.as_ref().map(|f| (f.lat, f.lon))
    }

    /// Device time of the last thing it said (fix or status), else receipt time.
    pub fn last_device_ts(&self) -> i64 {
        let fix = self.fix.as_ref().map(|f| f.ts_ms);
        fix.max(self.status.as_ref().map(|s| s.ts_ms))
            .unwrap_or(self.last_seen_ms)
    }

    /// What tells the going offline that `status` reports from the device's others, the same
    /// on every console that heard the device: the status's own time, or for a last will with
    /// no time (stamped on arrival, by each console's own clock) the newest time the device's
    /// clock put on a fix or a status before it. A device that said nothing of its own between
    /// two such wills went offline once, as far as anyone can tell.
    pub fn offline_cause_ms(&self, status: &Status) -> i64 {
        if !status.stamped_on_arrival {
            return status.ts_ms;
        }
        // No time of the device's own known (a terminal whose clock is not set stamps nothing
        // usable): the 10 minutes the will arrived in, the same on consoles whose clocks
        // agree, but for a will arriving at the turn of one. (Each console's own arrival time
        // gave every console an incident of its own for one outage.)
        // A second outage in the same window (the terminal back and gone again within ten
        // minutes) is named by this console's arrival time instead: an incident of its own,
        // which the consoles then merge as two for one cause.
        let window = status.ts_ms.div_euclid(OFFLINE_CAUSE_WINDOW_MS);
        let named_by_window = if self.will_windows.0 == Some(window) {
            status.ts_ms
        } else {
            window * OFFLINE_CAUSE_WINDOW_MS
        };
        self.fix
            .as_ref()
            .map(|f| f.ts_ms)
            .max(self.device_status_ms)
            .unwrap_or(named_by_window)
    }

    /// Online per the latest status (the last will says offline). A device that has sent
    /// locations but never a status is shown online: it is evidently reporting.
    pub fn online(&self) -> bool {
        self.status.as_ref().is_none_or(|s| s.online)
    }
}

/// The latest state of every device, plus which devices changed since the last batch.
#[derive(Debug, Default)]
pub struct LiveState {
    devices: HashMap<DeviceId, DeviceState>,
    /// Devices changed since the last batch, with the receive time of the oldest message not
    /// yet shown (how long the device's update has waited for a batch).
    changed: HashMap<DeviceId, i64>,
    settings: LiveSettings,
    groups: DeviceGroups,
    /// Since when the console cannot hear (its link down, or its queue to the writer full),
    /// while it cannot.
    deaf_since: Option<i64>,
    /// The console's past outages, `(from, to)`, oldest first: a device's silence does not
    /// count the time the console could not hear it.
    outages: std::collections::VecDeque<(i64, i64)>,
    /// Since when the broker may be holding QoS 1 messages back (history writing paused:
    /// acknowledgements held), and when that ended ([`LiveState::deliveries_held`]).
    held: Option<(i64, Option<i64>)>,
    /// Devices forgotten since the last batch ([`LiveState::forget_silent`]).
    removed: Vec<DeviceId>,
}

/// The window a will with no device time of any kind behind it is placed in, to name its
/// going-offline incident the same on every console.
const OFFLINE_CAUSE_WINDOW_MS: i64 = 10 * 60_000;

/// Outages remembered: a week of them, at most this many.
const MAX_OUTAGES: usize = 10_000;
/// Outages closer than this are one ([`LiveState::link_up`]).
const OUTAGE_MERGE_MS: i64 = 1_000;
const OUTAGES_KEPT_MS: i64 = 7 * 24 * 3_600_000;

impl LiveState {
    pub fn new(settings: LiveSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Places every device in the operator's groups it matches, from now on.
    pub fn with_groups(mut self, groups: DeviceGroups) -> Self {
        self.groups = groups;
        self
    }

    /// Applies one decoded message received at `received_ms`.
    pub fn apply(&mut self, msg: &NativeMessage, received_ms: i64) -> Applied {
        self.apply_heard(msg, received_ms, false)
    }

    /// Applies a message the broker replayed from its retained store (at every subscription:
    /// each connect of the console): what the device said last, maybe days ago, not a sign
    /// that it is alive now. It moves the device's state on like any message when it is newer
    /// than what is held, but last-seen becomes the time the device put on it (at most its
    /// receipt) instead of the receipt, and it does not by itself make a stale device fresh:
    /// the next sweep judges that from last-seen. Before, every reconnect of the console made
    /// each device with a retained status "seen 0 s ago", and fresh, however long it had been
    /// silent.
    pub fn apply_replayed(&mut self, msg: &NativeMessage, received_ms: i64) -> Applied {
        self.apply_heard(msg, received_ms, true)
    }

    fn apply_heard(&mut self, msg: &NativeMessage, received_ms: i64, replayed: bool) -> Applied {
        let id = msg.device();
        let is_new = !self.devices.contains_key(id);
        let state = self
            .devices
            .entry(id.clone())
            .or_insert_with(|| DeviceState {
                groups: self.groups.groups_of(id.as_str()).into(),
                ..DeviceState::default()
            });
        if !replayed {
            state.replay_grace_from_ms = None;
        } else if is_new {
            state.replay_grace_from_ms = Some(received_ms);
        }
        state.last_seen_ms = state.last_seen_ms.max(match (replayed, said_at(msg)) {
            (false, _) => received_ms,
            (true, Some(said)) => said.min(received_ms),
            // No time of its own (a will stamped on arrival): nothing better than its receipt
            // for a device heard of first this way; nothing new for one already known.
            (true, None) if is_new => received_ms,
            (true, None) => state.last_seen_ms,
        });
        // What the message says of the device's clock: behind what is held (Some(true)),
        // moving on (Some(false)), or nothing (events, duplicates, wills with no time).
        let (moved, behind) = match msg {
            NativeMessage::Location { fix, .. } => {
                add_to_trail(&mut state.trail, fix, self.settings.trail);
                let held = state.fix.as_ref().map(|f| f.ts_ms);
                let moved = newer(held, fix.ts_ms);
                if moved {
                    let mut fix = fix.clone();
                    let estimate = fix
                        .speed
                        .is_none()
                        .then(|| estimate_motion(&state.trail, state.fix.as_ref(), &fix))
                        .flatten();
                    state.speed_estimated = estimate.is_some();
                    if let Some((speed, heading)) = estimate {
                        fix.speed = Some(speed);
                        fix.heading = fix.heading.or(heading);
                    }
                    state.fix = Some(fix);
                    state.fix_heard_ms = state.last_seen_ms;
                    state.fix_old = false;
                }
                let behind = held.is_some_and(|h| fix.ts_ms < h);
                (moved, (moved || behind).then_some(behind))
            }
            NativeMessage::Status { status, .. } => {
                let moved = state.apply_status(status, replayed);
                let behind = !moved
                    && !status.stamped_on_arrival
                    && state.device_status_ms.is_some_and(|h| status.ts_ms < h);
                (moved, (moved || behind).then_some(behind))
            }
            // Events do not change the device's drawn state yet; they do show it is alive,
            // and one stamped at or after what is held shows its clock is not behind.
            // An event stamped on arrival (its device time unusable) says nothing of the clock.
            NativeMessage::Event { event, .. } => {
                let held = state
                    .fix
                    .as_ref()
                    .map(|f| f.ts_ms)
                    .max(state.device_status_ms);
                (
                    false,
                    held.is_some_and(|h| !event.stamped_on_arrival && event.ts_ms >= h)
                        .then_some(false),
                )
            }
        };
        match behind {
            // A replay says when the device spoke, not that it speaks now: a state it moves
            // on shows the device's clock is not behind; whether the device is silent is the
            // sweep's to judge from last-seen.
            Some(false) if replayed => {
                state.behind_since_ms = None;
                state.clock_behind = false;
            }
            _ if replayed => {}
            Some(true) => {
                // Still saying nothing new: a stale mark stays until something moves it on.
                state.behind_since_ms.get_or_insert(received_ms);
            }
            Some(false) => {
                state.behind_since_ms = None;
                state.stale = false;
                state.clock_behind = false;
            }
            // Heard from: no longer silent, but a run of old times goes on.
            None if state.behind_since_ms.is_none() => state.stale = false,
            None => {}
        }
        // last-seen changed in every case, and the UI shows it, so the device is sent again.
        self.changed.entry(id.clone()).or_insert(received_ms);
        match (is_new, moved) {
            (true, _) => Applied::NewDevice,
            (false, true) => Applied::Updated,
            (false, false) => Applied::Outdated,
        }
    }

    /// The devices changed since the previous call, each once with its newest state.
    pub fn take_changes(&mut self) -> Vec<DeviceView> {
        self.take_changes_timed(|_| {})
    }

    /// Like [`Self::take_changes`], and calls `waited_since` with each device's oldest pending
    /// receive time (for the receipt-to-screen latency).
    pub fn take_changes_timed(&mut self, mut waited_since: impl FnMut(i64)) -> Vec<DeviceView> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .iter()
            .filter_map(|(id, since)| {
                waited_since(*since);
                self.devices.get(id).map(|s| view(id, s))
            })
            .collect()
    }

    /// Every device, for a fresh subscriber.
    pub fn snapshot(&self) -> Vec<DeviceView> {
        self.devices.iter().map(|(id, s)| view(id, s)).collect()
    }

    /// Whether the broker may be holding QoS 1 messages back: `Some(since)` while history
    /// writing is paused (acknowledgements are held, and a broker stops sending QoS 1 once its
    /// window of unacknowledged messages is full: Mosquitto's is 20), `None` once it writes
    /// again. A device some of whose messages come at QoS 1 (statuses, events, an OwnTracks
    /// phone's locations) may be speaking into the broker's queue (a parked vehicle sends only
    /// its QoS 1 heartbeats): it is not called silent while the hold lasts, nor for a stale
    /// limit after it while the broker's backlog arrives; one that truly died meanwhile is
    /// called silent then. A device heard at QoS 0 only (a tracker sending fixes: those still
    /// flow) is judged as ever.
    pub fn deliveries_held(&mut self, since: Option<i64>, now_ms: i64) {
        self.held = match (since, self.held) {
            (Some(_), Some((from, None))) => Some((from, None)),
            (Some(from), _) => Some((from.min(now_ms), None)),
            (None, Some((from, None))) => Some((from, Some(now_ms))),
            (None, held) => held,
        };
    }

    /// Marks online devices silent for longer than the stale limit (receiver clock `now_ms`),
    /// or reporting only older times for that long, as stale; returns those that turned stale
    /// now. Each one is sent in the next batch.
    pub fn sweep_stale(&mut self, now_ms: i64) -> Vec<DeviceId> {
        // A console cut off from its broker hears nobody: marking its devices stale (and
        // raising "has gone silent" for each, shared with every console at the reconnect)
        // would blame a thousand devices for its own link. After it, a device's silence does
        // not count the time the console was deaf (and only that: a link dropping every few
        // seconds must not keep every device fresh for ever).
        if self.deaf_since.is_some() {
            return Vec::new();
        }
        let limit = i64::try_from(self.settings.stale_after.as_millis()).unwrap_or(i64::MAX);
        let outages = &self.outages;
        // Newest first, and only those after `since`: a fresh device looks at the last few.
        let heard_for = |since: i64| {
            let deaf: i64 = outages
                .iter()
                .rev()
                .take_while(|&&(_, to)| to > since)
                .map(|&(from, to)| (to.min(now_ms) - from.max(since)).max(0))
                .sum();
            now_ms.saturating_sub(since).saturating_sub(deaf)
        };
        let over = |since: i64| heard_for(since) > limit;
        if let Some((_, Some(ended))) = self.held {
            if now_ms.saturating_sub(ended) >= limit {
                self.held = None;
            }
        }
        let held = self.held.is_some();
        let mut turned = Vec::new();
        for (id, state) in &mut self.devices {
            // The workstation's clock was set back (NTP, an operator): a last-seen time after
            // now would keep a silent device fresh for as long as the step. Its silence counts
            // from now instead, so it goes stale at most the limit after the step; the screens
            // get the new time (they showed "0 s ago" until the clock caught up).
            if state.last_seen_ms > now_ms {
                state.last_seen_ms = now_ms;
                self.changed.entry(id.clone()).or_insert(now_ms);
            }
            if let Some(since) = state.behind_since_ms.filter(|&since| since > now_ms) {
                state.behind_since_ms = Some(since.min(now_ms));
            }
            if let Some(from) = state.replay_grace_from_ms.filter(|&from| from > now_ms) {
                state.replay_grace_from_ms = Some(from.min(now_ms));
            }
            // Only an online device can be stale: an offline one's silence is not worked out.
            // One that speaks at QoS 1 keeps what it was while the broker may be holding its
            // reports back; one heard at QoS 0 only (fixes, which still come) is judged.
            let held_back = held && state.speaks_at_qos1;
            let silent = state.online()
                && (!held_back || state.stale)
                && over(
                    state
                        .last_seen_ms
                        .max(state.replay_grace_from_ms.unwrap_or(i64::MIN)),
                );
            let run_over = state.behind_since_ms.is_some_and(over);
            // A device stale for its silence that comes back reporting old times stays stale
            // (not fresh for a minute, then stale again); its clock is blamed only once the
            // run is as long as the limit (a backlog redelivered after a cut is shorter).
            let behind = run_over || (state.stale && state.behind_since_ms.is_some());
            let stale = state.online() && (silent || behind);
            let clock_behind = stale && !silent && run_over;
            // Counted like silence (outages left out, a clock set back cut to now, and kept as
            // it was while the broker may be holding the device's fixes back: a phone's QoS 1
            // locations; a native tracker's come at QoS 0 whatever its statuses do).
            state.fix_heard_ms = state.fix_heard_ms.min(now_ms);
            let fix_old = if held && state.fixes_at_qos1 {
                state.fix_old
            } else {
                state.online() && state.fix.is_some() && over(state.fix_heard_ms)
            };
            if stale && !state.stale {
                turned.push(id.clone());
            }
            if (stale, clock_behind, fix_old) != (state.stale, state.clock_behind, state.fix_old) {
                self.changed.entry(id.clone()).or_insert(now_ms);
            }
            state.stale = stale;
            state.clock_behind = clock_behind;
            state.fix_old = fix_old;
        }
        turned
    }

    /// The console's own link went down at `now_ms` (receiver clock): no device goes stale
    /// until it is back.
    pub fn link_down(&mut self, now_ms: i64) {
        self.deaf_since.get_or_insert(now_ms);
    }

    /// The link is back at `now_ms`: the outage is not counted in any device's silence (its
    /// retained status, replayed at the subscription, is no sign of life, so this is what
    /// gives each device back the time it could not be heard).
    pub fn link_up(&mut self, now_ms: i64) {
        let Some(from) = self.deaf_since.take() else {
            return;
        };
        if now_ms > from {
            // Outages less than a second apart (the writer's queue flapping full and not full,
            // a link that drops and comes back at once) are one: each sweep walks the list.
            match self.outages.back_mut() {
                Some(last) if from.saturating_sub(last.1) < OUTAGE_MERGE_MS => last.1 = now_ms,
                _ => self.outages.push_back((from, now_ms)),
            }
        }
        while self.outages.len() > MAX_OUTAGES
            || self
                .outages
                .front()
                .is_some_and(|&(_, to)| to < now_ms.saturating_sub(OUTAGES_KEPT_MS))
        {
            self.outages.pop_front();
        }
    }

    /// A device's recent fixes, oldest first (empty for an unknown device).
    pub fn trail(&self, id: &DeviceId) -> Vec<TrailPoint> {
        self.devices
            .get(id)
            .map(|s| s.trail.iter().map(TrailFix::point).collect())
            .unwrap_or_default()
    }

    /// Whether a message from `id` would add a device beyond `[live] max_devices`.
    pub fn is_beyond_limit(&self, id: &DeviceId) -> bool {
        self.devices.len() >= self.settings.max_devices && !self.devices.contains_key(id)
    }

    pub fn max_devices(&self) -> usize {
        self.settings.max_devices
    }

    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty() || !self.removed.is_empty()
    }

    /// Forgets the devices offline or stale whose last message is older than
    /// `[live] forget_after_days` (they stay in the history file): a console running for
    /// months beside a fleet whose phones come and go would otherwise fill `max_devices` with
    /// devices gone for good, and refuse new ones. Returns how many went; the next batch names
    /// them.
    pub fn forget_silent(&mut self, now_ms: i64) -> usize {
        let Some(after) = self.settings.forget_after else {
            return 0;
        };
        let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let before = self.devices.len();
        let removed = &mut self.removed;
        let changed = &mut self.changed;
        self.devices.retain(|id, s| {
            let gone = (!s.online() || s.stale) && now_ms.saturating_sub(s.last_seen_ms) > after;
            if gone {
                changed.remove(id);
                removed.push(id.clone());
            }
            !gone
        });
        before - self.devices.len()
    }

    /// The devices forgotten since the last call (for the next batch).
    pub fn take_removed(&mut self) -> Vec<DeviceId> {
        std::mem::take(&mut self.removed)
    }

    /// Notes that `msg` came at QoS 1 (replayed or not).
    pub fn heard_at_qos1(&mut self, msg: &NativeMessage) {
        if let Some(state) = self.devices.get_mut(msg.device()) {
            state.speaks_at_qos1 = true;
            state.fixes_at_qos1 |= matches!(msg, NativeMessage::Location { .. });
        }
    }

    /// Notes the time the history stored the will that ended `id`'s session with (see
    /// [`DeviceState::session_end_stored_ms`]).
    pub fn note_session_end(&mut self, id: &DeviceId, stored_ms: i64) {
        if let Some(state) = self.devices.get_mut(id) {
            state.session_end_stored_ms = Some(stored_ms);
        }
    }

    pub fn get(&self, id: &DeviceId) -> Option<&DeviceState> {
        self.devices.get(id)
    }

    pub fn counts(&self) -> DeviceCounts {
        DeviceCounts {
            total: u32::try_from(self.devices.len()).unwrap_or(u32::MAX),
            online: u32::try_from(self.devices.values().filter(|d| d.online()).count())
                .unwrap_or(u32::MAX),
            stale: u32::try_from(self.devices.values().filter(|d| d.stale).count())
                .unwrap_or(u32::MAX),
        }
    }
}

/// How far back an estimated speed looks: the newest earlier fix at least this much older (a
/// span, so that a position's jitter between two fixes a second apart is not read as speed).
pub(crate) const ESTIMATE_SPAN_MS: i64 = 10_000;
/// Fixes further apart than this say nothing about the speed now.
const ESTIMATE_MAX_GAP_MS: i64 = 10 * 60_000;
/// Less movement than this over the span is standing still (or the fix's accuracy, doubled,
/// when it says more).
const ESTIMATE_MIN_MOVE_M: f64 = 10.0;
/// Faster than this (360 km/h) between two fixes is a jump of the position (a GPS glitch, a fix
/// from a cell tower), not a speed: no estimate.
const ESTIMATE_MAX_SPEED_MS: f64 = 100.0;

/// Speed (m/s) and heading (degrees, `None` when standing still) for a fix that came without a
/// speed: from the newest point of the trail at least [`ESTIMATE_SPAN_MS`] before it, else the
/// fix held before it. `None` when there is no earlier point within [`ESTIMATE_MAX_GAP_MS`].
/// Without it a device that sends positions only (the simplest native message, OwnTracks with
/// no velocity) was drawn as stopped, with no heading arrow, while it drove.
fn estimate_motion(
    trail: &VecDeque<TrailFix>,
    held: Option<&Fix>,
    fix: &Fix,
) -> Option<(f64, Option<f64>)> {
    let span_start =
        trail.partition_point(|p| p.ts_ms <= fix.ts_ms.saturating_sub(ESTIMATE_SPAN_MS));
    let (ts_ms, lat, lon) = match span_start.checked_sub(1).and_then(|i| trail.get(i)) {
        Some(p) => (p.ts_ms, p.lat(), p.lon()),
        None => held.map(|h| (h.ts_ms, h.lat, h.lon))?,
    };
    motion_between(
        (ts_ms, lat, lon),
        (fix.ts_ms, fix.lat, fix.lon),
        fix.accuracy,
    )
}

/// Speed and heading from one point (device time, lat, lon) to a later one whose accuracy is
/// `accuracy_m`, as [`estimate_motion`] reads them; review uses it between the fixes around
/// an instant.
pub(crate) fn motion_between(
    (ts_ms, lat, lon): (i64, f64, f64),
    to: (i64, f64, f64),
    accuracy_m: Option<f64>,
) -> Option<(f64, Option<f64>)> {
    let gap_ms = to.0 - ts_ms;
    if !(1..=ESTIMATE_MAX_GAP_MS).contains(&gap_ms) {
        return None;
    }
    let metres = crate::geo::haversine_m(lat, lon, to.1, to.2);
    let noise = ESTIMATE_MIN_MOVE_M.max(2.0 * accuracy_m.unwrap_or(0.0));
    if metres < noise {
        return Some((0.0, None));
    }
    let speed = metres / (gap_ms as f64 / 1000.0);
    if speed > ESTIMATE_MAX_SPEED_MS {
        return None;
    }
    let heading = crate::geo::initial_bearing_deg(lat, lon, to.1, to.2);
    Some((speed, Some(heading)))
}

/// Inserts `fix` in device-time order (a late fix lands where it belongs; a duplicate is
/// skipped) and drops points older than `window` before the newest, or beyond the cap.
fn add_to_trail(trail: &mut VecDeque<TrailFix>, fix: &Fix, window: Duration) {
    if window.is_zero() {
        return;
    }
    let at = trail.partition_point(|p| p.ts_ms < fix.ts_ms);
    if trail.get(at).is_some_and(|p| p.ts_ms == fix.ts_ms) {
        return;
    }
    // Room as the trail grows, doubling as a VecDeque does, but never past the cap: doubling
    // alone took a full trail of 600 points to 1,024 places.
    if trail.len() == trail.capacity() && trail.len() < MAX_TRAIL_POINTS + 1 {
        let more = trail.len().max(4).min(MAX_TRAIL_POINTS + 1 - trail.len());
        trail.reserve_exact(more);
    }
    trail.insert(at, TrailFix::new(fix));
    let newest = trail.back().map_or(fix.ts_ms, |p| p.ts_ms);
    let oldest_kept = newest.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
    while trail
        .front()
        .is_some_and(|p| p.ts_ms < oldest_kept || trail.len() > MAX_TRAIL_POINTS)
    {
        trail.pop_front();
    }
}

/// The time the device put on `msg`, if it put one (a message stamped on arrival has none).
fn said_at(msg: &NativeMessage) -> Option<i64> {
    match msg {
        NativeMessage::Location { fix, .. } => Some(fix.ts_ms),
        NativeMessage::Status { status, .. } => {
            (!status.stamped_on_arrival).then_some(status.ts_ms)
        }
        NativeMessage::Event { event, .. } => (!event.stamped_on_arrival).then_some(event.ts_ms),
    }
}

/// One point of a trail as kept: 24 bytes, not the 40 of a [`TrailPoint`] (with every device's
/// trail full, 600 points each, 10,000 devices held 193 MiB more that way, measured with the
/// buffer's cap below: docs/BENCHMARKS.md). Microdegrees are
/// 0.11 m; a speed in f32 is exact to far below a GPS's own error.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TrailFix {
    ts_ms: i64,
    lat_e6: i32,
    lon_e6: i32,
    speed: Option<f32>,
}

impl TrailFix {
    fn new(fix: &Fix) -> Self {
        // Latitude and longitude are checked to ±90 and ±180 by every decoder: in range.
        let e6 = |deg: f64| (deg * 1e6).round() as i32;
        Self {
            ts_ms: fix.ts_ms,
            lat_e6: e6(fix.lat),
            lon_e6: e6(fix.lon),
            speed: fix.speed.map(|s| s as f32),
        }
    }

    fn lat(&self) -> f64 {
        f64::from(self.lat_e6) / 1e6
    }

    fn lon(&self) -> f64 {
        f64::from(self.lon_e6) / 1e6
    }

    fn point(&self) -> TrailPoint {
        TrailPoint {
            ts_ms: self.ts_ms,
            lat: self.lat(),
            lon: self.lon(),
            speed: self.speed.map(f64::from),
        }
    }
}

/// True when `incoming` is strictly newer than what is held (or nothing is held).
fn newer(held: Option<i64>, incoming: i64) -> bool {
    held.is_none_or(|held| incoming > held)
}

fn view(id: &DeviceId, s: &DeviceState) -> DeviceView {
    let status = s.status.as_ref();
    DeviceView {
        id: id.to_string(),
        name: s.name().map(str::to_owned),
        kind: s.kind(),
        simulated: status.is_some_and(|st| st.simulated),
        online: s.online(),
        stale: s.stale,
        clock_behind: s.clock_behind,
        fix_old: s.fix_old,
        lat: s.fix.as_ref().map(|f| f.lat),
        lon: s.fix.as_ref().map(|f| f.lon),
        heading: s.fix.as_ref().and_then(|f| f.heading),
        speed: s.fix.as_ref().and_then(|f| f.speed),
        speed_estimated: s.speed_estimated,
        battery: status.and_then(|st| st.battery),
        signal: status.and_then(|st| st.signal),
        fix_ts_ms: s.fix.as_ref().map(|f| f.ts_ms),
        last_seen_ms: s.last_seen_ms,
        groups: std::sync::Arc::clone(&s.groups),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    fn loc(dev: &str, ts_ms: i64, lat: f64) -> NativeMessage {
        NativeMessage::Location {
            device: id(dev),
            fix: Fix {
                ts_ms,
                lat,
                lon: 4.0,
                alt: None,
                heading: None,
                speed: None,
                accuracy: None,
            },
        }
    }

    fn status(dev: &str, ts_ms: i64, online: bool) -> NativeMessage {
        NativeMessage::Status {
            device: id(dev),
            status: Status {
                ts_ms,
                online,
                battery: None,
                signal: None,
                kind: None,
                name: None,
                simulated: false,
                stamped_on_arrival: false,
            },
        }
    }

    fn event(dev: &str, ts_ms: i64) -> NativeMessage {
        NativeMessage::Event {
            device: id(dev),
            event: watchfloor_protocol::DeviceEvent {
                event_id: format!("e-{ts_ms}"),
                ts_ms,
                event_type: "button".into(),
                severity: watchfloor_protocol::Severity::Low,
                message: None,
                position: None,
                stamped_on_arrival: false,
            },
        }
    }

    /// A last will with no time, stamped with the receiver's clock `arrival_ms`.
    fn will(dev: &str, arrival_ms: i64) -> NativeMessage {
        let NativeMessage::Status { device, status } = status(dev, arrival_ms, false) else {
            unreachable!()
        };
        NativeMessage::Status {
            device,
            status: Status {
                stamped_on_arrival: true,
                ..status
            },
        }
    }

    #[test]
    fn a_device_that_sends_no_speed_moves_at_the_pace_of_its_fixes() {
        let mut live = LiveState::new(LiveSettings::default());
        let view = |live: &LiveState| view(&id("van"), live.get(&id("van")).unwrap());
        // North by 0.001 degrees (111 m) every 10 s: 11.1 m/s, heading 0.
        live.apply(&loc("van", 0, 51.000), 0);
        assert_eq!(view(&live).speed, None, "one fix says nothing of speed");
        live.apply(&loc("van", 10_000, 51.001), 10_000);
        let v = view(&live);
        assert!((v.speed.unwrap() - 11.12).abs() < 0.05, "{v:?}");
        assert!(
            v.heading.unwrap() < 0.5 || v.heading.unwrap() > 359.5,
            "{v:?}"
        );
        assert!(v.speed_estimated);
        // A fix a second later is measured from the newest fix at least 10 s before it (123 m
        // in 11 s), not over the last second (12 m in 1 s).
        live.apply(&loc("van", 11_000, 51.00111), 11_000);
        let v = view(&live);
        assert!((v.speed.unwrap() - 11.22).abs() < 0.05, "{v:?}");

        // Standing still with a few metres of jitter: no speed, no heading.
        live.apply(&loc("parked", 0, 52.0), 0);
        live.apply(&loc("parked", 1_000, 52.00004), 1_000); // 4.4 m
        let parked = super::view(&id("parked"), live.get(&id("parked")).unwrap());
        assert_eq!((parked.speed, parked.heading), (Some(0.0), None));

        // A jump of 20 km in 10 s (a glitch, a cell-tower fix) is not a speed.
        live.apply(&loc("glitch", 0, 51.0), 0);
        live.apply(&loc("glitch", 10_000, 51.18), 10_000);
        let glitch = super::view(&id("glitch"), live.get(&id("glitch")).unwrap());
        assert_eq!((glitch.speed, glitch.speed_estimated), (None, false));

        // A fix after more than ten minutes of silence says nothing of the speed now.
        live.apply(&loc("van", 11_000 + 11 * 60_000, 51.1), 700_000);
        assert_eq!(view(&live).speed, None);
        assert!(!view(&live).speed_estimated);
    }

    #[test]
    fn a_speed_the_device_sent_is_kept() {
        let mut live = LiveState::new(LiveSettings::default());
        live.apply(&loc("car", 0, 51.0), 0);
        let NativeMessage::Location { device, mut fix } = loc("car", 10_000, 51.001) else {
            unreachable!()
        };
        fix.speed = Some(3.0);
        live.apply(&NativeMessage::Location { device, fix }, 10_000);
        let v = view(&id("car"), live.get(&id("car")).unwrap());
        assert_eq!(
            (v.speed, v.heading, v.speed_estimated),
            (Some(3.0), None, false)
        );
    }

    #[test]
    fn two_consoles_tell_the_same_going_offline_from_a_will_with_no_time() {
        // Both heard the terminal come online at 1,000 and report at 4,000 (its clock), and
        // got its will at their own times, a second apart.
        let cause = |arrival_ms: i64| {
            let mut live = LiveState::default();
            live.apply(&status("t", 1000, true), 1010);
            live.apply(&loc("t", 4000, 52.0), 4010);
            let NativeMessage::Status { status: w, .. } = will("t", arrival_ms) else {
                unreachable!()
            };
            live.apply(&will("t", arrival_ms), arrival_ms);
            assert!(!live.get(&id("t")).unwrap().online());
            live.get(&id("t")).unwrap().offline_cause_ms(&w)
        };
        assert_eq!(cause(9_000), 4000);
        assert_eq!(cause(10_000), 4000);
        // An offline status with a time of its own is told by that time.
        let mut live = LiveState::default();
        live.apply(&status("t", 1000, true), 1010);
        let NativeMessage::Status { status: off, .. } = status("t", 6000, false) else {
            unreachable!()
        };
        live.apply(&status("t", 6000, false), 6010);
        assert_eq!(live.get(&id("t")).unwrap().offline_cause_ms(&off), 6000);
    }

    #[test]
    fn an_older_fix_never_moves_a_device_back() {
        let mut live = LiveState::default();
        assert_eq!(live.apply(&loc("a", 2000, 52.0), 10), Applied::NewDevice);
        assert_eq!(
            live.apply(&loc("a", 1000, 51.0), 11),
            Applied::Outdated,
            "out of order"
        );
        assert_eq!(
            live.apply(&loc("a", 2000, 50.0), 12),
            Applied::Outdated,
            "duplicate timestamp"
        );
        let state = live.get(&id("a")).unwrap();
        assert_eq!(
            state.fix.as_ref().unwrap().lat,
            52.0,
            "the newest fix is kept"
        );
        assert_eq!(state.last_seen_ms, 12, "last seen still advances");
        assert_eq!(live.apply(&loc("a", 3000, 53.0), 13), Applied::Updated);
    }

    #[test]
    fn a_late_retained_online_status_does_not_undo_a_newer_last_will() {
        let mut live = LiveState::default();
        live.apply(&status("a", 5000, false), 1);
        live.apply(&status("a", 4000, true), 2);
        assert!(
            !live.get(&id("a")).unwrap().online(),
            "the newer offline status wins"
        );
        assert_eq!(
            live.counts(),
            DeviceCounts {
                total: 1,
                online: 0,
                stale: 0
            }
        );
    }

    #[test]
    fn a_last_will_stamped_at_connect_time_still_ends_the_session() {
        let mut live = LiveState::default();
        live.apply(&status("a", 1000, true), 1); // connect: the will also carries ts 1000
        live.apply(&status("a", 31_000, true), 2); // periodic status
        assert_eq!(
            live.apply(&status("a", 1000, false), 3),
            Applied::Updated,
            "the will of this session applies"
        );
        assert!(!live.get(&id("a")).unwrap().online());
        live.apply(&status("a", 60_000, true), 4); // reconnect
        assert_eq!(
            live.apply(&status("a", 1000, false), 5),
            Applied::Outdated,
            "a will from the previous session must not end the new one"
        );
        assert!(live.get(&id("a")).unwrap().online());
    }

    #[test]
    fn a_will_stamped_on_arrival_is_ordered_by_arrival_not_against_the_devices_clock() {
        let mut live = LiveState::default();
        // A terminal whose clock is an hour behind the console's.
        live.apply(&status("slow", 1_000, true), 1);
        live.apply(&will("slow", 3_601_000), 2);
        assert!(!live.get(&id("slow")).unwrap().online());
        assert_eq!(
            live.apply(&status("slow", 1_000, true), 3),
            Applied::Outdated,
            "a copy of the status it sent before the will (a redelivery, a retained replay) \
             does not bring it back"
        );
        assert_eq!(
            live.apply(&status("slow", 61_000, true), 4),
            Applied::Updated,
            "back online with its next heartbeat, though its clock is behind the will's stamp"
        );
        assert!(live.get(&id("slow")).unwrap().online());

        // One whose clock is four minutes ahead: its will still ends the session.
        live.apply(&status("fast", 240_000, true), 5);
        assert_eq!(live.apply(&will("fast", 10_000), 6), Applied::Updated);
        assert!(!live.get(&id("fast")).unwrap().online());
        assert_eq!(
            live.apply(&will("fast", 11_000), 7),
            Applied::Outdated,
            "a second will changes nothing"
        );
        assert_eq!(
            live.apply(&status("fast", 250_000, true), 8),
            Applied::Updated
        );
        assert!(live.get(&id("fast")).unwrap().online());
    }

    #[test]
    fn changes_are_coalesced_per_device() {
        let mut live = LiveState::default();
        for ts in 1..=10 {
            live.apply(&loc("a", ts, ts as f64), ts);
        }
        live.apply(&loc("b", 1, 1.0), 1);
        let mut batch = live.take_changes();
        batch.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(batch.len(), 2, "ten updates of one device become one entry");
        assert_eq!(batch[0].lat, Some(10.0), "with the newest position");
        assert!(
            live.take_changes().is_empty(),
            "changes are handed out once"
        );
        assert_eq!(
            live.snapshot().len(),
            2,
            "the snapshot still holds every device"
        );
    }

    #[test]
    fn a_device_is_placed_in_its_groups_when_first_seen_and_its_view_says_so() {
        let table = [
            ("North".to_string(), vec!["van-1*".to_string()]),
            ("Vans".to_string(), vec!["van-*".to_string()]),
        ]
        .into_iter()
        .collect();
        let groups = DeviceGroups::from_config(&table).unwrap();
        let mut live = LiveState::new(LiveSettings::default()).with_groups(groups);
        live.apply(&loc("van-12", 1, 1.0), 1);
        live.apply(&loc("van-2", 1, 1.0), 1);
        live.apply(&loc("car-1", 1, 1.0), 1);
        live.apply(&loc("van-12", 2, 2.0), 2);
        let mut batch = live.take_changes();
        batch.sort_by(|x, y| x.id.cmp(&y.id));
        let placed: Vec<(&str, Vec<String>)> = batch
            .iter()
            .map(|d| (d.id.as_str(), d.groups.to_vec()))
            .collect();
        assert_eq!(
            placed,
            [
                ("car-1", vec![]),
                ("van-12", vec!["North".to_string(), "Vans".to_string()]),
                ("van-2", vec!["Vans".to_string()]),
            ]
        );
    }

    fn live_with(stale_after_s: u64, trail_s: u64) -> LiveState {
        LiveState::new(LiveSettings {
            stale_after: Duration::from_secs(stale_after_s),
            trail: Duration::from_secs(trail_s),
            ..LiveSettings::default()
        })
    }

    #[test]
    fn a_clock_set_back_delays_staleness_by_the_limit_not_by_the_step() {
        let mut live = live_with(60, 600);
        let hour = 3_600_000;
        // Last heard at 10:00 by the workstation's clock; NTP then sets it back to 09:00.
        live.apply(&status("a", 1_000, true), 10 * hour);
        live.take_changes();
        assert!(live.sweep_stale(9 * hour).is_empty(), "just heard from");
        let batch = live.take_changes();
        assert_eq!(batch.len(), 1, "the screens get the corrected last-seen");
        assert_eq!(batch[0].last_seen_ms, 9 * hour);
        assert!(live.sweep_stale(9 * hour + 59_000).is_empty());
        assert_eq!(
            live.sweep_stale(9 * hour + 61_000),
            vec![id("a")],
            "stale after its silence, not an hour later"
        );
    }

    #[test]
    fn a_device_that_reports_without_fixes_for_longer_than_the_limit_has_an_old_fix() {
        let mut live = live_with(60, 600);
        let view_of = |live: &mut LiveState| {
            live.take_changes()
                .into_iter()
                .find(|d| d.id == "van")
                .expect("the van changed")
        };
        live.apply(&status("van", 0, true), 0);
        live.apply(&loc("van", 0, 52.0), 0);
        live.sweep_stale(30_000);
        assert!(!view_of(&mut live).fix_old);
        // Into a garage: no fix, a status every 30 s.
        for t in (30_000..=120_000).step_by(30_000) {
            live.apply(&status("van", t, true), t);
        }
        live.sweep_stale(120_000);
        let v = view_of(&mut live);
        assert!(v.fix_old && !v.stale, "heard from, its fix two minutes old");
        // The next fix is news again.
        live.apply(&loc("van", 125_000, 52.1), 125_000);
        assert!(!view_of(&mut live).fix_old);
        live.sweep_stale(126_000);
        // Time the console could not hear is not counted against the fix.
        live.link_down(130_000);
        live.link_up(400_000);
        live.apply(&status("van", 401_000, true), 401_000);
        live.sweep_stale(401_000);
        assert!(
            !view_of(&mut live).fix_old,
            "6 s heard since the fix, the outage aside"
        );
    }

    #[test]
    fn devices_gone_for_longer_than_the_limit_are_forgotten_and_named_once() {
        let day = 86_400_000;
        let mut live = LiveState::new(LiveSettings {
            forget_after: Some(Duration::from_secs(7 * 86_400)),
            ..LiveSettings::default()
        });
        live.apply(&status("gone", 0, false), 0); // offline since day 0
        live.apply(&status("silent", 0, true), 0); // online, then silent (stale)
        live.apply(&status("here", 8 * day, true), 8 * day);
        live.sweep_stale(8 * day);
        live.take_changes();
        assert_eq!(live.forget_silent(8 * day), 2);
        let mut gone: Vec<String> = live.take_removed().iter().map(|d| d.to_string()).collect();
        gone.sort();
        assert_eq!(gone, ["gone", "silent"]);
        assert!(live.take_removed().is_empty(), "named once");
        assert!(live.get(&id("here")).is_some() && live.counts().total == 1);
        // Heard again, it is a device like any other.
        live.apply(&status("gone", 9 * day, true), 9 * day);
        assert_eq!(live.counts().total, 2);
        // Never, when so set.
        let mut kept = live_with(60, 600);
        kept.settings.forget_after = None;
        kept.apply(&status("old", 0, false), 0);
        assert_eq!(kept.forget_silent(365 * day), 0);
    }

    #[test]
    fn presence_stamped_on_arrival_turns_a_device_back_online() {
        let mut live = live_with(60, 600);
        let stamped = |online, ts| match status("t1", ts, online) {
            NativeMessage::Status { device, mut status } => {
                status.stamped_on_arrival = true;
                NativeMessage::Status { device, status }
            }
            _ => unreachable!(),
        };
        // A terminal whose clock is not set: heartbeats and its will are all stamped on arrival.
        live.apply(&stamped(true, 1_000), 1_000);
        live.apply(&stamped(false, 2_000), 2_000);
        assert!(!live.get(&id("t1")).unwrap().online());
        live.apply(&stamped(true, 3_000), 3_000);
        assert!(live.get(&id("t1")).unwrap().online(), "back online");
        // A replay of a retained one does not bring it back.
        live.apply(&stamped(false, 4_000), 4_000);
        live.apply_replayed(&stamped(true, 5_000), 5_000);
        assert!(
            !live.get(&id("t1")).unwrap().online(),
            "a replay is no sign of life"
        );
        // With no time of its own known, its going offline is named by the 10 minutes the
        // will came in: the same on two consoles that heard it 2 s apart.
        let will = |ts| match stamped(false, ts) {
            NativeMessage::Status { status, .. } => status,
            _ => unreachable!(),
        };
        let mut other = live_with(60, 600);
        other.apply(&stamped(true, 1_700_000), 1_700_000);
        live.apply(&stamped(true, 1_700_000), 1_700_000);
        live.apply(&stamped(false, 1_801_000), 1_801_000);
        other.apply(&stamped(false, 1_803_000), 1_803_000);
        let first = live
            .get(&id("t1"))
            .unwrap()
            .offline_cause_ms(&will(1_801_000));
        assert_eq!(
            first,
            other
                .get(&id("t1"))
                .unwrap()
                .offline_cause_ms(&will(1_803_000))
        );
        // Back, and gone again within the window: another outage, another name.
        live.apply(&stamped(true, 1_900_000), 1_900_000);
        live.apply(&stamped(false, 2_000_000), 2_000_000);
        let second = live
            .get(&id("t1"))
            .unwrap()
            .offline_cause_ms(&will(2_000_000));
        assert_ne!(second, first);
    }

    #[test]
    fn incidents_name_a_simulated_device_so() {
        let mut live = live_with(60, 600);
        let named = |name: Option<&str>, simulated, ts| NativeMessage::Status {
            device: id("u3"),
            status: Status {
                name: name.map(str::to_owned),
                simulated,
                ..match status("u3", ts, true) {
                    NativeMessage::Status { status, .. } => status,
                    _ => unreachable!(),
                }
            },
        };
        live.apply(&named(Some("Unit 3"), false, 1_000), 1_000);
        let state = live.get(&id("u3")).unwrap();
        assert_eq!(state.incident_name(&id("u3")).as_deref(), Some("Unit 3"));
        live.apply(&named(Some("Unit 3"), true, 2_000), 2_000);
        let state = live.get(&id("u3")).unwrap();
        assert_eq!(
            state.incident_name(&id("u3")).as_deref(),
            Some("Unit 3 (simulated)")
        );
        let mut unnamed = live_with(60, 600);
        unnamed.apply(&named(None, true, 1_000), 1_000);
        assert_eq!(
            unnamed
                .get(&id("u3"))
                .unwrap()
                .incident_name(&id("u3"))
                .as_deref(),
            Some("u3 (simulated)")
        );
    }

    #[test]
    fn while_the_broker_holds_qos1_back_only_devices_heard_at_qos0_only_are_judged() {
        let mut live = live_with(10, 600);
        // "q" speaks at QoS 1 (statuses); "v" too, and sends fixes, the last one before the
        // stall (it parks: heartbeats only from then); "t" sends QoS 0 fixes only.
        live.apply(&status("q", 1_000, true), 1_000);
        live.heard_at_qos1(&status("q", 1_000, true));
        live.apply(&status("v", 500, true), 500);
        live.heard_at_qos1(&status("v", 500, true));
        live.apply(&loc("v", 1_000, 50.0), 1_000);
        live.apply(&loc("t", 1_000, 51.0), 1_000);
        // History writing pauses at 2 s (noticed then): the broker holds QoS 1 back; fixes
        // still come from "t" until it dies at 3 s.
        live.deliveries_held(Some(2_000), 2_000);
        live.apply(&loc("t", 3_000, 51.1), 3_000);
        // "t" is called silent 10 s later, as ever; "q" and the parked "v" are not.
        assert_eq!(live.sweep_stale(13_001), vec![id("t")]);
        assert!(live.sweep_stale(60_000).is_empty());
        // Writing resumes at 60 s: a stale limit for the broker's backlog to arrive...
        live.deliveries_held(None, 60_000);
        assert!(live.sweep_stale(69_999).is_empty());
        // ...and those still unheard after it are silent.
        let mut late = live.sweep_stale(70_000);
        late.sort();
        assert_eq!(late, vec![id("q"), id("v")]);
    }

    #[test]
    fn while_the_broker_holds_qos1_back_a_phone_keeps_its_fix_as_it_was() {
        let mut live = live_with(10, 600);
        // A phone's locations come at QoS 1; a native tracker's statuses do, its fixes not.
        live.apply(&status("p", 1_000, true), 1_000);
        live.apply(&loc("p", 1_000, 50.0), 1_000);
        live.heard_at_qos1(&loc("p", 1_000, 50.0));
        live.apply(&status("t", 1_000, true), 1_000);
        live.heard_at_qos1(&status("t", 1_000, true));
        live.apply(&loc("t", 1_000, 51.0), 1_000);
        live.deliveries_held(Some(2_000), 2_000);
        // The tracker goes on with statuses only; the phone is not heard (held back).
        live.apply(&status("t", 20_000, true), 20_000);
        live.sweep_stale(20_000);
        let fix_old = |live: &LiveState, dev: &str| live.get(&id(dev)).unwrap().fix_old;
        assert!(fix_old(&live, "t"), "heard from, its fix 19 s old");
        assert!(
            !fix_old(&live, "p"),
            "its fixes may be held back by the broker"
        );
    }

    #[test]
    fn outages_a_moment_apart_are_one() {
        let mut live = live_with(60, 600);
        live.apply(&status("a", 1_000, true), 1_000);
        // A queue flapping full and not full: deaf for 200 ms at a time, 300 ms apart.
        for k in 0..100 {
            live.link_down(10_000 + k * 300);
            live.link_up(10_200 + k * 300);
        }
        assert_eq!(live.outages.len(), 1, "{:?}", live.outages.front());
        assert_eq!(live.outages[0], (10_000, 10_200 + 99 * 300));
    }

    #[test]
    fn no_device_goes_stale_while_the_console_itself_is_cut_off() {
        let mut live = live_with(60, 600);
        live.apply(&status("a", 1_000, true), 1_000);
        live.take_changes();
        // The console's link drops at 30 s and comes back at 10 minutes.
        live.link_down(30_000);
        assert!(
            live.sweep_stale(600_000).is_empty(),
            "nobody is heard: no blame"
        );
        assert!(live.take_changes().is_empty() && live.counts().stale == 0);
        live.link_up(600_000);
        // 29 s heard before the outage, so 31 s after it.
        assert!(live.sweep_stale(631_000).is_empty());
        assert_eq!(live.sweep_stale(631_001), vec![id("a")]);
        // Listening all along, it would have gone stale at 61 s.
        let mut always = live_with(60, 600);
        always.apply(&status("a", 1_000, true), 1_000);
        assert_eq!(always.sweep_stale(61_001), vec![id("a")]);
    }

    #[test]
    fn a_link_that_keeps_dropping_does_not_keep_devices_fresh() {
        let mut live = live_with(60, 600);
        live.apply(&status("a", 0, true), 0);
        // A second's outage every 10 s: 7 s of deafness in the first 70 s.
        for k in 0..7 {
            live.link_down(k * 10_000 + 5_000);
            live.link_up(k * 10_000 + 6_000);
        }
        assert!(live.sweep_stale(67_000).is_empty(), "60 s heard");
        assert_eq!(live.sweep_stale(67_001), vec![id("a")]);
    }

    #[test]
    fn a_silent_online_device_turns_stale_once_and_recovers_with_its_next_message() {
        let mut live = live_with(60, 600);
        live.apply(&status("a", 1_000, true), 1_000);
        live.apply(&status("b", 1_000, false), 1_000);
        live.take_changes();

        assert_eq!(
            live.sweep_stale(60_000).len(),
            0,
            "not yet: 59 s of silence"
        );
        assert_eq!(
            live.sweep_stale(61_001),
            vec![id("a")],
            "only the online device turns stale"
        );
        let batch = live.take_changes();
        assert_eq!(batch.len(), 1);
        assert!(batch[0].stale && batch[0].id == "a");
        assert_eq!(live.counts().stale, 1);
        assert_eq!(
            live.sweep_stale(70_000).len(),
            0,
            "reported once, not at every sweep"
        );
        assert!(live.take_changes().is_empty());

        live.apply(&loc("a", 70_000, 1.0), 70_000);
        assert!(!live.take_changes()[0].stale);
        assert_eq!(live.counts().stale, 0);
    }

    #[test]
    fn a_retained_replay_at_a_reconnect_does_not_make_a_silent_device_fresh() {
        let mut live = live_with(60, 600);
        // Online at 1 s, its status retained by the broker; then silent.
        live.apply(&status("a", 1_000, true), 1_000);
        assert_eq!(live.sweep_stale(100_000), vec![id("a")]);
        live.take_changes();
        // The console reconnects at 200 s and subscribes again: the broker replays the
        // retained status.
        assert_eq!(
            live.apply_replayed(&status("a", 1_000, true), 200_000),
            Applied::Outdated
        );
        let a = live.get(&id("a")).unwrap();
        assert_eq!(
            a.last_seen_ms, 1_000,
            "last heard from at 1 s, not at 200 s"
        );
        assert!(a.stale, "still silent since 1 s");
        assert!(
            live.sweep_stale(200_500).is_empty(),
            "no second turn to stale"
        );
        assert!(live.get(&id("a")).unwrap().stale);
        // Its next message, live, makes it fresh at once.
        live.apply(&status("a", 201_000, true), 201_000);
        assert!(!live.get(&id("a")).unwrap().stale);
    }

    #[test]
    fn a_retained_status_first_heard_shows_its_time_and_is_judged_from_the_start() {
        let mut live = live_with(60, 600);
        let day = 86_400_000;
        // The console starts on day 3; a device's retained status says online on day 1 (it
        // died without its will reaching the broker, or it sends only fixes since).
        assert_eq!(
            live.apply_replayed(&status("gone", day, true), 3 * day),
            Applied::NewDevice
        );
        assert_eq!(
            live.get(&id("gone")).unwrap().last_seen_ms,
            day,
            "last seen day 1"
        );
        assert!(
            live.sweep_stale(3 * day + 1_000).is_empty(),
            "not stale before it had the stale limit to speak (a fix a second later)"
        );
        // One that sends fixes speaks a second later, and is fresh from then on.
        live.apply_replayed(&status("fixes-only", day, true), 3 * day);
        live.apply(&loc("fixes-only", 3 * day + 1_000, 1.0), 3 * day + 1_000);
        assert_eq!(
            live.sweep_stale(3 * day + 61_000),
            vec![id("gone")],
            "the silent one stale after the limit from the start"
        );
        assert!(!live.get(&id("fixes-only")).unwrap().stale);
        // A retained status newer than what is held (sent while the console was cut off)
        // moves the device on, and counts from its own time.
        live.apply_replayed(&status("gone", 3 * day + 50_000, true), 3 * day + 70_000);
        assert_eq!(
            live.get(&id("gone")).unwrap().last_seen_ms,
            3 * day + 50_000
        );
        assert!(
            !live.sweep_stale(3 * day + 71_000).contains(&id("gone")),
            "fresh: said 21 s ago"
        );
        assert!(!live.get(&id("gone")).unwrap().stale);
        // A time ahead of the receipt (a device clock ahead) counts as the receipt.
        live.apply_replayed(&status("ahead", 3 * day + 90_000, true), 3 * day + 80_000);
        assert_eq!(
            live.get(&id("ahead")).unwrap().last_seen_ms,
            3 * day + 80_000
        );
        // A retained will with no time of its own says nothing of when for a known device.
        let before = live.get(&id("gone")).unwrap().last_seen_ms;
        live.apply_replayed(&will("gone", 4 * day), 4 * day);
        let gone = live.get(&id("gone")).unwrap();
        assert!(!gone.online());
        assert_eq!(gone.last_seen_ms, before);
    }

    #[test]
    fn a_device_whose_clock_went_back_turns_stale_although_it_reports() {
        let mut live = live_with(60, 600);
        // A day of fixes, then its clock is reset to an hour earlier: every report from then
        // on is older than the fix held, which the map would show for ever as fresh.
        live.apply(&loc("a", 86_400_000, 1.0), 1_000);
        live.apply(&status("a", 86_400_000, true), 1_000);
        // Events (which say nothing of its clock) come in between and change none of that.
        for s in 0..=70 {
            let received = 2_000 + s * 1_000;
            live.apply(&loc("a", 82_800_000 + s * 1_000, 2.0), received);
            live.apply(&event("a", 82_800_000 + s * 1_000), received);
            live.apply(&status("a", 82_800_000 + s * 1_000, true), received);
            live.sweep_stale(received);
        }
        let a = live.get(&id("a")).unwrap();
        assert_eq!(a.last_seen_ms, 72_000, "it reports");
        assert!(
            a.stale && a.clock_behind,
            "61 s of reports all older than its fix"
        );
        let shown = live.take_changes();
        assert!(shown.iter().any(|d| d.stale && d.clock_behind));

        // An event stamped on arrival (its own time unusable) is no proof of a good clock,
        // although its stamp is after everything held.
        let NativeMessage::Event { device, mut event } = event("a", 0) else {
            unreachable!()
        };
        event.ts_ms = 90_000_000;
        event.stamped_on_arrival = true;
        live.apply(&NativeMessage::Event { device, event }, 72_500);
        let a = live.get(&id("a")).unwrap();
        assert!(a.stale && a.clock_behind, "still blamed on its clock");

        // A late fix alone (a redelivery, a short backlog) does not mark anything.
        live.apply(&loc("b", 10_000, 1.0), 1_000);
        live.apply(&loc("b", 5_000, 1.0), 2_000);
        live.apply(&loc("b", 11_000, 1.0), 3_000);
        assert!(!live.sweep_stale(62_000).contains(&id("b")));
        assert!(live.get(&id("b")).unwrap().behind_since_ms.is_none());

        // The first report that moves it forward clears both marks.
        live.apply(&loc("a", 86_500_000, 3.0), 73_000);
        let a = live.get(&id("a")).unwrap();
        assert!(!a.stale && !a.clock_behind && a.behind_since_ms.is_none());
    }

    #[test]
    fn a_silent_device_that_comes_back_with_its_clock_behind_stays_stale() {
        let mut live = live_with(60, 600);
        live.apply(&loc("a", 86_400_000, 1.0), 1_000);
        live.apply(&status("a", 86_400_000, true), 1_000);
        assert_eq!(live.sweep_stale(62_000), vec![id("a")], "silent for 61 s");
        live.take_changes();

        // Back, but every report is older than what is held: it does not flicker to fresh
        // and back; it stays stale, and its clock is blamed once the run is as long as the
        // limit (not sooner: a backlog redelivered after a cut is shorter). The sweep that
        // finds so sends it again by itself.
        let mut blamed_at = None;
        for s in 0..70 {
            let received = 63_000 + s * 1_000;
            live.apply(&loc("a", 82_800_000 + s * 1_000, 2.0), received);
            live.apply(&event("a", 82_800_000 + s * 1_000), received);
            live.take_changes();
            assert!(live.sweep_stale(received).is_empty(), "not stale anew");
            let a = live.get(&id("a")).unwrap();
            assert!(a.stale, "still stale at {received}");
            if a.clock_behind && blamed_at.is_none() {
                blamed_at = Some(received);
                let shown = live.take_changes();
                assert!(shown.iter().any(|d| d.id == "a" && d.clock_behind));
            }
        }
        assert_eq!(blamed_at, Some(124_000), "61 s after the run began");

        // An event alone from a device stale only for its silence ends the silence.
        live.apply(&loc("b", 1_000, 1.0), 1_000);
        live.sweep_stale(62_000);
        assert!(live.get(&id("b")).unwrap().stale);
        live.apply(&event("b", 63_000), 63_000);
        assert!(!live.get(&id("b")).unwrap().stale);
    }

    #[test]
    fn a_late_fix_followed_by_current_events_blames_no_clock() {
        let mut live = live_with(60, 600);
        live.apply(&loc("a", 10_000, 1.0), 1_000);
        live.apply(&loc("a", 5_000, 1.0), 2_000); // a redelivered copy: a run begins
        for s in 3..=80 {
            live.apply(&event("a", 10_000 + s * 1_000), s * 1_000);
            live.sweep_stale(s * 1_000);
        }
        let a = live.get(&id("a")).unwrap();
        assert!(!a.stale && !a.clock_behind && a.behind_since_ms.is_none());
    }

    #[test]
    fn a_trail_point_keeps_its_place_to_the_microdegree() {
        let fix = Fix {
            ts_ms: 5,
            lat: -33.868_819_7,
            lon: 151.209_295_5,
            alt: None,
            heading: None,
            speed: Some(12.34),
            accuracy: None,
        };
        let p = TrailFix::new(&fix).point();
        assert!(
            (p.lat - fix.lat).abs() <= 5e-7 && (p.lon - fix.lon).abs() <= 5e-7,
            "{p:?}"
        );
        assert!((p.speed.unwrap() - 12.34).abs() < 1e-5);
        for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0)] {
            let edge = TrailFix::new(&Fix { lat, lon, ..fix }).point();
            assert_eq!((edge.lat, edge.lon), (lat, lon));
        }
    }

    #[test]
    fn the_trail_is_in_device_time_order_without_duplicates_and_bounded() {
        let mut live = live_with(60, 10);
        for ts in [1_000, 3_000, 2_000, 3_000, 4_000] {
            live.apply(&loc("a", ts, ts as f64), ts);
        }
        let ts: Vec<i64> = live.trail(&id("a")).iter().map(|p| p.ts_ms).collect();
        assert_eq!(
            ts,
            [1_000, 2_000, 3_000, 4_000],
            "late fix placed, duplicate skipped"
        );

        live.apply(&loc("a", 12_500, 0.0), 12_500);
        let ts: Vec<i64> = live.trail(&id("a")).iter().map(|p| p.ts_ms).collect();
        assert_eq!(
            ts,
            [3_000, 4_000, 12_500],
            "points older than 10 s before the newest go"
        );

        for ts in 0..(MAX_TRAIL_POINTS as i64 + 50) {
            live.apply(&loc("b", ts, 0.0), ts);
        }
        assert_eq!(live.trail(&id("b")).len(), MAX_TRAIL_POINTS);
        // A full trail holds its points and little more: 24 bytes each, not a doubled
        // buffer of 40-byte points.
        assert_eq!(std::mem::size_of::<TrailFix>(), 24);
        let kept = &live.get(&id("b")).unwrap().trail;
        assert!(
            kept.capacity() <= MAX_TRAIL_POINTS + 1,
            "{}",
            kept.capacity()
        );
        assert!(live.trail(&id("nobody")).is_empty());

        let mut off = live_with(60, 0);
        off.apply(&loc("a", 1, 0.0), 1);
        assert!(
            off.trail(&id("a")).is_empty(),
            "trail_minutes = 0 keeps none"
        );
    }
}
