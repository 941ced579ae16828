//! S/MIME throughput: `seal` (sign + encrypt) and `open` (decrypt + verify + chain validation)
//! messages per second for 10 KB and 1 MB messages, RSA-2048 everywhere, one thread.
//!
//! No criterion: a plain timed loop so it runs anywhere with `cargo bench --bench smime_bench`.
//! Each case runs for `SMIME_SECS` seconds (default 3) after one untimed warm-up call. The PKI is
//! generated in-process with the openssl crate (a root, an intermediate, a sender and a receiver
//! certificate), as `tests/smime_support` does.
//!
//! Output: a markdown table, then one `RESULT` line per case for `benches/run.sh` to parse.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use directd::smime::{
    open, seal, Direction, Identity, KeyStore, RevocationPolicy, SealOptions, TrustStore,
};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

struct CertKey {
    cert: X509,
    key: PKey<Private>,
}

fn rsa2048() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A CA certificate (`email` None) or an end-entity certificate bound to `email`.
fn build(cn: &str, issuer: Option<&CertKey>, email: Option<&str>) -> CertKey {
    let key = rsa2048();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "directd bench")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now() - 86400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now() + 365 * 86400).unwrap())
        .unwrap();
    if email.is_none() {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
            .unwrap();
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    if issuer.is_some() {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        b.append_extension(aki).unwrap();
    }
    if let Some(e) = email {
        let san = SubjectAlternativeName::new()
            .email(e)
            .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
        .unwrap();
    CertKey {
        cert: b.build(),
        key,
    }
}

/// An inner Direct message of about `size` bytes: headers, a short text part and a base64
/// attachment (the demo C-CDA repeated) in 76-column lines, as a real sender would produce.
fn message(size: usize) -> Vec<u8> {
    const CCDA: &[u8] = include_bytes!("../samples/demo-ccd.xml");
    let head = "From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Subject: Discharge summary\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <bench@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Summary attached.\r\n\
--b1\r\n\
Content-Type: application/xml; name=\"ccd.xml\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"ccd.xml\"\r\n\
\r\n";
    let tail = "--b1--\r\n";
    let mut out = head.as_bytes().to_vec();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0usize;
    while out.len() + 78 + tail.len() <= size {
        // Not real base64 of the document (no dependency for that), but the same alphabet and
        // line shape, derived from its bytes so the content is not one repeated line.
        for _ in 0..76 {
            out.push(alphabet[(CCDA[i % CCDA.len()] as usize + i) % 64]);
            i += 1;
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Runs `f` repeatedly for `budget` (at least 3 times) and returns calls per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> (f64, usize) {
    f(); // warm-up, untimed
    let started = Instant::now();
    let mut n = 0usize;
    while n < 3 || started.elapsed() < budget {
        f();
        n += 1;
    }
    (n as f64 / started.elapsed().as_secs_f64(), n)
}

fn main() {
    let secs: f64 = std::env::var("SMIME_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);

    let root = build("Bench Root", None, None);
    let inter = build("Bench Intermediate", Some(&root), None);
    let alice = build("alice", Some(&inter), Some("alice@a.example"));
    let bob = build("bob", Some(&inter), Some("bob@b.example"));

    let signer = Identity::new(
        alice.cert.clone(),
        alice.key.clone(),
        vec![inter.cert.clone()],
    )
    .unwrap();
    let mut keys = KeyStore::new();
    keys.add(Identity::new(bob.cert.clone(), bob.key.clone(), Vec::new()).unwrap());
    let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
    trust.add_anchor("b.example", Direction::Incoming, root.cert.clone());
    let recipients = [bob.cert.clone()];
    let opts = SealOptions::default();

    println!("| message | sealed size | seal msgs/s | seal MB/s | open msgs/s | open MB/s |");
    println!("|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for (label, size) in [("10 KB", 10 * 1024), ("1 MB", 1024 * 1024)] {
        let inner = message(size);
        let sealed = seal(&inner, &signer, &recipients, &opts).unwrap();
        let opened = open(&sealed, &keys, &trust, None).unwrap();
        assert_eq!(opened.inner, inner, "round trip changed the message");

        let (seal_rate, seal_n) = rate(budget, || {
            std::hint::black_box(seal(&inner, &signer, &recipients, &opts).unwrap());
        });
        let (open_rate, open_n) = rate(budget, || {
            std::hint::black_box(open(&sealed, &keys, &trust, None).unwrap());
        });
        let mb = inner.len() as f64 / 1_000_000.0;
        println!(
            "| {label} ({} B) | {} B | {seal_rate:.1} | {:.1} | {open_rate:.1} | {:.1} |",
            inner.len(),
            sealed.len(),
            seal_rate * mb,
            open_rate * mb
        );
        results.push((label, seal_rate, seal_n, open_rate, open_n));
    }
    println!();
    for (label, seal_rate, seal_n, open_rate, open_n) in results {
        let key = label.replace(' ', "").to_lowercase();
        println!("RESULT smime_seal_{key} {seal_rate:.2} ({seal_n} calls)");
        println!("RESULT smime_open_{key} {open_rate:.2} ({open_n} calls)");
    }
}
