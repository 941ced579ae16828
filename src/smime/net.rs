//! Revocation lists and issuer certificates fetched over HTTP, as the certificates themselves
//! point to them: CRL Distribution Points (RFC 5280 §4.2.1.13) and Authority Information
//! Access caIssuers (§4.2.2.1).
//!
//! Chain validation ([`super::TrustStore::verify_chain`]) is synchronous and never waits on the
//! network. It consults this cache; when a certificate names a CRL or an issuer that was never
//! tried, validation stops with [`super::SmimeError::NeedFetch`] listing the URLs, the agent
//! fetches them here and validates again (see [`super::Agent::open`]). Every URL is tried at most
//! once per `retry_after`, so a dead server costs one timeout, not one per message, and a loop
//! of AIA pointers ends when its URLs have all been tried.
//!
//! Nothing fetched is trusted: a CRL counts only if it verifies with the key of the issuer it
//! claims to cover, an issuer certificate is only chain-building material that must itself chain
//! to a configured anchor.
//!
//! CRLs that parse are kept on disk under `<cache_dir>/crl/` by a hash of their URL, so a
//! restarted daemon uses them until their nextUpdate instead of refetching everything.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::x509::{X509Crl, X509};

use super::fetch::{FetchError, HttpFetcher};
use super::{cms, der::oid, trust};

/// Entries kept in memory per kind; when full, the map is emptied (the disk copies remain).
const MAX_ENTRIES: usize = 1024;
/// CRL files kept on disk; the oldest go first.
const MAX_DISK_FILES: usize = 1024;
/// URLs of one kind taken from one certificate; more are ignored.
const MAX_URLS_PER_CERT: usize = 4;
/// Certificates taken from one AIA response (a `.p7c` may hold several).
const MAX_CERTS_PER_ISSUER_URL: usize = 8;
/// Issuer certificates added to one chain build through AIA.
const MAX_AIA_CERTS: usize = 16;
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Why a CRL named by a certificate could not be used.
#[derive(Debug, Clone)]
pub(crate) enum CrlProblem {
    Fetch(FetchError),
    /// The body is neither a DER nor a PEM CRL.
    NotACrl,
    /// The newest copy had passed its nextUpdate when it was fetched.
    Expired,
}

/// URLs that validation wants fetched before it can decide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub crls: Vec<String>,
    pub issuers: Vec<String>,
}

pub(crate) enum CrlLookup {
    Current(Arc<X509Crl>),
    NeedFetch,
    /// Tried recently and unusable; `stale` is the last copy, still good for "revoked".
    Unavailable {
        stale: Option<Arc<X509Crl>>,
        problem: CrlProblem,
    },
}

pub(crate) enum IssuerLookup {
    Found(Vec<X509>),
    NeedFetch,
    Failed(String),
}

struct CrlEntry {
    crl: Option<Arc<X509Crl>>,
    failure: Option<(CrlProblem, Instant)>,
}

struct IssuerEntry {
    certs: Vec<X509>,
    failure: Option<(String, Instant)>,
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// HTTP requests made (successful or not).
    pub fetches: u64,
    /// CRLs read back from the disk cache.
    pub disk_loads: u64,
}

pub struct NetTrust {
    fetcher: HttpFetcher,
    dir: Option<PathBuf>,
    retry_after: Duration,
    crls: Mutex<HashMap<String, CrlEntry>>,
    issuers: Mutex<HashMap<String, IssuerEntry>>,
    fetches: AtomicU64,
    disk_loads: AtomicU64,
}

impl std::fmt::Debug for NetTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetTrust")
            .field("dir", &self.dir)
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

impl NetTrust {
    /// `cache_dir` is created when the first CRL is stored, not before, so loading the agent
    /// (e.g. for `directd inspect`) leaves no trace; `None` keeps everything in memory.
    pub fn new(fetcher: HttpFetcher, cache_dir: Option<PathBuf>) -> Self {
        NetTrust {
            fetcher,
            dir: cache_dir,
            retry_after: DEFAULT_RETRY_AFTER,
            crls: Mutex::default(),
            issuers: Mutex::default(),
            fetches: AtomicU64::new(0),
            disk_loads: AtomicU64::new(0),
        }
    }

    /// How long a failed URL is left alone before it is tried again.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn stats(&self) -> NetStats {
        NetStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            disk_loads: self.disk_loads.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn crl_lookup(&self, url: &str) -> CrlLookup {
        let mut map = self.crls.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(url) {
            if let Some(crl) = self.load_disk_crl(url) {
                bounded_insert(
                    &mut map,
                    url,
                    CrlEntry {
                        crl: Some(Arc::new(crl)),
                        failure: None,
                    },
                );
            }
        }
        let Some(entry) = map.get(url) else {
            return CrlLookup::NeedFetch;
        };
        if let Some(crl) = entry.crl.as_ref().filter(|c| is_current(c)) {
            return CrlLookup::Current(crl.clone());
        }
        match &entry.failure {
            Some((problem, at)) if at.elapsed() < self.retry_after => CrlLookup::Unavailable {
                stale: entry.crl.clone(),
                problem: problem.clone(),
            },
            // Stale, or failed long enough ago: try again.
            _ => CrlLookup::NeedFetch,
        }
    }

    pub(crate) fn issuer_lookup(&self, url: &str) -> IssuerLookup {
        let map = self.issuers.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(url) {
            None => IssuerLookup::NeedFetch,
            Some(e) if !e.certs.is_empty() => IssuerLookup::Found(e.certs.clone()),
            Some(IssuerEntry {
                failure: Some((reason, at)),
                ..
            }) if at.elapsed() < self.retry_after => IssuerLookup::Failed(reason.clone()),
            Some(_) => IssuerLookup::NeedFetch,
        }
    }

    /// Fetches a CRL and records the outcome, good or bad; never fails itself.
    pub async fn fetch_crl(&self, url: &str) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let outcome = match self.fetcher.get(url).await {
            Err(e) => Err(CrlProblem::Fetch(e)),
            Ok(body) => parse_crl(&body).ok_or(CrlProblem::NotACrl),
        };
        let mut map = self.crls.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = map.remove(url).and_then(|e| e.crl);
        let entry = match outcome {
            Ok(crl) => {
                let current = is_current(&crl);
                if current {
                    self.store_disk_crl(url, &crl);
                }
                CrlEntry {
                    crl: Some(Arc::new(crl)),
                    failure: (!current).then(|| (CrlProblem::Expired, Instant::now())),
                }
            }
            Err(problem) => {
                tracing::warn!(%url, problem = ?problem, "CRL could not be fetched");
                CrlEntry {
                    crl: previous,
                    failure: Some((problem, Instant::now())),
                }
            }
        };
        bounded_insert(&mut map, url, entry);
    }

    /// Fetches an issuer certificate (DER, PEM, or a certs-only PKCS#7 `.p7c`).
    pub async fn fetch_issuer(&self, url: &str) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let outcome = match self.fetcher.get(url).await {
            Err(e) => Err(e.to_string()),
            Ok(body) => parse_cert_bundle(&body)
                .ok_or_else(|| format!("{url}: not a certificate or a PKCS#7 of certificates")),
        };
        let entry = match outcome {
            Ok(certs) => IssuerEntry {
                certs,
                failure: None,
            },
            Err(reason) => {
                tracing::warn!(%url, %reason, "AIA issuer could not be fetched");
                IssuerEntry {
                    certs: Vec::new(),
                    failure: Some((reason, Instant::now())),
                }
            }
        };
        let mut map = self.issuers.lock().unwrap_or_else(PoisonError::into_inner);
        bounded_insert(&mut map, url, entry);
    }

    /// Adds to `pool` the already fetched AIA issuers of `start` and of everything in `pool`,
    /// transitively, without fetching. Bounded by [`MAX_AIA_CERTS`]; every URL is visited once,
    /// so pointer loops end.
    pub(crate) fn add_known_issuers(&self, start: &X509, pool: &mut Vec<X509>) {
        let mut seen = HashSet::new();
        let mut queue: Vec<X509> = std::iter::once(start.clone())
            .chain(pool.iter().cloned())
            .collect();
        let mut added = 0;
        while let Some(cert) = queue.pop() {
            for url in ca_issuer_urls(&cert) {
                if !seen.insert(url.clone()) {
                    continue;
                }
                if let IssuerLookup::Found(certs) = self.issuer_lookup(&url) {
                    for c in certs {
                        if added >= MAX_AIA_CERTS {
                            return;
                        }
                        added += 1;
                        pool.push(c.clone());
                        queue.push(c);
                    }
                }
            }
        }
    }

    fn disk_path(&self, url: &str) -> Option<PathBuf> {
        let hash = openssl::sha::sha256(url.as_bytes());
        let name: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .as_ref()
            .map(|d| d.join("crl").join(format!("{name}.der")))
    }

    fn load_disk_crl(&self, url: &str) -> Option<X509Crl> {
        let data = std::fs::read(self.disk_path(url)?).ok()?;
        let crl = X509Crl::from_der(&data).ok()?;
        self.disk_loads.fetch_add(1, Ordering::Relaxed);
        Some(crl)
    }

    /// Best effort: a cache that cannot be written costs a refetch after a restart, nothing more.
    fn store_disk_crl(&self, url: &str, crl: &X509Crl) {
        let (Some(path), Ok(der)) = (self.disk_path(url), crl.to_der()) else {
            return;
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        prune(dir, MAX_DISK_FILES);
        let tmp = path.with_extension("tmp");
        // Written aside and renamed, so a crash never leaves half a CRL under the real name.
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, &der))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "CRL cache not written");
        }
    }
}

fn bounded_insert<V>(map: &mut HashMap<String, V>, key: &str, value: V) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
        map.clear();
    }
    map.insert(key.to_owned(), value);
}

/// Removes the oldest files of `dir` until fewer than `max` remain.
fn prune(dir: &Path, max: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() < max {
        return;
    }
    files.sort();
    for (_, path) in files.iter().take(files.len() + 1 - max) {
        let _ = std::fs::remove_file(path);
    }
}

fn is_current(crl: &X509Crl) -> bool {
    let Ok(now) = Asn1Time::days_from_now(0) else {
        return false;
    };
    crl.next_update().is_none_or(|next| next >= now)
}

fn parse_crl(body: &[u8]) -> Option<X509Crl> {
    if memchr::memmem::find(body, b"-----BEGIN X509 CRL-----").is_some() {
        X509Crl::from_pem(body).ok()
    } else {
        X509Crl::from_der(body).ok()
    }
}

/// Certificates in `body`: one DER or PEM certificate, or a certs-only PKCS#7 (`.p7c`, and
/// what some directories keep in `userSMIMECertificate`). At most a few are taken.
pub(crate) fn parse_cert_bundle(body: &[u8]) -> Option<Vec<X509>> {
    let mut certs = if let Ok(c) = X509::from_der(body) {
        vec![c]
    } else if memchr::memmem::find(body, b"-----BEGIN CERTIFICATE-----").is_some() {
        X509::stack_from_pem(body).ok()?
    } else {
        let der = trust::pem_or_der(body)?;
        let (ty, content) = cms::content_info(&der).ok()?;
        if ty != oid::SIGNED_DATA {
            return None;
        }
        cms::signed_data(&content).ok()?.parse_certs().ok()?
    };
    certs.truncate(MAX_CERTS_PER_ISSUER_URL);
    (!certs.is_empty()).then_some(certs)
}

/// The http(s) URLs of a certificate's CRL Distribution Points. LDAP URLs, common in older
/// Direct certificates, are not fetched.
pub fn crl_urls(cert: &X509) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|dp| dp.distpoint()?.fullname())
        .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_owned)))
        .filter(|u| is_http(u))
        .take(MAX_URLS_PER_CERT)
        .collect()
}

/// The http(s) caIssuers URLs of a certificate's Authority Information Access.
pub fn ca_issuer_urls(cert: &X509) -> Vec<String> {
    let Some(access) = cert.authority_info() else {
        return Vec::new();
    };
    access
        .iter()
        .filter(|a| a.method().nid() == Nid::AD_CA_ISSUERS)
        .filter_map(|a| a.location().uri().map(str::to_owned))
        .filter(|u| is_http(u))
        .take(MAX_URLS_PER_CERT)
        .collect()
}

fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
