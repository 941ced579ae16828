//! Soak: `SOAK_MESSAGES` messages (default 10,000) pushed through the sandbox HISP → the real
//! `directd run` binary → the store → ingestion, while the daemon process's resident memory is
//! sampled from /proc. Ignored by default (it takes minutes); run it with
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Messages are injected into B's sandbox inbox in batches of `SOAK_BATCH` (default 250), a new
//! batch whenever fewer than one batch is waiting, so the HISP backlog (held in this test process,
//! not in the daemon) stays bounded and the daemon works continuously. Each carries the demo
//! C-CDA with a unique document id, so every message becomes a new clinical document.
//!
//! Asserted: every injected message is stored exactly once (by HISP id) and its attachment is
//! ingested; the daemon exits cleanly on SIGTERM; and RSS after the run is at most
//! `RSS@20% + max(16 MiB, RSS@20% / 4)`. Why that bound: by 20% (2,000 messages) every long-lived
//! structure is warm — the tokio runtime and its worker threads, the rustls client config, the
//! SQLite connection with its page cache (bounded at SQLite's default 2 MiB) and prepared-statement
//! cache — and nothing the daemon keeps grows with the number of messages handled: each message
//! is held only while it is stored, and ingestion holds at most 32 attachments at a time. The
//! remaining 80% of the run should therefore add nothing but allocator fragmentation (glibc keeps
//! freed memory in per-thread arenas); a leak of even 2 KiB per message (16 MiB over 8,000) fails.
//! No speed is asserted: throughput is printed, and speed targets live in `benches/`.

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use directd::sandbox::InjectMail;
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");
const DOC_ID: &str = "extension=\"DEMO-0001\"";
const MIB: f64 = 1024.0 * 1024.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) of `pid` in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The daemon colours its log even into a file; drop the escape sequences before matching.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// (stored, ingested) as the store sees them.
fn counts(conn: &rusqlite::Connection) -> (usize, usize) {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize;
    (
        count("SELECT count(*) FROM incoming"),
        count("SELECT count(*) FROM attachments WHERE ingest_state = 'ingested'"),
    )
}

struct Sample {
    at: Duration,
    stored: usize,
    ingested: usize,
    rss: u64,
    label: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: minutes long; cargo test --release --test soak -- --ignored --nocapture"]
async fn soak_stores_every_message_once_with_bounded_memory() {
    let total = env_usize("SOAK_MESSAGES", 10_000);
    let batch = env_usize("SOAK_BATCH", 250).max(1);
    let timeout = Duration::from_secs(env_usize("SOAK_TIMEOUT_SECS", 3600) as u64);
    assert!(total >= 10, "SOAK_MESSAGES must be at least 10");
    assert!(
        CCDA.windows(DOC_ID.len()).any(|w| w == DOC_ID.as_bytes()),
        "samples/demo-ccd.xml changed its document id"
    );
    let ccda_text = std::str::from_utf8(CCDA).unwrap();

    let env = TestEnv::start(sandbox_config(&[B])).await;
    let sandbox = &env.lab.sandbox;
    let config_path = env.dir.path().join("directd.toml");
    write_private(
        &config_path,
        env.lab.daemon_toml(&env.store_path, &[(B, PW)], ""),
    )
    .unwrap();
    let log_path = env.dir.path().join("directd.log");
    // Default (info) logging, as under systemd; one line per received message.
    let mut child = Command::new(BIN)
        .args(["--config", config_path.to_str().unwrap(), "run"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();

    // The daemon creates the store; wait for it before opening a reader.
    if !wait_until(30, || env.store_path.exists()).await {
        panic!(
            "daemon did not create its store; status {:?}; log:\n{}",
            child.try_wait(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let conn = rusqlite::Connection::open_with_flags(
        &env.store_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();

    let started = Instant::now();
    let mut samples = vec![Sample {
        at: Duration::ZERO,
        stored: 0,
        ingested: 0,
        rss: rss(pid).0,
        label: "idle, before the first message",
    }];
    let mut injected: HashSet<String> = HashSet::with_capacity(total);
    let step = total.div_ceil(20); // a sample every 5%
    let mut next_sample = step;
    let mut rss_at_20 = None;
    let mut stored = 0;
    let mut ingested = 0;
    // (time, ingested) when the last message was stored: how far ingestion lags reception.
    let mut end_of_inflow: Option<(Duration, usize)> = None;
    while ingested < total || stored < total {
        assert!(
            started.elapsed() < timeout,
            "soak timed out: {stored} stored, {ingested} ingested of {total}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "daemon exited; log: {}",
            log_path.display()
        );
        if injected.len() < total && sandbox.queue_len(B) < batch {
            let upto = (injected.len() + batch).min(total);
            for i in injected.len()..upto {
                let doc = ccda_text.replacen(DOC_ID, &format!("extension=\"S{i:08}\""), 1);
                let id = sandbox.inject_mail(InjectMail {
                    to: B.into(),
                    from: "lab@results.example".into(),
                    subject: format!("soak {i}"),
                    body: format!("soak message {i}").into_bytes(),
                    attachments: vec![(
                        "ccd.xml".into(),
                        "application/xml".into(),
                        doc.into_bytes(),
                    )],
                });
                assert!(injected.insert(id), "sandbox reused a message id");
            }
        }
        (stored, ingested) = counts(&conn);
        if stored >= total && end_of_inflow.is_none() {
            end_of_inflow = Some((started.elapsed(), ingested));
        }
        // Progress is messages received and committed; ingestion is reported beside it (it runs
        // between poll sessions, so it may lag).
        while stored >= next_sample && next_sample <= total {
            let r = rss(pid).0;
            let pct = next_sample * 100 / total;
            if pct == 20 {
                rss_at_20 = Some(r);
            }
            samples.push(Sample {
                at: started.elapsed(),
                stored,
                ingested,
                rss: r,
                label: if pct == 20 { "20% (reference)" } else { "" },
            });
            next_sample += step;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();

    // Let the daemon settle through a few idle polls before the final reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_end, hwm) = rss(pid);
    samples.push(Sample {
        at: started.elapsed(),
        stored,
        ingested,
        rss: rss_end,
        label: "after the run, 2 s idle",
    });

    assert!(Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success(), "clean SIGTERM exit");

    println!("\nsoak: {total} messages, batches of {batch}, daemon pid {pid}");
    println!("| t (s) | stored | ingested | msgs/s since previous | daemon RSS (MiB) | note |");
    println!("|---:|---:|---:|---:|---:|---|");
    let mut prev: Option<&Sample> = None;
    for s in &samples {
        let rate = prev
            .filter(|p| s.at > p.at && s.stored > p.stored)
            .map(|p| {
                format!(
                    "{:.0}",
                    (s.stored - p.stored) as f64 / (s.at - p.at).as_secs_f64()
                )
            })
            .unwrap_or_default();
        println!(
            "| {:.1} | {} | {} | {rate} | {:.1} | {} |",
            s.at.as_secs_f64(),
            s.stored,
            s.ingested,
            s.rss as f64 / MIB,
            s.label
        );
        prev = Some(s);
    }
    if let Some((at, done)) = end_of_inflow {
        println!(
            "ingestion lag at the end of inflow: {} of {total} attachments not yet ingested when the last message was stored ({:.1} s); all ingested {:.1} s later",
            total - done,
            at.as_secs_f64(),
            (elapsed - at).as_secs_f64()
        );
    }
    println!(
        "throughput: {total} messages stored and ingested in {:.1} s = {:.1} messages/s; peak RSS (VmHWM) {:.1} MiB",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        hwm as f64 / MIB
    );
    let log = strip_ansi(&std::fs::read_to_string(&log_path).unwrap_or_default());
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    println!(
        "daemon log: {} lines, {warnings} WARN/ERROR",
        log.lines().count()
    );
    // The longest poll session: the main loop (watchdog pings, ingestion, other accounts) waits
    // for it.
    let longest_ms = log
        .lines()
        .filter(|l| l.contains("poll complete"))
        .filter_map(|l| {
            l.rsplit_once("ms=")
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        })
        .max();
    println!("longest poll session: {longest_ms:?} ms");
    for l in log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(5)
    {
        println!("  {l}");
    }

    // Exactly once, by HISP id, and every attachment ingested.
    let mut stmt = conn
        .prepare("SELECT hisp_message_id FROM incoming WHERE account = ?1")
        .unwrap();
    let ids: Vec<String> = stmt
        .query_map([B], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "a HISP id was stored twice");
    assert_eq!(ids.len(), total, "stored count");
    for id in &injected {
        assert!(unique.contains(id), "message {id} was never stored");
    }
    let (stored, ingested) = counts(&conn);
    assert_eq!((stored, ingested), (total, total));
    let not_ingested: i64 = conn
        .query_row(
            "SELECT count(*) FROM attachments WHERE ingest_state != 'ingested'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(not_ingested, 0, "attachments not ingested");
    let documents: i64 = conn
        .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        documents as usize, total,
        "one clinical document per message"
    );
    assert_eq!(sandbox.queue_len(B), 0, "the HISP still holds messages");

    let reference = rss_at_20.expect("a sample at 20%");
    let allowed = reference + (16 * 1024 * 1024).max(reference / 4);
    println!(
        "RSS at 20%: {:.1} MiB; after the run: {:.1} MiB ({:+.1} MiB); allowed up to {:.1} MiB",
        reference as f64 / MIB,
        rss_end as f64 / MIB,
        (rss_end as f64 - reference as f64) / MIB,
        allowed as f64 / MIB
    );
    assert!(
        rss_end <= allowed,
        "daemon RSS grew from {reference} B at 20% to {rss_end} B after the run (allowed {allowed} B)"
    );
}
