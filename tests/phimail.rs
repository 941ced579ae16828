//! The daemon against the real sandbox HISP over TLS: delivery states, faults and recovery.

mod support;

use std::time::Duration;

use directd::hisp::phimail::PhiMailClient;
use directd::hisp::HispError;
use directd::sandbox::lab::Lab;
use directd::sandbox::{Fault, FaultAction, SandboxConfig};
use support::sandbox::*;

#[tokio::test]
async fn multi_recipient_send_with_one_bad_recipient() {
    let env = TestEnv::start(sandbox_config(&[A, B, C])).await;
    let id = env.enqueue(
        A,
        &[B, "nobody@sandbox.local", C, "x@elsewhere.example"],
        "multi",
        true,
    );
    let daemon = RunningDaemon::start(env.config(&[A, B, C], ""));
    let done = wait_until(20, || {
        env.states(id)
            .iter()
            .all(|(_, s)| s == "dispatched" || s == "failed")
    })
    .await;
    daemon.stop().await;
    assert!(done, "states: {:?}", env.states(id));
    let store = env.store();
    let rows = store.recipients(id).unwrap();
    let by = |a: &str| rows.iter().find(|r| r.address == a).unwrap();
    assert_eq!(by(B).state, "dispatched");
    assert_eq!(by(C).state, "dispatched");
    assert_eq!(by("nobody@sandbox.local").state, "failed");
    assert!(by("nobody@sandbox.local")
        .reason
        .as_deref()
        .unwrap()
        .contains("unknown recipient"));
    assert!(by("x@elsewhere.example")
        .reason
        .as_deref()
        .unwrap()
        .contains("not reachable"));
    // Each good recipient got its own copy with its own HISP id, and received it intact.
    assert_ne!(by(B).hisp_message_id, by(C).hisp_message_id);
    let inbox = store.list_messages(false, true, None).unwrap();
    assert_eq!(inbox.len(), 2);
    for m in inbox {
        let detail = store.incoming(m.id).unwrap();
        assert_eq!(detail.subject.as_deref(), Some("multi"));
        assert_eq!(detail.body_text.as_deref(), Some("body of multi"));
        assert_eq!(detail.attachments.len(), 1);
        assert_eq!(
            store.attachment_data(detail.attachments[0].id).unwrap(),
            CCDA
        );
    }
    // The history shows the path each recipient took.
    let events = store.events(Some(id)).unwrap();
    let path: Vec<&str> = events
        .iter()
        .filter(|e| e.recipient.as_deref() == Some(B))
        .map(|e| e.state.as_str())
        .collect();
    assert_eq!(path, ["queued", "submitted", "dispatched"]);
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn unconfirmed_final_delivery_turns_failed() {
    // B exists at the HISP but nobody polls it, so the HISP's confirmation window closes.
    let config = SandboxConfig {
        failed_after: Duration::from_millis(300),
        ..sandbox_config(&[A, B])
    };
    let env = TestEnv::start(config).await;
    let id = env.enqueue(A, &[B], "never read", true);
    let daemon = RunningDaemon::start(env.config(&[A], ""));
    let failed = wait_until(20, || {
        env.states(id) == [(B.to_string(), "failed".to_string())]
    })
    .await;
    daemon.stop().await;
    assert!(failed, "{:?}", env.states(id));
    let rows = env.store().recipients(id).unwrap();
    assert!(
        rows[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no delivery confirmation"),
        "{:?}",
        rows[0].reason
    );
    let states: Vec<String> = env
        .store()
        .events(Some(id))
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states, ["queued", "submitted", "failed"]);
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn local_timeout_when_the_hisp_never_confirms() {
    let mut config = sandbox_config(&[A]);
    config.remote.insert(
        "far.example".into(),
        directd::sandbox::RemoteBehaviour::Never,
    );
    let env = TestEnv::start(config).await;
    let id = env.enqueue(A, &["doc@far.example"], "silent", true);
    let daemon = RunningDaemon::start(env.config(&[A], "dispatched_timeout_secs = 1"));
    let timed_out = wait_until(20, || env.states(id)[0].1 == "timed_out").await;
    daemon.stop().await;
    assert!(timed_out, "{:?}", env.states(id));
    env.lab.sandbox.shutdown().await;
}

/// Runs A→B with `fault` injected, and checks B stored the message exactly once, intact, with
/// nothing left unacknowledged at the HISP.
async fn survives_fault(fault: Fault) -> directd::store::Store {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    env.lab.sandbox.inject_fault(fault);
    let id = env.enqueue(A, &[B], "fault drill", true);
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let ok = wait_until(30, || {
        env.states(id)[0].1 == "dispatched" && env.lab.sandbox.queue_len(B) == 0
    })
    .await;
    daemon.stop().await;
    assert!(
        ok,
        "states {:?}, queue {}",
        env.states(id),
        env.lab.sandbox.queue_len(B)
    );
    assert_eq!(env.lab.sandbox.pending_faults(), 0, "the fault never fired");
    let store = env.store();
    let inbox = store.list_messages(false, true, None).unwrap();
    assert_eq!(inbox.len(), 1, "stored exactly once");
    let detail = store.incoming(inbox[0].id).unwrap();
    assert_eq!(
        store.attachment_data(detail.attachments[0].id).unwrap(),
        CCDA
    );
    assert_eq!(env.lab.sandbox.sent().len(), 1, "sent exactly once");
    env.lab.sandbox.shutdown().await;
    store
}

#[tokio::test]
async fn connection_dropped_mid_show_is_fetched_again() {
    survives_fault(Fault::new("SHOW", FaultAction::Truncate(100))).await;
}

#[tokio::test]
async fn lost_acknowledgement_is_deduplicated() {
    // The daemon commits, then the connection dies before DONE reaches the HISP: redelivered.
    survives_fault(Fault::new("DONE", FaultAction::Drop)).await;
}

#[tokio::test]
async fn garbage_check_reply_is_survived() {
    survives_fault(
        Fault::new("CHECK", FaultAction::Garbage("MAIL only-two fields".into())).times(2),
    )
    .await;
}

#[tokio::test]
async fn a_length_line_that_lies_short_is_survived() {
    survives_fault(Fault::new("SHOW", FaultAction::LieLength(-7))).await;
}

#[tokio::test]
async fn a_length_line_that_lies_long_is_survived() {
    // The client waits for bytes that never come, hits its read timeout, and retries.
    survives_fault(Fault::new("SHOW", FaultAction::LieLength(9))).await;
}

#[tokio::test]
async fn stalled_hisp_hits_the_read_timeout() {
    survives_fault(Fault::new("CHECK", FaultAction::Stall)).await;
}

#[tokio::test]
async fn send_fail_keeps_the_message_queued_and_retries() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    env.lab
        .sandbox
        .inject_fault(Fault::new("SEND", FaultAction::Fail("service busy".into())));
    let id = env.enqueue(A, &[B], "retry me", true);
    let daemon = RunningDaemon::start(env.config(&[A], ""));
    // First the failure is recorded on the queued message...
    let recorded = wait_until(10, || {
        env.store().list_messages(true, false, None).unwrap()[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("service busy"))
            || env.states(id)[0].1 == "submitted"
    })
    .await;
    assert!(recorded);
    // ...then the retry succeeds.
    let submitted = wait_until(10, || env.states(id)[0].1 == "submitted").await;
    daemon.stop().await;
    assert!(submitted, "{:?}", env.states(id));
    let row = env
        .store()
        .list_messages(true, false, None)
        .unwrap()
        .remove(0);
    assert_eq!(row.attempts, Some(2));
    assert_eq!(row.state, "submitted");
    assert_eq!(env.lab.sandbox.sent().len(), 1);
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn restart_mid_queue_sends_each_message_once() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    // Slow SENDs so the first daemon is stopped with work left in the queue.
    env.lab
        .sandbox
        .inject_fault(Fault::new("SEND", FaultAction::Delay(Duration::from_millis(150))).times(20));
    let ids: Vec<i64> = (0..6)
        .map(|i| env.enqueue(A, &[B], &format!("queued {i}"), true))
        .collect();
    let first = RunningDaemon::start(env.config(&[A, B], ""));
    assert!(wait_until(10, || ids.iter().any(|&id| env.states(id)[0].1 != "queued")).await);
    first.stop().await;
    let left = ids
        .iter()
        .filter(|&&id| env.states(id)[0].1 == "queued")
        .count();
    assert!(
        left > 0,
        "the first daemon should have been stopped mid-queue"
    );
    let second = RunningDaemon::start(env.config(&[A, B], ""));
    let all = wait_until(30, || {
        ids.iter().all(|&id| env.states(id)[0].1 == "dispatched")
    })
    .await;
    second.stop().await;
    assert!(
        all,
        "{:?}",
        ids.iter().map(|&i| env.states(i)).collect::<Vec<_>>()
    );
    let mut subjects: Vec<String> = env
        .lab
        .sandbox
        .sent()
        .into_iter()
        .map(|s| s.subject)
        .collect();
    subjects.sort();
    let mut expected: Vec<String> = (0..6).map(|i| format!("queued {i}")).collect();
    expected.sort();
    assert_eq!(subjects, expected, "every message sent exactly once");
    assert_eq!(env.store().incoming_count().unwrap(), 6);
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn address_group_login_receives_for_its_members() {
    let config = SandboxConfig {
        groups: vec![directd::sandbox::Group {
            login: "group@sandbox.local".into(),
            password: PW.into(),
            members: vec![B.into(), C.into()],
        }],
        ..sandbox_config(&[A, B, C])
    };
    let env = TestEnv::start(config).await;
    let id = env.enqueue(A, &[B, C], "to the group", true);
    let toml = env.lab.daemon_toml(&env.store_path, &[(A, PW)], "")
        + &format!("\n[[accounts]]\naddress = \"group@sandbox.local\"\npassword = \"{PW}\"\nmembers = [\"{B}\", \"{C}\"]\n");
    let daemon = RunningDaemon::start(directd::config::Config::from_toml(&toml).unwrap());
    let ok = wait_until(20, || env.states(id).iter().all(|(_, s)| s == "dispatched")).await;
    daemon.stop().await;
    assert!(ok, "{:?}", env.states(id));
    let store = env.store();
    let mut rcpts: Vec<String> = store
        .list_messages(false, true, None)
        .unwrap()
        .into_iter()
        .map(|m| m.to)
        .collect();
    rcpts.sort();
    assert_eq!(rcpts, [B, C], "routed by the MAIL line's recipient");
    env.lab.sandbox.shutdown().await;
}

fn settings(env: &TestEnv, user: &str, password: &str) -> directd::hisp::phimail::ConnectSettings {
    env.config(&[A], "").accounts[0]
        .connect
        .clone()
        .with_login(user, password)
}

trait WithLogin {
    fn with_login(self, user: &str, password: &str) -> Self;
}

impl WithLogin for directd::hisp::phimail::ConnectSettings {
    fn with_login(mut self, user: &str, password: &str) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }
}

#[tokio::test]
async fn wrong_password_is_a_clear_permanent_error_without_retry_storm() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let err = PhiMailClient::connect(&settings(&env, A, "wrong"))
        .await
        .err()
        .expect("login refused");
    assert!(matches!(err, HispError::AuthRejected { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(
        err.to_string().contains(A) && err.to_string().contains("authentication failed"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("wrong"),
        "the password must not appear in the error"
    );

    // The daemon backs off to its maximum instead of retrying at every tick.
    let toml = env
        .lab
        .daemon_toml(&env.store_path, &[(A, "wrong")], "")
        .replace("backoff_max_secs = 1", "backoff_max_secs = 60");
    let (_trigger, shutdown) = directd::daemon::Shutdown::new();
    let mut daemon =
        directd::daemon::Daemon::new(directd::config::Config::from_toml(&toml).unwrap(), shutdown)
            .unwrap();
    let first = daemon.pass(true).await.unwrap();
    assert_eq!((first.accounts_polled, first.errors), (1, 1));
    let second = daemon.pass(true).await.unwrap();
    assert_eq!(
        second.accounts_polled, 0,
        "backing off, no second login attempt"
    );
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn wrong_or_expired_server_certificate_is_refused() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    // A CA that did not sign the sandbox's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = directd::sandbox::pki::TestPki::generate(&["127.0.0.1"])
        .unwrap()
        .write_to(other.path())
        .unwrap()
        .ca_cert;
    let mut s = settings(&env, A, PW);
    s.ca_file = other_ca;
    let err = PhiMailClient::connect(&s)
        .await
        .err()
        .expect("untrusted server refused");
    assert!(matches!(err, HispError::Tls { .. }), "{err:?}");
    assert!(err.is_permanent(), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // A server certificate from the right CA but expired.
    let dir = tempfile::tempdir().unwrap();
    let pki =
        directd::sandbox::pki::TestPki::generate_with_validity(&["127.0.0.1"], -30, -1).unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    let tls = directd::tls::server_config(
        directd::tls::load_certs(&files.server_cert).unwrap(),
        directd::tls::load_key(&files.server_key).unwrap(),
    )
    .unwrap();
    let expired = directd::sandbox::Sandbox::start(sandbox_config(&[A]), tls, "127.0.0.1:0")
        .await
        .unwrap();
    let mut s = settings(&env, A, PW);
    s.port = expired.addr().port();
    s.ca_file = files.ca_cert;
    let err = PhiMailClient::connect(&s)
        .await
        .err()
        .expect("expired certificate refused");
    assert!(
        err.is_permanent() && err.to_string().to_lowercase().contains("expired"),
        "{err}"
    );
    expired.shutdown().await;
    env.lab.sandbox.shutdown().await;
    let _ = Lab::start; // the harness type is part of the public API under test
}

#[tokio::test]
async fn connect_that_never_completes_times_out() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    env.lab
        .sandbox
        .inject_fault(Fault::new("CONNECT", FaultAction::Stall));
    let mut s = settings(&env, A, PW);
    s.connect_timeout = Duration::from_millis(300);
    let err = PhiMailClient::connect(&s)
        .await
        .err()
        .expect("handshake timeout");
    assert!(
        matches!(err, HispError::Tls { .. }) && !err.is_permanent(),
        "{err:?}"
    );
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn lookup_returns_directory_entries() {
    let env = TestEnv::start(sandbox_config(&[A, B, C])).await;
    let mut client = PhiMailClient::connect(&settings(&env, A, PW))
        .await
        .unwrap();
    let hits = client.lookup("(mail=clinic-b*)").await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["mail"], B);
    assert_eq!(client.lookup("(mail=zzz)").await.unwrap().len(), 0);
    client.close().await;
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn metrics_endpoint_counts_traffic_on_loopback() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = env.enqueue(A, &[B], "metrics", true);
    let daemon = RunningDaemon::start(
        env.config(&[A, B], &format!("metrics_listen = \"127.0.0.1:{port}\"")),
    );
    assert!(wait_until(20, || env.states(id)[0].1 == "dispatched").await);
    let get = move |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let body = tokio::task::spawn_blocking(move || (get("/metrics"), get("/")))
        .await
        .unwrap();
    daemon.stop().await;
    assert!(body.0.starts_with("HTTP/1.1 200"), "{}", body.0);
    assert!(
        body.0.contains("\ndirectd_messages_sent_total 1\n"),
        "{}",
        body.0
    );
    assert!(
        body.0.contains("\ndirectd_messages_received_total 1\n"),
        "{}",
        body.0
    );
    assert!(body.0.contains(&format!(
        "directd_last_successful_poll_timestamp_seconds{{account=\"{A}\"}}"
    )));
    assert!(body.1.starts_with("HTTP/1.1 404"));
    // Anything but loopback is refused at configuration time.
    let bad = env.lab.daemon_toml(
        &env.store_path,
        &[(A, PW)],
        "metrics_listen = \"0.0.0.0:9000\"",
    );
    let err = directd::config::Config::from_toml(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("daemon.metrics_listen:") && err.contains("loopback"),
        "{err}"
    );
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_message_that_can_never_be_read_is_quarantined_and_the_queue_moves_on() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let inject = |subject: &str, size: usize| {
        env.lab.sandbox.inject_mail(directd::sandbox::InjectMail {
            to: B.into(),
            from: "lab@results.example".into(),
            subject: subject.into(),
            body: b"x".to_vec(),
            attachments: vec![(
                "part.bin".into(),
                "application/octet-stream".into(),
                vec![7u8; size],
            )],
        })
    };
    let poison = inject("too big", 20_000);
    let good = inject("fine", 100);
    let toml = env
        .lab
        .daemon_toml(
            &env.store_path,
            &[(B, PW)],
            "unreadable_retries = 3\nunreadable_giveup_secs = 0.5",
        )
        .replace(
            "read_timeout_secs = 2",
            "read_timeout_secs = 2\nmax_part_bytes = 10000",
        );
    let daemon = RunningDaemon::start(directd::config::Config::from_toml(&toml).unwrap());
    let done = wait_until(20, || {
        env.store().incoming_count().unwrap() == 2 && env.lab.sandbox.queue_len(B) == 0
    })
    .await;
    daemon.stop().await;
    assert!(
        done,
        "stored {}, queued {}",
        env.store().incoming_count().unwrap(),
        env.lab.sandbox.queue_len(B)
    );
    let store = env.store();
    let rows = store.list_messages(false, true, None).unwrap();
    let by_state = |s: &str| rows.iter().filter(|m| m.state == s).count();
    assert_eq!(
        (by_state("QUARANTINED-UNREAD"), by_state("received")),
        (1, 1)
    );
    // Acknowledged unread, so it leads the listing.
    assert_eq!(rows[0].state, "QUARANTINED-UNREAD");
    let detail = store.incoming(rows[0].id).unwrap();
    assert_eq!(detail.hisp_message_id, poison);
    let reason = detail.quarantine_reason.unwrap();
    assert!(
        reason.starts_with("unreadable, quarantined unread after repeated failures")
            && reason.contains("exceeds the limit"),
        "{reason}"
    );
    let ok = rows.iter().find(|m| m.state == "received").unwrap();
    assert_eq!(store.incoming(ok.id).unwrap().hisp_message_id, good);
    env.lab.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_drop_at_every_protocol_step_loses_and_duplicates_nothing() {
    // Steps of both directions: login, building and sending a message, receiving, acknowledging.
    // SEND itself is left out: a drop there after the HISP queued the copies is the documented
    // at-least-once window (tests/crash_recovery.rs checks it precisely).
    for step in [
        "CONNECT", "INFO", "AUTH", "CLEAR", "TO", "SUBJECT", "SET", "ADD", "CHECK", "SHOW", "DONE",
        "OK",
    ] {
        let env = TestEnv::start(sandbox_config(&[A, B])).await;
        env.lab
            .sandbox
            .inject_fault(Fault::new(step, FaultAction::Drop));
        let id = env.enqueue(A, &[B], step, true);
        let daemon = RunningDaemon::start(env.config(&[A, B], ""));
        let ok = wait_until(30, || {
            env.states(id)[0].1 == "dispatched"
                && env.lab.sandbox.queue_len(A) + env.lab.sandbox.queue_len(B) == 0
        })
        .await;
        daemon.stop().await;
        assert!(ok, "drop at {step}: {:?}", env.states(id));
        assert_eq!(
            env.lab.sandbox.pending_faults(),
            0,
            "drop at {step} never fired"
        );
        assert_eq!(env.lab.sandbox.sent().len(), 1, "drop at {step}: sent once");
        assert_eq!(
            env.store().incoming_count().unwrap(),
            1,
            "drop at {step}: stored once"
        );
        env.lab.sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn a_busy_queue_does_not_hold_one_session_forever() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    for i in 0..260 {
        env.lab.sandbox.inject_mail(directd::sandbox::InjectMail {
            to: B.into(),
            from: "lab@results.example".into(),
            subject: format!("result {i}"),
            body: b"x".to_vec(),
            attachments: vec![],
        });
    }
    let (_trigger, shutdown) = directd::daemon::Shutdown::new();
    let mut daemon = directd::daemon::Daemon::new(env.config(&[B], ""), shutdown).unwrap();
    let first = daemon.pass(true).await.unwrap();
    assert_eq!(
        first.received, 200,
        "one session takes a bounded number of items"
    );
    assert!(first.more_waiting);
    assert_eq!(env.lab.sandbox.queue_len(B), 60);
    let second = daemon.pass(true).await.unwrap();
    assert_eq!((second.received, second.more_waiting), (60, false));
    assert_eq!(env.store().incoming_count().unwrap(), 260);
    env.lab.sandbox.shutdown().await;
}

/// A message whose only part is the C-CDA (part 0, as other HISPs deliver it) is stored with the
/// document as an attachment and ingested.
#[tokio::test]
async fn a_ccda_delivered_as_part_0_is_ingested() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let id = env
        .store()
        .enqueue(&directd::store::NewOutgoing {
            account: Some(A.into()),
            sender: A.into(),
            recipients: vec![directd::hisp::OutRecipient {
                address: B.into(),
                kind: directd::hisp::RecipientKind::To,
            }],
            subject: Some("document only".into()),
            final_delivery: false,
            parts: vec![directd::hisp::OutPart {
                kind: directd::hisp::PartKind::Cda,
                filename: Some("ccd.xml".into()),
                data: CCDA.to_vec(),
            }],
        })
        .unwrap();
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let store = env.store();
    let done = wait_until(20, || {
        store
            .list_messages(false, true, None)
            .unwrap()
            .iter()
            .any(|m| {
                store
                    .incoming(m.id)
                    .unwrap()
                    .attachments
                    .iter()
                    .any(|a| a.ingest_state == "ingested")
            })
    })
    .await;
    daemon.stop().await;
    assert!(done, "{:?}", env.states(id));
    let m = &store.list_messages(false, true, None).unwrap()[0];
    let detail = store.incoming(m.id).unwrap();
    assert_eq!(detail.attachments.len(), 1);
    assert_eq!(detail.attachments[0].filename, "part0.xml");
    assert_eq!(
        store.attachment_data(detail.attachments[0].id).unwrap(),
        CCDA
    );
    assert_eq!(store.list_documents(None).unwrap().len(), 1);
    env.lab.sandbox.shutdown().await;
}
