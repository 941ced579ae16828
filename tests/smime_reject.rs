//! Every refusal, each asserting its own error variant.
mod support;

use directd::smime::{
    open, seal, Direction, Envelope, KeyStore, RevocationPolicy, SealOptions, SmimeError,
    TrustStore,
};
use openssl::hash::MessageDigest;
use support::pki::{
    build, build_with, cli_encrypt, cli_sign, cli_sign_encrypt, crl, openssl, p, pki,
    reseal_edited, rsa, wrapped, write_pem, CertKey, San, Variant, INNER,
};

fn seal_as(signer: &support::pki::CertKey, inner: &str) -> Vec<u8> {
    let pki = pki();
    seal(
        inner.as_bytes(),
        &signer.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap()
}

fn open_bob(msg: &[u8]) -> Result<directd::smime::Opened, SmimeError> {
    let pki = pki();
    open(msg, &pki.bob_keys(), &pki.bob_trust(), None)
}

/// A directd-sealed message from alice to bob with its signed entity edited after signing.
fn edit_signed(edit: impl Fn(String) -> String) -> Vec<u8> {
    let pki = pki();
    reseal_edited(&seal_as(&pki.alice, INNER), &pki.bob, edit)
}

/// An edit anywhere in the signed entity, body or inner header, breaks the signature.
#[test]
fn signed_entity_edited_after_signing() {
    type Edit = fn(String) -> String;
    let edits: [(&str, Edit); 2] = [
        ("body", |s| s.replace("two weeks", "six weeks")),
        ("inner header", |s| {
            s.replace("To: bob@b.example", "To: eve@b.example")
        }),
    ];
    for (name, edit) in edits {
        let msg = edit_signed(edit);
        let err = open_bob(&msg).expect_err(name);
        assert!(
            matches!(err, SmimeError::BadSignature(_)),
            "{name}: {err:?}"
        );
    }
}

/// Regression for the `smime_verify` fuzz finding: a digest algorithm nobody knows in the
/// SignedData's list is refused before OpenSSL's CMS_verify (which leaked memory on it).
#[test]
fn unknown_digest_algorithm_in_signed_data() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let signed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile/smime_unknown_digest_algorithm.eml");
    let msg = cli_encrypt(d, &signed, "-aes128", &bob_cert, &["-binary"]);
    let err = open_bob(&msg).unwrap_err();
    assert!(
        matches!(&err, SmimeError::UnsupportedDigest { oid } if oid.starts_with("2.16.840.1.101.3.4.")),
        "{err}"
    );
}

#[test]
fn wrong_key() {
    let pki = pki();
    let msg = seal_as(&pki.alice, INNER);
    let mut keys = KeyStore::new();
    keys.add(pki.carol.identity(&[]));
    assert!(matches!(
        open(&msg, &keys, &pki.bob_trust(), None),
        Err(SmimeError::NoMatchingRecipient)
    ));
}

#[test]
fn untrusted_signer() {
    let pki = pki();
    let msg = seal(
        INNER.as_bytes(),
        &pki.alice_rogue.identity(&[]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    assert!(matches!(open_bob(&msg), Err(SmimeError::Untrusted { .. })));
}

#[test]
fn anchors_are_per_domain_and_direction() {
    let pki = pki();
    let msg = seal_as(&pki.alice, INNER);
    // The root is trusted for a.example and for outgoing mail, not for b.example incoming.
    let mut trust = TrustStore::default();
    trust.add_anchor("a.example", Direction::Incoming, pki.root.cert.clone());
    trust.add_anchor("b.example", Direction::Outgoing, pki.root.cert.clone());
    trust.add_anchor(
        "b.example",
        Direction::Incoming,
        pki.rogue_root.cert.clone(),
    );
    assert!(matches!(
        open(&msg, &pki.bob_keys(), &trust, None),
        Err(SmimeError::Untrusted { .. })
    ));
    let empty = TrustStore::default();
    assert!(matches!(
        open(&msg, &pki.bob_keys(), &empty, None),
        Err(SmimeError::NoTrustAnchors { .. })
    ));
}

/// Messages the OpenSSL command line signs (with the intermediate) and encrypts for bob, as
/// other agents make them, each with the refusal `open` must give it: one row per rule.
#[test]
fn command_line_messages_refused_by_open() {
    type Refused = fn(&SmimeError) -> bool;
    let pki = pki();
    let cases: [(&str, &CertKey, &str, &str, Refused); 4] = [
        (
            "expired signer",
            &pki.alice_expired,
            "sha256",
            "-aes128",
            |e| matches!(e, SmimeError::Expired { .. }),
        ),
        (
            "RSA-1024 signer",
            &pki.alice_weak,
            "sha256",
            "-aes128",
            |e| matches!(e, SmimeError::WeakKey { bits: 1024, .. }),
        ),
        (
            "SHA-1 signature",
            &pki.alice,
            "sha1",
            "-aes128",
            |e| matches!(e, SmimeError::WeakDigest { alg } if alg == "sha-1"),
        ),
        (
            "3DES content",
            &pki.alice,
            "sha256",
            "-des3",
            |e| matches!(e, SmimeError::WeakCipher { alg } if alg == "des-ede3-cbc"),
        ),
    ];
    for (name, signer, md, cipher, refused) in cases {
        let dir = tempfile::tempdir().unwrap();
        let msg = cli_sign_encrypt(
            dir.path(),
            &wrapped(INNER),
            signer,
            &[&pki.inter],
            md,
            cipher,
            &pki.bob,
            &[],
        );
        let err = open_bob(&msg).expect_err(name);
        assert!(refused(&err), "{name}: {err:?}");
    }
}

/// Signers directd's own `seal` refuses to sign with, as `open` refuses what they signed.
#[test]
fn signers_refused_by_seal() {
    type Refused = fn(&SmimeError) -> bool;
    let pki = pki();
    let cases: [(&str, &CertKey, Refused); 2] = [
        ("expired signer", &pki.alice_expired, |e| {
            matches!(e, SmimeError::Expired { .. })
        }),
        ("RSA-1024 signer", &pki.alice_weak, |e| {
            matches!(e, SmimeError::WeakKey { bits: 1024, .. })
        }),
    ];
    for (name, signer, refused) in cases {
        let err = seal(
            INNER.as_bytes(),
            &signer.identity(&[]),
            std::slice::from_ref(&pki.bob.cert),
            &SealOptions::default(),
        )
        .expect_err(name);
        assert!(refused(&err), "{name}: {err:?}");
    }
}

/// AES-GCM whose ciphertext was altered after encryption: the tag check refuses it.
#[test]
fn aes_gcm_with_altered_ciphertext() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let msg = cli_sign_encrypt(
        d,
        &wrapped(INNER),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        "-aes-128-gcm",
        &pki.bob,
        &[],
    );
    assert!(open_bob(&msg).is_ok(), "the unaltered vector opens");
    let smime = d.join("gcm.eml");
    std::fs::write(&smime, &msg).unwrap();
    let der = d.join("gcm.der");
    openssl(&[
        "cms",
        "-cmsout",
        "-in",
        p(&smime),
        "-outform",
        "DER",
        "-out",
        p(&der),
    ]);
    let mut bytes = std::fs::read(&der).unwrap();
    // The mac (OCTET STRING of 16) ends the structure; the ciphertext lies just before it.
    let at = bytes.len() - 40;
    bytes[at] ^= 0x01;
    std::fs::write(&der, bytes).unwrap();
    openssl(&[
        "cms",
        "-cmsout",
        "-inform",
        "DER",
        "-in",
        p(&der),
        "-outform",
        "SMIME",
        "-out",
        p(&smime),
    ]);
    let err = open_bob(&std::fs::read(&smime).unwrap()).unwrap_err();
    assert!(matches!(err, SmimeError::DecryptFailed(_)), "{err:?}");
}

#[test]
fn signer_not_matching_from() {
    let pki = pki();
    let forged = INNER.replace("alice@a.example", "alice@evil.example");
    let msg = seal_as(&pki.alice, &forged);
    assert!(matches!(
        open_bob(&msg),
        Err(SmimeError::SignerMismatch { from, .. }) if from == "alice@evil.example"
    ));
    // A domain-bound certificate does not speak for another domain either.
    let msg = seal_as(&pki.a_domain, &forged);
    assert!(matches!(
        open_bob(&msg),
        Err(SmimeError::SignerMismatch { .. })
    ));
}

#[test]
fn unsigned_but_encrypted() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let plain = d.join("plain.eml");
    std::fs::write(&plain, wrapped(INNER)).unwrap();
    let msg = cli_encrypt(d, &plain, "-aes128", &bob_cert, &[]);
    assert!(matches!(
        open_bob(&msg),
        Err(SmimeError::Unsigned { found }) if found == "message/rfc822"
    ));
}

#[test]
fn rsa_1024_recipient_refused_on_seal() {
    let pki = pki();
    let err = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[]),
        std::slice::from_ref(&pki.alice_weak.cert),
        &SealOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SmimeError::WeakKey { .. }));
    let err = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[]),
        &[],
        &SealOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SmimeError::NoRecipients));
}

#[test]
fn envelope_mismatch() {
    let pki = pki();
    let msg = seal_as(&pki.alice, INNER);
    let wrong_sender = Envelope {
        mail_from: "mallory@a.example".into(),
        rcpt_to: vec!["bob@b.example".into()],
    };
    assert!(matches!(
        open(&msg, &pki.bob_keys(), &pki.bob_trust(), Some(&wrong_sender)),
        Err(SmimeError::EnvelopeMismatch { .. })
    ));
    let extra_rcpt = Envelope {
        mail_from: "alice@a.example".into(),
        rcpt_to: vec!["bob@b.example".into(), "eve@b.example".into()],
    };
    assert!(matches!(
        open(&msg, &pki.bob_keys(), &pki.bob_trust(), Some(&extra_rcpt)),
        Err(SmimeError::EnvelopeMismatch { reason }) if reason.contains("eve@b.example")
    ));
}

#[test]
fn plaintext_and_mixed_content() {
    assert!(matches!(
        open_bob(INNER.as_bytes()),
        Err(SmimeError::NotEncrypted { .. })
    ));
    let pki = pki();
    let sealed = String::from_utf8(seal_as(&pki.alice, INNER)).unwrap();
    let (_, body) = sealed.split_once("\r\n\r\n").unwrap();
    let mixed = format!(
        "From: alice@a.example\r\nTo: bob@b.example\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: text/html\r\n\r\n<img src=\"http://evil/\r\n\
         --x\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--x--\r\n"
    );
    assert!(matches!(
        open_bob(mixed.as_bytes()),
        Err(SmimeError::MixedContent)
    ));
}

#[test]
fn garbage_is_refused_without_panic() {
    let head = "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
                Content-Transfer-Encoding: base64\r\n\r\n";
    for body in ["!!!!", "MIIB", "MIAGCSqGSIb3DQEHA6CAMIACAQAxggEA", ""] {
        let msg = format!("{head}{body}\r\n");
        assert!(open_bob(msg.as_bytes()).is_err(), "{body}");
    }
    let pki = pki();
    let sealed = seal_as(&pki.alice, INNER);
    for cut in [sealed.len() / 2, sealed.len() - 20] {
        assert!(open_bob(&sealed[..cut]).is_err());
    }
}

fn dup(c: &openssl::x509::X509Crl) -> openssl::x509::X509Crl {
    openssl::x509::X509Crl::from_der(&c.to_der().unwrap()).unwrap()
}

#[test]
fn revocation_policies() {
    let pki = pki();
    let msg = seal_as(&pki.alice, INNER);
    let trust_with = |policy, crls: Vec<openssl::x509::X509Crl>| {
        let mut t = TrustStore::new(policy);
        t.add_anchor("b.example", Direction::Incoming, pki.root.cert.clone());
        for c in crls {
            t.add_crl(c);
        }
        t
    };
    let keys = pki.bob_keys();
    let revoking = crl(&pki.inter, &[&pki.alice], 7);
    let clean_inter = crl(&pki.inter, &[], 7);
    let clean_root = crl(&pki.root, &[], 7);

    // Revoked under both checking policies, ignored when Off.
    for policy in [RevocationPolicy::BestEffort, RevocationPolicy::Require] {
        let t = trust_with(policy, vec![dup(&revoking), dup(&clean_root)]);
        assert!(matches!(
            open(&msg, &keys, &t, None),
            Err(SmimeError::Revoked { .. })
        ));
    }
    let t = trust_with(RevocationPolicy::Off, vec![dup(&revoking)]);
    assert!(open(&msg, &keys, &t, None).is_ok());

    // No CRL: BestEffort passes, Require fails closed.
    let t = trust_with(RevocationPolicy::BestEffort, vec![]);
    assert!(open(&msg, &keys, &t, None).is_ok());
    let t = trust_with(RevocationPolicy::Require, vec![]);
    assert!(matches!(
        open(&msg, &keys, &t, None),
        Err(SmimeError::RevocationUnavailable { .. })
    ));
    // Require with current CRLs for every level passes; a stale one does not.
    let t = trust_with(
        RevocationPolicy::Require,
        vec![dup(&clean_inter), dup(&clean_root)],
    );
    assert!(open(&msg, &keys, &t, None).is_ok());
    let stale = crl(&pki.inter, &[], -1);
    let t = trust_with(RevocationPolicy::Require, vec![stale, dup(&clean_root)]);
    assert!(matches!(
        open(&msg, &keys, &t, None),
        Err(SmimeError::RevocationUnavailable { .. })
    ));
    // A CRL not signed by the issuer is ignored.
    let forged = crl(&pki.rogue_root, &[&pki.alice], 7);
    let t = trust_with(RevocationPolicy::BestEffort, vec![forged]);
    assert!(open(&msg, &keys, &t, None).is_ok());
}

/// Opaque signed-data, CLI-made and encrypted to bob, signed by `signer` with `md`; `edit`
/// may change the DER of the SignedData before it is encrypted.
fn opaque(signer: &support::pki::CertKey, md: &str, edit: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signed = cli_sign(
        d,
        &wrapped(INNER),
        signer,
        &[&pki.inter],
        md,
        &["-nodetach"],
    );
    let der = d.join("signed.der");
    openssl(&[
        "cms",
        "-cmsout",
        "-in",
        p(&signed),
        "-outform",
        "DER",
        "-out",
        p(&der),
    ]);
    std::fs::write(&der, edit(std::fs::read(&der).unwrap())).unwrap();
    // Wrapped by hand: `openssl cms -cmsout` would refuse to re-read an edited structure.
    let mut entity = b"Content-Type: application/pkcs7-mime; smime-type=signed-data; \
                       name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    entity.extend(openssl(&["base64", "-e", "-in", p(&der)]));
    std::fs::write(&signed, entity).unwrap();
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    cli_encrypt(d, &signed, "-aes128", &bob_cert, &[])
}

/// Opaque signed-data gets the same checks as multipart/signed.
#[test]
fn opaque_signed_data_gets_the_same_checks() {
    let pki = pki();
    let msg = opaque(&pki.alice, "sha256", |der| der);
    assert!(open_bob(&msg).is_ok(), "the unedited vector opens");

    let msg = opaque(&pki.alice, "sha256", |der| {
        let at = der
            .windows(9)
            .position(|w| w == b"two weeks")
            .expect("content inside the SignedData");
        let mut der = der;
        der[at..at + 3].copy_from_slice(b"six");
        der
    });
    let err = open_bob(&msg).unwrap_err();
    assert!(matches!(err, SmimeError::BadSignature(_)), "{err:?}");

    let err = open_bob(&opaque(&pki.alice, "sha1", |der| der)).unwrap_err();
    assert!(
        matches!(&err, SmimeError::WeakDigest { alg } if alg == "sha-1"),
        "{err:?}"
    );
    let err = open_bob(&opaque(&pki.alice_rogue, "sha256", |der| der)).unwrap_err();
    assert!(
        matches!(&err, SmimeError::Untrusted { subject, .. } if subject.contains("rogue")),
        "{err:?}"
    );
}

/// Inside the envelope, pkcs7-mime of any other smime-type is not a signature.
#[test]
fn pkcs7_mime_that_is_not_signed_data() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let inner = d.join("inner.eml");
    std::fs::write(&inner, wrapped(INNER)).unwrap();
    let twice = d.join("twice.eml");
    std::fs::write(&twice, cli_encrypt(d, &inner, "-aes128", &bob_cert, &[])).unwrap();
    let msg = cli_encrypt(d, &twice, "-aes128", &bob_cert, &[]);
    let err = open_bob(&msg).unwrap_err();
    assert!(
        matches!(&err, SmimeError::Unsigned { found } if found.contains("smime-type=enveloped-data")),
        "{err:?}"
    );
}

/// A message from `signer` (sent with `chain`) as the openssl command line seals it for bob.
fn cli_from(signer: &support::pki::CertKey, chain: &[&support::pki::CertKey]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    cli_sign_encrypt(
        dir.path(),
        &wrapped(INNER),
        signer,
        chain,
        "sha256",
        "-aes128",
        &pki().bob,
        &[],
    )
}

/// MD5 and SHA-1 certificate signatures below the anchor are refused like MD5 and SHA-1
/// message digests; the anchor's own self-signature does not matter.
#[test]
fn weak_certificate_signatures_below_the_anchor() {
    let pki = pki();
    let with = |md| Variant {
        md,
        ..Variant::default()
    };
    let alice_under = |issuer: &support::pki::CertKey| {
        let san = Some(San::Email("alice@a.example"));
        build("alice", rsa(2048), Some(issuer), false, san, (-1, 365))
    };

    let inter_sha1 = build_with(
        "Intermediate SHA-1",
        rsa(2048),
        Some(&pki.root),
        true,
        None,
        (-10, 3000),
        &with(MessageDigest::sha1()),
    );
    let alice = alice_under(&inter_sha1);
    let err = open_bob(&cli_from(&alice, &[&inter_sha1])).unwrap_err();
    assert!(
        matches!(&err, SmimeError::WeakCertSignature { subject, alg }
            if subject.starts_with("CN=Intermediate SHA-1") && alg == "sha1WithRSAEncryption"),
        "{err:?}"
    );

    let alice_md5 = build_with(
        "alice md5",
        rsa(2048),
        Some(&pki.inter),
        false,
        Some(San::Email("alice@a.example")),
        (-1, 365),
        &with(MessageDigest::md5()),
    );
    let err = open_bob(&cli_from(&alice_md5, &[&pki.inter])).unwrap_err();
    assert!(
        matches!(&err, SmimeError::WeakCertSignature { subject, alg }
            if subject.starts_with("CN=alice md5") && alg == "md5WithRSAEncryption"),
        "{err:?}"
    );

    // Configured as the anchor itself, the SHA-1-signed intermediate is trusted by
    // configuration, and so is a SHA-1 self-signed root.
    let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
    trust.add_anchor("b.example", Direction::Incoming, inter_sha1.cert.clone());
    let msg = cli_from(&alice, &[&inter_sha1]);
    assert!(open(&msg, &pki.bob_keys(), &trust, None).is_ok());
    let root_sha1 = build_with(
        "Root SHA-1",
        rsa(2048),
        None,
        true,
        None,
        (-10, 3650),
        &with(MessageDigest::sha1()),
    );
    let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
    trust.add_anchor("b.example", Direction::Incoming, root_sha1.cert.clone());
    let msg = cli_from(&alice_under(&root_sha1), &[]);
    assert!(open(&msg, &pki.bob_keys(), &trust, None).is_ok());
}

/// Extended key usage, when present, must allow emailProtection or anyExtendedKeyUsage, for
/// signers and for the recipients we encrypt to.
#[test]
fn extended_key_usage_must_allow_email_protection() {
    let pki = pki();
    let alice_with = |cn: &str, eku: Option<&'static [&'static str]>| {
        let variant = Variant {
            eku,
            ..Variant::default()
        };
        let san = Some(San::Email("alice@a.example"));
        build_with(
            cn,
            rsa(2048),
            Some(&pki.inter),
            false,
            san,
            (-1, 365),
            &variant,
        )
    };
    for (cn, eku) in [
        ("alice tls", &["serverAuth", "clientAuth"][..]),
        ("alice client", &["clientAuth"][..]),
    ] {
        let alice = alice_with(cn, Some(eku));
        let err = open_bob(&cli_from(&alice, &[&pki.inter])).unwrap_err();
        assert!(
            matches!(&err, SmimeError::ExtendedKeyUsage { subject } if subject.starts_with(&format!("CN={cn},"))),
            "{eku:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("CN={cn}, O=directd test: extended key usage does not allow e-mail protection")
        );
    }
    for (cn, eku) in [
        ("alice mixed", Some(&["serverAuth", "emailProtection"][..])),
        ("alice any", Some(&["anyExtendedKeyUsage"][..])),
        ("alice no eku", None),
    ] {
        let alice = alice_with(cn, eku);
        let opened =
            open_bob(&cli_from(&alice, &[&pki.inter])).unwrap_or_else(|e| panic!("{eku:?}: {e}"));
        assert!(opened.verdict.signers[0]
            .subject
            .starts_with(&format!("CN={cn},")));
    }

    // Sending: a TLS-only certificate for bob is not one to encrypt to.
    let san = Some(San::Email("bob@b.example"));
    let variant = Variant {
        eku: Some(&["serverAuth"]),
        ..Variant::default()
    };
    let bob_tls = build_with(
        "bob tls",
        rsa(2048),
        Some(&pki.inter),
        false,
        san,
        (-1, 365),
        &variant,
    );
    let err = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&bob_tls.cert),
        &SealOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SmimeError::ExtendedKeyUsage { .. }),
        "{err:?}"
    );
}

/// A certificate in the signature that OpenSSL cannot read is malformed input, reported in
/// words, not as OpenSSL's error stack.
#[test]
fn unreadable_certificate_in_the_signature() {
    let pki = pki();
    let alice = pki.alice.cert.to_der().unwrap();
    let msg = opaque(&pki.alice, "sha256", |der| {
        let at = der
            .windows(alice.len())
            .position(|w| w == alice.as_slice())
            .expect("alice's certificate inside the SignedData");
        let mut der = der;
        // The TBSCertificate's explicit [0] version tag, turned into a SET: still well-formed
        // DER around it, no longer a certificate.
        assert_eq!(der[at + 8], 0xA0);
        der[at + 8] = 0x31;
        der
    });
    let err = open_bob(&msg).unwrap_err();
    assert!(
        matches!(&err, SmimeError::MalformedCms(m) if m == "a certificate carried in the signature cannot be read"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("error:"), "{err}");
}
