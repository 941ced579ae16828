//! DNS CERT discovery against a private dnsmasq on 127.0.0.1 (install: scripts/install-dnsmasq.sh).
//!
//! Each test starts its own dnsmasq on a free port, serving CERT (37) records with `--dns-rr`.
//! The RSA-2048 certificates make the answers exceed 512 bytes, so UDP answers come back
//! truncated and the client has to retry over TCP.

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use directd::smime::discovery::{DiscoveryError, DnsCertDiscovery, SkipReason};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use support::servers::{cert_rdata, raw_udp_query, Dnsmasq};

const TIMEOUT: Duration = Duration::from_secs(5);
const IPKIX_URL: &str = "https://certs.b.test/ipkix.cer";

struct Fixture {
    address_cert: X509,
    domain_cert: X509,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        address_cert: make_cert("clinic@b.test", false),
        domain_cert: make_cert("c.test", true),
    })
}

fn make_cert(name: &str, domain: bool) -> X509 {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", name).unwrap();
    let subject = subject.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_issuer_name(&subject).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    if domain {
        san.dns(name);
    } else {
        san.email(name);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// dnsmasq serving the fixture's records: an address-bound and a domain certificate, an IPKIX
/// URL and a PKIX record that is not DER.
fn start_dnsmasq() -> Dnsmasq {
    let f = fixture();
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 37 % 251) as u8).collect();
    let records = [
        format!(
            "clinic.b.test,37,{}",
            cert_rdata(1, &f.address_cert.to_der().unwrap())
        ),
        format!(
            "c.test,37,{}",
            cert_rdata(1, &f.domain_cert.to_der().unwrap())
        ),
        format!("ipkix.b.test,37,{}", cert_rdata(4, IPKIX_URL.as_bytes())),
        format!("junk.c.test,37,{}", cert_rdata(1, &garbage)),
    ];
    // Local records are served with TTL 0 by default, which would defeat caching.
    let mut args = vec!["--local-ttl=300".to_string()];
    args.extend(records.iter().map(|r| format!("--dns-rr={r}")));
    Dnsmasq::start(&args)
}

fn der(c: &X509) -> Vec<u8> {
    c.to_der().unwrap()
}

#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn address_bound_cert_via_tcp_fallback() {
    let server = start_dnsmasq();
    // The server really truncates this answer over UDP.
    let raw = raw_udp_query(server.addr, "clinic.b.test", TIMEOUT).expect("UDP answer");
    assert!(raw.len() <= 512, "UDP answer of {} bytes", raw.len());
    assert_ne!(raw[2] & 0x02, 0, "TC bit not set on the UDP answer");

    let d = DnsCertDiscovery::new(server.addr, TIMEOUT);
    let found = d.lookup_detailed("Clinic@B.test").await.unwrap();
    assert_eq!(found.source.as_deref(), Some("clinic.b.test"));
    assert_eq!(found.certs.len(), 1);
    assert_eq!(der(&found.certs[0]), der(&fixture().address_cert));
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let s = d.stats();
    assert_eq!((s.udp_queries, s.tcp_fallbacks), (1, 1), "{s:?}");
}

#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn domain_fallback_when_no_address_cert() {
    let server = start_dnsmasq();
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT);
    let found = d.lookup_detailed("other@c.test").await.unwrap();
    assert_eq!(found.source.as_deref(), Some("c.test"));
    assert_eq!(found.certs.len(), 1);
    assert_eq!(der(&found.certs[0]), der(&fixture().domain_cert));
    let s = d.stats();
    // other.c.test (nothing, fits in UDP) then c.test (truncated -> TCP).
    assert_eq!((s.udp_queries, s.tcp_fallbacks), (2, 1), "{s:?}");
}

#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn nothing_found_is_empty_and_negatively_cached() {
    let server = start_dnsmasq();
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT);
    assert!(d.lookup("nobody@none.test").await.unwrap().is_empty());
    let before = d.stats();
    assert_eq!(before.udp_queries, 2);
    assert!(d.lookup("nobody@none.test").await.unwrap().is_empty());
    let after = d.stats();
    assert_eq!(
        after.udp_queries, before.udp_queries,
        "negative answer not cached"
    );
    assert_eq!(after.cache_hits, before.cache_hits + 2);

    // A zero negative TTL disables negative caching.
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT)
        .with_ttls(Duration::from_secs(60), Duration::ZERO);
    d.lookup("nobody@none.test").await.unwrap();
    d.lookup("nobody@none.test").await.unwrap();
    assert_eq!(d.stats().udp_queries, 4);
}

#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn cache_answers_after_server_stops() {
    let mut server = start_dnsmasq();
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT);
    let first = d.lookup("clinic@b.test").await.unwrap();
    assert_eq!(first.len(), 1);
    server.stop();
    // The server is really gone: an uncached name fails now.
    let err = d.lookup("someone@elsewhere.test").await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::Io { .. } | DiscoveryError::Timeout { .. }
        ),
        "{err}"
    );
    let again = d.lookup("clinic@b.test").await.unwrap();
    assert_eq!(der(&again[0]), der(&first[0]));
    assert_eq!(d.stats().cache_hits, 1);

    // max_ttl caps the record TTL (300 s from dnsmasq); zero disables positive caching.
    let server = start_dnsmasq();
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT).with_ttls(Duration::ZERO, Duration::ZERO);
    d.lookup("clinic@b.test").await.unwrap();
    d.lookup("clinic@b.test").await.unwrap();
    assert_eq!(d.stats().udp_queries, 2);
    assert_eq!(d.stats().cache_hits, 0);
}

#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn garbage_and_ipkix_are_skipped_not_fatal() {
    let server = start_dnsmasq();
    let d = DnsCertDiscovery::new(server.addr, TIMEOUT);

    // junk.c.test holds a PKIX record that is not DER: skipped, then the domain cert is used.
    let found = d.lookup_detailed("junk@c.test").await.unwrap();
    assert_eq!(found.source.as_deref(), Some("c.test"));
    assert_eq!(der(&found.certs[0]), der(&fixture().domain_cert));
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert_eq!(found.skipped[0].name, "junk.c.test");
    assert!(
        matches!(found.skipped[0].reason, SkipReason::BadDer(_)),
        "{}",
        found.skipped[0]
    );

    // An IPKIX record is reported, not fetched; b.test itself has nothing.
    let found = d.lookup_detailed("ipkix@b.test").await.unwrap();
    assert!(found.certs.is_empty());
    assert_eq!(found.source, None);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].cert_type, 4);
    assert_eq!(
        found.skipped[0].reason,
        SkipReason::IpkixUrl(IPKIX_URL.to_string())
    );
}

#[tokio::test]
async fn timeout_when_nameserver_is_silent() {
    // Bound but never answers.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let d = DnsCertDiscovery::new(silent.local_addr().unwrap(), Duration::from_millis(300));
    let start = Instant::now();
    let err = d.lookup("clinic@b.test").await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, DiscoveryError::Timeout { .. }), "{err}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // Errors are not cached: the next lookup queries again.
    let _ = d.lookup("clinic@b.test").await.unwrap_err();
    assert_eq!(d.stats().udp_queries, 2);
    assert_eq!(d.stats().cache_hits, 0);
}

#[tokio::test]
async fn invalid_addresses_are_refused_without_querying() {
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let d = DnsCertDiscovery::new(silent.local_addr().unwrap(), Duration::from_millis(100));
    for bad in ["no-at-sign", "@b.test", "x@", "x@bad..test", "x y@b.test"] {
        assert!(
            matches!(d.lookup(bad).await, Err(DiscoveryError::InvalidAddress(_))),
            "{bad}"
        );
    }
    assert_eq!(d.stats().udp_queries, 0);
}

/// A certificate found in DNS only proposes itself: `Agent::recipient_certs` encrypts to it
/// only if it chains to the sending domain's outgoing anchors, and otherwise fails the
/// recipient with "no trusted certificate for ADDRESS" (ETT's "receiving HISP not trusted").
#[cfg_attr(
    missing_dnsmasq,
    ignore = "dnsmasq is not installed: run scripts/install-dnsmasq.sh, then cargo test again"
)]
#[tokio::test]
async fn dns_certificates_must_chain_to_the_senders_outgoing_anchors() {
    use directd::smime::{
        Agent, CertDirectory, Direction, KeyStore, RevocationPolicy, SealOptions, TrustStore,
    };
    let server = start_dnsmasq();
    let agent_trusting = |anchor: &X509| {
        let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
        trust.add_anchor("a.test", Direction::Outgoing, anchor.clone());
        // The same certificate trusted the other way, or by another domain, does not count.
        trust.add_anchor(
            "a.test",
            Direction::Incoming,
            fixture().address_cert.clone(),
        );
        trust.add_anchor(
            "b.test",
            Direction::Outgoing,
            fixture().address_cert.clone(),
        );
        Agent {
            keys: KeyStore::new(),
            trust,
            directory: CertDirectory::from_certs(Vec::new()),
            discovery: Some(DnsCertDiscovery::new(server.addr, TIMEOUT)),
            ldap: None,
            bundles: None,
            seal: SealOptions::default(),
        }
    };

    let stranger = make_cert("someone-else@x.test", false);
    let err = agent_trusting(&stranger)
        .recipient_certs("alice@a.test", "clinic@b.test")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no trusted certificate for clinic@b.test");

    let found = agent_trusting(&fixture().address_cert)
        .recipient_certs("alice@a.test", "clinic@b.test")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(der(&found[0]), der(&fixture().address_cert));
}
