//! The incidents this console knows, in memory: every open one and those resolved recently.
//!
//! Three things change the book: a [`Trigger`] from the rules (opens an incident, or bumps the
//! open one of the same source and kind: one open incident per cause, as ThingsBoard does),
//! an operator's [`IncidentAction`], and another console's change received from the shared
//! topic ([`IncidentBook::merge`]). Each change increments the incident's version and is queued
//! as a [`BookChange`] for the history writer, the shared topic and the screens.
//!
//! **Conflicts.** A received incident replaces ours when its version is higher. At an equal
//! version (two consoles changed the same incident at once) a change that leaves it open wins
//! over one that closes it, then an operator's change over the console's own (a repeat), then
//! the later change (`updated_ms`, then operator name, then the content), so every console
//! settles on the same state; the losing change stays in the audit trail of the console that
//! made it. A repeat that lost so is counted again on top of the winner, as the next version:
//! the acknowledgement stays and the count is not lost. A change that won its version after
//! this console had made later versions on the loser (a note, a repeat) is made again on top
//! of what it holds ([`IncidentBook::restore_lost_level`], while it remembers that version): a
//! repeat counted on a note does not undo an acknowledgement made at the same time. Two open
//! incidents for one cause (two
//! consoles opened them from different events before hearing of each other) are merged: the one
//! opened first stays, the other is resolved as "merged" into it.

use std::collections::{HashMap, HashSet, VecDeque};

use super::model::{AuditEntry, Change, Incident, IncidentAction, IncidentState, SeenIncident};
use super::rules::{Trigger, CONSOLE_KINDS, OVERFLOW_KIND};
use super::shared::MAX_VERSION;

/// Longest note, resolution or assignee name accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Resolved incidents stay in the list (and in memory) this long, then only in history.
pub const KEEP_RESOLVED_MS: i64 = 24 * 3600 * 1000;
/// The actor of changes no operator made.
pub const SYSTEM: &str = "system";
/// Incidents of different kinds one source may have open at once. A trigger of a further kind
/// is counted on one [`OVERFLOW_KIND`] incident of that source instead of opening its own: a
/// device sending made-up event types cannot fill the list (or the console's memory), and
/// nothing it raised goes uncounted. The console's own kinds ([`CONSOLE_KINDS`]) always open
/// their incident: a device that went offline says so however many kinds it has open.
pub const MAX_OPEN_KINDS_PER_SOURCE: usize = 16;

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no incident {0}")]
    NotFound(String),
    #[error("the incident is {state}; it cannot be {action}")]
    Transition {
        state: &'static str,
        action: &'static str,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {MAX_TEXT_CHARS} characters")]
    TooLong(&'static str),
    /// The incident's version is at [`MAX_VERSION`] (only a forged version from another console
    /// gets there): a further change could not win on the other consoles.
    #[error("the incident has reached its last version and takes no more changes")]
    VersionLimit,
    /// The incident changed since the operator saw it ([`SeenIncident`]).
    #[error("the incident changed since you saw it: {0}. Nothing was done; look again")]
    Changed(String),
}

impl ActionError {
    /// Stable, machine-readable.
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::NotFound(_) => "not_found",
            ActionError::Transition { .. } => "invalid_transition",
            ActionError::Empty(_) => "empty_text",
            ActionError::TooLong(_) => "text_too_long",
            ActionError::VersionLimit => "version_limit",
            ActionError::Changed(_) => "incident_changed",
        }
    }
}

/// One change to store, publish and show.
#[derive(Debug, Clone, PartialEq)]
pub struct BookChange {
    pub incident: Incident,
    /// The audit row, when the change is one (a repeat only moves the counter).
    pub audit: Option<AuditEntry>,
    /// False for changes that came from the shared topic (they are already there).
    pub publish: bool,
}

#[derive(Debug, Default)]
pub struct IncidentBook {
    incidents: HashMap<String, Incident>,
    /// (source, kind) -> the id of its open incident.
    open_by_cause: HashMap<(String, String), String>,
    /// source -> how many kinds it has open (the keys of `open_by_cause` it is in).
    open_kinds: HashMap<String, usize>,
    /// (source, kind) -> the keys of its latest triggers counted here, newest last: a trigger
    /// delivered again (a QoS 1 redelivery after a reconnect) is not counted twice.
    counted: HashMap<(String, String), VecDeque<String>>,
    /// Incidents forgotten here (resolved, then pruned) -> (their last version, when), kept
    /// [`KEEP_FORGOTTEN_MS`]: a console that was away republishes the versions it held, from
    /// before their resolution, and they must not open them again.
    forgotten: HashMap<String, (u64, i64)>,
    /// The note this console last published on an incident (its operator's, or one it made
    /// again), until the broker sends it back. The broker sends a console the messages of a
    /// topic in the order it took them, so another console's newer version that comes first
    /// was made without the note: the note is made again on top of it (`note_on_top`).
    unechoed: HashMap<String, Incident>,
    /// The versions this console held of an incident before the one it holds now, oldest
    /// first, one per version up to it (at most [`LEVELS_KEPT`], for [`KEEP_LEVELS_MS`]): what
    /// its own later versions were built on, for [`IncidentBook::restore_lost_level`].
    below: HashMap<String, Levels>,
    /// This console's clock at the last change taken or made (for [`Levels::touched_ms`]).
    clock_ms: i64,
    changes: Vec<BookChange>,
    #[cfg(test)]
    test_max_held: Option<usize>,
}

/// How long the book remembers the incidents it forgot (see `IncidentBook::forgotten`).
pub const KEEP_FORGOTTEN_MS: i64 = 30 * 24 * 3600 * 1000;
/// Most forgotten incidents remembered (the newest kept).
pub const MAX_FORGOTTEN: usize = 200_000;
/// Most incidents held. Incidents a console opens are bounded by its devices and their kinds;
/// the bound is for those other consoles publish (a broken or hostile one could publish
/// millions): beyond it, a new one is refused.
pub const MAX_HELD_INCIDENTS: usize = 200_000;

/// Trigger keys remembered per cause. Redelivered messages are the ones not yet acknowledged,
/// whose acknowledgement waits for the history writer's commit: a few seconds of one device's
/// events at most.
const COUNTED_KEYS_PER_CAUSE: usize = 16;

impl IncidentBook {
    /// How many causes of `source` have an incident open.
    fn open_kinds_of(&self, source: &str) -> usize {
        self.open_kinds.get(source).copied().unwrap_or(0)
    }
}

fn cause(i: &Incident) -> (String, String) {
    (i.source.clone(), i.kind.clone())
}

fn text(value: &str, what: &'static str) -> Result<String, ActionError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ActionError::Empty(what));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(ActionError::TooLong(what));
    }
    Ok(value.to_owned())
}

/// How far past the version held another console's copy may be: ten million changes (a
/// repeat a second for four months) made while this console was away.
pub const MAX_VERSION_STEP: u64 = 10_000_000;
/// The highest version a copy of an incident this console never held may have: a repeat a
/// second for thirty years.
pub const MAX_NEW_VERSION: u64 = 1_000_000_000;

/// The version after `v`, at most [`MAX_VERSION`], the highest every console accepts (a version
/// past it would be quarantined by all of them, ours included). An incident at the cap (only a
/// forged version gets there) takes no more changes here: one at the same version would not
/// surely win on the other consoles, and they would part.
fn next_version(v: u64) -> u64 {
    v.saturating_add(1).min(MAX_VERSION)
}

/// Which of two versions of an incident every console keeps: the higher version. At an equal
/// version (two consoles changed the same one at once): one that leaves it open over one that
/// closes it (an event counted while an operator resolved keeps it open, as an event after the
/// resolution would have opened a new one; an acknowledgement made while another operator
/// resolved keeps it open for a second look), then an operator's over the console's own (a
/// repeat counted by another console must not undo an acknowledgement), then the later change,
/// then the operator's name, then the higher count, then a digest of the whole copy
/// ([`wins_a_tie`]). A total order, so every console settles on the same version
/// whatever order they hear them in.
///
/// A note loses to any other change of the same version (and is then made again on top of the
/// winner, see [`note_again`]): a note changes nothing else, yet taken as the winner it undid
/// a resolution made at the same time (the note's state was open) or an acknowledgement.
fn wins(candidate: &Incident, held: &Incident) -> bool {
    match candidate.version.cmp(&held.version) {
        std::cmp::Ordering::Equal => wins_a_tie(candidate, held),
        order => order.is_gt(),
    }
}

/// [`wins`] between two changes made at one version (or, for [`IncidentBook::restore_lost_level`],
/// made without each other at different ones): the rest of its order, the digest taken only
/// when all the rest is equal.
fn wins_a_tie(candidate: &Incident, held: &Incident) -> bool {
    fn key(i: &Incident) -> (bool, bool, bool, i64, &str, u32) {
        (
            i.last_change.action != NOTE,
            i.state.is_open(),
            i.updated_by != SYSTEM,
            i.updated_ms,
            i.updated_by.as_str(),
            i.count,
        )
    }
    match key(candidate).cmp(&key(held)) {
        std::cmp::Ordering::Equal => content_digest(candidate) > content_digest(held),
        order => order.is_gt(),
    }
}

/// A digest of a whole version, for the last tie-break of [`wins`]: the same on every console
/// (serde_json writes the fields in their declared order).
fn content_digest(i: &Incident) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(i).unwrap_or_default();
    let mut content = [0u8; 16];
    content.copy_from_slice(&Sha256::digest(&json)[..16]);
    content
}

/// Whether `a` and `b` are one change: one version, or one made again at another version (its
/// author, time and what it did are kept; a note made again takes the later time of the two
/// versions it joins, so notes are one by author and text).
fn is_change(a: &Incident, b: &Incident) -> bool {
    a.updated_by == b.updated_by
        && a.last_change == b.last_change
        && (a.updated_ms == b.updated_ms || a.last_change.action == NOTE)
}

/// The versions held of one incident below the one held now (see `IncidentBook::below`).
#[derive(Debug, Default)]
struct Levels {
    versions: VecDeque<Incident>,
    /// Whether this console made each of `versions` (then it was built on the one below it;
    /// a version taken from another console may have been built on another at that level). A
    /// level replaced by the winner there keeps its mark (see `restore_lost_level`).
    made_here: VecDeque<bool>,
    /// Whether this console made the version held now.
    top_made_here: bool,
    /// This console's clock when the last was added: kept [`KEEP_LEVELS_MS`] from it (not
    /// from the versions' own times: a change made again keeps its first time).
    touched_ms: i64,
}

impl Levels {
    /// `held` goes below, `next` (made here or not) is held now.
    fn push(&mut self, held: &Incident, next_made_here: bool, now_ms: i64) {
        if self.versions.len() == LEVELS_KEPT {
            self.versions.pop_front();
            self.made_here.pop_front();
        }
        self.versions.push_back(held.clone());
        self.made_here.push_back(self.top_made_here);
        self.top_made_here = next_made_here;
        self.touched_ms = now_ms;
    }
}

/// Versions remembered below the one held, per incident: far more than the changes two
/// consoles make to one incident within a round trip.
const LEVELS_KEPT: usize = 16;
/// Most incidents whose versions below the one held are remembered (each up to
/// [`LEVELS_KEPT`] copies): 16,000 copies at most beside the 200,000 incidents held, for the
/// incidents changed within [`KEEP_LEVELS_MS`], far more than a control room works at once.
const MAX_LEVELLED: usize = 1_000;
/// How long the versions below the one held are remembered after its last change.
const KEEP_LEVELS_MS: i64 = 10 * 60 * 1000;

/// The changes that set an incident's state (its state, assignee and resolution), by anyone.
fn sets_state(c: &Change) -> bool {
    matches!(
        c.action.as_str(),
        "opened" | "acknowledged" | "assigned" | "resolved" | "reopened" | "merged"
    )
}

/// The operator changes made again on top of later versions built without them
/// ([`IncidentBook::restore_lost_level`]).
fn restorable(i: &Incident) -> bool {
    i.updated_by != SYSTEM
        && matches!(
            i.last_change.action.as_str(),
            "acknowledged" | "assigned" | "resolved" | "reopened"
        )
}

/// `held`, a repeat this console counted, lost to `winner`, an operator's change made at the
/// same time on another console: the repeat again, on top of the winner (the count, the last
/// time seen and a worse severity it brought), or `None` when the winner has them already.
fn repeat_again(held: &Incident, winner: &Incident, now_ms: i64) -> Option<Incident> {
    let was_repeat = held.updated_by == SYSTEM && counted_a_repeat(&held.last_change);
    if !was_repeat
        || winner.updated_by == SYSTEM
        || !winner.state.is_open()
        || held.version != winner.version
        || winner.version >= MAX_VERSION
    {
        return None;
    }
    let adds = held.count > winner.count
        || held.last_seen_ms > winner.last_seen_ms
        || held.severity < winner.severity;
    adds.then(|| {
        let mut again = winner.clone();
        take_counts(&mut again, held);
        again.version = next_version(winner.version);
        again.updated_ms = now_ms;
        again.updated_by = SYSTEM.into();
        again.last_change = held.last_change.clone();
        again
    })
}

/// What `other` knew beyond `into` of its repeats, taken into it: the higher count and last time
/// seen, the worse severity (a repeat made again, a merge, a change restored).
fn take_counts(into: &mut Incident, other: &Incident) {
    into.count = into.count.max(other.count);
    into.last_seen_ms = into.last_seen_ms.max(other.last_seen_ms);
    into.severity = into.severity.min(other.severity);
}

/// Whether `c` is the console counting a repeat (worse or not).
fn counted_a_repeat(c: &Change) -> bool {
    matches!(c.action.as_str(), "repeated" | "escalated")
}

/// `keep`, the open incident of a cause that another, `drop`, is merged into, with what `drop`
/// knew beyond it: its count and last time seen where higher, its severity where worse, and
/// its state and assignee where further on (acknowledged or assigned). Made the same on every
/// console that merges the two. `None` when `drop` adds nothing. (The survivor used to stay as
/// it was: an escalated, assigned incident merged into a new one lost its critical severity,
/// its count and its assignee.)
fn absorbed(keep: &Incident, drop: &Incident) -> Option<Incident> {
    let further = |s: IncidentState| match s {
        IncidentState::New => 0,
        IncidentState::Acknowledged => 1,
        IncidentState::Assigned => 2,
        IncidentState::Resolved => 0,
    };
    let takes_state = drop.state.is_open() && further(drop.state) > further(keep.state);
    let adds = drop.count > keep.count
        || drop.last_seen_ms > keep.last_seen_ms
        || drop.severity < keep.severity
        || takes_state;
    if !adds || keep.version >= MAX_VERSION {
        return None;
    }
    let mut i = keep.clone();
    take_counts(&mut i, drop);
    if takes_state {
        i.state = drop.state;
        i.assignee.clone_from(&drop.assignee);
    }
    i.version = next_version(keep.version);
    i.updated_ms = keep.updated_ms.max(drop.updated_ms);
    i.updated_by = SYSTEM.into();
    i.last_change = Change {
        action: "merged".into(),
        detail: Some(drop.id.clone()),
    };
    Some(i)
}

/// The change an operator's note makes.
const NOTE: &str = "note";

/// `held`, an operator's note, lost to `winner`, another change of the same version: the
/// note again, on top of the winner, as its next version. Made the same on every console that
/// held the note (its author and text are the note's, its time the later of the two: a
/// console that held it knows it again, [`is_change`]), so their copies are equal; `None`
/// when the winner carries the note already.
fn note_again(held: &Incident, winner: &Incident) -> Option<Incident> {
    let lost_note = held.last_change.action == NOTE
        && held.updated_by != SYSTEM
        && held.version == winner.version
        && winner.version < MAX_VERSION
        && (winner.last_change != held.last_change || winner.updated_by != held.updated_by);
    lost_note.then(|| {
        let mut again = winner.clone();
        again.version = next_version(winner.version);
        again.updated_ms = held.updated_ms.max(winner.updated_ms);
        again.updated_by.clone_from(&held.updated_by);
        again.last_change = held.last_change.clone();
        again
    })
}

/// Whether `a` and `b` are the same change (one console's copy of one version).
fn same_change(a: &Incident, b: &Incident) -> bool {
    a.version == b.version && is_change(a, b)
}

impl IncidentBook {
    /// A book holding `incidents` (loaded from history at start).
    pub fn new(incidents: impl IntoIterator<Item = Incident>) -> Self {
        let mut book = Self::default();
        for i in incidents {
            book.put(i);
        }
        book
    }

    fn put(&mut self, incident: Incident) {
        let key = cause(&incident);
        // A version from another console may name another cause than the one held (a
        // forged or broken one): the held cause no longer points at this incident.
        if let Some(held) = self.incidents.get(&incident.id) {
            let held_key = cause(held);
            if held_key != key {
                self.close_cause(&held_key, &incident.id);
            }
        }
        if incident.state.is_open() {
            if self
                .open_by_cause
                .insert(key, incident.id.clone())
                .is_none()
            {
                *self.open_kinds.entry(incident.source.clone()).or_default() += 1;
            }
        } else {
            self.close_cause(&key, &incident.id);
        }
        self.incidents.insert(incident.id.clone(), incident);
    }

    /// `key` has no open incident any more, if incident `id` was it.
    fn close_cause(&mut self, key: &(String, String), id: &str) {
        if self.open_by_cause.get(key).map(String::as_str) != Some(id) {
            return;
        }
        self.open_by_cause.remove(key);
        if let Some(n) = self.open_kinds.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.open_kinds.remove(&key.0);
            }
        }
    }

    fn record(&mut self, incident: Incident, audited: bool, publish: bool) {
        let audit = audited.then(|| AuditEntry::of(&incident));
        if publish && incident.last_change.action == NOTE && incident.updated_by != SYSTEM {
            self.unechoed.insert(incident.id.clone(), incident.clone());
        }
        self.remember_below(&incident, publish);
        self.put(incident.clone());
        self.changes.push(BookChange {
            incident,
            audit,
            publish,
        });
    }

    /// Keeps the version held of `next`'s incident among the levels below it when `next` is
    /// the version after it; a version further on (a jump: the versions between were never
    /// heard) starts the levels afresh; one at the same version (a tie settled) leaves them.
    fn remember_below(&mut self, next: &Incident, made_here: bool) {
        let Some(held) = self.incidents.get(&next.id) else {
            return;
        };
        if next.version == held.version {
            if let Some(levels) = self.below.get_mut(&next.id) {
                levels.top_made_here = made_here;
            }
            return;
        }
        if next.version != held.version.saturating_add(1) {
            self.below.remove(&next.id);
            return;
        }
        if self.below.len() >= MAX_LEVELLED && !self.below.contains_key(&next.id) {
            return; // another console changing incidents by the thousand: not for these
        }
        // An incident first remembered now: whether its held version was made here is not
        // known, and it is taken as not (no restore builds on it).
        let clock_ms = self.clock_ms;
        self.below
            .entry(next.id.clone())
            .or_default()
            .push(held, made_here, clock_ms);
    }

    /// Whether this console holds or held `i`'s change at a lower version (it comes back made
    /// again on top of a later one: its audit row is here already).
    fn held_before(&self, i: &Incident) -> bool {
        self.incidents.get(&i.id).is_some_and(|h| is_change(h, i))
            || self
                .below
                .get(&i.id)
                .is_some_and(|levels| levels.versions.iter().any(|l| is_change(l, i)))
    }

    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// Every incident held, in triage order.
    pub fn snapshot(&self) -> Vec<Incident> {
        let mut all: Vec<Incident> = self.incidents.values().cloned().collect();
        all.sort_by_key(Incident::triage_key);
        all
    }

    /// Whether another console's `remote` can be taken without going past
    /// [`MAX_HELD_INCIDENTS`]: one held already, or room for one more.
    pub fn has_room_for(&self, remote: &Incident) -> bool {
        self.incidents.contains_key(&remote.id) || self.incidents.len() < self.max_held()
    }

    /// Why another console's `remote` cannot be an honest copy, if it cannot: a version far
    /// beyond the one held (or forgotten), or a new incident already at a version no run of
    /// changes reaches, or seen last before it was seen first. Any broker client may publish
    /// on the incident topics, and one forged version near [`MAX_VERSION`] taken by every
    /// console left an incident that could take no more changes: an open panic that counted
    /// no repeat, raised no new incident and could never be resolved.
    pub fn implausible(&self, remote: &Incident) -> Option<String> {
        if remote.first_seen_ms > remote.last_seen_ms {
            return Some("first seen after it was last seen".into());
        }
        let known = self
            .incidents
            .get(&remote.id)
            .map(|held| held.version)
            .or_else(|| self.forgotten.get(&remote.id).map(|(v, _)| *v));
        match known {
            Some(v) if remote.version > v.saturating_add(MAX_VERSION_STEP) => Some(format!(
                "version {} is more than {MAX_VERSION_STEP} past the {v} held",
                remote.version
            )),
            None if remote.version > MAX_NEW_VERSION => Some(format!(
                "a new incident at version {} (over {MAX_NEW_VERSION})",
                remote.version
            )),
            _ => None,
        }
    }

    fn max_held(&self) -> usize {
        #[cfg(test)]
        if let Some(n) = self.test_max_held {
            return n;
        }
        MAX_HELD_INCIDENTS
    }

    /// Remembers incidents forgotten before this book was made: `(id, version, resolved at)`,
    /// from the history file at start.
    pub fn remember_forgotten(&mut self, gone: impl IntoIterator<Item = (String, u64, i64)>) {
        for (id, version, at_ms) in gone {
            if !self.incidents.contains_key(&id) {
                self.forgotten.insert(id, (version, at_ms));
            }
        }
    }

    /// Whether `remote`, an incident this book does not hold, is one it has no use for: one
    /// resolved longer than [`KEEP_RESOLVED_MS`] ago (every console has forgotten it: still
    /// retained by the broker, or republished by a console whose clock is behind), or a version
    /// of one forgotten here that is not newer (republished by a console that was away since
    /// before the resolution).
    pub fn is_old_news(&self, remote: &Incident, now_ms: i64) -> bool {
        self.staleness(remote, now_ms).is_some()
    }

    /// Whether this book forgot a newer version of `remote` than `remote` (a console back from
    /// a long absence republishing what it held then).
    pub fn forgot_newer(&self, remote: &Incident) -> bool {
        !self.incidents.contains_key(&remote.id)
            && self
                .forgotten
                .get(&remote.id)
                .is_some_and(|&(version, _)| version > remote.version)
    }

    /// Whether the broker's retained copy of `remote`, old news, can be cleared: it is older
    /// than what every console knows. (A version equal to the one forgotten here may be another
    /// console's that won a tie this console never heard of: ignored, but left alone.)
    pub fn is_outdated(&self, remote: &Incident, now_ms: i64) -> bool {
        self.staleness(remote, now_ms) == Some(std::cmp::Ordering::Less)
    }

    /// How `remote` stands against what this book knew of it: `Less` when it is older than the
    /// version forgotten here or resolved longer ago than every console keeps, `Equal` when it
    /// is the version forgotten here, `None` when it is news (or held).
    fn staleness(&self, remote: &Incident, now_ms: i64) -> Option<std::cmp::Ordering> {
        use std::cmp::Ordering;
        if self.incidents.contains_key(&remote.id) {
            return None;
        }
        if expired(remote, now_ms) {
            return Some(Ordering::Less);
        }
        let &(version, _) = self.forgotten.get(&remote.id)?;
        match remote.version.cmp(&version) {
            Ordering::Greater => None,
            older_or_equal => Some(older_or_equal),
        }
    }

    /// Open incidents nobody has acknowledged yet.
    pub fn unacknowledged(&self) -> u32 {
        let n = self
            .incidents
            .values()
            .filter(|i| i.state == IncidentState::New)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<BookChange> {
        std::mem::take(&mut self.changes)
    }

    /// Opens an incident for `t`, or counts a repeat on the open one of the same cause.
    /// Returns the incident's id, or `None` when `t` was already handled (the incident it
    /// would open exists: a redelivered event).
    pub fn raise(&mut self, t: &Trigger, now_ms: i64) -> Option<String> {
        self.clock_ms = now_ms;
        let key = (t.source.clone(), t.kind.clone());
        let counted = self.counted.entry(key.clone()).or_default();
        if counted.contains(&t.key) {
            return None; // counted already: delivered again
        }
        if counted.len() == COUNTED_KEYS_PER_CAUSE {
            counted.pop_front();
        }
        counted.push_back(t.key.clone());
        if let Some(open) = self.open_by_cause.get(&key).cloned() {
            let mut i = self.incidents.get(&open)?.clone();
            if i.id == t.incident_id() {
                return None; // the event that opened it, again
            }
            if i.version >= MAX_VERSION {
                return Some(open); // at its last version: the repeat is in the events table
            }
            i.count = i.count.saturating_add(1);
            i.last_seen_ms = i.last_seen_ms.max(t.at_ms);
            // A repeat worse than the incident so far escalates it: a change of its own, in
            // the audit trail, which alerts the consoles again (the state is kept: whoever
            // acknowledged or was assigned it still has it).
            let escalated = t.severity < i.severity;
            let change = if escalated {
                let detail = format!("{} -> {}", i.severity.as_str(), t.severity.as_str());
                i.severity = t.severity;
                Change {
                    action: "escalated".into(),
                    detail: Some(detail),
                }
            } else {
                Change {
                    action: "repeated".into(),
                    detail: None,
                }
            };
            if t.position.is_some() {
                (i.lat, i.lon) = (t.position.map(|p| p.0), t.position.map(|p| p.1));
            }
            i.version = next_version(i.version);
            i.updated_ms = now_ms;
            i.updated_by = SYSTEM.into();
            i.last_change = change;
            self.record(i, escalated, true);
            return Some(open);
        }
        let id = t.incident_id();
        if self.incidents.contains_key(&id) || self.forgotten.contains_key(&id) {
            // A redelivered trigger whose incident is already closed, or closed and forgotten
            // (a console back after days gets what its persistent session queued).
            return None;
        }
        if !CONSOLE_KINDS.contains(&t.kind.as_str())
            && self.open_kinds_of(&t.source) >= MAX_OPEN_KINDS_PER_SOURCE
        {
            let overflow = Trigger {
                kind: OVERFLOW_KIND.into(),
                title: format!(
                    "{}: more than {MAX_OPEN_KINDS_PER_SOURCE} kinds of incident open at once; \
                     further ones are counted here (first: {})",
                    t.source, t.title
                ),
                ..t.clone()
            };
            return self.raise(&overflow, now_ms);
        }
        let i = Incident {
            id: id.clone(),
            source: t.source.clone(),
            kind: t.kind.clone(),
            severity: t.severity,
            title: t.title.clone(),
            state: IncidentState::New,
            assignee: None,
            resolution: None,
            count: 1,
            first_seen_ms: t.at_ms,
            last_seen_ms: t.at_ms,
            lat: t.position.map(|p| p.0),
            lon: t.position.map(|p| p.1),
            version: 1,
            updated_ms: now_ms,
            updated_by: SYSTEM.into(),
            last_change: Change {
                action: "opened".into(),
                detail: None,
            },
        };
        self.record(i, true, true);
        Some(id)
    }

    /// An operator's action. On success the incident's new state is returned (and queued).
    /// [`IncidentBook::act`], refused when the incident changed since the operator saw it as
    /// `seen` (a note is taken whatever changed: it changes nothing).
    pub fn act_as_seen(
        &mut self,
        id: &str,
        action: &IncidentAction,
        seen: Option<&SeenIncident>,
        actor: &str,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        if let (Some(seen), Some(now)) = (seen, self.incidents.get(id)) {
            if !matches!(action, IncidentAction::Note { .. }) {
                if let Some(changed) = seen.changes_in(now) {
                    return Err(ActionError::Changed(changed));
                }
            }
        }
        self.act(id, action, actor, now_ms)
    }

    pub fn act(
        &mut self,
        id: &str,
        action: &IncidentAction,
        actor: &str,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        self.clock_ms = now_ms;
        let mut i = self
            .incidents
            .get(id)
            .cloned()
            .ok_or_else(|| ActionError::NotFound(id.to_owned()))?;
        if i.version >= MAX_VERSION {
            return Err(ActionError::VersionLimit);
        }
        let from = i.state.as_str();
        let refuse = |action: &'static str| ActionError::Transition {
            state: from,
            action,
        };
        use IncidentState as S;
        let (verb, detail) = match action {
            IncidentAction::Acknowledge => {
                if i.state != S::New {
                    return Err(refuse("acknowledged"));
                }
                i.state = S::Acknowledged;
                ("acknowledged", None)
            }
            IncidentAction::Assign { to } => {
                if i.state == S::Resolved {
                    return Err(refuse("assigned"));
                }
                let to = text(to, "the assignee")?;
                i.state = S::Assigned;
                i.assignee = Some(to.clone());
                ("assigned", Some(to))
            }
            IncidentAction::Resolve { note } => {
                if i.state == S::Resolved {
                    return Err(refuse("resolved"));
                }
                let note = text(note, "the resolution note")?;
                i.state = S::Resolved;
                i.resolution = Some(note.clone());
                ("resolved", Some(note))
            }
            IncidentAction::Reopen => {
                if i.state != S::Resolved {
                    return Err(refuse("reopened"));
                }
                if self.open_by_cause.contains_key(&cause(&i)) {
                    return Err(refuse("reopened while another is open for the same cause"));
                }
                i.state = S::New;
                i.resolution = None;
                i.assignee = None;
                ("reopened", None)
            }
            IncidentAction::Note { text: note } => ("note", Some(text(note, "the note")?)),
        };
        i.version = next_version(i.version);
        i.updated_ms = now_ms;
        i.updated_by = actor.to_owned();
        i.last_change = Change {
            action: verb.into(),
            detail,
        };
        self.record(i.clone(), true, true);
        Ok(i)
    }

    /// Another console's version of an incident. Returns true when it changed ours.
    ///
    /// An incident this book does not hold is not taken when it is old news
    /// ([`IncidentBook::is_old_news`]).
    pub fn merge(&mut self, remote: Incident, now_ms: i64) -> bool {
        self.clock_ms = now_ms;
        // Our last note on it, back from the broker; or, before that, another console's version
        // made without it (the broker hands this console a topic's messages in the order it
        // took them): newer, or the winner at the note's own version. The note would be missing
        // on that console: it is made again on top of whatever this console then holds.
        let unseen = match self.unechoed.get(&remote.id) {
            Some(mine) if same_change(mine, &remote) => {
                self.unechoed.remove(&remote.id);
                None
            }
            Some(mine)
                if remote.version > mine.version
                    || (remote.version == mine.version && wins(&remote, mine)) =>
            {
                Some(mine.clone())
            }
            _ => None,
        };
        if self
            .incidents
            .get(&remote.id)
            .is_some_and(|held| remote.version < held.version)
        {
            return self.restore_lost_level(&remote);
        }
        // A version that lost to the one held, at its own version (a tie just settled here:
        // its console takes ours next), leaves the note on top of the held one. One that lost
        // by being older does not: a version of its console's at the held one's may be on its
        // way, and a note made on top now would undo it (a newer version wins outright).
        let settled_tie = self
            .incidents
            .get(&remote.id)
            .is_some_and(|held| held.version == remote.version && !same_change(held, &remote));
        let taken = self.take_version(remote, now_ms);
        let remade = unseen
            .filter(|_| taken || settled_tie)
            .is_some_and(|mine| self.note_on_top(&mine));
        taken || remade
    }

    /// `r`, another console's version older than the one held, that wins over the version this
    /// console held at its level: every console settles on `r` there (it replaces that level
    /// here, when this console made every version since), yet the versions this one made since were built without it, and being newer they
    /// undid it on every console that had it. (Only when every version since was made here:
    /// one taken from another console may have been built on `r`.) What `r` did is made again
    /// on top of the held version, as its next one: an operator's acknowledgement, assignment,
    /// resolution or reopening (the operator's change again, as they made it: author, time and
    /// text), unless a version since set the state by a merge, or on top of a state change
    /// that lost there (on purpose), or by a change that would have won over
    /// `r` at one version (they were made without each other, as in a tie), so a note or a
    /// repeat counted on the loser does not undo an acknowledgement made at the same time; not
    /// a resolution over a repeat counted since (the tie rule: an event after a resolution
    /// keeps it open), nor a reopening while another incident of the cause is open here; and
    /// `r`'s count, last time seen and worse severity. A note of the level `r` won is made
    /// again on top too (it is on no console that took `r` first). Whether anything was made.
    ///
    /// Consoles that held the losing level and made the same versions since make the same
    /// version, so their copies are equal.
    fn restore_lost_level(&mut self, r: &Incident) -> bool {
        let Some(held) = self.incidents.get(&r.id) else {
            return false;
        };
        let Some(Levels {
            versions: levels,
            made_here,
            top_made_here,
            ..
        }) = self.below.get(&r.id)
        else {
            return false;
        };
        let Some(first) = held.version.checked_sub(levels.len() as u64) else {
            return false;
        };
        let contiguous = levels.front().map(|l| l.version) == Some(first)
            && levels.back().map(|l| l.version) == Some(held.version - 1);
        if !contiguous || r.version < first {
            return false;
        }
        let at = usize::try_from(r.version - first).unwrap_or(usize::MAX);
        let Some(lost) = levels.get(at) else {
            return false;
        };
        if !wins(r, lost) || is_change(r, lost) {
            return false; // the level held here won (r's console takes ours), or r is it again
        }
        // Only versions this console made since are known to be built on the lost one: one
        // taken from another console may have been built on r (its console had seen r, this
        // one had not heard it yet: a reconnect's retained copy), and restoring r over it
        // would undo what was done after it.
        if !(*top_made_here && made_here.iter().skip(at + 1).all(|&mine| mine)) {
            return false;
        }
        let since: Vec<&Incident> = levels.iter().skip(at + 1).chain([held]).collect();
        let counted_since = since.iter().any(|l| counted_a_repeat(&l.last_change));
        // r made again already, or a state set since by the console (a merge) or by a change
        // that would win over r had they been made at one version (they were made without each
        // other, as in a tie: an acknowledgement made again since stays over a resolution made
        // later that lost to it).
        // When the lost level was a state change itself (Ana acknowledged; Bo's change won her
        // version), any state its console set on top of it was set on purpose (she resolved)
        // and stands; a repeat or a note on top of it does not hold Bo's change back.
        let set_after = since.iter().any(|l| {
            is_change(l, r)
                || (sets_state(&l.last_change)
                    && (l.updated_by == SYSTEM
                        || sets_state(&lost.last_change)
                        || !wins_a_tie(r, l)))
        });
        let cause_free = || {
            self.open_by_cause
                .get(&cause(held))
                .is_none_or(|open| *open == r.id)
        };
        let restores = restorable(r)
            && !set_after
            && (r.state.is_open() || !counted_since)
            && (r.state, &r.assignee, &r.resolution)
                != (held.state, &held.assignee, &held.resolution)
            && (!r.state.is_open() || held.state.is_open() || cause_free());
        let mut top = held.clone();
        take_counts(&mut top, r);
        let counts = (top.count, top.last_seen_ms) != (held.count, held.last_seen_ms);
        let worse = top.severity != held.severity;
        // A note made again already (at a later level) is on every console that took that one.
        let lost_note = (lost.last_change.action == NOTE && lost.updated_by != SYSTEM)
            .then(|| lost.clone())
            .filter(|note| !since.iter().any(|l| is_change(l, note)));
        if held.version >= MAX_VERSION {
            return false;
        }
        // r is the version every console settles on at its level: what is restored later is
        // weighed against it (a resolution that loses to it there must not come back).
        let audit_r = !self.held_before(r);
        let at_r = r.clone();
        if let Some(level) = self
            .below
            .get_mut(&r.id)
            .and_then(|l| l.versions.get_mut(at))
        {
            // (Marked as this console's still: for a restore below it, r is a change made at
            // this level without the versions this console had held below.)
            *level = at_r;
        }
        let mut made = false;
        if restores || counts || worse {
            top.version = next_version(held.version);
            let audited = if restores {
                (top.state, top.assignee, top.resolution) =
                    (r.state, r.assignee.clone(), r.resolution.clone());
                top.updated_ms = r.updated_ms;
                top.updated_by.clone_from(&r.updated_by);
                top.last_change = r.last_change.clone();
                audit_r
            } else {
                top.updated_ms = held.updated_ms.max(r.updated_ms);
                top.updated_by = SYSTEM.into();
                top.last_change = if worse {
                    Change {
                        action: "escalated".into(),
                        detail: Some(format!(
                            "{} -> {}",
                            held.severity.as_str(),
                            top.severity.as_str()
                        )),
                    }
                } else {
                    Change {
                        action: "repeated".into(),
                        detail: None,
                    }
                };
                worse
            };
            self.record(top, audited, true);
            made = true;
        }
        if let Some(note) = lost_note {
            made |= self.note_on_top(&note);
        }
        made
    }

    /// `mine`, a note of this console's that another console's version was made without, again
    /// on top of the version held now (unless that is the note itself). Whether it was made.
    fn note_on_top(&mut self, mine: &Incident) -> bool {
        let Some(top) = self.incidents.get(&mine.id) else {
            return false;
        };
        let mut at_top = mine.clone();
        at_top.version = top.version;
        match note_again(&at_top, top) {
            Some(again) => {
                self.record(again, false, true);
                true
            }
            None => false,
        }
    }

    /// [`IncidentBook::merge`] of one version, the notes this console has not heard back aside.
    fn take_version(&mut self, remote: Incident, now_ms: i64) -> bool {
        // What this console made that lost to `remote` and is made again on top of it: a
        // repeat it counted, or a note (whose audit row this console has, at the lost version).
        let again = match self.incidents.get(&remote.id) {
            Some(held) if !wins(&remote, held) => return false,
            Some(held) => repeat_again(held, &remote, now_ms)
                .map(|i| (i, true))
                .or_else(|| note_again(held, &remote).map(|i| (i, false))),
            None if self.is_old_news(&remote, now_ms) => return false,
            None => None,
        };
        self.forgotten.remove(&remote.id);
        // A second open incident for one cause: keep the one opened first.
        let duplicate = remote
            .state
            .is_open()
            .then(|| self.open_by_cause.get(&cause(&remote)).cloned())
            .flatten()
            .filter(|other| *other != remote.id)
            .and_then(|other| self.incidents.get(&other).cloned());
        let audited = remote.last_change.action != "repeated" && !self.held_before(&remote);
        self.record(remote.clone(), audited, false);
        if let Some((again, new_change)) = again {
            let audited = new_change && again.last_change.action != "repeated";
            self.record(again, audited, true);
        }
        if let Some(other) = duplicate {
            // `remote` as held now: a repeat or note made again on top of it is its newest.
            let remote = self.incidents.get(&remote.id).cloned().unwrap_or(remote);
            let (keep, drop) =
                if (other.first_seen_ms, &other.id) <= (remote.first_seen_ms, &remote.id) {
                    (other, remote)
                } else {
                    (remote, other)
                };
            if drop.version >= MAX_VERSION {
                // At its last version (forged): a merge could not win elsewhere. Both stay.
                self.put(keep);
                return true;
            }
            let survivor = absorbed(&keep, &drop);
            let mut merged = drop;
            merged.state = IncidentState::Resolved;
            merged.resolution = Some(format!("merged into {}", keep.id));
            merged.version = next_version(merged.version);
            merged.updated_ms = now_ms;
            merged.updated_by = SYSTEM.into();
            merged.last_change = Change {
                action: "merged".into(),
                detail: Some(keep.id.clone()),
            };
            self.record(merged, true, true);
            match survivor {
                // The survivor is the open one of its cause, with what the other knew.
                Some(folded) => self.record(folded, true, true),
                None => self.put(keep),
            }
        }
        true
    }

    /// Forgets resolved incidents older than [`KEEP_RESOLVED_MS`] (they stay in history, and
    /// their ids and versions here for [`KEEP_FORGOTTEN_MS`]), and returns their ids (their
    /// retained messages can be cleared from the broker).
    pub fn prune(&mut self, now_ms: i64) -> Vec<String> {
        let mut gone = Vec::new();
        let forgotten = &mut self.forgotten;
        self.incidents.retain(|id, i| {
            let keep = !expired(i, now_ms);
            if !keep {
                gone.push(id.clone());
                forgotten.insert(id.clone(), (i.version, now_ms));
            }
            keep
        });
        let incidents = &self.incidents;
        self.unechoed.retain(|id, _| incidents.contains_key(id));
        self.below.retain(|id, levels| {
            incidents.contains_key(id) && now_ms - levels.touched_ms < KEEP_LEVELS_MS
        });
        forgotten.retain(|_, &mut (_, at_ms)| now_ms - at_ms < KEEP_FORGOTTEN_MS);
        if forgotten.len() > MAX_FORGOTTEN {
            // Another console published more resolved incidents than any site resolves in a
            // month: the oldest memories go first.
            let mut by_age: Vec<(i64, String)> = forgotten
                .iter()
                .map(|(id, &(_, at_ms))| (at_ms, id.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, id) in &by_age[..by_age.len() - MAX_FORGOTTEN] {
                forgotten.remove(id);
            }
        }
        // The counted keys of causes with no incident held any more.
        let held: HashSet<(&str, &str)> = self
            .incidents
            .values()
            .map(|i| (i.source.as_str(), i.kind.as_str()))
            .collect();
        self.counted
            .retain(|(source, kind), _| held.contains(&(source.as_str(), kind.as_str())));
        gone
    }
}

/// Whether `i` was resolved longer than [`KEEP_RESOLVED_MS`] before `now_ms`.
pub fn expired(i: &Incident, now_ms: i64) -> bool {
    !i.state.is_open() && now_ms - i.updated_ms >= KEEP_RESOLVED_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::rules::OFFLINE_KIND;
    use watchfloor_protocol::Severity;

    fn trigger(source: &str, key: &str, at_ms: i64) -> Trigger {
        Trigger {
            source: source.into(),
            kind: "panic".into(),
            key: key.into(),
            severity: Severity::Critical,
            title: format!("{source} panic"),
            at_ms,
            position: Some((51.9, 4.5)),
        }
    }

    #[test]
    fn an_action_on_an_incident_changed_since_it_was_seen_is_refused_with_what_changed() {
        let mut book = IncidentBook::default();
        let high = Trigger {
            severity: Severity::High,
            ..trigger("v1", "e1", 10)
        };
        let id = book.raise(&high, 100).unwrap();
        let seen = |i: &Incident| SeenIncident {
            state: i.state,
            severity: i.severity,
            assignee: i.assignee.clone(),
        };
        let as_opened = seen(book.get(&id).unwrap());
        // A repeat moves the counter only: what the operator saw still stands.
        book.raise(&trigger_of(&high, "e2", 20), 200);
        let acked = book
            .act_as_seen(
                &id,
                &IncidentAction::Acknowledge,
                Some(&as_opened),
                "ana",
                300,
            )
            .unwrap();
        // A repeat escalates it to critical: a resolution written for the high one is refused.
        book.raise(&trigger("v1", "e3", 30), 400);
        let resolve = IncidentAction::Resolve {
            note: "false alarm".into(),
        };
        let err = book
            .act_as_seen(&id, &resolve, Some(&seen(&acked)), "ana", 500)
            .unwrap_err();
        assert_eq!(err.code(), "incident_changed");
        assert!(err.to_string().contains("from high to critical"), "{err}");
        assert_eq!(book.get(&id).unwrap().state, IncidentState::Acknowledged);
        // A note is taken whatever changed.
        book.act_as_seen(
            &id,
            &IncidentAction::Note {
                text: "on it".into(),
            },
            Some(&seen(&acked)),
            "ana",
            600,
        )
        .unwrap();
        // Assigned to Bo meanwhile: Ana's "assign to me" from the screen before is refused.
        let now = seen(book.get(&id).unwrap());
        book.act(&id, &IncidentAction::Assign { to: "bo".into() }, "bo", 700)
            .unwrap();
        let err = book
            .act_as_seen(
                &id,
                &IncidentAction::Assign { to: "ana".into() },
                Some(&now),
                "ana",
                800,
            )
            .unwrap_err();
        assert!(err.to_string().contains("assigned to bo"), "{err}");
        // Seen as it is: taken. Without a sight of it (the CLI, older pages): taken.
        let now = seen(book.get(&id).unwrap());
        book.act_as_seen(&id, &resolve, Some(&now), "ana", 900)
            .unwrap();
        book.act_as_seen(&id, &IncidentAction::Reopen, None, "ana", 1000)
            .unwrap();
    }

    fn trigger_of(t: &Trigger, key: &str, at_ms: i64) -> Trigger {
        Trigger {
            key: key.into(),
            at_ms,
            ..t.clone()
        }
    }

    #[test]
    fn repeats_bump_the_open_incident_instead_of_opening_another() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        assert_eq!(book.raise(&trigger("v1", "e2", 20), 200), Some(id.clone()));
        assert_eq!(book.raise(&trigger("v1", "e3", 30), 300), Some(id.clone()));
        let i = book.get(&id).unwrap();
        assert_eq!(
            (i.count, i.first_seen_ms, i.last_seen_ms, i.version),
            (3, 10, 30, 3)
        );
        assert_eq!(book.snapshot().len(), 1);
        let changes = book.take_changes();
        assert_eq!(changes.len(), 3);
        assert_eq!(
            changes.iter().filter(|c| c.audit.is_some()).count(),
            1,
            "only the opening is an audit row; repeats move the counter"
        );
        // The event that opened it, redelivered, changes nothing.
        assert_eq!(book.raise(&trigger("v1", "e1", 10), 400), None);
        assert!(book.take_changes().is_empty());
        // Another device is another incident.
        assert_ne!(book.raise(&trigger("v2", "e1", 10), 500), Some(id));
    }

    #[test]
    fn a_source_with_too_many_kinds_open_has_the_rest_counted_on_one_incident() {
        let mut book = IncidentBook::default();
        let of_kind = |kind: String, severity| Trigger {
            key: format!("event-of-{kind}"),
            kind,
            severity,
            ..trigger("v1", "e", 10)
        };
        for k in 0..MAX_OPEN_KINDS_PER_SOURCE {
            book.raise(&of_kind(format!("made_up_{k}"), Severity::Low), 100);
        }
        assert_eq!(book.snapshot().len(), MAX_OPEN_KINDS_PER_SOURCE);
        // Thirty more kinds: one incident counts them all, and a worse one escalates it.
        let over: Vec<Option<String>> = (0..30)
            .map(|k| {
                let severity = if k == 29 {
                    Severity::Critical
                } else {
                    Severity::Low
                };
                book.raise(&of_kind(format!("more_{k}"), severity), 200)
            })
            .collect();
        assert_eq!(book.snapshot().len(), MAX_OPEN_KINDS_PER_SOURCE + 1);
        let id = over[0].clone().unwrap();
        assert!(over.iter().all(|o| o.as_deref() == Some(id.as_str())));
        let overflow = book.get(&id).unwrap();
        assert_eq!(overflow.kind, OVERFLOW_KIND);
        assert_eq!(
            (overflow.count, overflow.severity),
            (30, Severity::Critical)
        );
        assert!(
            overflow.title.contains("more than 16 kinds"),
            "{}",
            overflow.title
        );
        // A known kind still repeats on its own incident; another source is not limited.
        let again = Trigger {
            key: "a-later-event".into(),
            ..of_kind("made_up_3".into(), Severity::Low)
        };
        let known = book.raise(&again, 300).unwrap();
        assert_ne!(known, id);
        assert!(book.raise(&trigger("v2", "e", 10), 300).is_some());
        assert_eq!(book.snapshot().len(), MAX_OPEN_KINDS_PER_SOURCE + 2);

        // An event whose incident was resolved, delivered again, is not counted anywhere.
        let fifth = of_kind("made_up_5".into(), Severity::Low);
        let resolve = resolve_action("done");
        book.act(&fifth.incident_id(), &resolve, "ana", 310)
            .unwrap();
        assert_eq!(book.raise(&fifth, 320), None);
        assert_eq!(book.get(&id).unwrap().count, 30);
        // The console's own kinds open their incident whatever the source has open.
        let offline = Trigger {
            kind: OFFLINE_KIND.into(),
            ..of_kind(String::new(), Severity::High)
        };
        let opened = book.raise(&offline, 330).unwrap();
        assert_eq!(book.get(&opened).unwrap().kind, OFFLINE_KIND);
        assert_eq!(book.get(&id).unwrap().count, 30);
    }

    #[test]
    fn the_lifecycle_is_enforced_and_every_step_audited() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        book.take_changes();
        let ack = IncidentAction::Acknowledge;
        assert_eq!(
            book.act(&id, &ack, "ana", 110).unwrap().state,
            IncidentState::Acknowledged
        );
        assert_eq!(
            book.act(&id, &ack, "ana", 111).unwrap_err().code(),
            "invalid_transition"
        );
        let assign = IncidentAction::Assign { to: " Bo ".into() };
        let i = book.act(&id, &assign, "ana", 120).unwrap();
        assert_eq!(
            (i.state, i.assignee.as_deref()),
            (IncidentState::Assigned, Some("Bo"))
        );
        let note = IncidentAction::Note {
            text: "on scene".into(),
        };
        assert_eq!(
            book.act(&id, &note, "bo", 130).unwrap().state,
            IncidentState::Assigned
        );
        let empty = IncidentAction::Resolve { note: "  ".into() };
        assert_eq!(
            book.act(&id, &empty, "bo", 140).unwrap_err(),
            ActionError::Empty("the resolution note")
        );
        let resolve = IncidentAction::Resolve {
            note: "false alarm".into(),
        };
        let i = book.act(&id, &resolve, "bo", 150).unwrap();
        assert_eq!((i.state, i.version), (IncidentState::Resolved, 5));
        // Resolved: a new event of the same cause opens a new incident.
        let again = book.raise(&trigger("v1", "e9", 160), 160).unwrap();
        assert_ne!(again, id);
        // ...so reopening the old one is refused while that one is open.
        assert!(book.act(&id, &IncidentAction::Reopen, "bo", 170).is_err());
        book.act(&again, &resolve, "bo", 175).unwrap();
        let i = book.act(&id, &IncidentAction::Reopen, "bo", 180).unwrap();
        assert_eq!(
            (i.state, i.assignee.clone(), i.resolution.clone()),
            (IncidentState::New, None, None)
        );
        let audit: Vec<(String, String)> = book
            .take_changes()
            .into_iter()
            .filter_map(|c| c.audit)
            .filter(|a| a.incident_id == id)
            .map(|a| (a.actor, a.action))
            .collect();
        let expected = [
            ("ana", "acknowledged"),
            ("ana", "assigned"),
            ("bo", "note"),
            ("bo", "resolved"),
            ("bo", "reopened"),
        ];
        assert_eq!(
            audit,
            expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
        );
        assert_eq!(
            book.act("nope", &ack, "x", 1).unwrap_err().code(),
            "not_found"
        );
    }

    #[test]
    fn two_consoles_converge_on_concurrent_edits() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        // Both see the same device event: the same incident, not two.
        let id = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        assert_eq!(b.raise(&trigger("v1", "e1", 10), 101), Some(id.clone()));
        // Each hears the other's version 1 and keeps one of them.
        let a1 = a.get(&id).unwrap().clone();
        let b1 = b.get(&id).unwrap().clone();
        a.merge(b1, 102);
        b.merge(a1, 102);
        assert_eq!(a.get(&id), b.get(&id));
        // Both edit version 1 at once: A acknowledges, B assigns a bit later.
        let from_a = a
            .act(&id, &IncidentAction::Acknowledge, "ana", 200)
            .unwrap();
        let from_b = b
            .act(&id, &IncidentAction::Assign { to: "bo".into() }, "bo", 201)
            .unwrap();
        assert!(a.merge(from_b.clone(), 202), "the later change wins on A");
        assert!(!b.merge(from_a, 202), "and B keeps its own");
        assert_eq!(a.get(&id), Some(&from_b));
        assert_eq!(b.get(&id), Some(&from_b));
        // A newer version always wins, an older one never does.
        let resolved = a
            .act(
                &id,
                &IncidentAction::Resolve {
                    note: "done".into(),
                },
                "ana",
                300,
            )
            .unwrap();
        assert!(b.merge(resolved.clone(), 301));
        assert!(!b.merge(from_b, 302));
        assert_eq!(b.get(&id), Some(&resolved));
    }

    #[test]
    fn a_remote_version_naming_another_cause_moves_the_incident_off_the_held_one() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let mut remote = book.get(&id).unwrap().clone();
        remote.kind = "other".into();
        remote.version += 1;
        assert!(book.merge(remote, 110));
        // The panic cause is free: the next panic opens its own incident, and resolving the
        // moved one leaves exactly that one counted for the source.
        let next = book.raise(&trigger("v1", "e2", 20), 120).unwrap();
        assert_ne!(next, id);
        let resolve = resolve_action("done");
        book.act(&id, &resolve, "ana", 130).unwrap();
        assert_eq!(book.open_kinds_of("v1"), 1);
        assert_eq!(book.open_by_cause.len(), 1);
        book.act(&next, &resolve, "ana", 140).unwrap();
        assert_eq!(book.open_kinds_of("v1"), 0);
        assert!(book.open_by_cause.is_empty() && book.open_kinds.is_empty());
    }

    #[test]
    fn two_open_incidents_for_one_cause_merge_into_the_first() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let first = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let second = b.raise(&trigger("v1", "e2", 20), 100).unwrap();
        let from_b = b.get(&second).unwrap().clone();
        let from_a = a.get(&first).unwrap().clone();
        a.take_changes();
        assert!(a.merge(from_b, 110));
        let merged = a.take_changes();
        let dropped = merged
            .iter()
            .find(|c| c.incident.id == second && c.incident.state == IncidentState::Resolved)
            .expect("the second resolved as merged");
        assert!(dropped.publish);
        // The survivor takes what the second knew beyond it (it was seen later).
        let survivor = &merged.last().unwrap().incident;
        assert_eq!(
            (
                survivor.id.as_str(),
                survivor.last_seen_ms,
                survivor.last_change.action.as_str()
            ),
            (first.as_str(), 20, "merged")
        );
        // B reaches the same outcome from the other side.
        b.merge(from_a, 110);
        for book in [&a, &b] {
            assert!(book.get(&first).unwrap().state.is_open());
            assert_eq!(
                book.get(&second).unwrap().resolution.as_deref(),
                Some(format!("merged into {first}").as_str())
            );
        }
        assert_eq!(a.get(&first), b.get(&first), "the same survivor on both");
        // And a new repeat lands on the survivor.
        assert_eq!(a.raise(&trigger("v1", "e3", 30), 120), Some(first));
    }

    #[test]
    fn a_merged_incident_s_severity_count_and_assignee_are_kept_on_the_survivor() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let high = |key, at_ms| Trigger {
            severity: Severity::High,
            ..trigger("v1", key, at_ms)
        };
        let first = a.raise(&high("e1", 10), 100).unwrap();
        let second = b.raise(&high("e2", 20), 100).unwrap();
        // On B (cut off from A): escalated, counted again, assigned to Dana.
        let worse = Trigger {
            severity: Severity::Critical,
            ..trigger("v1", "e3", 30)
        };
        b.raise(&worse, 101).unwrap();
        b.act(
            &second,
            &IncidentAction::Assign { to: "dana".into() },
            "bo",
            102,
        )
        .unwrap();
        let from_b = b.get(&second).unwrap().clone();
        assert!(a.merge(from_b, 110));
        let kept = a.get(&first).unwrap();
        assert_eq!(
            (
                kept.state,
                kept.assignee.as_deref(),
                kept.severity,
                kept.count,
                kept.last_seen_ms
            ),
            (
                IncidentState::Assigned,
                Some("dana"),
                Severity::Critical,
                2,
                30
            )
        );
    }

    #[test]
    fn resolved_incidents_leave_memory_after_a_day_open_ones_never() {
        let mut book = IncidentBook::default();
        let open = book.raise(&trigger("v1", "e1", 0), 0).unwrap();
        let done = book.raise(&trigger("v2", "e1", 0), 0).unwrap();
        book.act(
            &done,
            &IncidentAction::Resolve { note: "ok".into() },
            "a",
            1,
        )
        .unwrap();
        assert_eq!(book.prune(KEEP_RESOLVED_MS), Vec::<String>::new());
        assert_eq!(book.prune(KEEP_RESOLVED_MS + 10), vec![done.clone()]);
        assert!(book.get(&open).is_some());
        assert!(book.get(&done).is_none());
        assert_eq!(book.unacknowledged(), 1);
    }

    #[test]
    fn a_forgotten_resolved_incident_is_not_taken_back_from_the_broker() {
        // Console A resolved an incident two days ago; the broker still retains it, and
        // replays it to B (a console started today) and to A after its book pruned it.
        let mut a = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 0), 0).unwrap();
        let resolved = a
            .act(&id, &IncidentAction::Resolve { note: "ok".into() }, "a", 1)
            .unwrap();
        let two_days = 2 * KEEP_RESOLVED_MS;
        assert_eq!(a.prune(two_days), vec![id.clone()]);
        a.take_changes();
        let mut b = IncidentBook::default();
        for book in [&mut a, &mut b] {
            assert!(!book.merge(resolved.clone(), two_days));
            assert!(book.get(&id).is_none());
            assert!(book.take_changes().is_empty());
        }
        // Resolved within the day, it is taken as ever by a console that never held it.
        assert!(b.merge(resolved.clone(), 1 + KEEP_RESOLVED_MS / 2));
        // A newer version of the one `a` forgot (reopened elsewhere) is taken by `a` too.
        let mut reopened = resolved;
        reopened.state = IncidentState::New;
        reopened.version += 1;
        reopened.updated_ms = two_days;
        assert!(a.merge(reopened, two_days));
        assert_eq!(a.get(&id).map(|i| i.state), Some(IncidentState::New));
    }

    #[test]
    fn a_worse_repeat_escalates_the_incident_and_keeps_its_state() {
        let mut book = IncidentBook::default();
        let high = |key: &str, severity| Trigger {
            severity,
            ..trigger("s1", key, 10)
        };
        let id = book.raise(&high("e1", Severity::High), 100).unwrap();
        book.act(&id, &IncidentAction::Acknowledge, "dana", 110)
            .unwrap();
        book.take_changes();
        // As bad as before: a repeat, no audit row.
        book.raise(&high("e2", Severity::High), 120).unwrap();
        let repeat = book.take_changes().pop().unwrap();
        assert_eq!(repeat.incident.last_change.action, "repeated");
        assert!(repeat.audit.is_none());
        // Worse: escalated, audited, still acknowledged.
        book.raise(&high("e3", Severity::Critical), 130).unwrap();
        let worse = book.take_changes().pop().unwrap();
        let i = &worse.incident;
        assert_eq!(
            (i.severity, i.state, i.count, i.version),
            (Severity::Critical, IncidentState::Acknowledged, 3, 4)
        );
        assert_eq!(
            (
                i.last_change.action.as_str(),
                i.last_change.detail.as_deref()
            ),
            ("escalated", Some("high -> critical"))
        );
        assert_eq!(worse.audit.unwrap().action, "escalated");
        assert!(worse.publish);
        // A milder repeat does not lower it.
        book.raise(&high("e4", Severity::Low), 140).unwrap();
        assert_eq!(book.get(&id).unwrap().severity, Severity::Critical);
    }

    #[test]
    fn a_repeat_counted_on_one_console_does_not_undo_an_acknowledgement_on_another() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        b.merge(a.get(&id).unwrap().clone(), 101);
        // At once: A's operator acknowledges it, B counts a repeat a moment later (a flood
        // incident, say, which each console raises from its own quarantine).
        let ack = a
            .act(&id, &IncidentAction::Acknowledge, "ana", 200)
            .unwrap();
        b.raise(&trigger("v1", "e2", 20), 201).unwrap();
        let repeat = b.get(&id).unwrap().clone();
        assert_eq!((ack.version, repeat.version), (2, 2));
        b.take_changes();

        assert!(!a.merge(repeat, 202), "the acknowledgement wins on A");
        assert!(b.merge(ack, 202), "and on B");
        // B counts its repeat again on top of it, and publishes that.
        let again = b.take_changes().pop().unwrap();
        assert!(again.publish && again.audit.is_none());
        let i = &again.incident;
        assert_eq!(
            (
                i.version,
                i.state,
                i.count,
                i.last_seen_ms,
                i.updated_by.as_str()
            ),
            (3, IncidentState::Acknowledged, 2, 20, SYSTEM)
        );
        assert!(a.merge(i.clone(), 203));
        assert_eq!(a.get(&id), b.get(&id));
        // Between two operators the later change still wins.
        let from_a = a
            .act(
                &id,
                &IncidentAction::Assign { to: "ana".into() },
                "ana",
                300,
            )
            .unwrap();
        let from_b = b
            .act(&id, &IncidentAction::Assign { to: "bo".into() }, "bo", 299)
            .unwrap();
        assert!(!a.merge(from_b, 301));
        b.take_changes();
        assert!(b.merge(from_a.clone(), 301));
        assert_eq!(b.take_changes().len(), 1, "no repeat to count again");
        assert_eq!(b.get(&id), Some(&from_a));
    }

    #[test]
    fn a_note_made_as_another_operator_resolves_is_kept_and_undoes_nothing() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        b.merge(a.get(&id).unwrap().clone(), 101);
        b.take_changes();
        // At once: Ana resolves it, Bo adds a note (later by the clock).
        let resolved = a
            .act(
                &id,
                &IncidentAction::Resolve {
                    note: "towed".into(),
                },
                "ana",
                200,
            )
            .unwrap();
        let note = b
            .act(
                &id,
                &IncidentAction::Note {
                    text: "driver called".into(),
                },
                "bo",
                201,
            )
            .unwrap();
        b.take_changes();
        assert_eq!((resolved.version, note.version), (2, 2));
        // The resolution wins everywhere; the note is made again on top of it.
        assert!(!a.merge(note, 202));
        assert!(b.merge(resolved, 202));
        let changes = b.take_changes();
        assert_eq!(changes.len(), 2);
        assert!(changes[0].audit.is_some(), "the resolution is audited on B");
        let again = &changes[1];
        assert!(
            again.publish && again.audit.is_none(),
            "B audited its note already"
        );
        let i = &again.incident;
        assert_eq!(
            (
                i.version,
                i.state,
                i.resolution.as_deref(),
                i.updated_by.as_str(),
                i.last_change.detail.as_deref()
            ),
            (
                3,
                IncidentState::Resolved,
                Some("towed"),
                "bo",
                Some("driver called")
            )
        );
        // A takes it, with its own audit row for the note.
        assert!(a.merge(i.clone(), 203));
        let on_a = a.take_changes();
        assert_eq!(last_audited(&on_a), Some("note"));
        assert_eq!(a.get(&id), b.get(&id));
        // Made the same on every console that held the note: equal copies, nothing more.
        assert!(!a.merge(i.clone(), 204));
    }

    /// The action audited by the last of `changes`, if it was audited.
    fn last_audited(changes: &[BookChange]) -> Option<&str> {
        changes.last()?.audit.as_ref().map(|e| e.action.as_str())
    }

    /// An operator's note saying `text`.
    fn note_action(text: &str) -> IncidentAction {
        IncidentAction::Note { text: text.into() }
    }

    /// An operator's resolution, noted `note`.
    fn resolve_action(note: &str) -> IncidentAction {
        IncidentAction::Resolve { note: note.into() }
    }

    /// Two consoles, A and B, both holding the incident A opened; its id.
    fn two_consoles() -> (IncidentBook, IncidentBook, String) {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        b.merge(a.get(&id).unwrap().clone(), 101);
        b.take_changes();
        (a, b, id)
    }

    /// `who`'s `action` on incident `id` in `book` at `at`: the version made (its change taken).
    fn acted(
        book: &mut IncidentBook,
        id: &str,
        action: IncidentAction,
        who: &str,
        at: i64,
    ) -> Incident {
        let i = book.act(id, &action, who, at).unwrap();
        book.take_changes();
        i
    }

    #[test]
    fn a_note_made_while_another_console_moved_two_versions_on_is_kept() {
        let (mut a, mut b, id) = two_consoles();
        // Bo acknowledges, then assigns; meanwhile Ana, who has heard neither, adds a note.
        acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 200);
        let assigned = acted(
            &mut b,
            &id,
            IncidentAction::Assign { to: "cy".into() },
            "bo",
            201,
        );
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 202);
        assert_eq!((note.version, assigned.version), (2, 3));
        // A hears the assignment before its own note comes back: Bo made it without the note.
        assert!(a.merge(assigned.clone(), 203));
        let changes = a.take_changes();
        let again = &changes.last().unwrap().incident;
        assert!(changes.last().unwrap().publish, "the note goes out again");
        assert!(
            changes.last().unwrap().audit.is_none(),
            "A audited its note already"
        );
        assert_eq!(
            (
                again.version,
                again.state,
                again.assignee.as_deref(),
                again.updated_by.as_str()
            ),
            (4, IncidentState::Assigned, Some("cy"), "ana")
        );
        assert_eq!(again.last_change.detail.as_deref(), Some("driver called"));
        // B refuses the note's first version (older than its own) and takes the second.
        assert!(!b.merge(note.clone(), 204));
        assert!(b.merge(again.clone(), 205));
        let on_b = b.take_changes();
        assert_eq!(last_audited(&on_b), Some("note"));
        assert_eq!(a.get(&id), b.get(&id));
        // A's own copies coming back change nothing, the first one neither.
        assert!(!a.merge(note, 206));
        assert!(!a.merge(again.clone(), 206));
        assert!(a.take_changes().is_empty());

        // A note heard back before a newer version is in it: not made again.
        let note = acted(&mut a, &id, note_action("on scene"), "ana", 300);
        assert!(!a.merge(note.clone(), 301), "the echo");
        assert!(b.merge(note, 301));
        b.take_changes();
        let resolved = acted(&mut b, &id, resolve_action("towed"), "bo", 302);
        assert!(a.merge(resolved.clone(), 303));
        assert_eq!(a.take_changes().len(), 1, "the resolution only");
        assert_eq!(a.get(&id), Some(&resolved));
        assert!(a.unechoed.is_empty(), "every note came back");
    }

    #[test]
    fn a_note_not_heard_back_is_made_again_over_a_repeat_that_lost_too() {
        let (mut a, mut b, id) = two_consoles();
        // Ana notes, then A counts a repeat; Bo acknowledges, then assigns, having heard neither.
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        a.raise(&trigger("v1", "e2", 201), 201);
        let repeat = a.take_changes().pop().unwrap().incident;
        let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 200);
        let assigned = acted(
            &mut b,
            &id,
            IncidentAction::Assign { to: "cy".into() },
            "bo",
            202,
        );
        assert_eq!((note.version, repeat.version, assigned.version), (2, 3, 3));
        // Bo's acknowledgement comes first: it won at 2 over the note, and A's repeat at 3 was
        // built without it. The acknowledgement is made again on top (as Bo made it), then the
        // note, which no console that took the acknowledgement first has.
        assert!(a.merge(acked.clone(), 203));
        let made = a.take_changes();
        assert_eq!(made.len(), 2);
        let (restored, note_again) = (&made[0].incident, &made[1].incident);
        assert_eq!(
            (
                restored.version,
                restored.state,
                restored.updated_by.as_str(),
                restored.count
            ),
            (4, IncidentState::Acknowledged, "bo", 2)
        );
        assert_eq!(made[0].audit.as_ref().unwrap().action, "acknowledged");
        assert_eq!(
            (note_again.version, note_again.updated_by.as_str()),
            (5, "ana")
        );
        assert!(made[1].audit.is_none(), "A audited its note already");
        // Then the assignment: it wins at 3 over the repeat, and the acknowledgement made again
        // since is older than it, so it is made again too.
        assert!(a.merge(assigned.clone(), 204));
        let top = a.take_changes().pop().unwrap().incident;
        assert_eq!(
            (
                top.version,
                top.updated_by.as_str(),
                top.state,
                top.assignee.as_deref(),
                top.count
            ),
            (6, "bo", IncidentState::Assigned, Some("cy"), 2)
        );
        // B hears A's versions in A's order and ends where A is; it audits the note once and
        // not its own acknowledgement and assignment a second time.
        for v in [note, repeat, restored.clone(), note_again.clone(), top] {
            b.merge(v, 205);
        }
        let audited: Vec<String> = b
            .take_changes()
            .into_iter()
            .filter_map(|c| c.audit.map(|e| e.action))
            .collect();
        assert_eq!(audited, ["note"]);
        assert_eq!(a.get(&id), b.get(&id));
    }

    #[test]
    fn a_repeat_built_on_a_note_that_lost_does_not_undo_an_acknowledgement() {
        let (mut a, mut b, id) = two_consoles();
        // Ana notes and the note comes back; A counts a repeat; Bo acknowledged at once, having
        // heard neither, and the broker took the acknowledgement after the note.
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        assert!(!a.merge(note.clone(), 201), "the echo");
        a.raise(&trigger("v1", "e2", 202), 202);
        let repeat = a.take_changes().pop().unwrap().incident;
        let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 201);
        // On B: the note loses to the acknowledgement; the repeat, newer, undoes it for now.
        assert!(!b.merge(note.clone(), 203));
        assert!(b.merge(repeat.clone(), 203));
        assert_eq!(b.get(&id).unwrap().state, IncidentState::New);
        b.take_changes();
        // On A: the acknowledgement is older than the repeat, but won its version: made again.
        assert!(a.merge(acked.clone(), 204));
        let made: Vec<Incident> = a.take_changes().into_iter().map(|c| c.incident).collect();
        for v in made {
            b.merge(v, 205);
        }
        b.take_changes();
        let (on_a, on_b) = (a.get(&id).unwrap(), b.get(&id).unwrap());
        assert_eq!(on_a, on_b);
        assert_eq!(
            (on_a.state, on_a.count, on_a.last_change.action.as_str()),
            (IncidentState::Acknowledged, 2, "note")
        );
        // The copies coming back change nothing.
        assert!(!a.merge(acked, 206));
        assert!(!b.merge(repeat, 206));
        assert!(a.take_changes().is_empty() && b.take_changes().is_empty());
    }

    #[test]
    fn a_resolution_that_won_its_version_is_not_made_again_over_a_repeat_counted_since() {
        let (mut a, mut b, id) = two_consoles();
        // Ana notes, then A counts a repeat; Bo resolves, having heard neither.
        acted(&mut a, &id, note_action("driver called"), "ana", 200);
        a.raise(&trigger("v1", "e2", 202), 202);
        a.take_changes();
        let resolved = acted(&mut b, &id, resolve_action("false alarm"), "bo", 201);
        // The resolution won at 2 over the note, but an event came after it: the incident stays
        // open (as a tie would have settled it); only the note is made again.
        assert!(a.merge(resolved, 203));
        let made = a.take_changes();
        assert_eq!(made.len(), 1);
        let top = &made[0].incident;
        assert_eq!(
            (top.state, top.last_change.action.as_str(), top.version),
            (IncidentState::New, "note", 4)
        );
    }

    #[test]
    fn a_resolution_that_lost_its_version_does_not_come_back_through_a_restore() {
        let (mut a, mut b, id) = two_consoles();
        let mut c = IncidentBook::default();
        c.merge(a.get(&id).unwrap().clone(), 101);
        c.take_changes();
        // At once: Ana notes twice, Bo acknowledges, Cy resolves (the latest by the clock).
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        let note2 = acted(&mut a, &id, note_action("on scene"), "ana", 202);
        let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 201);
        let resolved = acted(&mut c, &id, resolve_action("towed"), "cy", 205);
        // The broker took them in this order; every console hears all, and what they make.
        let mut broker = vec![note, note2, acked, resolved];
        let mut books = [a, b, c];
        let mut heard = [0usize; 3];
        let mut audited: [Vec<(String, String)>; 3] = Default::default();
        while heard.iter().any(|&h| h < broker.len()) {
            for (n, book) in books.iter_mut().enumerate() {
                while let Some(v) = broker.get(heard[n]).cloned() {
                    heard[n] += 1;
                    book.merge(v, 300);
                    for change in book.take_changes() {
                        if let Some(e) = change.audit {
                            audited[n].push((e.action, e.detail.unwrap_or_default()));
                        }
                        if change.publish {
                            broker.push(change.incident);
                        }
                    }
                }
            }
        }
        let settled = books[0].get(&id).unwrap().clone();
        assert_eq!(
            settled.state,
            IncidentState::Acknowledged,
            "open over closed, as a tie between the acknowledgement and the resolution"
        );
        for book in &books[1..] {
            assert_eq!(book.get(&id), Some(&settled));
        }
        for (n, rows) in audited.iter().enumerate() {
            let once: HashSet<&(String, String)> = rows.iter().collect();
            assert_eq!(
                once.len(),
                rows.len(),
                "console {n} audited a change twice: {rows:?}"
            );
        }
        // Bo's console audits neither its acknowledgement again nor a note twice.
        let mut on_b = audited[1].clone();
        on_b.sort();
        assert_eq!(
            on_b,
            [
                ("note".to_owned(), "driver called".to_owned()),
                ("note".to_owned(), "on scene".to_owned())
            ]
        );
    }

    #[test]
    fn a_change_that_won_its_version_is_what_later_ones_are_weighed_against() {
        let (mut a, mut b, id) = two_consoles();
        let mut c = IncidentBook::default();
        c.merge(a.get(&id).unwrap().clone(), 101);
        let assign = |to: &str| IncidentAction::Assign { to: to.into() };
        let assigned = acted(&mut a, &id, assign("cy"), "ana", 150);
        for book in [&mut b, &mut c] {
            book.merge(assigned.clone(), 151);
            book.take_changes();
        }
        // At once: Ana notes twice, Bo assigns it to Cy again, Cy resolves it.
        acted(&mut a, &id, note_action("driver called"), "ana", 200);
        acted(&mut a, &id, note_action("on scene"), "ana", 202);
        let again = acted(&mut b, &id, assign("cy"), "bo", 201);
        let resolved = acted(&mut c, &id, resolve_action("towed"), "cy", 205);
        // Bo's assignment wins at 3 over the note: nothing to restore (it was assigned to Cy
        // already), the note made again. Cy's resolution loses to the assignment there, as in
        // a tie: it does not close the incident on top.
        assert!(a.merge(again, 206));
        a.take_changes();
        assert!(!a.merge(resolved, 207));
        assert_eq!(a.get(&id).unwrap().state, IncidentState::Assigned);
    }

    #[test]
    fn an_operator_change_that_lost_its_version_to_another_is_not_built_over() {
        let (mut a, mut b, id) = two_consoles();
        // Ana acknowledges, then resolves; Bo acknowledged at once, later by the clock.
        acted(&mut a, &id, IncidentAction::Acknowledge, "ana", 199);
        let resolve = resolve_action("towed");
        acted(&mut a, &id, resolve, "ana", 300);
        let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 201);
        // Bo's acknowledgement wins at 2, but Ana's resolution was built on hers on purpose.
        assert!(!a.merge(acked, 301));
        assert!(a.take_changes().is_empty());
        assert_eq!(a.get(&id).unwrap().state, IncidentState::Resolved);
    }

    #[test]
    fn a_merge_made_since_is_not_undone_by_a_restore() {
        let (mut a, mut b, x) = two_consoles();
        let note = acted(&mut a, &x, note_action("driver called"), "ana", 100);
        assert!(!a.merge(note, 101), "the echo");
        // Another console opened a second incident for the cause, and assigned it to Cy; A
        // merges it into X, which takes the assignment.
        let mut other = IncidentBook::default();
        let y = other.raise(&trigger("v1", "e2", 40), 102).unwrap();
        let assign = IncidentAction::Assign { to: "cy".into() };
        let y_assigned = acted(&mut other, &y, assign, "dee", 103);
        assert!(a.merge(y_assigned, 104));
        a.take_changes();
        assert_eq!(a.get(&x).unwrap().assignee.as_deref(), Some("cy"));
        // Bo's acknowledgement wins at 2 over the note; the merge since keeps the assignment.
        let acked = acted(&mut b, &x, IncidentAction::Acknowledge, "bo", 101);
        a.merge(acked, 105);
        let held = a.get(&x).unwrap();
        assert_eq!(
            (held.state, held.assignee.as_deref()),
            (IncidentState::Assigned, Some("cy"))
        );
    }

    #[test]
    fn a_repeat_counted_on_a_state_change_that_lost_does_not_undo_the_winner() {
        let (mut a, mut b, id) = two_consoles();
        // Ana acknowledges; Bo assigns it to himself a moment later, having heard nothing; A
        // counts an event on Ana's acknowledgement.
        acted(&mut a, &id, IncidentAction::Acknowledge, "ana", 200);
        let assign = IncidentAction::Assign { to: "bo".into() };
        let assigned = acted(&mut b, &id, assign, "bo", 201);
        a.raise(&trigger("v1", "e2", 202), 202);
        a.take_changes();
        // Bo's assignment won at 2; the repeat built on the acknowledgement set no state.
        assert!(a.merge(assigned, 203));
        let held = a.get(&id).unwrap();
        assert_eq!(
            (held.state, held.assignee.as_deref(), held.count),
            (IncidentState::Assigned, Some("bo"), 2)
        );
    }

    #[test]
    fn a_version_taken_from_another_console_may_have_been_built_on_the_winner() {
        let (mut a, mut b, id) = two_consoles();
        // A, cut off, notes. Bo acknowledges, then resolves having seen it; A, back, hears only
        // the resolution (the broker's retained copy), then the acknowledgement republished
        // late by a third console.
        acted(&mut a, &id, note_action("driver called"), "ana", 199);
        let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 200);
        let resolve = resolve_action("towed");
        let resolved = acted(&mut b, &id, resolve, "bo", 300);
        assert!(a.merge(resolved, 301));
        a.take_changes();
        // The resolution was not built on A's note: the acknowledgement does not undo it.
        a.merge(acked, 302);
        assert_eq!(a.get(&id).unwrap().state, IncidentState::Resolved);
    }

    #[test]
    fn a_copy_of_the_version_held_at_a_level_restores_nothing() {
        let (mut a, _b, id) = two_consoles();
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        a.raise(&trigger("v1", "e2", 201), 201);
        a.take_changes();
        // Another console made Ana's note again at 2 on top of another winner, later: the same
        // note, which wins the tie at 2 over A's copy, and which A has built on already.
        let mut copy = note;
        copy.updated_ms = 205;
        assert!(!a.merge(copy, 206));
        assert!(a.take_changes().is_empty());
    }

    #[test]
    fn a_reopening_is_not_made_again_while_another_incident_of_the_cause_is_open() {
        let (mut a, mut b, x) = two_consoles();
        let resolved = acted(&mut a, &x, resolve_action("done"), "ana", 110);
        b.merge(resolved, 111);
        b.take_changes();
        // A opens a new incident for the cause, and notes twice on the resolved one; Bo, who
        // heard neither, reopens the resolved one.
        let y = a.raise(&trigger("v1", "e2", 40), 120).unwrap();
        acted(&mut a, &x, note_action("checked"), "ana", 121);
        acted(&mut a, &x, note_action("checked again"), "ana", 122);
        let reopened = acted(&mut b, &x, IncidentAction::Reopen, "bo", 121);
        // The reopening won its version over the note, but Y is open for the cause here.
        a.merge(reopened, 123);
        assert_eq!(a.get(&x).unwrap().state, IncidentState::Resolved);
        assert!(a.get(&y).unwrap().state.is_open());
    }

    #[test]
    fn an_escalation_that_won_its_version_is_counted_again_on_top() {
        let high = |key: &str, at: i64| Trigger {
            severity: Severity::High,
            ..trigger("v1", key, at)
        };
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let id = a.raise(&high("e1", 10), 100).unwrap();
        b.merge(a.get(&id).unwrap().clone(), 101);
        b.take_changes();
        // Ana notes, then A counts a repeat; B counts a worse one at once (an escalation).
        acted(&mut a, &id, note_action("driver called"), "ana", 200);
        a.raise(&high("e2", 201), 201);
        a.take_changes();
        b.raise(&trigger("v1", "e3", 202), 202);
        let escalated = b.take_changes().pop().unwrap().incident;
        assert!(a.merge(escalated, 203));
        let made = a.take_changes();
        let again = &made[0];
        assert_eq!(
            (
                again.incident.last_change.action.as_str(),
                again.incident.severity,
                again.incident.last_seen_ms
            ),
            ("escalated", Severity::Critical, 202)
        );
        assert_eq!(
            again.audit.as_ref().map(|e| e.action.as_str()),
            Some("escalated")
        );
        assert_eq!(made.last().unwrap().incident.last_change.action, "note");
    }

    #[test]
    fn a_change_held_here_that_comes_back_made_again_is_not_audited_twice() {
        let (mut a, _b, id) = two_consoles();
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        // Another console made the note again on top of a version of its own.
        let mut made_again = note.clone();
        made_again.version = 3;
        assert!(a.merge(made_again, 201));
        let changes = a.take_changes();
        assert_eq!(changes.len(), 1);
        assert!(changes[0].audit.is_none());
    }

    #[test]
    fn a_note_made_again_is_known_again() {
        let (mut a, mut b, id) = two_consoles();
        let mut c = IncidentBook::default();
        c.merge(a.get(&id).unwrap().clone(), 101);
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 200);
        let ack = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 201);
        // The acknowledgement wins at 2 on A: the note again on top, at 3, at the later time.
        assert!(a.merge(ack, 202));
        let again = a.take_changes().pop().unwrap().incident;
        assert_eq!((again.version, again.updated_ms), (3, 201));
        // C took the note first: the copy made again is the same change, audited once.
        c.take_changes();
        assert!(c.merge(note, 203));
        assert_eq!(last_audited(&c.take_changes()), Some("note"));
        assert!(c.merge(again, 204));
        assert_eq!(last_audited(&c.take_changes()), None);
    }

    #[test]
    fn a_note_not_heard_back_is_made_again_over_the_held_version_that_won_a_tie() {
        let (mut a, _b, id) = two_consoles();
        // Ana notes, then acknowledges. A hears of Bo only his assignment at 3 (his acknowledgement
        // at 2 not at all: a reconnect replays the broker's retained copy, the latest).
        acted(&mut a, &id, note_action("driver called"), "ana", 202);
        acted(&mut a, &id, IncidentAction::Acknowledge, "ana", 203);
        let mut assigned = a.get(&id).unwrap().clone();
        assigned.state = IncidentState::Assigned;
        assigned.assignee = Some("cy".into());
        assigned.updated_by = "bo".into();
        assigned.updated_ms = 201;
        assigned.last_change = Change {
            action: "assigned".into(),
            detail: Some("cy".into()),
        };
        // Ana's acknowledgement wins the tie at 3, so Bo's console takes it next: without the
        // note, which lost at 2 there. It is made again on top of the acknowledgement.
        assert!(a.merge(assigned, 205));
        let again = a.take_changes().pop().unwrap().incident;
        assert_eq!(
            (again.version, again.updated_by.as_str(), again.state),
            (4, "ana", IncidentState::Acknowledged)
        );
        assert_eq!(again.last_change.detail.as_deref(), Some("driver called"));
    }

    #[test]
    fn a_change_made_again_on_a_version_that_merges_a_second_incident_is_kept() {
        let mut a = IncidentBook::default();
        let x = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let resolve = resolve_action("done");
        let resolved = acted(&mut a, &x, resolve, "ana", 110);
        let y = a.raise(&trigger("v1", "e2", 40), 120).unwrap();
        let note = acted(&mut a, &x, note_action("checked"), "ana", 130);
        assert!(!a.merge(note, 131), "the echo");
        // Another console reopened X at the note's version, having counted more repeats.
        let mut reopened = resolved.clone();
        reopened.version = 3;
        reopened.state = IncidentState::New;
        reopened.resolution = None;
        reopened.count = 5;
        reopened.last_seen_ms = 100;
        reopened.updated_by = "bo".into();
        reopened.updated_ms = 131;
        reopened.last_change = Change {
            action: "reopened".into(),
            detail: None,
        };
        a.take_changes();
        assert!(a.merge(reopened, 140));
        // The note made again on top of the reopening (4) stays what A holds of X, and Y, opened
        // later for the same cause, is merged into it.
        let held = a.get(&x).unwrap();
        assert_eq!(
            (held.version, held.last_change.action.as_str(), held.state),
            (4, "note", IncidentState::New)
        );
        assert_eq!(a.get(&y).unwrap().state, IncidentState::Resolved);
    }

    #[test]
    fn a_state_set_since_is_weighed_against_the_lost_level_s_winner_as_in_a_tie() {
        for (later, stays) in [
            // Ana, who had not heard Bo's acknowledgement, assigns after it: that stands.
            (
                IncidentAction::Assign { to: "ana".into() },
                IncidentState::Assigned,
            ),
            // She resolves after it: as in a tie, the acknowledgement keeps it open.
            (resolve_action("towed"), IncidentState::Acknowledged),
        ] {
            let (mut a, mut b, id) = two_consoles();
            acted(&mut a, &id, note_action("driver called"), "ana", 200);
            acted(&mut a, &id, later, "ana", 205);
            let acked = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 201);
            // The acknowledgement won at 2 over the note; the note is made again on top either
            // way.
            assert!(a.merge(acked, 206));
            let made = a.take_changes();
            let top = &made.last().unwrap().incident;
            assert_eq!(
                (top.state, top.last_change.action.as_str()),
                (stays, "note")
            );
        }
    }

    #[test]
    fn a_note_not_heard_back_is_made_again_over_the_version_that_won_a_tie_here() {
        let (mut a, mut b, id) = two_consoles();
        // Ana notes, then acknowledges; Bo acknowledges and assigns, earlier by the clock.
        let note = acted(&mut a, &id, note_action("driver called"), "ana", 202);
        let ana_ack = acted(&mut a, &id, IncidentAction::Acknowledge, "ana", 203);
        let bo_ack = acted(&mut b, &id, IncidentAction::Acknowledge, "bo", 200);
        let assigned = acted(
            &mut b,
            &id,
            IncidentAction::Assign { to: "cy".into() },
            "bo",
            201,
        );
        // Bo's acknowledgement wins at 2 over the note: the note is made again on top of Ana's
        // acknowledgement (made after Bo's, it stands).
        assert!(a.merge(bo_ack, 204));
        let again = a.take_changes().pop().unwrap();
        assert!(again.publish && again.audit.is_none());
        assert_eq!(
            (
                again.incident.version,
                again.incident.updated_by.as_str(),
                again.incident.state
            ),
            (4, "ana", IncidentState::Acknowledged)
        );
        // Ana's acknowledgement wins the tie at 3 over the assignment: nothing more to make.
        assert!(!a.merge(assigned, 205));
        assert!(a.take_changes().is_empty());
        for v in [note, ana_ack, again.incident.clone()] {
            b.merge(v, 206);
        }
        let on_b = b.take_changes();
        assert_eq!(last_audited(&on_b), Some("note"));
        assert_eq!(a.get(&id), b.get(&id));
    }

    /// A small deterministic generator for the interleavings below (xorshift64*).
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    /// Three consoles on one broker: each publishes what it changes, and hears everything the
    /// broker took, its own included, in the broker's order but each at its own pace. Random
    /// operators' actions, notes and repeats on one source, in thousands of interleavings: once
    /// every console has heard everything, all hold the same incidents.
    #[test]
    fn consoles_sharing_a_broker_settle_on_the_same_incidents_whatever_the_interleaving() {
        const CONSOLES: usize = 3;
        let severities = [Severity::Critical, Severity::High, Severity::Low];
        for seed in 1..=2000u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut books: Vec<IncidentBook> =
                (0..CONSOLES).map(|_| IncidentBook::default()).collect();
            let mut broker: Vec<Incident> = Vec::new();
            let mut heard = [0usize; CONSOLES];
            let publish = |book: &mut IncidentBook, broker: &mut Vec<Incident>| {
                broker.extend(
                    book.take_changes()
                        .into_iter()
                        .filter(|c| c.publish)
                        .map(|c| c.incident),
                );
            };
            let mut clock = 1_000i64;
            let mut events = 0;
            for _ in 0..40 {
                clock += 1;
                let c = dice.below(CONSOLES);
                // Each console's clock is a little off.
                let now = clock + c as i64 * 3;
                match dice.below(4) {
                    0 => {
                        events += 1;
                        let t = Trigger {
                            severity: severities[dice.below(severities.len())],
                            ..trigger("v1", &format!("e{events}"), now)
                        };
                        books[c].raise(&t, now);
                    }
                    1 => {
                        let mut ids: Vec<String> =
                            books[c].snapshot().into_iter().map(|i| i.id).collect();
                        ids.sort_unstable(); // the seed alone picks (not the map's order)
                        if ids.is_empty() {
                            continue;
                        }
                        let id = &ids[dice.below(ids.len())];
                        let who = ["ana", "bo", "cy"][c];
                        let action = match dice.below(5) {
                            0 => IncidentAction::Acknowledge,
                            1 => IncidentAction::Assign { to: who.into() },
                            2 => IncidentAction::Resolve {
                                note: format!("done {now}"),
                            },
                            3 => IncidentAction::Reopen,
                            _ => note_action(&format!("note {now}")),
                        };
                        let _refused_or_made = books[c].act(id, &action, who, now);
                    }
                    _ => {
                        if let Some(i) = broker.get(heard[c]).cloned() {
                            heard[c] += 1;
                            books[c].merge(i, now);
                        }
                    }
                }
                publish(&mut books[c], &mut broker);
            }
            // Everyone hears everything, including what hearing it makes.
            let mut rounds = 0;
            while heard.iter().any(|&h| h < broker.len()) {
                rounds += 1;
                assert!(rounds < 100_000, "seed {seed}: the consoles never settle");
                clock += 1;
                let c = dice.below(CONSOLES);
                if let Some(i) = broker.get(heard[c]).cloned() {
                    heard[c] += 1;
                    books[c].merge(i, clock);
                    publish(&mut books[c], &mut broker);
                }
            }
            let by_id = |book: &IncidentBook| {
                let mut all = book.snapshot();
                all.sort_by(|a, b| a.id.cmp(&b.id));
                all
            };
            let first = by_id(&books[0]);
            for (n, book) in books.iter().enumerate().skip(1) {
                assert_eq!(by_id(book), first, "seed {seed}: console {n} differs");
            }
        }
    }

    #[test]
    fn copies_no_run_of_changes_could_make_are_told_apart() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let held = book.get(&id).unwrap().clone();
        let mut copy = held.clone();
        copy.version = 1 + MAX_VERSION_STEP;
        assert_eq!(book.implausible(&copy), None, "ten million changes on");
        copy.version = MAX_VERSION;
        let why = book.implausible(&copy).unwrap();
        assert!(why.contains("past the 1 held"), "{why}");
        let mut new = held.clone();
        new.id = "00000000000000ff".into();
        new.version = MAX_NEW_VERSION;
        assert_eq!(book.implausible(&new), None);
        new.version += 1;
        assert!(book.implausible(&new).unwrap().contains("a new incident"));
        let mut backwards = held;
        backwards.first_seen_ms = backwards.last_seen_ms + 1;
        assert!(book.implausible(&backwards).is_some());
    }

    #[test]
    fn versions_stop_at_the_highest_every_console_accepts() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let mut forged = book.get(&id).unwrap().clone();
        forged.version = MAX_VERSION;
        forged.updated_by = "mallory".into();
        assert!(book.merge(forged, 110));
        // A change one below the cap is the last one, and other consoles take it.
        let mut forged = book.get(&id).unwrap().clone();
        forged.version = MAX_VERSION - 1;
        forged.updated_by = "mallory".into();
        let mut last = IncidentBook::default();
        last.merge(forged, 110);
        let acked = last
            .act(&id, &IncidentAction::Acknowledge, "ana", 120)
            .unwrap();
        assert_eq!(acked.version, MAX_VERSION);
        let topic = super::super::shared::topic(&id);
        let payload = serde_json::to_vec(&acked).unwrap();
        assert_eq!(
            super::super::shared::decode(&topic, &payload, 120).unwrap(),
            acked,
            "other consoles take it"
        );
        // At the cap, no more: an action is refused in words, a repeat changes nothing.
        assert_eq!(
            last.act(&id, &IncidentAction::Note { text: "x".into() }, "ana", 130),
            Err(ActionError::VersionLimit)
        );
        last.take_changes();
        assert_eq!(last.raise(&trigger("v1", "e2", 20), 140), Some(id.clone()));
        assert!(last.take_changes().is_empty());
        assert_eq!(book.get(&id).unwrap().version, MAX_VERSION);
    }

    #[test]
    fn a_repeat_delivered_again_is_not_counted_again_nor_opens_a_new_incident() {
        let mut book = IncidentBook::default();
        let id = book.raise(&trigger("v1", "e1", 10), 100).unwrap();
        book.raise(&trigger("v1", "e2", 20), 110).unwrap();
        // The link dropped before e2 was acknowledged: the broker delivers it again.
        assert_eq!(book.raise(&trigger("v1", "e2", 20), 120), None);
        assert_eq!(book.get(&id).unwrap().count, 2);
        // Resolved meanwhile: e2 again does not open a new incident; e3 does.
        let resolve = IncidentAction::Resolve { note: "ok".into() };
        book.act(&id, &resolve, "ana", 130).unwrap();
        assert_eq!(book.raise(&trigger("v1", "e2", 20), 140), None);
        assert!(book
            .raise(&trigger("v1", "e3", 30), 150)
            .is_some_and(|new| new != id));
        // Keys are kept while the cause has an incident held, and dropped with it.
        assert!(book.counted.contains_key(&("v1".into(), "panic".into())));
        let last = book.raise(&trigger("v1", "e4", 40), 160).unwrap();
        book.act(&last, &resolve, "ana", 170).unwrap();
        book.prune(170 + KEEP_RESOLVED_MS);
        assert!(book.counted.is_empty() && book.snapshot().is_empty());
    }

    #[test]
    fn a_console_back_after_days_does_not_open_again_what_the_others_resolved() {
        let resolve = IncidentAction::Resolve { note: "ok".into() };
        // A and C hold X open at version 2; C goes away. A resolves it (version 3), and two
        // days later has forgotten it.
        let mut a = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 0), 0).unwrap();
        a.act(&id, &IncidentAction::Acknowledge, "ana", 10).unwrap();
        let held_by_c = a.get(&id).unwrap().clone();
        a.act(&id, &resolve, "ana", 20).unwrap();
        let two_days = 2 * KEEP_RESOLVED_MS;
        assert_eq!(a.prune(two_days), vec![id.clone()]);
        a.take_changes();
        // C comes back and republishes what it held (version 2): ignored, and its retained copy
        // cleared. Its persistent session delivers the event that opened X: not opened again.
        assert!(a.is_old_news(&held_by_c, two_days) && a.is_outdated(&held_by_c, two_days));
        assert!(!a.merge(held_by_c.clone(), two_days));
        assert_eq!(a.raise(&trigger("v1", "e1", 0), two_days), None);
        // A version equal to the one forgotten (another console's that won a tie A never heard
        // of, say) is ignored but not cleared.
        let mut c = IncidentBook::default();
        c.merge(held_by_c.clone(), two_days);
        let noted = c
            .act(
                &id,
                &IncidentAction::Note { text: "x".into() },
                "cy",
                two_days + 1,
            )
            .unwrap();
        assert_eq!(noted.version, 3);
        assert!(a.is_old_news(&noted, two_days + 1) && !a.is_outdated(&noted, two_days + 1));
        assert!(!a.merge(noted, two_days + 1));
        assert!(a.get(&id).is_none() && a.take_changes().is_empty());
        // A console started later knows it from its history file.
        let mut b = IncidentBook::default();
        b.remember_forgotten([(id.clone(), 3, 20)]);
        assert!(!b.merge(held_by_c, two_days));
        // A newer version is taken: a reopening by a console that still held it resolved, and
        // what followed it (only the newest is retained). (So is a second change C made on its
        // old copy: versions cannot tell the two apart.)
        let mut acknowledged = a_resolved_version(&id, 5);
        acknowledged.state = IncidentState::Acknowledged;
        assert!(!a.is_old_news(&acknowledged, two_days + 4));
        assert!(a.merge(acknowledged, two_days + 4));
        assert_eq!(a.get(&id).unwrap().state, IncidentState::Acknowledged);
        // What was forgotten is remembered for 30 days.
        let mut d = IncidentBook::default();
        let gone = d.raise(&trigger("v9", "e1", 0), 0).unwrap();
        d.act(&gone, &resolve, "ana", 0).unwrap();
        d.prune(two_days);
        assert!(d.forgotten.contains_key(&gone));
        d.prune(two_days + KEEP_FORGOTTEN_MS);
        assert!(d.forgotten.is_empty());
    }

    /// Incident `id` resolved at version `version`, as another console would publish it.
    fn a_resolved_version(id: &str, version: u64) -> Incident {
        let mut book = IncidentBook::default();
        let opened = book.raise(&trigger("v1", "e1", 0), 0).unwrap();
        let mut i = book.get(&opened).unwrap().clone();
        i.id = id.into();
        i.version = version;
        i.state = IncidentState::Resolved;
        i.updated_ms = 2 * KEEP_RESOLVED_MS;
        i
    }

    #[test]
    fn incidents_from_other_consoles_stop_at_the_limit_held() {
        let mut book = IncidentBook {
            test_max_held: Some(2),
            ..IncidentBook::default()
        };
        let first = book.raise(&trigger("v1", "e1", 0), 0).unwrap();
        let mut other = IncidentBook::default();
        let second = other.raise(&trigger("v2", "e1", 0), 0).unwrap();
        let third = other.raise(&trigger("v3", "e1", 0), 0).unwrap();
        let [second, third] = [second, third].map(|id| other.get(&id).unwrap().clone());
        assert!(book.has_room_for(&second));
        book.merge(second.clone(), 1);
        assert!(!book.has_room_for(&third), "full");
        let mut newer = second;
        newer.version += 1;
        assert!(
            book.has_room_for(&newer),
            "one held already is always taken"
        );
        assert!(book.get(&first).is_some());
    }

    #[test]
    fn at_an_equal_version_what_keeps_it_open_wins_whatever_the_clocks() {
        let resolve = IncidentAction::Resolve { note: "ok".into() };
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let id = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        b.merge(a.get(&id).unwrap().clone(), 101);
        // A's operator resolves it after B counted a repeat: the repeat keeps it open on both.
        b.raise(&trigger("v1", "e2", 20), 200).unwrap();
        let repeat = b.get(&id).unwrap().clone();
        let resolved = a.act(&id, &resolve, "ana", 300).unwrap();
        assert!(a.merge(repeat.clone(), 301));
        assert!(!b.merge(resolved, 301));
        assert_eq!(a.get(&id), Some(&repeat));
        assert_eq!((repeat.state, repeat.count), (IncidentState::New, 2));
        // Two operators at once: an acknowledgement over a resolution, even an earlier one.
        let acked = b.act(&id, &IncidentAction::Acknowledge, "bo", 400).unwrap();
        let resolved = a.act(&id, &resolve, "ana", 500).unwrap();
        assert!(a.merge(acked.clone(), 501));
        assert!(!b.merge(resolved, 501));
        assert_eq!(a.get(&id), b.get(&id));
        assert_eq!(a.get(&id).unwrap().state, IncidentState::Acknowledged);
    }

    #[test]
    fn the_forgotten_remembered_are_bounded_the_oldest_going_first() {
        let mut book = IncidentBook::default();
        book.remember_forgotten((0..=MAX_FORGOTTEN as i64).map(|n| (format!("{n:016x}"), 1, n)));
        book.prune(MAX_FORGOTTEN as i64 + 1);
        assert_eq!(book.forgotten.len(), MAX_FORGOTTEN);
        assert!(!book.forgotten.contains_key(&format!("{:016x}", 0)));
        assert!(book.forgotten.contains_key(&format!("{:016x}", 1)));
    }

    #[test]
    fn an_incident_at_its_last_version_is_not_merged_away() {
        let mut a = IncidentBook::default();
        let mut b = IncidentBook::default();
        let first = a.raise(&trigger("v1", "e1", 10), 100).unwrap();
        let second = b.raise(&trigger("v1", "e2", 20), 100).unwrap();
        let mut forged = b.get(&second).unwrap().clone();
        forged.version = MAX_VERSION;
        a.take_changes();
        assert!(a.merge(forged, 110));
        let changes = a.take_changes();
        assert_eq!(changes.len(), 1, "taken, and no merge made of it");
        assert!(a.get(&second).unwrap().state.is_open());
        assert!(a.get(&first).unwrap().state.is_open());
        // The cause's next event still lands on the first.
        assert_eq!(a.raise(&trigger("v1", "e3", 30), 120), Some(first));
    }
}
