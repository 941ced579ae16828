//! The edge transport against real Postfix + Dovecot on 127.0.0.1 (see `tests/support/mailservers.rs`).
//! Each test starts its own pair of servers in its own temp dir, so tests run in parallel.
//! Reported as ignored, with the reason, when the servers are not installed (see build.rs).

mod support;

use std::time::{Duration, Instant};

use directd::hisp::edge::client::{
    AfterFetch, EdgeClient, EdgeError, FetchedMessage, RcptOutcome, SmtpTls,
};
use directd::sandbox::pki::TestPki;
use support::mailservers::{free_ports, Binaries, MailServers};

const A: &str = "clinic@a.test";
const B: &str = "clinic@b.test";

/// Running servers; a test that gets here without them installed fails (see build.rs for when
/// the tests are ignored instead).
fn servers() -> MailServers {
    if let Err(e) = Binaries::find() {
        panic!("{e}");
    }
    MailServers::start_in_temp_dir().unwrap_or_else(|e| panic!("starting the mail servers: {e}"))
}

/// A complete message, as the daemon would hand it over (already signed and encrypted in real
/// use; the transport must not care). CRLF line ends, a Message-ID so Postfix adds nothing.
fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: <{A}>\r\n\
         To: <{B}>\r\n\
         Subject: {subject}\r\n\
         Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <{subject}@a.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         Hello from the edge test.\r\n\
         .leading dot line, which SMTP must dot-stuff and unstuff\r\n\
         \r\n\
         last line\r\n"
    )
    .into_bytes()
}

/// Polls IMAP until a message shows up (delivery is asynchronous: queue, LMTP, maildir).
async fn wait_for_message(client: &mut EdgeClient, servers: &MailServers) -> FetchedMessage {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(m) = client.fetch_next().await.expect("fetch_next") {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "no message within 20 s\n{}",
            servers.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_accepted(outcomes: &[(String, RcptOutcome)], rcpt: &str) {
    let found = outcomes.iter().find(|(r, _)| r == rcpt);
    assert!(
        matches!(found, Some((_, RcptOutcome::Accepted { .. }))),
        "{rcpt}: {outcomes:?}"
    );
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_submit_fetch_acknowledge() {
    let servers = servers();
    let sender = EdgeClient::new(servers.settings_for(A, SmtpTls::StartTls)).unwrap();
    let sent = message("starttls");
    let outcomes = sender.submit(A, &[B.to_string()], &sent).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_accepted(&outcomes, B);
    if let RcptOutcome::Accepted { queue_id, .. } = &outcomes[0].1 {
        assert!(
            queue_id.is_some(),
            "Postfix names its queue id: {outcomes:?}"
        );
    }

    let mut receiver = EdgeClient::new(servers.settings_for(B, SmtpTls::StartTls)).unwrap();
    let got = wait_for_message(&mut receiver, &servers).await;
    // The servers prepend trace headers (Return-Path, Delivered-To, Received); everything we
    // sent must follow them byte for byte.
    assert!(
        got.raw.ends_with(&sent),
        "fetched message does not end with the submitted bytes:\n{}",
        String::from_utf8_lossy(&got.raw)
    );
    let prefix = &got.raw[..got.raw.len() - sent.len()];
    assert!(
        prefix.starts_with(b"Return-Path: <clinic@a.test>\r\n"),
        "{}",
        String::from_utf8_lossy(prefix)
    );

    // Not acknowledged yet: the same message again.
    let again = receiver.fetch_next().await.unwrap().expect("still there");
    assert_eq!(again.uid, got.uid);
    assert_eq!(servers.maildir_messages(B, None).len(), 1);

    receiver.acknowledge(got.uid).await.unwrap();
    assert_eq!(receiver.fetch_next().await.unwrap(), None);
    assert!(
        servers.maildir_messages(B, None).is_empty(),
        "maildir still has {:?}",
        servers.maildir_messages(B, None)
    );
    receiver.close().await;
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_submit_and_move_after_fetch() {
    let servers = servers();
    let sender = EdgeClient::new(servers.settings_for(A, SmtpTls::Implicit)).unwrap();
    let sent = message("implicit");
    let outcomes = sender.submit(A, &[B.to_string()], &sent).await.unwrap();
    assert_accepted(&outcomes, B);

    let mut settings = servers.settings_for(B, SmtpTls::Implicit);
    settings.after_fetch = AfterFetch::Move("Processed".into());
    let mut receiver = EdgeClient::new(settings).unwrap();
    let got = wait_for_message(&mut receiver, &servers).await;
    assert!(got.raw.ends_with(&sent));

    receiver.acknowledge(got.uid).await.unwrap();
    assert_eq!(receiver.fetch_next().await.unwrap(), None);
    assert!(servers.maildir_messages(B, None).is_empty());
    // The folder did not exist: acknowledge created it and moved the message there.
    assert_eq!(servers.maildir_messages(B, Some("Processed")).len(), 1);
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_recipients_get_one_outcome_each() {
    let servers = servers();
    let sender = EdgeClient::new(servers.settings_for(A, SmtpTls::StartTls)).unwrap();
    let sent = message("mixed");
    let rcpts = vec![
        "nobody@b.test".to_string(),
        B.to_string(),
        "not an address".to_string(),
    ];
    let outcomes = sender.submit(A, &rcpts, &sent).await.unwrap();
    let order: Vec<&str> = outcomes.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(order, ["nobody@b.test", B, "not an address"]);
    match &outcomes[0].1 {
        RcptOutcome::Rejected { reply } => {
            assert!(reply.starts_with("550"), "{reply}");
            assert!(reply.contains("5.1.1"), "{reply}");
        }
        other => panic!("nobody@b.test: {other:?}"),
    }
    assert_accepted(&outcomes, B);
    assert!(
        matches!(&outcomes[2].1, RcptOutcome::Rejected { reply } if reply.contains("not a valid address")),
        "{outcomes:?}"
    );

    // The good recipient got exactly one copy.
    let mut receiver = EdgeClient::new(servers.settings_for(B, SmtpTls::StartTls)).unwrap();
    let got = wait_for_message(&mut receiver, &servers).await;
    assert!(got.raw.ends_with(&sent));
    receiver.acknowledge(got.uid).await.unwrap();
    assert_eq!(receiver.fetch_next().await.unwrap(), None);

    // submit_one reports the refusal as an error.
    let err = sender
        .submit_one(A, "nobody@a.test", &sent)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EdgeError::RecipientRejected { rcpt, permanent: true, .. } if rcpt == "nobody@a.test"),
        "{err:?}"
    );
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_auth_rejected() {
    let servers = servers();
    for tls in [SmtpTls::StartTls, SmtpTls::Implicit] {
        let mut settings = servers.settings_for(A, tls);
        settings.password = "wrong".into();
        let client = EdgeClient::new(settings).unwrap();
        let err = client
            .submit(A, &[B.to_string()], &message("badpw"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EdgeError::AuthRejected { user, reply, .. } if user == A && reply.starts_with("535")),
            "{tls:?}: {err:?}"
        );
        assert!(err.is_permanent());
    }

    let mut settings = servers.settings_for(B, SmtpTls::StartTls);
    settings.password = "wrong".into();
    let mut client = EdgeClient::new(settings).unwrap();
    let err = client.fetch_next().await.unwrap_err();
    assert!(
        matches!(&err, EdgeError::AuthRejected { user, .. } if user == B),
        "{err:?}"
    );
    // Nothing was sent with the wrong password.
    assert!(servers.maildir_messages(B, None).is_empty());
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_ca_is_a_tls_error() {
    let servers = servers();
    // A different CA that also issued a "localhost" certificate: the servers' chain does not
    // lead to it.
    let other = tempfile::tempdir().unwrap();
    let files = TestPki::generate(&["localhost", "127.0.0.1"])
        .unwrap()
        .write_to(other.path())
        .unwrap();

    for tls in [SmtpTls::StartTls, SmtpTls::Implicit] {
        let mut settings = servers.settings_for(A, tls);
        settings.ca_file = files.ca_cert.clone();
        let client = EdgeClient::new(settings).unwrap();
        let err = client
            .submit(A, &[B.to_string()], &message("untrusted"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                EdgeError::Tls {
                    source: rustls::Error::InvalidCertificate(_),
                    ..
                }
            ),
            "{tls:?}: {err:?}"
        );
        assert!(err.is_permanent());
    }

    let mut settings = servers.settings_for(B, SmtpTls::StartTls);
    settings.ca_file = files.ca_cert.clone();
    let mut client = EdgeClient::new(settings).unwrap();
    let err = client.fetch_next().await.unwrap_err();
    assert!(
        matches!(
            &err,
            EdgeError::Tls {
                source: rustls::Error::InvalidCertificate(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_connect_error() {
    // Needs no mail servers: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pki_dir = tempfile::tempdir().unwrap();
    let files = TestPki::generate(&["127.0.0.1"])
        .unwrap()
        .write_to(pki_dir.path())
        .unwrap();
    let settings = directd::hisp::edge::client::EdgeSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        smtp_tls: SmtpTls::StartTls,
        imap_host: "127.0.0.1".into(),
        imap_port: port,
        user: A.into(),
        password: "x".into(),
        ca_file: files.ca_cert,
        mailbox: "INBOX".into(),
        after_fetch: AfterFetch::Delete,
        timeout: Duration::from_secs(5),
    };
    let mut client = EdgeClient::new(settings).unwrap();
    let err = client
        .submit(A, &[B.to_string()], &message("nobody-home"))
        .await
        .unwrap_err();
    assert!(matches!(err, EdgeError::Connect { .. }), "{err:?}");
    let err = client.fetch_next().await.unwrap_err();
    assert!(matches!(err, EdgeError::Connect { .. }), "{err:?}");
}

/// Waits until `address`'s INBOX maildir holds `n` messages (delivery is asynchronous).
async fn wait_for_maildir_count(servers: &MailServers, address: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while servers.maildir_messages(address, None).len() != n {
        assert!(
            Instant::now() < deadline,
            "maildir of {address} never reached {n} messages\n{}",
            servers.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn subject_of(m: &FetchedMessage) -> String {
    String::from_utf8_lossy(&m.raw)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        .unwrap_or_default()
}

#[cfg_attr(
    missing_mailservers,
    ignore = "Postfix and Dovecot are not installed: run scripts/install-mailservers.sh, then cargo test again"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_first_and_deleted_messages_skipped() {
    let servers = servers();
    let sender = EdgeClient::new(servers.settings_for(A, SmtpTls::StartTls)).unwrap();
    // One at a time, each delivered before the next is sent, so UIDs follow this order.
    for (i, subject) in ["first", "second", "third"].into_iter().enumerate() {
        let outcomes = sender
            .submit(A, &[B.to_string()], &message(subject))
            .await
            .unwrap();
        assert_accepted(&outcomes, B);
        wait_for_maildir_count(&servers, B, i + 1).await;
    }

    let mut receiver = EdgeClient::new(servers.settings_for(B, SmtpTls::StartTls)).unwrap();
    let first = receiver.fetch_next().await.unwrap().unwrap();
    assert_eq!(subject_of(&first), "first");

    // Another client flags the oldest \Deleted without expunging it: it is no longer handed out.
    let uid = first.uid.uid.to_string();
    servers
        .doveadm(&[
            "flags",
            "add",
            "-u",
            B,
            "\\Deleted",
            "mailbox",
            "INBOX",
            "uid",
            &uid,
        ])
        .unwrap();
    let second = receiver.fetch_next().await.unwrap().unwrap();
    assert_eq!(subject_of(&second), "second");
    assert!(second.uid.uid > first.uid.uid);

    // A UID from another UIDVALIDITY is refused, and nothing is removed.
    let mut stale = second.uid;
    stale.validity = stale.validity.wrapping_add(1);
    let err = receiver.acknowledge(stale).await.unwrap_err();
    assert!(
        matches!(err, EdgeError::UidValidityChanged { .. }),
        "{err:?}"
    );
    assert_eq!(servers.maildir_messages(B, None).len(), 3);

    receiver.acknowledge(second.uid).await.unwrap();
    let third = receiver.fetch_next().await.unwrap().unwrap();
    assert_eq!(subject_of(&third), "third");
    receiver.acknowledge(third.uid).await.unwrap();
    assert_eq!(receiver.fetch_next().await.unwrap(), None);
    // UID EXPUNGE removed only what was acknowledged: the \Deleted-flagged one is still there.
    assert_eq!(servers.maildir_messages(B, None).len(), 1);
}

/// Not a mail server: a listener that speaks just enough SMTP to offer AUTH without STARTTLS,
/// as a downgrading man in the middle would. The client must give up before sending anything
/// secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_missing_is_refused_before_auth() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 downgrade ESMTP\r\n").await.unwrap();
        let mut seen = Vec::new();
        let mut line = String::new();
        while tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
            .await
            .is_ok_and(|n| n.is_ok_and(|n| n > 0))
        {
            seen.push(line.trim_end().to_string());
            let reply: &[u8] = if line.starts_with("EHLO") {
                b"250-downgrade\r\n250 AUTH PLAIN LOGIN\r\n"
            } else if line.starts_with("QUIT") {
                b"221 bye\r\n"
            } else {
                b"250 ok\r\n"
            };
            if w.write_all(reply).await.is_err() {
                break;
            }
            line.clear();
        }
        seen
    });

    let pki_dir = tempfile::tempdir().unwrap();
    let files = TestPki::generate(&["127.0.0.1"])
        .unwrap()
        .write_to(pki_dir.path())
        .unwrap();
    let settings = directd::hisp::edge::client::EdgeSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        smtp_tls: SmtpTls::StartTls,
        imap_host: "127.0.0.1".into(),
        imap_port: port,
        user: A.into(),
        password: "must-not-leak".into(),
        ca_file: files.ca_cert,
        mailbox: "INBOX".into(),
        after_fetch: AfterFetch::Delete,
        timeout: Duration::from_secs(5),
    };
    let client = EdgeClient::new(settings).unwrap();
    let err = client
        .submit(A, &[B.to_string()], &message("downgrade"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EdgeError::Smtp(msg) if msg.contains("STARTTLS")),
        "{err:?}"
    );
    drop(client);
    let seen = server.await.unwrap();
    assert!(
        seen.iter()
            .all(|l| !l.starts_with("AUTH") && !l.starts_with("MAIL")),
        "client went on without TLS: {seen:?}"
    );
}

// The harness itself (moved from tests/edge_support, where every test file that included it ran
// them again).
#[test]
fn missing_binaries_are_named_with_the_fix() {
    let err = Binaries::find_in(
        &["/nonexistent/postfix"],
        &["/bin/sh"],
        &["/nonexistent/lmtp"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("postfix"), "{msg}");
    assert!(msg.contains("/nonexistent/lmtp"), "{msg}");
    assert!(!msg.contains("dovecot,"), "{msg}");
    assert!(msg.contains("scripts/install-mailservers.sh"), "{msg}");
}

#[test]
fn free_ports_are_distinct() {
    let ports = free_ports::<5>().unwrap();
    for (i, p) in ports.iter().enumerate() {
        assert!(!ports[i + 1..].contains(p), "{ports:?}");
    }
}
