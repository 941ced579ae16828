//! MDNs owed to senders: written in the transaction that owes them, sent by the daemon.

use rusqlite::params;

use super::{now, Store, StoreError};
use crate::mdn::Disposition;
use crate::message::MdnJob;

fn disposition_str(d: Disposition) -> &'static str {
    match d {
        Disposition::Processed => "processed",
        Disposition::Dispatched => "dispatched",
        Disposition::Failed => "failed",
        Disposition::Displayed => "displayed",
        Disposition::Denied => "denied",
        Disposition::Error => "error",
    }
}

fn parse_disposition(s: &str) -> Disposition {
    match s {
        "processed" => Disposition::Processed,
        "dispatched" => Disposition::Dispatched,
        "displayed" => Disposition::Displayed,
        "denied" => Disposition::Denied,
        "error" => Disposition::Error,
        _ => Disposition::Failed,
    }
}

/// [`Store::owe_mdn`] on `conn`, so a caller can record why in the same transaction.
pub(super) fn owe_on(
    conn: &rusqlite::Connection,
    incoming_id: i64,
    disposition: Disposition,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO mdn_outbox (incoming_id, account, disposition, created_at)
         SELECT id, account, ?2, ?3 FROM incoming
         WHERE id = ?1 AND mdn_to IS NOT NULL AND (?2 != 'dispatched' OR mdn_final = 1)",
        params![incoming_id, disposition_str(disposition), now()],
    )?;
    Ok(n > 0)
}

impl Store {
    /// Owes `disposition` for a received message that asked for MDNs. Idempotent: each
    /// disposition is owed at most once per message. Returns false when the message asked for
    /// none (or for no `dispatched` and that is what is being owed).
    pub fn owe_mdn(&self, incoming_id: i64, disposition: Disposition) -> Result<bool, StoreError> {
        owe_on(&self.conn, incoming_id, disposition).map_err(|e| self.err(e))
    }

    /// Received messages whose attachments are all ingested (or refused) and whose sender asked
    /// for final delivery: they have reached their destination and are owed `dispatched`,
    /// unless `failed` was owed first (the sender gets one final outcome).
    pub fn owe_dispatched_mdns(&self) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO mdn_outbox (incoming_id, account, disposition, created_at)
                 SELECT i.id, i.account, 'dispatched', ?1 FROM incoming i
                 WHERE i.mdn_to IS NOT NULL AND i.mdn_final = 1 AND i.quarantine_reason IS NULL
                   AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.incoming_id = i.id AND a.ingest_state = 'pending')
                   AND NOT EXISTS (SELECT 1 FROM mdn_outbox m WHERE m.incoming_id = i.id AND m.disposition IN ('dispatched', 'failed'))",
                params![now()],
            )
            .map_err(|e| self.err(e))
    }

    /// Unsent MDNs of `account`, oldest first.
    pub fn unsent_mdns(&self, account: &str) -> Result<Vec<MdnJob>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT m.id, m.disposition, i.recipient, i.mdn_to, i.mdn_original_id, i.mdn_final
                 FROM mdn_outbox m JOIN incoming i ON i.id = m.incoming_id
                 WHERE m.sent_at IS NULL AND m.account = ?1 AND m.attempts < 20 ORDER BY m.id",
            )
            .and_then(|mut s| {
                s.query_map([account], |r| {
                    let disposition = parse_disposition(&r.get::<_, String>(1)?);
                    Ok(MdnJob {
                        id: r.get(0)?,
                        disposition,
                        from: r.get(2)?,
                        to: r.get(3)?,
                        original_message_id: r.get(4)?,
                        final_delivery_ext: disposition == Disposition::Dispatched
                            && r.get::<_, bool>(5)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    pub fn mdn_sent(&self, job_id: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE mdn_outbox SET sent_at = ?2 WHERE id = ?1",
                params![job_id, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn mdn_failed(&self, job_id: i64, reason: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE mdn_outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![job_id, reason],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// MDNs sent or owed for a received message: (disposition, sent_at).
    pub fn mdns_for(&self, incoming_id: i64) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT disposition, sent_at FROM mdn_outbox WHERE incoming_id = ?1 ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map([incoming_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(|e| self.err(e))
    }
}
