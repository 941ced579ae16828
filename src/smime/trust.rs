//! Trust anchors per local domain, trust bundles, chain validation and CRL checking.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use openssl::asn1::Asn1Time;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{CrlStatus, X509Crl, X509StoreContext, X509};
use serde::Serialize;

use super::certs::subject_string;
use super::cms;
use super::der::oid;
use super::error::SmimeError;
use super::mime;
use super::net::{self, CrlLookup, CrlProblem, IssuerLookup, NetTrust, Wanted};

/// Which way a message travels relative to the local domain. The AS keeps the two anchor sets
/// apart: a domain may accept mail from a community it does not send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// What to do about certificate revocation. Local CRL files are consulted, and, when the agent
/// has a network cache ([`super::net::NetTrust`]), the CRLs named in each certificate's CRL
/// Distribution Points. A CRL counts only if it is signed by the issuer of the certificate it is
/// applied to.
///
/// - `Require`: every certificate in the chain below the anchor must be covered by a current
///   (nextUpdate not passed) CRL from its issuer and must not be listed. No such CRL means the
///   certificate is refused with [`SmimeError::RevocationUnavailable`]. This fails closed.
/// - `BestEffort`: a certificate listed on any CRL from its issuer is refused, even if that CRL
///   is stale; when no CRL is available the certificate is accepted. This matches the reference
///   implementation, which fails open when it cannot fetch a CRL.
/// - `Off`: revocation is not checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationPolicy {
    Require,
    #[default]
    BestEffort,
    Off,
}

#[derive(Debug, Default)]
struct DomainAnchors {
    incoming: Vec<X509>,
    outgoing: Vec<X509>,
}

/// The outcome of a successful chain validation.
#[derive(Debug, Clone, Serialize)]
pub struct ChainVerdict {
    /// Subject of the anchor the chain ended at.
    pub anchor: String,
    /// Subjects from the end-entity up to the anchor.
    pub chain: Vec<String>,
}

/// Anchors per local domain and direction, plus the CRLs used for revocation checks.
#[derive(Default)]
pub struct TrustStore {
    domains: HashMap<String, DomainAnchors>,
    crls: Vec<X509Crl>,
    revocation: RevocationPolicy,
    parsed: CertCache,
    /// CRLs from distribution points and issuers from AIA; `None` = local material only.
    net: Option<Arc<NetTrust>>,
    /// Anchors from trust bundles fetched by URL, replaced whole on each good refresh while
    /// messages are being validated (see [`super::bundles`]).
    remote: std::sync::RwLock<Vec<RemoteBundle>>,
    /// Bumped by every change to anchors or CRLs, so no verdict outlives what it was based on.
    generation: AtomicU64,
    verdicts: VerdictCache,
}

/// Chain verdicts already reached, by signer certificate and chain material. A partner's
/// messages come with the same certificates, and building and checking the chain cost more
/// than the message's own signature. Only for validation from local material (no network
/// CRLs, whose freshness changes without the store hearing of it); an entry is dropped when
/// anchors or CRLs change, when a certificate in the chain or a CRL expires, and after
/// `VERDICT_TTL_SECS` whatever happens. Refusals are not cached: they carry their own reasons
/// and are rare.
#[derive(Default)]
struct VerdictCache(Mutex<HashMap<[u8; 32], CachedVerdict>>);

struct CachedVerdict {
    verdict: ChainVerdict,
    generation: u64,
    /// Unix seconds.
    until: i64,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

const VERDICT_CACHE_ENTRIES: usize = 256;
const VERDICT_TTL_SECS: i64 = 60;

impl VerdictCache {
    fn get(&self, key: &[u8; 32], generation: u64) -> Option<ChainVerdict> {
        let now = unix_now();
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|c| c.generation == generation && now < c.until)
            .map(|c| c.verdict.clone())
    }

    fn put(&self, key: [u8; 32], entry: CachedVerdict) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= VERDICT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, entry);
    }
}

/// The cache key of one validation: everything it depends on besides the store itself.
fn verdict_key(
    domain: &str,
    direction: Direction,
    cert: &X509,
    untrusted: &[X509],
) -> Result<[u8; 32], SmimeError> {
    let mut h = Hasher::new(MessageDigest::sha256())?;
    h.update(domain.to_ascii_lowercase().as_bytes())?;
    h.update(&[0, direction as u8])?;
    for c in std::iter::once(cert).chain(untrusted) {
        let der = c.to_der()?;
        h.update(&(der.len() as u64).to_be_bytes())?;
        h.update(&der)?;
    }
    let digest = h.finish()?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    Ok(key)
}

/// The anchors of one fetched trust bundle.
#[derive(Clone)]
struct RemoteBundle {
    url: String,
    domain: String,
    directions: Vec<Direction>,
    certs: Vec<X509>,
    fetched_at: std::time::SystemTime,
}

/// A fetched bundle as metrics and logs show it.
#[derive(Debug, Clone)]
pub struct BundleStatus {
    pub url: String,
    pub domain: String,
    pub fetched_at: std::time::SystemTime,
    /// Subject and notAfter (unix seconds) of each anchor.
    pub anchors: Vec<(String, i64)>,
}

/// Certificates already parsed from incoming signatures, by their exact DER. Partners send the
/// same signer and intermediate certificates with nearly every message, and decoding them
/// (OpenSSL 3.0's public-key decoder) cost more than the signature check itself. Bounded: at
/// most `CERT_CACHE_ENTRIES` certificates of up to `CERT_CACHE_MAX_DER` bytes, emptied when full.
#[derive(Default)]
struct CertCache(Mutex<HashMap<Vec<u8>, X509>>);

const CERT_CACHE_ENTRIES: usize = 256;
const CERT_CACHE_MAX_DER: usize = 8 * 1024;

impl CertCache {
    fn parse(&self, der: &[u8]) -> Result<X509, SmimeError> {
        if der.len() > CERT_CACHE_MAX_DER {
            return read_message_cert(der);
        }
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cert) = map.get(der) {
            return Ok(cert.clone());
        }
        let cert = read_message_cert(der)?;
        if map.len() >= CERT_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(der.to_vec(), cert.clone());
        Ok(cert)
    }
}

/// A certificate carried in a message; one OpenSSL cannot read is malformed input, said so in
/// words rather than with OpenSSL's error stack.
fn read_message_cert(der: &[u8]) -> Result<X509, SmimeError> {
    X509::from_der(der).map_err(|_| {
        SmimeError::MalformedCms("a certificate carried in the signature cannot be read".into())
    })
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("domains", &self.domains.keys().collect::<Vec<_>>())
            .field("crls", &self.crls.len())
            .field("revocation", &self.revocation)
            .finish()
    }
}

impl TrustStore {
    pub fn new(revocation: RevocationPolicy) -> Self {
        TrustStore {
            revocation,
            ..TrustStore::default()
        }
    }

    /// A certificate from a message, parsed once per distinct DER (see `CertCache`).
    pub(crate) fn parse_cert(&self, der: &[u8]) -> Result<X509, SmimeError> {
        self.parsed.parse(der)
    }

    pub fn revocation(&self) -> RevocationPolicy {
        self.revocation
    }

    /// How many CRLs are loaded, so tools can say what a revocation check could consult.
    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }

    /// Lets validation use CRLs from distribution points and issuers from AIA caIssuers.
    pub fn set_network(&mut self, net: Arc<NetTrust>) {
        self.net = Some(net);
        self.changed();
    }

    /// Invalidates every cached chain verdict.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn network(&self) -> Option<&Arc<NetTrust>> {
        self.net.as_ref()
    }

    pub fn add_anchor(&mut self, domain: &str, direction: Direction, cert: X509) {
        let entry = self.domains.entry(domain.to_ascii_lowercase()).or_default();
        match direction {
            Direction::Incoming => entry.incoming.push(cert),
            Direction::Outgoing => entry.outgoing.push(cert),
        }
        self.changed();
    }

    /// The anchors of `domain` for `direction`: configured files and fetched bundles.
    pub fn anchors(&self, domain: &str, direction: Direction) -> Vec<X509> {
        let domain = domain.to_ascii_lowercase();
        let mut out = match self.domains.get(&domain) {
            Some(d) => match direction {
                Direction::Incoming => d.incoming.clone(),
                Direction::Outgoing => d.outgoing.clone(),
            },
            None => Vec::new(),
        };
        let remote = self.remote.read().unwrap_or_else(PoisonError::into_inner);
        for b in remote
            .iter()
            .filter(|b| b.domain == domain && b.directions.contains(&direction))
        {
            out.extend(b.certs.iter().cloned());
        }
        out
    }

    /// Replaces the anchors that came from the bundle at `url` in one step: a validation
    /// running concurrently sees the old set or the new one, never a mix or none.
    pub fn swap_bundle(
        &self,
        url: &str,
        domain: &str,
        directions: &[Direction],
        certs: Vec<X509>,
        fetched_at: std::time::SystemTime,
    ) {
        let entry = RemoteBundle {
            url: url.to_owned(),
            domain: domain.to_ascii_lowercase(),
            directions: directions.to_vec(),
            certs,
            fetched_at,
        };
        let mut remote = self.remote.write().unwrap_or_else(PoisonError::into_inner);
        match remote.iter_mut().find(|b| b.url == url) {
            Some(b) => *b = entry,
            None => remote.push(entry),
        }
        self.changed();
    }

    /// Every fetched bundle, for metrics.
    pub fn bundle_status(&self) -> Vec<BundleStatus> {
        let remote = self.remote.read().unwrap_or_else(PoisonError::into_inner);
        remote
            .iter()
            .map(|b| BundleStatus {
                url: b.url.clone(),
                domain: b.domain.clone(),
                fetched_at: b.fetched_at,
                anchors: b
                    .certs
                    .iter()
                    .map(|c| (subject_string(c), super::certs::not_after_unix(c)))
                    .collect(),
            })
            .collect()
    }

    /// Loads anchors from a PEM file (any number of certificates), a DER certificate, or a
    /// `.p7b` bundle (unsigned; see [`TrustStore::load_bundle`] for signed ones). Returns how
    /// many anchors were added.
    pub fn load_anchor_file(
        &mut self,
        domain: &str,
        direction: Direction,
        path: &Path,
    ) -> Result<usize, SmimeError> {
        let data = read(path)?;
        let certs = if memchr::memmem::find(&data, b"-----BEGIN CERTIFICATE-----").is_some() {
            X509::stack_from_pem(&data).map_err(|e| bad(path, e.to_string()))?
        } else if memchr::memmem::find(&data, b"-----BEGIN PKCS7-----").is_some()
            || memchr::memmem::find(&data, b"-----BEGIN CMS-----").is_some()
        {
            bundle_certs(&data, path, None)?
        } else {
            match X509::from_der(&data) {
                Ok(c) => vec![c],
                Err(_) => bundle_certs(&data, path, None)?,
            }
        };
        let n = certs.len();
        for c in certs {
            self.add_anchor(domain, direction, c);
        }
        Ok(n)
    }

    /// Loads a PKCS#7 trust bundle, DER or PEM, either certs-only or CMS-signed around a
    /// certs-only bundle (the DirectTrust form). When `signer` is given, a signed bundle must be
    /// signed by exactly that certificate's key and an unsigned bundle is refused; without it,
    /// a signed bundle is only checked for internal consistency, so the file's origin is what
    /// is trusted.
    pub fn load_bundle(
        &mut self,
        domain: &str,
        direction: Direction,
        path: &Path,
        signer: Option<&X509>,
    ) -> Result<usize, SmimeError> {
        let data = read(path)?;
        let certs = bundle_certs(&data, path, Some(signer))?;
        let n = certs.len();
        for c in certs {
            self.add_anchor(domain, direction, c);
        }
        Ok(n)
    }

    pub fn add_crl(&mut self, crl: X509Crl) {
        self.crls.push(crl);
        self.changed();
    }

    /// Loads a CRL file, PEM or DER.
    pub fn load_crl_file(&mut self, path: &Path) -> Result<(), SmimeError> {
        let data = read(path)?;
        let crl = if memchr::memmem::find(&data, b"-----BEGIN X509 CRL-----").is_some() {
            X509Crl::from_pem(&data)
        } else {
            X509Crl::from_der(&data)
        }
        .map_err(|e| bad(path, e.to_string()))?;
        self.add_crl(crl);
        Ok(())
    }

    /// Validates `cert` against the anchors of `domain` for `direction`, using `untrusted`
    /// (typically the certificates carried in the signature) only as chain-building material.
    ///
    /// Any anchor may be an intermediate: Direct communities commonly distribute their
    /// issuing CA, not the root, so partial chains ending at an anchor are accepted.
    pub fn verify_chain(
        &self,
        domain: &str,
        direction: Direction,
        cert: &X509,
        untrusted: &[X509],
    ) -> Result<ChainVerdict, SmimeError> {
        // Read before validating: a change made meanwhile leaves this verdict unused.
        let generation = self.generation.load(Ordering::SeqCst);
        let key = match self.net {
            None => Some(verdict_key(domain, direction, cert, untrusted)?),
            Some(_) => None,
        };
        if let Some(verdict) = key.as_ref().and_then(|k| self.verdicts.get(k, generation)) {
            return Ok(verdict);
        }
        let anchors = self.anchors(domain, direction);
        if anchors.is_empty() {
            return Err(SmimeError::NoTrustAnchors {
                domain: domain.to_string(),
            });
        }
        let mut builder = X509StoreBuilder::new()?;
        for a in anchors {
            builder.add_cert(a.clone())?;
        }
        builder.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        let store = builder.build();
        // Issuers fetched through AIA join the chain-building material, never the anchors:
        // a chain through one still has to end at a configured anchor (D18, ETT BAD_AIA).
        let mut pool = untrusted.to_vec();
        if let Some(net) = &self.net {
            net.add_known_issuers(cert, &mut pool);
        }
        let mut stack = Stack::new()?;
        for c in &pool {
            stack.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        let outcome = ctx.init(&store, cert, &stack, |c| {
            if c.verify_cert()? {
                let chain: Vec<X509> = c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok(Ok(chain))
            } else {
                let failing = c
                    .current_cert()
                    .map(|x| x.to_owned())
                    .unwrap_or_else(|| cert.clone());
                Ok(Err((c.error(), failing)))
            }
        })?;
        let chain = match outcome {
            Ok(chain) => chain,
            // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT(_LOCALLY): the chain stops short of an anchor.
            Err((err, failing)) if matches!(err.as_raw(), 2 | 20) && self.net.is_some() => {
                return Err(self.missing_issuer(domain, cert, &failing, err));
            }
            Err((err, failing)) => {
                // X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED and
                // X509_V_ERR_CA_MD_TOO_WEAK (OpenSSL's own security level, e.g. for MD5).
                return Err(match err.as_raw() {
                    9 => SmimeError::NotYetValid {
                        subject: subject_string(&failing),
                    },
                    10 => SmimeError::Expired {
                        subject: subject_string(&failing),
                    },
                    68 => weak_signature(&failing).unwrap_or_else(|| SmimeError::Untrusted {
                        subject: subject_string(cert),
                        domain: domain.to_string(),
                        reason: err.error_string().to_string(),
                    }),
                    _ => SmimeError::Untrusted {
                        subject: subject_string(cert),
                        domain: domain.to_string(),
                        reason: plain_reason(err),
                    },
                });
            }
        };
        // The anchor's own signature proves nothing (it is trusted by configuration); every
        // signature below it is what binds the chain, and an MD5 or SHA-1 one can be forged
        // just like an MD5 or SHA-1 message digest, which is refused.
        if let Some(weak) = chain
            .split_last()
            .and_then(|(_, below)| below.iter().find_map(weak_signature))
        {
            return Err(weak);
        }
        self.check_revocation(&chain)?;
        let verdict = ChainVerdict {
            anchor: chain.last().map(subject_string).unwrap_or_default(),
            chain: chain.iter().map(subject_string).collect(),
        };
        if let Some(key) = key {
            let until = self.verdict_expiry(&chain)?;
            self.verdicts.put(
                key,
                CachedVerdict {
                    verdict: verdict.clone(),
                    generation,
                    until,
                },
            );
        }
        Ok(verdict)
    }

    /// When a verdict on `chain` stops holding by itself: the first notAfter in the chain or
    /// nextUpdate among the CRLs, or the cache's time to live if that comes first.
    fn verdict_expiry(&self, chain: &[X509]) -> Result<i64, SmimeError> {
        let epoch = Asn1Time::from_unix(0)?;
        let mut until = unix_now() + VERDICT_TTL_SECS;
        let limits = chain
            .iter()
            .map(|c| c.not_after())
            .chain(self.crls.iter().filter_map(|crl| crl.next_update()));
        for limit in limits {
            let d = epoch.diff(limit)?;
            until = until.min(i64::from(d.days) * 86400 + i64::from(d.secs));
        }
        Ok(until)
    }

    /// The chain stopped at `failing`, whose issuer is neither an anchor nor at hand: ask for
    /// its AIA caIssuers if they were never tried, else say why they did not help.
    fn missing_issuer(
        &self,
        domain: &str,
        cert: &X509,
        failing: &X509,
        err: openssl::x509::X509VerifyResult,
    ) -> SmimeError {
        let urls = net::ca_issuer_urls(failing);
        let mut wanted = Vec::new();
        let mut failures = Vec::new();
        if let Some(net) = &self.net {
            for url in urls {
                match net.issuer_lookup(&url) {
                    IssuerLookup::NeedFetch => wanted.push(url),
                    IssuerLookup::Failed(reason) => failures.push(reason),
                    IssuerLookup::Found(_) => {}
                }
            }
        }
        if !wanted.is_empty() {
            return SmimeError::NeedFetch(Wanted {
                crls: Vec::new(),
                issuers: wanted,
            });
        }
        let reason = match failures.first() {
            Some(f) => format!(
                "{}; the issuer named in its Authority Information Access could not be used ({f})",
                plain_reason(err)
            ),
            None => plain_reason(err),
        };
        SmimeError::Untrusted {
            subject: subject_string(cert),
            domain: domain.to_string(),
            reason,
        }
    }

    /// CRLs from the distribution points of the certificates below the anchor. Asks for every
    /// URL never tried at once, so one round of fetching serves the whole chain.
    fn network_crls(&self, chain: &[X509]) -> Result<Vec<Vec<(String, CrlLookup)>>, SmimeError> {
        let Some(net) = &self.net else {
            return Ok((1..chain.len()).map(|_| Vec::new()).collect());
        };
        let mut wanted = Vec::new();
        let mut per_cert = Vec::new();
        for cert in chain.iter().take(chain.len().saturating_sub(1)) {
            let mut found = Vec::new();
            for url in net::crl_urls(cert) {
                match net.crl_lookup(&url) {
                    CrlLookup::NeedFetch => wanted.push(url),
                    other => found.push((url, other)),
                }
            }
            per_cert.push(found);
        }
        if wanted.is_empty() {
            Ok(per_cert)
        } else {
            Err(SmimeError::NeedFetch(Wanted {
                crls: wanted,
                issuers: Vec::new(),
            }))
        }
    }

    fn check_revocation(&self, chain: &[X509]) -> Result<(), SmimeError> {
        if self.revocation == RevocationPolicy::Off {
            return Ok(());
        }
        let fetched = self.network_crls(chain)?;
        let now = Asn1Time::days_from_now(0)?;
        for (pair, from_network) in chain.windows(2).zip(fetched) {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let issuer_key = issuer.public_key()?;
            let mut covered = false;
            // Why no current CRL covers `cert`, when the network said something specific.
            let mut problem: Option<SmimeError> = None;
            let subject = || subject_string(cert);
            for (url, lookup) in from_network {
                let crl = match lookup {
                    CrlLookup::Current(crl) => crl,
                    CrlLookup::NeedFetch => continue,
                    CrlLookup::Unavailable { stale, problem: p } => {
                        problem.get_or_insert(match p {
                            CrlProblem::Fetch(e) => SmimeError::CrlUnavailable {
                                subject: subject(),
                                reason: e.to_string(),
                            },
                            CrlProblem::NotACrl => SmimeError::CrlUnreadable {
                                subject: subject(),
                                url: url.clone(),
                            },
                            CrlProblem::Expired => SmimeError::CrlExpired {
                                subject: subject(),
                                url: url.clone(),
                            },
                        });
                        // A stale copy still proves a revocation.
                        match stale {
                            Some(crl) => crl,
                            None => continue,
                        }
                    }
                };
                let same_issuer = crl
                    .issuer_name()
                    .try_cmp(issuer.subject_name())
                    .map(|o| o.is_eq())
                    .unwrap_or(false);
                if !same_issuer || !crl.verify(&issuer_key).unwrap_or(false) {
                    problem.get_or_insert(SmimeError::CrlNotVerified {
                        subject: subject(),
                        url,
                    });
                    continue;
                }
                if let CrlStatus::Revoked(_) = crl.get_by_cert(cert) {
                    return Err(SmimeError::Revoked { subject: subject() });
                }
                match crl.next_update() {
                    Some(next) if next < now => {
                        problem.get_or_insert(SmimeError::CrlExpired {
                            subject: subject(),
                            url,
                        });
                    }
                    _ => covered = true,
                }
            }
            for crl in &self.crls {
                let same_issuer = crl
                    .issuer_name()
                    .try_cmp(issuer.subject_name())
                    .map(|o| o.is_eq())
                    .unwrap_or(false);
                if !same_issuer || !crl.verify(&issuer_key).unwrap_or(false) {
                    continue;
                }
                if let CrlStatus::Revoked(_) = crl.get_by_cert(cert) {
                    return Err(SmimeError::Revoked {
                        subject: subject_string(cert),
                    });
                }
                let current = match crl.next_update() {
                    Some(next) => next >= now,
                    None => true,
                };
                covered |= current;
            }
            if covered {
                continue;
            }
            match (self.revocation, problem) {
                (RevocationPolicy::Require, Some(p)) => return Err(p),
                (RevocationPolicy::Require, None) => {
                    return Err(SmimeError::RevocationUnavailable { subject: subject() })
                }
                // The reference implementation's choice, kept visible: an administrator must
                // be able to see that revocation was not checked.
                (_, Some(p)) => tracing::warn!(
                    error = %p,
                    "revocation not checked; accepted under the best-effort policy"
                ),
                (_, None) => {}
            }
        }
        Ok(())
    }
}

/// Why a chain did not validate, in words an administrator reads in `directd inspect` and in
/// the refusal: OpenSSL's own strings for the common cases are terse or misleading ("unable to
/// get local issuer certificate" means "no chain to an anchor").
fn plain_reason(err: openssl::x509::X509VerifyResult) -> String {
    match err.as_raw() {
        2 | 20 | 21 => "it does not chain to any of these anchors".into(),
        18 | 19 => "it chains to a self-signed certificate that is not one of these anchors".into(),
        7 => "a certificate signature in its chain does not verify".into(),
        24 => "a certificate in its chain that issued another is not a CA".into(),
        25 => "its chain is longer than an issuing CA allows".into(),
        _ => err.error_string().to_string(),
    }
}

/// [`SmimeError::WeakCertSignature`] when `cert` is signed with MD5, SHA-1 or older digests.
fn weak_signature(cert: &X509) -> Option<SmimeError> {
    let alg = cert.signature_algorithm().object().nid();
    let digest = alg.signature_algorithms()?.digest;
    if ![Nid::MD2, Nid::MD4, Nid::MD5, Nid::SHA1].contains(&digest) {
        return None;
    }
    Some(SmimeError::WeakCertSignature {
        subject: subject_string(cert),
        alg: alg.long_name().unwrap_or("?").to_string(),
    })
}

/// Extracts the certificates of a bundle. `signer` is `None` for "whatever form", `Some(None)`
/// for a bundle load with no configured signer, `Some(Some(cert))` when the signature must be
/// by `cert`.
pub(crate) fn bundle_certs(
    data: &[u8],
    path: &Path,
    signer: Option<Option<&X509>>,
) -> Result<Vec<X509>, SmimeError> {
    let der = pem_or_der(data).ok_or_else(|| bad(path, "not PEM or DER PKCS#7".into()))?;
    let (ty, content) = cms::content_info(&der)?;
    if ty != oid::SIGNED_DATA {
        return Err(bad(path, "PKCS#7 bundle is not SignedData".into()));
    }
    let info = cms::signed_data(&content)?;
    if !info.has_content || info.signers.is_empty() {
        if let Some(Some(_)) = signer {
            return Err(SmimeError::BundleUnsigned {
                path: path.to_path_buf(),
            });
        }
        return info.parse_certs();
    }
    let mut cms_info = CmsContentInfo::from_der(&der)?;
    let mut out = Vec::new();
    let result = match signer.flatten() {
        Some(expected) => {
            let mut certs = Stack::new()?;
            certs.push(expected.clone())?;
            cms_info.verify(
                Some(&certs),
                None,
                None,
                Some(&mut out),
                CMSOptions::NOINTERN | CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
            )
        }
        None => cms_info.verify(
            None,
            None,
            None,
            Some(&mut out),
            CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
        ),
    };
    result.map_err(|source| SmimeError::BundleSignature {
        path: path.to_path_buf(),
        source,
    })?;
    // The signed content is itself a certs-only bundle; it must not be signed again.
    bundle_certs_inner(&out, path)
}

fn bundle_certs_inner(data: &[u8], path: &Path) -> Result<Vec<X509>, SmimeError> {
    let der =
        pem_or_der(data).ok_or_else(|| bad(path, "signed bundle content unreadable".into()))?;
    let (ty, content) = cms::content_info(&der)?;
    if ty != oid::SIGNED_DATA {
        return Err(bad(path, "signed bundle content is not PKCS#7".into()));
    }
    cms::signed_data(&content)?.parse_certs()
}

/// DER bytes of a PEM `PKCS7`/`CMS` block, or the input itself if it is already DER.
pub(crate) fn pem_or_der(data: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok();
    if let Some(text) = text.filter(|t| t.contains("-----BEGIN ")) {
        let start = text.find("-----BEGIN ")?;
        let body_start = start + text[start..].find('\n')? + 1;
        let end = body_start + text[body_start..].find("-----END ")?;
        return mime::base64_decode(&text.as_bytes()[body_start..end]);
    }
    Some(data.to_vec())
}

fn read(path: &Path) -> Result<Vec<u8>, SmimeError> {
    fs::read(path).map_err(|source| SmimeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, reason: String) -> SmimeError {
    SmimeError::BadFile {
        path: PathBuf::from(path),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};

    fn self_signed(cn: &str) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn a_cached_verdict_does_not_outlive_the_anchors_it_rests_on() {
        let cert = X509::from_der(&self_signed("anchor")).unwrap();
        let store = TrustStore::new(RevocationPolicy::Off);
        let url = "https://bundles.example/b.p7b";
        let now = std::time::SystemTime::now();
        let dirs = [Direction::Incoming];
        store.swap_bundle(url, "b.example", &dirs, vec![cert.clone()], now);
        // The second validation is answered from the cache.
        for _ in 0..2 {
            let v = store
                .verify_chain("b.example", Direction::Incoming, &cert, &[])
                .unwrap();
            assert_eq!(v.anchor, "CN=anchor");
        }
        let other = X509::from_der(&self_signed("other")).unwrap();
        store.swap_bundle(url, "b.example", &dirs, vec![other], now);
        assert!(store
            .verify_chain("b.example", Direction::Incoming, &cert, &[])
            .is_err());
    }

    fn cached(cache: &CertCache) -> usize {
        cache.0.lock().unwrap().len()
    }

    #[test]
    fn cert_cache_parses_each_der_once_and_stays_bounded() {
        let cache = CertCache::default();
        let der = self_signed("repeat");
        let first = cache.parse(&der).unwrap();
        let again = cache.parse(&der).unwrap();
        assert_eq!(first.to_der().unwrap(), der);
        assert_eq!(again.to_der().unwrap(), der);
        assert_eq!(cached(&cache), 1);

        assert!(cache.parse(b"\x30\x03\x02\x01\x00").is_err());
        assert_eq!(cached(&cache), 1, "unparseable input is not cached");

        for i in 0..CERT_CACHE_ENTRIES {
            cache.parse(&self_signed(&format!("n{i}"))).unwrap();
        }
        assert!(cached(&cache) <= CERT_CACHE_ENTRIES);
        assert_eq!(
            cache.parse(&der).unwrap().to_der().unwrap(),
            der,
            "a certificate evicted by the bound parses again"
        );
    }
}
