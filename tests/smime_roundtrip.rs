//! seal → open with directd on both ends.
mod support;

use directd::smime::{
    open, seal, Binding, ContentCipher, Envelope, EnvelopeCheck, KeyStore, KeyTransport,
    SealOptions,
};
use support::pki::{pki, INNER};

fn seal_default(opts: &SealOptions) -> Vec<u8> {
    let pki = pki();
    seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        opts,
    )
    .unwrap()
}

#[test]
fn wrapped_round_trip() {
    let pki = pki();
    let sealed = seal_default(&SealOptions::default());
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.contains("Subject: Direct message\r\n"));
    assert!(!text.contains("Discharge"), "PHI leaked to outer headers");
    assert!(text.contains("Disposition-Notification-Options: X-DIRECT-FINAL"));
    assert!(text.contains("Message-ID: <m1@a.example>\r\n"));
    assert!(text.contains("smime-type=enveloped-data"));

    let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert_eq!(opened.inner, INNER.as_bytes());
    let v = &opened.verdict;
    assert!(v.wrapped);
    assert_eq!(v.from, "alice@a.example");
    assert_eq!(v.content_cipher, "aes-128-cbc");
    assert_eq!(v.key_transport, KeyTransport::RsaOaepSha256);
    assert_eq!(v.signers.len(), 1);
    assert_eq!(v.signers[0].binding, Some(Binding::Address));
    assert_eq!(v.signers[0].digest, "sha-256");
    assert!(v.signers[0].trusted_by.contains("Test Root"));
    assert!(v.decrypted_by.contains("CN=bob"));
    assert_eq!(v.recipient_domain, "b.example");
    assert_eq!(v.envelope, EnvelopeCheck::NotChecked);
    let json = serde_json::to_string(&opened).unwrap();
    assert!(json.contains("\"key_transport\":\"rsa-oaep-sha256\""));
    assert!(
        !json.contains("Discharge"),
        "inner message must not be serialised"
    );
}

#[test]
fn lf_input_is_canonicalised() {
    let pki = pki();
    let lf = INNER.replace("\r\n", "\n");
    let sealed = seal(
        lf.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert_eq!(opened.inner, INNER.as_bytes());
}

#[test]
fn unwrapped_is_accepted() {
    let pki = pki();
    let sealed = seal_default(&SealOptions {
        wrap: false,
        ..SealOptions::default()
    });
    let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert!(!opened.verdict.wrapped);
    let inner = String::from_utf8(opened.inner).unwrap();
    assert!(inner.contains("From: Alice <alice@a.example>\r\n"));
    assert!(inner.contains("Subject: Discharge summary"));
    assert!(inner.ends_with("Patient was discharged.\r\nFollow up in two weeks.\r\n"));
}

#[test]
fn every_recipient_certificate_can_decrypt() {
    let pki = pki();
    let sealed = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        &[
            pki.bob.cert.clone(),
            pki.b_domain.cert.clone(),
            pki.carol.cert.clone(),
        ],
        &SealOptions::default(),
    )
    .unwrap();
    for (who, id) in [("bob", &pki.bob), ("b.example", &pki.b_domain)] {
        let mut keys = KeyStore::new();
        keys.add(id.identity(&[]));
        let opened = open(&sealed, &keys, &pki.bob_trust(), None).unwrap();
        assert!(opened.verdict.decrypted_by.contains(who), "{who}");
        assert_eq!(opened.inner, INNER.as_bytes());
    }
    // carol's domain has its own anchors.
    let mut keys = KeyStore::new();
    keys.add(pki.carol.identity(&[]));
    let mut trust = directd::smime::TrustStore::default();
    trust.add_anchor(
        "c.example",
        directd::smime::Direction::Incoming,
        pki.root.cert.clone(),
    );
    assert!(open(&sealed, &keys, &trust, None).is_ok());
}

#[test]
fn cipher_and_key_transport_options() {
    let pki = pki();
    for (cipher, name) in [
        (ContentCipher::Aes128Cbc, "aes-128-cbc"),
        (ContentCipher::Aes256Cbc, "aes-256-cbc"),
    ] {
        for kt in [
            KeyTransport::RsaOaepSha256,
            KeyTransport::RsaOaepSha1,
            KeyTransport::RsaPkcs1v15,
        ] {
            let sealed = seal_default(&SealOptions {
                cipher,
                key_transport: kt,
                ..SealOptions::default()
            });
            let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
            assert_eq!(opened.verdict.content_cipher, name);
            assert_eq!(opened.verdict.key_transport, kt);
        }
    }
}

#[test]
fn sender_copy() {
    let pki = pki();
    let sealed = seal_default(&SealOptions {
        encrypt_to_sender: true,
        ..SealOptions::default()
    });
    let mut keys = KeyStore::new();
    keys.add(pki.alice.identity(&[]));
    let mut trust = directd::smime::TrustStore::default();
    trust.add_anchor(
        "a.example",
        directd::smime::Direction::Incoming,
        pki.root.cert.clone(),
    );
    assert!(open(&sealed, &keys, &trust, None).is_ok());
}

#[test]
fn domain_bound_legacy_and_ecdsa_signers() {
    let pki = pki();
    let cases = [
        (&pki.a_domain, Binding::Domain),
        (&pki.alice_legacy, Binding::LegacySubjectEmail),
        (&pki.alice_ec, Binding::Address),
    ];
    for (signer, binding) in cases {
        let sealed = seal(
            INNER.as_bytes(),
            &signer.identity(&[&pki.inter]),
            std::slice::from_ref(&pki.bob.cert),
            &SealOptions::default(),
        )
        .unwrap();
        let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
        assert_eq!(opened.verdict.signers[0].binding, Some(binding));
    }
}

#[test]
fn intermediate_as_anchor() {
    let pki = pki();
    let sealed = seal_default(&SealOptions::default());
    let mut trust = directd::smime::TrustStore::default();
    trust.add_anchor(
        "b.example",
        directd::smime::Direction::Incoming,
        pki.inter.cert.clone(),
    );
    let opened = open(&sealed, &pki.bob_keys(), &trust, None).unwrap();
    assert!(opened.verdict.signers[0]
        .trusted_by
        .contains("Test Intermediate"));
}

#[test]
fn envelope_that_matches_passes() {
    let pki = pki();
    let sealed = seal_default(&SealOptions::default());
    let env = Envelope {
        mail_from: "<Alice@A.example>".into(),
        rcpt_to: vec!["bob@b.example".into(), "b-team@b.example".into()],
    };
    let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), Some(&env)).unwrap();
    assert_eq!(opened.verdict.envelope, EnvelopeCheck::Passed);
}

#[test]
fn inner_headers_win_over_outer() {
    let pki = pki();
    let sealed = String::from_utf8(seal_default(&SealOptions::default())).unwrap();
    // An attacker rewrites the unprotected outer From; the signed inner From is what counts.
    let spoofed = sealed.replace(
        "From: Alice <alice@a.example>\r\n",
        "From: mallory@evil.example\r\n",
    );
    assert_ne!(spoofed, sealed);
    let opened = open(spoofed.as_bytes(), &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert_eq!(opened.verdict.from, "alice@a.example");
    assert_eq!(opened.inner, INNER.as_bytes());
}

/// A 20 MB message (the usual HISP ceiling) with bare LF line ends round-trips in both
/// ciphers: the streamed seal and the in-place open keep every byte, canonicalised to CRLF.
#[test]
fn a_20_mb_message_round_trips() {
    let pki = pki();
    let mut inner = INNER.replace("\r\n", "\n").into_bytes();
    let line: Vec<u8> = (0..76u8).map(|i| b'A' + i % 26).chain([b'\n']).collect();
    while inner.len() < 20 << 20 {
        inner.extend_from_slice(&line);
    }
    let canonical = String::from_utf8(inner.clone())
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    for cipher in [ContentCipher::Aes128Cbc, ContentCipher::Aes256Gcm] {
        let opts = SealOptions {
            cipher,
            ..SealOptions::default()
        };
        let sealed = seal(
            &inner,
            &pki.alice.identity(&[&pki.inter]),
            std::slice::from_ref(&pki.bob.cert),
            &opts,
        )
        .unwrap();
        let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
        assert_eq!(opened.inner_len, canonical.len(), "{cipher:?}");
        assert!(opened.inner == canonical, "{cipher:?}: content changed");
    }
}
