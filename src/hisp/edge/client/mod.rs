//! The Direct edge transport: SMTP submission and IMAP retrieval against a HISP's mail servers
//! (Direct Edge Protocols IG v1.1), both over TLS verified against one configured CA file.
//!
//! Sending hands pre-built message bytes (already signed and encrypted upstream) to the
//! submission server with an explicit envelope and reports an outcome for every recipient.
//! Receiving takes the oldest undeleted message of a mailbox and leaves it there until the
//! daemon calls [`EdgeClient::acknowledge`], which it does only once the message is committed:
//! a crash between the two fetches the same message again, never loses it.

mod imap;
mod smtp;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use imap::{FetchedMessage, ImapUid};
pub use smtp::RcptOutcome;

/// How the SMTP submission connection is secured. There is no plaintext option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465, "submissions", RFC 8314).
    Implicit,
    /// Plain connection upgraded with STARTTLS before anything else (port 587); a server that
    /// does not offer STARTTLS is an error, never a fallback to plaintext.
    StartTls,
}

/// What [`EdgeClient::acknowledge`] does with a message the daemon has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFetch {
    /// Flag it `\Deleted` and expunge it (only that UID where the server has UIDPLUS).
    Delete,
    /// Move it to this folder (created on first use).
    Move(String),
}

/// Where and as whom to submit and retrieve.
#[derive(Clone)]
pub struct EdgeSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    /// IMAP is always implicit TLS (port 993).
    pub imap_host: String,
    pub imap_port: u16,
    pub user: String,
    pub password: String,
    /// The only trust anchors for both servers: no system roots, no "accept anything".
    pub ca_file: PathBuf,
    /// The mailbox messages are fetched from, normally `INBOX`.
    pub mailbox: String,
    pub after_fetch: AfterFetch,
    /// Limit for connecting, for each IMAP command and for each whole SMTP transaction
    /// (connect, TLS, AUTH, envelope, data). Raise it for large messages over slow links.
    pub timeout: Duration,
}

impl fmt::Debug for EdgeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("imap_host", &self.imap_host)
            .field("imap_port", &self.imap_port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .field("mailbox", &self.mailbox)
            .field("after_fetch", &self.after_fetch)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Local configuration that cannot work (unreadable CA file, bad host name, bad address).
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("TLS with {addr} failed: {source}")]
    Tls {
        addr: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{server} refused the login for {user}: {reply}")]
    AuthRejected {
        server: &'static str,
        user: String,
        reply: String,
    },
    /// The submission server refused the transaction for this recipient (or the address is not
    /// one that can be sent to). Only returned by [`EdgeClient::submit_one`];
    /// [`EdgeClient::submit`] reports it as a [`RcptOutcome`].
    #[error("recipient {rcpt} refused: {reply}")]
    RecipientRejected {
        rcpt: String,
        reply: String,
        /// A 5xx reply: retrying the same recipient will not help.
        permanent: bool,
    },
    /// The message bytes cannot be sent as they are (bare CR/LF, empty).
    #[error("message not sendable: {0}")]
    InvalidMessage(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("IMAP {command} failed: {reason}")]
    Imap {
        command: &'static str,
        reason: String,
    },
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },
    /// The mailbox was recreated (or its UIDs reset) between fetch and acknowledge: the UID no
    /// longer names the message that was committed, so nothing is deleted.
    #[error("UIDVALIDITY of {mailbox} is now {found}, the message was fetched under {expected}")]
    UidValidityChanged {
        mailbox: String,
        expected: u32,
        found: u32,
    },
}

impl EdgeError {
    /// Errors that retrying soon cannot fix (wrong password, untrusted certificate, bad local
    /// configuration, a permanently refused recipient): back off to the maximum.
    pub fn is_permanent(&self) -> bool {
        match self {
            EdgeError::Config(_)
            | EdgeError::AuthRejected { .. }
            | EdgeError::InvalidMessage(_) => true,
            EdgeError::RecipientRejected { permanent, .. } => *permanent,
            EdgeError::Tls { source, .. } => {
                matches!(source, rustls::Error::InvalidCertificate(_))
            }
            _ => false,
        }
    }
}

/// One account at a HISP, for both directions. Holds at most one IMAP session open between
/// calls (dropped and reopened after any error); SMTP opens a connection per transaction.
pub struct EdgeClient {
    settings: EdgeSettings,
    smtp: smtp::Submitter,
    imap: imap::Retriever,
}

impl fmt::Debug for EdgeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl EdgeClient {
    /// Loads the CA file and prepares both clients; connects to nothing yet.
    pub fn new(settings: EdgeSettings) -> Result<Self, EdgeError> {
        let tls = crate::tls::client_config(&settings.ca_file, None)
            .map_err(|e| EdgeError::Config(e.to_string()))?;
        let smtp = smtp::Submitter::new(&settings)?;
        let imap = imap::Retriever::new(Arc::clone(&tls));
        Ok(EdgeClient {
            settings,
            smtp,
            imap,
        })
    }

    pub fn settings(&self) -> &EdgeSettings {
        &self.settings
    }

    /// Submits `raw_message` unchanged to every address in `rcpt_to`, with `envelope_from` as
    /// MAIL FROM, and returns one outcome per recipient in the order given.
    ///
    /// lettre aborts a whole transaction at the first refused RCPT, so a single transaction
    /// cannot say which recipients were good. Each recipient therefore gets its own transaction
    /// (its own connection, TLS and AUTH): every outcome is the server's own answer for that
    /// recipient, with no guessing from a probe. The cost is one upload of the message per
    /// recipient, which for Direct's typical one to a few recipients is small.
    ///
    /// Returns `Err` only when nothing was accepted and the failure is not about a recipient
    /// (cannot connect, TLS, AUTH, timeout): the caller may retry the whole send. Once a
    /// recipient was accepted, a later connection failure is reported as
    /// [`RcptOutcome::Deferred`] for it and every recipient after it, so an accepted recipient is
    /// never sent twice by a retry of the whole message.
    ///
    /// A refusal of MAIL FROM or of the message itself (rather than of RCPT TO) cannot be told
    /// apart inside lettre; it shows up as the same refusal for each recipient, carrying the
    /// server's reply text (e.g. "Sender address rejected"), which names the cause.
    pub async fn submit(
        &self,
        envelope_from: &str,
        rcpt_to: &[String],
        raw_message: &[u8],
    ) -> Result<Vec<(String, RcptOutcome)>, EdgeError> {
        self.smtp
            .submit(&self.settings, envelope_from, rcpt_to, raw_message)
            .await
    }

    /// One recipient, one transaction: `Ok` with the server's acceptance, or
    /// [`EdgeError::RecipientRejected`] when the server refused it.
    pub async fn submit_one(
        &self,
        envelope_from: &str,
        rcpt: &str,
        raw_message: &[u8],
    ) -> Result<RcptOutcome, EdgeError> {
        self.smtp
            .submit_one(&self.settings, envelope_from, rcpt, raw_message)
            .await
    }

    /// The oldest message in the mailbox that is not flagged `\Deleted`, read without setting
    /// `\Seen`; `None` when there is none. Calling it again before acknowledging returns the
    /// same message.
    pub async fn fetch_next(&mut self) -> Result<Option<FetchedMessage>, EdgeError> {
        self.imap.fetch_next(&self.settings).await
    }

    /// Removes a fetched message from the mailbox (per [`AfterFetch`]). Call only once the
    /// message is committed. Refuses if the mailbox's UIDVALIDITY changed since the fetch.
    pub async fn acknowledge(&mut self, uid: ImapUid) -> Result<(), EdgeError> {
        self.imap.acknowledge(&self.settings, uid).await
    }

    /// Logs out of the IMAP session if one is open. Dropping the client without this just
    /// closes the connection, which is harmless.
    pub async fn close(&mut self) {
        self.imap.close(&self.settings).await;
    }
}

/// The rustls error inside an error chain (tokio-rustls and lettre wrap it in `io::Error`s).
pub(crate) fn find_rustls_error(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r.clone());
                }
            }
        }
        cur = e.source();
    }
    None
}

/// The daemon drives transports from spawned tasks: every future here must be `Send`.
#[allow(dead_code)]
fn futures_are_send(c: &mut EdgeClient, uid: ImapUid) {
    fn send<T: Send>(_: T) {}
    send(c.submit("a@b", &[], b""));
    send(c.fetch_next());
    send(c.acknowledge(uid));
    send(c.close());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let s = EdgeSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 587,
            smtp_tls: SmtpTls::StartTls,
            imap_host: "127.0.0.1".into(),
            imap_port: 993,
            user: "clinic@a.test".into(),
            password: "hunter2-secret".into(),
            ca_file: "/nonexistent/ca.pem".into(),
            mailbox: "INBOX".into(),
            after_fetch: AfterFetch::Delete,
            timeout: Duration::from_secs(5),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let s = EdgeSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 587,
            smtp_tls: SmtpTls::Implicit,
            imap_host: "127.0.0.1".into(),
            imap_port: 993,
            user: "u".into(),
            password: "p".into(),
            ca_file: "/nonexistent/ca.pem".into(),
            mailbox: "INBOX".into(),
            after_fetch: AfterFetch::Delete,
            timeout: Duration::from_secs(5),
        };
        let err = EdgeClient::new(s).unwrap_err();
        assert!(matches!(err, EdgeError::Config(_)), "{err:?}");
        assert!(err.is_permanent());
    }
}
