//! Backups taken while the daemon works, and the retention policy: a purge removes what the
//! policy says and never what it keeps (delivery history, the audit trail, clinical rows,
//! anything a retry or ingestion still needs).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use directd::sandbox::InjectMail;
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

fn directd(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn inject(env: &TestEnv, subject: &str) {
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: subject.into(),
        body: b"result attached".to_vec(),
        attachments: vec![("ccd.xml".into(), "application/xml".into(), CCDA.to_vec())],
    });
}

/// `directd backup` while the daemon is taking in mail: the copy opens, passes its integrity
/// check, holds every message committed before it started, is 0600, and is never overwritten.
#[tokio::test]
async fn a_backup_taken_while_the_daemon_works_holds_every_committed_message() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let config = env.dir.path().join("directd.toml");
    write_private(
        &config,
        env.lab.daemon_toml(&env.store_path, &[(B, PW)], ""),
    )
    .unwrap();
    let mut daemon = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "error")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for i in 0..40 {
        inject(&env, &format!("result {i}"));
    }
    assert!(wait_until(20, || env.store().incoming_count().unwrap_or(0) >= 10).await);
    let committed = env.store().incoming_count().unwrap();
    let dest = env.dir.path().join("backup.db");
    let out = directd(&config, &["backup", dest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 40..60 {
        inject(&env, &format!("result {i}"));
    }
    let all_in = wait_until(30, || env.store().incoming_count().unwrap_or(0) == 60).await;
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    daemon.wait().unwrap();
    assert!(all_in);

    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let copy = directd::store::Store::open_existing(&dest, Duration::from_secs(5)).unwrap();
    let in_copy = copy.incoming_count().unwrap();
    assert!(
        in_copy >= committed && in_copy <= 40,
        "{in_copy} in the copy, {committed} committed before it"
    );
    let rows = copy.list_messages(false, true, None).unwrap();
    for m in &rows {
        let detail = copy.incoming(m.id).unwrap();
        assert_eq!(
            copy.attachment_data(detail.attachments[0].id).unwrap(),
            CCDA
        );
    }
    let again = directd(&config, &["backup", dest.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    let audit = directd(&config, &["audit"]);
    assert!(String::from_utf8_lossy(&audit.stdout).contains("backup"));
    env.lab.sandbox.shutdown().await;
}

/// The policy removes old content and old quarantines, keeps what is recent, pending or
/// history, and an audit record younger than six years cannot be deleted even by hand.
#[tokio::test]
async fn a_purge_removes_what_the_policy_says_and_nothing_it_keeps() {
    let mut sb = sandbox_config(&[A, B]);
    sb.remote.insert(
        "slow.example".into(),
        directd::sandbox::RemoteBehaviour::Never,
    );
    let env = TestEnv::start(sb).await;
    let sent = env.enqueue(A, &[B], "old and delivered", true);
    let pending = env.enqueue(A, &["dr@slow.example"], "old and unconfirmed", true);
    inject(&env, "old result");
    let daemon = RunningDaemon::start(env.config(&[A, B], ""));
    let store = env.store();
    assert!(
        wait_until(20, || {
            env.states(sent)[0].1 == "dispatched"
                && store.incoming_count().unwrap() == 2
                && store
                    .list_messages(false, true, None)
                    .unwrap()
                    .iter()
                    .all(|m| {
                        store
                            .incoming(m.id)
                            .unwrap()
                            .attachments
                            .iter()
                            .all(|a| a.ingest_state != "pending")
                    })
        })
        .await
    );
    daemon.stop().await;
    let old_rows: Vec<i64> = store
        .list_messages(false, true, None)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(old_rows.len(), 2);
    // Age everything received and sent so far; then one fresh message, and two quarantines.
    let sql = rusqlite::Connection::open(&env.store_path).unwrap();
    sql.execute_batch(
        "UPDATE incoming SET received_at = '2020-01-01T00:00:00Z';
         UPDATE outgoing SET created_at = '2020-01-01T00:00:00Z';
         INSERT INTO audit_log (at, actor, action) VALUES ('2015-01-01T00:00:00Z', 'old', 'show');
         INSERT INTO audit_log (at, actor, action) VALUES ('2024-01-01T00:00:00Z', 'recent', 'show');",
    )
    .unwrap();
    let mut writer = env.store();
    for (id, age) in [("q-old", "2020-01-01T00:00:00Z"), ("q-new", "")] {
        let q = writer
            .store_rejected(
                B,
                &directd::hisp::RejectedMail {
                    hisp_id: id.into(),
                    recipient: B.into(),
                    sender: "x@y.example".into(),
                    raw: b"raw bytes".to_vec(),
                    reason: "test".into(),
                    mdn: None,
                },
            )
            .unwrap()
            .id();
        if !age.is_empty() {
            sql.execute(
                "UPDATE incoming SET received_at = ?1 WHERE id = ?2",
                rusqlite::params![age, q],
            )
            .unwrap();
        }
    }
    let fresh = writer
        .store_incoming(
            B,
            &directd::hisp::ReceivedMail {
                recipient: B.into(),
                sender: "lab@results.example".into(),
                hisp_id: "fresh-1".into(),
                headers: vec![],
                body_type: "text/plain".into(),
                body: b"new body".to_vec(),
                attachments: vec![],
                raw: None,
                verdict: None,
                mdn: None,
            },
        )
        .unwrap()
        .id();
    let documents = store.list_documents(None).unwrap().len();
    assert!(documents >= 1);
    let events_before: i64 = sql
        .query_row("SELECT count(*) FROM delivery_events", [], |r| r.get(0))
        .unwrap();

    let config = env.dir.path().join("purge.toml");
    write_private(
        &config,
        format!(
            "[store]\npath = {:?}\n[retention]\ncontent_days = 30\nquarantine_days = 10\naudit_days = 2190\n",
            env.store_path
        ),
    )
    .unwrap();
    let dry = directd(&config, &["purge", "--json"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(v["applied"], false);
    assert_eq!(v["removed"]["received_messages"], 2);
    assert_eq!(v["removed"]["attachments"], 2);
    assert_eq!(v["removed"]["sent_messages"], 1, "only the finished one");
    assert_eq!(v["removed"]["quarantined_messages"], 1);
    assert_eq!(v["removed"]["audit_records"], 1);
    // A dry run changes nothing.
    let first = store.incoming(old_rows[0]).unwrap();
    assert_eq!(
        store.attachment_data(first.attachments[0].id).unwrap(),
        CCDA
    );

    let applied = directd(&config, &["purge", "--apply"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    for id in &old_rows {
        let d = store.incoming(*id).unwrap();
        assert!(d.body.is_empty());
        let a = &d.attachments[0];
        assert!(store.attachment_data(a.id).unwrap().is_empty());
        assert_eq!(a.size, CCDA.len() as i64, "size and sha256 are kept");
    }
    assert_eq!(store.incoming(fresh).unwrap().body, b"new body");
    assert!(store
        .load_outgoing(sent)
        .unwrap()
        .parts
        .iter()
        .all(|p| p.data.is_empty()));
    assert!(
        store
            .load_outgoing(pending)
            .unwrap()
            .parts
            .iter()
            .all(|p| !p.data.is_empty()),
        "a message still waiting for its outcome keeps its content"
    );
    assert_eq!(
        store.list_documents(None).unwrap().len(),
        documents,
        "clinical rows stay"
    );
    let events_after: i64 = sql
        .query_row("SELECT count(*) FROM delivery_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events_before, events_after, "delivery history stays");
    let actors: Vec<String> = store
        .audit_rows(None)
        .unwrap()
        .into_iter()
        .map(|r| r.actor)
        .collect();
    assert!(!actors.iter().any(|a| a == "old"));
    assert!(actors.iter().any(|a| a == "recent"));
    assert!(store
        .audit_rows(None)
        .unwrap()
        .iter()
        .any(|r| r.action == "purge"));
    let by_hand = sql.execute("DELETE FROM audit_log WHERE actor = 'recent'", []);
    assert!(
        by_hand.is_err(),
        "the store refuses to delete young audit records"
    );
    // Nothing left to do: a second purge removes nothing.
    let again = directd(&config, &["purge", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["removed"]["received_messages"], 0);
    env.lab.sandbox.shutdown().await;
}
