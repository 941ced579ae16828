use std::path::PathBuf;

use openssl::error::ErrorStack;
use thiserror::Error;

/// Why a message could not be sealed or opened, or why keys and anchors could not be loaded.
///
/// One variant per refusal so the caller can choose the MDN/DSN and the log line without
/// matching on strings.
#[derive(Debug, Error)]
pub enum SmimeError {
    #[error("message is not S/MIME enveloped-data (Content-Type: {found})")]
    NotEncrypted { found: String },
    #[error("encrypted content is mixed with plaintext parts")]
    MixedContent,
    #[error("malformed MIME: {0}")]
    MalformedMime(String),
    #[error("malformed CMS structure: {0}")]
    MalformedCms(String),
    #[error("unsupported CMS content type {oid}")]
    UnsupportedCmsType { oid: String },
    #[error("content is encrypted with weak cipher {alg}")]
    WeakCipher { alg: String },
    #[error("content is encrypted with unsupported cipher {oid}")]
    UnsupportedCipher { oid: String },
    #[error("no configured private key matches a recipient of this message")]
    NoMatchingRecipient,
    /// OpenSSL's error stack is kept as the source for debugging; the message is for people.
    #[error("the message could not be decrypted with our key (the key does not fit, or the encrypted content was altered)")]
    DecryptFailed(#[source] ErrorStack),
    #[error("decrypted content is not signed (found {found})")]
    Unsigned { found: String },
    #[error("signature uses weak digest {alg}")]
    WeakDigest { alg: String },
    #[error("signature uses unsupported digest {oid}")]
    UnsupportedDigest { oid: String },
    #[error("{subject}: {bits}-bit RSA key is below the 2048-bit minimum")]
    WeakKey { subject: String, bits: u32 },
    #[error("the signature does not match the signed content")]
    BadSignature(#[source] ErrorStack),
    #[error("signature carries no certificate for signer {sid}")]
    SignerCertMissing { sid: String },
    #[error("{subject}: not trusted by the incoming anchors of {domain}: {reason}")]
    Untrusted {
        subject: String,
        domain: String,
        reason: String,
    },
    #[error("{subject}: certificate has expired")]
    Expired { subject: String },
    #[error("{subject}: certificate is not yet valid")]
    NotYetValid { subject: String },
    #[error("{subject}: certificate is signed with weak algorithm {alg}")]
    WeakCertSignature { subject: String, alg: String },
    #[error("{subject}: certificate is revoked")]
    Revoked { subject: String },
    #[error("{subject}: no usable CRL and revocation policy is Require")]
    RevocationUnavailable { subject: String },
    /// The CRL at a certificate's distribution point is not signed by the certificate's issuer
    /// (or names another issuer): it says nothing about this certificate.
    #[error("{subject}: the CRL at {url} does not verify with its issuer's key")]
    CrlNotVerified { subject: String, url: String },
    #[error("{subject}: the CRL at {url} has passed its nextUpdate and no newer one could be had")]
    CrlExpired { subject: String, url: String },
    #[error("{subject}: {url} is not a CRL")]
    CrlUnreadable { subject: String, url: String },
    #[error("{subject}: its CRL could not be fetched: {reason}")]
    CrlUnavailable { subject: String, reason: String },
    /// Validation needs material from the network that was never tried. The agent fetches the
    /// URLs and validates again; callers outside it see this only if that loop gives up.
    #[error("validation needs {} CRL(s) and {} issuer certificate(s) fetched first", .0.crls.len(), .0.issuers.len())]
    NeedFetch(super::net::Wanted),
    #[error("{subject}: key usage does not allow {needed}")]
    KeyUsage {
        subject: String,
        needed: &'static str,
    },
    #[error("{subject}: extended key usage does not allow e-mail protection")]
    ExtendedKeyUsage { subject: String },
    #[error("signer {signer} is not bound to From {from}")]
    SignerMismatch { from: String, signer: String },
    #[error("inner message has no usable From address")]
    MissingFrom,
    #[error("SMTP envelope does not match message headers: {reason}")]
    EnvelopeMismatch { reason: String },
    #[error("no trust anchors configured for {domain}")]
    NoTrustAnchors { domain: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: private key file mode {mode:o} is readable by group or other")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{path}: certificate does not match private key")]
    KeyMismatch { path: PathBuf },
    #[error("{path}: bundle signature does not verify: {source}")]
    BundleSignature { path: PathBuf, source: ErrorStack },
    #[error("{path}: bundle is unsigned but a bundle signer is configured")]
    BundleUnsigned { path: PathBuf },
    #[error("no signing identity for {address}")]
    NoIdentity { address: String },
    #[error("no valid certificate for recipient {address} ({rejected} unusable found)")]
    NoRecipientCert { address: String, rejected: usize },
    /// Certificates bound to the address exist but none chains to the sender's outgoing
    /// anchors: encrypting to one would hand PHI to whoever published it.
    #[error("no trusted certificate for {address}")]
    NoTrustedRecipientCert { address: String },
    #[error("no recipient certificates given")]
    NoRecipients,
    #[error("{subject}: only RSA recipient keys are supported")]
    UnsupportedRecipientKey { subject: String },
    #[error("message headers: {0}")]
    BadHeaders(String),
    #[error("network fetching could not be set up: {0}")]
    Fetch(#[from] super::fetch::FetchError),
    #[error("openssl: {0}")]
    Crypto(#[from] ErrorStack),
}
