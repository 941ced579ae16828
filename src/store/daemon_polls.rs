//! The daemon's polling passes, recorded for `directd poll` (schema version 5).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now, Store, StoreError};

/// How many passes are kept; a client only ever needs the latest few.
const KEEP: i64 = 100;

/// What one polling pass of the daemon did, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollRecord {
    pub poll_id: i64,
    /// Unix milliseconds.
    pub started_ms: i64,
    pub finished_ms: i64,
    pub finished_at: String,
    pub accounts_polled: i64,
    pub received: i64,
    pub sent: i64,
    pub statuses: i64,
    pub quarantined: i64,
    pub errors: i64,
}

/// The counts of a pass, as the daemon hands them over.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollCounts {
    pub accounts_polled: usize,
    pub received: usize,
    pub sent: usize,
    pub statuses: usize,
    pub quarantined: usize,
    pub errors: usize,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Records a finished pass that began at `started_ms`, keeping only the latest [`KEEP`].
    pub fn record_poll(&mut self, started_ms: i64, c: &PollCounts) -> Result<(), StoreError> {
        let (finished_ms, finished_at) = (now_ms(), now());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO daemon_polls (started_ms, finished_ms, finished_at, accounts_polled, received, sent, statuses, quarantined, errors)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    started_ms,
                    finished_ms,
                    finished_at,
                    c.accounts_polled as i64,
                    c.received as i64,
                    c.sent as i64,
                    c.statuses as i64,
                    c.quarantined as i64,
                    c.errors as i64
                ],
            )?;
            tx.execute(
                "DELETE FROM daemon_polls WHERE id <= last_insert_rowid() - ?1",
                [KEEP],
            )?;
            Ok(())
        })
    }

    /// The first pass that started at or after `since_ms` (unix milliseconds), once finished.
    pub fn poll_started_since(&self, since_ms: i64) -> Result<Option<PollRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, started_ms, finished_ms, finished_at, accounts_polled, received, sent, statuses, quarantined, errors
                 FROM daemon_polls WHERE started_ms >= ?1 ORDER BY id LIMIT 1",
                [since_ms],
                |r| {
                    Ok(PollRecord {
                        poll_id: r.get(0)?,
                        started_ms: r.get(1)?,
                        finished_ms: r.get(2)?,
                        finished_at: r.get(3)?,
                        accounts_polled: r.get(4)?,
                        received: r.get(5)?,
                        sent: r.get(6)?,
                        statuses: r.get(7)?,
                        quarantined: r.get(8)?,
                        errors: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
