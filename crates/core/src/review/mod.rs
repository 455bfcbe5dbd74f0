//! Offline review of a history file: open it without ever writing to it, and answer "what was
//! the picture at instant T" for one timeline shared by the map, the incidents and attendance.
//!
//! - [`ReviewFile::open`]: read-only opening (live files, copies with or without their WAL,
//!   older schemas migrated on a private copy, newer ones refused).
//! - [`frame`]: every device where it was at an instant (interpolated, stale marked).
//! - [`timeline`]: the file's time span, stepping from event to event, the next incident.
//! - [`incidents`]: incidents as they stood at an instant, with their audit trail up to it.
//! - [`trips`]: a device's track with speeds, stops and trip totals.
//! - [`report`]: incidents by type and severity with response times, device availability.
//! - [`document`]: reports and the review window's view written out (CSV, HTML, GeoJSON, KML).
//!
//! Nothing here needs a broker, the network or a window.

pub mod document;
pub mod frame;
pub mod incidents;
pub mod report;
pub mod timeline;
pub mod trips;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::store::{self, migration, positions::PositionRow, StoreError};

/// Most time slices a long track is read in at once (see [`ReviewFile::track_rows`]).
const TRACK_SLICES: i64 = 8;
/// A range shorter than this is read in one go: slicing it would only add threads.
const TRACK_SLICE_MIN_MS: i64 = 30 * 60_000;

/// A history file opened for review.
pub struct ReviewFile {
    conn: Connection,
    path: PathBuf,
    how: Opened,
    /// The file `conn` reads (the private copy, when there is one) and whether it is immutable,
    /// so that [`ReviewFile::track_rows`] can open more connections on the same.
    source: (PathBuf, bool),
    /// Read-only connections beside `conn` for reads done in slices at once, kept between calls.
    slice_readers: Mutex<Vec<Connection>>,
    devices: Vec<frame::DeviceMeta>,
    /// Every incident's audit trail, read on the first frame and topped up after; shared with
    /// [`ReviewFile::another_reader`]'s handles.
    trails: Arc<Mutex<incidents::Trails>>,
    /// Holds the private copy (older schema, or a WAL that cannot be read in place) alive.
    copy: Option<tempfile::TempDir>,
}

/// How the file was opened, for the title bar and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Opened {
    /// No write-ahead log beside it: opened immutable (no lock, no side file, no write).
    Immutable,
    /// A write-ahead log beside it (a running console, or a copy taken with its log): opened
    /// read-only, so its last commits are seen; SQLite may use the `-shm` index beside it.
    ReadOnly,
    /// Read from a private copy: an older schema migrated there, or a log that could not be
    /// read in place. The original is untouched.
    Copy,
}

impl ReviewFile {
    /// Whether `path` is a history file this Watchfloor can review, found without opening it
    /// for review: its schema version is read in place, so a file from an older Watchfloor is
    /// not copied (gigabytes, into the temp folder) only to be copied again by the window that
    /// opens it. A log that cannot be read in place is checked the long way, on a copy.
    pub fn check(path: &Path) -> Result<(), StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        let has_wal = has_log(path);
        match open_flags(path, !has_wal).and_then(|c| version(&c).map(|v| (c, v))) {
            Ok((conn, found)) => store::check_readable(&conn, path, found),
            Err(_) if has_wal => Self::open(path).map(drop),
            Err(source) => Err(StoreError::Open {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Opens `path` for review. The database and its log are never written; a file from a
    /// newer Watchfloor is refused, one from an older Watchfloor is migrated on a private copy.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = || path.display().to_string();
        if !path.is_file() {
            return Err(StoreError::Missing { path: shown() });
        }
        let has_wal = has_log(path);
        let direct = if has_wal {
            open_flags(path, false).map(|c| (c, Opened::ReadOnly))
        } else {
            open_flags(path, true).map(|c| (c, Opened::Immutable))
        };
        let mut source = (path.to_owned(), !has_wal);
        let (conn, how, copy) = match direct.and_then(|(c, how)| version(&c).map(|v| (c, how, v))) {
            Ok((conn, how, found)) => {
                store::check_readable(&conn, path, found)?;
                if found >= migration::REVIEW_READS_IN_PLACE_FROM {
                    (conn, how, None)
                } else {
                    let (copied, dir) = migrated_copy(path, Source::Open(&conn))?;
                    drop(conn);
                    let conn = copied;
                    source = (copy_in(&dir), false);
                    (conn, Opened::Copy, Some(dir))
                }
            }
            // The log is there but cannot be read in place (no -shm and a read-only folder):
            // read a copy.
            Err(e) if has_wal => {
                tracing::info!(error = %e, "reading a copy of {}", shown());
                let (conn, dir) = migrated_copy(path, Source::FileAndLog)?;
                source = (copy_in(&dir), false);
                (conn, Opened::Copy, Some(dir))
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: shown(),
                    source,
                })
            }
        };
        let devices = frame::device_meta(&conn)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            how,
            source,
            slice_readers: Mutex::new(Vec::new()),
            devices,
            trails: Arc::default(),
            copy,
        })
    }

    /// `device`'s fixes with `from_ms <= ts < to_ms`, oldest first. A long range is read in up
    /// to [`TRACK_SLICES`] time slices at once, each on a connection of its own: fixes are
    /// stored in arrival order (every device interleaved), so from a file not yet in the OS's
    /// cache each fix is one random page read, and one connection has one read in flight at a
    /// time. Slices keep several in flight (docs/BENCHMARKS.md, "Review": a cold 24-hour
    /// track). Each slice reads a snapshot of its own; a live file only grows, so together
    /// they hold every fix committed before the read began.
    pub fn track_rows(
        &self,
        device: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Vec<PositionRow>> {
        let span = to_ms.saturating_sub(from_ms);
        if span < TRACK_SLICE_MIN_MS {
            return store::positions::track(&self.conn, device, from_ms, to_ms);
        }
        let step = span / TRACK_SLICES;
        let bounds: Vec<(i64, i64)> = (0..TRACK_SLICES)
            .map(|i| {
                let a = from_ms + i * step;
                let b = if i == TRACK_SLICES - 1 {
                    to_ms
                } else {
                    a + step
                };
                (a, b)
            })
            .collect();
        let mut readers = self.take_slice_readers(bounds.len())?;
        let slices: Vec<rusqlite::Result<Vec<PositionRow>>> = std::thread::scope(|scope| {
            let reads: Vec<_> = readers
                .iter_mut()
                .zip(&bounds)
                .map(|(conn, &(a, b))| {
                    scope.spawn(move || store::positions::track(conn, device, a, b))
                })
                .collect();
            reads
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        self.slice_readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .append(&mut readers);
        let mut rows = Vec::new();
        for slice in slices {
            rows.extend(slice?);
        }
        Ok(rows)
    }

    /// `n` connections for slice reads: those kept from earlier reads, and new ones.
    fn take_slice_readers(&self, n: usize) -> rusqlite::Result<Vec<Connection>> {
        let mut kept = self
            .slice_readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reuse = n.min(kept.len());
        let mut out: Vec<Connection> = kept.drain(..reuse).collect();
        drop(kept);
        while out.len() < n {
            out.push(open_flags(&self.source.0, self.source.1)?);
        }
        Ok(out)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn opened(&self) -> Opened {
        self.how
    }

    /// A second handle on the same file with a connection of its own, for a long read (an
    /// export of a month's report) that should not hold up the window's frames meanwhile. It
    /// shares the devices as placed in groups and the audit trails read so far. It does not own
    /// the private copy: the copy stays readable through it even after [`Self::discard_copy`],
    /// until it is dropped.
    pub fn another_reader(&self) -> rusqlite::Result<Self> {
        Ok(Self {
            conn: open_flags(&self.source.0, self.source.1)?,
            path: self.path.clone(),
            how: self.how,
            source: self.source.clone(),
            slice_readers: Mutex::new(Vec::new()),
            devices: self.devices.clone(),
            trails: Arc::clone(&self.trails),
            copy: None,
        })
    }

    /// Deletes the private copy, if there is one, now: for a window that ends its process
    /// without dropping what it holds (a Tauri app exits the process from its event loop).
    /// Reads after this fail; the open connections keep the deleted file readable until they
    /// close, which the process's end does.
    pub fn discard_copy(&mut self) {
        if let Some(dir) = self.copy.take() {
            let path = dir.path().display().to_string();
            if let Err(e) = dir.close() {
                tracing::warn!(error = %e, path, "could not delete the review's private copy");
            }
        }
    }

    /// The folder of the private copy, if the file was copied.
    pub fn copy_dir(&self) -> Option<&Path> {
        self.copy.as_ref().map(|d| d.path())
    }

    /// Every device with a stored fix, with its last known name and kind.
    pub fn devices(&self) -> &[frame::DeviceMeta] {
        &self.devices
    }

    /// Reads the devices again when a running console may still be writing the file (opened
    /// with its log), so one that has appeared since is reviewed too; a closed file or a copy
    /// does not change. Returns whether it read them.
    pub fn refresh_devices(
        &mut self,
        groups: &crate::groups::DeviceGroups,
    ) -> rusqlite::Result<bool> {
        if self.how != Opened::ReadOnly {
            return Ok(false);
        }
        self.devices = frame::device_meta(&self.conn)?;
        self.place_in_groups(groups);
        Ok(true)
    }

    /// Places every device in the reviewing console's groups (frames carry them).
    pub fn place_in_groups(&mut self, groups: &crate::groups::DeviceGroups) {
        for d in &mut self.devices {
            d.groups = groups.groups_of(&d.id).into();
        }
    }
}

/// What the review window shows about the file it opened.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ReviewInfo {
    pub path: String,
    pub opened: Opened,
    /// `None` for a file that holds nothing yet.
    pub span: Option<timeline::Span>,
    pub devices: Vec<frame::DeviceMeta>,
}

/// What the live console's "Review a file…" started: `open` once the review window said it is
/// open; false when it had not within the console's wait (an older file is copied and brought
/// up to date first, which can take minutes): it may still open, and the console tells in a
/// desktop notification if it does not.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ReviewStarted {
    pub file: String,
    pub open: bool,
}

/// Which window the page is in: the live console, or a review of a file.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[ts(export)]
pub enum AppMode {
    Live,
    Review { info: ReviewInfo },
}

/// The picture at one instant: devices where they were, incidents as they stood, the newest
/// attendance records up to then.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ReviewFrame {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub devices: Vec<crate::view::DeviceView>,
    /// Open then, or resolved less than a day before ([`incidents`]).
    pub incidents: Vec<crate::incidents::Incident>,
    /// Resolved more than a day before `at_ms`: not in `incidents`, in the incidents report.
    pub incidents_resolved_earlier: u32,
    pub attendance: Vec<crate::store::attendance::AttendanceRow>,
}

impl ReviewFile {
    pub fn info(&self) -> rusqlite::Result<ReviewInfo> {
        Ok(ReviewInfo {
            path: self.path.display().to_string(),
            opened: self.how,
            span: timeline::span(&self.conn, &self.devices)?,
            devices: self.devices.clone(),
        })
    }

    /// The incident list at `at_ms` ([`incidents`]): the trails stored since the last call are
    /// read first (a running console's file grows).
    pub fn incidents_at(&self, at_ms: i64) -> rusqlite::Result<incidents::IncidentsThen> {
        self.fresh_trails()?.incidents_at(&self.conn, at_ms)
    }

    /// One incident's audit trail up to `at_ms`, oldest first.
    pub fn audit_until(
        &self,
        incident_id: &str,
        at_ms: i64,
    ) -> rusqlite::Result<Vec<crate::incidents::AuditEntry>> {
        Ok(self.fresh_trails()?.audit_until(incident_id, at_ms))
    }

    fn fresh_trails(&self) -> rusqlite::Result<std::sync::MutexGuard<'_, incidents::Trails>> {
        let mut trails = self
            .trails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        trails.refresh(&self.conn)?;
        Ok(trails)
    }

    /// The picture at `at_ms`, with the `attendance` newest records up to then.
    pub fn frame(
        &self,
        at_ms: i64,
        params: frame::FrameParams,
        attendance: u32,
    ) -> rusqlite::Result<ReviewFrame> {
        let incidents = self.incidents_at(at_ms)?;
        Ok(ReviewFrame {
            at_ms,
            devices: frame::frame_at(&self.conn, &self.devices, at_ms, params)?,
            incidents: incidents.shown,
            incidents_resolved_earlier: incidents.resolved_earlier,
            attendance: crate::store::attendance::log(
                &self.conn,
                &crate::store::attendance::AttendanceFilter {
                    until_ms: Some(at_ms),
                    limit: Some(attendance),
                    ..Default::default()
                },
            )?,
        })
    }
}

/// Whether `path` has a log to read with it: one with commits in it, or an empty one beside
/// its -shm index (a console has the file open, emptied its log at a checkpoint and may write
/// again, so the file is not immutable, and reading it as if it were could see a checkpoint
/// half done).
fn has_log(path: &Path) -> bool {
    let wal = wal_path(path);
    std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0)
        || (wal.exists() && sibling(path, "-shm").exists())
}

fn wal_path(path: &Path) -> PathBuf {
    sibling(path, "-wal")
}

/// `path` with `suffix` appended (SQLite's `-wal` and `-shm` files).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A read-only connection; `immutable` tells SQLite the file cannot change (no locks, no
/// `-shm`), which is only true without a log beside it.
fn open_flags(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let uri = url::Url::from_file_path(std::path::absolute(path).unwrap_or(path.to_owned()))
        .map(|u| u.to_string())
        .unwrap_or_else(|()| format!("file:{}", path.display()));
    let uri = if immutable {
        format!("{uri}?immutable=1")
    } else {
        format!("{uri}?mode=ro")
    };
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Large reads (a month of fixes) need more than SQLite's 2 MiB default cache.
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// The start of a private copy's folder name in the temp folder; the machine ([`host_tag`])
/// and the process id that made it follow, each ended by a dash.
const COPY_PREFIX: &str = "watchfloor-review-";

/// This machine's name as it may stand in a folder name (letters, digits, '.' and '_'; a '-',
/// which ends the tag, becomes '_'): a temp folder shared with other machines (NFS) or
/// containers holds copies whose process ids mean nothing here, and those are left alone.
fn host_tag() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let tag: String = name
        .trim()
        .chars()
        .map(|c| if c == '-' { '_' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
        .take(64)
        .collect();
    if tag.is_empty() {
        "host".into()
    } else {
        tag
    }
}

/// Removes the private copies in `temp` made on this machine whose process has ended without
/// removing its own: a
/// review killed (SIGKILL, a logout's second signal, a power cut) or stopped while it was still
/// copying, which can leave gigabytes. A copy whose process id now belongs to another process
/// is left for later.
fn remove_abandoned_copies(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let host = host_tag();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(COPY_PREFIX))
            .and_then(|rest| rest.strip_prefix(&host))
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => {
                tracing::info!(path = %entry.path().display(), pid, "removed a review copy its process left behind")
            }
            Err(error) => {
                tracing::debug!(path = %entry.path().display(), %error, "an abandoned review copy could not be removed")
            }
        }
    }
}

/// Whether a process with this id runs (or is not ours to ask about: then it is kept).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // Signal 0 checks only; ESRCH is "no such process", EPERM someone else's.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        alive || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// The private copy's path in the folder [`migrated_copy`] made.
fn copy_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("history.sqlite")
}

/// What a private copy is made from.
enum Source<'c> {
    /// The file, open for reading: copied by SQLite in one read transaction, so a console
    /// writing to it meanwhile (a checkpoint mid-copy) cannot tear the copy, as copying the
    /// file and then its log could.
    Open(&'c Connection),
    /// The file and its log as they are on disk: a log that cannot be read in place has no
    /// `-shm` beside it, so no console has the file open.
    FileAndLog,
}

/// Copies the file (and its log) into a private folder, brings the copy's schema up to date
/// and opens it read-only.
fn migrated_copy(
    path: &Path,
    source: Source<'_>,
) -> Result<(Connection, tempfile::TempDir), StoreError> {
    let copy_err = |e: std::io::Error| StoreError::CreateDir {
        path: path.display().to_string(),
        source: e,
    };
    remove_abandoned_copies(&std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix(&format!(
            "{COPY_PREFIX}{}-{}-",
            host_tag(),
            std::process::id()
        ))
        .tempdir()
        .map_err(copy_err)?;
    let copy = copy_in(&dir);
    match (source, copy.to_str()) {
        (Source::Open(conn), Some(into)) => {
            conn.execute("VACUUM INTO ?1", [into])
                .map_err(|source| StoreError::Open {
                    path: copy.display().to_string(),
                    source,
                })?;
        }
        (Source::Open(_), None) => {
            std::fs::copy(path, &copy).map_err(copy_err)?;
            if has_log(path) {
                std::fs::copy(wal_path(path), wal_path(&copy)).map_err(copy_err)?;
            }
        }
        (Source::FileAndLog, _) => {
            std::fs::copy(path, &copy).map_err(copy_err)?;
            std::fs::copy(wal_path(path), wal_path(&copy)).map_err(copy_err)?;
        }
    }
    let copied = Connection::open(&copy)?;
    let found = version(&copied)?;
    store::check_readable(&copied, path, found)?;
    drop(copied);
    drop(store::open(&copy)?);
    let conn = open_flags(&copy, false).map_err(|source| StoreError::Open {
        path: copy.display().to_string(),
        source,
    })?;
    Ok((conn, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn a_copy_its_process_left_behind_is_removed_and_others_are_not() {
        let temp = tempfile::tempdir().unwrap();
        // A process that has ended: a child that exited and was reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let make = |name: &str| {
            let dir = temp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("history.sqlite"), b"copy").unwrap();
            dir
        };
        let host = host_tag();
        let abandoned = make(&format!("{COPY_PREFIX}{host}-{ended}-abc"));
        let ours = make(&format!("{COPY_PREFIX}{host}-{}-def", std::process::id()));
        let running = make(&format!("{COPY_PREFIX}{host}-1-ghi")); // init runs
        let elsewhere = make(&format!("{COPY_PREFIX}other-machine-{ended}-jkl"));
        let old_style = make(&format!("{COPY_PREFIX}Xy12z")); // no machine or pid in it
        let other = make("somebody-else");
        remove_abandoned_copies(temp.path());
        assert!(!abandoned.exists());
        for kept in [ours, running, elsewhere, old_style, other] {
            assert!(kept.exists(), "{}", kept.display());
        }
    }

    /// A writing connection (as a running console holds) whose one fix is still in the log.
    fn writer_with_a_fix_in_its_log(db: &Path) -> Connection {
        let writer = store::open(db).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute(
                "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES ('v1', 5, 1, 2, 5)",
                [],
            )
            .unwrap();
        writer
    }

    fn digest(path: &Path) -> Vec<u8> {
        Sha256::digest(std::fs::read(path).unwrap()).to_vec()
    }

    #[test]
    fn a_closed_file_is_opened_immutable_and_left_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        drop(store::open(&db).unwrap());
        assert!(!wal_path(&db).exists(), "a clean close removes the log");
        let before = digest(&db);
        let review = ReviewFile::open(&db).unwrap();
        assert_eq!(review.opened(), Opened::Immutable);
        drop(review);
        assert_eq!(digest(&db), before);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no side file was created");
    }

    #[test]
    fn a_live_file_is_read_with_its_log_and_neither_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let writer = writer_with_a_fix_in_its_log(&db);
        let (db_before, wal_before) = (digest(&db), digest(&wal_path(&db)));
        let review = ReviewFile::open(&db).unwrap();
        assert_eq!(review.opened(), Opened::ReadOnly);
        assert_eq!(
            review.devices().len(),
            1,
            "the commit still in the log is seen"
        );
        drop(review);
        assert_eq!(digest(&db), db_before);
        assert_eq!(digest(&wal_path(&db)), wal_before);
        drop(writer);
    }

    #[test]
    fn a_live_file_reviewed_while_its_console_writes_shows_devices_that_appear_later() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let writer = writer_with_a_fix_in_its_log(&db);
        let mut review = ReviewFile::open(&db).unwrap();
        let span = |r: &ReviewFile| r.info().unwrap().span.unwrap().to_ms;
        assert_eq!((review.devices().len(), span(&review)), (1, 5));
        writer
            .execute(
                "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES ('v2', 9, 1, 2, 9)",
                [],
            )
            .unwrap();
        let groups = crate::groups::DeviceGroups::default();
        assert!(review.refresh_devices(&groups).unwrap());
        assert_eq!(review.devices().len(), 2);
        assert_eq!(span(&review), 9, "the timeline reaches the new fix");
        drop(writer);

        // A closed file does not change: nothing to read again.
        let closed = dir.path().join("closed.sqlite");
        drop(store::open(&closed).unwrap());
        let mut review = ReviewFile::open(&closed).unwrap();
        assert!(!review.refresh_devices(&groups).unwrap());
    }

    #[test]
    fn a_live_file_whose_log_was_just_emptied_is_not_taken_for_a_closed_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let writer = writer_with_a_fix_in_its_log(&db);
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert_eq!(std::fs::metadata(wal_path(&db)).unwrap().len(), 0);
        let review = ReviewFile::open(&db).unwrap();
        assert_eq!(
            review.opened(),
            Opened::ReadOnly,
            "the console may write again"
        );
        assert_eq!(review.devices().len(), 1);
        drop(review);
        drop(writer);
    }

    #[cfg(unix)]
    #[test]
    fn a_copy_with_its_log_but_no_shm_in_a_read_only_folder_is_read_from_a_private_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let writer = writer_with_a_fix_in_its_log(&db);
        // What a reviewer gets from a USB stick: the file and its log, no -shm, no write access.
        let stick = tempfile::tempdir().unwrap();
        let copy = stick.path().join("h.sqlite");
        std::fs::copy(&db, &copy).unwrap();
        std::fs::copy(wal_path(&db), wal_path(&copy)).unwrap();
        drop(writer);
        use std::os::unix::fs::PermissionsExt;
        let mode = |m| std::fs::Permissions::from_mode(m);
        std::fs::set_permissions(stick.path(), mode(0o555)).unwrap();
        let review = ReviewFile::open(&copy);
        std::fs::set_permissions(stick.path(), mode(0o755)).unwrap();
        let review = review.unwrap();
        // Root ignores folder permissions and may read in place; either way the fix is seen.
        assert!(matches!(review.opened(), Opened::Copy | Opened::ReadOnly));
        assert_eq!(review.devices().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused_and_an_older_one_is_migrated_on_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let newer = dir.path().join("newer.sqlite");
        drop(store::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", migration::SCHEMA_VERSION + 1)
            .unwrap();
        let err = ReviewFile::open(&newer).err().expect("refused");
        assert!(
            err.to_string().contains("newer than this Watchfloor"),
            "{err}"
        );
        let checked = ReviewFile::check(&newer).expect_err("refused");
        assert_eq!(checked.to_string(), err.to_string());

        // An older file: schema version 1 (positions, no incidents table).
        let older = dir.path().join("older.sqlite");
        {
            let c = Connection::open(&older).unwrap();
            c.execute_batch(crate::store::meta::DDL).unwrap();
            c.execute_batch(crate::store::positions::DDL).unwrap();
            c.execute_batch(crate::store::statuses::DDL).unwrap();
            c.execute_batch(crate::store::events::DDL).unwrap();
            c.execute_batch(crate::store::quarantine::DDL).unwrap();
            c.execute(
                "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES ('v1', 5, 1, 2, 5)",
                [],
            )
            .unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
        }
        let before = digest(&older);
        ReviewFile::check(&older).expect("an older file can be reviewed");
        let review = ReviewFile::open(&older).unwrap();
        assert_eq!(review.opened(), Opened::Copy);
        let incidents: i64 = review
            .conn()
            .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
            .unwrap();
        assert_eq!(incidents, 0, "the copy has the current schema");
        let sliced = review.track_rows("v1", i64::MIN, i64::MAX).unwrap();
        assert_eq!(
            sliced.len(),
            1,
            "slice readers open the copy, not the original"
        );
        // An export's reader reads the copy, on a connection of its own, with the same devices.
        let exporting = review.another_reader().unwrap();
        assert_eq!(exporting.opened(), Opened::Copy);
        assert_eq!(exporting.devices().len(), review.devices().len());
        assert_eq!(
            exporting
                .track_rows("v1", i64::MIN, i64::MAX)
                .unwrap()
                .len(),
            1
        );
        // A window that ends its process without dropping the file deletes the copy first.
        let mut review = review;
        let copy = review.copy_dir().expect("copied").to_path_buf();
        assert!(copy.join("history.sqlite").is_file());
        review.discard_copy();
        assert!(!copy.exists(), "the private copy is gone");
        assert!(exporting.copy_dir().is_none(), "the reader owns no copy");
        let fixes: i64 = exporting
            .conn()
            .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            fixes, 1,
            "an export under way reads on after the copy is deleted"
        );
        drop(exporting);
        drop(review);
        assert_eq!(digest(&older), before, "the original is not migrated");

        // A file from the Watchfloor just before a migration review does not need (one that
        // adds only live-console tables) is read in place, not copied whole.
        let recent = dir.path().join("recent.sqlite");
        drop(store::open(&recent).unwrap());
        // Migrations 5 and 6 add triggers on the tables of migration 3: gone too.
        let later_triggers: String = Connection::open(&recent)
            .unwrap()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|name| format!("DROP TRIGGER {};", name.unwrap()))
            .collect();
        assert!(later_triggers.contains("employees_inputs_ins"));
        Connection::open(&recent)
            .unwrap()
            .execute_batch(&format!(
                "DROP TABLE directory_version; DROP TABLE employee_versions;
                 DROP INDEX sync_failures_by_employee; DROP TABLE directory_inputs;
                 DROP INDEX events_by_device_time;
                 {}
                 PRAGMA user_version = {};",
                later_triggers,
                migration::REVIEW_READS_IN_PLACE_FROM
            ))
            .unwrap();
        let before = digest(&recent);
        let review = ReviewFile::open(&recent).unwrap();
        assert_eq!(review.opened(), Opened::Immutable);
        drop(review);
        assert_eq!(digest(&recent), before, "read in place, and never written");
    }

    #[test]
    fn a_long_track_read_in_slices_is_the_track_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        {
            let c = store::open(&db).unwrap();
            let mut insert = c
                .prepare("INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES (?1, ?2, ?3, 4, ?2)")
                .unwrap();
            // Three hours of two interleaved devices, a fix every 7 s; slice bounds fall
            // between and on fixes.
            for n in 0..1_600i64 {
                for dev in ["v1", "v2"] {
                    insert.execute((dev, n * 7_000, n as f64)).unwrap();
                }
            }
        }
        let review = ReviewFile::open(&db).unwrap();
        assert_eq!(review.opened(), Opened::Immutable);
        let (from, to) = (3_500, 10_700_000);
        let whole = store::positions::track(review.conn(), "v1", from, to).unwrap();
        assert!(
            whole.len() > 1_000 && to - from >= TRACK_SLICE_MIN_MS,
            "long enough to be sliced"
        );
        for _ in 0..2 {
            // The second read takes the kept readers.
            let sliced = review.track_rows("v1", from, to).unwrap();
            assert_eq!(sliced, whole, "every fix once, in time order");
        }
        let short = review.track_rows("v1", 0, 60_000).unwrap();
        assert_eq!(short.len(), 9, "fixes at 0, 7 ... 56 s");
    }

    #[test]
    fn a_file_that_is_not_a_history_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = ReviewFile::open(&other).err().expect("refused");
        assert!(
            err.to_string().contains("not a Watchfloor history"),
            "{err}"
        );
        let checked = ReviewFile::check(&other).expect_err("refused");
        assert_eq!(checked.to_string(), err.to_string());
        let missing = ReviewFile::open(&dir.path().join("nope.sqlite"))
            .err()
            .expect("refused");
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        assert!(ReviewFile::check(&dir.path().join("nope.sqlite")).is_err());
        // Another program's database that keeps a schema version of its own, as an older
        // Watchfloor's would be: refused as it is, not copied and "migrated".
        let versioned = dir.path().join("versioned.sqlite");
        Connection::open(&versioned)
            .unwrap()
            .execute_batch("CREATE TABLE positions (x); PRAGMA user_version = 2;")
            .unwrap();
        let err = ReviewFile::open(&versioned).err().expect("refused");
        assert!(
            err.to_string().ends_with(
                "is not a Watchfloor history file (a schema version, but not the tables of one)"
            ),
            "{err}"
        );
        // Nor does a recording console write its tables into such a file.
        let before = std::fs::read(&other).unwrap();
        let err = store::open(&other).expect_err("refused");
        assert!(
            err.to_string().contains("not a Watchfloor history"),
            "{err}"
        );
        assert!(std::fs::read(&other).unwrap() == before, "untouched");
    }
}
