//! One daemon per store: an advisory lock beside the store file.
//!
//! flock(2) locks belong to the open file and die with the process that holds them, so a crashed
//! or SIGKILLed daemon never leaves a stale lock behind. The lock file also records the holder's
//! pid, so a second `directd run` can say who is in the way.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another daemon (pid {pid}) already runs on {}", store.display())]
    Held { pid: String, store: PathBuf },
    #[error("lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held for as long as the daemon runs; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// The lock file for `store`: `STORE.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub fn acquire(store: &Path) -> Result<DaemonLock, LockError> {
    let path = lock_path(store);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(io(err));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = pid.trim();
        return Err(LockError::Held {
            pid: if pid.is_empty() {
                "unknown".into()
            } else {
                pid.into()
            },
            store: store.to_owned(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DaemonLock { _file: file })
}

/// The pid of the daemon running on `store`, or `None` when none holds its lock (no lock file,
/// or one nobody holds: a daemon that ended leaves the file, and its last pid, behind).
///
/// The lock is tested by taking it shared for an instant; a daemon starting in that instant
/// would be refused as if another ran, a window of microseconds that only `directd poll` and
/// `status --wait` open, by hand.
pub fn holder(store: &Path) -> Result<Option<String>, LockError> {
    let path = lock_path(store);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        // Not held; closing the file (end of scope) releases our shared lock.
        return Ok(None);
    }
    let err = std::io::Error::last_os_error();
    if err.kind() != std::io::ErrorKind::WouldBlock {
        return Err(io(err));
    }
    let mut pid = String::new();
    file.read_to_string(&mut pid).map_err(io)?;
    Ok(Some(pid.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        let first = acquire(&store).unwrap();
        let err = acquire(&store).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "another daemon (pid {}) already runs on {}",
                std::process::id(),
                store.display()
            )
        );
        assert_eq!(
            holder(&store).unwrap(),
            Some(std::process::id().to_string())
        );
        drop(first);
        assert_eq!(holder(&store).unwrap(), None);
        acquire(&store).unwrap();
    }
}
