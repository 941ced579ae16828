//! Trust bundles from a URL (`[[smime.bundles]]`), served by the loopback HTTP server in the
//! test harness and made with the openssl command line as DirectTrust makes them (a certs-only
//! PKCS#7, CMS-signed around it). Refresh, signature check, atomic swap, the last good copy on
//! disk, every bad bundle a specific error that leaves the anchors in force, and the daemon
//! loop with its metrics.
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use directd::smime::bundles::{BundleError, BundleSource, BundleUpdater};
use directd::smime::fetch::{FetchError, FetchLimits, HttpFetcher};
use directd::smime::{
    Agent, CertDirectory, Direction, KeyStore, RevocationPolicy, SealOptions, TrustStore,
};
use support::http::{HttpServer, Reply};
use support::pki::{openssl, p, pki, write_pem, CertKey};

/// A certs-only PKCS#7 of `certs` (none: an empty bundle), DER.
fn p7b(dir: &Path, name: &str, certs: &[&CertKey]) -> Vec<u8> {
    let out = dir.join(format!("{name}.p7b"));
    let mut args = vec!["crl2pkcs7", "-nocrl", "-outform", "DER", "-out", p(&out)];
    let pem = dir.join(format!("{name}.pem"));
    if !certs.is_empty() {
        let text: Vec<u8> = certs
            .iter()
            .flat_map(|c| c.cert.to_pem().unwrap())
            .collect();
        std::fs::write(&pem, text).unwrap();
        args.extend(["-certfile", p(&pem)]);
    }
    openssl(&args);
    std::fs::read(out).unwrap()
}

/// `inner` CMS-signed by `signer` (the DirectTrust form).
fn signed(dir: &Path, name: &str, inner: &[u8], signer: &CertKey) -> Vec<u8> {
    let input = dir.join(format!("{name}.in"));
    std::fs::write(&input, inner).unwrap();
    let (cert, key) = write_pem(dir, &format!("{name}-signer"), signer);
    let out = dir.join(format!("{name}.p7m"));
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-md",
        "sha256",
        "-in",
        p(&input),
        "-signer",
        p(&cert),
        "-inkey",
        p(&key),
        "-out",
        p(&out),
    ]);
    std::fs::read(out).unwrap()
}

fn updater(http: &HttpServer, state: &Path, refresh: Duration) -> BundleUpdater {
    let fetcher = HttpFetcher::new(FetchLimits {
        total_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        max_bytes: 64 * 1024,
        ..FetchLimits::default()
    })
    .unwrap();
    let source = BundleSource {
        url: http.url("/direct.p7b"),
        domain: "B.example".into(),
        directions: vec![Direction::Incoming],
        refresh,
        signer: Some(pki().a_domain.cert.clone()),
    };
    BundleUpdater::new(vec![source], fetcher, Some(state.join("bundles")))
}

fn subjects(t: &TrustStore) -> Vec<String> {
    t.anchors("b.example", Direction::Incoming)
        .iter()
        .map(directd::smime::certs::subject_string)
        .collect()
}

/// What a case expects of the refusal.
type Expect = fn(&BundleError) -> bool;

#[tokio::test]
async fn refresh_verifies_swaps_and_keeps_the_last_good_bundle() {
    let pki = pki();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let u = updater(&http, &state, Duration::from_secs(3600));
    let src = &u.sources[0];
    let trust = TrustStore::new(RevocationPolicy::Off);

    let with_root = signed(d, "root", &p7b(d, "root", &[&pki.root]), &pki.a_domain);
    http.set("/direct.p7b", Reply::Body(with_root));
    assert_eq!(u.refresh(&trust, src).await.unwrap(), 1);
    assert_eq!(subjects(&trust), ["CN=Test Root, O=directd test"]);
    assert!(trust
        .verify_chain(
            "b.example",
            Direction::Incoming,
            &pki.bob.cert,
            std::slice::from_ref(&pki.inter.cert)
        )
        .is_ok());

    // The next good bundle replaces the old one whole.
    let with_inter = signed(d, "inter", &p7b(d, "inter", &[&pki.inter]), &pki.a_domain);
    http.set("/direct.p7b", Reply::Body(with_inter));
    u.refresh(&trust, src).await.unwrap();
    assert_eq!(subjects(&trust), ["CN=Test Intermediate, O=directd test"]);

    // Every bad bundle is its own error, and the anchors in force stay.
    let wrong_signer = signed(
        d,
        "wrong",
        &p7b(d, "wrong", &[&pki.rogue_root]),
        &pki.b_domain,
    );
    let empty = signed(d, "empty", &p7b(d, "empty", &[]), &pki.a_domain);
    let unsigned = p7b(d, "unsigned", &[&pki.rogue_root]);
    let cases: Vec<(Reply, Expect)> = vec![
        (Reply::Status(404), |e| {
            matches!(
                e,
                BundleError::Fetch(FetchError::Status { status: 404, .. })
            )
        }),
        (Reply::Body(b"<html>maintenance</html>".to_vec()), |e| {
            matches!(e, BundleError::NotPkcs7 { .. })
        }),
        (Reply::Body(wrong_signer), |e| {
            matches!(e, BundleError::BadSignature { .. })
        }),
        (Reply::Body(unsigned), |e| {
            matches!(e, BundleError::Unsigned { .. })
        }),
        (Reply::Body(empty), |e| {
            matches!(e, BundleError::NoAnchors { .. })
        }),
        (Reply::Body(vec![0x30; 100 * 1024]), |e| {
            matches!(e, BundleError::Fetch(FetchError::TooLarge { .. }))
        }),
    ];
    for (reply, expected) in cases {
        http.set("/direct.p7b", reply);
        let err = u.refresh(&trust, src).await.unwrap_err();
        assert!(expected(&err), "{err}");
        assert_eq!(
            subjects(&trust),
            ["CN=Test Intermediate, O=directd test"],
            "after {err}"
        );
    }

    // A restart while the URL is down: the last good copy from disk.
    http.set("/direct.p7b", Reply::Status(503));
    let restarted = TrustStore::new(RevocationPolicy::Off);
    let u2 = updater(&http, &state, Duration::from_secs(3600));
    assert_eq!(u2.load_last_good(&restarted), 1);
    assert_eq!(
        subjects(&restarted),
        ["CN=Test Intermediate, O=directd test"]
    );
}

#[tokio::test]
async fn the_daemon_loop_refreshes_on_the_interval_and_reports_metrics() {
    let pki = pki();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    http.set(
        "/direct.p7b",
        Reply::Body(signed(
            d,
            "root",
            &p7b(d, "root", &[&pki.root]),
            &pki.a_domain,
        )),
    );
    let agent = Arc::new(Agent {
        keys: KeyStore::new(),
        trust: TrustStore::new(RevocationPolicy::Off),
        directory: CertDirectory::from_certs(Vec::new()),
        discovery: None,
        ldap: None,
        bundles: Some(Arc::new(updater(
            &http,
            &d.join("state"),
            Duration::from_millis(300),
        ))),
        seal: SealOptions::default(),
    });
    let reports = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let seen = reports.clone();
    let task = tokio::spawn(directd::smime::bundles::run(
        agent.clone(),
        async move {
            let _ = stopped.await;
        },
        move |status| seen.lock().unwrap().push(status),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http.hits("/direct.p7b") < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(http.hits("/direct.p7b") >= 3, "refreshed on its interval");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
    assert_eq!(subjects(&agent.trust), ["CN=Test Root, O=directd test"]);

    let last = reports.lock().unwrap().last().cloned().expect("reported");
    let metrics = directd::daemon::metrics::Metrics::default();
    metrics.set_bundles(last);
    let text = metrics.render();
    let url = http.url("/direct.p7b");
    assert!(
        text.contains(&format!(
            "directd_trust_bundle_age_seconds{{url=\"{url}\",domain=\"b.example\"}} "
        )),
        "{text}"
    );
    let expiry = {
        let epoch = openssl::asn1::Asn1Time::from_unix(0).unwrap();
        let diff = epoch.diff(pki.root.cert.not_after()).unwrap();
        i64::from(diff.days) * 86400 + i64::from(diff.secs)
    };
    assert!(
        text.contains(&format!(
            "directd_trust_anchor_expiry_timestamp_seconds{{url=\"{url}\",subject=\"CN=Test Root, O=directd test\"}} {expiry}\n"
        )),
        "{text}"
    );
}
