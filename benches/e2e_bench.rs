//! End-to-end throughput through the sandbox HISP: `E2E_MESSAGES` messages (default 500) queued
//! from clinic A to clinic B with final delivery requested, each carrying the demo C-CDA
//! (`samples/demo-ccd.xml`, its document id made unique per message so every one is a new
//! clinical document rather than a sha256 duplicate). The sandbox (`Lab`) and the daemon
//! (`directd::daemon::Daemon`, the same code `directd run` runs) share one tokio runtime in this
//! process, as `tests/support/sandbox.rs` does; the store is a real SQLite file in a temp dir (WAL,
//! `synchronous=FULL`).
//!
//! The clock starts when the daemon starts (the outbox is already filled) and stops when every
//! message is `dispatched` for its recipient, stored once in B's inbox, and its attachment
//! ingested. The daemon uses the lab timings (`poll_interval_secs = 0.2`,
//! `outbox_check_ms = 50`), so the figure includes the daemon's own pacing.
//!
//! Output: the phase times, then a `RESULT` line for `benches/run.sh`.

use std::path::Path;
use std::time::{Duration, Instant};

use directd::config::Config;
use directd::daemon::{Daemon, Shutdown};
use directd::hisp::{OutPart, OutRecipient, PartKind, RecipientKind};
use directd::sandbox::lab::Lab;
use directd::sandbox::SandboxConfig;
use directd::store::{NewOutgoing, Store};

const A: &str = "clinic-a@sandbox.local";
const B: &str = "clinic-b@sandbox.local";
const PW: &str = "pw";
const CCDA: &str = include_str!("../samples/demo-ccd.xml");
const DOC_ID: &str = "extension=\"DEMO-0001\"";

/// The demo C-CDA with a per-message document id of the same length.
fn ccda(i: usize) -> Vec<u8> {
    assert!(
        CCDA.contains(DOC_ID),
        "samples/demo-ccd.xml changed its document id"
    );
    CCDA.replacen(DOC_ID, &format!("extension=\"E{i:08}\""), 1)
        .into_bytes()
}

/// Progress counters read with a separate connection, one query each.
struct Progress {
    dispatched: i64,
    stored: i64,
    ingested: i64,
}

fn progress(conn: &rusqlite::Connection) -> Progress {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    Progress {
        dispatched: count("SELECT count(*) FROM recipients WHERE state = 'dispatched'"),
        stored: count("SELECT count(*) FROM incoming"),
        ingested: count("SELECT count(*) FROM attachments WHERE ingest_state = 'ingested'"),
    }
}

fn enqueue(store_path: &Path, n: usize) {
    let mut store = Store::open(store_path, Duration::from_secs(5)).unwrap();
    for i in 0..n {
        store
            .enqueue(&NewOutgoing {
                account: Some(A.into()),
                sender: A.into(),
                recipients: vec![OutRecipient {
                    address: B.into(),
                    kind: RecipientKind::To,
                }],
                subject: Some(format!("e2e {i}")),
                final_delivery: true,
                parts: vec![
                    OutPart {
                        kind: PartKind::Text,
                        filename: None,
                        data: format!("body of e2e {i}").into_bytes(),
                    },
                    OutPart {
                        kind: PartKind::Cda,
                        filename: Some("ccd.xml".into()),
                        data: ccda(i),
                    },
                ],
            })
            .unwrap();
    }
}

fn main() {
    let n: usize = std::env::var("E2E_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let timeout = Duration::from_secs(
        std::env::var("E2E_TIMEOUT_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::start(
            dir.path(),
            SandboxConfig {
                accounts: vec![(A.into(), PW.into()), (B.into(), PW.into())],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let store_path = dir.path().join("store.db");
        let t = Instant::now();
        enqueue(&store_path, n);
        println!(
            "queued {n} messages ({} B C-CDA each) in {:.2} s (untimed)",
            CCDA.len(),
            t.elapsed().as_secs_f64()
        );

        let config =
            Config::from_toml(&lab.daemon_toml(&store_path, &[(A, PW), (B, PW)], "")).unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let daemon = Daemon::new(config, shutdown).unwrap();
        let (wake, wake_rx) = tokio::sync::mpsc::channel(1);
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let _wake = wake;
            daemon.run(wake_rx).await
        });

        let conn = rusqlite::Connection::open_with_flags(
            &store_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let n = n as i64;
        let (mut t_stored, mut t_ingested, mut t_dispatched) = (None, None, None);
        let finished = loop {
            let p = progress(&conn);
            let now = started.elapsed();
            if p.stored >= n && t_stored.is_none() {
                t_stored = Some(now);
            }
            if p.ingested >= n && t_ingested.is_none() {
                t_ingested = Some(now);
            }
            if p.dispatched >= n && t_dispatched.is_none() {
                t_dispatched = Some(now);
            }
            if p.stored >= n && p.ingested >= n && p.dispatched >= n {
                break Some(now);
            }
            if now > timeout {
                println!(
                    "TIMEOUT after {:?}: dispatched {}, stored {}, ingested {} of {n}",
                    now, p.dispatched, p.stored, p.ingested
                );
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("daemon stops")
            .unwrap()
            .unwrap();
        let p = progress(&conn);
        assert_eq!(p.stored, n, "every message stored exactly once");
        lab.sandbox.shutdown().await;

        let Some(total) = finished else {
            std::process::exit(1);
        };
        let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
        println!(
            "all {n} stored at {:.2} s, ingested at {:.2} s, dispatched at {:.2} s",
            secs(t_stored),
            secs(t_ingested),
            secs(t_dispatched)
        );
        let rate = n as f64 / total.as_secs_f64();
        println!(
            "{n} messages end to end in {:.2} s: {rate:.1} messages/s",
            total.as_secs_f64()
        );
        println!("RESULT e2e_msgs_per_s {rate:.2} ({n} messages)");
    });
}
