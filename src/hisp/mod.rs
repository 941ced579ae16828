//! HISP transports: the [`Transport`] trait the daemon drives, and its implementations.
//!
//! A transport hands over one inbound item at a time and is told separately to acknowledge it, so
//! the daemon can commit the item to the store in between: nothing is acknowledged to a HISP before
//! it is durable.

pub mod codec;
pub mod edge;
pub mod phimail;

use std::future::Future;

pub use codec::CodecError;

// The shared message vocabulary lives at the bottom layer (`crate::message`); transports speak
// it, and so do the store and tracking, without depending on this module.
pub use crate::message::{
    Inbound, MdnJob, MdnRequest, NoticeSource, OutPart, OutRecipient, OutgoingMessage, PartKind,
    ReceivedAttachment, ReceivedMail, RecipientKind, RecipientOutcome, RejectedMail, SendReport,
    StatusNotice, UNREAD_QUARANTINE,
};

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
