//! The `directd run` process with a trust bundle by URL: the first run fetches it and exports
//! its metrics; a second run, whose refresh gets something that is not a bundle, keeps running,
//! says so in its log, and keeps the last good anchors from disk.
mod support;

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::http::{HttpServer, Reply};
use support::pki::{openssl, p, pki, write_pem};
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

fn scrape(port: u16) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    Some(out)
}

/// Polls until `cond` holds on the metrics text or the log, or 20 s pass.
fn wait_for(
    port: u16,
    log: &std::path::Path,
    cond: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = scrape(port).unwrap_or_default();
        let logs = std::fs::read_to_string(log).unwrap_or_default();
        if cond(&metrics, &logs) || Instant::now() > deadline {
            return (metrics, logs);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

// Multi-threaded: the test thread blocks while polling, and the sandbox HISP must keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_daemon_and_the_last_good_anchors() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let d = env.dir.path();
    let pki = pki();

    // A DirectTrust-shaped bundle: certs-only PKCS#7 holding the root, CMS-signed.
    let anchors = d.join("anchors.pem");
    std::fs::write(&anchors, pki.root.cert.to_pem().unwrap()).unwrap();
    let inner = d.join("inner.p7b");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        p(&anchors),
        "-outform",
        "DER",
        "-out",
        p(&inner),
    ]);
    let (signer, signer_key) = write_pem(d, "bundle-signer", &pki.a_domain);
    let bundle = d.join("bundle.p7m");
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
        p(&inner),
        "-signer",
        p(&signer),
        "-inkey",
        p(&signer_key),
        "-out",
        p(&bundle),
    ]);
    let http = HttpServer::start();
    http.set("/direct.p7b", Reply::Body(std::fs::read(&bundle).unwrap()));
    let url = http.url("/direct.p7b");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = d.join("directd.toml");
    let mut toml = env.lab.daemon_toml(
        &env.store_path,
        &[(A, PW)],
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
    );
    // Our own certificates, for their expiry gauges: an S/MIME identity, and a TLS client
    // certificate the daemon presents to the HISP (which does not ask for it here).
    let keys = d.join("keys");
    std::fs::create_dir(&keys).unwrap();
    write_pem(&keys, "a", &pki.a_domain);
    toml = toml.replace(
        "[hisp]\n",
        &format!(
            "[hisp]\nclient_cert = {:?}\nclient_key = {:?}\n",
            env.lab.client_cert, env.lab.client_key
        ),
    );
    toml.push_str(&format!(
        "\n[smime]\nkeys_dir = {keys:?}\n[smime.network]\ncache_dir = {:?}\n[[smime.bundles]]\nurl = {url:?}\ndomain = \"b.example\"\nrefresh = \"1h\"\nsigner = {signer:?}\n",
        d.join("cache")
    ));
    write_private(&config, toml).unwrap();
    let age_line =
        format!("directd_trust_bundle_age_seconds{{url=\"{url}\",domain=\"b.example\"}}");
    let expiry_line = "subject=\"CN=Test Root, O=directd test\"}";

    let log = d.join("run1.log");
    let first = spawn(&config, &log);
    let (metrics, logs) = wait_for(port, &log, |m, _| m.contains(&age_line));
    stop(first);
    assert!(
        metrics.contains(&age_line),
        "metrics:\n{metrics}\nlog:\n{logs}"
    );
    assert!(metrics.contains(expiry_line), "{metrics}");
    assert_eq!(http.hits("/direct.p7b"), 1);
    let own = |kind: &str, cert: &openssl::x509::X509| {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "directd_certificate_expiry_timestamp_seconds{{kind=\"{kind}\""
                ))
            })
            .unwrap_or_else(|| panic!("no {kind} gauge:\n{metrics}"));
        let value: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let epoch = openssl::asn1::Asn1Time::from_unix(0).unwrap();
        let d = epoch.diff(cert.not_after()).unwrap();
        assert_eq!(
            value,
            i64::from(d.days) * 86400 + i64::from(d.secs),
            "{line}"
        );
        line.to_string()
    };
    let identity = own("smime_identity", &pki.a_domain.cert);
    assert!(identity.contains("name=\"a.example\""), "{identity}");
    let client =
        openssl::x509::X509::from_pem(&std::fs::read(&env.lab.client_cert).unwrap()).unwrap();
    let tls = own("tls_client", &client);
    assert!(tls.contains(&format!("name=\"{A}\"")), "{tls}");

    // The URL now serves an error page: the refresh fails, loudly, and nothing else changes.
    http.set(
        "/direct.p7b",
        Reply::Body(b"<html>maintenance</html>".to_vec()),
    );
    let log = d.join("run2.log");
    let mut second = spawn(&config, &log);
    let (metrics, logs) = wait_for(port, &log, |m, l| {
        l.contains("trust bundle refresh failed") && m.contains(&age_line)
    });
    assert!(
        second.try_wait().unwrap().is_none(),
        "the daemon is still running:\n{logs}"
    );
    stop(second);
    assert!(logs.contains("trust bundle refresh failed"), "{logs}");
    assert!(logs.contains("not a PKCS#7 bundle"), "{logs}");
    assert!(
        metrics.contains(&age_line) && metrics.contains(expiry_line),
        "the last good bundle from disk is still in force:\n{metrics}"
    );
    assert_eq!(http.hits("/direct.p7b"), 2);
}
