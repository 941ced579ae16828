//! The security agent assembled from files: our identities, the trust anchors per local domain,
//! and where recipient certificates come from. `config` fills [`AgentSettings`]; the edge
//! transport and `directd inspect` use the loaded [`Agent`].

use std::path::PathBuf;
use std::sync::Arc;

use super::fetch::{FetchLimits, HttpFetcher};
use super::net::{NetTrust, Wanted};
use super::{
    CertDirectory, Direction, Envelope, KeyStore, Opened, RevocationPolicy, SealOptions,
    SmimeError, TrustStore,
};

/// Rounds of "validate, fetch what was missing, validate again" before giving up. Each round
/// fetches everything the chain asked for at once; more than one is needed only when an issuer
/// fetched through AIA itself names a CRL or a further issuer.
const MAX_FETCH_ROUNDS: usize = 4;
/// URLs fetched in one round at most; a certificate naming more gets the first ones.
const MAX_FETCHES_PER_ROUND: usize = 8;

/// CRL Distribution Point and AIA caIssuers fetching.
#[derive(Debug, Clone, Default)]
pub struct NetSettings {
    /// Where fetched CRLs are kept across restarts; `None` = memory only.
    pub cache_dir: Option<PathBuf>,
    pub limits: FetchLimits,
}

/// One configured anchor source: a PEM/DER certificate or a `.p7b` bundle for a local domain.
#[derive(Debug, Clone)]
pub struct AnchorSource {
    pub domain: String,
    /// Incoming, outgoing or both.
    pub directions: Vec<Direction>,
    pub file: PathBuf,
    /// For signed bundles: the certificate whose signature the bundle must carry.
    pub bundle_signer: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct AgentSettings {
    /// Our certificates and private keys (see [`KeyStore::load_dir`]).
    pub keys_dir: Option<PathBuf>,
    /// Certificates of the parties we send to, address- or domain-bound PEM files.
    pub recipient_certs_dir: Option<PathBuf>,
    pub anchors: Vec<AnchorSource>,
    pub crl_files: Vec<PathBuf>,
    pub revocation: RevocationPolicy,
    pub seal: SealOptions,
    /// Where to ask for DNS CERT records (RFC 4398) when the local directory has no certificate
    /// for a recipient.
    pub dns_nameserver: Option<std::net::SocketAddr>,
    /// Fetch CRLs from distribution points and missing issuers from AIA; `None` = only the
    /// configured CRL files and the certificates at hand.
    pub network: Option<NetSettings>,
    /// After the directory and DNS CERT, look in the recipient domain's LDAP servers (found
    /// through SRV records at `dns_nameserver`).
    pub ldap: bool,
    /// Trust bundles fetched by URL (`[[smime.bundles]]`).
    pub bundles: Vec<BundleSettings>,
}

/// One `[[smime.bundles]]` entry as configured.
#[derive(Debug, Clone)]
pub struct BundleSettings {
    pub url: String,
    pub domain: String,
    pub directions: Vec<Direction>,
    pub refresh: std::time::Duration,
    pub signer: Option<PathBuf>,
}

pub struct Agent {
    pub keys: KeyStore,
    pub trust: TrustStore,
    pub directory: CertDirectory,
    pub discovery: Option<super::discovery::DnsCertDiscovery>,
    pub ldap: Option<super::ldap::LdapDiscovery>,
    /// Bundles to refresh from their URLs; the daemon runs [`super::bundles::run`].
    pub bundles: Option<Arc<super::bundles::BundleUpdater>>,
    pub seal: SealOptions,
}

impl Agent {
    pub fn load(settings: &AgentSettings) -> Result<Agent, SmimeError> {
        let keys = match &settings.keys_dir {
            Some(dir) => KeyStore::load_dir(dir)?,
            None => KeyStore::new(),
        };
        let mut trust = TrustStore::new(settings.revocation);
        for a in &settings.anchors {
            let signer = match &a.bundle_signer {
                Some(p) => Some(openssl::x509::X509::from_pem(&std::fs::read(p).map_err(
                    |source| SmimeError::Io {
                        path: p.clone(),
                        source,
                    },
                )?)?),
                None => None,
            };
            let is_bundle = a
                .file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("p7b") || e.eq_ignore_ascii_case("p7c"));
            for &d in &a.directions {
                if is_bundle {
                    trust.load_bundle(&a.domain, d, &a.file, signer.as_ref())?;
                } else {
                    trust.load_anchor_file(&a.domain, d, &a.file)?;
                }
            }
        }
        for crl in &settings.crl_files {
            trust.load_crl_file(crl)?;
        }
        if let Some(net) = &settings.network {
            let fetcher = HttpFetcher::new(net.limits.clone())?;
            trust.set_network(Arc::new(NetTrust::new(fetcher, net.cache_dir.clone())));
        }
        let directory = match &settings.recipient_certs_dir {
            Some(dir) => CertDirectory::load_dir(dir)?,
            None => CertDirectory::from_certs(Vec::new()),
        };
        let discovery = settings.dns_nameserver.map(|ns| {
            super::discovery::DnsCertDiscovery::new(ns, std::time::Duration::from_secs(5))
        });
        let bundles = if settings.bundles.is_empty() {
            None
        } else {
            let net = settings.network.clone().unwrap_or_default();
            let mut sources = Vec::new();
            for b in &settings.bundles {
                let signer = match &b.signer {
                    Some(p) => Some(openssl::x509::X509::from_pem(&std::fs::read(p).map_err(
                        |source| SmimeError::Io {
                            path: p.clone(),
                            source,
                        },
                    )?)?),
                    None => None,
                };
                sources.push(super::bundles::BundleSource {
                    url: b.url.clone(),
                    domain: b.domain.clone(),
                    directions: b.directions.clone(),
                    refresh: b.refresh,
                    signer,
                });
            }
            let updater = super::bundles::BundleUpdater::new(
                sources,
                HttpFetcher::new(net.limits.clone())?,
                net.cache_dir.map(|d| d.join("bundles")),
            );
            // Until the first refresh, the last good copies are the anchors.
            updater.load_last_good(&trust);
            Some(Arc::new(updater))
        };
        let ldap = settings.dns_nameserver.filter(|_| settings.ldap).map(|ns| {
            super::ldap::LdapDiscovery::new(
                super::discovery::DnsCertDiscovery::new(ns, std::time::Duration::from_secs(5)),
                super::ldap::LdapLimits::default(),
            )
        });
        Ok(Agent {
            keys,
            trust,
            directory,
            discovery,
            ldap,
            bundles,
            seal: settings.seal.clone(),
        })
    }

    /// [`super::open`], fetching the CRLs and AIA issuers the signer's chain names when they
    /// were never tried (see [`super::net`]).
    pub async fn open(
        &self,
        raw: &[u8],
        envelope: Option<&Envelope>,
    ) -> Result<Opened, SmimeError> {
        self.with_fetching(|| super::open(raw, &self.keys, &self.trust, envelope))
            .await
    }

    /// [`Agent::open`] of a message the caller hands over and needs no more (see
    /// [`super::Decoded`]): the sealed text is not held beside its decoded form.
    pub async fn open_owned(
        &self,
        raw: Vec<u8>,
        envelope: Option<&Envelope>,
    ) -> Result<Opened, SmimeError> {
        let decoded = super::Decoded::new(raw)?;
        self.with_fetching(|| decoded.open(&self.keys, &self.trust, envelope))
            .await
    }

    /// [`TrustStore::verify_chain`], fetching what the chain names (see [`Agent::open`]).
    pub async fn verify_chain(
        &self,
        domain: &str,
        direction: Direction,
        cert: &openssl::x509::X509,
        untrusted: &[openssl::x509::X509],
    ) -> Result<super::ChainVerdict, SmimeError> {
        self.with_fetching(|| self.trust.verify_chain(domain, direction, cert, untrusted))
            .await
    }

    /// Runs `attempt` until it no longer asks for network material, fetching what it asks for.
    async fn with_fetching<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, SmimeError>,
    ) -> Result<T, SmimeError> {
        for _ in 0..MAX_FETCH_ROUNDS {
            match attempt() {
                Err(SmimeError::NeedFetch(wanted)) => self.fetch(wanted).await,
                other => return other,
            }
        }
        attempt()
    }

    async fn fetch(&self, mut wanted: Wanted) {
        let Some(net) = self.trust.network() else {
            return;
        };
        for list in [&mut wanted.crls, &mut wanted.issuers] {
            list.sort();
            list.dedup();
            list.truncate(MAX_FETCHES_PER_ROUND);
        }
        let crls = wanted.crls.iter().map(|u| net.fetch_crl(u));
        let issuers = wanted.issuers.iter().map(|u| net.fetch_issuer(u));
        futures::future::join(
            futures::future::join_all(crls),
            futures::future::join_all(issuers),
        )
        .await;
    }

    /// Every certificate `sender` may encrypt to for `address`: from the local directory, else
    /// from DNS CERT records, else from the domain's LDAP servers, in the order the Certificate
    /// Discovery IG gives. Every source only proposes certificates; each must be bound to the
    /// address (or its domain), pass the usage, strength and validity checks, and chain to the
    /// outgoing anchors of the sender's domain (see [`super::certs::select_recipient_certs`]).
    /// A source that finds only unusable certificates does not stop the search (D5-D9); when no
    /// source has a usable one, the recipient fails with the reason (D11-D13).
    pub async fn recipient_certs(
        &self,
        sender: &str,
        address: &str,
    ) -> Result<Vec<openssl::x509::X509>, SmimeError> {
        let sender_domain = sender.rsplit_once('@').map_or(sender, |(_, d)| d);
        let select = |found: &[openssl::x509::X509]| {
            super::certs::select_recipient_certs(found, address, &self.trust, sender_domain)
        };
        let mut outcome = self
            .with_fetching(|| self.directory.lookup(address, &self.trust, sender_domain))
            .await;
        if outcome.is_ok() {
            return outcome;
        }
        if let Some(dns) = &self.discovery {
            match dns.lookup(address).await {
                Ok(found) => {
                    let picked = self.with_fetching(|| select(&found)).await;
                    outcome = combine(outcome, picked, address);
                    if outcome.is_ok() {
                        return outcome;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "DNS CERT discovery failed"),
            }
        }
        if let Some(ldap) = &self.ldap {
            match ldap.lookup(address).await {
                Ok(found) => {
                    for s in &found.skipped {
                        tracing::warn!(detail = %s, "LDAP discovery skipped a result");
                    }
                    let picked = self.with_fetching(|| select(&found.certs)).await;
                    outcome = combine(outcome, picked, address);
                }
                Err(e) => tracing::warn!(error = %e, "LDAP discovery failed"),
            }
        }
        outcome
    }
}

/// The more telling of two failed selections (or the success): "certificates exist but none
/// is trusted" outranks "none usable", and counts of unusable ones add up.
fn combine(
    earlier: Result<Vec<openssl::x509::X509>, SmimeError>,
    later: Result<Vec<openssl::x509::X509>, SmimeError>,
    address: &str,
) -> Result<Vec<openssl::x509::X509>, SmimeError> {
    match (later, earlier) {
        (Ok(certs), _) | (_, Ok(certs)) => Ok(certs),
        (Err(e @ SmimeError::NoTrustedRecipientCert { .. }), _) => Err(e),
        (Err(_), Err(e @ SmimeError::NoTrustedRecipientCert { .. })) => Err(e),
        (
            Err(SmimeError::NoRecipientCert { rejected: a, .. }),
            Err(SmimeError::NoRecipientCert { rejected: b, .. }),
        ) => Err(SmimeError::NoRecipientCert {
            address: address.to_owned(),
            rejected: a + b,
        }),
        (Err(e), _) => Err(e),
    }
}
