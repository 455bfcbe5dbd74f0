//! One live user of a history file per role: the console or recorder that takes its MQTT
//! messages, and the employee sync that drives its terminals.
//!
//! Each role holds an advisory lock (`flock`, through std's `File::try_lock`) on a file beside
//! the history file (`history.sqlite.console.lock`, `history.sqlite.sync.lock`) for as long as it
//! runs; the kernel lets go of it when the process ends, however it ends. Without it a second
//! console on the same file (a launcher clicked twice, `watchfloor record` started beside the
//! desktop) connected as the same MQTT client: the broker dropped each when the other
//! connected, all night, and QoS 1 messages went half to one, half to the other. Readers
//! (export, report, review, employee import) take no lock: SQLite lets them share the file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why a history file could not be taken for a role.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{db} is in use by another Watchfloor {role} ({holder}): one per history file. Stop that one, or give this one another file with --db")]
    Held {
        db: String,
        role: &'static str,
        holder: String,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Who uses a history file live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A console or `watchfloor record`: the MQTT session named after the file, and its writer.
    Console,
    /// The employee sync (beside a console, or `watchfloor sync`): its terminals' session.
    Sync,
}

impl Role {
    fn file_tag(self) -> &'static str {
        match self {
            Role::Console => "console",
            Role::Sync => "sync",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Role::Console => "console or recorder",
            Role::Sync => "employee sync",
        }
    }
}

/// Held while a role uses a history file; dropping it lets go.
#[derive(Debug)]
pub struct HistoryLock {
    _file: File,
    path: PathBuf,
}

impl HistoryLock {
    /// Takes `role` on the history file `db`, or says who holds it. The lock file is named after
    /// the file's real path (a link or a second path to the same folder meets the same lock). A
    /// lock file left read-only (by a run under sudo) is locked through a read-only handle; a file
    /// system without locks (some network mounts) gets a warning, not a refusal.
    pub fn acquire(db: &Path, role: Role) -> Result<Self, LockError> {
        let io = |path: &Path, source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let dir = match db.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let real = match std::fs::canonicalize(db) {
            Ok(real) => real,
            Err(_) => std::fs::canonicalize(&dir)
                .map_err(|e| io(&dir, e))?
                .join(db.file_name().unwrap_or_default()),
        };
        let mut name = real.as_os_str().to_owned();
        name.push(format!(".{}.lock", role.file_tag()));
        let path = PathBuf::from(name);
        let (mut file, writable) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                (File::open(&path).map_err(|_| io(&path, e))?, false)
            }
            Err(e) => return Err(io(&path, e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    db: db.display().to_string(),
                    role: role.words(),
                    holder: if holder.is_empty() {
                        "another process".to_owned()
                    } else {
                        format!("process {holder}")
                    },
                });
            }
            Err(TryLockError::Error(e))
                if e.kind() == std::io::ErrorKind::Unsupported
                    || e.raw_os_error() == Some(libc_enolck()) =>
            {
                tracing::warn!(path = %path.display(), error = %e,
                    "this file system takes no locks: a second console on the same history file would not be stopped");
                return Ok(Self { _file: file, path });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        if writable {
            // Who holds it, for the next one's message.
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| write!(file, "{}", std::process::id()));
        }
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// ENOLCK, "no locks available": what NFS without a lock daemon answers.
fn libc_enolck() -> i32 {
    #[cfg(unix)]
    return libc::ENOLCK;
    #[cfg(not(unix))]
    return -1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_role_and_file_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.sqlite");
        let console = HistoryLock::acquire(&db, Role::Console).unwrap();
        assert!(console.path().ends_with("history.sqlite.console.lock"));
        // flock locks belong to the open file, so a second open in this process is refused
        // as another process's would be.
        let again = HistoryLock::acquire(&db, Role::Console)
            .unwrap_err()
            .to_string();
        assert!(
            again.contains("in use by another Watchfloor console or recorder")
                && again.contains(&format!("process {}", std::process::id())),
            "{again}"
        );
        // Another role, or another file, is free.
        let sync = HistoryLock::acquire(&db, Role::Sync).unwrap();
        let other = HistoryLock::acquire(&dir.path().join("other.sqlite"), Role::Console).unwrap();
        drop((sync, other));
        drop(console);
        HistoryLock::acquire(&db, Role::Console).expect("free once let go");
    }

    #[cfg(unix)]
    #[test]
    fn a_second_path_to_the_same_file_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data");
        std::fs::create_dir(&real).unwrap();
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        // Before the history file exists (a first start) and after.
        let first = HistoryLock::acquire(&real.join("history.sqlite"), Role::Console).unwrap();
        let refused = HistoryLock::acquire(&alias.join("history.sqlite"), Role::Console);
        assert!(
            matches!(refused, Err(LockError::Held { .. })),
            "{refused:?}"
        );
        drop(first);
        std::fs::write(real.join("history.sqlite"), b"").unwrap();
        let _via_alias =
            HistoryLock::acquire(&alias.join("history.sqlite"), Role::Console).unwrap();
        let refused = HistoryLock::acquire(&real.join("history.sqlite"), Role::Console);
        assert!(
            matches!(refused, Err(LockError::Held { .. })),
            "{refused:?}"
        );
    }
}
