//! Key store, recipient certificate lookup and trust anchor/bundle loading.
mod support;

use directd::smime::{
    CertDirectory, Direction, KeyStore, RevocationPolicy, SmimeError, TrustStore,
};
use support::pki::{build, openssl, p, pki, rsa, set_mode, write_pem, San};

#[test]
fn key_store_loads_pairs_and_picks_by_address_then_domain() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pem(d, "bob", &pki.bob);
    write_pem(d, "domain", &pki.b_domain);
    // A combined PEM: key and certificate chain in one file.
    let combined = d.join("combined.pem");
    let mut pem = pki.alice.key.private_key_to_pem_pkcs8().unwrap();
    pem.extend(pki.alice.cert.to_pem().unwrap());
    pem.extend(pki.inter.cert.to_pem().unwrap());
    std::fs::write(&combined, pem).unwrap();
    set_mode(&combined, 0o600);

    let ks = KeyStore::load_dir(d).unwrap();
    assert_eq!(ks.identities().len(), 3);
    let id = ks.identity_for("Bob@B.example").unwrap();
    assert!(format!("{id:?}").contains("CN=bob"));
    let id = ks.identity_for("someone@b.example").unwrap();
    assert!(format!("{id:?}").contains("CN=b.example"));
    let alice = ks.identity_for("alice@a.example").unwrap();
    assert_eq!(alice.chain.len(), 1);
    assert!(matches!(
        ks.identity_for("x@c.example"),
        Err(SmimeError::NoIdentity { .. })
    ));
}

#[test]
fn key_store_refuses_readable_keys() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = write_pem(dir.path(), "bob", &pki.bob);
    set_mode(&key, 0o640);
    match KeyStore::load_dir(dir.path()) {
        Err(SmimeError::KeyPermissions { path, mode }) => {
            assert_eq!(path, key);
            assert_eq!(mode, 0o640);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_store_refuses_mismatched_pair() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = write_pem(dir.path(), "bob", &pki.bob);
    std::fs::write(&key, pki.carol.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    assert!(matches!(
        KeyStore::load_dir(dir.path()),
        Err(SmimeError::KeyMismatch { .. })
    ));
}

/// a.example (alice's side) encrypts only to certificates under the test root.
fn alice_sends_to_root() -> TrustStore {
    let mut t = TrustStore::new(RevocationPolicy::BestEffort);
    t.add_anchor("a.example", Direction::Outgoing, pki().root.cert.clone());
    t
}

/// A recipient certificate is used only if it chains to the sending domain's outgoing anchors:
/// a certificate for bob from another CA (as anyone answering DNS could publish) is refused
/// with "no trusted certificate for ADDRESS", and a trusted one is chosen over it.
#[test]
fn recipient_certs_must_chain_to_the_senders_outgoing_anchors() {
    let pki = pki();
    let bob_other_ca = build(
        "bob other CA",
        rsa(2048),
        Some(&pki.rogue_root),
        false,
        Some(San::Email("bob@b.example")),
        (-1, 365),
    );
    let trust = alice_sends_to_root();
    let lookup = |certs: &[&support::pki::CertKey], trust: &TrustStore| {
        let mut all: Vec<_> = certs.iter().map(|c| c.cert.clone()).collect();
        all.push(pki.inter.cert.clone());
        CertDirectory::from_certs(all).lookup("bob@b.example", trust, "a.example")
    };
    let subjects = |found: Vec<openssl::x509::X509>| -> Vec<String> {
        found
            .iter()
            .map(directd::smime::certs::subject_string)
            .collect()
    };

    let err = lookup(&[&bob_other_ca], &trust).unwrap_err();
    assert!(
        matches!(&err, SmimeError::NoTrustedRecipientCert { address } if address == "bob@b.example"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no trusted certificate for bob@b.example");

    // Trusted beats untrusted; within trusted, address-bound beats domain-bound.
    let found = lookup(&[&bob_other_ca, &pki.b_domain], &trust).unwrap();
    assert_eq!(subjects(found), ["CN=b.example, O=directd test"]);
    let found = lookup(&[&bob_other_ca, &pki.b_domain, &pki.bob], &trust).unwrap();
    assert_eq!(subjects(found), ["CN=bob, O=directd test"]);

    // The anchors that count are the sender's domain's outgoing ones: the root trusted for
    // incoming mail, or by the recipient's domain, does not make bob's certificate usable.
    let mut wrong = TrustStore::new(RevocationPolicy::BestEffort);
    wrong.add_anchor("a.example", Direction::Incoming, pki.root.cert.clone());
    wrong.add_anchor("b.example", Direction::Outgoing, pki.root.cert.clone());
    wrong.add_anchor(
        "a.example",
        Direction::Outgoing,
        pki.rogue_root.cert.clone(),
    );
    let err = lookup(&[&pki.bob], &wrong).unwrap_err();
    assert!(
        matches!(err, SmimeError::NoTrustedRecipientCert { .. }),
        "{err:?}"
    );
}

/// The send path (`Agent::recipient_certs`, used for messages and MDNs) applies the same rule.
#[tokio::test]
async fn agent_refuses_untrusted_recipient_certs() {
    let pki = pki();
    let bob_other_ca = build(
        "bob other CA",
        rsa(2048),
        Some(&pki.rogue_root),
        false,
        Some(San::Email("bob@b.example")),
        (-1, 365),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let anchor = d.join("root.pem");
    std::fs::write(&anchor, pki.root.cert.to_pem().unwrap()).unwrap();
    let settings = |dir: &std::path::Path| directd::smime::AgentSettings {
        recipient_certs_dir: Some(dir.to_owned()),
        anchors: vec![directd::smime::AnchorSource {
            domain: "a.example".into(),
            directions: vec![Direction::Outgoing],
            file: anchor.clone(),
            bundle_signer: None,
        }],
        ..Default::default()
    };
    let recipients = d.join("recipients");
    std::fs::create_dir(&recipients).unwrap();
    std::fs::write(
        recipients.join("bob.pem"),
        bob_other_ca.cert.to_pem().unwrap(),
    )
    .unwrap();
    let agent = directd::smime::Agent::load(&settings(&recipients)).unwrap();
    let err = agent
        .recipient_certs("alice@a.example", "bob@b.example")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no trusted certificate for bob@b.example");

    let mut pem = pki.bob.cert.to_pem().unwrap();
    pem.extend(pki.inter.cert.to_pem().unwrap());
    std::fs::write(recipients.join("bob-good.pem"), pem).unwrap();
    let agent = directd::smime::Agent::load(&settings(&recipients)).unwrap();
    let found = agent
        .recipient_certs("alice@a.example", "bob@b.example")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to_der().unwrap(), pki.bob.cert.to_der().unwrap());
}

#[test]
fn recipient_lookup_prefers_valid_and_returns_all() {
    let pki = pki();
    let bob2 = build(
        "bob second",
        rsa(2048),
        Some(&pki.inter),
        false,
        Some(San::Email("bob@b.example")),
        (-1, 30),
    );
    let bob_expired = build(
        "bob expired",
        rsa(2048),
        Some(&pki.inter),
        false,
        Some(San::Email("bob@b.example")),
        (-100, -1),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("bob-expired.pem"),
        bob_expired.cert.to_pem().unwrap(),
    )
    .unwrap();
    let mut both = pki.bob.cert.to_pem().unwrap();
    both.extend(bob2.cert.to_pem().unwrap());
    std::fs::write(d.join("bob.pem"), both).unwrap();
    std::fs::write(d.join("b-domain.pem"), pki.b_domain.cert.to_pem().unwrap()).unwrap();
    std::fs::write(d.join("notes.txt"), "not a certificate").unwrap();
    // The intermediate travels with the recipient certificates: chains are built from them.
    std::fs::write(d.join("inter.pem"), pki.inter.cert.to_pem().unwrap()).unwrap();
    let trust = alice_sends_to_root();

    let certs = CertDirectory::load_dir(d).unwrap();
    let found = certs.lookup("BOB@b.example", &trust, "a.example").unwrap();
    assert_eq!(found.len(), 2, "both valid address-bound certificates");
    // No address-bound certificate: the domain-bound one.
    let found = certs.lookup("dave@b.example", &trust, "a.example").unwrap();
    assert_eq!(found.len(), 1);
    assert!(matches!(
        certs.lookup("x@nowhere.example", &trust, "a.example"),
        Err(SmimeError::NoRecipientCert { rejected: 0, .. })
    ));

    // Only expired address-bound certificates: fall back to the domain.
    let only_expired = CertDirectory::from_certs(vec![
        bob_expired.cert.clone(),
        pki.b_domain.cert.clone(),
        pki.inter.cert.clone(),
    ]);
    let found = only_expired
        .lookup("bob@b.example", &trust, "a.example")
        .unwrap();
    assert_eq!(
        found[0].subject_name().to_der().unwrap(),
        pki.b_domain.cert.subject_name().to_der().unwrap()
    );
    let none = CertDirectory::from_certs(vec![bob_expired.cert.clone(), pki.inter.cert.clone()]);
    assert!(matches!(
        none.lookup("bob@b.example", &trust, "a.example"),
        Err(SmimeError::NoRecipientCert { rejected: 1, .. })
    ));
}

#[test]
fn anchors_from_pem_der_and_p7b() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem = d.join("anchors.pem");
    let mut both = pki.root.cert.to_pem().unwrap();
    both.extend(pki.inter.cert.to_pem().unwrap());
    std::fs::write(&pem, both).unwrap();
    let der = d.join("root.der");
    std::fs::write(&der, pki.root.cert.to_der().unwrap()).unwrap();
    let p7b_der = d.join("bundle.p7b");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        p(&pem),
        "-outform",
        "DER",
        "-out",
        p(&p7b_der),
    ]);
    let p7b_pem = d.join("bundle-pem.p7b");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        p(&pem),
        "-out",
        p(&p7b_pem),
    ]);

    let mut t = TrustStore::new(RevocationPolicy::Off);
    assert_eq!(
        t.load_anchor_file("b.example", Direction::Incoming, &pem)
            .unwrap(),
        2
    );
    assert_eq!(
        t.load_anchor_file("b.example", Direction::Outgoing, &der)
            .unwrap(),
        1
    );
    assert_eq!(
        t.load_anchor_file("c.example", Direction::Incoming, &p7b_der)
            .unwrap(),
        2
    );
    assert_eq!(
        t.load_bundle("d.example", Direction::Incoming, &p7b_pem, None)
            .unwrap(),
        2
    );
    assert_eq!(t.anchors("B.EXAMPLE", Direction::Incoming).len(), 2);
    assert_eq!(t.anchors("b.example", Direction::Outgoing).len(), 1);
    assert!(t.anchors("e.example", Direction::Incoming).is_empty());
    assert!(t
        .verify_chain("c.example", Direction::Incoming, &pki.bob.cert, &[])
        .is_ok());
}

#[test]
fn signed_bundles() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pem = d.join("anchors.pem");
    std::fs::write(&pem, pki.root.cert.to_pem().unwrap()).unwrap();
    let p7b = d.join("bundle.p7b");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        p(&pem),
        "-outform",
        "DER",
        "-out",
        p(&p7b),
    ]);
    let (signer_cert, signer_key) = write_pem(d, "bundle-signer", &pki.a_domain);
    let signed = d.join("signed.p7m");
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-outform",
        "DER",
        "-in",
        p(&p7b),
        "-signer",
        p(&signer_cert),
        "-inkey",
        p(&signer_key),
        "-md",
        "sha256",
        "-out",
        p(&signed),
    ]);
    let signed_pem = d.join("signed.pem");
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-outform",
        "PEM",
        "-in",
        p(&p7b),
        "-signer",
        p(&signer_cert),
        "-inkey",
        p(&signer_key),
        "-md",
        "sha256",
        "-out",
        p(&signed_pem),
    ]);

    let mut t = TrustStore::default();
    let right = &pki.a_domain.cert;
    let wrong = &pki.b_domain.cert;
    assert_eq!(
        t.load_bundle("b.example", Direction::Incoming, &signed, Some(right))
            .unwrap(),
        1
    );
    assert_eq!(
        t.load_bundle("b.example", Direction::Incoming, &signed_pem, Some(right))
            .unwrap(),
        1
    );
    assert_eq!(
        t.load_bundle("b.example", Direction::Incoming, &signed, None)
            .unwrap(),
        1
    );
    assert!(matches!(
        t.load_bundle("b.example", Direction::Incoming, &signed, Some(wrong)),
        Err(SmimeError::BundleSignature { .. })
    ));
    // An unsigned bundle where a signed one is expected.
    assert!(matches!(
        t.load_bundle("b.example", Direction::Incoming, &p7b, Some(right)),
        Err(SmimeError::BundleUnsigned { .. })
    ));
    // A tampered signed bundle.
    let mut bytes = std::fs::read(&signed).unwrap();
    let n = bytes.len();
    let pos = bytes.windows(4).position(|w| w == b"Test").unwrap_or(n / 3);
    bytes[pos] ^= 0x20;
    let tampered = d.join("tampered.p7m");
    std::fs::write(&tampered, bytes).unwrap();
    assert!(t
        .load_bundle("b.example", Direction::Incoming, &tampered, Some(right))
        .is_err());
}

#[test]
fn crl_files_load() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let c = support::pki::crl(&pki.inter, &[&pki.bob], 7);
    let pem = dir.path().join("inter.crl.pem");
    std::fs::write(&pem, c.to_pem().unwrap()).unwrap();
    let der = dir.path().join("inter.crl");
    std::fs::write(&der, c.to_der().unwrap()).unwrap();
    let mut t = TrustStore::new(RevocationPolicy::BestEffort);
    t.add_anchor("b.example", Direction::Incoming, pki.root.cert.clone());
    t.load_crl_file(&pem).unwrap();
    t.load_crl_file(&der).unwrap();
    assert!(matches!(
        t.verify_chain(
            "b.example",
            Direction::Incoming,
            &pki.bob.cert,
            std::slice::from_ref(&pki.inter.cert)
        ),
        Err(SmimeError::Revoked { .. })
    ));
    assert!(t
        .verify_chain(
            "b.example",
            Direction::Incoming,
            &pki.alice.cert,
            std::slice::from_ref(&pki.inter.cert)
        )
        .is_ok());
}
