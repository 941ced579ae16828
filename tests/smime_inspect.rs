//! `directd inspect` on sealed messages: the verdict an administrator reads.
#[path = "smime_support/mod.rs"]
mod common;

use std::process::Command;

use common::{pki, set_mode, write_pem, INNER};
use directd::smime::{seal, SealOptions};

const BIN: &str = env!("CARGO_BIN_EXE_directd");

#[test]
fn inspect_reports_the_verdict_and_refusals() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let sealed = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let msg = dir.path().join("msg.eml");
    std::fs::write(&msg, &sealed).unwrap();
    let (bob_cert, bob_key) = write_pem(dir.path(), "bob", &pki.bob);
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pki.root.cert.to_pem().unwrap()).unwrap();
    let run = |file: &std::path::Path, extra: &[&str]| {
        Command::new(BIN)
            .args([
                "--config",
                "/nonexistent-ok-because-keys-given.toml",
                "inspect",
            ])
            .arg(file)
            .args([
                "--key",
                bob_key.to_str().unwrap(),
                "--cert",
                bob_cert.to_str().unwrap(),
                "--anchor",
                root.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };

    let out = run(
        &msg,
        &[
            "--json",
            "--mail-from",
            "alice@a.example",
            "--rcpt-to",
            "bob@b.example",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["verdict"]["signers"][0]["digest"], "sha-256");
    assert_eq!(v["verdict"]["envelope"], "passed");
    assert_eq!(v["verdict"]["from"], "alice@a.example");

    let out = run(&msg, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ACCEPTED") && text.contains("trusted by"),
        "{text}"
    );

    // A message whose envelope sender is not the signer is refused with the reason.
    let out = run(
        &msg,
        &[
            "--mail-from",
            "mallory@evil.example",
            "--rcpt-to",
            "bob@b.example",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("REFUSED: SMTP envelope does not match"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Garbage is refused, not a crash.
    let junk = dir.path().join("junk.eml");
    std::fs::write(&junk, b"From: x@y.example\r\n\r\nhello").unwrap();
    let out = run(&junk, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("REFUSED: message is not S/MIME enveloped-data"));

    // A world-readable private key is refused before use.
    set_mode(&bob_key, 0o644);
    let out = run(&msg, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
}
