//! The sandbox driven by a second client written from the protocol notes (raw lines and counted
//! bytes, not directd's `PhiMailClient`): send, check, show, acknowledge, redelivery, status,
//! errors, LOGOUT/AUTH switching, strict framing, directory lookup, mutual TLS.

mod support;

use std::sync::Arc;

use directd::sandbox::{Group, RemoteBehaviour, SandboxConfig};
use support::raw::Raw;
use support::sandbox::*;

struct Hisp {
    env: TestEnv,
    tls: Arc<rustls::ClientConfig>,
    addr: String,
}

impl Hisp {
    async fn start(config: SandboxConfig) -> Hisp {
        let env = TestEnv::start(config).await;
        let tls = directd::tls::client_config(&env.lab.ca_file, None).unwrap();
        let addr = env.lab.sandbox.addr().to_string();
        Hisp { env, tls, addr }
    }

    async fn login(&self, user: &str) -> Raw {
        Raw::login(&self.addr, self.tls.clone(), user, PW).await
    }

    async fn connect(&self) -> Raw {
        Raw::connect(&self.addr, self.tls.clone()).await
    }
}

/// Reads a `SHOW 0` block after its OK: headers, body type, body, attachment listing.
async fn show0(raw: &mut Raw) -> (Vec<String>, String, Vec<u8>, Vec<[String; 3]>) {
    assert_eq!(raw.ask("SHOW 0").await, "OK");
    let mut headers = Vec::new();
    loop {
        let h = raw.line().await;
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    let body_type = raw.line().await;
    let len: usize = raw.line().await.parse().unwrap();
    let body = raw.bytes(len).await;
    let n: usize = raw.line().await.parse().unwrap();
    let mut listing = Vec::new();
    for _ in 0..n {
        listing.push([raw.line().await, raw.line().await, raw.line().await]);
    }
    (headers, body_type, body, listing)
}

#[tokio::test]
async fn send_receive_acknowledge_and_status_byte_for_byte() {
    let h = Hisp::start(sandbox_config(&[A, B, C])).await;
    let mut a = h.login(A).await;
    assert_eq!(a.ask("CLEAR").await, "OK");
    assert_eq!(a.ask(&format!("TO {B}")).await, "OK");
    let info = a.line().await;
    assert!(info.starts_with(B), "{info:?}");
    assert_eq!(a.ask("SUBJECT Referral for Q").await, "OK");
    assert_eq!(a.ask("SET FINAL 1").await, "OK");
    a.add("TEXT", None, b"see attached").await;
    a.add("CDA", Some("summary.xml"), CCDA).await;
    let queued = a.ask("SEND").await;
    let words: Vec<&str> = queued.split(' ').collect();
    assert_eq!(words[..2], ["QUEUED", B], "{queued:?}");
    let queued_id = words[2].to_owned();
    assert_eq!(a.ask("OK").await, "OK", "end of the SEND listing");

    // The receiver: MAIL with its own id, the parts, DONE.
    let mut b = h.login(B).await;
    let mail = b.ask("CHECK").await;
    let m: Vec<&str> = mail.split(' ').collect();
    assert_eq!(m[..4], ["MAIL", B, A, "1"], "{mail:?}");
    let mail_id = m[4].to_owned();
    assert_ne!(mail_id, queued_id, "the receiver's id is its own");
    let (headers, body_type, body, listing) = show0(&mut b).await;
    assert!(
        headers.iter().any(|l| l == "Subject: Referral for Q"),
        "{headers:?}"
    );
    assert!(
        headers.iter().any(|l| l == &format!("From: {A}")),
        "{headers:?}"
    );
    assert_eq!(body_type, "text/plain; charset=utf-8");
    assert_eq!(body, b"see attached");
    assert_eq!(
        listing[0][..2],
        ["summary.xml".to_string(), "application/xml".to_string()]
    );
    assert_eq!(b.ask("SHOW 1").await, "OK");
    assert_eq!(b.line().await, "summary.xml");
    assert_eq!(b.line().await, "application/xml");
    let len: usize = b.line().await.parse().unwrap();
    assert_eq!(b.bytes(len).await, CCDA);
    assert_eq!(b.ask("SHOW 2").await, "FAIL no such part");

    // Gone without DONE: the same MAIL comes back on the next connection.
    drop(b);
    let mut b = h.login(B).await;
    assert_eq!(b.ask("CHECK").await, mail);
    assert_eq!(b.ask("DONE").await, "OK");
    assert_eq!(b.ask("CHECK").await, "NONE");

    // The sender hears `dispatched` under the id QUEUED gave it.
    let status = a.ask("CHECK").await;
    assert!(
        status.starts_with(&format!("STATUS {queued_id} dispatched")),
        "{status:?}"
    );
    assert_eq!(a.ask("DONE").await, "FAIL expected OK");
    assert_eq!(a.ask("OK").await, "OK");
    assert_eq!(a.ask("CHECK").await, "NONE");
    assert_eq!(a.ask("BYE").await, "BYE");
}

#[tokio::test]
async fn refusals_come_where_production_gives_them() {
    let mut config = sandbox_config(&[A, B]);
    config
        .remote
        .insert("nocert.example".into(), RemoteBehaviour::NoCert);
    config
        .remote
        .insert("untrusted.example".into(), RemoteBehaviour::Untrusted);
    config
        .remote
        .insert("partner.example".into(), RemoteBehaviour::Confirm);
    let h = Hisp::start(config).await;

    let mut anon = h.connect().await;
    assert_eq!(anon.ask("CHECK").await, "FAIL not authenticated");
    assert_eq!(
        anon.ask(&format!("AUTH {A} wrong")).await,
        "FAIL authentication failed"
    );
    assert_eq!(anon.ask("CHECK").await, "FAIL not authenticated");

    let mut a = h.login(A).await;
    assert_eq!(a.ask("CLEAR").await, "OK");
    // Refused at TO: no second line follows a FAIL.
    for (addr, why) in [
        (
            "x@elsewhere.example",
            "domain elsewhere.example is not reachable",
        ),
        (
            "dr@nocert.example",
            "no certificate found for dr@nocert.example",
        ),
        ("dr@untrusted.example", "is not trusted"),
    ] {
        let reply = a.ask(&format!("TO {addr}")).await;
        assert!(
            reply.starts_with("FAIL ") && reply.contains(why),
            "{addr}: {reply:?}"
        );
    }
    // Accepted at TO; an unknown local address is an ERROR in the SEND listing.
    for addr in ["nobody@sandbox.local", "dr@partner.example"] {
        assert_eq!(a.ask(&format!("TO {addr}")).await, "OK");
        a.line().await;
    }
    a.add("TEXT", None, b"hello").await;
    assert_eq!(
        a.ask("SEND").await,
        "ERROR nobody@sandbox.local unknown recipient"
    );
    assert!(a.ask("OK").await.starts_with("QUEUED dr@partner.example "));
    assert_eq!(a.ask("OK").await, "OK");
    assert_eq!(a.ask("FROB").await, "FAIL unknown command FROB");
}

#[tokio::test]
async fn strict_framing_and_its_lenient_mode() {
    let h = Hisp::start(sandbox_config(&[A])).await;
    let mut raw = h.connect().await;
    raw.write(b"INFO\r\n").await;
    let reply = raw.line().await;
    assert!(
        reply.starts_with("FAIL") && reply.contains("carriage return"),
        "{reply:?}"
    );
    let reply = raw.ask(&format!("auth {A} {PW}")).await;
    assert_eq!(reply, "FAIL command verbs are upper case: AUTH");
    assert_eq!(raw.ask(&format!("AUTH {A} {PW}")).await, "OK");

    let lenient = Hisp::start(SandboxConfig {
        lenient: true,
        ..sandbox_config(&[A])
    })
    .await;
    let mut raw = lenient.connect().await;
    raw.write(format!("auth {A} {PW}\r\n").as_bytes()).await;
    assert_eq!(raw.line().await, "OK");
    raw.write(b"check\r\n").await;
    assert_eq!(raw.line().await, "NONE");
}

/// A new login (or LOGOUT) forgets the previous one's selected MAIL and message template: a
/// DONE cannot acknowledge another account's mail, a template built as A cannot go out from C.
#[tokio::test]
async fn logout_and_auth_start_from_nothing() {
    let h = Hisp::start(sandbox_config(&[A, B, C])).await;
    let mut a = h.login(A).await;
    assert_eq!(a.ask(&format!("TO {B}")).await, "OK");
    a.line().await;
    a.add("TEXT", None, b"first").await;
    assert!(a.ask("SEND").await.starts_with("QUEUED"));
    assert_eq!(a.ask("OK").await, "OK");

    let mut s = h.login(B).await;
    assert!(s.ask("CHECK").await.starts_with("MAIL "));
    assert_eq!(s.ask("LOGOUT").await, "OK");
    assert_eq!(s.ask("DONE").await, "FAIL not authenticated");
    assert_eq!(s.ask(&format!("AUTH {C} {PW}")).await, "OK");
    assert_eq!(s.ask("DONE").await, "FAIL nothing to acknowledge");
    assert_eq!(
        h.env.lab.sandbox.queue_len(B),
        1,
        "B's mail is still waiting"
    );

    // A template built as A, then AUTH as C: nothing of it is left to send.
    assert_eq!(s.ask(&format!("AUTH {A} {PW}")).await, "OK");
    assert_eq!(s.ask(&format!("TO {B}")).await, "OK");
    s.line().await;
    s.add("TEXT", None, b"from A").await;
    assert_eq!(s.ask(&format!("AUTH {C} {PW}")).await, "OK");
    assert_eq!(s.ask("SEND").await, "FAIL no recipients");
    // A failed AUTH drops the login too.
    assert_eq!(
        s.ask(&format!("AUTH {C} nope")).await,
        "FAIL authentication failed"
    );
    assert_eq!(s.ask("CHECK").await, "FAIL not authenticated");
}

/// A message whose first part is the document: part 0 is the document, as real servers deliver
/// mail whose only MIME part is the C-CDA.
#[tokio::test]
async fn the_first_part_added_is_the_body_whatever_its_type() {
    let h = Hisp::start(sandbox_config(&[A, B])).await;
    let mut a = h.login(A).await;
    assert_eq!(a.ask(&format!("TO {B}")).await, "OK");
    a.line().await;
    a.add("CDA", Some("only.xml"), CCDA).await;
    assert!(a.ask("SEND").await.starts_with("QUEUED"));
    assert_eq!(a.ask("OK").await, "OK");
    let mut b = h.login(B).await;
    let mail = b.ask("CHECK").await;
    assert!(mail.starts_with(&format!("MAIL {B} {A} 0 ")), "{mail:?}");
    let (_, body_type, body, listing) = show0(&mut b).await;
    assert_eq!(body_type, "application/xml; charset=utf-8");
    assert_eq!(body, CCDA);
    assert!(listing.is_empty());
}

async fn lookup(raw: &mut Raw, filter: &str) -> Vec<String> {
    assert_eq!(raw.ask(&format!("LOOKUP JSON {filter}")).await, "OK");
    let n: usize = raw.line().await.parse().unwrap();
    let mut hits = Vec::new();
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_str(&raw.line().await).unwrap();
        hits.push(v["mail"].as_str().unwrap().to_owned());
    }
    hits
}

#[tokio::test]
async fn lookup_matches_whole_attributes() {
    let h = Hisp::start(sandbox_config(&[A, B, C])).await;
    let mut a = h.login(A).await;
    assert_eq!(lookup(&mut a, "(mail=clinic-b@sandbox.local)").await, [B]);
    assert!(
        lookup(&mut a, "(mail=clinic-b)").await.is_empty(),
        "no substring match"
    );
    assert_eq!(
        lookup(&mut a, "(mail=clinic-*@sandbox.local)").await,
        [A, B, C]
    );
    assert_eq!(lookup(&mut a, "(cn=clinic-c)").await, [C]);
    assert!(a.ask("LOOKUP JSON (uid=x)").await.starts_with("FAIL"));
}

/// Mutual TLS: the daemon presents its `client_cert`, and a certificate-authenticated Address
/// Group logs in without a password; without a certificate the same AUTH is refused.
#[tokio::test]
async fn a_certificate_authenticated_group_logs_in_without_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        groups: vec![Group {
            login: "group@sandbox.local".into(),
            password: "unused-by-this-login".into(),
            members: vec![B.into()],
        }],
        cert_logins: vec!["group@sandbox.local".into()],
        ..sandbox_config(&[A, B])
    };
    let lab = directd::sandbox::lab::Lab::start_with(dir.path(), config, true)
        .await
        .unwrap();
    let addr = lab.sandbox.addr().to_string();
    let plain = directd::tls::client_config(&lab.ca_file, None).unwrap();
    let mut raw = Raw::connect(&addr, plain.clone()).await;
    assert_eq!(
        raw.ask("AUTH group@sandbox.local").await,
        "FAIL authentication failed"
    );
    // Password logins still work on the same server without a certificate.
    Raw::login(&addr, plain, A, PW).await;

    lab.sandbox.inject_mail(directd::sandbox::InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: "to the group".into(),
        body: b"result".to_vec(),
        attachments: vec![],
    });
    let store_path = dir.path().join("store.db");
    let toml = format!(
        "[store]\npath = {store_path:?}\n[daemon]\npoll_interval_secs = 0.2\nbackoff_initial_secs = 0.1\nbackoff_max_secs = 1\n[hisp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n[[accounts]]\naddress = \"group@sandbox.local\"\nmembers = [\"{B}\"]\n",
        lab.sandbox.addr().port(),
        lab.ca_file,
        lab.client_cert,
        lab.client_key,
    );
    let daemon = RunningDaemon::start(directd::config::Config::from_toml(&toml).unwrap());
    let store = || directd::store::Store::open(&store_path, std::time::Duration::from_secs(5));
    let got = wait_until(20, || {
        store().is_ok_and(|s| s.incoming_count().unwrap_or(0) == 1)
    })
    .await;
    daemon.stop().await;
    assert!(got, "the group's mail did not arrive over mutual TLS");
    assert_eq!(lab.sandbox.queue_len(B), 0);
    lab.sandbox.shutdown().await;
}
