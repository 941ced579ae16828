//! Our own keys, recipients' certificates, and how a certificate is bound to a Direct address.

use std::fs;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509KeyUsage, X509};
use serde::Serialize;

use super::der::{self, oid};
use super::error::SmimeError;
use super::trust::{Direction, TrustStore};

/// Smallest RSA modulus the AS accepts.
pub const MIN_RSA_BITS: u32 = 2048;

/// How a certificate matched an address, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// SAN rfc822Name equals the full address.
    Address,
    /// SAN dNSName equals the address's domain.
    Domain,
    /// EMAILADDRESS in the subject DN equals the address (pre-SAN certificates).
    LegacySubjectEmail,
}

/// What a key is about to be used for, so key usage can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Sign,
    Encrypt,
}

/// A local signing/decryption identity: certificate, private key, and the intermediates to
/// send alongside the certificate so relying parties can build the chain.
pub struct Identity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub chain: Vec<X509>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Identity")
            .field("subject", &subject_string(&self.cert))
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn new(cert: X509, key: PKey<Private>, chain: Vec<X509>) -> Result<Self, SmimeError> {
        if !cert.public_key()?.public_eq(&key) {
            return Err(SmimeError::KeyMismatch {
                path: PathBuf::from("<memory>"),
            });
        }
        Ok(Identity { cert, key, chain })
    }

    /// The local domain this identity belongs to: the domain of its address or its dNSName.
    pub fn domain(&self) -> Option<String> {
        cert_domain(&self.cert)
    }
}

/// The private keys and certificates of the local addresses and domains.
#[derive(Debug, Default)]
pub struct KeyStore {
    identities: Vec<Identity>,
}

impl KeyStore {
    pub fn new() -> Self {
        KeyStore::default()
    }

    pub fn add(&mut self, identity: Identity) {
        self.identities.push(identity);
    }

    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Loads every `NAME.key` with its certificate `NAME.crt` or `NAME.pem` (end-entity first,
    /// intermediates after), and every `.pem` holding both a key and certificates.
    ///
    /// A key file readable by group or other is refused rather than warned about: a leaked
    /// Direct key lets anyone read that address's PHI.
    pub fn load_dir(path: &Path) -> Result<Self, SmimeError> {
        let mut store = KeyStore::new();
        let entries = files_in(path)?;
        for file in &entries {
            let data = read(file)?;
            if memchr::memmem::find(&data, b"PRIVATE KEY-----").is_none() {
                continue;
            }
            check_key_permissions(file)?;
            let key = PKey::private_key_from_pem(&data).map_err(|e| bad(file, e))?;
            let certs = if memchr::memmem::find(&data, b"-----BEGIN CERTIFICATE-----").is_some() {
                X509::stack_from_pem(&data).map_err(|e| bad(file, e))?
            } else {
                let cert_file = ["crt", "pem"]
                    .iter()
                    .map(|ext| file.with_extension(ext))
                    .find(|p| p != file && p.is_file())
                    .ok_or_else(|| SmimeError::BadFile {
                        path: file.clone(),
                        reason: "no certificate file beside this key (.crt or .pem)".into(),
                    })?;
                let cert_data = read(&cert_file)?;
                X509::stack_from_pem(&cert_data).map_err(|e| bad(&cert_file, e))?
            };
            let mut certs = certs.into_iter();
            let cert = certs.next().ok_or_else(|| SmimeError::BadFile {
                path: file.clone(),
                reason: "no certificate".into(),
            })?;
            if !cert.public_key()?.public_eq(&key) {
                return Err(SmimeError::KeyMismatch { path: file.clone() });
            }
            store.add(Identity {
                cert,
                key,
                chain: certs.collect(),
            });
        }
        Ok(store)
    }

    /// The identity to sign as `address`: an address-bound certificate first, then a
    /// domain-bound one; valid certificates allowed to sign are preferred over the rest.
    pub fn identity_for(&self, address: &str) -> Result<&Identity, SmimeError> {
        self.identities
            .iter()
            .filter_map(|id| binding(&id.cert, address).map(|b| (b, id)))
            .filter(|(_, id)| is_time_valid(&id.cert) && usage_allows(&id.cert, Usage::Sign))
            .min_by_key(|(b, _)| *b)
            .map(|(_, id)| id)
            .ok_or_else(|| SmimeError::NoIdentity {
                address: address.to_string(),
            })
    }
}

/// Certificates of remote recipients, read from a directory of PEM files. This stands in for
/// DNS CERT / LDAP discovery until those exist; the lookup rules are the same.
#[derive(Debug, Default)]
pub struct CertDirectory {
    certs: Vec<X509>,
}

impl CertDirectory {
    pub fn from_certs(certs: Vec<X509>) -> Self {
        CertDirectory { certs }
    }

    pub fn load_dir(path: &Path) -> Result<Self, SmimeError> {
        let mut certs = Vec::new();
        for file in files_in(path)? {
            let data = read(&file)?;
            if memchr::memmem::find(&data, b"-----BEGIN CERTIFICATE-----").is_none() {
                continue;
            }
            certs.extend(X509::stack_from_pem(&data).map_err(|e| bad(&file, e))?);
        }
        Ok(CertDirectory { certs })
    }

    /// The certificates to encrypt to for `address` when `sender_domain` sends: see
    /// [`select_recipient_certs`]. Every certificate in the directory may serve as an
    /// intermediate.
    pub fn lookup(
        &self,
        address: &str,
        trust: &TrustStore,
        sender_domain: &str,
    ) -> Result<Vec<X509>, SmimeError> {
        select_recipient_certs(&self.certs, address, trust, sender_domain)
    }
}

/// Every certificate among `candidates` that `sender_domain` may encrypt to for `address`:
/// bound to it, usable for encryption, in its validity period, and chaining to the outgoing
/// anchors of `sender_domain`. `candidates` also serve as intermediates for chain building.
///
/// A directory file or a DNS answer proves nothing about who holds the key; only the anchor
/// does. Without the chain check, PHI goes to whoever can answer a DNS query. Address-bound
/// certificates are preferred, then domain-bound, then legacy subject e-mail; within the first
/// kind that has a trusted certificate all trusted ones are returned, since the AS wants a
/// message encrypted to every valid certificate.
pub fn select_recipient_certs(
    candidates: &[X509],
    address: &str,
    trust: &TrustStore,
    sender_domain: &str,
) -> Result<Vec<X509>, SmimeError> {
    let mut rejected = 0usize;
    let mut untrusted = 0usize;
    let mut wanted = super::net::Wanted::default();
    for binding_kind in [
        Binding::Address,
        Binding::Domain,
        Binding::LegacySubjectEmail,
    ] {
        let mut chosen = Vec::new();
        for cert in candidates
            .iter()
            .filter(|c| binding(c, address) == Some(binding_kind))
        {
            if check_encryption_cert(cert).is_err() {
                rejected += 1;
                continue;
            }
            match trust.verify_chain(sender_domain, Direction::Outgoing, cert, candidates) {
                Ok(_) => chosen.push(cert.clone()),
                // Deciding without the CRL or issuer could pick a revoked certificate (D17);
                // the agent fetches and selects again.
                Err(SmimeError::NeedFetch(w)) => {
                    wanted.crls.extend(w.crls);
                    wanted.issuers.extend(w.issuers);
                }
                Err(e) => {
                    untrusted += 1;
                    tracing::debug!(
                        subject = %subject_string(cert),
                        error = %e,
                        "recipient certificate not trusted"
                    );
                }
            }
        }
        if wanted != super::net::Wanted::default() {
            return Err(SmimeError::NeedFetch(wanted));
        }
        if !chosen.is_empty() {
            return Ok(chosen);
        }
    }
    if untrusted > 0 {
        Err(SmimeError::NoTrustedRecipientCert {
            address: address.to_string(),
        })
    } else {
        Err(SmimeError::NoRecipientCert {
            address: address.to_string(),
            rejected,
        })
    }
}

/// Checks a recipient certificate can be used to encrypt to: in its validity period, RSA of at
/// least 2048 bits, keyEncipherment allowed if key usage is restricted, and e-mail protection
/// allowed if extended key usage is present.
pub fn check_encryption_cert(cert: &X509) -> Result<(), SmimeError> {
    check_time(cert)?;
    let key = cert.public_key()?;
    if key.id() != Id::RSA {
        return Err(SmimeError::UnsupportedRecipientKey {
            subject: subject_string(cert),
        });
    }
    check_key_strength(cert)?;
    if !usage_allows(cert, Usage::Encrypt) {
        return Err(SmimeError::KeyUsage {
            subject: subject_string(cert),
            needed: "keyEncipherment",
        });
    }
    check_email_eku(cert)?;
    Ok(())
}

/// Refuses RSA keys under [`MIN_RSA_BITS`]. EC keys are judged by their curve in openssl's own
/// security level, so only RSA is checked here.
pub fn check_key_strength(cert: &X509) -> Result<(), SmimeError> {
    let key = cert.public_key()?;
    if key.id() == Id::RSA && key.bits() < MIN_RSA_BITS {
        return Err(SmimeError::WeakKey {
            subject: subject_string(cert),
            bits: key.bits(),
        });
    }
    Ok(())
}

pub fn check_time(cert: &X509) -> Result<(), SmimeError> {
    let now = Asn1Time::days_from_now(0)?;
    if cert.not_after() < now {
        return Err(SmimeError::Expired {
            subject: subject_string(cert),
        });
    }
    if cert.not_before() > now {
        return Err(SmimeError::NotYetValid {
            subject: subject_string(cert),
        });
    }
    Ok(())
}

pub fn is_time_valid(cert: &X509) -> bool {
    check_time(cert).is_ok()
}

/// Whether key usage permits `usage`. No extension means unrestricted (RFC 5280).
pub fn usage_allows(cert: &X509, usage: Usage) -> bool {
    match cert.key_usage() {
        None => true,
        Some(ku) => match usage {
            Usage::Sign => ku.intersects(X509KeyUsage::DIGITAL_SIGNATURE),
            Usage::Encrypt => ku.intersects(X509KeyUsage::KEY_ENCIPHERMENT),
        },
    }
}

/// Refuses a certificate whose extended key usage, when present, allows neither
/// emailProtection nor anyExtendedKeyUsage (RFC 5280 §4.2.1.12): a TLS server or client
/// certificate from the same CA is not an S/MIME certificate. An unreadable extension counts
/// as not allowing it.
pub fn check_email_eku(cert: &X509) -> Result<(), SmimeError> {
    let purposes = der::extended_key_usage(&cert.to_der()?);
    let allowed = match purposes {
        Ok(None) => true,
        Ok(Some(list)) => list
            .iter()
            .any(|p| p == oid::EMAIL_PROTECTION || p == oid::ANY_EXT_KEY_USAGE),
        Err(_) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(SmimeError::ExtendedKeyUsage {
            subject: subject_string(cert),
        })
    }
}

/// rfc822Name SANs, lower-cased.
pub fn san_emails(cert: &X509) -> Vec<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(|e| e.trim().to_ascii_lowercase()))
                .collect()
        })
        .unwrap_or_default()
}

/// dNSName SANs, lower-cased.
pub fn san_dns(cert: &X509) -> Vec<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(|d| d.trim().to_ascii_lowercase()))
                .collect()
        })
        .unwrap_or_default()
}

/// EMAILADDRESS attributes of the subject DN, lower-cased.
pub fn subject_emails(cert: &X509) -> Vec<String> {
    cert.subject_name()
        .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
        .filter_map(|e| {
            e.data()
                .to_string()
                .ok()
                .map(|s| s.trim().to_ascii_lowercase())
        })
        .collect()
}

/// How `cert` is bound to `address`, if at all. Address binding wins over domain binding, and
/// the legacy subject e-mail is consulted only when the certificate has neither kind of SAN.
pub fn binding(cert: &X509, address: &str) -> Option<Binding> {
    let address = address.trim().to_ascii_lowercase();
    let emails = san_emails(cert);
    if emails.contains(&address) {
        return Some(Binding::Address);
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d)?;
    let dns = san_dns(cert);
    if dns.iter().any(|d| d == domain) {
        return Some(Binding::Domain);
    }
    if emails.is_empty() && dns.is_empty() && subject_emails(cert).contains(&address) {
        return Some(Binding::LegacySubjectEmail);
    }
    None
}

/// The Direct domain a certificate speaks for.
pub fn cert_domain(cert: &X509) -> Option<String> {
    san_emails(cert)
        .into_iter()
        .chain(subject_emails(cert))
        .find_map(|e| e.rsplit_once('@').map(|(_, d)| d.to_string()))
        .or_else(|| san_dns(cert).into_iter().next())
}

/// The serial number as `openssl x509 -serial` shows it (upper-case hex).
pub fn serial_hex(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A one-line subject like `CN=x, O=y` for logs, errors and `inspect --json`.
/// A certificate's notAfter as unix seconds (0 if openssl cannot compare the times).
pub fn not_after_unix(cert: &openssl::x509::X509Ref) -> i64 {
    openssl::asn1::Asn1Time::from_unix(0)
        .ok()
        .and_then(|epoch| epoch.diff(cert.not_after()).ok())
        .map_or(0, |d| i64::from(d.days) * 86400 + i64::from(d.secs))
}

pub fn subject_string(cert: &X509) -> String {
    name_string(cert.subject_name())
}

pub fn name_string(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The regular files in `dir`, sorted so loading order (and which duplicate wins) is stable.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, SmimeError> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|source| SmimeError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>, SmimeError> {
    fs::read(path).map_err(|source| SmimeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, e: openssl::error::ErrorStack) -> SmimeError {
    SmimeError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(unix)]
fn check_key_permissions(path: &Path) -> Result<(), SmimeError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|source| SmimeError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(SmimeError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_path: &Path) -> Result<(), SmimeError> {
    Ok(())
}
