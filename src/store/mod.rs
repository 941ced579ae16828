//! The store: one SQLite file (WAL) that is the only state shared by the daemon and the CLI.
//! Every SQL statement of the project lives under this module.

mod audit;
pub mod clinical;
mod daemon_polls;
mod directory;
mod document_files;
mod events;
mod inbox;
mod ingest;
mod mdn_outbox;
mod outbox;
mod retention;
pub mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub use audit::{current_actor, AuditRow};
pub use daemon_polls::{now_ms, PollCounts, PollRecord};
pub use directory::{DirectoryEntry, DirectoryImport};
pub use document_files::DocumentFile;
pub use inbox::{AttachmentRow, IncomingDetail, IncomingOverview, RejectOutcome, StoreOutcome};
pub use ingest::{FileExtraction, IngestTally, PendingAttachment};
pub use outbox::{
    sha256_hex, EventRow, Health, MessageRow, NewOutgoing, OutgoingOverview, RecipientRow,
    SendAttempt, StatusOutcome,
};
pub use retention::{PurgeReport, Retention, MIN_AUDIT_DAYS};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: database is locked by another process (waited {waited:?})")]
    Locked { path: PathBuf, waited: Duration },
    #[error("store {path}: the file or its directory is read-only for this user")]
    ReadOnly { path: PathBuf },
    #[error("backup {path} failed its integrity check: {check}")]
    BackupCheck { path: PathBuf, check: String },
    #[error("store {path}: the disk is full")]
    Full { path: PathBuf },
    #[error("store {path} was deleted or replaced while in use; nothing more will be acknowledged to it")]
    Replaced { path: PathBuf },
    #[error("store {path}: does not exist (run the daemon or `directd send` first, or pass --db)")]
    Missing { path: PathBuf },
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "store {path}: schema version {found} is newer than this directd understands ({known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no message with id {0}")]
    NotFound(i64),
    #[error("store {path}: store.key_file is set but this directd was built without SQLCipher (build with --features sqlcipher)")]
    NoCipher { path: PathBuf },
    #[error("store {path}: the key does not open this database (wrong key, or the store is not encrypted)")]
    WrongKey { path: PathBuf },
}

impl StoreError {
    /// Conditions that pass by themselves or by an operator's fix while the daemon waits
    /// (another writer holding the lock, a full disk, a read-only or unreachable file). The
    /// daemon backs off and retries these instead of exiting, which under systemd would become
    /// a restart loop.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Locked { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Full { .. }
            | StoreError::Io { .. } => true,
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen)
            ),
            _ => false,
        }
    }
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_core.sql"),
    clinical::SCHEMA,
    include_str!("migrations/0003_document_files.sql"),
    include_str!("migrations/0004_edge.sql"),
    include_str!("migrations/0005_audit_retention.sql"),
    include_str!("migrations/0006_daemon_polls.sql"),
    clinical::IDENTITY_MIGRATION,
    clinical::CODINGS_MIGRATION,
    include_str!("migrations/0009_directory.sql"),
    include_str!("migrations/0010_web.sql"),
    clinical::PERSON_INDEX_MIGRATION,
];

/// The schema version this directd writes (`PRAGMA user_version` after migrating).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// (device, inode) of the file when it was opened; see [`Store::check_in_place`].
    identity: Option<(u64, u64)>,
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn now() -> String {
    crate::timefmt::rfc3339(std::time::SystemTime::now())
}

impl Store {
    /// Opens (creating if needed, mode 0600) the store and brings its schema up to date.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store, StoreError> {
        if !path.exists() {
            Self::create_file(path)?;
        }
        Self::open_existing(path, busy_timeout)
    }

    /// Opens (creating if needed) the store a configuration names, encrypted with its key when
    /// it has one.
    pub fn open_config(
        config: &crate::config::StoreConfig,
        create: bool,
    ) -> Result<Store, StoreError> {
        if create && !config.path.exists() {
            // Creates the empty 0600 file; the key is applied before the first page is written.
            Self::create_file(&config.path)?;
        }
        Self::open_keyed(
            &config.path,
            config.busy_timeout,
            config.key.as_ref().map(|k| k.expose()),
        )
    }

    /// Creates the empty store file ourselves so it is 0600 from the first byte; SQLite gives its
    /// WAL and shared-memory files the same mode as the database.
    fn create_file(path: &Path) -> Result<(), StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // 0700 whatever the umask: the folder of a PHI store is nobody else's business.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| Store::io_error(path, source))?;
        }
        crate::fsutil::create_new_private(path, b"")
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|source| Store::io_error(path, source))
    }

    /// Opens a store that must already exist (the read-only commands use this so a typo in
    /// `--db` does not silently create an empty database).
    pub fn open_existing(path: &Path, busy_timeout: Duration) -> Result<Store, StoreError> {
        Self::open_keyed(path, busy_timeout, None)
    }

    /// Opens an existing store; with `key`, as an SQLCipher database (the key is applied before
    /// anything reads a page). A build without SQLCipher refuses a key rather than ignore it,
    /// which would silently leave PHI unencrypted.
    pub fn open_keyed(
        path: &Path,
        busy_timeout: Duration,
        key: Option<&str>,
    ) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|source| Store::classify(path, busy_timeout, source))?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            busy_timeout,
            identity: file_identity(path),
        };
        // Room for every statement of storing a document (clinical::execute) besides the
        // daemon's own; the default 16 would evict them in a cycle on every document.
        store.conn.set_prepared_statement_cache_capacity(128);
        if let Some(key) = key {
            store.apply_key(key)?;
        }
        store
            .conn
            .busy_timeout(busy_timeout)
            .map_err(|e| store.err(e))?;
        store.prepare()?;
        Ok(store)
    }

    /// Sets the connection's modes and brings the schema up to date. Two connections switching
    /// a new file to WAL at once can deadlock on its rollback-journal locks, and SQLite then
    /// answers BUSY to one of them at once, without waiting; that one tries again shortly, for
    /// as long as the busy timeout allows.
    fn prepare(&mut self) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + self.busy_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            let result = self
                .conn
                .execute_batch(
                    // temp_store: the savepoint each stored document runs in journals the pages it
                    // touches; on disk that journal was a fifteenth of bulk ingest's time.
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;",
                )
                .map_err(|e| self.err(e))
                .and_then(|()| self.migrate());
            match result {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    fn apply_key(&mut self, key: &str) -> Result<(), StoreError> {
        let cipher: Option<String> = self
            .conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        if cipher.is_none() {
            return Err(StoreError::NoCipher {
                path: self.path.clone(),
            });
        }
        self.conn
            .pragma_update(None, "key", key)
            .map_err(|e| self.err(e))?;
        // The key is only checked when a page is read.
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|_| StoreError::WrongKey {
                path: self.path.clone(),
            })?;
        Ok(())
    }

    fn io_error(path: &Path, source: std::io::Error) -> StoreError {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            StoreError::ReadOnly {
                path: path.to_owned(),
            }
        } else {
            StoreError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }

    fn classify(path: &Path, waited: Duration, e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: path.to_owned(),
                waited,
            },
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                StoreError::ReadOnly {
                    path: path.to_owned(),
                }
            }
            Some(ErrorCode::DiskFull) => StoreError::Full {
                path: path.to_owned(),
            },
            _ => StoreError::Sqlite {
                path: path.to_owned(),
                source: e,
            },
        }
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        Store::classify(&self.path, self.busy_timeout, e)
    }

    /// Brings the schema up to date in one write transaction that also reads the version, so
    /// two processes opening a new store at once cannot both apply the same migration (the
    /// second waits for the lock, then finds nothing left to do).
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        // Up to date already (the common case): no write lock, so a read-only user can open it.
        if self.schema_version()? == known {
            return Ok(());
        }
        let found = self.write(|tx| {
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
                tx.execute_batch(sql)?;
                // Rows stored under the old one-row-per-identifier rule are rewritten in Rust:
                // splitting them needs each document's stored extraction.
                if *sql == clinical::IDENTITY_MIGRATION {
                    clinical::split_shared_patients(tx)?;
                }
                tx.pragma_update(None, "user_version", i as i64 + 1)?;
            }
            Ok(version)
        })?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        Ok(())
    }

    /// Runs `f` inside one transaction and commits it. Any error rolls the whole write back and
    /// comes out classified (locked, read-only, ...), so callers never see a half-applied change.
    ///
    /// The transaction is IMMEDIATE: it takes the write lock at BEGIN, where SQLite's busy
    /// handler waits for another writer. A deferred transaction that reads first and then
    /// writes cannot wait (SQLite would risk a deadlock) and fails with "database is locked" at
    /// once when another process committed in between.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let result = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .and_then(|tx| f(&tx).and_then(|value| tx.commit().map(|()| value)));
        result.map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`StoreError::Replaced`] when the path no longer names the file this store
    /// opened (deleted, or swapped for another). SQLite would go on writing into the unlinked
    /// file, so the daemon asks before every acknowledgement: what it acknowledges must be in
    /// the store the next start will open.
    pub fn check_in_place(&self) -> Result<(), StoreError> {
        if self.identity.is_some() && file_identity(&self.path) != self.identity {
            return Err(StoreError::Replaced {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}
