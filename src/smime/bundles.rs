//! Trust bundles fetched from a URL (`[[smime.bundles]]`), such as DirectTrust's: fetched when
//! the daemon starts and again every `refresh`, the CMS signature checked against the
//! configured signer certificate, the anchors swapped in whole, and the last good copy kept on
//! disk so that a restart while the URL is down still has them.
//!
//! A refresh that fails in any way (unreachable, not PKCS#7, a signature that does not verify,
//! a bundle without a single anchor) changes nothing: the anchors in force stay, and the failure
//! is logged as an error. A bundle that suddenly holds no anchors is far more likely a
//! publishing accident or an attack than a community that dissolved overnight.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use openssl::x509::X509;

use super::fetch::{FetchError, HttpFetcher};
use super::trust::{bundle_certs, BundleStatus};
use super::{Direction, SmimeError, TrustStore};

/// A failed refresh is retried this soon, or at the bundle's own interval if that is shorter.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// One `[[smime.bundles]]` entry.
#[derive(Debug, Clone)]
pub struct BundleSource {
    pub url: String,
    /// The local domain whose anchors the bundle provides.
    pub domain: String,
    pub directions: Vec<Direction>,
    pub refresh: Duration,
    /// The certificate whose key must have signed the bundle; `None` accepts an unsigned (or
    /// any internally consistent signed) bundle, so the URL's TLS is all that vouches for it.
    pub signer: Option<X509>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("trust bundle {0}")]
    Fetch(#[from] FetchError),
    #[error("trust bundle {url}: not a PKCS#7 bundle: {reason}")]
    NotPkcs7 { url: String, reason: String },
    #[error("trust bundle {url}: the signature does not verify with the configured signer")]
    BadSignature { url: String },
    #[error("trust bundle {url}: unsigned, but a signer is configured")]
    Unsigned { url: String },
    #[error("trust bundle {url}: it holds no anchors; the previous anchors stay in force")]
    NoAnchors { url: String },
    #[error("trust bundle {url}: last good copy {path}: {source}")]
    Disk {
        url: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Fetches and installs the configured bundles.
pub struct BundleUpdater {
    pub sources: Vec<BundleSource>,
    fetcher: HttpFetcher,
    /// Where last good copies live; `None` keeps none.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for BundleUpdater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleUpdater")
            .field("sources", &self.sources.len())
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl BundleUpdater {
    pub fn new(sources: Vec<BundleSource>, fetcher: HttpFetcher, dir: Option<PathBuf>) -> Self {
        BundleUpdater {
            sources,
            fetcher,
            dir,
        }
    }

    /// Installs each bundle's last good copy from disk, if there is one. Returns how many
    /// bundles were installed.
    pub fn load_last_good(&self, trust: &TrustStore) -> usize {
        let mut loaded = 0;
        for src in &self.sources {
            let Some(path) = self.copy_path(&src.url) else {
                continue;
            };
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let fetched_at = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            match parse(src, &data) {
                Ok(certs) => {
                    trust.swap_bundle(&src.url, &src.domain, &src.directions, certs, fetched_at);
                    loaded += 1;
                }
                Err(e) => tracing::error!(error = %e, "last good trust bundle copy unusable"),
            }
        }
        loaded
    }

    /// Fetches `src`, checks it, and swaps its anchors in. On any error the anchors in force
    /// are left as they are.
    pub async fn refresh(
        &self,
        trust: &TrustStore,
        src: &BundleSource,
    ) -> Result<usize, BundleError> {
        let data = self.fetcher.get(&src.url).await?;
        let certs = parse(src, &data)?;
        let n = certs.len();
        if let Some(path) = self.copy_path(&src.url) {
            write_atomically(&path, &data).map_err(|source| BundleError::Disk {
                url: src.url.clone(),
                path: path.clone(),
                source,
            })?;
        }
        trust.swap_bundle(
            &src.url,
            &src.domain,
            &src.directions,
            certs,
            SystemTime::now(),
        );
        Ok(n)
    }

    fn copy_path(&self, url: &str) -> Option<PathBuf> {
        let hash = openssl::sha::sha256(url.as_bytes());
        let name: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.as_ref().map(|d| d.join(format!("{name}.p7b")))
    }
}

fn parse(src: &BundleSource, data: &[u8]) -> Result<Vec<X509>, BundleError> {
    let url = || src.url.clone();
    let certs = bundle_certs(data, Path::new(&src.url), Some(src.signer.as_ref())).map_err(
        |e| match e {
            SmimeError::BundleSignature { .. } => BundleError::BadSignature { url: url() },
            SmimeError::BundleUnsigned { .. } => BundleError::Unsigned { url: url() },
            other => BundleError::NotPkcs7 {
                url: url(),
                reason: other.to_string(),
            },
        },
    )?;
    if certs.is_empty() {
        return Err(BundleError::NoAnchors { url: url() });
    }
    Ok(certs)
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Refreshes every bundle of `agent` now and then on its interval until `shutdown` resolves,
/// calling `report` with the bundles in force after each round (for metrics).
pub async fn run(
    agent: Arc<super::Agent>,
    shutdown: impl std::future::Future<Output = ()>,
    report: impl Fn(Vec<BundleStatus>),
) {
    let Some(updater) = agent.bundles.clone() else {
        return;
    };
    let trust = &agent.trust;
    let mut due = vec![tokio::time::Instant::now(); updater.sources.len()];
    tokio::pin!(shutdown);
    loop {
        let now = tokio::time::Instant::now();
        for (i, src) in updater.sources.iter().enumerate() {
            if due[i] > now {
                continue;
            }
            due[i] = match updater.refresh(trust, src).await {
                Ok(n) => {
                    tracing::info!(url = %src.url, anchors = n, "trust bundle refreshed");
                    now + src.refresh
                }
                Err(e) => {
                    // Loud on purpose: anchors that stop refreshing eventually expire under us.
                    tracing::error!(error = %e, "trust bundle refresh failed; keeping the last good anchors");
                    now + src.refresh.min(RETRY_AFTER_FAILURE)
                }
            };
        }
        report(trust.bundle_status());
        let next = due
            .iter()
            .min()
            .copied()
            .unwrap_or(now + RETRY_AFTER_FAILURE);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = &mut shutdown => return,
        }
    }
}
