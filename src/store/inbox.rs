//! Received messages and their attachments.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::record_at;
use super::outbox::sha256_hex;
use super::{now, Store, StoreError};
use crate::message::{ReceivedMail, RejectedMail};

/// Whether a received message was new or a redelivery of one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    New(i64),
    Duplicate(i64),
}

impl StoreOutcome {
    pub fn id(self) -> i64 {
        match self {
            StoreOutcome::New(id) | StoreOutcome::Duplicate(id) => id,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentRow {
    pub id: i64,
    pub seq: i64,
    pub filename: String,
    pub declared_type: String,
    pub description: Option<String>,
    pub size: i64,
    pub sha256: String,
    pub ingest_state: String,
    pub ingest_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncomingDetail {
    pub id: i64,
    pub account: String,
    pub hisp_message_id: String,
    pub recipient: String,
    pub sender: String,
    pub subject: Option<String>,
    pub date: Option<String>,
    pub header_message_id: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body_type: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_text: Option<String>,
    pub received_at: String,
    pub quarantine_reason: Option<String>,
    /// The security agent's verdict (JSON), for S/MIME messages.
    pub verdict: Option<String>,
    /// Where MDNs (read receipts included) go, when the sender asked for them (S/MIME).
    pub mdn_to: Option<String>,
    pub attachments: Vec<AttachmentRow>,
}

/// A received message as `directd messages` lists it.
#[derive(Debug, Clone)]
pub struct IncomingOverview {
    pub id: i64,
    pub received_at: String,
    pub account: String,
    pub sender: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub quarantine_reason: Option<String>,
    /// It could not be read at all and was acknowledged anyway (see [`crate::message::UNREAD_QUARANTINE`]).
    pub unreadable: bool,
    /// Someone opened it with `directd show` (the audit trail says who).
    pub viewed: bool,
    pub attachments: i64,
    /// Attachments whose ingestion failed.
    pub ingest_failures: i64,
}

/// The local id of a message already stored for (account, HISP id): a redelivery.
fn stored_id(
    conn: &rusqlite::Connection,
    account: &str,
    hisp_id: &str,
) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM incoming WHERE account = ?1 AND hisp_message_id = ?2",
        params![account, hisp_id],
        |r| r.get(0),
    )
    .optional()
}

/// What [`Store::reject_incoming`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectOutcome {
    /// Quarantined; a `failed` MDN is owed to the sender (the daemon sends it).
    FailedMdnOwed,
    /// Quarantined; the sender asked for no MDN (phiMail: the HISP reports delivery itself).
    NoMdnRequested,
    AlreadyQuarantined(String),
    AlreadyDispatched,
    NotFound,
}

impl Store {
    /// Stores a received message and its attachments in one transaction. A redelivery of a
    /// message already stored for the same account and HISP id changes nothing.
    pub fn store_incoming(
        &mut self,
        account: &str,
        mail: &ReceivedMail,
    ) -> Result<StoreOutcome, StoreError> {
        let at = now();
        let headers = serde_json::to_string(&mail.headers).unwrap_or_else(|_| "[]".into());
        self.write(|tx| {
            if let Some(id) = stored_id(tx, account, &mail.hisp_id)? {
                return Ok(StoreOutcome::Duplicate(id));
            }
            tx.execute(
                "INSERT INTO incoming (account, hisp_message_id, recipient, sender, subject, date, header_message_id,
                                       headers_json, body_type, body, received_at, raw, verdict_json,
                                       mdn_to, mdn_original_id, mdn_final)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    account,
                    mail.hisp_id,
                    mail.recipient,
                    mail.sender,
                    mail.header("Subject"),
                    mail.header("Date"),
                    mail.header("Message-ID"),
                    headers,
                    mail.body_type,
                    mail.body,
                    at,
                    mail.raw,
                    mail.verdict,
                    mail.mdn.as_ref().map(|m| &m.to),
                    mail.mdn.as_ref().map(|m| &m.original_message_id),
                    mail.mdn.as_ref().is_some_and(|m| m.final_delivery),
                ],
            )?;
            let id = tx.last_insert_rowid();
            if mail.mdn.is_some() {
                // Decrypted and trusted: the processed MDN is owed from this commit on.
                tx.execute(
                    "INSERT INTO mdn_outbox (incoming_id, account, disposition, created_at) VALUES (?1, ?2, 'processed', ?3)",
                    params![id, account, at],
                )?;
            }
            for (seq, a) in mail.attachments.iter().enumerate() {
                tx.execute(
                    "INSERT INTO attachments (incoming_id, seq, filename, declared_type, description, data, size, sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id,
                        seq as i64 + 1,
                        a.filename,
                        a.mime_type,
                        a.description,
                        a.data,
                        a.data.len() as i64,
                        sha256_hex(&a.data)
                    ],
                )?;
            }
            record_at(
                tx,
                &at,
                &super::current_actor(),
                "receive",
                Some(&format!("in:{id}")),
                Some(&format!("account {account}, HISP id {}", mail.hisp_id)),
            )?;
            Ok(StoreOutcome::New(id))
        })
    }

    /// Keeps a message that failed the security checks, with the reason, in quarantine: stored
    /// (exact bytes) so nothing is lost and an administrator can `inspect` it, never ingested.
    pub fn store_rejected(
        &mut self,
        account: &str,
        mail: &RejectedMail,
    ) -> Result<StoreOutcome, StoreError> {
        let at = now();
        self.write(|tx| {
            if let Some(id) = stored_id(tx, account, &mail.hisp_id)? {
                return Ok(StoreOutcome::Duplicate(id));
            }
            tx.execute(
                "INSERT INTO incoming (account, hisp_message_id, recipient, sender, headers_json, body_type, body,
                                       received_at, raw, quarantine_reason, mdn_to, mdn_original_id, mdn_final)
                 VALUES (?1, ?2, ?3, ?4, '[]', 'application/octet-stream', x'', ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    account,
                    mail.hisp_id,
                    mail.recipient,
                    mail.sender,
                    at,
                    mail.raw,
                    mail.reason,
                    mail.mdn.as_ref().map(|m| &m.to),
                    mail.mdn.as_ref().map(|m| &m.original_message_id),
                    mail.mdn.as_ref().is_some_and(|m| m.final_delivery),
                ],
            )?;
            let id = tx.last_insert_rowid();
            if mail.mdn.is_some() {
                // Trusted but undeliverable: processed (it was) and failed, owed with this commit.
                tx.execute(
                    "INSERT INTO mdn_outbox (incoming_id, account, disposition, created_at)
                     VALUES (?1, ?2, 'processed', ?3), (?1, ?2, 'failed', ?3)",
                    params![id, account, at],
                )?;
            }
            record_at(
                tx,
                &at,
                &super::current_actor(),
                "quarantine",
                Some(&format!("in:{id}")),
                Some(&mail.reason),
            )?;
            Ok(StoreOutcome::New(id))
        })
    }

    /// An operator refuses a received message (wrong recipient, wrong patient...): it is
    /// quarantined with the reason and, when its sender asked for MDNs, a `failed` one is owed.
    /// Refused once its sender was told it was delivered (`dispatched` sent): the sender gets one
    /// final outcome. Audited in the same transaction.
    pub fn reject_incoming(
        &mut self,
        id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<RejectOutcome, StoreError> {
        let at = now();
        self.write(|tx| {
            let row: Option<(Option<String>, bool)> = tx
                .query_row(
                    "SELECT quarantine_reason, mdn_to IS NOT NULL FROM incoming WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((quarantined, wants_mdn)) = row else {
                return Ok(RejectOutcome::NotFound);
            };
            if let Some(why) = quarantined {
                return Ok(RejectOutcome::AlreadyQuarantined(why));
            }
            let dispatched: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM mdn_outbox WHERE incoming_id = ?1 AND disposition = 'dispatched' AND sent_at IS NOT NULL)",
                [id],
                |r| r.get(0),
            )?;
            if dispatched {
                return Ok(RejectOutcome::AlreadyDispatched);
            }
            tx.execute(
                "UPDATE incoming SET quarantine_reason = ?2 WHERE id = ?1",
                params![id, format!("refused by {actor}: {reason}")],
            )?;
            // A dispatched MDN owed but not sent yet is withdrawn; failed takes its place.
            tx.execute(
                "DELETE FROM mdn_outbox WHERE incoming_id = ?1 AND disposition = 'dispatched' AND sent_at IS NULL",
                [id],
            )?;
            if wants_mdn {
                tx.execute(
                    "INSERT OR IGNORE INTO mdn_outbox (incoming_id, account, disposition, created_at)
                     SELECT id, account, 'failed', ?2 FROM incoming WHERE id = ?1",
                    params![id, at],
                )?;
            }
            record_at(
                tx,
                &at,
                actor,
                "reject",
                Some(&format!("in:{id}")),
                Some(reason),
            )?;
            Ok(if wants_mdn {
                RejectOutcome::FailedMdnOwed
            } else {
                RejectOutcome::NoMdnRequested
            })
        })
    }

    /// The exact bytes a message arrived as (S/MIME transports), for `show --raw` and `inspect`.
    pub fn incoming_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT raw FROM incoming WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))
    }

    pub fn incoming(&self, id: i64) -> Result<IncomingDetail, StoreError> {
        let mut detail = self
            .conn
            .query_row(
                "SELECT id, account, hisp_message_id, recipient, sender, subject, date, header_message_id, headers_json,
                        body_type, body, received_at, quarantine_reason, verdict_json, mdn_to
                 FROM incoming WHERE id = ?1",
                [id],
                |r| {
                    let headers: String = r.get(8)?;
                    let body: Vec<u8> = r.get(10)?;
                    Ok(IncomingDetail {
                        id: r.get(0)?,
                        account: r.get(1)?,
                        hisp_message_id: r.get(2)?,
                        recipient: r.get(3)?,
                        sender: r.get(4)?,
                        subject: r.get(5)?,
                        date: r.get(6)?,
                        header_message_id: r.get(7)?,
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                        body_type: r.get(9)?,
                        body_text: String::from_utf8(body.clone()).ok(),
                        body,
                        received_at: r.get(11)?,
                        quarantine_reason: r.get(12)?,
                        verdict: r.get(13)?,
                        mdn_to: r.get(14)?,
                        attachments: Vec::new(),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))?;
        detail.attachments = self
            .conn
            .prepare_cached(
                "SELECT id, seq, filename, declared_type, description, size, sha256, ingest_state, ingest_error
                 FROM attachments WHERE incoming_id = ?1 ORDER BY seq",
            )
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    Ok(AttachmentRow {
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        filename: r.get(2)?,
                        declared_type: r.get(3)?,
                        description: r.get(4)?,
                        size: r.get(5)?,
                        sha256: r.get(6)?,
                        ingest_state: r.get(7)?,
                        ingest_error: r.get(8)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        Ok(detail)
    }

    pub fn attachment_data(&self, attachment_id: i64) -> Result<Vec<u8>, StoreError> {
        self.conn
            .query_row(
                "SELECT data FROM attachments WHERE id = ?1",
                [attachment_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(attachment_id))
    }

    /// Received messages since `since` (RFC 3339 prefix), newest first; with `unviewed`, only
    /// those nobody has opened with `directd show`.
    pub fn incoming_overview(
        &self,
        since: Option<&str>,
        unviewed: bool,
    ) -> Result<Vec<IncomingOverview>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT i.id, i.received_at, i.account, i.sender, i.recipient, i.subject, i.quarantine_reason,
                        i.quarantine_reason IS NOT NULL AND i.quarantine_reason LIKE ?2 || '%',
                        EXISTS (SELECT 1 FROM audit_log l WHERE l.action = 'show' AND l.message_ref = 'in:' || i.id),
                        (SELECT count(*) FROM attachments a WHERE a.incoming_id = i.id),
                        (SELECT count(*) FROM attachments a WHERE a.incoming_id = i.id AND a.ingest_error IS NOT NULL)
                 FROM incoming i WHERE i.received_at >= ?1 ORDER BY i.id DESC",
            )
            .and_then(|mut s| {
                s.query_map(params![since.unwrap_or(""), crate::message::UNREAD_QUARANTINE], |r| {
                    Ok(IncomingOverview {
                        id: r.get(0)?,
                        received_at: r.get(1)?,
                        account: r.get(2)?,
                        sender: r.get(3)?,
                        recipient: r.get(4)?,
                        subject: r.get(5)?,
                        quarantine_reason: r.get(6)?,
                        unreadable: r.get(7)?,
                        viewed: r.get(8)?,
                        attachments: r.get(9)?,
                        ingest_failures: r.get(10)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map(|rows| rows.into_iter().filter(|m| !unviewed || !m.viewed).collect())
            .map_err(|e| self.err(e))
    }

    pub fn incoming_count(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM incoming", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}
