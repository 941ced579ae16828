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

/// The OS user running this process, for the `actor` column: the name of our real uid from
/// /etc/passwd (not $USER, which the caller controls), else `uid:N`; under sudo (README,
/// "Who may read the store") also the login that ran sudo.
pub fn current_actor() -> String {
    with_sudo_user(os_user(), std::env::var("SUDO_USER").ok().as_deref())
}

/// `directd (sudo from alice)`. SUDO_USER is sudo's statement of who asked, which only the
/// target user could forge, and that user can write the store anyway.
fn with_sudo_user(user: String, sudo_user: Option<&str>) -> String {
    match sudo_user.map(str::trim) {
        Some(by) if !by.is_empty() && by != user => format!("{user} (sudo from {by})"),
        _ => user,
    }
}

fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    // The owner of our own /proc entry is our uid; no libc call needed.
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_owned())
        })
        .next()
        .unwrap_or_else(|| format!("uid:{uid}"))
}

/// One audit row on `conn`, so a change and its record can share a transaction.
pub(super) fn record(
    conn: &rusqlite::Connection,
    actor: &str,
    action: &str,
    message_ref: Option<&str>,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    record_at(conn, &now(), actor, action, message_ref, detail)
}

/// [`record`] at the time `at` the rest of the transaction writes, so the change and its record
/// carry the same time.
pub(super) fn record_at(
    conn: &rusqlite::Connection,
    at: &str,
    actor: &str,
    action: &str,
    message_ref: Option<&str>,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, message_ref, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, actor, action, message_ref, detail],
    )
    .map(|_| ())
}

impl Store {
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        message_ref: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        record(&self.conn, actor, action, message_ref, detail).map_err(|e| self.err(e))
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

#[cfg(test)]
mod tests {
    #[test]
    fn sudo_names_who_asked() {
        use super::with_sudo_user;
        assert_eq!(
            with_sudo_user("directd".into(), Some("alice")),
            "directd (sudo from alice)"
        );
        assert_eq!(with_sudo_user("directd".into(), None), "directd");
        assert_eq!(with_sudo_user("directd".into(), Some("")), "directd");
        assert_eq!(with_sudo_user("root".into(), Some("root")), "root");
    }
}
