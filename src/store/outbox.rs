//! Outgoing messages, their recipients and the append-only delivery history.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::record_at;
use super::events::{append_event, Event};
use super::{now, Store, StoreError};
use crate::message::{
    OutPart, OutRecipient, OutgoingMessage, PartKind, RecipientKind, RecipientOutcome, SendReport,
    StatusNotice,
};
use crate::tracking::{self, DeliveryState};

/// What `directd send` queues.
pub struct NewOutgoing {
    pub account: Option<String>,
    pub sender: String,
    pub recipients: Vec<OutRecipient>,
    pub subject: Option<String>,
    pub final_delivery: bool,
    pub parts: Vec<OutPart>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientRow {
    pub address: String,
    pub kind: String,
    pub state: String,
    pub hisp_message_id: Option<String>,
    pub reason: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Increasing with every event recorded, so a reader can ask for what came after.
    pub event_id: i64,
    pub message_id: Option<i64>,
    pub recipient: Option<String>,
    pub hisp_message_id: Option<String>,
    pub at: String,
    pub state: String,
    pub source: String,
    pub detail: Option<String>,
    /// False when the event arrived but did not move the state (duplicate, late, unknown code).
    pub applied: bool,
}

/// One row of `directd messages`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub direction: &'static str,
    pub at: String,
    pub from: String,
    pub to: String,
    pub subject: Option<String>,
    pub state: String,
    pub attempts: Option<i64>,
    pub last_error: Option<String>,
}

/// An outgoing message with its recipients (`directd messages`, `directd status`).
#[derive(Debug, Clone)]
pub struct OutgoingOverview {
    pub id: i64,
    pub created_at: String,
    pub account: Option<String>,
    pub sender: String,
    pub subject: Option<String>,
    pub final_delivery: bool,
    pub transport: String,
    /// The outbox's own state (queued, submitted, failed): whether the daemon still has to send
    /// it, not whether it arrived.
    pub outbox_state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub recipients: Vec<RecipientRow>,
}

impl OutgoingOverview {
    pub fn recipient_outcomes(&self) -> Vec<tracking::Outcome> {
        self.recipients
            .iter()
            .map(|r| tracking::outcome(&r.state, self.final_delivery, &self.transport))
            .collect()
    }

    pub fn outcome(&self) -> tracking::MessageOutcome {
        tracking::MessageOutcome::of(&self.recipient_outcomes())
    }
}

/// The outcome of one send attempt's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAttempt {
    /// Try again at the given time.
    Retry,
    /// Out of attempts (or permanently refused): every unsent recipient is failed.
    GaveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOutcome {
    pub matched: bool,
    pub changed: bool,
}

pub use crate::util::sha256_hex;

/// Counts an operator watches (the daemon exports them as metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub recipients_failed: u64,
    pub recipients_timed_out: u64,
    pub quarantined: u64,
    pub mdns_owed: u64,
}

/// Writes an outgoing message, its parts and recipients (each with its `queued` event) on `tx`,
/// so a caller can add its audit row to the same transaction.
/// Writes a message to the outbox inside `tx`, so a caller can record more (an audit row) in
/// the same transaction. `notes`: (address, how it was found) for the recipients' `queued` event.
pub(super) fn insert_outgoing(
    tx: &rusqlite::Transaction<'_>,
    m: &NewOutgoing,
    notes: &[(String, String)],
) -> rusqlite::Result<i64> {
    let at = now();
    tx.execute(
        "INSERT INTO outgoing (account, sender, subject, final_delivery, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![m.account, m.sender, m.subject, m.final_delivery, at],
    )?;
    let id = tx.last_insert_rowid();
    for (seq, p) in m.parts.iter().enumerate() {
        tx.execute(
            "INSERT INTO outgoing_parts (outgoing_id, seq, kind, filename, data, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, seq as i64, p.kind.as_str(), p.filename, p.data, sha256_hex(&p.data)],
        )?;
    }
    for r in &m.recipients {
        let kind = match r.kind {
            RecipientKind::To => "to",
            RecipientKind::Cc => "cc",
        };
        tx.execute(
            "INSERT INTO recipients (outgoing_id, address, kind, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, r.address, kind, at],
        )?;
        let note = notes
            .iter()
            .find(|(a, _)| *a == r.address)
            .map(|(_, n)| n.as_str());
        append_event(
            tx,
            &Event {
                recipient_id: Some(tx.last_insert_rowid()),
                hisp_message_id: None,
                at: &at,
                state: "queued",
                source: "local",
                detail: note,
                applied: true,
            },
        )?;
    }
    Ok(id)
}

impl Store {
    pub fn health(&self) -> Result<Health, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM recipients WHERE state = 'failed'),
                        (SELECT count(*) FROM recipients WHERE state = 'timed_out'),
                        (SELECT count(*) FROM incoming WHERE quarantine_reason IS NOT NULL),
                        (SELECT count(*) FROM mdn_outbox WHERE sent_at IS NULL AND attempts < 20)",
                [],
                |r| {
                    Ok(Health {
                        recipients_failed: r.get::<_, i64>(0)? as u64,
                        recipients_timed_out: r.get::<_, i64>(1)? as u64,
                        quarantined: r.get::<_, i64>(2)? as u64,
                        mdns_owed: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Writes a message to the outbox in one transaction and returns its local id.
    pub fn enqueue(&mut self, m: &NewOutgoing) -> Result<i64, StoreError> {
        self.enqueue_noting(m, &[])
    }

    /// [`Self::enqueue`], with a note on the `queued` event of some recipients: (address, how
    /// the address was found), e.g. which directory resolved an NPI to it.
    pub fn enqueue_noting(
        &mut self,
        m: &NewOutgoing,
        notes: &[(String, String)],
    ) -> Result<i64, StoreError> {
        self.write(|tx| insert_outgoing(tx, m, notes))
    }

    /// Outbox messages whose next attempt is due.
    pub fn due_outgoing(&self) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM outgoing WHERE state = 'queued' AND next_attempt_at <= ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let ids = stmt
            .query_map([now()], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// The message as the transport needs it, with the recipients not yet answered for.
    pub fn load_outgoing(&self, id: i64) -> Result<OutgoingMessage, StoreError> {
        let (sender, subject, final_delivery): (String, Option<String>, bool) = self
            .conn
            .query_row(
                "SELECT sender, subject, final_delivery FROM outgoing WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))?;
        let recipients = self
            .conn
            .prepare_cached("SELECT address, kind FROM recipients WHERE outgoing_id = ?1 AND state = 'queued' ORDER BY id")
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    let kind: String = r.get(1)?;
                    Ok(OutRecipient {
                        address: r.get(0)?,
                        kind: if kind == "cc" { RecipientKind::Cc } else { RecipientKind::To },
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        let parts = self
            .conn
            .prepare_cached("SELECT kind, filename, data FROM outgoing_parts WHERE outgoing_id = ?1 ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    let kind: String = r.get(0)?;
                    Ok(OutPart { kind: PartKind::parse(&kind).unwrap_or(PartKind::Raw), filename: r.get(1)?, data: r.get(2)? })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        Ok(OutgoingMessage {
            local_id: id,
            sender,
            recipients,
            subject,
            final_delivery,
            parts,
        })
    }

    /// Counts an attempt before the network is touched, so a crash mid-send is still counted.
    pub fn begin_attempt(
        &mut self,
        id: i64,
        account: &str,
        transport: &str,
    ) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "UPDATE outgoing SET attempts = attempts + 1, account = ?2, transport = ?3 WHERE id = ?1 RETURNING attempts",
                params![id, account, transport],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Records the HISP's per-recipient answers in one transaction. Recipients the HISP did not
    /// mention are failed: resending would duplicate the copies it did accept.
    /// Recipients the transport deferred stay queued and the message is retried at `retry_at`;
    /// returns how many were deferred.
    pub fn record_send_report(
        &mut self,
        id: i64,
        report: &SendReport,
        retry_at: &str,
    ) -> Result<usize, StoreError> {
        let at = now();
        self.write(|tx| {
            let pending: Vec<(i64, String)> = tx
                .prepare("SELECT id, address FROM recipients WHERE outgoing_id = ?1 AND state = 'queued'")?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut deferred = Vec::new();
            for (rid, address) in pending {
                let outcome = report.recipients.iter().find(|(a, _)| a.eq_ignore_ascii_case(&address)).map(|(_, o)| o);
                if let Some(RecipientOutcome::Deferred { reason }) = outcome {
                    append_event(
                        tx,
                        &Event {
                            recipient_id: Some(rid),
                            hisp_message_id: None,
                            at: &at,
                            state: "queued",
                            source: "hisp",
                            detail: Some(&format!("deferred: {reason}")),
                            applied: false,
                        },
                    )?;
                    deferred.push(reason.clone());
                    continue;
                }
                let (state, hisp_id, reason) = match outcome {
                    Some(RecipientOutcome::Queued { hisp_id }) => (DeliveryState::Submitted, Some(hisp_id.as_str()), None),
                    Some(RecipientOutcome::Rejected { reason }) => (DeliveryState::Failed, None, Some(reason.clone())),
                    None | Some(RecipientOutcome::Deferred { .. }) => {
                        (DeliveryState::Failed, None, Some("the HISP did not answer for this recipient".to_owned()))
                    }
                };
                tx.execute(
                    "UPDATE recipients SET state = ?2, hisp_message_id = ?3, reason = ?4, updated_at = ?5,
                         submitted_at = CASE WHEN ?2 = 'submitted' THEN ?5 ELSE submitted_at END
                     WHERE id = ?1",
                    params![rid, state.as_str(), hisp_id, reason, at],
                )?;
                append_event(
                    tx,
                    &Event {
                        recipient_id: Some(rid),
                        hisp_message_id: hisp_id,
                        at: &at,
                        state: state.as_str(),
                        source: "hisp",
                        detail: reason.as_deref(),
                        applied: true,
                    },
                )?;
            }
            if deferred.is_empty() {
                tx.execute(
                    "UPDATE outgoing SET state = 'submitted', submitted_at = ?2, last_error = NULL WHERE id = ?1",
                    params![id, at],
                )?;
            } else {
                tx.execute(
                    "UPDATE outgoing SET last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                    params![id, format!("{} recipient(s) deferred: {}", deferred.len(), deferred[0]), retry_at],
                )?;
            }
            record_at(
                tx,
                &at,
                &super::current_actor(),
                "submit",
                Some(&format!("out:{id}")),
                Some(&format!("{} recipient(s) answered", report.recipients.len())),
            )?;
            Ok(deferred.len())
        })
    }

    /// Records a failed attempt: retried at `retry_at` unless `give_up`.
    pub fn record_send_failure(
        &mut self,
        id: i64,
        reason: &str,
        retry_at: &str,
        give_up: bool,
    ) -> Result<SendAttempt, StoreError> {
        let at = now();
        self.write(|tx| {
            if give_up {
                tx.execute("UPDATE outgoing SET state = 'failed', last_error = ?2 WHERE id = ?1", params![id, reason])?;
                let rids: Vec<i64> = tx
                    .prepare("SELECT id FROM recipients WHERE outgoing_id = ?1 AND state = 'queued'")?
                    .query_map([id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for rid in rids {
                    tx.execute(
                        "UPDATE recipients SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1",
                        params![rid, reason, at],
                    )?;
                    append_event(
                        tx,
                        &Event {
                            recipient_id: Some(rid),
                            hisp_message_id: None,
                            at: &at,
                            state: "failed",
                            source: "local",
                            detail: Some(reason),
                            applied: true,
                        },
                    )?;
                }
            } else {
                tx.execute(
                    "UPDATE outgoing SET last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                    params![id, reason, retry_at],
                )?;
            }
            Ok(())
        })?;
        Ok(if give_up {
            SendAttempt::GaveUp
        } else {
            SendAttempt::Retry
        })
    }

    /// Applies a delivery notification (phiMail STATUS, MDN, DSN) about the copy the HISP knows as
    /// `notice.hisp_id` (for MDNs and DSNs: our Message-ID plus the recipient). Always appends an
    /// event; moves the state only if tracking allows it.
    pub fn record_status(
        &mut self,
        account: &str,
        notice: &StatusNotice,
    ) -> Result<StatusOutcome, StoreError> {
        let at = now();
        self.write(|tx| {
            let candidates: Vec<(i64, String, bool)> = tx
                .prepare_cached(
                    "SELECT r.id, r.state, o.final_delivery FROM recipients r JOIN outgoing o ON o.id = r.outgoing_id
                     WHERE r.hisp_message_id = ?1 AND o.account = ?2 AND (?3 IS NULL OR lower(r.address) = lower(?3))",
                )?
                .query_map(params![notice.hisp_id, account, notice.recipient], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            // A report that names no recipient only counts when the message had exactly one.
            let found = match candidates.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            };
            let reported = found.as_ref().and_then(|(_, _, fin)| tracking::from_notice(notice, *fin));
            let (rid, changed) = match (&found, reported) {
                (Some((rid, current, _)), Some(next)) => {
                    let current = DeliveryState::parse(current).unwrap_or(DeliveryState::Submitted);
                    (Some(*rid), tracking::transition(current, next))
                }
                (Some((rid, _, _)), None) => (Some(*rid), false),
                (None, _) => (None, false),
            };
            let state = reported.map(DeliveryState::as_str).unwrap_or(&notice.code);
            let detail = (!notice.info.is_empty()).then_some(notice.info.as_str());
            append_event(
                tx,
                &Event {
                    recipient_id: rid,
                    hisp_message_id: Some(&notice.hisp_id),
                    at: &at,
                    state,
                    source: notice.source.as_str(),
                    detail,
                    applied: changed,
                },
            )?;
            if changed {
                let reason = reported.filter(|s| *s == DeliveryState::Failed).and(detail);
                tx.execute(
                    "UPDATE recipients SET state = ?2, updated_at = ?3, reason = COALESCE(?4, reason) WHERE id = ?1",
                    params![rid, state, at, reason],
                )?;
                tx.execute(
                    "INSERT INTO audit_log (at, actor, action, message_ref, detail)
                     SELECT ?1, ?2, 'status', 'out:' || outgoing_id, address || ' -> ' || ?3 FROM recipients WHERE id = ?4",
                    params![at, super::current_actor(), state, rid],
                )?;
            }
            Ok(StatusOutcome { matched: found.is_some(), changed })
        })
    }

    /// Moves recipients that waited too long to `timed_out`, by the policy [`tracking::expiries`]
    /// gives (which recipients wait for what, and since when it is too late), each with the
    /// reason of the first expiry it matches. Returns how many moved.
    pub fn expire_unconfirmed(
        &mut self,
        expiries: &[tracking::Expiry],
    ) -> Result<usize, StoreError> {
        if expiries.is_empty() {
            return Ok(0);
        }
        let mut values: Vec<String> = Vec::new();
        let mut param = |v: &str| {
            values.push(v.to_owned());
            format!("?{}", values.len())
        };
        let mut conditions = Vec::new();
        let mut reasons = Vec::new();
        for e in expiries {
            let mut c = Vec::new();
            if let Some(t) = e.wait.transport {
                c.push(format!("o.transport = {}", param(t)));
            }
            if e.wait.final_requested {
                c.push("o.final_delivery = 1".to_owned());
            }
            let states: Vec<String> = e.wait.states.iter().map(|s| param(s.as_str())).collect();
            c.push(format!("r.state IN ({})", states.join(", ")));
            c.push(format!("r.submitted_at < {}", param(&e.cutoff)));
            let condition = format!("({})", c.join(" AND "));
            reasons.push(format!("WHEN {condition} THEN {}", param(e.wait.reason)));
            conditions.push(condition);
        }
        let select = format!(
            "SELECT r.id, CASE {} END
             FROM recipients r JOIN outgoing o ON o.id = r.outgoing_id
             WHERE {}",
            reasons.join(" "),
            conditions.join(" OR ")
        );
        let at = now();
        self.write(|tx| {
            let rows: Vec<(i64, String)> = tx
                .prepare(&select)?
                .query_map(rusqlite::params_from_iter(&values), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (rid, why) in &rows {
                tx.execute(
                    "UPDATE recipients SET state = 'timed_out', reason = ?3, updated_at = ?2 WHERE id = ?1",
                    params![rid, at, why],
                )?;
                append_event(
                    tx,
                    &Event {
                        recipient_id: Some(*rid),
                        hisp_message_id: None,
                        at: &at,
                        state: "timed_out",
                        source: "timeout",
                        detail: Some(why),
                        applied: true,
                    },
                )?;
            }
            Ok(rows.len())
        })
    }

    pub fn recipients(&self, id: i64) -> Result<Vec<RecipientRow>, StoreError> {
        self.outgoing_exists(id)?;
        self.conn
            .prepare_cached(
                "SELECT address, kind, state, hisp_message_id, reason, updated_at FROM recipients WHERE outgoing_id = ?1 ORDER BY id",
            )
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    Ok(RecipientRow {
                        address: r.get(0)?,
                        kind: r.get(1)?,
                        state: r.get(2)?,
                        hisp_message_id: r.get(3)?,
                        reason: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// (final delivery requested, transport) of an outgoing message.
    pub fn outgoing_meta(&self, id: i64) -> Result<(bool, String), StoreError> {
        self.conn
            .query_row(
                "SELECT final_delivery, transport FROM outgoing WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))
    }

    fn outgoing_exists(&self, id: i64) -> Result<(), StoreError> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM outgoing WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        found.map(|_| ()).ok_or(StoreError::NotFound(id))
    }

    /// The delivery history of one outgoing message, or of all of them.
    pub fn events(&self, id: Option<i64>) -> Result<Vec<EventRow>, StoreError> {
        self.events_after(id, 0)
    }

    /// The events of [`Store::events`] whose `event_id` is above `after` (`receipts --follow`).
    pub fn events_after(&self, id: Option<i64>, after: i64) -> Result<Vec<EventRow>, StoreError> {
        if let Some(id) = id {
            self.outgoing_exists(id)?;
        }
        self.conn
            .prepare_cached(
                "SELECT r.outgoing_id, r.address, e.hisp_message_id, e.at, e.state, e.source, e.detail, e.applied, e.id
                 FROM delivery_events e LEFT JOIN recipients r ON r.id = e.recipient_id
                 WHERE (?1 IS NULL OR r.outgoing_id = ?1) AND e.id > ?2 ORDER BY e.id",
            )
            .and_then(|mut s| {
                s.query_map(params![id, after], |r| {
                    Ok(EventRow {
                        message_id: r.get(0)?,
                        recipient: r.get(1)?,
                        hisp_message_id: r.get(2)?,
                        at: r.get(3)?,
                        state: r.get(4)?,
                        source: r.get(5)?,
                        detail: r.get(6)?,
                        applied: r.get(7)?,
                        event_id: r.get(8)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Outgoing and/or incoming messages since `since` (RFC 3339 prefix), newest first.
    pub fn list_messages(
        &self,
        outgoing: bool,
        incoming: bool,
        since: Option<&str>,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let since = since.unwrap_or("");
        let mut rows = Vec::new();
        if outgoing {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT o.id, o.created_at, o.sender,
                            (SELECT group_concat(address || '=' || state, ', ') FROM recipients WHERE outgoing_id = o.id),
                            o.subject, o.state, o.attempts, o.last_error
                     FROM outgoing o WHERE o.created_at >= ?1 ORDER BY o.id DESC",
                )
                .map_err(|e| self.err(e))?;
            let it = stmt
                .query_map([since], |r| {
                    Ok(MessageRow {
                        id: r.get(0)?,
                        direction: "out",
                        at: r.get(1)?,
                        from: r.get(2)?,
                        to: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        subject: r.get(4)?,
                        state: r.get(5)?,
                        attempts: r.get(6)?,
                        last_error: r.get(7)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err(e))?;
            rows.extend(it);
        }
        if incoming {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id, received_at, sender, recipient, subject,
                            CASE WHEN quarantine_reason IS NULL THEN 'received'
                                 WHEN quarantine_reason LIKE ?2 || '%' THEN 'QUARANTINED-UNREAD'
                                 ELSE 'quarantined' END
                     FROM incoming WHERE received_at >= ?1 ORDER BY id DESC",
                )
                .map_err(|e| self.err(e))?;
            let it = stmt
                .query_map([since, crate::message::UNREAD_QUARANTINE], |r| {
                    Ok(MessageRow {
                        id: r.get(0)?,
                        direction: "in",
                        at: r.get(1)?,
                        from: r.get(2)?,
                        to: r.get(3)?,
                        subject: r.get(4)?,
                        state: r.get(5)?,
                        attempts: None,
                        last_error: None,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err(e))?;
            rows.extend(it);
        }
        // A message quarantined unread was acknowledged to a HISP that may tell its sender it was
        // delivered: it leads the list until someone deals with it.
        rows.sort_by(|a, b| {
            let unread = |m: &MessageRow| m.state == "QUARANTINED-UNREAD";
            unread(b)
                .cmp(&unread(a))
                .then(b.at.cmp(&a.at))
                .then(b.id.cmp(&a.id))
        });
        Ok(rows)
    }

    /// Outgoing messages created since `since` (RFC 3339 prefix), newest first, each with its
    /// recipients: what a delivery outcome is computed from.
    pub fn outgoing_overview(
        &self,
        since: Option<&str>,
        id: Option<i64>,
    ) -> Result<Vec<OutgoingOverview>, StoreError> {
        let since = since.unwrap_or("");
        let mut messages: Vec<OutgoingOverview> = self
            .conn
            .prepare_cached(
                "SELECT id, created_at, account, sender, subject, final_delivery, transport, state, attempts, last_error
                 FROM outgoing WHERE created_at >= ?1 AND (?2 IS NULL OR id = ?2) ORDER BY id DESC",
            )
            .and_then(|mut s| {
                s.query_map(params![since, id], |r| {
                    Ok(OutgoingOverview {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        account: r.get(2)?,
                        sender: r.get(3)?,
                        subject: r.get(4)?,
                        final_delivery: r.get(5)?,
                        transport: r.get(6)?,
                        outbox_state: r.get(7)?,
                        attempts: r.get(8)?,
                        last_error: r.get(9)?,
                        recipients: Vec::new(),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.outgoing_id, r.address, r.kind, r.state, r.hisp_message_id, r.reason, r.updated_at
                 FROM recipients r JOIN outgoing o ON o.id = r.outgoing_id
                 WHERE o.created_at >= ?1 AND (?2 IS NULL OR o.id = ?2) ORDER BY r.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![since, id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    RecipientRow {
                        address: r.get(1)?,
                        kind: r.get(2)?,
                        state: r.get(3)?,
                        hisp_message_id: r.get(4)?,
                        reason: r.get(5)?,
                        updated_at: r.get(6)?,
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let index: std::collections::HashMap<i64, usize> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id, i))
            .collect();
        for (outgoing_id, row) in rows {
            if let Some(&i) = index.get(&outgoing_id) {
                messages[i].recipients.push(row);
            }
        }
        Ok(messages)
    }

    /// Outgoing messages still waiting in the outbox (for status lines and metrics).
    pub fn queue_depth(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM outgoing WHERE state = 'queued'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}
