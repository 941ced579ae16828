//! HISP transports: the [`Transport`] trait the daemon drives, and its implementations.
//!
//! A transport hands over one inbound item at a time and is told separately to acknowledge it, so
//! the daemon can commit the item to the store in between: nothing is acknowledged to a HISP before
//! it is durable.

pub mod codec;
pub mod edge;
pub mod phimail;

use std::future::Future;

use serde::Serialize;

pub use codec::CodecError;

/// How the reason of a message quarantined without being read begins (it was acknowledged all
/// the same, so the queue behind it could move); listings pick these out by it.
pub const UNREAD_QUARANTINE: &str = "unreadable, quarantined unread";

/// How a part of an outgoing message is declared to the HISP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    /// A C-CDA document (UTF-8 XML).
    Cda,
    /// UTF-8 text, the message body.
    Text,
    /// Any other file; the HISP derives the type from the filename.
    Raw,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Cda => "cda",
            PartKind::Text => "text",
            PartKind::Raw => "raw",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cda" => Some(PartKind::Cda),
            "text" => Some(PartKind::Text),
            "raw" => Some(PartKind::Raw),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutPart {
    pub kind: PartKind,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    To,
    Cc,
}

#[derive(Debug, Clone)]
pub struct OutRecipient {
    pub address: String,
    pub kind: RecipientKind,
}

/// One queued message as the transport needs it. The first part is the body.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub local_id: i64,
    pub sender: String,
    pub recipients: Vec<OutRecipient>,
    pub subject: Option<String>,
    pub final_delivery: bool,
    pub parts: Vec<OutPart>,
}

/// What the HISP said about one recipient of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// Accepted; the HISP's own id for this recipient's copy.
    Queued { hisp_id: String },
    /// Refused for this recipient only (unknown address, bad domain...).
    Rejected { reason: String },
    /// Not accepted this time (temporary refusal, connection lost): try this recipient again.
    Deferred { reason: String },
}

#[derive(Debug, Clone)]
pub struct SendReport {
    pub recipients: Vec<(String, RecipientOutcome)>,
}

/// A delivery notification about something we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusNotice {
    /// phiMail: its per-recipient id from QUEUED. Edge: the Message-ID we sent.
    pub hisp_id: String,
    /// The recipient it is about, when the id alone does not say (MDNs and DSNs).
    pub recipient: Option<String>,
    /// phiMail: `dispatched` or `failed`; MDN: the disposition; DSN: `failed`, `delayed`...
    /// Unknown codes are kept verbatim and move nothing.
    pub code: String,
    pub info: String,
    /// `phimail`, `mdn` or `dsn`.
    pub source: &'static str,
    /// An MDN carried the X-DIRECT-FINAL-DESTINATION-DELIVERY extension field.
    pub final_delivery_ext: bool,
}

/// What an accepted Direct message asks of us: MDNs back to its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnRequest {
    /// Where MDNs go (the original sender).
    pub to: String,
    pub original_message_id: String,
    /// The sender asked for `dispatched` with X-DIRECT-FINAL-DESTINATION-DELIVERY.
    pub final_delivery: bool,
}

/// An MDN the daemon owes and asks the transport to deliver (sealed like any Direct message).
#[derive(Debug, Clone)]
pub struct MdnJob {
    pub id: i64,
    pub disposition: crate::mdn::Disposition,
    /// Our address that received the original (the MDN's sender).
    pub from: String,
    pub to: String,
    pub original_message_id: String,
    pub final_delivery_ext: bool,
}

/// A message that arrived but failed decryption, signature, trust or envelope checks. It is kept
/// in quarantine with the reason, never ingested.
#[derive(Debug, Clone)]
pub struct RejectedMail {
    pub hisp_id: String,
    pub recipient: String,
    pub sender: String,
    pub raw: Vec<u8>,
    pub reason: String,
    /// Set when the message passed security and trust but still cannot be delivered (it cannot
    /// be stored): its sender is owed a `failed` MDN instead of waiting out a timeout. Never set
    /// for a message that failed its checks, whose sender cannot be believed.
    pub mdn: Option<MdnRequest>,
}

#[derive(Debug, Clone)]
pub struct ReceivedAttachment {
    pub filename: String,
    pub mime_type: String,
    pub description: String,
    pub data: Vec<u8>,
}

/// A message received for one of our addresses, fully read.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The address it was delivered to (for an Address Group login: the member), which is what
    /// routing uses, not the To: header.
    pub recipient: String,
    pub sender: String,
    pub hisp_id: String,
    pub headers: Vec<(String, String)>,
    pub body_type: String,
    pub body: Vec<u8>,
    pub attachments: Vec<ReceivedAttachment>,
    /// The message exactly as received, when the transport has it (S/MIME).
    pub raw: Option<Vec<u8>>,
    /// The security agent's verdict (JSON), for S/MIME messages.
    pub verdict: Option<String>,
    /// MDNs the sender is owed, for transports where we are the security agent.
    pub mdn: Option<MdnRequest>,
}

impl ReceivedMail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum Inbound {
    /// One or more notifications (an MDN or DSN may speak for several recipients).
    Status(Vec<StatusNotice>),
    Mail(ReceivedMail),
    Rejected(RejectedMail),
}

#[derive(Debug, thiserror::Error)]
pub enum HispError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("HISP refused the login for {user}: {reply}")]
    AuthRejected { user: String, reply: String },
    #[error("HISP answered {command} with: {reply}")]
    Refused {
        command: &'static str,
        reply: String,
    },
    /// The peer's line is never quoted: when framing slips, the "reply" is a line of the
    /// message itself (a patient's diagnosis), and this error reaches the logs.
    #[error("unexpected reply to {command} ({bytes} bytes): {problem}")]
    Protocol {
        command: &'static str,
        problem: &'static str,
        bytes: usize,
    },
    #[error("connection error: {0}")]
    Codec(#[from] CodecError),
    #[error("TLS configuration: {0}")]
    Config(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Edge(#[from] edge::client::EdgeError),
    #[error("message {hisp_id} could not be read: {source}")]
    MailUnreadable {
        hisp_id: String,
        source: Box<HispError>,
    },
}

impl HispError {
    /// Errors that retrying soon cannot fix (wrong password, untrusted certificate, bad local
    /// configuration): the daemon backs off to its maximum instead of hammering the HISP.
    /// Failures caused by the content of what the HISP sent (malformed framing, a part over the
    /// size limit) rather than by the connection: they repeat identically on every retry.
    pub fn is_content_error(&self) -> bool {
        match self {
            HispError::Protocol { .. }
            | HispError::Codec(CodecError::PayloadTooLarge { .. } | CodecError::LineTooLong) => {
                true
            }
            HispError::MailUnreadable { source, .. } => source.is_content_error(),
            _ => false,
        }
    }

    pub fn is_permanent(&self) -> bool {
        match self {
            HispError::AuthRejected { .. } | HispError::Config(_) => true,
            HispError::Edge(e) => e.is_permanent(),
            HispError::Tls { source, .. } => source
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_))),
            _ => false,
        }
    }
}

/// A HISP connection as the daemon uses it: send one message, take the next inbound item, and
/// acknowledge an item once it has been committed.
pub trait Transport: Send {
    fn send(
        &mut self,
        msg: &OutgoingMessage,
    ) -> impl Future<Output = Result<SendReport, HispError>> + Send;

    /// The next item at the head of the queue, or `None` when it is empty. Calling this again
    /// without acknowledging returns the same item.
    fn next_inbound(&mut self) -> impl Future<Output = Result<Option<Inbound>, HispError>> + Send;

    fn acknowledge(&mut self, item: &Inbound)
        -> impl Future<Output = Result<(), HispError>> + Send;
    /// Delivers an MDN we owe. Only transports where directd is the security agent produce
    /// [`MdnRequest`]s, so only they are ever asked.
    fn send_mdn(&mut self, job: &MdnJob) -> impl Future<Output = Result<(), HispError>> + Send;
}
