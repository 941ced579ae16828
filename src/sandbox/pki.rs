//! A throwaway PKI for the sandbox, the demo and the tests: one CA, a server certificate and a
//! client certificate (for mutual TLS), generated fresh with openssl so no key material is ever
//! committed.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509};

/// A CA plus a server and a client certificate it issued, all PEM encoded.
pub struct TestPki {
    pub ca_cert_pem: Vec<u8>,
    pub server_cert_pem: Vec<u8>,
    pub server_key_pem: Vec<u8>,
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
}

/// Where [`TestPki::write_to`] put the files.
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn new_key() -> Result<PKey<Private>, ErrorStack> {
    // P-256 keeps generation instant; the TLS layer does not care which key type the test CA uses.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn name(cn: &str) -> Result<X509Name, ErrorStack> {
    let mut n = X509Name::builder()?;
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "directd sandbox")?;
    n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(n.build())
}

fn serial() -> Result<openssl::asn1::Asn1Integer, ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    bn.to_asn1_integer()
}

impl TestPki {
    /// A CA and a server certificate valid for `hosts` (DNS names or IP addresses).
    pub fn generate(hosts: &[&str]) -> Result<Self, ErrorStack> {
        Self::generate_with_validity(hosts, 0, 365)
    }

    /// Like [`generate`](Self::generate), with the server certificate valid from `from_days`
    /// to `to_days` relative to now (negative values give an expired certificate).
    pub fn generate_with_validity(
        hosts: &[&str],
        from_days: i64,
        to_days: i64,
    ) -> Result<Self, ErrorStack> {
        let ca_key = new_key()?;
        let ca_name = name("directd sandbox test CA")?;
        let mut ca = X509::builder()?;
        ca.set_version(2)?;
        ca.set_serial_number(&*serial()?)?;
        ca.set_subject_name(&ca_name)?;
        ca.set_issuer_name(&ca_name)?;
        ca.set_pubkey(&ca_key)?;
        ca.set_not_before(&*Asn1Time::days_from_now(0)?)?;
        ca.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
        ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        ca.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        ca.sign(&ca_key, MessageDigest::sha256())?;
        let ca = ca.build();

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let issue = |cn: &str, hosts: &[&str], client: bool, from: i64, to: i64| {
            let key = new_key()?;
            let mut cert = X509::builder()?;
            cert.set_version(2)?;
            cert.set_serial_number(&*serial()?)?;
            cert.set_subject_name(&*name(cn)?)?;
            cert.set_issuer_name(ca.subject_name())?;
            cert.set_pubkey(&key)?;
            cert.set_not_before(&*Asn1Time::from_unix(now + from * 86_400)?)?;
            cert.set_not_after(&*Asn1Time::from_unix(now + to * 86_400)?)?;
            if !hosts.is_empty() {
                let mut san = SubjectAlternativeName::new();
                for host in hosts {
                    if host.parse::<std::net::IpAddr>().is_ok() {
                        san.ip(host);
                    } else {
                        san.dns(host);
                    }
                }
                let ctx = cert.x509v3_context(Some(&ca), None);
                let san = san.build(&ctx)?;
                cert.append_extension(san)?;
            }
            cert.append_extension(BasicConstraints::new().build()?)?;
            cert.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            let mut eku = ExtendedKeyUsage::new();
            if client {
                eku.client_auth();
            } else {
                eku.server_auth();
            }
            cert.append_extension(eku.build()?)?;
            cert.sign(&ca_key, MessageDigest::sha256())?;
            Ok::<_, ErrorStack>((cert.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
        };
        let server_cn = hosts.first().copied().unwrap_or("localhost");
        let (server_cert_pem, server_key_pem) = issue(server_cn, hosts, false, from_days, to_days)?;
        let (client_cert_pem, client_key_pem) = issue("directd sandbox client", &[], true, 0, 365)?;

        Ok(TestPki {
            ca_cert_pem: ca.to_pem()?,
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        })
    }

    /// Writes the PEM files into `dir` (the keys 0600).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        let files = PkiFiles {
            ca_cert: dir.join("sandbox-ca.pem"),
            server_cert: dir.join("sandbox-server.pem"),
            server_key: dir.join("sandbox-server.key"),
            client_cert: dir.join("sandbox-client.pem"),
            client_key: dir.join("sandbox-client.key"),
        };
        crate::fsutil::write_private(&files.server_key, &self.server_key_pem)?;
        crate::fsutil::write_private(&files.client_key, &self.client_key_pem)?;
        std::fs::write(&files.client_cert, &self.client_cert_pem)?;
        std::fs::write(&files.ca_cert, &self.ca_cert_pem)?;
        std::fs::write(&files.server_cert, &self.server_cert_pem)?;
        Ok(files)
    }
}
