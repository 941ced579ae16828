//! Web console page times on a large store: `WEB_MESSAGES` received messages (default 80,000)
//! and `WEB_SENT` sent ones (default 20,000, two recipients and their delivery events each), of
//! which `WEB_DOCUMENTS` (default 20,000) carry the demo C-CDA as an ingested document (each with
//! its own sha256 and patient identifier, so 20,000 documents and patients), half of the
//! received ones marked read.
//!
//! The console (`directd::web::serve`, what `directd web` runs) serves plain HTTP on loopback in
//! this process; one client asks for one page at a time over a kept-alive connection, so each
//! figure is the server's time plus a loopback round trip. `benches/run.sh` runs it pinned to one
//! CPU (taskset). Pages: the inbox (unread first), the Sent page (50 messages with timelines), a
//! random message, a random document. Output: p50/p95 per page, then `RESULT` lines.

use std::time::{Duration, Instant};

use directd::store::clinical::{insert_document, Source};
use directd::store::web::{Role, SessionStage};
use directd::store::Store;

const A: &str = "clinic-a@bench.example";
const CCDA: &[u8] = include_bytes!("../samples/demo-ccd.xml");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The store, filled in a few transactions straight through SQL (the daemon's path would take
/// hours for this many messages and is measured by e2e_bench).
fn fill(path: &std::path::Path, received: usize, sent: usize, documents: usize) {
    let store = Store::open(path, Duration::from_secs(5)).unwrap();
    drop(store);
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let doc = directd::ingest::extract_ccda(CCDA, &directd::ingest::Limits::default()).unwrap();
    let tx = conn.transaction().unwrap();
    let at = |i: usize| {
        format!(
            "2026-{:02}-{:02}T{:02}:{:02}:00Z",
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60
        )
    };
    for i in 0..received {
        tx.execute(
            "INSERT INTO incoming (account, hisp_message_id, recipient, sender, subject, date, headers_json, body_type, body, received_at)
             VALUES (?1, ?2, ?1, ?3, ?4, NULL, '[]', 'text/plain', ?5, ?6)",
            rusqlite::params![
                A,
                format!("h{i}"),
                format!("sender{}@other{}.example", i % 500, i % 37),
                format!("Referral {i}"),
                b"Please see the attached summary.".as_slice(),
                at(i)
            ],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO audit_log (at, actor, action, message_ref) VALUES (?1, 'directd', 'receive', ?2)",
            rusqlite::params![at(i), format!("in:{id}")],
        )
        .unwrap();
        if i % 2 == 0 {
            tx.execute(
                "INSERT INTO audit_log (at, actor, action, message_ref) VALUES (?1, 'bench', 'mark-read', ?2)",
                rusqlite::params![at(i), format!("in:{id}")],
            )
            .unwrap();
        }
        if i < documents {
            tx.execute(
                "INSERT INTO attachments (incoming_id, seq, filename, declared_type, data, size, sha256, ingest_state)
                 VALUES (?1, 1, 'summary.xml', 'application/xml', ?2, ?3, ?4, 'ingested')",
                rusqlite::params![id, CCDA, CCDA.len() as i64, format!("{i:064x}")],
            )
            .unwrap();
            let attachment = tx.last_insert_rowid();
            let mut d = doc.clone();
            d.sha256 = format!("{i:064x}");
            if let Some(p) = d.patient.as_mut() {
                for pid in &mut p.ids {
                    pid.extension = Some(format!("MRN-B{i}"));
                }
            }
            insert_document(
                &tx,
                &Source {
                    attachment_id: Some(attachment),
                    source_path: None,
                    xdm_uri: None,
                },
                &d,
            )
            .unwrap();
        }
    }
    for i in 0..sent {
        tx.execute(
            "INSERT INTO outgoing (account, sender, subject, final_delivery, created_at, state, next_attempt_at, submitted_at)
             VALUES (?1, ?1, ?2, 1, ?3, 'submitted', ?3, ?3)",
            rusqlite::params![A, format!("Sent {i}"), at(i)],
        )
        .unwrap();
        let out = tx.last_insert_rowid();
        for r in 0..2 {
            tx.execute(
                "INSERT INTO recipients (outgoing_id, address, kind, state, hisp_message_id, submitted_at, updated_at)
                 VALUES (?1, ?2, 'to', 'dispatched', ?3, ?4, ?4)",
                rusqlite::params![out, format!("dr{r}@other{}.example", i % 37), format!("q{i}-{r}"), at(i)],
            )
            .unwrap();
            let rid = tx.last_insert_rowid();
            for state in ["queued", "submitted", "dispatched"] {
                tx.execute(
                    "INSERT INTO delivery_events (recipient_id, hisp_message_id, at, state, source, applied) VALUES (?1, ?2, ?3, ?4, 'hisp', 1)",
                    rusqlite::params![rid, format!("q{i}-{r}"), at(i), state],
                )
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE").unwrap();
}

/// A page's name and the path of its `i`-th request.
type Page<'a> = (&'a str, Box<dyn Fn(usize) -> String>);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let received = env_usize("WEB_MESSAGES", 80_000);
    let sent = env_usize("WEB_SENT", 20_000);
    let documents = env_usize("WEB_DOCUMENTS", 20_000).min(received);
    let rounds = env_usize("WEB_ROUNDS", 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.db");
    let t = Instant::now();
    fill(&path, received, sent, documents);
    eprintln!(
        "filled {received} received + {sent} sent messages, {documents} documents in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut store = Store::open(&path, Duration::from_secs(5)).unwrap();
    let user = store
        .web_user_add(
            "bench",
            "bench",
            Role::Admin,
            "$argon2id$unused",
            &[A.to_owned()],
        )
        .unwrap();
    let token = "b".repeat(64);
    store
        .web_session_create(
            &directd::web::auth::token_hash(&token),
            user,
            &"c".repeat(64),
            SessionStage::Full,
            None,
            directd::store::now_ms(),
        )
        .unwrap();
    let first_doc: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT min(id) FROM documents", [], |r| r.get(0))
        .unwrap();
    let web = directd::web::WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        idle_timeout: Duration::from_secs(3600),
    };
    let config = directd::config::Config::from_toml("").unwrap();
    let app = directd::web::App::new(store, web, config);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(directd::web::serve(
            app,
            std::future::pending(),
            move |addr, _| {
                let _ = addr_tx.send(addr);
            },
        ));
        let base = format!("http://{}", addr_rx.await.unwrap());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = format!("directd_session={token}");
        // A cheap deterministic spread of ids over the whole store.
        let pick = |i: usize, n: usize| (i * 7919) % n.max(1);
        let pages: Vec<Page> = vec![
            ("inbox", Box::new(|_| "/inbox".to_owned())),
            ("sent", Box::new(|_| "/sent".to_owned())),
            (
                "message",
                Box::new(move |i| format!("/message/{}", 1 + pick(i, received))),
            ),
            (
                "document",
                Box::new(move |i| format!("/document/{}", first_doc + pick(i, documents) as i64)),
            ),
        ];
        for (name, url) in &pages {
            let mut times = Vec::with_capacity(rounds);
            for i in 0..rounds + 5 {
                let t = Instant::now();
                let res = http
                    .get(format!("{base}{}", url(i)))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body = res.bytes().await.unwrap();
                assert_eq!(
                    status,
                    200,
                    "{name} {}: {}",
                    url(i),
                    String::from_utf8_lossy(&body)
                );
                // The first few warm SQLite's page cache and prepared statements.
                if i >= 5 {
                    times.push(t.elapsed());
                }
            }
            times.sort();
            let (p50, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
            println!(
                "{name:9} p50 {:7.2} ms  p95 {:7.2} ms  ({rounds} requests)",
                p50.as_secs_f64() * 1e3,
                p95.as_secs_f64() * 1e3
            );
            println!("RESULT web_{name}_p95_ms {:.2}", p95.as_secs_f64() * 1e3);
        }
    });
}
