//! DNS CERT discovery against a private dnsmasq on 127.0.0.1 (install: scripts/install-dnsmasq.sh).
//!
//! Each test starts its own dnsmasq on a free port, serving CERT (37) records with `--dns-rr`.
//! The RSA-2048 certificates make the answers exceed 512 bytes, so UDP answers come back
//! truncated and the client has to retry over TCP.

use std::collections::HashSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use directd::smime::discovery::{DiscoveryError, DnsCertDiscovery, SkipReason};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

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

use directd::util::hex;

/// CERT RDATA: type, key tag 0, algorithm 0, data.
fn cert_rdata(cert_type: u16, data: &[u8]) -> String {
    let mut rdata = cert_type.to_be_bytes().to_vec();
    rdata.extend_from_slice(&[0, 0, 0]);
    rdata.extend_from_slice(data);
    hex(&rdata)
}

/// A private dnsmasq; killed on drop.
struct Dnsmasq {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
}

impl Dnsmasq {
    fn start() -> Dnsmasq {
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
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            // A per-instance token at ready.test proves that the instance answering the readiness
            // probe is this one (not another test's dnsmasq that got the same port).
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let token = format!(
                "ready-{}-{}-{port}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let log = std::env::temp_dir().join(format!(
                "dnscert-dnsmasq-{}-{port}-{attempt}.log",
                std::process::id()
            ));
            let mut cmd = Command::new(dnsmasq_binary());
            cmd.args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                // Answer for *.test locally (NXDOMAIN/NODATA) instead of trying upstreams.
                "--local=/test/",
                // Local records are served with TTL 0 by default, which would defeat caching.
                "--local-ttl=300",
                "--cache-size=0",
            ]);
            for r in &records {
                cmd.arg(format!("--dns-rr={r}"));
            }
            cmd.arg(format!(
                "--dns-rr=ready.test,37,{}",
                cert_rdata(3, token.as_bytes())
            ));
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("spawn dnsmasq (run scripts/install-dnsmasq.sh)");
            let mut guard = Dnsmasq {
                child: Some(child),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                log,
            };
            if guard.wait_ready(token.as_bytes()) {
                return guard;
            }
            last_log = std::fs::read_to_string(&guard.log).unwrap_or_default();
            drop(guard); // port taken by someone else in between, or similar: retry
        }
        panic!("dnsmasq did not come up; last log:\n{last_log}");
    }

    /// Polls with real queries until dnsmasq answers (no fixed sleeps).
    fn wait_ready(&mut self, token: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("dnsmasq exited early: {status}");
                return false;
            }
            if let Some(answer) = raw_udp_query(self.addr, "ready.test", Duration::from_millis(200))
            {
                if answer.windows(token.len()).any(|w| w == token) {
                    return true;
                }
            }
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dnsmasq_binary() -> PathBuf {
    for p in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    "dnsmasq".into()
}

/// A port free on both UDP and TCP at 127.0.0.1, released before returning, and never handed
/// out twice in this process (tests run in parallel). Something else may still grab it before
/// dnsmasq binds it; `start` then sees dnsmasq exit and retries with another port.
fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && HANDED_OUT
                .lock()
                .unwrap()
                .get_or_insert_with(HashSet::new)
                .insert(port)
        {
            return port;
        }
    }
}

/// Sends one CERT query over UDP (no EDNS) and returns the raw response, if any arrives.
fn raw_udp_query(server: SocketAddr, name: &str, wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    sock.connect(server).ok()?;
    sock.set_read_timeout(Some(wait)).ok()?;
    let id: u16 = 0x4242;
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 37, 0, 1]);
    sock.send(&q).ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
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
    let server = Dnsmasq::start();
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
    let server = Dnsmasq::start();
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
    let server = Dnsmasq::start();
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
    let mut server = Dnsmasq::start();
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
    let server = Dnsmasq::start();
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
    let server = Dnsmasq::start();
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
    let server = Dnsmasq::start();
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
