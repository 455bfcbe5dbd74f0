//! The employee directory and what the sync engine knows about each terminal, in the history
//! file: employees (with tombstones for leavers), terminals and their groups, what was last
//! confirmed on each terminal, per-person failures, jobs and requests in flight.
//!
//! What a terminal *should* hold is derived, not stored: every current employee whose
//! `terminals` list is empty (all terminals) or names the terminal or one of its groups. The
//! difference between that and `terminal_persons` (what a terminal's Ack or `QueryPerson`
//! confirmed) is the work, so a restart resumes exactly where the last confirmation left it.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

pub const DDL: &str = "
CREATE TABLE employees (
    employee_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    photo         TEXT NOT NULL,
    photo_sha256  TEXT NOT NULL,
    terminals     TEXT NOT NULL DEFAULT '',
    valid_from_ms INTEGER,
    valid_to_ms   INTEGER,
    person_type   INTEGER NOT NULL DEFAULT 0,
    updated_ms    INTEGER NOT NULL,
    removed_ms    INTEGER
);
CREATE TABLE terminals (
    terminal_id    TEXT PRIMARY KEY,
    name           TEXT,
    ip             TEXT,
    firmware       TEXT,
    person_count   INTEGER,
    last_seen_ms   INTEGER,
    online         INTEGER NOT NULL DEFAULT 0,
    ms_per_person  REAL,
    last_error     TEXT
);
CREATE TABLE terminal_groups (
    group_name  TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    PRIMARY KEY (group_name, terminal_id)
) WITHOUT ROWID;
CREATE TABLE terminal_persons (
    terminal_id  TEXT NOT NULL,
    employee_id  TEXT NOT NULL,
    content      TEXT,
    confirmed_ms INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, employee_id)
) WITHOUT ROWID;
CREATE TABLE sync_failures (
    terminal_id TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    content     TEXT NOT NULL,
    errcode     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, employee_id)
) WITHOUT ROWID;
CREATE TABLE sync_jobs (
    terminal_id TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    total       INTEGER NOT NULL,
    done        INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    busy_ms     INTEGER NOT NULL,
    last_error  TEXT
);
CREATE TABLE sync_inflight (
    message_id  TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    operator    TEXT NOT NULL,
    items       TEXT NOT NULL,
    sent_ms     INTEGER NOT NULL
);
";

/// Added with the attendance tables (migration 4): one employee's row on every terminal, for
/// the employee panel.
pub const DDL_BY_EMPLOYEE: &str =
    "CREATE INDEX terminal_persons_by_employee ON terminal_persons (employee_id);";

/// `CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN{body}END;`: the text the migrations
/// wrote, byte for byte (a released migration is never edited, not even its spacing).
macro_rules! trigger {
    ($name:literal, $event:literal, $table:literal, $body:expr) => {
        concat!(
            "CREATE TRIGGER ",
            $name,
            " AFTER ",
            $event,
            " ON ",
            $table,
            " BEGIN",
            $body,
            "END;\n"
        )
    };
}

/// A trigger that moves the directory's version, and the version of the employee whose row
/// (`NEW` or `OLD`) the statement touched, after `event` on `table`.
macro_rules! version_trigger {
    ($name:literal, $event:literal, $table:literal, $row:literal) => {
        trigger!(
            $name,
            $event,
            $table,
            concat!(
                "
    UPDATE directory_version SET n = n + 1;
    INSERT INTO employee_versions SELECT ",
                $row,
                ".employee_id, n FROM directory_version WHERE true
        ON CONFLICT (employee_id) DO UPDATE SET version = excluded.version;
"
            )
        )
    };
}

/// A trigger that moves the sync's inputs version after `event` on `table`.
macro_rules! inputs_trigger {
    ($name:literal, $event:literal, $table:literal) => {
        trigger!(
            $name,
            $event,
            $table,
            " UPDATE directory_inputs SET n = n + 1; "
        )
    };
}

/// Added in migration 5: a number that moves whenever what the employee list shows could have (an
/// employee, where they are stored, what was refused), and the number at which each employee's
/// row last changed, kept by triggers so that no writer, present or future, can forget them. The
/// panel asks for what changed since the version it holds: nothing at all on most refreshes, a
/// few hundred rows during a sync, where the whole list of 20,000 employees on 50 terminals is a
/// scan of a million placements. (The triggers upsert: an `INSERT OR REPLACE` in a trigger takes
/// the conflict policy of the statement that fired it, and aborted the import's upserts.)
pub const DDL_VERSION: &str = concat!(
    "
CREATE TABLE directory_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO directory_version (id, n) VALUES (1, 0);
CREATE TABLE employee_versions (
    employee_id TEXT PRIMARY KEY,
    version     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX employee_versions_by_version ON employee_versions (version);
CREATE INDEX sync_failures_by_employee ON sync_failures (employee_id);
",
    version_trigger!("employees_ins", "INSERT", "employees", "NEW"),
    version_trigger!("employees_upd", "UPDATE", "employees", "NEW"),
    version_trigger!("employees_del", "DELETE", "employees", "OLD"),
    version_trigger!("terminal_persons_ins", "INSERT", "terminal_persons", "NEW"),
    version_trigger!("terminal_persons_del", "DELETE", "terminal_persons", "OLD"),
    version_trigger!("sync_failures_ins", "INSERT", "sync_failures", "NEW"),
    version_trigger!("sync_failures_del", "DELETE", "sync_failures", "OLD"),
);

/// Added in migration 6: a number that moves whenever what the sync plans from changes (an
/// employee imported, edited or removed; a terminal group set), and never with the sync's own
/// writes (what terminals hold, refusals, jobs). A running sync watches it, so an import made by
/// another process (`watchfloor employees import` beside a headless `watchfloor record`) is
/// applied without a restart.
pub const DDL_INPUTS: &str = concat!(
    "
CREATE TABLE directory_inputs (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO directory_inputs (id, n) VALUES (1, 0);
",
    inputs_trigger!("employees_inputs_ins", "INSERT", "employees"),
    inputs_trigger!("employees_inputs_upd", "UPDATE", "employees"),
    inputs_trigger!("employees_inputs_del", "DELETE", "employees"),
    inputs_trigger!("terminal_groups_inputs_ins", "INSERT", "terminal_groups"),
    inputs_trigger!("terminal_groups_inputs_del", "DELETE", "terminal_groups"),
);

/// The number [`DDL_INPUTS`] keeps: equal numbers, the same employees and groups to plan from.
pub fn inputs_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT n FROM directory_inputs", [], |r| r.get(0))
}

/// The directory's version (see [`DDL_VERSION`]): equal numbers, equal employee lists.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT n FROM directory_version", [], |r| r.get(0))
}

/// How many employees' rows changed after directory version `since`.
pub fn changed_since(conn: &Connection, since: i64) -> rusqlite::Result<usize> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM employee_versions WHERE version > ?1",
        [since],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Allow-list or block-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonType {
    Allow,
    Block,
}

impl PersonType {
    pub fn wire(self) -> u8 {
        match self {
            PersonType::Allow => 0,
            PersonType::Block => 1,
        }
    }
}

/// One employee as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Employee {
    pub employee_id: String,
    pub name: String,
    /// Absolute path of the photo file.
    pub photo: String,
    pub photo_sha256: String,
    /// Terminal ids or group names; empty: every terminal.
    pub terminals: Vec<String>,
    /// Validity (epoch ms, end exclusive); after `valid_to_ms` the person is removed.
    pub valid_from_ms: Option<i64>,
    pub valid_to_ms: Option<i64>,
    pub person_type: PersonType,
}

impl Employee {
    /// A digest of everything a terminal stores about the person: a change re-sends them.
    pub fn content(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.name.as_str(),
            &self.photo_sha256,
            &format!("{:?}", self.person_type),
            &format!("{:?}", self.valid_from_ms),
            &format!("{:?}", self.valid_to_ms),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the person should be on `terminal` (in `groups_of_terminal`) at `now_ms`.
    pub fn should_be_on(
        &self,
        terminal: &str,
        groups_of_terminal: &HashSet<&str>,
        now_ms: i64,
    ) -> bool {
        let current = self.valid_to_ms.is_none_or(|t| now_ms < t);
        let assigned = self.terminals.is_empty()
            || self
                .terminals
                .iter()
                .any(|t| t == terminal || groups_of_terminal.contains(t.as_str()));
        current && assigned
    }
}

/// The current employees, by id.
pub fn employees(conn: &Connection) -> rusqlite::Result<HashMap<String, Employee>> {
    let mut stmt = conn.prepare(
        "SELECT employee_id, name, photo, photo_sha256, terminals, valid_from_ms, valid_to_ms, person_type
         FROM employees WHERE removed_ms IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        let terminals: String = r.get(4)?;
        Ok(Employee {
            employee_id: r.get(0)?,
            name: r.get(1)?,
            photo: r.get(2)?,
            photo_sha256: r.get(3)?,
            terminals: split_list(&terminals),
            valid_from_ms: r.get(5)?,
            valid_to_ms: r.get(6)?,
            person_type: if r.get::<_, i64>(7)? == 1 {
                PersonType::Block
            } else {
                PersonType::Allow
            },
        })
    })?;
    rows.map(|r| r.map(|e| (e.employee_id.clone(), e)))
        .collect()
}

/// A `;`-separated list (the `terminals` column), without empty entries.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ImportCounts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// Applies an import: `rows` become the directory. Employees missing from `rows` are marked
/// removed unless `keep` names them (rows of the file that could not be read) or
/// `hold_removals` is set (the file had rows whose id could not be read at all).
pub fn apply_import(
    conn: &mut Connection,
    rows: &[Employee],
    keep: &HashSet<String>,
    hold_removals: bool,
    now_ms: i64,
) -> rusqlite::Result<ImportCounts> {
    let tx = conn.transaction()?;
    let current = employees(&tx)?;
    let mut counts = ImportCounts::default();
    {
        let mut upsert = tx.prepare(
            "INSERT INTO employees (employee_id, name, photo, photo_sha256, terminals, valid_from_ms,
                                    valid_to_ms, person_type, updated_ms, removed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)
             ON CONFLICT (employee_id) DO UPDATE SET name = ?2, photo = ?3, photo_sha256 = ?4,
                 terminals = ?5, valid_from_ms = ?6, valid_to_ms = ?7, person_type = ?8,
                 updated_ms = ?9, removed_ms = NULL",
        )?;
        for e in rows {
            match current.get(&e.employee_id) {
                Some(old) if old == e => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            upsert.execute(params![
                e.employee_id,
                e.name,
                e.photo,
                e.photo_sha256,
                e.terminals.join(";"),
                e.valid_from_ms,
                e.valid_to_ms,
                e.person_type.wire(),
                now_ms
            ])?;
        }
        if !hold_removals {
            let listed: HashSet<&str> = rows.iter().map(|e| e.employee_id.as_str()).collect();
            let mut remove = tx.prepare(
                "UPDATE employees SET removed_ms = ?2, updated_ms = ?2 WHERE employee_id = ?1",
            )?;
            for id in current.keys() {
                if !listed.contains(id.as_str()) && !keep.contains(id) {
                    remove.execute(params![id, now_ms])?;
                    counts.removed += 1;
                }
            }
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// A terminal as the directory knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Terminal {
    pub terminal_id: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub firmware: Option<String>,
    pub person_count: Option<u32>,
    pub last_seen_ms: Option<i64>,
    pub online: bool,
    /// Measured processing time per person in a batch.
    pub ms_per_person: Option<f64>,
    pub last_error: Option<String>,
}

pub fn terminals(conn: &Connection) -> rusqlite::Result<Vec<Terminal>> {
    let mut stmt = conn.prepare(
        "SELECT terminal_id, name, ip, firmware, person_count, last_seen_ms, online, ms_per_person, last_error
         FROM terminals ORDER BY terminal_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Terminal {
            terminal_id: r.get(0)?,
            name: r.get(1)?,
            ip: r.get(2)?,
            firmware: r.get(3)?,
            person_count: r.get(4)?,
            last_seen_ms: r.get(5)?,
            online: r.get(6)?,
            ms_per_person: r.get(7)?,
            last_error: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Records a terminal (creating it when new); `None` fields keep what was known.
pub fn save_terminal(conn: &Connection, t: &Terminal) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO terminals (terminal_id, name, ip, firmware, person_count, last_seen_ms, online,
                               ms_per_person, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (terminal_id) DO UPDATE SET
             name = coalesce(?2, name), ip = coalesce(?3, ip), firmware = coalesce(?4, firmware),
             person_count = coalesce(?5, person_count), last_seen_ms = coalesce(?6, last_seen_ms),
             online = ?7, ms_per_person = coalesce(?8, ms_per_person), last_error = ?9",
        params![
            t.terminal_id,
            t.name,
            t.ip,
            t.firmware,
            t.person_count,
            t.last_seen_ms,
            t.online,
            t.ms_per_person,
            t.last_error
        ],
    )?;
    Ok(())
}

/// Replaces the members of terminal group `group`.
pub fn set_group(conn: &mut Connection, group: &str, members: &[String]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let held: Vec<(String, String)> = tx
        .prepare("SELECT group_name, terminal_id FROM terminal_groups WHERE group_name = ?1")?
        .query_map([group], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let wanted = members.iter().map(|m| (group.to_owned(), m.clone()));
    write_membership_changes(&tx, &held, wanted)?;
    tx.commit()
}

/// Deletes the rows of `held` not `wanted` and inserts the `wanted` ones not held, and nothing
/// else: a save that changes nothing writes nothing, so it does not move the directory's inputs
/// version (which has a running sync plan again and resume cancelled terminals).
fn write_membership_changes(
    tx: &Connection,
    held: &[(String, String)],
    wanted: impl Iterator<Item = (String, String)>,
) -> rusqlite::Result<()> {
    let wanted: HashSet<(String, String)> = wanted.collect();
    let held_set: HashSet<&(String, String)> = held.iter().collect();
    for (g, t) in held.iter().filter(|row| !wanted.contains(*row)) {
        tx.execute(
            "DELETE FROM terminal_groups WHERE group_name = ?1 AND terminal_id = ?2",
            params![g, t],
        )?;
    }
    for (g, t) in wanted.iter().filter(|row| !held_set.contains(row)) {
        tx.execute(
            "INSERT OR IGNORE INTO terminal_groups (group_name, terminal_id) VALUES (?1, ?2)",
            params![g, t],
        )?;
    }
    Ok(())
}

/// Why `name` cannot be a terminal group's name, or `None` when it can. Names are written in
/// the CSV's `terminals` column, `;`-separated, beside terminal ids.
pub fn group_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a group needs a name".into());
    }
    if name.trim() != name {
        return Some(format!("group name {name:?} starts or ends with a space"));
    }
    if name.chars().count() > 48 {
        return Some(format!("group name {name:?} is longer than 48 characters"));
    }
    name.chars()
        .find(|c| matches!(c, ';' | ',') || c.is_control())
        .map(|c| format!("group name {name:?} contains {c:?}, which separates names in the CSV"))
}

/// Puts `terminal` in exactly the groups `member_of` (groups that did not exist are created,
/// the other members of every group stay as they were).
pub fn set_terminal_groups(
    conn: &mut Connection,
    terminal: &str,
    member_of: &[String],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let held: Vec<(String, String)> = tx
        .prepare("SELECT group_name, terminal_id FROM terminal_groups WHERE terminal_id = ?1")?
        .query_map([terminal], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let wanted = member_of.iter().map(|g| (g.clone(), terminal.to_owned()));
    write_membership_changes(&tx, &held, wanted)?;
    tx.commit()
}

/// Group name -> member terminals.
pub fn groups(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<String>>> {
    let mut stmt =
        conn.prepare("SELECT group_name, terminal_id FROM terminal_groups ORDER BY 1, 2")?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (g, t) = row?;
        out.entry(g).or_default().push(t);
    }
    Ok(out)
}

/// The groups `terminal` belongs to.
pub fn groups_of<'g>(groups: &'g HashMap<String, Vec<String>>, terminal: &str) -> HashSet<&'g str> {
    groups
        .iter()
        .filter(|(_, members)| members.iter().any(|m| m == terminal))
        .map(|(g, _)| g.as_str())
        .collect()
}

/// The employees that should be on `terminal` at `now_ms`.
pub fn desired<'e>(
    employees: &'e HashMap<String, Employee>,
    groups: &HashMap<String, Vec<String>>,
    terminal: &str,
    now_ms: i64,
) -> HashMap<&'e str, &'e Employee> {
    let mine = groups_of(groups, terminal);
    employees
        .values()
        .filter(|e| e.should_be_on(terminal, &mine, now_ms))
        .map(|e| (e.employee_id.as_str(), e))
        .collect()
}

/// Employee id -> content last confirmed on `terminal` (`None`: present, content unknown).
pub fn confirmed(
    conn: &Connection,
    terminal: &str,
) -> rusqlite::Result<HashMap<String, Option<String>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT employee_id, content FROM terminal_persons WHERE terminal_id = ?1",
    )?;
    let rows = stmt.query_map([terminal], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Marks persons as stored on `terminal` with the given content.
pub fn confirm_stored(
    tx: &Connection,
    terminal: &str,
    persons: &[(String, String)],
    now_ms: i64,
) -> rusqlite::Result<()> {
    let mut up = tx.prepare_cached(
        "INSERT INTO terminal_persons (terminal_id, employee_id, content, confirmed_ms)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (terminal_id, employee_id) DO UPDATE SET content = ?3, confirmed_ms = ?4",
    )?;
    let mut clear =
        tx.prepare_cached("DELETE FROM sync_failures WHERE terminal_id = ?1 AND employee_id = ?2")?;
    for (id, content) in persons {
        up.execute(params![terminal, id, content, now_ms])?;
        clear.execute(params![terminal, id])?;
    }
    Ok(())
}

/// Marks persons as gone from `terminal`.
pub fn confirm_removed(tx: &Connection, terminal: &str, ids: &[String]) -> rusqlite::Result<()> {
    let mut del = tx.prepare_cached(
        "DELETE FROM terminal_persons WHERE terminal_id = ?1 AND employee_id = ?2",
    )?;
    let mut clear =
        tx.prepare_cached("DELETE FROM sync_failures WHERE terminal_id = ?1 AND employee_id = ?2")?;
    for id in ids {
        del.execute(params![terminal, id])?;
        clear.execute(params![terminal, id])?;
    }
    Ok(())
}

/// Brings `terminal_persons` in line with a `QueryPerson` answer: ids the terminal lacks are
/// forgotten (they will be sent again), ids it has that we did not confirm are recorded with
/// the content an unanswered batch sent them (`sent`), else unknown content (they will be
/// updated, or removed when not wanted there).
pub fn reconcile(
    tx: &Connection,
    terminal: &str,
    present: &HashSet<String>,
    managed: &HashSet<String>,
    sent: &HashMap<&str, &str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let known = confirmed(tx, terminal)?;
    let gone: Vec<String> = known
        .keys()
        .filter(|id| !present.contains(*id))
        .cloned()
        .collect();
    let mut del = tx.prepare_cached(
        "DELETE FROM terminal_persons WHERE terminal_id = ?1 AND employee_id = ?2",
    )?;
    for id in &gone {
        del.execute(params![terminal, id])?;
    }
    // Persons another system put there are left alone: only ids this directory knows (now or
    // as a leaver) are ours to update or remove. One not confirmed here before holds what an
    // unanswered batch sent it (`sent`), if one did; else its content is unknown (NULL), and it
    // is sent again. (One confirmed before keeps its confirmed content: whether a change sent
    // since was taken is not known, and the plan sends it again.)
    let mut add = tx.prepare_cached(
        "INSERT OR IGNORE INTO terminal_persons (terminal_id, employee_id, content, confirmed_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for id in present.iter().filter(|id| managed.contains(*id)) {
        add.execute(params![terminal, id, sent.get(id.as_str()), now_ms])?;
    }
    Ok(())
}

/// Every employee id this directory has ever held (current and removed).
pub fn managed_ids(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT employee_id FROM employees")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// A person a terminal refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Failure {
    pub terminal_id: String,
    pub employee_id: String,
    /// The content that was refused: a changed employee is tried again.
    pub content: String,
    pub errcode: u32,
    pub reason: String,
    pub attempts: u32,
    #[ts(type = "number")]
    pub at_ms: i64,
}

/// The `content` of a refusal to remove a person (a person's own content is a hash in hex).
pub const REMOVAL_CONTENT: &str = "(removal)";

/// Forgets a refusal (the person is no longer wanted on the terminal, nor on it).
pub fn clear_failure(conn: &Connection, terminal: &str, employee: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM sync_failures WHERE terminal_id = ?1 AND employee_id = ?2")?
        .execute(params![terminal, employee])?;
    Ok(())
}

/// Counts a refusal as at least `attempts` tries (one given up on at once).
pub fn raise_attempts(
    conn: &Connection,
    terminal: &str,
    employee: &str,
    attempts: u32,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE sync_failures SET attempts = max(attempts, ?3)
         WHERE terminal_id = ?1 AND employee_id = ?2",
    )?
    .execute(params![terminal, employee, attempts])?;
    Ok(())
}

/// Records a refusal (counting attempts for the same content).
pub fn record_failure(tx: &Connection, f: &Failure) -> rusqlite::Result<u32> {
    tx.prepare_cached(
        "INSERT INTO sync_failures (terminal_id, employee_id, content, errcode, reason, attempts, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT (terminal_id, employee_id) DO UPDATE SET
             attempts = CASE WHEN content = ?3 THEN attempts + 1 ELSE 1 END,
             content = ?3, errcode = ?4, reason = ?5, at_ms = ?6",
    )?
    .execute(params![
        f.terminal_id,
        f.employee_id,
        f.content,
        f.errcode,
        f.reason,
        f.at_ms
    ])?;
    tx.query_row(
        "SELECT attempts FROM sync_failures WHERE terminal_id = ?1 AND employee_id = ?2",
        params![f.terminal_id, f.employee_id],
        |r| r.get(0),
    )
}

/// Refusals, for one terminal or all.
pub fn failures(conn: &Connection, terminal: Option<&str>) -> rusqlite::Result<Vec<Failure>> {
    failures_where(conn, "?1 IS NULL OR terminal_id = ?1", terminal)
}

/// One employee's refusals, on every terminal.
pub fn employee_failures(conn: &Connection, employee_id: &str) -> rusqlite::Result<Vec<Failure>> {
    failures_where(conn, "employee_id = ?1", Some(employee_id))
}

fn failures_where(
    conn: &Connection,
    condition: &str,
    value: Option<&str>,
) -> rusqlite::Result<Vec<Failure>> {
    // `condition` is one of the two fixed texts above; the value is bound.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT terminal_id, employee_id, content, errcode, reason, attempts, at_ms FROM sync_failures
         WHERE {condition} ORDER BY terminal_id, employee_id"
    ))?;
    let rows = stmt.query_map([value], |r| {
        Ok(Failure {
            terminal_id: r.get(0)?,
            employee_id: r.get(1)?,
            content: r.get(2)?,
            errcode: r.get(3)?,
            reason: r.get(4)?,
            attempts: r.get(5)?,
            at_ms: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Forgets refusals (for one terminal or all), so the persons are tried again.
pub fn clear_failures(conn: &Connection, terminal: Option<&str>) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sync_failures WHERE ?1 IS NULL OR terminal_id = ?1",
        [terminal],
    )
}

/// A terminal's sync job: the work found when it started and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub terminal_id: String,
    /// running | paused (terminal offline) | done | cancelled
    pub state: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    /// Time the terminal spent on our requests.
    pub busy_ms: u64,
    pub last_error: Option<String>,
}

impl Job {
    /// Its failed persons are to be tried again (their failures were cleared). A job under way
    /// (running, or paused while its terminal is offline) goes on, with them pending again
    /// instead of failed (counted in both, its progress never reached its total); a finished
    /// or cancelled one is over, and the next plan starts a job for the retries.
    pub fn retry_failed(&mut self) {
        match self.state.as_str() {
            "running" | "paused" => self.failed = 0,
            _ => self.state = "done".into(),
        }
    }
}

pub fn job(conn: &Connection, terminal: &str) -> rusqlite::Result<Option<Job>> {
    conn.query_row(
        "SELECT terminal_id, state, started_ms, finished_ms, total, done, failed, busy_ms, last_error
         FROM sync_jobs WHERE terminal_id = ?1",
        [terminal],
        job_row,
    )
    .optional()
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        terminal_id: r.get(0)?,
        state: r.get(1)?,
        started_ms: r.get(2)?,
        finished_ms: r.get(3)?,
        total: r.get::<_, i64>(4)? as u64,
        done: r.get::<_, i64>(5)? as u64,
        failed: r.get::<_, i64>(6)? as u64,
        busy_ms: r.get::<_, i64>(7)? as u64,
        last_error: r.get(8)?,
    })
}

pub fn save_job(conn: &Connection, j: &Job) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_jobs (terminal_id, state, started_ms, finished_ms, total, done, failed, busy_ms, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (terminal_id) DO UPDATE SET state = ?2, started_ms = ?3, finished_ms = ?4,
             total = ?5, done = ?6, failed = ?7, busy_ms = ?8, last_error = ?9",
    )?
    .execute(params![
        j.terminal_id,
        j.state,
        j.started_ms,
        j.finished_ms,
        j.total as i64,
        j.done as i64,
        j.failed as i64,
        j.busy_ms as i64,
        j.last_error
    ])?;
    Ok(())
}

/// A request sent and not yet answered, kept so that its Ack is applied even after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub message_id: String,
    pub terminal_id: String,
    pub operator: String,
    /// (employee id, content sent) pairs; content is empty for removals.
    pub items: Vec<(String, String)>,
    pub sent_ms: i64,
}

pub fn save_inflight(conn: &Connection, r: &InFlight) -> rusqlite::Result<()> {
    let items = serde_json::to_string(&r.items).expect("pairs of strings serialise");
    conn.prepare_cached(
        "INSERT OR REPLACE INTO sync_inflight (message_id, terminal_id, operator, items, sent_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        r.message_id,
        r.terminal_id,
        r.operator,
        items,
        r.sent_ms
    ])?;
    Ok(())
}

/// Takes (removes and returns) the request with `message_id`.
pub fn take_inflight(conn: &Connection, message_id: &str) -> rusqlite::Result<Option<InFlight>> {
    let row = conn
        .query_row(
            "SELECT message_id, terminal_id, operator, items, sent_ms FROM sync_inflight WHERE message_id = ?1",
            [message_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((message_id, terminal_id, operator, items, sent_ms)) = row else {
        return Ok(None);
    };
    conn.execute(
        "DELETE FROM sync_inflight WHERE message_id = ?1",
        [&message_id],
    )?;
    Ok(Some(InFlight {
        message_id,
        terminal_id,
        operator,
        // A row this code wrote; an unreadable one (hand-edited file) counts as empty.
        items: serde_json::from_str(&items).unwrap_or_default(),
        sent_ms,
    }))
}

/// Drops requests older than `before_ms` (their Acks will not come any more).
pub fn prune_inflight(conn: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sync_inflight WHERE sent_ms < ?1", [before_ms])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;

    fn emp(id: &str, terminals: &[&str]) -> Employee {
        Employee {
            employee_id: id.into(),
            name: format!("Name {id}"),
            photo: format!("/p/{id}.jpg"),
            photo_sha256: "ab".into(),
            terminals: terminals.iter().map(|t| t.to_string()).collect(),
            valid_from_ms: None,
            valid_to_ms: None,
            person_type: PersonType::Allow,
        }
    }

    #[test]
    fn reimport_applies_the_difference_and_keeps_unreadable_rows() {
        let mut conn = store::open_in_memory().unwrap();
        let first = vec![emp("a", &[]), emp("b", &[]), emp("c", &[])];
        let c = apply_import(&mut conn, &first, &HashSet::new(), false, 1).unwrap();
        assert_eq!((c.added, c.updated, c.removed), (3, 0, 0));
        let mut b2 = emp("b", &[]);
        b2.name = "Renamed".into();
        // c's row could not be read this time: it is kept, not removed.
        let keep: HashSet<String> = ["c".to_string()].into();
        let c = apply_import(
            &mut conn,
            &[emp("a", &[]), b2, emp("d", &[])],
            &keep,
            false,
            2,
        )
        .unwrap();
        assert_eq!(
            c,
            ImportCounts {
                added: 1,
                updated: 1,
                unchanged: 1,
                removed: 0
            }
        );
        let c = apply_import(&mut conn, &[emp("a", &[])], &HashSet::new(), true, 3).unwrap();
        assert_eq!(c.removed, 0, "removals are held back when asked");
        let c = apply_import(&mut conn, &[emp("a", &[])], &HashSet::new(), false, 4).unwrap();
        assert_eq!(c.removed, 3);
        assert_eq!(employees(&conn).unwrap().len(), 1);
        assert!(
            managed_ids(&conn).unwrap().contains("d"),
            "leavers stay known"
        );
    }

    #[test]
    fn a_terminal_is_put_in_exactly_its_groups_and_others_stay() {
        let mut conn = store::open_in_memory().unwrap();
        set_group(&mut conn, "gate", &["T1".into(), "T2".into()]).unwrap();
        set_group(&mut conn, "lobby", &["T1".into()]).unwrap();
        set_terminal_groups(&mut conn, "T1", &["gate".into(), "yard".into()]).unwrap();
        let g = groups(&conn).unwrap();
        assert_eq!(g["gate"], ["T1", "T2"]);
        assert_eq!(g["yard"], ["T1"]);
        assert!(!g.contains_key("lobby"), "T1 was its only member");
        assert_eq!(group_name_problem("gate"), None);
        assert!(group_name_problem("a;b").unwrap().contains("';'"));
        assert!(group_name_problem(" gate").is_some());
        assert!(group_name_problem("").is_some());
    }

    #[test]
    fn desired_follows_ids_groups_and_validity() {
        let mut conn = store::open_in_memory().unwrap();
        set_group(&mut conn, "gate", &["T2".into(), "T3".into()]).unwrap();
        let mut expired = emp("x", &[]);
        expired.valid_to_ms = Some(100);
        let all: HashMap<String, Employee> = [
            emp("a", &[]),
            emp("b", &["T1"]),
            emp("c", &["gate"]),
            expired,
        ]
        .into_iter()
        .map(|e| (e.employee_id.clone(), e))
        .collect();
        let g = groups(&conn).unwrap();
        let ids = |t: &str, now| {
            let mut v: Vec<&str> = desired(&all, &g, t, now).into_keys().collect();
            v.sort();
            v
        };
        assert_eq!(ids("T1", 200), ["a", "b"]);
        assert_eq!(ids("T3", 200), ["a", "c"]);
        assert_eq!(ids("T9", 50), ["a", "x"], "valid until 100");
    }

    #[test]
    fn reconcile_forgets_missing_and_adopts_only_managed_ids() {
        let conn = store::open_in_memory().unwrap();
        confirm_stored(
            &conn,
            "T1",
            &[("a".into(), "h1".into()), ("b".into(), "h2".into())],
            1,
        )
        .unwrap();
        let present: HashSet<String> = ["a", "z", "m", "n"].map(String::from).into();
        let managed: HashSet<String> = ["a", "b", "m", "n"].map(String::from).into();
        // An unanswered batch sent "n" (new here) and a change to "a" (confirmed before).
        let sent = HashMap::from([("n", "h9"), ("a", "h5")]);
        reconcile(&conn, "T1", &present, &managed, &sent, 2).unwrap();
        let c = confirmed(&conn, "T1").unwrap();
        assert_eq!(
            c.get("a"),
            Some(&Some("h1".into())),
            "whether it took h5 is not known"
        );
        assert_eq!(c.get("m"), Some(&None));
        assert_eq!(c.get("n"), Some(&Some("h9".into())), "added by that batch");
        assert!(!c.contains_key("b") && !c.contains_key("z"));
    }

    #[test]
    fn failures_count_attempts_per_content() {
        let conn = store::open_in_memory().unwrap();
        let mut f = Failure {
            terminal_id: "T1".into(),
            employee_id: "a".into(),
            content: "h1".into(),
            errcode: 465,
            reason: "photo download failed".into(),
            attempts: 0,
            at_ms: 1,
        };
        assert_eq!(record_failure(&conn, &f).unwrap(), 1);
        assert_eq!(record_failure(&conn, &f).unwrap(), 2);
        f.content = "h2".into();
        assert_eq!(record_failure(&conn, &f).unwrap(), 1);
        confirm_stored(&conn, "T1", &[("a".into(), "h2".into())], 2).unwrap();
        assert!(failures(&conn, None).unwrap().is_empty());
    }

    #[test]
    fn retrying_failures_keeps_a_job_under_way_and_its_count_whole() {
        let job = |state: &str| Job {
            terminal_id: "T1".into(),
            state: state.into(),
            started_ms: 0,
            finished_ms: None,
            total: 100,
            done: 80,
            failed: 10,
            busy_ms: 0,
            last_error: None,
        };
        for state in ["running", "paused"] {
            let mut j = job(state);
            j.retry_failed();
            assert_eq!((j.state.as_str(), j.done, j.failed), (state, 80, 0));
        }
        for state in ["done", "cancelled"] {
            let mut j = job(state);
            j.retry_failed();
            assert_eq!(j.state, "done", "over: the retries get a job of their own");
        }
    }

    #[test]
    fn saving_groups_unchanged_writes_nothing() {
        let mut conn = store::open_in_memory().unwrap();
        set_group(&mut conn, "gate", &["T1".into(), "T2".into()]).unwrap();
        set_terminal_groups(&mut conn, "T3", &["gate".into(), "yard".into()]).unwrap();
        let before = inputs_version(&conn).unwrap();
        set_group(&mut conn, "gate", &["T2".into(), "T1".into(), "T3".into()]).unwrap();
        set_terminal_groups(&mut conn, "T3", &["yard".into(), "gate".into()]).unwrap();
        assert_eq!(inputs_version(&conn).unwrap(), before, "nothing changed");
        set_group(&mut conn, "gate", &["T1".into(), "T3".into()]).unwrap();
        assert_eq!(
            inputs_version(&conn).unwrap(),
            before + 1,
            "T2 left the gate"
        );
        let g = groups(&conn).unwrap();
        assert_eq!(g["gate"], ["T1", "T3"]);
        assert_eq!(g["yard"], ["T3"]);
    }
}
