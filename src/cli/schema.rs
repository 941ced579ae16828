//! The `--json` contract: the documents the commands print, as serde types.
//!
//! docs/json-output.md describes every field, and tests/cli_json_schema.rs checks each command's
//! output against that page, so a change here that the page does not mention fails the tests.
//! The same thing has the same name in every command (`outgoing_id`, `incoming_id`,
//! `recipients[]`, `outcome`); a change that breaks a reader raises [`SCHEMA_VERSION`].

use serde::Serialize;

use crate::store::{EventRow, IncomingOverview, OutgoingOverview, RecipientRow};
use crate::tracking::{self, MessageOutcome, Outcome};

/// The version of the documents below; every JSON document carries it as `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// A JSON document: `schema_version` first, then the command's own fields.
#[derive(Serialize)]
pub struct Versioned<T: Serialize> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub body: T,
}

pub fn versioned<T: Serialize>(body: T) -> Versioned<T> {
    Versioned {
        schema_version: SCHEMA_VERSION,
        body,
    }
}

/// One recipient of an outgoing message (`messages`, `status`).
#[derive(Serialize)]
pub struct RecipientView {
    pub address: String,
    /// `to` or `cc`.
    pub kind: String,
    /// The delivery state (README, "Delivery states").
    pub state: String,
    /// What that state means to the sender.
    pub outcome: Outcome,
    pub hisp_message_id: Option<String>,
    pub reason: Option<String>,
    pub updated_at: String,
}

impl RecipientView {
    fn new(r: &RecipientRow, outcome: Outcome) -> RecipientView {
        RecipientView {
            address: r.address.clone(),
            kind: r.kind.clone(),
            state: r.state.clone(),
            outcome,
            hisp_message_id: r.hisp_message_id.clone(),
            reason: r.reason.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// The outbox's own bookkeeping, kept apart from the delivery outcome it is easily taken for.
#[derive(Serialize)]
pub struct OutboxView {
    /// `queued` (the daemon has still to send it), `submitted` (the HISP answered for every
    /// recipient) or `failed` (given up before the HISP answered).
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// An outgoing message with its outcome and recipients (`messages`, `status`).
#[derive(Serialize)]
pub struct OutgoingView {
    /// Always `out`: the same object in `messages` and `status`.
    pub direction: &'static str,
    pub outgoing_id: i64,
    pub created_at: String,
    pub account: Option<String>,
    pub sender: String,
    pub subject: Option<String>,
    pub final_delivery: bool,
    pub transport: String,
    /// Whether this transport can ever report `displayed` (a read receipt).
    pub read_receipts_possible: bool,
    pub outcome: MessageOutcome,
    pub recipients: Vec<RecipientView>,
    pub outbox: OutboxView,
}

impl OutgoingView {
    pub fn new(m: &OutgoingOverview) -> OutgoingView {
        let outcomes = m.recipient_outcomes();
        OutgoingView {
            direction: "out",
            outgoing_id: m.id,
            created_at: m.created_at.clone(),
            account: m.account.clone(),
            sender: m.sender.clone(),
            subject: m.subject.clone(),
            final_delivery: m.final_delivery,
            transport: m.transport.clone(),
            read_receipts_possible: tracking::reports_read_receipts(&m.transport),
            outcome: MessageOutcome::of(&outcomes),
            recipients: m
                .recipients
                .iter()
                .zip(&outcomes)
                .map(|(r, o)| RecipientView::new(r, *o))
                .collect(),
            outbox: OutboxView {
                state: m.outbox_state.clone(),
                attempts: m.attempts,
                last_error: m.last_error.clone(),
            },
        }
    }
}

/// The transport a message goes by. The store records it when the daemon first tries to send
/// (until then its column holds the default, `phimail`), so for a message never tried yet the
/// configured account of its sender says it better, and with it whether a read receipt can come.
pub fn settle_transport(m: &mut OutgoingOverview, config: &crate::config::Config) {
    if m.attempts == 0 {
        if let Some(account) = config.account_for(&m.sender) {
            m.transport = account.transport_name().to_owned();
        }
    }
}

/// A received message as `messages` lists it.
#[derive(Serialize)]
pub struct IncomingView {
    /// Always `in`.
    pub direction: &'static str,
    pub incoming_id: i64,
    pub received_at: String,
    pub account: String,
    pub sender: String,
    pub recipient: String,
    pub subject: Option<String>,
    /// `received`, `quarantined`, or `quarantined_unreadable` (it could not be read at all and
    /// was acknowledged to the HISP anyway).
    pub state: &'static str,
    pub quarantine_reason: Option<String>,
    /// Someone opened it with `directd show`.
    pub viewed: bool,
    pub attachment_count: i64,
    pub ingest_failures: i64,
}

impl IncomingView {
    pub fn new(m: &IncomingOverview) -> IncomingView {
        IncomingView {
            direction: "in",
            incoming_id: m.id,
            received_at: m.received_at.clone(),
            account: m.account.clone(),
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            subject: m.subject.clone(),
            state: incoming_state(m),
            quarantine_reason: m.quarantine_reason.clone(),
            viewed: m.viewed,
            attachment_count: m.attachments,
            ingest_failures: m.ingest_failures,
        }
    }
}

pub fn incoming_state(m: &IncomingOverview) -> &'static str {
    match (&m.quarantine_reason, m.unreadable) {
        (None, _) => "received",
        (Some(_), false) => "quarantined",
        (Some(_), true) => "quarantined_unreadable",
    }
}

/// One entry of `messages`: its `direction` says which of the two it is.
#[derive(Serialize)]
#[serde(untagged)]
pub enum MessageView {
    Out(OutgoingView),
    In(IncomingView),
}

#[derive(Serialize)]
pub struct MessagesDoc {
    pub messages: Vec<MessageView>,
}

/// `status ID`: the message, and with `--wait` how the wait ended.
#[derive(Serialize)]
pub struct StatusDoc {
    pub message: OutgoingView,
    /// `complete`, `timeout_expired` (the `--timeout` ran out first; not a recipient state) or
    /// `not_waited`.
    pub wait: &'static str,
}

/// One delivery event (`receipts`, and each line of `receipts --follow --json`).
#[derive(Serialize)]
pub struct EventView {
    pub event_id: i64,
    /// `null` for a notification about a message this store does not know.
    pub outgoing_id: Option<i64>,
    pub recipient: Option<String>,
    pub hisp_message_id: Option<String>,
    pub at: String,
    pub state: String,
    /// `local`, `hisp`, `phimail`, `mdn`, `dsn` or `timeout`.
    pub source: String,
    pub detail: Option<String>,
    /// False when it arrived but did not move the state (duplicate, late, unknown code).
    pub applied: bool,
}

impl EventView {
    pub fn new(e: &EventRow) -> EventView {
        EventView {
            event_id: e.event_id,
            outgoing_id: e.message_id,
            recipient: e.recipient.clone(),
            hisp_message_id: e.hisp_message_id.clone(),
            at: e.at.clone(),
            state: e.state.clone(),
            source: e.source.clone(),
            detail: e.detail.clone(),
            applied: e.applied,
        }
    }
}

#[derive(Serialize)]
pub struct ReceiptsDoc {
    pub events: Vec<EventView>,
}

/// One attachment of a received message (`show`).
#[derive(Serialize)]
pub struct AttachmentView {
    pub attachment_id: i64,
    pub seq: i64,
    pub filename: String,
    pub declared_type: String,
    pub description: Option<String>,
    pub size: i64,
    pub sha256: String,
    /// `pending`, `ingested`, `partial`, `not_clinical` or `failed`.
    pub ingest_state: String,
    /// Why ingestion failed (or was partial).
    pub ingest_error: Option<String>,
}

/// An MDN owed to, or sent to, the sender of a received message.
#[derive(Serialize)]
pub struct MdnView {
    pub disposition: String,
    /// `null` while it is owed and not yet sent.
    pub sent_at: Option<String>,
}

/// What `show --mark-read` did.
#[derive(Serialize)]
pub struct MarkReadView {
    /// `queued`, `already_queued`, `already_sent`, `not_requested` or `not_possible`.
    pub result: &'static str,
    /// Where the read receipt goes (the sender's Disposition-Notification-To).
    pub to: Option<String>,
    /// The sentence the text output prints.
    pub explanation: String,
}

/// A received message in full (`show`).
#[derive(Serialize)]
pub struct IncomingDetailView {
    pub incoming_id: i64,
    pub account: String,
    pub hisp_message_id: String,
    pub sender: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub date: Option<String>,
    pub header_message_id: Option<String>,
    /// [name, value] pairs in the order received.
    pub headers: Vec<(String, String)>,
    pub body_type: String,
    /// The body when it is text; `null` otherwise.
    pub body_text: Option<String>,
    pub received_at: String,
    pub quarantine_reason: Option<String>,
    /// The S/MIME security agent's verdict; `null` for phiMail messages.
    pub verdict: Option<serde_json::Value>,
    pub attachments: Vec<AttachmentView>,
    pub mdns: Vec<MdnView>,
}

#[derive(Serialize)]
pub struct ShowDoc {
    pub message: IncomingDetailView,
    /// Files written by --save.
    pub saved: Vec<std::path::PathBuf>,
    /// `null` without --mark-read.
    pub mark_read: Option<MarkReadView>,
}

impl IncomingDetailView {
    pub fn new(
        m: &crate::store::IncomingDetail,
        mdns: Vec<(String, Option<String>)>,
    ) -> IncomingDetailView {
        IncomingDetailView {
            incoming_id: m.id,
            account: m.account.clone(),
            hisp_message_id: m.hisp_message_id.clone(),
            sender: m.sender.clone(),
            recipient: m.recipient.clone(),
            subject: m.subject.clone(),
            date: m.date.clone(),
            header_message_id: m.header_message_id.clone(),
            headers: m.headers.clone(),
            body_type: m.body_type.clone(),
            body_text: m.body_text.clone(),
            received_at: m.received_at.clone(),
            quarantine_reason: m.quarantine_reason.clone(),
            verdict: m
                .verdict
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok()),
            attachments: m
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    attachment_id: a.id,
                    seq: a.seq,
                    filename: a.filename.clone(),
                    declared_type: a.declared_type.clone(),
                    description: a.description.clone(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                    ingest_state: a.ingest_state.clone(),
                    ingest_error: a.ingest_error.clone(),
                })
                .collect(),
            mdns: mdns
                .into_iter()
                .map(|(disposition, sent_at)| MdnView {
                    disposition,
                    sent_at,
                })
                .collect(),
        }
    }
}
