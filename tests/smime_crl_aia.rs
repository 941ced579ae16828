//! Revocation from CRL Distribution Points and missing intermediates from AIA caIssuers,
//! fetched over HTTP from a real server on a loopback port (`support/http.rs`) with
//! directd's own client.
//!
//! DCDT / ETT cases covered here:
//! - D17 (revoked certificate): `d17_revoked_signer_is_rejected_on_receive`,
//!   `d17_revoked_recipient_is_not_used_on_send`.
//! - D18 (intermediate only through AIA): `d18_missing_intermediate_is_fetched_through_aia`,
//!   `d18_p7c_issuer_bundle`.
//! - ETT BAD_AIA: `bad_aia_is_never_trusted` (unreachable, rogue issuer, AIA loop).
//! - ETT CERT_WITH_NO_CRL: `require_refuses_without_a_crl_and_best_effort_accepts`.
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use directd::smime::fetch::{FetchError, FetchLimits, HttpFetcher};
use directd::smime::net::NetTrust;
use directd::smime::{
    seal, Agent, CertDirectory, Direction, RevocationPolicy, SealOptions, SmimeError, TrustStore,
};
use support::http::{HttpServer, Reply};
use support::pki::{build_with, crl, openssl, pki, rsa, CertKey, San, Variant, INNER};

fn limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        total_timeout: Duration::from_secs(1),
        max_bytes: 64 * 1024,
        max_redirects: 3,
    }
}

fn net(dir: Option<&std::path::Path>) -> Arc<NetTrust> {
    let fetcher = HttpFetcher::new(limits()).unwrap();
    Arc::new(NetTrust::new(fetcher, dir.map(|d| d.to_path_buf())))
}

/// An end entity issued by the test intermediate with the given CRL DP / AIA URLs.
fn ee(cn: &str, san: San<'_>, crl_url: Option<String>, aia_url: Option<String>) -> CertKey {
    ee_under(cn, san, &pki().inter, crl_url, aia_url)
}

fn ee_under(
    cn: &str,
    san: San<'_>,
    issuer: &CertKey,
    crl_url: Option<String>,
    aia_url: Option<String>,
) -> CertKey {
    let variant = Variant {
        crl_url,
        aia_url,
        ..Variant::default()
    };
    build_with(
        cn,
        rsa(2048),
        Some(issuer),
        false,
        Some(san),
        (-1, 365),
        &variant,
    )
}

/// bob's side of b.example: trusts the test root for incoming mail; the root's own
/// certificates are covered by a local CRL so `require` only depends on the fetched one.
fn bob_agent(policy: RevocationPolicy, net: &Arc<NetTrust>) -> Agent {
    let pki = pki();
    let mut trust = TrustStore::new(policy);
    trust.add_anchor("b.example", Direction::Incoming, pki.root.cert.clone());
    trust.add_crl(crl(&pki.root, &[], 7));
    trust.set_network(net.clone());
    Agent {
        keys: pki.bob_keys(),
        trust,
        directory: CertDirectory::from_certs(Vec::new()),
        discovery: None,
        ldap: None,
        bundles: None,
        seal: SealOptions::default(),
    }
}

/// A message from `signer` (alice@a.example) to bob, carrying `chain` as intermediates.
fn from_alice(signer: &CertKey, chain: &[&CertKey]) -> Vec<u8> {
    seal(
        INNER.as_bytes(),
        &signer.identity(chain),
        std::slice::from_ref(&pki().bob.cert),
        &SealOptions::default(),
    )
    .unwrap()
}

fn der(c: &CertKey) -> Vec<u8> {
    c.cert.to_der().unwrap()
}

#[tokio::test]
async fn d17_revoked_signer_is_rejected_on_receive() {
    let pki = pki();
    let http = HttpServer::start();
    let url = http.url("/inter.crl");
    let revoked = ee(
        "alice revoked",
        San::Email("alice@a.example"),
        Some(url.clone()),
        None,
    );
    let good = ee(
        "alice good",
        San::Email("alice@a.example"),
        Some(url.clone()),
        None,
    );
    http.set(
        "/inter.crl",
        Reply::Body(crl(&pki.inter, &[&revoked], 7).to_der().unwrap()),
    );
    let net = net(None);
    for policy in [RevocationPolicy::BestEffort, RevocationPolicy::Require] {
        let agent = bob_agent(policy, &net);
        let err = agent
            .open(&from_alice(&revoked, &[&pki.inter]), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SmimeError::Revoked { subject } if subject.contains("alice revoked")),
            "{policy:?}: {err}"
        );
        let opened = agent
            .open(&from_alice(&good, &[&pki.inter]), None)
            .await
            .unwrap();
        assert_eq!(opened.inner, INNER.as_bytes());
    }
    assert_eq!(
        http.hits("/inter.crl"),
        1,
        "the CRL is cached until its nextUpdate"
    );
}

#[tokio::test]
async fn d17_revoked_recipient_is_not_used_on_send() {
    let pki = pki();
    let http = HttpServer::start();
    let url = http.url("/inter.crl");
    let bob_revoked = ee(
        "bob revoked",
        San::Email("bob@b.example"),
        Some(url.clone()),
        None,
    );
    let bob_good = ee(
        "bob good",
        San::Email("bob@b.example"),
        Some(url.clone()),
        None,
    );
    http.set(
        "/inter.crl",
        Reply::Body(crl(&pki.inter, &[&bob_revoked], 7).to_der().unwrap()),
    );
    let net = net(None);
    let sender = |certs: Vec<openssl::x509::X509>| {
        let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
        trust.add_anchor("a.example", Direction::Outgoing, pki.root.cert.clone());
        trust.set_network(net.clone());
        Agent {
            keys: Default::default(),
            trust,
            directory: CertDirectory::from_certs(certs),
            discovery: None,
            ldap: None,
            bundles: None,
            seal: SealOptions::default(),
        }
    };
    let both = sender(vec![
        bob_revoked.cert.clone(),
        bob_good.cert.clone(),
        pki.inter.cert.clone(),
    ]);
    let chosen = both
        .recipient_certs("alice@a.example", "bob@b.example")
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1, "only the unrevoked certificate is used");
    assert_eq!(chosen[0].to_der().unwrap(), der(&bob_good));

    let only_revoked = sender(vec![bob_revoked.cert.clone(), pki.inter.cert.clone()]);
    let err = only_revoked
        .recipient_certs("alice@a.example", "bob@b.example")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmimeError::NoTrustedRecipientCert { .. }),
        "{err}"
    );
    assert_eq!(http.hits("/inter.crl"), 1);
}

/// ETT CERT_WITH_NO_CRL: the distribution point answers 404.
#[tokio::test]
async fn require_refuses_without_a_crl_and_best_effort_accepts() {
    let pki = pki();
    let http = HttpServer::start();
    let alice = ee(
        "alice no crl",
        San::Email("alice@a.example"),
        Some(http.url("/missing.crl")),
        None,
    );
    let msg = from_alice(&alice, &[&pki.inter]);
    let net = net(None);
    let err = bob_agent(RevocationPolicy::Require, &net)
        .open(&msg, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SmimeError::CrlUnavailable { reason, .. } if reason.contains("HTTP 404")),
        "{err}"
    );
    bob_agent(RevocationPolicy::BestEffort, &net)
        .open(&msg, None)
        .await
        .expect("best-effort accepts when no CRL can be had");
    assert_eq!(
        http.hits("/missing.crl"),
        1,
        "a failed URL is not retried on every message"
    );
}

/// What a case expects of the refusal.
type Expect = fn(&SmimeError) -> bool;

/// Each bad CRL is its own error under `require`, and only a warning under `best-effort`;
/// none of them stops the agent, and none takes longer than the configured bounds.
#[tokio::test]
async fn bad_crls_are_specific_errors() {
    let pki = pki();
    let http = HttpServer::start();
    // The intermediate's name with another key: a CRL that claims to be the issuer's.
    let forged = CertKey {
        cert: pki.inter.cert.clone(),
        key: rsa(2048),
    };
    let cases: Vec<(&str, Reply, Expect)> = vec![
        (
            "/garbage.crl",
            Reply::Body(b"<html>not a CRL</html>".to_vec()),
            |e| matches!(e, SmimeError::CrlUnreadable { .. }),
        ),
        (
            "/forged.crl",
            Reply::Body(crl(&forged, &[], 7).to_der().unwrap()),
            |e| matches!(e, SmimeError::CrlNotVerified { .. }),
        ),
        (
            "/expired.crl",
            Reply::Body(crl(&pki.inter, &[], -1).to_der().unwrap()),
            |e| matches!(e, SmimeError::CrlExpired { .. }),
        ),
        (
            "/huge.crl",
            Reply::Body(vec![0x30; 200 * 1024]),
            |e| matches!(e, SmimeError::CrlUnavailable { reason, .. } if reason.contains("larger than")),
        ),
        (
            "/endless.crl",
            Reply::Endless,
            |e| matches!(e, SmimeError::CrlUnavailable { reason, .. } if reason.contains("larger than")),
        ),
        (
            "/slow.crl",
            Reply::Slow(
                Duration::from_secs(5),
                crl(&pki.inter, &[], 7).to_der().unwrap(),
            ),
            |e| matches!(e, SmimeError::CrlUnavailable { reason, .. } if reason.contains("no answer within")),
        ),
    ];
    let net = net(None);
    for (path, reply, expected) in cases {
        http.set(path, reply);
        let alice = ee(
            "alice",
            San::Email("alice@a.example"),
            Some(http.url(path)),
            None,
        );
        let msg = from_alice(&alice, &[&pki.inter]);
        let started = Instant::now();
        let err = bob_agent(RevocationPolicy::Require, &net)
            .open(&msg, None)
            .await
            .unwrap_err();
        assert!(expected(&err), "{path}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{path}: took {:?}",
            started.elapsed()
        );
        bob_agent(RevocationPolicy::BestEffort, &net)
            .open(&msg, None)
            .await
            .unwrap_or_else(|e| panic!("{path}: best-effort refused: {e}"));
    }
}

#[tokio::test]
async fn fetched_crls_survive_a_restart() {
    let pki = pki();
    let http = HttpServer::start();
    let alice = ee(
        "alice",
        San::Email("alice@a.example"),
        Some(http.url("/inter.crl")),
        None,
    );
    http.set(
        "/inter.crl",
        Reply::Body(crl(&pki.inter, &[], 7).to_der().unwrap()),
    );
    let state = tempfile::tempdir().unwrap();
    let msg = from_alice(&alice, &[&pki.inter]);
    let first = net(Some(state.path()));
    bob_agent(RevocationPolicy::Require, &first)
        .open(&msg, None)
        .await
        .unwrap();
    assert_eq!(http.hits("/inter.crl"), 1);

    // A new process: the server is gone, the copy on disk is still current.
    http.remove("/inter.crl");
    let restarted = net(Some(state.path()));
    bob_agent(RevocationPolicy::Require, &restarted)
        .open(&msg, None)
        .await
        .expect("the CRL kept on disk is used");
    assert_eq!(http.hits("/inter.crl"), 1, "no refetch after a restart");
    assert_eq!(restarted.stats().disk_loads, 1);
    assert_eq!(restarted.stats().fetches, 0);
}

/// D18: the signature carries only the end entity; the intermediate is at its AIA caIssuers.
#[tokio::test]
async fn d18_missing_intermediate_is_fetched_through_aia() {
    let pki = pki();
    let http = HttpServer::start();
    http.set("/inter.der", Reply::Body(der(&pki.inter)));
    let alice = ee(
        "alice aia",
        San::Email("alice@a.example"),
        None,
        Some(http.url("/inter.der")),
    );
    let msg = from_alice(&alice, &[]);

    // Without fetching, the chain stops short of the root.
    let mut local = TrustStore::new(RevocationPolicy::Off);
    local.add_anchor("b.example", Direction::Incoming, pki.root.cert.clone());
    let err = directd::smime::open(&msg, &pki.bob_keys(), &local, None).unwrap_err();
    assert!(matches!(err, SmimeError::Untrusted { .. }), "{err}");

    let net = net(None);
    let agent = bob_agent(RevocationPolicy::BestEffort, &net);
    let opened = agent.open(&msg, None).await.unwrap();
    let chain = &opened.verdict.signers[0].chain;
    assert!(
        chain.iter().any(|s| s.contains("Test Intermediate")),
        "{chain:?}"
    );
    agent.open(&msg, None).await.unwrap();
    assert_eq!(http.hits("/inter.der"), 1, "the issuer is cached");

    // Handed over (decoded in place of its text, as `directd inspect` does), the message is
    // opened again after the fetch its chain asked for, by an agent with nothing cached.
    let fresh = bob_agent(RevocationPolicy::BestEffort, &crate::net(None));
    let opened = fresh.open_owned(msg.clone(), None).await.unwrap();
    assert_eq!(opened.inner, INNER.as_bytes());
    assert_eq!(http.hits("/inter.der"), 2, "fetched for the fresh agent");
}

/// D18 with the issuer published as a certs-only PKCS#7 (`.p7c`), as many CAs do.
#[tokio::test]
async fn d18_p7c_issuer_bundle() {
    let pki = pki();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("inter.pem");
    std::fs::write(&pem, pki.inter.cert.to_pem().unwrap()).unwrap();
    let p7c = openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        pem.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    http.set("/inter.p7c", Reply::Body(p7c));
    let alice = ee(
        "alice p7c",
        San::Email("alice@a.example"),
        None,
        Some(http.url("/inter.p7c")),
    );
    bob_agent(RevocationPolicy::BestEffort, &net(None))
        .open(&from_alice(&alice, &[]), None)
        .await
        .unwrap();
    assert_eq!(http.hits("/inter.p7c"), 1);
}

/// ETT BAD_AIA: what AIA yields is chain-building material only; it never becomes an anchor.
#[tokio::test]
async fn bad_aia_is_never_trusted() {
    let pki = pki();
    let http = HttpServer::start();
    let net = net(None);
    let agent = bob_agent(RevocationPolicy::BestEffort, &net);

    // Unreachable issuer: refused, and the reason names AIA and the failure.
    let dead = ee(
        "alice dead aia",
        San::Email("alice@a.example"),
        None,
        Some(http.url("/gone.der")),
    );
    let err = agent.open(&from_alice(&dead, &[]), None).await.unwrap_err();
    assert!(
        matches!(&err, SmimeError::Untrusted { reason, .. }
            if reason.contains("Authority Information Access") && reason.contains("HTTP 404")),
        "{err}"
    );

    // A rogue intermediate and its rogue root, both served through AIA: fetched, not trusted.
    let rogue_inter = build_with(
        "Rogue Intermediate",
        rsa(2048),
        Some(&pki.rogue_root),
        true,
        None,
        (-1, 365),
        &Variant {
            aia_url: Some(http.url("/rogue-root.der")),
            ..Variant::default()
        },
    );
    http.set("/rogue-inter.der", Reply::Body(der(&rogue_inter)));
    http.set("/rogue-root.der", Reply::Body(der(&pki.rogue_root)));
    let rogue = ee_under(
        "alice rogue aia",
        San::Email("alice@a.example"),
        &rogue_inter,
        None,
        Some(http.url("/rogue-inter.der")),
    );
    let err = agent
        .open(&from_alice(&rogue, &[]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SmimeError::Untrusted { .. }), "{err}");
    assert_eq!(http.hits("/rogue-inter.der"), 1);
    assert_eq!(http.hits("/rogue-root.der"), 1);

    // An AIA loop: A's issuer is at /loop-b, whose issuer is at /loop-a, which is A again.
    let loop_key_a = rsa(2048);
    let placeholder = build_with(
        "Loop B",
        rsa(2048),
        None,
        true,
        None,
        (-1, 365),
        &Variant::default(),
    );
    let loop_a = build_with(
        "Loop A",
        loop_key_a,
        Some(&placeholder),
        true,
        None,
        (-1, 365),
        &Variant {
            aia_url: Some(http.url("/loop-b.der")),
            ..Variant::default()
        },
    );
    let loop_b = build_with(
        "Loop B",
        placeholder.key.clone(),
        Some(&loop_a),
        true,
        None,
        (-1, 365),
        &Variant {
            aia_url: Some(http.url("/loop-a.der")),
            ..Variant::default()
        },
    );
    http.set("/loop-a.der", Reply::Body(der(&loop_a)));
    http.set("/loop-b.der", Reply::Body(der(&loop_b)));
    let looped = ee_under(
        "alice loop",
        San::Email("alice@a.example"),
        &loop_a,
        None,
        Some(http.url("/loop-a.der")),
    );
    let started = Instant::now();
    let err = agent
        .open(&from_alice(&looped, &[]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SmimeError::Untrusted { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(http.hits("/loop-a.der"), 1, "each URL of the loop once");
    assert_eq!(http.hits("/loop-b.der"), 1);
}

/// The HTTP client's own bounds (issue part 6): scheme, status, redirects, size, time.
#[tokio::test]
async fn fetcher_bounds() {
    let http = HttpServer::start();
    let fetcher = HttpFetcher::new(limits()).unwrap();
    http.set("/ok", Reply::Body(b"hello".to_vec()));
    assert_eq!(fetcher.get(&http.url("/ok")).await.unwrap(), b"hello");

    http.set("/hop", Reply::Redirect(http.url("/ok")));
    assert_eq!(fetcher.get(&http.url("/hop")).await.unwrap(), b"hello");

    for i in 0..6 {
        http.set(
            &format!("/r{i}"),
            Reply::Redirect(http.url(&format!("/r{}", i + 1))),
        );
    }
    let err = fetcher.get(&http.url("/r0")).await.unwrap_err();
    assert!(matches!(err, FetchError::Redirect { .. }), "{err}");
    assert!(http.hits("/r5") == 0, "stopped after the redirect limit");

    http.set("/to-file", Reply::Redirect("file:///etc/passwd".into()));
    let err = fetcher.get(&http.url("/to-file")).await.unwrap_err();
    assert!(matches!(err, FetchError::Redirect { .. }), "{err}");

    let err = fetcher.get("ftp://127.0.0.1/x").await.unwrap_err();
    assert!(matches!(err, FetchError::Scheme { .. }), "{err}");

    http.set("/boom", Reply::Status(500));
    let err = fetcher.get(&http.url("/boom")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 500, .. }),
        "{err}"
    );

    http.set("/big", Reply::Body(vec![b'x'; 64 * 1024 + 1]));
    let err = fetcher.get(&http.url("/big")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    http.set("/endless", Reply::Endless);
    let err = fetcher.get(&http.url("/endless")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");

    http.set(
        "/slow",
        Reply::Slow(Duration::from_secs(5), b"late".to_vec()),
    );
    let started = Instant::now();
    let err = fetcher.get(&http.url("/slow")).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = fetcher
        .get(&format!("http://127.0.0.1:{port}/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Transport { .. }), "{err}");
}
