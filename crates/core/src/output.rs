//! Files written for the operator (exports, reports, the attendance log): complete or not there
//! at all, and never over a history file.
//!
//! A file is written under a temporary name beside its target and renamed over it once whole
//! (a rename within one folder replaces the old file at once), so a full disk, a file system
//! gone or a console closed mid-export leaves the previous file as it was, or nothing, never
//! half a file under a name that looks complete. A target that is a SQLite database, or one of
//! its companion files (`-wal`, `-shm`, `-journal`, Watchfloor's `.lock` files), is refused: a
//! save dialog lets the operator pick the live history file itself, and writing over it would
//! truncate the database the console is writing to.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

/// Why an output file was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    #[error(
        "{0} is a database (a Watchfloor history file or part of one): pick another file name"
    )]
    Database(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// What the caller's writing said.
    #[error(transparent)]
    Write(E),
}

/// The suffixes of the files that live beside a SQLite database (and Watchfloor's locks).
const COMPANIONS: [&str; 5] = ["-wal", "-shm", "-journal", ".console.lock", ".sync.lock"];

/// Whether `path` is a SQLite database (by its first 16 bytes) or one of its companions.
pub fn is_database(path: &Path) -> bool {
    let sqlite = |p: &Path| {
        let mut head = [0u8; 16];
        File::open(p)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok_and(|()| &head == b"SQLite format 3\0")
    };
    if sqlite(path) {
        return true;
    }
    let name = path.as_os_str().to_string_lossy();
    COMPANIONS.iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|db| sqlite(Path::new(db)))
    })
}

/// Writes `target` through `write`, whole or not at all (see the module docs). On failure the
/// temporary file is removed and whatever was at `target` is left as it was. A symbolic link is
/// followed (the file it names is the one replaced, and refused if it is a database). The new
/// file keeps the mode and group of the one it replaces (a new one gets the usual 0666 less the
/// umask, not a temporary file's 0600). Where a rename cannot keep what the old file was (its
/// owner is someone else, its group one we cannot give, its folder takes no new file) the whole
/// content is written to a temporary file elsewhere first and then copied into the old file:
/// a failure while writing leaves it as it was; only a failure of that last copy (the disk
/// filling in between) can leave it cut short.
pub fn write_whole<T, E>(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, WriteError<E>> {
    let shown = target.display().to_string();
    let io = |source| WriteError::Io {
        path: shown.clone(),
        source,
    };
    if is_database(target) {
        return Err(WriteError::Database(shown));
    }
    let existing = std::fs::metadata(target).ok();
    let target: PathBuf = match &existing {
        Some(_) => std::fs::canonicalize(target).map_err(io)?,
        None => target.to_path_buf(),
    };
    if is_database(&target) {
        return Err(WriteError::Database(target.display().to_string()));
    }
    let dir: PathBuf = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = match temp_file_in(&dir, &target) {
        Ok(temp) => temp,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && existing.is_some() => {
            return rewrite_in_place(&target, write, &io);
        }
        Err(e) => return Err(io(e)),
    };
    if let Some(meta) = &existing {
        if !takes_over(temp.as_file(), meta) {
            drop(temp);
            return rewrite_in_place(&target, write, &io);
        }
    }
    // The path deletes the temporary file when dropped, on every way out but the rename.
    let (file, temp_path) = temp.into_parts();
    let mut out = BufWriter::new(file);
    let written = write(&mut out).map_err(WriteError::Write)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    temp_path.persist(&target).map_err(|e| io(e.error))?;
    Ok(written)
}

/// A temporary file in `dir` named after `target`, created 0666 (less the umask).
fn temp_file_in(dir: &Path, target: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!(
        ".{}.",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Gives `file` the mode and group of the file it is to replace; false when the replacement
/// would not be the same to its readers (another owner, a group we cannot give).
fn takes_over(file: &File, old: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(ours) = file.metadata() else {
            return false;
        };
        if ours.uid() != old.uid() {
            return false;
        }
        if ours.gid() != old.gid()
            && std::os::unix::fs::fchown(file, None, Some(old.gid())).is_err()
        {
            return false;
        }
    }
    file.set_permissions(old.permissions()).is_ok()
}

/// Writes the whole content to a temporary file in the system's temp folder, then copies it
/// into `target` (which keeps its inode: owner, group, mode, links).
fn rewrite_in_place<T, E>(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
    io: &impl Fn(std::io::Error) -> WriteError<E>,
) -> Result<T, WriteError<E>> {
    use std::io::Seek;
    let staged = tempfile::tempfile().map_err(io)?;
    let mut out = BufWriter::new(staged);
    let written = write(&mut out).map_err(WriteError::Write)?;
    let mut staged = out.into_inner().map_err(|e| io(e.into_error()))?;
    staged.rewind().map_err(io)?;
    let mut dest = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(target)
        .map_err(io)?;
    std::io::copy(&mut staged, &mut dest).map_err(io)?;
    dest.sync_all().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_whole_io<T>(
        target: &Path,
        write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
    ) -> Result<T, WriteError<std::io::Error>> {
        write_whole(target, write)
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.csv");
        std::fs::write(&target, "yesterday's report\n").unwrap();
        let failed = write_whole_io(&target, |out| {
            out.write_all(b"half of today's")?;
            Err::<(), _>(std::io::Error::other("the disk is full"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "the disk is full");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "yesterday's report\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file stays");

        write_whole_io(&target, |out| out.write_all(b"today's report\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "today's report\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_new_file_keeps_the_old_ones_permissions_and_a_link_is_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("report.csv");
        std::fs::write(&shared, "old\n").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o664)).unwrap();
        let link = dir.path().join("latest.csv");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        write_whole_io(&link, |out| out.write_all(b"new\n")).unwrap();
        assert!(
            link.symlink_metadata().unwrap().file_type().is_symlink(),
            "still a link"
        );
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "new\n");
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o664);
        // A new file gets what any new file gets here (0666 less the umask), not a temporary
        // file's 0600.
        let fresh = dir.path().join("fresh.csv");
        write_whole_io(&fresh, |out| out.write_all(b"x\n")).unwrap();
        let reference = dir.path().join("reference");
        File::create(&reference).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), mode(&reference));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_someone_else_owns_is_rewritten_in_place_and_keeps_its_owner() {
        use std::os::unix::fs::MetadataExt;
        // Giving a file away takes root; elsewhere there is nothing to show.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: giving a file to another user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shared.csv");
        std::fs::write(&target, "old\n").unwrap();
        std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
        let failed = write_whole_io(&target, |out| {
            out.write_all(b"half")?;
            Err::<(), _>(std::io::Error::other("the query failed"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "old\n",
            "untouched"
        );
        write_whole_io(&target, |out| out.write_all(b"new\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "owner and group kept"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no part left"
        );
    }

    #[test]
    fn a_history_file_and_its_companions_are_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.sqlite");
        let conn = crate::store::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint").unwrap();
        let before = std::fs::read(&db).unwrap();
        for target in [
            db.clone(),
            dir.path().join("history.sqlite-wal"),
            dir.path().join("history.sqlite-shm"),
            dir.path().join("history.sqlite.console.lock"),
        ] {
            let refused = write_whole_io(&target, |out| out.write_all(b"a,b\n")).unwrap_err();
            assert!(
                matches!(refused, WriteError::Database(_)),
                "{}: {refused}",
                target.display()
            );
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "the database untouched"
        );
        // Nor through a link with an innocent name.
        #[cfg(unix)]
        {
            let link = dir.path().join("report.csv");
            std::fs::write(dir.path().join("history.sqlite-wal"), b"").unwrap();
            std::os::unix::fs::symlink(dir.path().join("history.sqlite-wal"), &link).unwrap();
            let refused = write_whole_io(&link, |out| out.write_all(b"a\n")).unwrap_err();
            assert!(matches!(refused, WriteError::Database(_)), "{refused}");
        }
        // Beside it, any other name is fine.
        write_whole_io(&dir.path().join("history.csv"), |out| out.write_all(b"a\n")).unwrap();
        drop(conn);
    }
}
