//! A poisoned inbox and confirmations that lie: every item that can never be read ends in
//! quarantine after its retries so the queue moves on; a transient refusal at TO is retried; and
//! nothing the daemon logs or prints carries message content or a sender's escape sequences.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};

use directd::sandbox::{Fault, FaultAction, InjectMail};
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");
const QUICK_GIVEUP: &str = "unreadable_retries = 3\nunreadable_giveup_secs = 0.3";

fn inject(env: &TestEnv, subject: &str, body: &[u8]) -> String {
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: subject.into(),
        body: body.to_vec(),
        attachments: vec![("ccd.xml".into(), "application/xml".into(), CCDA.to_vec())],
    })
}

fn rows(env: &TestEnv) -> Vec<directd::store::MessageRow> {
    env.store().list_messages(false, true, None).unwrap()
}

/// A MAIL line announcing 1,001 attachments, a MAIL line too short to parse, and a part that is
/// cut off on every try: each is quarantined unread after its retries, listed first, and the
/// good message behind them arrives.
#[tokio::test]
async fn items_that_can_never_be_read_end_in_quarantine_and_the_queue_moves_on() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let sb = &env.lab.sandbox;
    let daemon = RunningDaemon::start(env.config(&[B], QUICK_GIVEUP));

    // 1. Too many attachments (fields after the id are allowed, as real servers send them).
    sb.inject_fault(
        Fault::new(
            "CHECK",
            FaultAction::Garbage(format!("MAIL {B} lab@results.example 1001 big-1 extra")),
        )
        .times(20),
    );
    let quarantined = |env: &TestEnv, n: usize| {
        rows(env)
            .iter()
            .filter(|m| m.state == "QUARANTINED-UNREAD")
            .count()
            == n
    };
    assert!(
        wait_until(20, || quarantined(&env, 1)).await,
        "{:?}",
        rows(&env)
    );
    sb.clear_faults();
    // 2. A MAIL line that names no message.
    sb.inject_fault(Fault::new("CHECK", FaultAction::Garbage("MAIL broken".into())).times(20));
    assert!(
        wait_until(20, || quarantined(&env, 2)).await,
        "{:?}",
        rows(&env)
    );
    sb.clear_faults();
    // 3. A real message whose body is cut off at every SHOW.
    let cut = inject(&env, "always cut", b"a body that never arrives whole");
    sb.inject_fault(Fault::new("SHOW", FaultAction::Truncate(5)).times(1000));
    assert!(
        wait_until(20, || quarantined(&env, 3)).await,
        "{:?}",
        rows(&env)
    );
    sb.clear_faults();
    inject(&env, "the good one", b"fine");
    let arrived = wait_until(20, || {
        rows(&env)
            .iter()
            .any(|m| m.subject.as_deref() == Some("the good one") && m.state == "received")
    })
    .await;
    daemon.stop().await;
    assert!(arrived, "{:?}", rows(&env));

    let store = env.store();
    let rows = rows(&env);
    // Unread quarantines lead the list.
    assert!(
        rows[..3].iter().all(|m| m.state == "QUARANTINED-UNREAD"),
        "{rows:?}"
    );
    let details: Vec<_> = rows.iter().map(|m| store.incoming(m.id).unwrap()).collect();
    let reason_of = |pick: &dyn Fn(&str) -> bool| {
        details
            .iter()
            .find(|d| pick(&d.hisp_message_id))
            .and_then(|d| d.quarantine_reason.clone())
            .unwrap_or_default()
    };
    assert!(reason_of(&|id| id == "big-1").contains("more than 1000 attachments"));
    assert!(reason_of(&|id| id.starts_with("unparsed-"))
        .contains("without recipient, sender, count and id"));
    assert!(reason_of(&|id| id == cut).contains("connection closed after"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    env.lab.sandbox.shutdown().await;
}

/// `FAIL busy` and a garbage line at TO are not refusals: the recipient is retried and ends
/// dispatched. A definite refusal still fails it.
#[tokio::test]
async fn a_transient_answer_at_to_is_retried() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let sb = &env.lab.sandbox;
    sb.inject_fault(Fault::new(
        "TO",
        FaultAction::Fail("server busy, try again later".into()),
    ));
    sb.inject_fault(Fault::new("TO", FaultAction::Garbage("%%".into())));
    let id = env.enqueue(A, &[B], "retried", true);
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let ok = wait_until(20, || env.states(id)[0].1 == "dispatched").await;
    let states = env.states(id);
    sb.inject_fault(Fault::new(
        "TO",
        FaultAction::Fail("no certificate found for recipient".into()),
    ));
    let refused = env.enqueue(A, &[B], "refused", true);
    let failed = wait_until(20, || env.states(refused)[0].1 == "failed").await;
    daemon.stop().await;
    assert!(ok, "{states:?}");
    assert!(failed, "{:?}", env.states(refused));
    let events = env.store().events(Some(id)).unwrap();
    assert!(
        events.iter().any(|e| e
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("deferred: FAIL server busy")),
        "{events:?}"
    );
    env.lab.sandbox.shutdown().await;
}

/// A framing slip makes the client read a line of the message as a reply. The error in the log
/// names the command, the byte count and the problem, never the line.
#[tokio::test]
async fn framing_errors_do_not_log_message_content() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    inject(
        &env,
        "follow-up",
        b"Patient presents with chest pain; HIV positive.",
    );
    env.lab
        .sandbox
        .inject_fault(Fault::new("SHOW", FaultAction::LieLength(-20)));
    let config = env.dir.path().join("directd.toml");
    write_private(
        &config,
        env.lab.daemon_toml(&env.store_path, &[(B, PW)], ""),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stored = wait_until(20, || env.store().incoming_count().unwrap_or(0) == 1).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(stored, "{logs}");
    assert!(logs.contains("unexpected reply to SHOW ("), "{logs}");
    for secret in ["HIV", "chest pain", "follow-up"] {
        assert!(!logs.contains(secret), "{secret:?} in the log:\n{logs}");
    }
    env.lab.sandbox.shutdown().await;
}

/// A sender's Subject with terminal escape sequences is shown escaped by `directd show` and
/// `directd messages`, never passed to the terminal.
#[tokio::test]
async fn escape_sequences_from_a_sender_are_shown_not_obeyed() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    inject(
        &env,
        "\u{1b}]0;pwned\u{7}\u{1b}[31mred alert\u{9b}2J",
        b"body \x1b[2J",
    );
    let daemon = RunningDaemon::start(env.config(&[B], ""));
    assert!(wait_until(20, || env.store().incoming_count().unwrap_or(0) == 1).await);
    daemon.stop().await;
    let id = rows(&env)[0].id.to_string();
    let db = env.store_path.to_str().unwrap();
    for args in [vec!["show", id.as_str()], vec!["messages"]] {
        let out = Command::new(BIN)
            .args(["--db", db])
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            !out.stdout.iter().any(|&b| b == 0x1b || b == 0x07),
            "{args:?} passed a control byte: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("red alert"), "{args:?}: {text}");
    }
    env.lab.sandbox.shutdown().await;
}
