//! Crash drill: the real `directd run` binary is SIGKILLed at seeded random moments while it works
//! through N incoming and M outgoing messages, and restarted each time. At the end every incoming
//! message is stored exactly once with byte-identical attachments, every outgoing message reached
//! every recipient, and any recipient that got a message twice got it only because the daemon died
//! after the HISP accepted a SEND and before the QUEUED reply was committed (the documented
//! at-least-once edge).

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use directd::sandbox::{Fault, FaultAction, InjectMail};
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");
const INCOMING: usize = 30;
const OUTGOING: usize = 12;
const KILLS: usize = 24;

/// xorshift64*: deterministic for a given seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_D1EC7D);
    println!("crash drill seed {seed} (set CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let env = TestEnv::start(sandbox_config(&[A, B, C])).await;
    let sandbox = &env.lab.sandbox;

    // Slow the steps around the commit so kills land inside them: mid-SHOW, between commit and
    // DONE, and during SEND.
    sandbox.inject_fault(
        Fault::new("SHOW", FaultAction::Delay(Duration::from_millis(15))).times(100_000),
    );
    sandbox.inject_fault(
        Fault::new("DONE", FaultAction::Delay(Duration::from_millis(60))).times(100_000),
    );
    sandbox.inject_fault(
        Fault::new("SEND", FaultAction::Delay(Duration::from_millis(40))).times(100_000),
    );

    let mut expected: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for i in 0..INCOMING {
        let attachments: Vec<(String, String, Vec<u8>)> = (0..2)
            .map(|k| {
                let len = 1 + rng.below(48 * 1024) as usize;
                (
                    format!("part{k}.bin"),
                    "application/octet-stream".to_string(),
                    rng.bytes(len),
                )
            })
            .collect();
        let id = sandbox.inject_mail(InjectMail {
            to: B.into(),
            from: "lab@results.example".into(),
            subject: format!("incoming {i}"),
            body: format!("body {i}").into_bytes(),
            attachments: attachments.clone(),
        });
        expected.insert(id, attachments.into_iter().map(|(_, _, d)| d).collect());
    }
    let outgoing: Vec<i64> = (0..OUTGOING)
        .map(|i| env.enqueue(A, &[B, C], &format!("outgoing {i}"), true))
        .collect();

    let config_path = env.dir.path().join("directd.toml");
    let toml = env
        .lab
        .daemon_toml(&env.store_path, &[(A, PW), (B, PW), (C, PW)], "")
        .replace("poll_interval_secs = 0.2", "poll_interval_secs = 0.05");
    write_private(&config_path, toml).unwrap();
    let spawn = || {
        Command::new(BIN)
            .args(["--config", config_path.to_str().unwrap(), "run"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    for _ in 0..KILLS {
        let mut child = spawn();
        tokio::time::sleep(Duration::from_millis(30 + rng.below(370))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    // A last run without interference finishes the work.
    let mut child = spawn();
    let store = env.store();
    let finished = wait_until(60, || {
        store.incoming_count().unwrap() as usize >= INCOMING + 2 * OUTGOING
            && outgoing
                .iter()
                .all(|&id| env.states(id).iter().all(|(_, s)| s == "dispatched"))
            && sandbox.queue_len(A) + sandbox.queue_len(B) + sandbox.queue_len(C) == 0
    })
    .await;
    assert!(Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success(), "clean SIGTERM exit");
    assert!(finished, "work did not finish after the last restart");

    // Every injected message exactly once, attachments byte-identical.
    let inbox = store.list_messages(false, true, None).unwrap();
    let mut stored_ids: HashMap<String, i64> = HashMap::new();
    for m in &inbox {
        let d = store.incoming(m.id).unwrap();
        assert!(
            stored_ids.insert(d.hisp_message_id.clone(), d.id).is_none(),
            "HISP id {} stored twice",
            d.hisp_message_id
        );
        if let Some(want) = expected.get(&d.hisp_message_id) {
            let got: Vec<Vec<u8>> = d
                .attachments
                .iter()
                .map(|a| store.attachment_data(a.id).unwrap())
                .collect();
            assert_eq!(&got, want, "attachments of {} differ", d.hisp_message_id);
        }
    }
    for id in expected.keys() {
        assert!(stored_ids.contains_key(id), "incoming {id} lost");
    }

    // Every outgoing message reached both recipients; duplicates only in the SEND window.
    let sent = sandbox.sent();
    let mut duplicates = 0;
    for &id in &outgoing {
        let subject = store.load_outgoing(id).unwrap().subject.unwrap();
        for r in store.recipients(id).unwrap() {
            let copies: Vec<_> = sent
                .iter()
                .filter(|s| s.subject == subject && s.recipient == r.address)
                .collect();
            assert!(!copies.is_empty(), "{} never got message {id}", r.address);
            let recorded = r
                .hisp_message_id
                .clone()
                .expect("submitted recipients have a HISP id");
            assert_eq!(
                copies.last().unwrap().id,
                recorded,
                "the committed id is the last accepted copy"
            );
            // Earlier copies were accepted by the HISP but their QUEUED line was never committed.
            for early in &copies[..copies.len() - 1] {
                assert!(store
                    .events(Some(id))
                    .unwrap()
                    .iter()
                    .all(|e| e.hisp_message_id.as_deref() != Some(&early.id)));
                duplicates += 1;
            }
        }
    }
    println!(
        "kills: {KILLS}; sessions killed between MAIL and DONE: {}; duplicate sends in the SEND window: {duplicates}; incoming stored: {}",
        sandbox.abandoned_mail(),
        inbox.len()
    );
    assert!(
        sandbox.abandoned_mail() > 0,
        "no kill landed between a MAIL and its DONE; the drill proved nothing"
    );
    env.lab.sandbox.shutdown().await;
}
