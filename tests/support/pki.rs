//! A throw-away PKI built with the openssl crate, and helpers that drive the openssl command
//! line for interop fixtures. Two Direct domains: a.example (sender) and b.example (receiver).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use directd::smime::{Direction, Identity, KeyStore, RevocationPolicy, TrustStore};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

pub struct CertKey {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl CertKey {
    pub fn identity(&self, chain: &[&CertKey]) -> Identity {
        Identity::new(
            self.cert.clone(),
            self.key.clone(),
            chain.iter().map(|c| c.cert.clone()).collect(),
        )
        .unwrap()
    }
}

pub enum San<'a> {
    Email(&'a str),
    Dns(&'a str),
    /// Legacy: EMAILADDRESS in the subject, no SAN at all.
    SubjectEmail(&'a str),
}

pub fn rsa(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
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

/// Validity as day offsets from now, so expired and future certificates are easy. Signed
/// with SHA-256 and with emailProtection as the only extended key usage of end entities.
pub fn build(
    cn: &str,
    key: PKey<Private>,
    issuer: Option<&CertKey>,
    ca: bool,
    san: Option<San<'_>>,
    valid_days: (i64, i64),
) -> CertKey {
    build_with(cn, key, issuer, ca, san, valid_days, &Variant::default())
}

/// How a certificate from [`build_with`] departs from the usual test certificate.
pub struct Variant {
    /// The digest the issuer signs with.
    pub md: MessageDigest,
    /// Extended key usage of an end entity: `None` leaves the extension out; names as the
    /// openssl crate's builder takes them (`"emailProtection"`, `"serverAuth"`, ...).
    pub eku: Option<&'static [&'static str]>,
    /// A fixed serial number instead of a random one.
    pub serial: Option<u32>,
    /// A CRL Distribution Point (fullName URI).
    pub crl_url: Option<String>,
    /// An Authority Information Access caIssuers URI.
    pub aia_url: Option<String>,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            md: MessageDigest::sha256(),
            eku: Some(&["emailProtection"]),
            serial: None,
            crl_url: None,
            aia_url: None,
        }
    }
}

pub fn build_with(
    cn: &str,
    key: PKey<Private>,
    issuer: Option<&CertKey>,
    ca: bool,
    san: Option<San<'_>>,
    valid_days: (i64, i64),
    variant: &Variant,
) -> CertKey {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "directd test")
        .unwrap();
    if let Some(San::SubjectEmail(e)) = &san {
        name.append_entry_by_nid(Nid::PKCS9_EMAILADDRESS, e)
            .unwrap();
    }
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    match variant.serial {
        Some(n) => b
            .set_serial_number(&BigNum::from_u32(n).unwrap().to_asn1_integer().unwrap())
            .unwrap(),
        None => b.set_serial_number(&serial()).unwrap(),
    }
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now() + valid_days.0 * 86400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now() + valid_days.1 * 86400).unwrap())
        .unwrap();
    if ca {
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
        if let Some(usages) = variant.eku {
            let mut eku = ExtendedKeyUsage::new();
            for u in usages {
                match *u {
                    "emailProtection" => eku.email_protection(),
                    "serverAuth" => eku.server_auth(),
                    "clientAuth" => eku.client_auth(),
                    other => eku.other(other),
                };
            }
            b.append_extension(eku.build().unwrap()).unwrap();
        }
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
    match san {
        Some(San::Email(e)) => {
            let ext = SubjectAlternativeName::new()
                .email(e)
                .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        Some(San::Dns(d)) => {
            let ext = SubjectAlternativeName::new()
                .dns(d)
                .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        _ => {}
    }
    // The openssl crate has no typed builders for these two; the config-string form is what
    // `openssl x509 -extfile` takes too.
    #[allow(deprecated)]
    {
        use openssl::x509::X509Extension;
        let ctx = b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None);
        let mut exts = Vec::new();
        if let Some(url) = &variant.crl_url {
            exts.push(
                X509Extension::new_nid(
                    None,
                    Some(&ctx),
                    Nid::CRL_DISTRIBUTION_POINTS,
                    &format!("URI:{url}"),
                )
                .unwrap(),
            );
        }
        if let Some(url) = &variant.aia_url {
            exts.push(
                X509Extension::new_nid(
                    None,
                    Some(&ctx),
                    Nid::INFO_ACCESS,
                    &format!("caIssuers;URI:{url}"),
                )
                .unwrap(),
            );
        }
        for e in exts {
            b.append_extension(e).unwrap();
        }
    }
    let signing_key = issuer.map_or(&key, |i| &i.key);
    b.sign(signing_key, variant.md).unwrap();
    // As read from files, the way the daemon loads every certificate and key: a certificate
    // fresh from the builder re-encodes itself on each `to_der` (one read from DER keeps its
    // encoding), and the key is decoded as the daemon decodes its keys, not OpenSSL's
    // generated kind.
    let cert = X509::from_der(&b.build().to_der().unwrap()).unwrap();
    let key = PKey::private_key_from_der(&key.private_key_to_der().unwrap()).unwrap();
    CertKey { cert, key }
}

pub struct Pki {
    pub root: CertKey,
    pub inter: CertKey,
    pub rogue_root: CertKey,
    /// alice@a.example, address-bound, issued by the intermediate.
    pub alice: CertKey,
    /// a.example, domain-bound.
    pub a_domain: CertKey,
    /// bob@b.example, address-bound.
    pub bob: CertKey,
    /// b.example, domain-bound.
    pub b_domain: CertKey,
    /// carol@c.example: a recipient nobody else addresses.
    pub carol: CertKey,
    pub alice_expired: CertKey,
    pub alice_weak: CertKey,
    pub alice_rogue: CertKey,
    pub alice_ec: CertKey,
    pub alice_legacy: CertKey,
}

impl Pki {
    pub fn new() -> Pki {
        let root = build("Test Root", rsa(2048), None, true, None, (-10, 3650));
        let inter = build(
            "Test Intermediate",
            rsa(2048),
            Some(&root),
            true,
            None,
            (-10, 3000),
        );
        let rogue_root = build("Rogue Root", rsa(2048), None, true, None, (-10, 3650));
        let ee = |cn: &str, key, issuer: &CertKey, san, days| {
            build(cn, key, Some(issuer), false, Some(san), days)
        };
        Pki {
            alice: ee(
                "alice",
                rsa(2048),
                &inter,
                San::Email("alice@a.example"),
                (-1, 365),
            ),
            a_domain: ee(
                "a.example",
                rsa(2048),
                &inter,
                San::Dns("a.example"),
                (-1, 365),
            ),
            bob: ee(
                "bob",
                rsa(2048),
                &inter,
                San::Email("bob@b.example"),
                (-1, 365),
            ),
            b_domain: ee(
                "b.example",
                rsa(2048),
                &inter,
                San::Dns("b.example"),
                (-1, 365),
            ),
            carol: ee(
                "carol",
                rsa(2048),
                &root,
                San::Email("carol@c.example"),
                (-1, 365),
            ),
            alice_expired: ee(
                "alice expired",
                rsa(2048),
                &inter,
                San::Email("alice@a.example"),
                (-400, -35),
            ),
            alice_weak: ee(
                "alice weak",
                rsa(1024),
                &inter,
                San::Email("alice@a.example"),
                (-1, 365),
            ),
            alice_rogue: ee(
                "alice rogue",
                rsa(2048),
                &rogue_root,
                San::Email("alice@a.example"),
                (-1, 365),
            ),
            alice_ec: ee(
                "alice ec",
                p256(),
                &inter,
                San::Email("alice@a.example"),
                (-1, 365),
            ),
            alice_legacy: ee(
                "alice legacy",
                rsa(2048),
                &inter,
                San::SubjectEmail("alice@a.example"),
                (-1, 365),
            ),
            root,
            inter,
            rogue_root,
        }
    }

    /// bob's side: bob's and b.example's keys.
    pub fn bob_keys(&self) -> KeyStore {
        let mut ks = KeyStore::new();
        ks.add(self.bob.identity(&[]));
        ks.add(self.b_domain.identity(&[]));
        ks
    }

    /// b.example trusts the test root for incoming mail.
    pub fn bob_trust(&self) -> TrustStore {
        let mut t = TrustStore::new(RevocationPolicy::BestEffort);
        t.add_anchor("b.example", Direction::Incoming, self.root.cert.clone());
        t
    }
}

pub const INNER: &str = "From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Cc: Dr B <b-team@b.example>\r\n\
Subject: Discharge summary for patient 12345\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <m1@a.example>\r\n\
Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Patient was discharged.\r\n\
Follow up in two weeks.\r\n";

/// Writes a PEM certificate or key into `dir` and returns its path.
pub fn write_pem(dir: &Path, name: &str, ck: &CertKey) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key, ck.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    set_mode(&key, 0o600);
    (cert, key)
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `openssl` with `args`, panicking with its stderr on failure.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `openssl` and reports success without panicking.
pub fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The wrapped entity a Direct sender signs: `message/rfc822` around the whole message.
pub fn wrapped(inner: &str) -> String {
    format!("Content-Type: message/rfc822\r\n\r\n{inner}")
}

/// Signs `content` with the openssl CLI (detached, S/MIME output) and encrypts the result to
/// `recip` with `cipher` (e.g. "-aes128"), as a foreign HISP would. `extra_enc` adds options
/// to the encrypt step.
#[allow(clippy::too_many_arguments)]
pub fn cli_sign_encrypt(
    dir: &Path,
    content: &str,
    signer: &CertKey,
    chain: &[&CertKey],
    md: &str,
    cipher: &str,
    recip: &CertKey,
    extra_enc: &[&str],
) -> Vec<u8> {
    let signed = cli_sign(dir, content, signer, chain, md, &[]);
    let (rcert, _) = write_pem(dir, "cli-recip", recip);
    cli_encrypt(dir, &signed, cipher, &rcert, extra_enc)
}

/// Signs `content` with `openssl cms -sign` as `signer` (with `chain` attached) and returns
/// the S/MIME output file: `multipart/signed` by default, opaque signed-data with
/// `extra = ["-nodetach"]`.
pub fn cli_sign(
    dir: &Path,
    content: &str,
    signer: &CertKey,
    chain: &[&CertKey],
    md: &str,
    extra: &[&str],
) -> PathBuf {
    let (scert, skey) = write_pem(dir, "cli-signer", signer);
    let chain_file = dir.join("cli-chain.pem");
    let mut pem = Vec::new();
    for c in chain {
        pem.extend(c.cert.to_pem().unwrap());
    }
    std::fs::write(&chain_file, &pem).unwrap();
    let input = dir.join("cli-content.txt");
    std::fs::write(&input, content).unwrap();
    let signed = dir.join("cli-signed.eml");
    let mut args = vec![
        "cms",
        "-sign",
        "-md",
        md,
        "-in",
        p(&input),
        "-signer",
        p(&scert),
        "-inkey",
        p(&skey),
        "-out",
        p(&signed),
    ];
    if !chain.is_empty() {
        args.extend(["-certfile", p(&chain_file)]);
    }
    args.extend(extra);
    openssl(&args);
    signed
}

/// Encrypts the file `input` to `rcert` with the CLI, with Direct-ish outer headers.
pub fn cli_encrypt(
    dir: &Path,
    input: &Path,
    cipher: &str,
    rcert: &Path,
    extra: &[&str],
) -> Vec<u8> {
    let out = dir.join("cli-enc.eml");
    let mut args = vec![
        "cms",
        "-encrypt",
        cipher,
        "-in",
        p(input),
        "-out",
        p(&out),
        "-from",
        "alice@a.example",
        "-to",
        "bob@b.example",
        "-subject",
        "Direct message",
    ];
    // -keyopt applies to the -recip before it.
    args.extend(["-recip", p(rcert)]);
    args.extend(extra);
    openssl(&args);
    std::fs::read(&out).unwrap()
}

/// `input` decrypted with the openssl command line (`cert`, `key`); returns the output file.
pub fn cli_decrypt(dir: &Path, input: &Path, cert: &Path, key: &Path) -> PathBuf {
    let out = dir.join("cli-dec.eml");
    openssl(&[
        "cms",
        "-decrypt",
        "-in",
        p(input),
        "-inkey",
        p(key),
        "-recip",
        p(cert),
        "-out",
        p(&out),
    ]);
    out
}

/// `sealed` decrypted with the command line as `recipient`, its signed entity edited, and
/// encrypted again to `recipient` (output as the command line writes it, bare LF): only the
/// signature can notice the edit.
pub fn reseal_edited(
    sealed: &[u8],
    recipient: &CertKey,
    edit: impl Fn(String) -> String,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = write_pem(d, "recipient", recipient);
    let enc = d.join("in.eml");
    std::fs::write(&enc, sealed).unwrap();
    let dec = cli_decrypt(d, &enc, &cert, &key);
    let edited = edit(std::fs::read_to_string(&dec).unwrap());
    std::fs::write(&dec, edited).unwrap();
    cli_encrypt(d, &dec, "-aes128", &cert, &[])
}

/// One PKI per test binary: RSA key generation dominates test time otherwise.
pub fn pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(Pki::new)
}

/// A CRL issued by `issuer` revoking `revoked`, valid from yesterday for `next_days`.
pub fn crl(issuer: &CertKey, revoked: &[&CertKey], next_days: i64) -> openssl::x509::X509Crl {
    use openssl::x509::{X509CrlBuilder, X509RevokedBuilder};
    let mut b = X509CrlBuilder::new().unwrap();
    b.set_issuer_name(issuer.cert.subject_name()).unwrap();
    b.set_last_update(&Asn1Time::from_unix(now() - 86400).unwrap())
        .unwrap();
    b.set_next_update(&Asn1Time::from_unix(now() + next_days * 86400).unwrap())
        .unwrap();
    for r in revoked {
        let mut rb = X509RevokedBuilder::new().unwrap();
        rb.set_serial_number(r.cert.serial_number()).unwrap();
        rb.set_revocation_date(&Asn1Time::from_unix(now() - 3600).unwrap())
            .unwrap();
        b.add_revoked(rb.build()).unwrap();
    }
    // The builder insists on AKI and CRL Number; both are small enough to encode by hand.
    let ski = issuer.cert.subject_key_id().unwrap().as_slice().to_vec();
    let mut aki = vec![0x30, (ski.len() + 2) as u8, 0x80, ski.len() as u8];
    aki.extend_from_slice(&ski);
    let ext = |nid, der: &[u8]| {
        openssl::x509::X509Extension::new_from_der(
            &openssl::asn1::Asn1Object::from_str(nid).unwrap(),
            false,
            &openssl::asn1::Asn1OctetString::new_from_bytes(der).unwrap(),
        )
        .unwrap()
    };
    b.append_extension(ext("2.5.29.35", &aki)).unwrap();
    b.append_extension(ext("2.5.29.20", &[0x02, 0x01, 0x01]))
        .unwrap();
    b.sign(&issuer.key, MessageDigest::sha256()).unwrap();
    b.build().unwrap()
}
