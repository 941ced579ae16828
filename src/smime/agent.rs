//! The security agent assembled from files: our identities, the trust anchors per local domain,
//! and where recipient certificates come from. `config` fills [`AgentSettings`]; the edge
//! transport and `directd inspect` use the loaded [`Agent`].

use std::path::PathBuf;

use super::{
    CertDirectory, Direction, KeyStore, RevocationPolicy, SealOptions, SmimeError, TrustStore,
};

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
}

pub struct Agent {
    pub keys: KeyStore,
    pub trust: TrustStore,
    pub directory: CertDirectory,
    pub discovery: Option<super::discovery::DnsCertDiscovery>,
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
        let directory = match &settings.recipient_certs_dir {
            Some(dir) => CertDirectory::load_dir(dir)?,
            None => CertDirectory::from_certs(Vec::new()),
        };
        let discovery = settings.dns_nameserver.map(|ns| {
            super::discovery::DnsCertDiscovery::new(ns, std::time::Duration::from_secs(5))
        });
        Ok(Agent {
            keys,
            trust,
            directory,
            discovery,
            seal: settings.seal.clone(),
        })
    }

    /// Every certificate `sender` may encrypt to for `address`: from the local directory, else
    /// from DNS CERT records. Either source only proposes certificates; each must be bound to
    /// the address (or its domain), pass the usage, strength and validity checks, and chain to
    /// the outgoing anchors of the sender's domain (see [`super::certs::select_recipient_certs`]).
    pub async fn recipient_certs(
        &self,
        sender: &str,
        address: &str,
    ) -> Result<Vec<openssl::x509::X509>, SmimeError> {
        let sender_domain = sender.rsplit_once('@').map_or(sender, |(_, d)| d);
        let local = self.directory.lookup(address, &self.trust, sender_domain);
        let (Err(local_err), Some(discovery)) = (&local, &self.discovery) else {
            return local;
        };
        let found = match discovery.lookup(address).await {
            Ok(found) => found,
            Err(d) => {
                tracing::warn!(error = %d, "DNS CERT discovery failed");
                return local;
            }
        };
        let dns = super::certs::select_recipient_certs(&found, address, &self.trust, sender_domain);
        match (dns, local_err) {
            (Ok(certs), _) => Ok(certs),
            (Err(e @ SmimeError::NoTrustedRecipientCert { .. }), _) => Err(e),
            (Err(_), SmimeError::NoTrustedRecipientCert { .. }) => local,
            (
                Err(SmimeError::NoRecipientCert { rejected: a, .. }),
                SmimeError::NoRecipientCert { rejected: b, .. },
            ) => Err(SmimeError::NoRecipientCert {
                address: address.to_owned(),
                rejected: a + b,
            }),
            (Err(e), _) => Err(e),
        }
    }
}
