//! Delivery outcomes as the binary reports them (issue 15, part 3): `messages` outcomes and
//! filters, `status --wait` exit codes, `receipts --follow`, `directd poll` against a running
//! `directd run`, and `show`'s ingest reasons and read-receipt answers. A real sandbox HISP, a
//! real daemon process and the real store throughout.

mod support;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use directd::sandbox::InjectMail;
use support::process::{json, text, Cli};
use support::sandbox::*;

fn send(cli: &Cli, to: &str, final_delivery: bool) -> Command {
    let mut args = vec!["send", "--from", A, "--to", to, "--body", "hello"];
    if final_delivery {
        args.push("--final");
    }
    cli.command(&args)
}

async fn sent_id(cli: &Cli, to: &str, final_delivery: bool) -> String {
    let mut c = send(cli, to, final_delivery);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The whole "check now" loop: a message waits at the HISP until `directd poll`, `status
/// --wait` exits 4 while nothing confirms it and 0 once the confirmation is polled in, and
/// `receipts --follow --json` streams each step as it is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_now_wait_for_the_outcome_and_follow_the_receipts() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let cli = Cli::new(&env, &[A, B]);

    let daemon = cli.daemon(&env).await;
    // Sent between polls: the daemon submits it at once, and nobody polls B for an hour.
    let id = sent_id(&cli, B, true).await;
    let mut follow = cli
        .command(&["receipts", &id, "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next_event = || -> serde_json::Value {
        // The sandbox runs on the runtime's threads; let it have this one while we block.
        let line = tokio::task::block_in_place(|| lines.recv_timeout(Duration::from_secs(20)))
            .expect("receipts --follow printed nothing");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let queued = next_event();
    assert_eq!(queued["schema_version"], 1);
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["outgoing_id"].to_string(), id);
    assert_eq!(queued["recipient"], B);

    let submitted = next_event();
    assert_eq!(submitted["state"], "submitted", "{submitted}");
    assert!(submitted["event_id"].as_i64() > queued["event_id"].as_i64());

    // B's copy waits at the HISP: nobody polls for an hour.
    let out = cli.run(&["status", &id, "--wait", "--timeout", "1s"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("pending 1/1"), "{}", text(&out));
    let out = cli
        .run(&["status", &id, "--wait", "--timeout", "1s", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(json(&out)["wait"], "timeout_expired");
    assert_eq!(env.lab.sandbox.queue_len(B), 1);
    let out = cli.run(&["messages", "--state", "pending", "--json"]).await;
    let v = json(&out);
    assert_eq!(v["messages"][0]["outgoing_id"].to_string(), id);
    assert_eq!(v["messages"][0]["outcome"]["state"], "pending");
    let out = cli
        .run(&["messages", "--state", "dispatched", "--json"])
        .await;
    assert_eq!(json(&out)["messages"], serde_json::json!([]));

    // Check now: B takes the message in this pass; A's confirmation comes at the next one.
    let out = cli.run(&["poll"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("polled 2 account(s)") && text(&out).contains("1 received"),
        "{}",
        text(&out)
    );
    assert_eq!(env.lab.sandbox.queue_len(B), 0);
    let out = cli.run(&["messages", "--unread", "--json"]).await;
    let unread = json(&out);
    assert_eq!(unread["messages"].as_array().unwrap().len(), 1, "{unread}");
    assert_eq!(unread["messages"][0]["direction"], "in");
    assert_eq!(unread["messages"][0]["viewed"], false);

    let out = cli.run(&["poll", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let poll = json(&out);
    assert_eq!(poll["schema_version"], 1);
    assert_eq!(poll["daemon_pid"], daemon.0.id());
    assert!(poll["poll"]["statuses"].as_i64().unwrap() >= 1, "{poll}");
    assert_eq!(poll["poll"]["errors"], 0);

    let out = cli
        .run(&["status", &id, "--wait", "--timeout", "20s"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("dispatched 1/1"), "{}", text(&out));
    assert!(
        text(&out).contains("Read receipts: not available over phiMail"),
        "{}",
        text(&out)
    );
    let dispatched = next_event();
    assert_eq!(dispatched["state"], "dispatched", "{dispatched}");
    assert_eq!(dispatched["source"], "phimail");

    // Opening the received message takes it off the unread list.
    let incoming = unread["messages"][0]["incoming_id"].to_string();
    assert!(cli.run(&["show", &incoming]).await.status.success());
    let out = cli.run(&["messages", "--unread", "--json"]).await;
    assert_eq!(json(&out)["messages"], serde_json::json!([]));

    let _ = follow.kill();
    let _ = follow.wait();
    daemon.stop();
    // The daemon is gone; so is the lock it held.
    let out = cli.run(&["poll"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no daemon runs on"), "{}", text(&out));
    env.lab.sandbox.shutdown().await;
}

/// A message whose only recipient failed says `failed 1/1` (not the outbox's `submitted`), and
/// `status` exits 3 for it, with or without --wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_failed_is_failed_and_exits_3() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let cli = Cli::new(&env, &[A]);
    let daemon = cli.daemon(&env).await;
    let failed = sent_id(&cli, "nobody@sandbox.local", false).await;
    let fine = sent_id(&cli, B, false).await;

    let out = cli
        .run(&["status", &failed, "--wait", "--timeout", "20s"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("failed 1/1"), "{}", text(&out));
    assert!(text(&out).contains("unknown recipient"), "{}", text(&out));
    let out = cli.run(&["status", &failed]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // Without --final, phiMail's acceptance is the last word: accepted, exit 0.
    let out = cli
        .run(&["status", &fine, "--wait", "--timeout", "20s", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["wait"], "complete");
    assert_eq!(v["message"]["outcome"]["state"], "accepted");
    assert_eq!(v["message"]["outcome"]["complete"], true);
    assert_eq!(v["message"]["read_receipts_possible"], false);

    let out = cli.run(&["messages", "--out"]).await;
    let listing = text(&out);
    let row = listing
        .lines()
        .find(|l| l.starts_with(&format!("{failed} ")))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.contains("failed 1/1"), "{row}");
    assert!(!row.contains("submitted"), "{row}");

    let out = cli.run(&["messages", "--state", "failed", "--json"]).await;
    let v = json(&out);
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{v}");
    assert_eq!(messages[0]["outgoing_id"].to_string(), failed);
    assert_eq!(
        messages[0]["recipients"][0]["address"],
        "nobody@sandbox.local"
    );
    assert_eq!(messages[0]["recipients"][0]["outcome"], "failed");
    // The outbox's own view is still there, under its own name.
    assert_eq!(messages[0]["outbox"]["state"], "submitted");
    daemon.stop();
    env.lab.sandbox.shutdown().await;
}

/// Text `show` gives an attachment's ingest failure reason (before, only --json had it), and
/// `--mark-read` on a phiMail message says why no read receipt was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_says_why_ingest_failed_and_what_mark_read_did() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let cli = Cli::new(&env, &[B]);
    let daemon = cli.daemon(&env).await;
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: "results".into(),
        body: b"see attachment".to_vec(),
        attachments: vec![(
            "broken.xml".into(),
            "application/xml".into(),
            include_bytes!("fixtures/hostile/malformed.xml").to_vec(),
        )],
    });
    let out = cli.run(&["poll"]).await;
    assert!(text(&out).contains("1 received"), "{}", text(&out));
    let store = env.store();
    let id = store.list_messages(false, true, None).unwrap()[0].id;
    assert!(
        wait_until(15, || env.store().incoming(id).unwrap().attachments[0]
            .ingest_error
            .is_some())
        .await
    );
    let reason = store.incoming(id).unwrap().attachments[0]
        .ingest_error
        .clone()
        .unwrap();
    daemon.stop();

    let out = cli.run(&["show", &id.to_string(), "--mark-read"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains(&format!("#1 failed: {reason}")), "{shown}");
    assert!(
        shown.contains("no read receipt sent") && shown.contains("phiMail"),
        "{shown}"
    );
    let out = cli
        .run(&["show", &id.to_string(), "--mark-read", "--json"])
        .await;
    let v = json(&out);
    assert_eq!(v["mark_read"]["result"], "not_possible");
    assert_eq!(
        v["message"]["attachments"][0]["ingest_error"],
        reason.as_str()
    );
    assert!(store.mdns_for(id).unwrap().is_empty(), "nothing was owed");
    env.lab.sandbox.shutdown().await;
}

/// `show --mark-read` on a message that asked for receipts (as the S/MIME transport stores one,
/// raw bytes and MDN request included) says what it queued and for whom, then that it is queued
/// already; the store holds exactly one displayed MDN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_read_says_what_it_queued_and_for_whom() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let cli = Cli::new(&env, &[B]);
    let mut store = env.store();
    let id = store
        .store_incoming(
            B,
            &directd::hisp::ReceivedMail {
                recipient: B.into(),
                sender: "dr.lee@direct.other.org".into(),
                hisp_id: "<m1@direct.other.org>".into(),
                headers: vec![("Subject".into(), "referral".into())],
                body_type: "text/plain".into(),
                body: b"see attached".to_vec(),
                attachments: vec![],
                raw: Some(b"(the S/MIME message as received)".to_vec()),
                verdict: None,
                mdn: Some(directd::hisp::MdnRequest {
                    to: "mdn@direct.other.org".into(),
                    original_message_id: "<m1@direct.other.org>".into(),
                    final_delivery: false,
                }),
            },
        )
        .unwrap()
        .id()
        .to_string();
    let out = cli.run(&["show", &id, "--mark-read"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("read receipt (a displayed MDN) queued for mdn@direct.other.org"),
        "{}",
        text(&out)
    );
    let out = cli.run(&["show", &id, "--mark-read", "--json"]).await;
    let v = json(&out);
    assert_eq!(v["mark_read"]["result"], "already_queued", "{v}");
    assert_eq!(v["mark_read"]["to"], "mdn@direct.other.org");
    let displayed: Vec<_> = store
        .mdns_for(id.parse().unwrap())
        .unwrap()
        .into_iter()
        .filter(|(d, _)| d == "displayed")
        .collect();
    assert_eq!(displayed.len(), 1);
    let audit = json(&cli.run(&["audit", "--json"]).await);
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "mark-read" && e["detail"] == "mdn@direct.other.org"),
        "{audit}"
    );
    env.lab.sandbox.shutdown().await;
}
