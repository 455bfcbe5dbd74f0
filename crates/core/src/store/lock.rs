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
    /// Takes `role` on the history file `db`, or says who holds it.
    pub fn acquire(db: &Path, role: Role) -> Result<Self, LockError> {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".{}.lock", role.file_tag()));
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
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
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the next one's message.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
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
}
