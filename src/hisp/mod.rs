//! HISP transports: the [`Transport`] trait the daemon drives, and its implementations.
//!
//! A transport hands over one inbound item at a time and is told separately to acknowledge it, so
//! the daemon can commit the item to the store in between: nothing is acknowledged to a HISP before
//! it is durable.

pub mod codec;
pub mod phimail;

use std::future::Future;

use serde::Serialize;

pub use codec::CodecError;

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
}

#[derive(Debug, Clone)]
pub struct SendReport {
    pub recipients: Vec<(String, RecipientOutcome)>,
}

/// A delivery notification about something we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusNotice {
    pub hisp_id: String,
    /// `dispatched` or `failed` in every known HISP; others are kept verbatim.
    pub code: String,
    pub info: String,
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
    Status(StatusNotice),
    Mail(ReceivedMail),
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
    #[error("unexpected reply to {command}: {reply:?}")]
    Protocol {
        command: &'static str,
        reply: String,
    },
    #[error("connection error: {0}")]
    Codec(#[from] CodecError),
    #[error("TLS configuration: {0}")]
    Config(#[from] crate::tls::TlsError),
}

impl HispError {
    /// Errors that retrying soon cannot fix (wrong password, untrusted certificate, bad local
    /// configuration): the daemon backs off to its maximum instead of hammering the HISP.
    pub fn is_permanent(&self) -> bool {
        match self {
            HispError::AuthRejected { .. } | HispError::Config(_) => true,
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
}
