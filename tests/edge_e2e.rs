//! directd as the Direct security agent end to end: two accounts in two domains exchange a
//! signed and encrypted C-CDA through real Postfix (submission) and Dovecot (IMAP) on loopback,
//! the receiver stores, ingests and answers processed + dispatched MDNs, and the sender's state
//! follows them. Also: mixed good and bad recipients, no MDN at all, a failed MDN, and hostile
//! messages (untrusted signer, bad signature, signer not bound to From, mixed content, wrong
//! length, plaintext with non-UTF-8 headers) each quarantined with its reason. Skipped with a message only when Postfix/Dovecot are not installed
//! (scripts/install-mailservers.sh installs them; .ci/run runs it).

mod support;

use std::path::{Path, PathBuf};

use directd::config::Config;
use directd::hisp::edge::client::{EdgeClient, SmtpTls};
use directd::smime::{self, Agent, SealOptions};
use directd::store::Store;
use support::mailservers::{Binaries, MailServers};
use support::pki::{build, rsa, write_pem, CertKey, San};
use support::sandbox::{referral, wait_until, RunningDaemon, CCDA};

const A: &str = "clinic@a.test";
const B: &str = "clinic@b.test";

struct Edge {
    servers: MailServers,
    dir: tempfile::TempDir,
    store_path: PathBuf,
    root: CertKey,
    a: CertKey,
    b: CertKey,
}

fn cert_for(root: &CertKey, address: &str) -> CertKey {
    build(
        address,
        rsa(2048),
        Some(root),
        false,
        Some(San::Email(address)),
        (-1, 365),
    )
}

impl Edge {
    fn start() -> Edge {
        if let Err(e) = Binaries::find() {
            panic!("{e}");
        }
        let servers = MailServers::start_in_temp_dir().expect("mail servers start");
        let dir = tempfile::tempdir().unwrap();
        let root = build("Direct Test Root", rsa(2048), None, true, None, (-1, 3650));
        let (a, b) = (cert_for(&root, A), cert_for(&root, B));
        let keys = dir.path().join("keys");
        let recipients = dir.path().join("recipients");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::create_dir_all(&recipients).unwrap();
        write_pem(&keys, "a", &a);
        write_pem(&keys, "b", &b);
        for (name, ck) in [
            ("a", &a),
            ("b", &b),
            ("ghost", &cert_for(&root, "ghost@b.test")),
        ] {
            std::fs::write(
                recipients.join(format!("{name}.pem")),
                ck.cert.to_pem().unwrap(),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("root.pem"), root.cert.to_pem().unwrap()).unwrap();
        let store_path = dir.path().join("store.db");
        Edge {
            servers,
            dir,
            store_path,
            root,
            a,
            b,
        }
    }

    fn config(&self, accounts: &[&str], extra_daemon: &str) -> Config {
        let pairs: Vec<(&str, &str)> = accounts.iter().map(|a| (*a, *a)).collect();
        self.config_with(&pairs, extra_daemon)
    }

    /// Like `config`, each account as (its address, the mailbox it logs in to).
    fn config_with(&self, accounts: &[(&str, &str)], extra_daemon: &str) -> Config {
        let d = self.dir.path();
        let mut toml = format!(
            "[store]\npath = {:?}\n[daemon]\npoll_interval_secs = 0.3\noutbox_check_ms = 50\nbackoff_initial_secs = 0.2\nbackoff_max_secs = 1\n{extra_daemon}\n\
             [hisp]\nhost = \"127.0.0.1\"\nca_file = {:?}\nread_timeout_secs = 15\n\
             [smime]\nkeys_dir = {:?}\nrecipient_certs_dir = {:?}\n\
             [[smime.anchors]]\ndomain = \"a.test\"\nfile = {:?}\n[[smime.anchors]]\ndomain = \"b.test\"\nfile = {:?}\n",
            self.store_path,
            self.servers.ca_file,
            d.join("keys"),
            d.join("recipients"),
            d.join("root.pem"),
            d.join("root.pem"),
        );
        for (addr, mailbox) in accounts {
            let s = self.servers.settings_for(mailbox, SmtpTls::StartTls);
            toml.push_str(&format!(
                "[[accounts]]\naddress = {addr:?}\nlogin = {mailbox:?}\ntransport = \"edge\"\npassword = {:?}\nsmtp_port = {}\nimap_port = {}\n",
                s.password, s.smtp_port, s.imap_port
            ));
        }
        Config::from_toml(&toml).unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&self.store_path, std::time::Duration::from_secs(5)).unwrap()
    }

    fn enqueue(&self, to: &[&str], subject: &str) -> i64 {
        self.enqueue_with(to, subject, true)
    }

    fn enqueue_with(&self, to: &[&str], subject: &str, final_delivery: bool) -> i64 {
        self.store()
            .enqueue(&referral(
                A,
                to,
                subject,
                final_delivery,
                b"Summary attached.",
                "summary.xml",
            ))
            .unwrap()
    }

    fn state(&self, id: i64, addr: &str) -> String {
        self.store()
            .recipients(id)
            .unwrap()
            .into_iter()
            .find(|r| r.address == addr)
            .map(|r| r.state)
            .unwrap_or_default()
    }
}

fn path_of(store: &Store, id: i64, addr: &str) -> Vec<String> {
    store
        .events(Some(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.recipient.as_deref() == Some(addr) && e.applied)
        .map(|e| e.state)
        .collect()
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn ccda_exchange_with_processed_and_dispatched_mdns() {
    let env = Edge::start();
    let id = env.enqueue(
        &[B, "ghost@b.test", "nocert@b.test"],
        "Confidential referral",
    );
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let done = wait_until(60, || {
        env.state(id, B) == "dispatched"
            && env.state(id, "ghost@b.test") == "failed"
            && env.state(id, "nocert@b.test") == "failed"
    })
    .await;
    // Let the last acknowledgements land before looking at the mailboxes.
    let drained = wait_until(20, || {
        env.servers.maildir_messages(A, None).is_empty()
            && env.servers.maildir_messages(B, None).is_empty()
    })
    .await;
    daemon.stop().await;
    let store = env.store();
    assert!(
        done,
        "{:?}\n{}",
        store.recipients(id).unwrap(),
        env.servers.logs()
    );
    assert!(drained, "every fetched message is removed once committed");

    assert_eq!(
        path_of(&store, id, B),
        ["queued", "submitted", "processed", "dispatched"]
    );
    let rows = store.recipients(id).unwrap();
    let reason = |a: &str| {
        rows.iter()
            .find(|r| r.address == a)
            .unwrap()
            .reason
            .clone()
            .unwrap_or_default()
    };
    assert!(
        reason("nocert@b.test").contains("no valid certificate"),
        "{}",
        reason("nocert@b.test")
    );
    assert!(
        reason("ghost@b.test").contains("5.1.1")
            || reason("ghost@b.test").to_lowercase().contains("unknown"),
        "{}",
        reason("ghost@b.test")
    );

    // The receiver stored the message with its verdict, intact, and ingested the C-CDA.
    let inbox = store.list_messages(false, true, None).unwrap();
    let received: Vec<_> = inbox.iter().filter(|m| m.to == B).collect();
    assert_eq!(received.len(), 1, "{inbox:?}");
    let msg = store.incoming(received[0].id).unwrap();
    assert_eq!(msg.sender, A);
    assert_eq!(msg.subject.as_deref(), Some("Confidential referral"));
    assert!(msg.verdict.as_deref().unwrap().contains("sha-256"));
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(store.attachment_data(msg.attachments[0].id).unwrap(), CCDA);
    assert_eq!(msg.attachments[0].ingest_state, "ingested");
    assert_eq!(store.list_documents(None).unwrap().len(), 1);
    let raw = store.incoming_raw(msg.id).unwrap().unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("Confidential referral"),
        "the subject must travel only inside the encryption"
    );
    let mdns = store.mdns_for(msg.id).unwrap();
    assert_eq!(
        mdns.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["processed", "dispatched"]
    );
    assert!(mdns.iter().all(|(_, sent)| sent.is_some()), "{mdns:?}");
    // MDNs are never answered with MDNs: the only messages A received were the two MDNs.
    assert!(inbox.iter().all(|m| m.to != A));

    // Issue 15: over S/MIME a read receipt is possible, and status and show --mark-read say so.
    // A configuration of our own, so that whatever /etc/directd holds on this machine is not read.
    let config = env.dir.path().join("cli.toml");
    std::fs::write(&config, format!("[store]\npath = {:?}\n", env.store_path)).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_directd"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["status", &id.to_string()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "two recipients failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed 2/3"), "{text}");
    assert!(
        text.contains("Read receipts: possible over S/MIME"),
        "{text}"
    );
    let out = run(&["show", &msg.id.to_string(), "--mark-read"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("read receipt (a displayed MDN) queued for {A}")),
        "{text}"
    );
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn no_mdn_at_all_times_out() {
    let env = Edge::start();
    let id = env.enqueue(&[B], "nobody answers");
    // Only A is polled: B's mailbox fills up and no MDN ever comes back.
    let daemon = RunningDaemon::start(env.config(&[A], "processed_timeout_secs = 1"));
    let timed_out = wait_until(30, || env.state(id, B) == "timed_out").await;
    daemon.stop().await;
    assert!(timed_out, "{:?}", env.store().recipients(id).unwrap());
    let row = env.store().recipients(id).unwrap().remove(0);
    assert!(row.reason.unwrap().contains("no processed MDN"));
    assert_eq!(
        env.servers.maildir_messages(B, None).len(),
        1,
        "the message itself was delivered"
    );
}

async fn b_client(env: &Edge) -> EdgeClient {
    EdgeClient::new(env.servers.settings_for(B, SmtpTls::StartTls)).unwrap()
}

fn agent_for(env: &Edge, key_dir: &Path) -> Agent {
    let _ = env;
    Agent::load(&smime::AgentSettings {
        keys_dir: Some(key_dir.to_owned()),
        ..Default::default()
    })
    .unwrap()
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn a_failed_mdn_fails_the_recipient() {
    let env = Edge::start();
    let id = env.enqueue(&[B], "will fail downstream");
    let daemon = RunningDaemon::start(env.config(&[A], ""));
    assert!(wait_until(30, || env.state(id, B) == "submitted").await);

    // Play B's side by hand: read the message, answer with a `failed` MDN.
    let b_keys = env.dir.path().join("b-only");
    std::fs::create_dir_all(&b_keys).unwrap();
    write_pem(&b_keys, "b", &env.b);
    let b_agent = agent_for(&env, &b_keys);
    let mut client = b_client(&env).await;
    let fetched = loop {
        if let Some(m) = client.fetch_next().await.unwrap() {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut trust = smime::TrustStore::default();
    trust.add_anchor("b.test", smime::Direction::Incoming, env.root.cert.clone());
    let opened = smime::open(&fetched.raw, &b_agent.keys, &trust, None).unwrap();
    let parsed = directd::hisp::edge::message::parse_inner(&opened.inner).unwrap();
    let original = directd::mdn::OriginalInfo {
        message_id: parsed.message_id.unwrap(),
        original_recipient: None,
        final_recipient: B.into(),
        subject: None,
        from: A.into(),
    };
    let mdn = directd::mdn::build_mdn(
        directd::mdn::Disposition::Failed,
        &original,
        "test-hisp",
        false,
    );
    let sealed = smime::seal(
        &mdn,
        &env.b.identity(&[]),
        std::slice::from_ref(&env.a.cert),
        &SealOptions::default(),
    )
    .unwrap();
    client.submit_one(B, A, &sealed).await.unwrap();

    let failed = wait_until(30, || env.state(id, B) == "failed").await;
    daemon.stop().await;
    assert!(failed, "{:?}", env.store().recipients(id).unwrap());
    assert_eq!(
        path_of(&env.store(), id, B),
        ["queued", "submitted", "failed"]
    );
}

/// A message from A to B, signed by `signer`'s certificate, sealed for B.
fn seal_from(env: &Edge, signer: &CertKey, from: &str, subject: &str, body: &str) -> Vec<u8> {
    let inner = format!(
        "From: {from}\r\nTo: {B}\r\nSubject: {subject}\r\nMessage-ID: <{}@a.test>\r\n\
         Content-Type: text/plain\r\n\r\n{body}\r\n",
        subject.replace(' ', "-")
    );
    smime::seal(
        inner.as_bytes(),
        &signer.identity(&[]),
        std::slice::from_ref(&env.b.cert),
        &SealOptions::default(),
    )
    .unwrap()
}

/// B's copy of a sealed message with its signed content edited after signing: decrypted and
/// re-encrypted with the openssl command line, so only the signature can notice.
fn tampered(env: &Edge, sealed: &[u8]) -> Vec<u8> {
    let sealed = support::pki::reseal_edited(sealed, &env.b, |s| {
        s.replace("take two daily", "take ten daily")
    });
    // The command line writes bare LF; SMTP carries CRLF.
    String::from_utf8(sealed)
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Hostile messages through the real mail servers: each is quarantined with its own reason,
/// never ingested nor answered, and the genuine message behind them still arrives.
#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn hostile_messages_are_quarantined_with_their_reason_and_the_next_still_arrives() {
    let env = Edge::start();
    // A forger with a certificate for clinic@a.test from a CA nobody trusts.
    let rogue_root = build("Rogue Root", rsa(2048), None, true, None, (-1, 365));
    let forger = cert_for(&rogue_root, A);
    let untrusted = seal_from(&env, &forger, A, "forged", "not really from a");
    let genuine = seal_from(&env, &env.a, A, "rx", "take two daily");
    let text = String::from_utf8(genuine.clone()).unwrap();
    let (_, sealed_body) = text.split_once("\r\n\r\n").unwrap();
    let mixed = format!(
        "From: {A}\r\nTo: {B}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: text/html\r\n\r\n<img src=\"http://evil/\">\r\n\
         --x\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{sealed_body}\r\n--x--\r\n"
    );
    // Cut inside the base64, off a 4-character boundary: the length no longer adds up.
    let cut = genuine.len() - genuine.len() / 3;
    let cut = (cut..)
        .find(|i| genuine[*i].is_ascii_alphanumeric())
        .unwrap()
        + 1;
    let mut truncated = genuine[..cut].to_vec();
    truncated.extend_from_slice(b"\r\n");
    // Not encrypted at all, with raw 8-bit bytes that are not UTF-8 in a header.
    let mut plain = format!("From: {A}\r\nTo: {B}\r\nSubject: ").into_bytes();
    plain.extend_from_slice(b"caf\xe9 \xff\xfe\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("untrusted signer", untrusted.clone(), "not trusted"),
        (
            "bad signature",
            tampered(&env, &genuine),
            "signature does not match the signed content",
        ),
        (
            "signer not bound to From",
            seal_from(&env, &env.a, "billing@a.test", "spoof", "pay now"),
            "is not bound to From billing@a.test",
        ),
        ("mixed content", mixed.into_bytes(), "mixed with plaintext"),
        ("wrong length", truncated, "malformed"),
        (
            "plaintext, invalid UTF-8 header",
            plain,
            "not S/MIME enveloped-data",
        ),
    ];
    // Genuine, but with 8-bit bytes that are not UTF-8 in its Subject and attachment filename:
    // read lossily and kept, not refused.
    let mut eight_bit = format!(
        "From: {A}\r\nTo: {B}\r\nMessage-ID: <eight-bit@a.test>\r\nMIME-Version: 1.0\r\nSubject: r"
    )
    .into_bytes();
    eight_bit.extend_from_slice(
        b"\xe9sum\xe9\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
          --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
          --b\r\nContent-Type: application/octet-stream\r\n\
          Content-Disposition: attachment; filename=\"lab\xff\xfe.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n",
    );
    let eight_bit = smime::seal(
        &eight_bit,
        &env.a.identity(&[]),
        std::slice::from_ref(&env.b.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let a_client = EdgeClient::new(env.servers.settings_for(A, SmtpTls::StartTls)).unwrap();
    for (_, raw, _) in &cases {
        a_client.submit_one(A, B, raw).await.unwrap();
    }
    a_client.submit_one(A, B, &eight_bit).await.unwrap();
    let good = env.enqueue(&[B], "genuine");

    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let store = env.store();
    let quarantined = |store: &Store| {
        store
            .list_messages(false, true, None)
            .unwrap()
            .into_iter()
            .filter(|m| m.state == "quarantined")
            .collect::<Vec<_>>()
    };
    let eight_bit_stored = |store: &Store| {
        store
            .list_messages(false, true, None)
            .unwrap()
            .into_iter()
            .map(|m| store.incoming(m.id).unwrap())
            .find(|m| m.header_message_id.as_deref() == Some("<eight-bit@a.test>"))
    };
    let ok = wait_until(90, || {
        quarantined(&store).len() == cases.len()
            && env.state(good, B) == "dispatched"
            && eight_bit_stored(&store).is_some()
    })
    .await;
    daemon.stop().await;
    assert!(ok, "{:?}", store.list_messages(false, true, None).unwrap());
    let m = eight_bit_stored(&store).unwrap();
    assert!(m.quarantine_reason.is_none(), "{:?}", m.quarantine_reason);
    assert!(
        m.subject.as_deref().unwrap_or("").contains("sum"),
        "{:?}",
        m.subject
    );
    let att = &m.attachments[0];
    assert!(att.filename.starts_with("lab"), "{:?}", att.filename);
    assert_eq!(store.attachment_data(att.id).unwrap(), [0, 1, 2, 3]);

    let rows = quarantined(&store);
    let reasons: Vec<String> = rows
        .iter()
        .map(|m| store.incoming(m.id).unwrap().quarantine_reason.unwrap())
        .collect();
    for (case, _, expect) in &cases {
        let n = reasons.iter().filter(|r| r.contains(expect)).count();
        assert_eq!(
            n, 1,
            "{case}: expected one reason with {expect:?} in {reasons:#?}"
        );
    }
    for m in &rows {
        assert!(
            store.incoming(m.id).unwrap().attachments.is_empty()
                && store.mdns_for(m.id).unwrap().is_empty(),
            "quarantine is never ingested nor answered"
        );
    }
    // Kept as delivered: the servers add trace headers (and Postfix a Date: these hand-made
    // messages lack) but the encrypted body is byte-identical.
    let body = |b: &[u8]| {
        let at = b.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let rest = &b[at..];
        rest.strip_suffix(b"\r\n").unwrap_or(rest).to_vec()
    };
    let forged = rows
        .iter()
        .zip(&reasons)
        .find(|(_, r)| r.contains("not trusted"))
        .unwrap()
        .0;
    let raw = store.incoming_raw(forged.id).unwrap().unwrap();
    assert_eq!(
        body(&raw),
        body(&untrusted),
        "kept byte-exact for inspection"
    );
    println!(
        "edge hostile corpus: {} cases quarantined with their reasons",
        cases.len()
    );
}

/// A shared mailbox holds mail for an address no configured account serves: the message is
/// kept, and its sender gets processed, then failed (never dispatched), instead of a timeout.
#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn mail_for_an_address_no_account_serves_gets_a_failed_mdn() {
    let env = Edge::start();
    let id = env.enqueue(&[B], "to the wrong desk");
    // B's mailbox is polled by an account that serves only frontdesk@b.test.
    let daemon = RunningDaemon::start(env.config_with(&[(A, A), ("frontdesk@b.test", B)], ""));
    let failed = wait_until(40, || env.state(id, B) == "failed").await;
    // Long enough for a wrongly owed dispatched to go out too.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    daemon.stop().await;
    assert!(failed, "{:?}", env.store().recipients(id).unwrap());
    let store = env.store();
    let path = path_of(&store, id, B);
    assert_eq!(path.last().map(String::as_str), Some("failed"), "{path:?}");
    assert!(!path.iter().any(|s| s == "dispatched"), "{path:?}");
    let received = store.list_messages(false, true, None).unwrap();
    assert_eq!(received.len(), 1, "the message itself is kept");
    let mdns: Vec<String> = store
        .mdns_for(received[0].id)
        .unwrap()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(mdns, ["processed", "failed"]);
}

/// `directd reject` (the spawned binary) quarantines a received message, owes its sender a
/// failed MDN, and records who did it; the sender's recipient ends failed.
#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test]
async fn an_operator_refusal_sends_a_failed_mdn() {
    let env = Edge::start();
    let id = env.enqueue_with(&[B], "wrong patient", false);
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    assert!(
        wait_until(40, || env.state(id, B) == "processed").await,
        "{:?}",
        env.store().recipients(id).unwrap()
    );
    let incoming = env.store().list_messages(false, true, None).unwrap()[0].id;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_directd"))
            .arg("--db")
            .arg(&env.store_path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "reject",
        &incoming.to_string(),
        "--reason",
        "not our patient",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("a failed MDN to {A} is queued")),
        "{text}"
    );
    let again = run(&["reject", &incoming.to_string(), "--reason", "twice"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already quarantined"));

    let failed = wait_until(40, || env.state(id, B) == "failed").await;
    daemon.stop().await;
    assert!(failed, "{:?}", env.store().recipients(id).unwrap());
    assert_eq!(
        path_of(&env.store(), id, B),
        ["queued", "submitted", "processed", "failed"]
    );
    let store = env.store();
    let detail = store.incoming(incoming).unwrap();
    assert!(detail
        .quarantine_reason
        .unwrap()
        .ends_with(": not our patient"));
    let audit = run(&["audit", "--json"]);
    assert!(String::from_utf8_lossy(&audit.stdout).contains("\"reject\""));
}
