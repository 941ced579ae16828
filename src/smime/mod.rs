//! The Direct security agent: sign-then-encrypt outbound messages and
//! decrypt-verify-unwrap inbound ones, as the Applicability Statement for Secure Health
//! Transport requires.
//!
//! Outbound: [`seal`] wraps the whole RFC 5322 message in `message/rfc822`, signs it as
//! `multipart/signed` (detached CMS, SHA-256), and encrypts that entity to every recipient
//! certificate as CMS EnvelopedData (AES-CBC, RSA-OAEP by default; AES-GCM AuthEnvelopedData
//! as an option).
//!
//! Inbound: [`open`] refuses anything but a single encrypted entity, checks the algorithms
//! before touching a private key, decrypts, verifies every signer against the exact bytes that
//! were signed, validates each signer chain against the recipient domain's incoming anchors,
//! binds the signer to the inner From, and optionally checks the SMTP envelope.

pub mod agent;
pub mod bundles;
pub mod certs;
pub mod discovery;
pub mod fetch;
pub mod ldap;
pub mod net;
pub mod publish;
pub mod trust;

pub(crate) mod cms;
pub(crate) mod der;
mod error;
// Byte-exact MIME lives at the bottom layer (`crate::mime`): mdn and the edge use it too.
pub(crate) use crate::mime;
mod open;
mod seal;
#[cfg(test)]
mod test_certs;

use serde::Serialize;

pub use agent::{Agent, AgentSettings, AnchorSource, BundleSettings, NetSettings};
pub use certs::{Binding, CertDirectory, Identity, KeyStore};
pub use error::SmimeError;
#[cfg(fuzzing)]
pub use open::fuzz_verify_signed;
pub use open::{open, Decoded};
pub use seal::seal;
pub use trust::{BundleStatus, ChainVerdict, Direction, RevocationPolicy, TrustStore};

/// Content-encryption algorithm for outbound messages. CBC by default: the reference
/// implementation cannot read AuthEnvelopedData (AES-GCM, RFC 5083/5084), so GCM is only for
/// partners known to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentCipher {
    #[default]
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
}

/// How the content-encryption key is wrapped for each recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTransport {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 4055).
    #[default]
    RsaOaepSha256,
    /// RSAES-OAEP with the default SHA-1 parameters, for peers that know no other OAEP.
    RsaOaepSha1,
    /// RSAES-PKCS1-v1_5, which the AS still accepts.
    RsaPkcs1v15,
    /// Reported on inbound messages only: OAEP with parameters other than the two above.
    RsaOaepOther,
}

/// Options for [`seal`].
#[derive(Debug, Clone)]
pub struct SealOptions {
    pub cipher: ContentCipher,
    pub key_transport: KeyTransport,
    /// The Subject of the outer (unencrypted) headers. The real subject may be PHI and stays
    /// inside.
    pub outer_subject: String,
    /// Wrap the message as `message/rfc822` (required for certification). Unwrapped output
    /// exposes every inner header, Subject included, on the outside.
    pub wrap: bool,
    /// Also encrypt to the signer's own certificate so the sender can read its sent copy.
    pub encrypt_to_sender: bool,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            cipher: ContentCipher::default(),
            key_transport: KeyTransport::default(),
            outer_subject: "Direct message".to_string(),
            wrap: true,
            encrypt_to_sender: false,
        }
    }
}

/// The SMTP envelope a message arrived with, for the AS 1.3 tamper check.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// Whether the SMTP envelope was compared with the inner headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeCheck {
    NotChecked,
    Passed,
}

/// One verified signer.
#[derive(Debug, Clone, Serialize)]
pub struct SignerVerdict {
    pub subject: String,
    /// The From (or Sender) address the certificate was bound to.
    pub address: Option<String>,
    pub binding: Option<Binding>,
    /// Digest as `micalg` names it, e.g. `sha-256`.
    pub digest: String,
    /// Subject of the incoming anchor the chain ended at.
    pub trusted_by: String,
    pub chain: Vec<String>,
}

/// Everything [`open`] established about a message, for logs and `inspect --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Subject and serial (upper-case hex, as `openssl x509 -serial` shows it) of our
    /// certificate whose key decrypted the message.
    pub decrypted_by: String,
    pub decrypted_by_serial: String,
    /// The local domain whose incoming anchors were used.
    pub recipient_domain: String,
    pub content_cipher: String,
    pub key_transport: KeyTransport,
    pub signers: Vec<SignerVerdict>,
    /// True when the signed content was a `message/rfc822` (the inner headers were used).
    pub wrapped: bool,
    pub from: String,
    pub envelope: EnvelopeCheck,
    /// Things that did not stop the message but that an administrator chasing an interop
    /// problem should see, e.g. a `micalg` that does not name the signature's digest.
    pub notes: Vec<String>,
}

/// A message that decrypted, verified and passed the trust and binding checks.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    /// The inner RFC 5322 message, CRLF line ends. Not serialised: it is the PHI.
    #[serde(skip)]
    pub inner: Vec<u8>,
    pub inner_len: usize,
    pub verdict: Verdict,
}
