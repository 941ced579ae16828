//! Recipient certificate discovery from LDAP, as the Certificate Discovery for Direct Project
//! implementation guide describes: after the local directory and DNS CERT, find the domain's
//! LDAP servers through `_ldap._tcp.<domain>` SRV records (RFC 2782 priority and weight order),
//! read the root DSE's namingContexts, search each for `mail=<address>` and then for
//! `mail=<domain>`, and take the values of `userSMIMECertificate` and `userCertificate;binary`.
//!
//! The servers are strangers: everything is bounded (time per server, entries, bytes), a server
//! that cannot be reached or misbehaves is passed over for the next one, referrals are reported
//! and never followed (a referral may point anywhere, off the recipient's domain included), and
//! result entries are read without ldap3's panicking `SearchEntry::construct`. What is found is
//! only proposed; the agent selects with the same rules as for DNS (binding, validity, usage,
//! and a chain to the sender's outgoing anchors).

use std::time::Duration;

use ldap3::asn1::{StructureTag, PL};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchOptions};
use openssl::x509::X509;

use super::discovery::{DiscoveryError, DnsCertDiscovery, SrvTarget};

/// Bounds on one LDAP lookup.
#[derive(Debug, Clone)]
pub struct LdapLimits {
    /// Connecting plus every search on one server.
    pub per_server: Duration,
    /// Servers tried from the SRV answer.
    pub max_servers: usize,
    /// Entries accepted over all searches on one server.
    pub max_entries: usize,
    /// Bytes of certificate values accepted over all searches on one server.
    pub max_bytes: usize,
}

impl Default for LdapLimits {
    fn default() -> Self {
        LdapLimits {
            per_server: Duration::from_secs(10),
            max_servers: 4,
            max_entries: 32,
            max_bytes: 512 * 1024,
        }
    }
}

/// Naming contexts searched per server; directories with more are not Direct directories.
const MAX_NAMING_CONTEXTS: usize = 4;
const CERT_ATTRIBUTES: [&str; 3] = [
    "userSMIMECertificate",
    "userCertificate;binary",
    "userCertificate",
];

/// Why one server gave nothing usable; the next one is tried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServerError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("its root DSE lists no namingContexts")]
    NoNamingContexts,
    #[error("more than {0} entries")]
    TooManyEntries(usize),
    #[error("more than {0} bytes of certificates")]
    TooLarge(usize),
    #[error("LDAP error: {0}")]
    Protocol(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP SRV lookup for {domain} failed: {source}")]
    Srv {
        domain: String,
        #[source]
        source: DiscoveryError,
    },
    #[error("no LDAP server of {domain} answered usably ({tried} tried); last, {server}: {last}")]
    AllServersFailed {
        domain: String,
        tried: usize,
        server: String,
        last: ServerError,
    },
}

/// What one lookup found.
#[derive(Debug, Default)]
pub struct LdapFound {
    /// Certificates, parsed but **not validated**.
    pub certs: Vec<X509>,
    /// `host:port` of the server that answered; `None` when the domain has no SRV records.
    pub server: Option<String>,
    /// Values and results that produced no certificate, with the reason (garbage values,
    /// referrals not followed).
    pub skipped: Vec<String>,
    /// Servers passed over before `server`, with the reason.
    pub failed: Vec<(String, ServerError)>,
}

pub struct LdapDiscovery {
    dns: DnsCertDiscovery,
    limits: LdapLimits,
}

impl LdapDiscovery {
    /// `dns` is the resolver asked for the SRV records.
    pub fn new(dns: DnsCertDiscovery, limits: LdapLimits) -> Self {
        LdapDiscovery { dns, limits }
    }

    pub async fn lookup(&self, address: &str) -> Result<LdapFound, LdapError> {
        let address = address.trim().to_ascii_lowercase();
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        let targets = self
            .dns
            .lookup_srv(&format!("_ldap._tcp.{domain}"))
            .await
            .map_err(|source| LdapError::Srv {
                domain: domain.clone(),
                source,
            })?;
        let mut failed = Vec::new();
        for target in targets.iter().take(self.limits.max_servers) {
            let server = format!("{}:{}", target.host, target.port);
            match self.query_server(target, &address, &domain).await {
                Ok(mut found) => {
                    found.server = Some(server);
                    found.failed = failed;
                    return Ok(found);
                }
                Err(e) => {
                    tracing::warn!(%server, error = %e, "LDAP server passed over");
                    failed.push((server, e));
                }
            }
        }
        match failed.pop() {
            None => Ok(LdapFound::default()),
            Some((server, last)) => Err(LdapError::AllServersFailed {
                domain,
                tried: failed.len() + 1,
                server,
                last,
            }),
        }
    }

    async fn query_server(
        &self,
        target: &SrvTarget,
        address: &str,
        domain: &str,
    ) -> Result<LdapFound, ServerError> {
        let timeout = self.limits.per_server;
        let url = format!("ldap://{}:{}", target.host, target.port);
        let settings = LdapConnSettings::new().set_conn_timeout(timeout);
        let connect = LdapConnAsync::with_settings(settings, &url);
        let (conn, mut ldap) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ServerError::Timeout(timeout))?
            .map_err(|e| ServerError::Connect(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        let work = self.search_all(&mut ldap, address, domain);
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ServerError::Timeout(timeout)),
        };
        // Dropping the connection is the cleanup; a polite unbind must not cost another wait.
        let _ = tokio::time::timeout(Duration::from_millis(200), ldap.unbind()).await;
        driver.abort();
        result
    }

    async fn search_all(
        &self,
        ldap: &mut ldap3::Ldap,
        address: &str,
        domain: &str,
    ) -> Result<LdapFound, ServerError> {
        let protocol = |e: ldap3::LdapError| ServerError::Protocol(e.to_string());
        let root = ldap
            .with_timeout(self.limits.per_server)
            .search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"])
            .await
            .map_err(protocol)?;
        let contexts: Vec<String> = root
            .0
            .iter()
            .flat_map(|e| attribute_values(&e.0, &["namingcontexts"]))
            .filter_map(|v| String::from_utf8(v).ok())
            .take(MAX_NAMING_CONTEXTS)
            .collect();
        if contexts.is_empty() {
            return Err(ServerError::NoNamingContexts);
        }
        let mut found = LdapFound::default();
        let mut budget = Budget::default();
        for value in [address, domain] {
            let filter = format!("(mail={})", ldap3::ldap_escape(value));
            for base in &contexts {
                self.search(ldap, base, &filter, &mut found, &mut budget)
                    .await?;
            }
        }
        // Directories commonly hold the same certificate in both attributes.
        let mut seen = std::collections::HashSet::new();
        found
            .certs
            .retain(|c| c.to_der().map(|d| seen.insert(d)).unwrap_or(false));
        Ok(found)
    }

    async fn search(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        filter: &str,
        found: &mut LdapFound,
        budget: &mut Budget,
    ) -> Result<(), ServerError> {
        let protocol = |e: ldap3::LdapError| ServerError::Protocol(e.to_string());
        let limit = self.limits.max_entries;
        // The server's own limits are a courtesy; the counts below are what holds.
        let options = SearchOptions::new()
            .sizelimit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .timelimit(i32::try_from(self.limits.per_server.as_secs().max(1)).unwrap_or(10));
        let mut stream = ldap
            .with_search_options(options)
            .streaming_search(base, Scope::Subtree, filter, CERT_ATTRIBUTES.to_vec())
            .await
            .map_err(protocol)?;
        while let Some(entry) = stream.next().await.map_err(protocol)? {
            if entry.is_ref() {
                found.skipped.push(format!(
                    "search reference under {base} not followed: {}",
                    ldap3::parse_refs(entry.0).join(" ")
                ));
                continue;
            }
            if entry.is_intermediate() {
                continue;
            }
            budget.entries += 1;
            if budget.entries > limit {
                return Err(ServerError::TooManyEntries(limit));
            }
            for value in attribute_values(&entry.0, &["usersmimecertificate", "usercertificate"]) {
                budget.bytes += value.len();
                if budget.bytes > self.limits.max_bytes {
                    return Err(ServerError::TooLarge(self.limits.max_bytes));
                }
                match super::net::parse_cert_bundle(&value) {
                    Some(certs) => found.certs.extend(certs),
                    None => found.skipped.push(format!(
                        "a {}-byte value under {base} is not a certificate",
                        value.len()
                    )),
                }
            }
        }
        let done = stream.finish().await;
        match done.rc {
            // success, noSuchObject (an empty naming context)
            0 | 32 => Ok(()),
            // sizeLimitExceeded
            4 => Err(ServerError::TooManyEntries(limit)),
            // referral: the whole base lives elsewhere; never followed
            10 => {
                found.skipped.push(format!(
                    "referral for {base} not followed: {}",
                    done.refs.join(" ")
                ));
                Ok(())
            }
            rc => Err(ServerError::Protocol(format!(
                "search under {base} ended with result code {rc} ({})",
                done.text
            ))),
        }
    }
}

#[derive(Default)]
struct Budget {
    entries: usize,
    bytes: usize,
}

/// The values of the attributes named `wanted` (lower case, options such as `;binary`
/// ignored) in a SearchResultEntry (RFC 4511 §4.5.2). Anything not shaped like one yields
/// nothing rather than a panic.
fn attribute_values(entry: &StructureTag, wanted: &[&str]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let PL::C(parts) = &entry.payload else {
        return out;
    };
    let Some(PL::C(attributes)) = parts.get(1).map(|p| &p.payload) else {
        return out;
    };
    for attribute in attributes {
        let PL::C(pair) = &attribute.payload else {
            continue;
        };
        let (Some(PL::P(name)), Some(PL::C(values))) = (
            pair.first().map(|t| &t.payload),
            pair.get(1).map(|t| &t.payload),
        ) else {
            continue;
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let base = name.split(';').next().unwrap_or_default();
        if !wanted.contains(&base) {
            continue;
        }
        for v in values {
            if let PL::P(bytes) = &v.payload {
                out.push(bytes.clone());
            }
        }
    }
    out
}
