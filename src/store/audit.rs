//! The audit trail: who did what to which message, when.

use rusqlite::params;
use serde::Serialize;

use super::{now, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub message_ref: Option<String>,
    pub detail: Option<String>,
}

/// The OS user running this process, for the `actor` column.
pub fn current_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid:{}", effective_uid()))
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of our own /proc entry is our effective uid, without libc.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

impl Store {
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        message_ref: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO audit_log (at, actor, action, message_ref, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now(), actor, action, message_ref, detail],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn audit_rows(&self, since: Option<&str>) -> Result<Vec<AuditRow>, StoreError> {
        self.conn
            .prepare_cached("SELECT at, actor, action, message_ref, detail FROM audit_log WHERE at >= ?1 ORDER BY id")
            .and_then(|mut s| {
                s.query_map([since.unwrap_or("")], |r| {
                    Ok(AuditRow { at: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, message_ref: r.get(3)?, detail: r.get(4)? })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }
}
