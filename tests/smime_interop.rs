//! Interoperability with the OpenSSL command line, in both directions.
mod support;

use directd::smime::{
    self, seal, ContentCipher, Decoded, Envelope, KeyStore, KeyTransport, Opened, SealOptions,
    SmimeError, TrustStore,
};
use support::pki::{
    build_with, cli_decrypt, cli_encrypt, cli_sign, cli_sign_encrypt, openssl, p, pki, rsa,
    wrapped, write_pem, San, Variant, INNER,
};

/// Every message here is opened from its text and also handed over (decoded in place of the
/// text, then opened twice, as after fetching what a chain named): the three must agree.
fn open(
    msg: &[u8],
    keys: &KeyStore,
    trust: &TrustStore,
    envelope: Option<&Envelope>,
) -> Result<Opened, SmimeError> {
    let outcome = |r: &Result<Opened, SmimeError>| match r {
        Ok(o) => Ok((o.inner.clone(), serde_json::to_value(&o.verdict).unwrap())),
        Err(e) => Err(e.to_string()),
    };
    let from_text = smime::open(msg, keys, trust, envelope);
    match Decoded::new(msg.to_vec()) {
        Ok(decoded) => {
            for attempt in 1..=2 {
                let handed = decoded.open(keys, trust, envelope);
                assert_eq!(
                    outcome(&handed),
                    outcome(&from_text),
                    "handed over, open {attempt}"
                );
            }
        }
        Err(e) => assert_eq!(Err(e.to_string()), outcome(&from_text), "handed over"),
    }
    from_text
}

/// directd seals; `openssl cms -decrypt` and `openssl cms -verify` must accept the result,
/// for every key transport and cipher directd offers.
#[test]
fn openssl_cli_reads_what_directd_seals() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bob_cert, bob_key) = write_pem(d, "bob", &pki.bob);
    let root = d.join("root.pem");
    std::fs::write(&root, pki.root.cert.to_pem().unwrap()).unwrap();

    for (cipher, kt) in [
        (ContentCipher::Aes128Cbc, KeyTransport::RsaOaepSha256),
        (ContentCipher::Aes256Cbc, KeyTransport::RsaOaepSha1),
        (ContentCipher::Aes128Cbc, KeyTransport::RsaPkcs1v15),
    ] {
        let sealed = seal(
            INNER.as_bytes(),
            &pki.alice.identity(&[&pki.inter]),
            &[pki.b_domain.cert.clone(), pki.bob.cert.clone()],
            &SealOptions {
                cipher,
                key_transport: kt,
                ..SealOptions::default()
            },
        )
        .unwrap();
        let enc = d.join("sealed.eml");
        std::fs::write(&enc, &sealed).unwrap();
        let dec = cli_decrypt(d, &enc, &bob_cert, &bob_key);
        let decrypted = std::fs::read(&dec).unwrap();
        assert!(String::from_utf8_lossy(&decrypted).contains("multipart/signed"));
        let content = d.join("content.eml");
        openssl(&[
            "cms",
            "-verify",
            "-in",
            p(&dec),
            "-CAfile",
            p(&root),
            "-purpose",
            "smimesign",
            "-out",
            p(&content),
        ]);
        let content = std::fs::read(&content).unwrap();
        assert_eq!(content, wrapped(INNER).as_bytes(), "{cipher:?} {kt:?}");
    }
}

/// `openssl cms -sign` then `openssl cms -encrypt`: directd must open it (PKCS#1 v1.5 and
/// OAEP key transport, AES-128 and AES-256, with and without the intermediate attached).
#[test]
fn directd_opens_what_openssl_cli_seals() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let oaep = ["-keyopt", "rsa_padding_mode:oaep"];
    let cases: [(&str, &[&str], KeyTransport); 3] = [
        ("-aes128", &[], KeyTransport::RsaPkcs1v15),
        ("-aes256", &[], KeyTransport::RsaPkcs1v15),
        ("-aes128", &oaep, KeyTransport::RsaOaepSha1),
    ];
    for (cipher, extra, kt) in cases {
        let msg = cli_sign_encrypt(
            d,
            &wrapped(INNER),
            &pki.alice,
            &[&pki.inter],
            "sha256",
            cipher,
            &pki.bob,
            extra,
        );
        let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None)
            .unwrap_or_else(|e| panic!("{cipher} {extra:?}: {e}"));
        assert_eq!(opened.inner, INNER.as_bytes());
        assert!(opened.verdict.wrapped);
        assert_eq!(opened.verdict.key_transport, kt);
        assert_eq!(opened.verdict.signers[0].digest, "sha-256");
    }
}

/// Signed with OAEP-SHA-256 key transport by the CLI.
#[test]
fn directd_opens_cli_oaep_sha256() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let msg = cli_sign_encrypt(
        dir.path(),
        &wrapped(INNER),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        "-aes256",
        &pki.bob,
        &[
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
            "-keyopt",
            "rsa_mgf1_md:sha256",
        ],
    );
    let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert_eq!(opened.verdict.key_transport, KeyTransport::RsaOaepSha256);
    assert_eq!(opened.verdict.content_cipher, "aes-256-cbc");
}

/// An unwrapped message signed by the CLI, with the inner headers outside.
#[test]
fn directd_opens_cli_unwrapped() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let body = "Content-Type: text/plain\r\n\r\nhello bob\r\n";
    let msg = cli_sign_encrypt(
        dir.path(),
        body,
        &pki.alice,
        &[&pki.inter],
        "sha256",
        "-aes128",
        &pki.bob,
        &[],
    );
    let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert!(!opened.verdict.wrapped);
    let inner = String::from_utf8_lossy(&opened.inner);
    assert!(inner.contains("hello bob"));
    assert_eq!(opened.verdict.from, "alice@a.example");
}

/// The legacy `application/x-pkcs7-mime` type that `openssl smime` writes.
#[test]
fn legacy_x_pkcs7_mime() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let msg = cli_sign_encrypt(
        d,
        &wrapped(INNER),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        "-aes128",
        &pki.bob,
        &[],
    );
    let text = String::from_utf8_lossy(&msg);
    assert!(text.contains("application/x-pkcs7-mime") || text.contains("application/pkcs7-mime"));
    let legacy = text.replace("application/pkcs7-mime", "application/x-pkcs7-mime");
    assert!(open(legacy.as_bytes(), &pki.bob_keys(), &pki.bob_trust(), None).is_ok());
    // And the modern name for good measure.
    let modern = text.replace("application/x-pkcs7-mime", "application/pkcs7-mime");
    assert!(open(modern.as_bytes(), &pki.bob_keys(), &pki.bob_trust(), None).is_ok());
    let _ = cli_encrypt;
}

/// Two SignerInfos: both must verify and chain; one untrusted signer spoils the message.
#[test]
fn every_signer_info_is_checked() {
    use directd::smime::SmimeError;
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a_cert, a_key) = write_pem(d, "alice", &pki.alice);
    let (dom_cert, dom_key) = write_pem(d, "adomain", &pki.a_domain);
    let (rogue_cert, rogue_key) = write_pem(d, "rogue", &pki.alice_rogue);
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let chain = d.join("chain.pem");
    std::fs::write(&chain, pki.inter.cert.to_pem().unwrap()).unwrap();
    let input = d.join("content.txt");
    std::fs::write(&input, wrapped(INNER)).unwrap();

    let sign_two = |second: (&std::path::Path, &std::path::Path)| {
        let signed = d.join("signed.eml");
        openssl(&[
            "cms",
            "-sign",
            "-md",
            "sha256",
            "-in",
            p(&input),
            "-signer",
            p(&a_cert),
            "-inkey",
            p(&a_key),
            "-signer",
            p(second.0),
            "-inkey",
            p(second.1),
            "-certfile",
            p(&chain),
            "-out",
            p(&signed),
        ]);
        cli_encrypt(d, &signed, "-aes128", &bob_cert, &[])
    };

    let msg = sign_two((&dom_cert, &dom_key));
    let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert_eq!(opened.verdict.signers.len(), 2);

    let msg = sign_two((&rogue_cert, &rogue_key));
    assert!(matches!(
        open(&msg, &pki.bob_keys(), &pki.bob_trust(), None),
        Err(SmimeError::Untrusted { subject, .. }) if subject.contains("rogue")
    ));
}

/// `micalg` as other agents write it. The OpenSSL command line writes `micalg="sha-256"`; the
/// reference implementations write `sha256`, older agents `SHA256`, `sha1` or nothing. The
/// SignerInfo's digest decides; a `micalg` that names another digest, or none, is a note.
#[test]
fn micalg_is_advisory() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signed = cli_sign(d, &wrapped(INNER), &pki.alice, &[&pki.inter], "sha256", &[]);
    let original = std::fs::read_to_string(&signed).unwrap();
    assert!(original.contains("micalg=\"sha-256\"; "), "{original}");
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let cases: [(&str, Option<&str>); 6] = [
        ("micalg=\"sha-256\"; ", None),
        ("micalg=sha256; ", None),
        ("micalg=SHA256; ", None),
        ("micalg=\"sha-512,SHA-256\"; ", None),
        ("", Some("multipart/signed has no micalg; the signature digest sha-256 was used")),
        (
            "micalg=sha1; ",
            Some("micalg sha1 does not name the signature digest sha-256; the signature digest was used"),
        ),
    ];
    for (micalg, note) in cases {
        let edited = d.join("micalg.eml");
        std::fs::write(&edited, original.replace("micalg=\"sha-256\"; ", micalg)).unwrap();
        let msg = cli_encrypt(d, &edited, "-aes128", &bob_cert, &[]);
        let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None)
            .unwrap_or_else(|e| panic!("{micalg:?}: {e}"));
        assert_eq!(opened.inner, INNER.as_bytes(), "{micalg:?}");
        assert_eq!(opened.verdict.signers[0].digest, "sha-256", "{micalg:?}");
        let expected: Vec<String> = note.into_iter().map(str::to_owned).collect();
        assert_eq!(opened.verdict.notes, expected, "{micalg:?}");
    }
}

/// Opaque signed data (`openssl cms -sign -nodetach`: `application/pkcs7-mime;
/// smime-type=signed-data`) inside the envelope, which RFC 5751 requires receivers to accept;
/// also without the smime-type parameter, as some agents write it.
#[test]
fn directd_opens_opaque_signed_data() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signed = cli_sign(
        d,
        &wrapped(INNER),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        &["-nodetach"],
    );
    let original = std::fs::read_to_string(&signed).unwrap();
    assert!(
        original.contains("application/pkcs7-mime; smime-type=signed-data"),
        "{original}"
    );
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    for text in [
        original.clone(),
        original.replace(" smime-type=signed-data;", ""),
    ] {
        std::fs::write(&signed, &text).unwrap();
        let msg = cli_encrypt(d, &signed, "-aes128", &bob_cert, &[]);
        let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
        assert_eq!(opened.inner, INNER.as_bytes());
        assert!(opened.verdict.wrapped);
        assert_eq!(opened.verdict.from, "alice@a.example");
        assert_eq!(opened.verdict.signers[0].digest, "sha-256");
        assert!(
            opened.verdict.notes.is_empty(),
            "{:?}",
            opened.verdict.notes
        );
    }
}

/// Two of our keys match the RecipientInfo (a renewed key whose certificate reuses issuer and
/// serial): the one that does not decrypt is passed over for the one that does, whichever
/// comes first, for directd's OAEP and the command line's PKCS#1 v1.5 key transport.
#[test]
fn every_matching_key_is_tried() {
    let pki = pki();
    let same_serial = Variant {
        serial: Some(4242),
        ..Variant::default()
    };
    let bob_with = |cn: &str| {
        let san = Some(San::Email("bob@b.example"));
        build_with(
            cn,
            rsa(2048),
            Some(&pki.inter),
            false,
            san,
            (-1, 365),
            &same_serial,
        )
    };
    let (old, new) = (bob_with("bob old key"), bob_with("bob new key"));
    let mut keys = directd::smime::KeyStore::new();
    keys.add(old.identity(&[]));
    keys.add(new.identity(&[]));

    let dir = tempfile::tempdir().unwrap();
    let from_cli = cli_sign_encrypt(
        dir.path(),
        &wrapped(INNER),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        "-aes128",
        &new,
        &[],
    );
    let from_directd = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&new.cert),
        &SealOptions::default(),
    )
    .unwrap();
    for msg in [from_cli, from_directd] {
        let opened = open(&msg, &keys, &pki.bob_trust(), None).unwrap();
        assert_eq!(opened.inner, INNER.as_bytes());
        assert_eq!(
            opened.verdict.decrypted_by,
            "CN=bob new key, O=directd test"
        );
    }

    // Only the wrong key: the decryption failure is reported, not hidden.
    let mut only_old = directd::smime::KeyStore::new();
    only_old.add(old.identity(&[]));
    let msg = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&new.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let err = open(&msg, &only_old, &pki.bob_trust(), None).unwrap_err();
    assert!(
        matches!(err, directd::smime::SmimeError::DecryptFailed(_)),
        "{err:?}"
    );
}

/// AES-GCM AuthEnvelopedData (RFC 5083/5084), as the newest ETT test page sends it: the
/// command line's `-aes-128-gcm` and `-aes-256-gcm` open; directd's optional GCM output is
/// read by the command line; CBC stays the default.
#[test]
fn aes_gcm_auth_enveloped_data_both_ways() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (cipher, name) in [
        ("-aes-128-gcm", "aes-128-gcm"),
        ("-aes-256-gcm", "aes-256-gcm"),
    ] {
        let msg = cli_sign_encrypt(
            d,
            &wrapped(INNER),
            &pki.alice,
            &[&pki.inter],
            "sha256",
            cipher,
            &pki.bob,
            &[],
        );
        assert!(String::from_utf8_lossy(&msg).contains("smime-type=authEnveloped-data"));
        let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None)
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        assert_eq!(opened.inner, INNER.as_bytes());
        assert_eq!(opened.verdict.content_cipher, name);
    }

    assert_eq!(SealOptions::default().cipher, ContentCipher::Aes128Cbc);
    let (bob_cert, bob_key) = write_pem(d, "bob", &pki.bob);
    for (cipher, name) in [
        (ContentCipher::Aes128Gcm, "aes-128-gcm"),
        (ContentCipher::Aes256Gcm, "aes-256-gcm"),
    ] {
        let sealed = seal(
            INNER.as_bytes(),
            &pki.alice.identity(&[&pki.inter]),
            std::slice::from_ref(&pki.bob.cert),
            &SealOptions {
                cipher,
                ..SealOptions::default()
            },
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&sealed).contains("smime-type=authEnveloped-data"));
        let enc = d.join("sealed-gcm.eml");
        std::fs::write(&enc, &sealed).unwrap();
        let dec = std::fs::read_to_string(cli_decrypt(d, &enc, &bob_cert, &bob_key)).unwrap();
        assert!(dec.contains("multipart/signed"), "{cipher:?}");
        let opened = open(&sealed, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
        assert_eq!(opened.verdict.content_cipher, name);
        assert_eq!(opened.inner, INNER.as_bytes());
    }
}

/// A signed MDN from a stack that writes `micalg=sha256` goes through the same path as any
/// message: it opens, and the report inside reads as the processed MDN it is (with the old
/// micalg rule every such MDN was refused and its message ended `timed_out`).
#[test]
fn signed_mdn_with_unhyphenated_micalg_opens() {
    use directd::mdn::{build_mdn, is_report, parse_report, Disposition, OriginalInfo};
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let original = OriginalInfo {
        message_id: "<m1@b.example>".into(),
        original_recipient: None,
        final_recipient: "alice@a.example".into(),
        subject: None,
        from: "bob@b.example".into(),
    };
    let report = build_mdn(Disposition::Processed, &original, "a.example; other", false);
    let report = String::from_utf8(report).unwrap();
    let signed = cli_sign(
        d,
        &wrapped(&report),
        &pki.alice,
        &[&pki.inter],
        "sha256",
        &[],
    );
    let text = std::fs::read_to_string(&signed)
        .unwrap()
        .replace("micalg=\"sha-256\"", "micalg=sha256");
    assert!(text.contains("micalg=sha256;"), "{text}");
    std::fs::write(&signed, text).unwrap();
    let (bob_cert, _) = write_pem(d, "bob", &pki.bob);
    let msg = cli_encrypt(d, &signed, "-aes128", &bob_cert, &[]);

    let opened = open(&msg, &pki.bob_keys(), &pki.bob_trust(), None).unwrap();
    assert!(
        opened.verdict.notes.is_empty(),
        "{:?}",
        opened.verdict.notes
    );
    assert!(is_report(&opened.inner));
    let parsed = parse_report(&opened.inner).unwrap();
    assert_eq!(
        parsed.original_message_id.as_deref(),
        Some("<m1@b.example>")
    );
    assert_eq!(
        parsed.recipients[0].disposition,
        Some(Disposition::Processed)
    );
}
