//! Backups and the retention policy: what leaves the store, and how a copy of it is taken.
//!
//! Healthcare messaging keeps records on a policy. Purging removes message *content* (bodies,
//! attachments, raw S/MIME) once it is older than the policy allows; the delivery history, the
//! audit trail and the clinical rows ingested from documents stay, so who sent what to whom and
//! when remains answerable. Nothing a pending retry or ingestion still needs is touched.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::audit::record_at;
use super::{now, Store, StoreError};

/// HIPAA asks for six years of audit records; the store refuses to delete younger ones (its
/// trigger enforces the same floor), whatever the configuration says.
pub const MIN_AUDIT_DAYS: u32 = 6 * 365;

/// How long each kind of record is kept; `None` keeps it for good.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Content of received and sent messages.
    pub content_days: Option<u32>,
    /// Content of quarantined messages (usually shorter: nobody reads them).
    pub quarantine_days: Option<u32>,
    /// Audit records, at least [`MIN_AUDIT_DAYS`].
    pub audit_days: Option<u32>,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self == &Retention::default()
    }
}

/// What a purge removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub received_messages: u64,
    pub attachments: u64,
    pub sent_messages: u64,
    pub quarantined_messages: u64,
    pub audit_records: u64,
}

impl PurgeReport {
    pub fn is_empty(&self) -> bool {
        self == &PurgeReport::default()
    }
}

fn cutoff(days: u32) -> String {
    let age = Duration::from_secs(u64::from(days) * 86_400);
    crate::timefmt::rfc3339(
        SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH),
    )
}

impl Store {
    /// Applies `policy` (or with `apply` false, only counts what it would remove). One
    /// transaction, audited with the counts.
    pub fn purge(
        &mut self,
        policy: &Retention,
        actor: &str,
        apply: bool,
    ) -> Result<PurgeReport, StoreError> {
        let at = now();
        let content = policy.content_days.map(cutoff);
        let quarantine = policy.quarantine_days.map(cutoff);
        let audit = policy.audit_days.map(|d| cutoff(d.max(MIN_AUDIT_DAYS)));
        self.write(|tx| {
            let mut report = PurgeReport::default();
            // Received, not quarantined, every attachment past ingestion.
            const RECEIVED: &str = "quarantine_reason IS NULL AND received_at < ?1
                AND (length(body) > 0 OR raw IS NOT NULL
                     OR EXISTS (SELECT 1 FROM attachments a WHERE a.incoming_id = incoming.id AND length(a.data) > 0))
                AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.incoming_id = incoming.id AND a.ingest_state = 'pending')";
            const QUARANTINED: &str = "quarantine_reason IS NOT NULL AND received_at < ?1
                AND (length(body) > 0 OR raw IS NOT NULL
                     OR EXISTS (SELECT 1 FROM attachments a WHERE a.incoming_id = incoming.id AND length(a.data) > 0))";
            // Sent, and every recipient at a final state: nothing will send it again.
            const SENT: &str = "created_at < ?1
                AND EXISTS (SELECT 1 FROM outgoing_parts p WHERE p.outgoing_id = outgoing.id AND length(p.data) > 0)
                AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.outgoing_id = outgoing.id
                                AND r.state NOT IN ('dispatched', 'displayed', 'failed', 'timed_out'))";
            let count = |sql: &str, cut: &str| -> rusqlite::Result<u64> {
                tx.query_row(sql, [cut], |r| r.get::<_, i64>(0)).map(|n| n as u64)
            };
            if let Some(cut) = &content {
                report.received_messages =
                    count(&format!("SELECT count(*) FROM incoming WHERE {RECEIVED}"), cut)?;
                report.attachments = count(
                    &format!("SELECT count(*) FROM attachments WHERE length(data) > 0 AND incoming_id IN (SELECT id FROM incoming WHERE {RECEIVED})"),
                    cut,
                )?;
                report.sent_messages =
                    count(&format!("SELECT count(*) FROM outgoing WHERE {SENT}"), cut)?;
            }
            if let Some(cut) = &quarantine {
                report.quarantined_messages =
                    count(&format!("SELECT count(*) FROM incoming WHERE {QUARANTINED}"), cut)?;
            }
            if let Some(cut) = &audit {
                report.audit_records = count("SELECT count(*) FROM audit_log WHERE at < ?1", cut)?;
            }
            if !apply || report.is_empty() {
                return Ok(report);
            }
            for (which, cut) in [(RECEIVED, &content), (QUARANTINED, &quarantine)] {
                let Some(cut) = cut else { continue };
                // Attachments keep their name, type, size and sha256: what was received stays
                // provable, the bytes go.
                tx.execute(
                    &format!("UPDATE attachments SET data = x'' WHERE incoming_id IN (SELECT id FROM incoming WHERE {which})"),
                    [cut],
                )?;
                tx.execute(
                    &format!("UPDATE incoming SET body = x'', raw = NULL WHERE {which}"),
                    [cut],
                )?;
            }
            if let Some(cut) = &content {
                tx.execute(
                    &format!("UPDATE outgoing_parts SET data = x'' WHERE outgoing_id IN (SELECT id FROM outgoing WHERE {SENT})"),
                    [cut],
                )?;
            }
            if let Some(cut) = &audit {
                tx.execute("DELETE FROM audit_log WHERE at < ?1", [cut])?;
            }
            record_at(
                tx,
                &at,
                actor,
                "purge",
                None,
                Some(&serde_json::to_string(&report).unwrap_or_default()),
            )?;
            Ok(report)
        })
    }

    /// A consistent copy of the store, taken online with SQLite's backup API while the daemon
    /// goes on writing. `dest` is created 0600 and never overwritten; an encrypted store is
    /// copied under the same key, so the backup is as encrypted as the store. Audited.
    pub fn backup_to(&self, dest: &Path, key: Option<&str>, actor: &str) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: dest.to_owned(),
            source,
        };
        crate::fsutil::create_new_private(dest, b"").map_err(io)?;
        let result = (|| {
            let mut target = rusqlite::Connection::open(dest)?;
            if let Some(key) = key {
                target.pragma_update(None, "key", key)?;
            }
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut target)?;
            // Small steps with pauses between them, so the daemon's writes are not held up.
            backup.run_to_completion(256, Duration::from_millis(5), None)?;
            drop(backup);
            target.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        })();
        match result {
            Ok(check) if check == "ok" => {}
            Ok(check) => {
                let _ = std::fs::remove_file(dest);
                return Err(StoreError::BackupCheck {
                    path: dest.to_owned(),
                    check,
                });
            }
            Err(e) => {
                let _ = std::fs::remove_file(dest);
                return Err(self.err(e));
            }
        }
        self.audit(actor, "backup", None, Some(&dest.display().to_string()))
    }
}
