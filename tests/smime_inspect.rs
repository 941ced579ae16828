//! `directd inspect` on sealed messages: the verdict an administrator reads.
mod support;

use std::process::Command;

use directd::smime::{seal, SealOptions};
use support::json_schema;
use support::pki::{
    cli_encrypt, cli_sign, crl, openssl, p, pki, reseal_edited, set_mode, wrapped, write_pem, INNER,
};

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
    let config = dir.path().join("directd.toml");
    std::fs::write(&config, "[smime]\n").unwrap();
    let run = |file: &std::path::Path, extra: &[&str]| {
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "inspect"])
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
    let mut schema = json_schema::checker();
    schema.document("inspect", &v);
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
    let out = run(&junk, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema.document("inspect", &refused);
    assert_eq!(refused["accepted"], false);
    assert!(refused["verdict"].is_null() && refused["error"].is_string());

    // A world-readable private key is refused before use.
    set_mode(&bob_key, 0o644);
    let out = run(&msg, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
}

/// `inspect --key` judges as the daemon would: the configured revocation policy and CRLs (and
/// `--crl`) apply; refusals and the verdict read as words, serials as the certificate shows
/// them.
#[test]
fn inspect_applies_the_configured_policy_in_plain_words() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sealed = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let msg = d.join("msg.eml");
    std::fs::write(&msg, &sealed).unwrap();
    let (bob_cert, bob_key) = write_pem(d, "bob", &pki.bob);
    let root = d.join("root.pem");
    std::fs::write(&root, pki.root.cert.to_pem().unwrap()).unwrap();
    let write_crl = |name: &str, c: openssl::x509::X509Crl| {
        let path = d.join(name);
        std::fs::write(&path, c.to_pem().unwrap()).unwrap();
        path
    };
    let inter_crl = write_crl("inter.crl", crl(&pki.inter, &[], 7));
    let root_crl = write_crl("root.crl", crl(&pki.root, &[], 7));
    let alice_revoked = write_crl("alice-revoked.crl", crl(&pki.inter, &[&pki.alice], 7));
    let config = |name: &str, body: &str| {
        let path = d.join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let require = config("require.toml", "[smime]\nrevocation = \"require\"\n");
    let require_with_crls = config(
        "require-crls.toml",
        &format!(
            "[smime]\nrevocation = \"require\"\ncrl_files = [{:?}, {:?}]\n",
            inter_crl, root_crl
        ),
    );
    let best_effort = config("best-effort.toml", "[smime]\n");
    let run = |config: &std::path::Path, file: &std::path::Path, extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["--config", p(config), "inspect", p(file)])
            .args([
                "--key",
                p(&bob_key),
                "--cert",
                p(&bob_cert),
                "--anchor",
                p(&root),
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let (code, text) = run(&require, &msg, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with(
            "REFUSED: CN=alice, O=directd test: no usable CRL and revocation policy is Require"
        ),
        "{text}"
    );

    let (code, text) = run(&require_with_crls, &msg, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "revocation     require (a current CRL must cover every certificate), 2 CRLs loaded"
        ),
        "{text}"
    );

    let (code, text) = run(&best_effort, &msg, &["--crl", p(&alice_revoked)]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("REFUSED: CN=alice, O=directd test: certificate is revoked"),
        "{text}"
    );

    // The accepted verdict in words, bob's serial as `openssl x509 -serial` prints it.
    let (code, text) = run(&best_effort, &msg, &[]);
    assert_eq!(code, Some(0), "{text}");
    let serial =
        String::from_utf8(openssl(&["x509", "-in", p(&bob_cert), "-noout", "-serial"])).unwrap();
    let serial = serial.trim().trim_start_matches("serial=");
    assert!(
        text.contains(&format!(
            "decrypted by   CN=bob, O=directd test (serial {serial})"
        )),
        "{text}"
    );
    assert!(
        text.contains("signer         CN=alice, O=directd test (sha-256, address-bound)"),
        "{text}"
    );
    assert!(text.contains("RSA-OAEP (SHA-256) key transport"), "{text}");
    assert!(text.contains("envelope check not checked"), "{text}");
    assert!(!text.contains("Some("), "{text}");

    // A tampered body: the reason in words, not OpenSSL's error stack.
    let tampered = d.join("tampered.eml");
    let edited = reseal_edited(&sealed, &pki.bob, |s| s.replace("two weeks", "six weeks"));
    std::fs::write(&tampered, edited).unwrap();
    let (code, text) = run(&best_effort, &tampered, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("REFUSED: the signature does not match the signed content\n"),
        "{text}"
    );
    assert!(!text.contains("error:"), "{text}");

    // A signature without the signer's certificate names it by the serial the certificate
    // shows, not by its DER encoding.
    let signed = cli_sign(d, &wrapped(INNER), &pki.alice, &[], "sha256", &["-nocerts"]);
    let nocerts = d.join("nocerts.eml");
    std::fs::write(&nocerts, cli_encrypt(d, &signed, "-aes128", &bob_cert, &[])).unwrap();
    let alice_cert = d.join("cli-signer.crt");
    let serial = String::from_utf8(openssl(&[
        "x509",
        "-in",
        p(&alice_cert),
        "-noout",
        "-serial",
    ]))
    .unwrap();
    let serial = serial.trim().trim_start_matches("serial=");
    let (code, text) = run(&best_effort, &nocerts, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with(&format!(
            "REFUSED: signature carries no certificate for signer serial {serial}\n"
        )),
        "{text}"
    );
}
