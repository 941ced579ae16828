//! Recipient certificate discovery from DNS CERT records (RFC 4398), as used by Direct.
//!
//! For `local@domain` the address-bound name (`local` as one label, then the domain's labels; for
//! a local part without dots this is simply `local.domain`) is queried first; if it holds no
//! usable PKIX certificate, the domain itself is queried. Only CERT type 1 (PKIX, DER X.509) yields
//! certificates; type 4 (IPKIX, a URL) and every other type or unparsable record is reported as
//! [`Skipped`] and never fetched.
//!
//! The DNS client is a deliberately small hand-written stub resolver: one question per query, a
//! random id from OpenSSL's CSPRNG, UDP first (no EDNS, so answers are capped at 512 bytes) and a
//! retry over TCP when the server sets the TC bit. Responses are untrusted input: the id, QR/opcode
//! and the echoed question are checked, counts and lengths are bounded, compression pointers may
//! only point backwards. Nothing here establishes trust: the caller must validate every returned
//! certificate against the configured anchors (and check its binding to the address).
//!
//! Results are cached per queried name for `min(record TTL, max_ttl)`; a name without usable
//! certificates is cached for `negative_ttl`. Errors (timeouts, SERVFAIL, malformed answers) are
//! never cached.
//!
//! The wire format is in `wire.rs`. It stays hand-written for now: hickory-proto 0.26 needs Rust
//! 1.88 (this crate builds with 1.85) and brings crates new to the tree (rand, data-encoding) to
//! parse two record types whose bounds are already tested here; worth replacing together with the
//! resolver (EDNS0, system configuration) by hickory-resolver, not the wire layer alone.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::x509::X509;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod wire;
use wire::{
    build_query_type, decode_labels, parse_response_type, same_name, ParseError, Parsed,
    HEADER_LEN, TYPE_CNAME,
};
pub use wire::{CERT_IPKIX, CERT_PKIX, TYPE_CERT, TYPE_SRV};

/// SRV targets taken from one answer.
const MAX_SRV_TARGETS: usize = 16;

/// Upper bounds applied to untrusted answers.
const MAX_CERTS_PER_NAME: usize = 16;
const MAX_CNAME_HOPS: usize = 8;
const MAX_URL_CHARS: usize = 512;
const MAX_CACHE_ENTRIES: usize = 4096;
const UDP_RECV_BUF: usize = 4096;

pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("not a usable Direct address for DNS CERT discovery: {0:?}")]
    InvalidAddress(String),
    #[error("DNS CERT query for {name} timed out after {timeout:?}")]
    Timeout { name: String, timeout: Duration },
    #[error("DNS CERT query for {name} failed: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed DNS response for {name}: {reason}")]
    Malformed { name: String, reason: String },
    #[error("DNS server answered {name} with rcode {rcode} ({})", rcode_name(*.rcode))]
    ServerFailure { name: String, rcode: u8 },
}

fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "other",
    }
}

/// A CERT record that was present but produced no certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The DNS name the record was found at (escaped presentation form, lower case).
    pub name: String,
    /// RFC 4398 certificate type of the record.
    pub cert_type: u16,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Type 4 IPKIX: a URL to the certificate. Not fetched (no HTTP from DNS-provided URLs).
    IpkixUrl(String),
    /// Type 1 PKIX whose data is not a DER X.509 certificate.
    BadDer(String),
    /// RDATA shorter than the 5-byte CERT header.
    ShortRdata(usize),
    /// A certificate type other than PKIX/IPKIX (SPKI, PGP, ...).
    UnsupportedType,
    /// More PKIX records at one name than [`MAX_CERTS_PER_NAME`].
    TooMany,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CERT type {} at {}: ", self.cert_type, self.name)?;
        match &self.reason {
            SkipReason::IpkixUrl(url) => write!(f, "IPKIX URL {url:?} not fetched"),
            SkipReason::BadDer(e) => write!(f, "not a DER X.509 certificate ({e})"),
            SkipReason::ShortRdata(n) => write!(f, "RDATA of {n} bytes is too short"),
            SkipReason::UnsupportedType => write!(f, "unsupported certificate type"),
            SkipReason::TooMany => write!(f, "too many certificates at one name"),
        }
    }
}

/// Everything one [`DnsCertDiscovery::lookup_detailed`] produced.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// PKIX certificates, parsed but **not validated**.
    pub certs: Vec<X509>,
    /// The name the certificates came from (address-bound name or the domain); `None` if none.
    pub source: Option<String>,
    /// Records seen at any queried name that yielded no certificate, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Counters, mainly for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    pub udp_queries: u64,
    /// UDP answers with TC set that were retried over TCP.
    pub tcp_fallbacks: u64,
    pub cache_hits: u64,
}

#[derive(Clone)]
struct NameAnswer {
    certs: Vec<X509>,
    skipped: Vec<Skipped>,
}

pub struct DnsCertDiscovery {
    nameserver: SocketAddr,
    timeout: Duration,
    /// queried name -> (expiry, answer)
    cache: Mutex<HashMap<String, (Instant, NameAnswer)>>,
    max_ttl: Duration,
    negative_ttl: Duration,
    udp_queries: AtomicU64,
    tcp_fallbacks: AtomicU64,
    cache_hits: AtomicU64,
}

impl DnsCertDiscovery {
    /// `timeout` bounds each DNS query (UDP attempt plus any TCP retry) as a whole.
    pub fn new(nameserver: SocketAddr, timeout: Duration) -> Self {
        DnsCertDiscovery {
            nameserver,
            timeout,
            cache: Mutex::new(HashMap::new()),
            max_ttl: DEFAULT_MAX_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            udp_queries: AtomicU64::new(0),
            tcp_fallbacks: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// Override the cache lifetimes (defaults: 1 h cap on positive answers, 5 min negative).
    pub fn with_ttls(mut self, max_ttl: Duration, negative_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self.negative_ttl = negative_ttl;
        self
    }

    pub fn stats(&self) -> DiscoveryStats {
        DiscoveryStats {
            udp_queries: self.udp_queries.load(Ordering::Relaxed),
            tcp_fallbacks: self.tcp_fallbacks.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// RFC 4398 / Direct: query the address-bound name first; if no PKIX cert there, query the
    /// domain. Returns the X.509 certificates found (type 1 PKIX, DER), unvalidated; an empty
    /// vector means DNS has none (the caller moves on to LDAP). Skipped records (IPKIX URLs,
    /// garbage) are only visible through [`Self::lookup_detailed`].
    pub async fn lookup(&self, address: &str) -> Result<Vec<X509>, DiscoveryError> {
        Ok(self.lookup_detailed(address).await?.certs)
    }

    /// As [`Self::lookup`], also reporting where the certificates came from and what was skipped.
    /// In the daemon, log each `skipped` entry (e.g. `tracing::warn!("{s}")`).
    pub async fn lookup_detailed(&self, address: &str) -> Result<Discovered, DiscoveryError> {
        let (address_name, domain_name) = owner_names(address)?;
        let mut skipped = Vec::new();
        for name in [address_name, domain_name] {
            let answer = self.query_cached(&name).await?;
            skipped.extend(answer.skipped);
            if !answer.certs.is_empty() {
                return Ok(Discovered {
                    source: Some(presentation(&name)),
                    certs: answer.certs,
                    skipped,
                });
            }
        }
        Ok(Discovered {
            certs: Vec::new(),
            source: None,
            skipped,
        })
    }

    async fn query_cached(&self, labels: &[Vec<u8>]) -> Result<NameAnswer, DiscoveryError> {
        let key = presentation(labels);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key) {
                Some((expiry, answer)) if *expiry > Instant::now() => {
                    self.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(answer.clone());
                }
                Some(_) => {
                    cache.remove(&key);
                }
                None => {}
            }
        }
        let (answer, min_ttl) = self.query(labels, &key).await?;
        let lifetime = if answer.certs.is_empty() {
            self.negative_ttl
        } else {
            Duration::from_secs(u64::from(min_ttl.unwrap_or(0))).min(self.max_ttl)
        };
        if !lifetime.is_zero() {
            let now = Instant::now();
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.retain(|_, (expiry, _)| *expiry > now);
            }
            if cache.len() < MAX_CACHE_ENTRIES {
                cache.insert(key, (now + lifetime, answer.clone()));
            }
        }
        Ok(answer)
    }

    /// One CERT query, UDP then TCP on truncation, all within `self.timeout`.
    async fn query(
        &self,
        labels: &[Vec<u8>],
        key: &str,
    ) -> Result<(NameAnswer, Option<u32>), DiscoveryError> {
        let fut = async {
            let udp = self.exchange_udp(labels, key, TYPE_CERT).await?;
            let response = if udp.truncated {
                self.tcp_fallbacks.fetch_add(1, Ordering::Relaxed);
                let tcp = self.exchange_tcp(labels, key, TYPE_CERT).await?;
                if tcp.truncated {
                    return Err(malformed(key, "TC bit set on a TCP response"));
                }
                tcp
            } else {
                udp
            };
            interpret(response, labels, key)
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(DiscoveryError::Timeout {
                name: key.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    async fn exchange_udp(
        &self,
        labels: &[Vec<u8>],
        key: &str,
        qtype: u16,
    ) -> Result<Parsed, DiscoveryError> {
        let io = |source| DiscoveryError::Io {
            name: key.to_string(),
            source,
        };
        let local: SocketAddr = if self.nameserver.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await.map_err(io)?;
        // connect() makes the kernel drop datagrams from any other source address/port.
        sock.connect(self.nameserver).await.map_err(io)?;
        let id = random_id();
        let query = build_query_type(id, labels, qtype);
        self.udp_queries.fetch_add(1, Ordering::Relaxed);
        sock.send(&query).await.map_err(io)?;
        let mut buf = vec![0u8; UDP_RECV_BUF];
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            // A datagram with a wrong id or question is ignored (late answer or spoofing attempt);
            // keep waiting until the overall timeout.
            match parse_response_type(&buf[..n], id, labels, qtype) {
                Ok(parsed) => return Ok(parsed),
                Err(ParseError::Mismatch) => continue,
                Err(ParseError::Bad(reason)) => return Err(malformed(key, reason)),
            }
        }
    }

    async fn exchange_tcp(
        &self,
        labels: &[Vec<u8>],
        key: &str,
        qtype: u16,
    ) -> Result<Parsed, DiscoveryError> {
        let io = |source| DiscoveryError::Io {
            name: key.to_string(),
            source,
        };
        let mut stream = TcpStream::connect(self.nameserver).await.map_err(io)?;
        let id = random_id();
        let query = build_query_type(id, labels, qtype);
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await.map_err(io)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(io)?;
        let len = usize::from(u16::from_be_bytes(len));
        if len < HEADER_LEN {
            return Err(malformed(key, "TCP response shorter than a DNS header"));
        }
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await.map_err(io)?;
        match parse_response_type(&buf, id, labels, qtype) {
            Ok(parsed) => Ok(parsed),
            Err(ParseError::Mismatch) => Err(malformed(key, "TCP response id/question mismatch")),
            Err(ParseError::Bad(reason)) => Err(malformed(key, reason)),
        }
    }
}

/// One SRV target (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Host name, lower case, without the trailing dot.
    pub host: String,
}

impl DnsCertDiscovery {
    /// The SRV targets at `name` (e.g. `_ldap._tcp.example.org`) in the order RFC 2782 says to
    /// try them: lowest priority first, and within one priority a weighted random order. An
    /// empty vector when there are none (NXDOMAIN, no records, or the "." target that says the
    /// service is not offered). Not cached: the LDAP lookup it serves is itself rare.
    pub async fn lookup_srv(&self, name: &str) -> Result<Vec<SrvTarget>, DiscoveryError> {
        let labels = srv_labels(name).ok_or_else(|| DiscoveryError::InvalidAddress(name.into()))?;
        let key = presentation(&labels);
        let fut = async {
            let mut parsed = self.exchange_udp(&labels, &key, TYPE_SRV).await?;
            if parsed.truncated {
                self.tcp_fallbacks.fetch_add(1, Ordering::Relaxed);
                parsed = self.exchange_tcp(&labels, &key, TYPE_SRV).await?;
            }
            Ok::<_, DiscoveryError>(parsed)
        };
        let parsed = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(DiscoveryError::Timeout {
                    name: key,
                    timeout: self.timeout,
                })
            }
        };
        match parsed.rcode {
            0 => {}
            3 => return Ok(Vec::new()),
            rcode => return Err(DiscoveryError::ServerFailure { name: key, rcode }),
        }
        let targets = parsed
            .answers
            .iter()
            .filter(|r| r.rtype == TYPE_SRV && same_name(&r.owner, &labels))
            .filter_map(|r| {
                let u16_at = |i: usize| u16::from_be_bytes([r.rdata[i], r.rdata[i + 1]]);
                let host = decode_labels(&r.rdata[6..]);
                (!host.is_empty()).then(|| SrvTarget {
                    priority: u16_at(0),
                    weight: u16_at(2),
                    port: u16_at(4),
                    host: presentation(&host),
                })
            })
            .take(MAX_SRV_TARGETS)
            .collect();
        Ok(rfc2782_order(targets, |bound| {
            let mut b = [0u8; 4];
            let _ = openssl::rand::rand_bytes(&mut b);
            u32::from_be_bytes(b) % (bound + 1)
        }))
    }
}

/// Labels of an SRV owner name: letters, digits, `-` and `_` only.
fn srv_labels(name: &str) -> Option<Labels> {
    let name = name.trim().strip_suffix('.').unwrap_or(name.trim());
    let labels: Labels = name
        .split('.')
        .map(|l| l.to_ascii_lowercase().into_bytes())
        .collect();
    let ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    });
    (ok && name.len() < 254).then_some(labels)
}

/// RFC 2782's selection order. `random(n)` returns a number in `0..=n`.
pub(crate) fn rfc2782_order(
    mut targets: Vec<SrvTarget>,
    mut random: impl FnMut(u32) -> u32,
) -> Vec<SrvTarget> {
    targets.sort_by_key(|t| t.priority);
    let mut out = Vec::with_capacity(targets.len());
    while !targets.is_empty() {
        let priority = targets[0].priority;
        let end = targets
            .iter()
            .take_while(|t| t.priority == priority)
            .count();
        let mut group: Vec<SrvTarget> = targets.drain(..end).collect();
        // "Arrange all SRV RRs (that have not been ordered yet) in any order, except that all
        // those with weight 0 are placed at the beginning of the list."
        group.sort_by_key(|t| t.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|t| u32::from(t.weight)).sum();
            let pick = random(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|t| {
                    running += u32::from(t.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

fn malformed(key: &str, reason: &str) -> DiscoveryError {
    DiscoveryError::Malformed {
        name: key.to_string(),
        reason: reason.to_string(),
    }
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // rand_bytes only fails if the CSPRNG cannot be seeded; an id of 0 still works, just weaker.
    let _ = openssl::rand::rand_bytes(&mut b);
    u16::from_be_bytes(b)
}

/// A DNS name as its labels (lower case, without the root label).
type Labels = Vec<Vec<u8>>;

/// Wire labels for the address-bound name and the domain. The local part is a single label (a dot
/// in it stays inside the label, RFC 4398 section 3: `John.Doe@example.com` -> `John\.Doe.example.com`).
fn owner_names(address: &str) -> Result<(Labels, Labels), DiscoveryError> {
    let invalid = || DiscoveryError::InvalidAddress(address.to_string());
    let trimmed = address.trim();
    let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if local.is_empty() || local.len() > 63 || domain.is_empty() {
        return Err(invalid());
    }
    if local.bytes().any(|b| b <= b' ' || b == 0x7f) || !local.is_ascii() {
        return Err(invalid());
    }
    let mut domain_labels = Vec::new();
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(invalid());
        }
        domain_labels.push(label.to_ascii_lowercase().into_bytes());
    }
    let mut address_labels = vec![local.to_ascii_lowercase().into_bytes()];
    address_labels.extend(domain_labels.iter().cloned());
    // Wire length: each label + its length byte, plus the root byte.
    let wire_len: usize = address_labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    if wire_len > 255 {
        return Err(invalid());
    }
    Ok((address_labels, domain_labels))
}

/// Presentation form (lower case, `.` and `\` inside a label escaped); used as the cache key.
fn presentation(labels: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b.to_ascii_lowercase() as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
    }
    out
}

/// Turns a parsed response into certificates and skip reasons, plus the smallest CERT TTL.
fn interpret(
    parsed: Parsed,
    qname: &[Vec<u8>],
    key: &str,
) -> Result<(NameAnswer, Option<u32>), DiscoveryError> {
    match parsed.rcode {
        0 => {}
        3 => {
            // NXDOMAIN
            return Ok((
                NameAnswer {
                    certs: Vec::new(),
                    skipped: Vec::new(),
                },
                None,
            ));
        }
        rcode => {
            return Err(DiscoveryError::ServerFailure {
                name: key.to_string(),
                rcode,
            })
        }
    }
    // Names that count as "the queried name": it, and CNAME targets reachable from it.
    let mut names: Vec<Vec<Vec<u8>>> = vec![qname.to_vec()];
    for _ in 0..MAX_CNAME_HOPS {
        let mut added = false;
        for r in &parsed.answers {
            if r.rtype == TYPE_CNAME && names.iter().any(|n| same_name(n, &r.owner)) {
                let target = decode_labels(&r.rdata);
                if !names.iter().any(|n| same_name(n, &target)) {
                    names.push(target);
                    added = true;
                }
            }
        }
        if !added {
            break;
        }
    }
    let mut certs = Vec::new();
    let mut skipped = Vec::new();
    let mut min_ttl: Option<u32> = None;
    for r in &parsed.answers {
        if r.rtype != TYPE_CERT || !names.iter().any(|n| same_name(n, &r.owner)) {
            continue;
        }
        let name = presentation(&r.owner);
        if r.rdata.len() < 5 {
            skipped.push(Skipped {
                name,
                cert_type: 0,
                reason: SkipReason::ShortRdata(r.rdata.len()),
            });
            continue;
        }
        let cert_type = u16::from_be_bytes([r.rdata[0], r.rdata[1]]);
        // rdata[2..4] key tag and rdata[4] algorithm are 0 for X.509 and not used.
        let data = &r.rdata[5..];
        let reason = match cert_type {
            CERT_PKIX if certs.len() >= MAX_CERTS_PER_NAME => SkipReason::TooMany,
            CERT_PKIX if outer_der_len(data) != Some(data.len()) => {
                SkipReason::BadDer("not a single DER SEQUENCE (bad length or trailing data)".into())
            }
            CERT_PKIX => match X509::from_der(data) {
                Ok(cert) => {
                    certs.push(cert);
                    min_ttl = Some(min_ttl.map_or(r.ttl, |t| t.min(r.ttl)));
                    continue;
                }
                Err(e) => SkipReason::BadDer(first_error(&e)),
            },
            CERT_IPKIX => {
                let url: String = String::from_utf8_lossy(data)
                    .chars()
                    .take(MAX_URL_CHARS)
                    .collect();
                SkipReason::IpkixUrl(url)
            }
            _ => SkipReason::UnsupportedType,
        };
        skipped.push(Skipped {
            name,
            cert_type,
            reason,
        });
    }
    Ok((NameAnswer { certs, skipped }, min_ttl))
}

/// Total length of the outer DER SEQUENCE at the start of `data` (header + content), if any.
fn outer_der_len(data: &[u8]) -> Option<usize> {
    if *data.first()? != 0x30 {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None; // indefinite length (BER) or absurdly long
        }
        let mut len = 0usize;
        for &b in data.get(2..2 + n)? {
            len = (len << 8) | usize::from(b);
        }
        (len, 2 + n)
    };
    header.checked_add(len)
}

fn first_error(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| "unparsable".to_string())
}

#[cfg(test)]
mod tests {
    use super::wire::*;
    use super::*;

    fn labels(s: &str) -> Vec<Vec<u8>> {
        s.split('.').map(|l| l.as_bytes().to_vec()).collect()
    }

    #[test]
    fn owner_names_map_address() {
        let (a, d) = owner_names("Clinic@B.Test").unwrap();
        assert_eq!(presentation(&a), "clinic.b.test");
        assert_eq!(presentation(&d), "b.test");
        let (a, _) = owner_names("john.doe@example.com").unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(presentation(&a), "john\\.doe.example.com");
        for bad in [
            "",
            "nobody",
            "@x.test",
            "a@",
            "a@b..test",
            "a b@x.test",
            "a@x_y .test",
        ] {
            assert!(owner_names(bad).is_err(), "{bad:?}");
        }
    }

    fn response(id: u16, flags: u16, q: &[Vec<u8>], answers: &[u8], ancount: u16) -> Vec<u8> {
        let mut m = build_query(id, q);
        m[2..4].copy_from_slice(&(flags | FLAG_QR).to_be_bytes());
        m[6..8].copy_from_slice(&ancount.to_be_bytes());
        m.extend_from_slice(answers);
        m
    }

    fn cert_rr_with_pointer(rdata: &[u8], ttl: u32) -> Vec<u8> {
        let mut rr = vec![0xc0, 12]; // pointer to the question name
        rr.extend_from_slice(&TYPE_CERT.to_be_bytes());
        rr.extend_from_slice(&CLASS_IN.to_be_bytes());
        rr.extend_from_slice(&ttl.to_be_bytes());
        rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        rr.extend_from_slice(rdata);
        rr
    }

    #[test]
    fn parse_checks_id_question_and_bounds() {
        let q = labels("a.b.test");
        let rr = cert_rr_with_pointer(&[0, 4, 0, 0, 0, b'h', b'i'], 60);
        let msg = response(7, 0, &q, &rr, 1);
        let p = parse_response(&msg, 7, &q).unwrap();
        assert_eq!(p.answers.len(), 1);
        assert_eq!(p.answers[0].owner, q);
        assert!(matches!(
            parse_response(&msg, 8, &q),
            Err(ParseError::Mismatch)
        ));
        assert!(matches!(
            parse_response(&msg, 7, &labels("x.b.test")),
            Err(ParseError::Mismatch)
        ));
        // Truncations anywhere must be refused, never panic.
        for cut in 0..msg.len() {
            let _ = parse_response(&msg[..cut], 7, &q);
        }
        // Self-referencing pointer loop.
        let mut looped = response(7, 0, &q, &[0xc0, 0x00], 1);
        let at = looped.len() - 2;
        looped[at + 1] = at as u8;
        assert!(matches!(
            parse_response(&looped, 7, &q),
            Err(ParseError::Bad(_))
        ));
        // Too many answers claimed.
        let many = response(7, 0, &q, &[], 1000);
        assert!(matches!(
            parse_response(&many, 7, &q),
            Err(ParseError::Bad(_))
        ));
    }

    #[test]
    fn interpret_skips_ipkix_garbage_and_other_types() {
        let q = labels("a.b.test");
        let mut rrs = cert_rr_with_pointer(b"\x00\x04\x00\x00\x00https://x.test/c.cer", 60);
        rrs.extend(cert_rr_with_pointer(
            &[0, 1, 0, 0, 0, 0x30, 0x03, 1, 2, 3],
            60,
        ));
        rrs.extend(cert_rr_with_pointer(&[0, 3, 0, 0, 0, 1], 60));
        rrs.extend(cert_rr_with_pointer(&[0, 1], 60));
        let msg = response(1, 0, &q, &rrs, 4);
        let p = parse_response(&msg, 1, &q).unwrap();
        let (a, ttl) = interpret(p, &q, "a.b.test").unwrap();
        assert!(a.certs.is_empty());
        assert_eq!(ttl, None);
        assert_eq!(a.skipped.len(), 4);
        assert_eq!(
            a.skipped[0].reason,
            SkipReason::IpkixUrl("https://x.test/c.cer".into())
        );
        assert!(matches!(a.skipped[1].reason, SkipReason::BadDer(_)));
        assert_eq!(outer_der_len(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(outer_der_len(&[0x30, 0x82, 0x01, 0x00]), Some(260));
        assert_eq!(outer_der_len(&[0x30, 0x80]), None);
        assert_eq!(outer_der_len(&[0x31, 0x00]), None);
        assert_eq!(a.skipped[2].reason, SkipReason::UnsupportedType);
        assert_eq!(a.skipped[3].reason, SkipReason::ShortRdata(2));
    }

    #[test]
    fn srv_order_is_by_priority_then_weight() {
        let t = |priority, weight, host: &str| SrvTarget {
            priority,
            weight,
            port: 389,
            host: host.into(),
        };
        let hosts = |v: Vec<SrvTarget>| v.into_iter().map(|t| t.host).collect::<Vec<_>>();
        let input = vec![t(20, 0, "backup"), t(10, 1, "light"), t(10, 99, "heavy")];
        // The largest possible draw lands on the last entry of the weight sum.
        assert_eq!(
            hosts(rfc2782_order(input.clone(), |n| n)),
            ["heavy", "light", "backup"]
        );
        // A draw of 1 lands on the first weighted entry ("light"; weight 0 sorts first).
        assert_eq!(
            hosts(rfc2782_order(input, |n| n.min(1))),
            ["light", "heavy", "backup"]
        );
        assert!(srv_labels("_ldap._tcp.example.org").is_some());
        assert!(srv_labels("bad name.example").is_none());
    }

    #[test]
    fn rcodes() {
        let q = labels("a.b.test");
        let nx = parse_response(&response(1, 3, &q, &[], 0), 1, &q).unwrap();
        assert!(interpret(nx, &q, "a.b.test").unwrap().0.certs.is_empty());
        let sf = parse_response(&response(1, 2, &q, &[], 0), 1, &q).unwrap();
        assert!(matches!(
            interpret(sf, &q, "a.b.test"),
            Err(DiscoveryError::ServerFailure { rcode: 2, .. })
        ));
    }
}
