//! `directd certs publish` (DCDT hosting cases H1-H4: address- and domain-bound certificates
//! in DNS and in LDAP). The binary's output is fed to the real servers that would publish it:
//! the LDIF to OpenLDAP's slapadd and a slapd, the CERT lines to dnsmasq, and directd's own
//! discovery must then find each certificate.
mod support;

use std::process::Command;
use std::time::Duration;

use directd::smime::discovery::DnsCertDiscovery;
use directd::smime::ldap::{LdapDiscovery, LdapLimits};
use support::pki::{build, pki, rsa, write_pem, CertKey, San};
use support::servers::{Dnsmasq, Slapd};

const BIN: &str = env!("CARGO_BIN_EXE_directd");

struct Setup {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    clinic: CertKey,
    dotted: CertKey,
    domain: CertKey,
}

fn setup() -> Setup {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let ee = |cn: &str, san| build(cn, rsa(2048), Some(&pki.inter), false, Some(san), (-1, 365));
    let clinic = ee("clinic", San::Email("clinic@b.test"));
    let dotted = ee("john doe", San::Email("john.doe@b.test"));
    let domain = ee("b.test", San::Dns("b.test"));
    write_pem(&keys, "clinic", &clinic);
    write_pem(&keys, "dotted", &dotted);
    write_pem(&keys, "domain", &domain);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "unused").unwrap();
    let config = dir.path().join("directd.toml");
    directd::fsutil::write_private(
        &config,
        format!(
            "[store]\npath = {:?}\n[hisp]\nhost = \"127.0.0.1\"\nca_file = {ca:?}\n[smime]\nkeys_dir = {keys:?}\n",
            dir.path().join("store.db")
        )
        .as_bytes(),
    )
    .unwrap();
    Setup {
        _dir: dir,
        config,
        clinic,
        dotted,
        domain,
    }
}

fn publish(s: &Setup, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&s.config)
        .args(["certs", "publish"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn b64(c: &CertKey) -> String {
    openssl::base64::encode_block(&c.cert.to_der().unwrap())
}

#[test]
fn zone_lines_and_ldif_name_each_identity() {
    let s = setup();
    let all = publish(&s, &[]);
    assert!(!all.contains("PRIVATE"), "no key material is printed");
    assert!(all.contains(&format!(
        "clinic.b.test. 3600 IN CERT PKIX 0 0 {}\n",
        b64(&s.clinic)
    )));
    assert!(
        all.contains(&format!(
            "john\\.doe.b.test. 3600 IN CERT PKIX 0 0 {}\n",
            b64(&s.dotted)
        )),
        "RFC 4398: a dot in the local part is escaped, not a label break"
    );
    assert!(all.contains(&format!(
        "b.test. 3600 IN CERT PKIX 0 0 {}\n",
        b64(&s.domain)
    )));
    assert!(all.contains("dn: cn=clinic@b.test,dc=b,dc=test\n"));
    assert!(all.contains("mail: b.test\n"));

    let zone = publish(&s, &["--zone", "--ttl", "600"]);
    assert!(!zone.contains("dn: "));
    assert_eq!(
        zone.lines().filter(|l| l.contains(" 600 IN CERT ")).count(),
        3
    );
    let ldif = publish(&s, &["--ldif"]);
    assert!(!ldif.contains("IN CERT"));
    assert_eq!(ldif.matches("userCertificate;binary:: ").count(), 3);
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn published_records_are_found_by_discovery_h1_to_h4() {
    let s = setup();
    // LDAP (H3 address-bound, H4 domain-bound): the LDIF as printed, under a base entry.
    let ldif = format!(
        "dn: dc=test\nobjectClass: dcObject\nobjectClass: organization\no: test\ndc: test\n\n{}",
        publish(&s, &["--ldif", "--ldap-base", "dc=test"])
    );
    let slapd = Slapd::start_ldif("dc=test", &ldif);

    // DNS (H1 address-bound, H2 domain-bound): each zone line as a dnsmasq record.
    let mut args = vec![format!(
        "--srv-host=_ldap._tcp.b.test,127.0.0.1,{},0,0",
        slapd.port
    )];
    for line in publish(&s, &["--zone"]).lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() != 8 || fields[3] != "CERT" {
            continue;
        }
        assert_eq!(&fields[4..7], ["PKIX", "0", "0"]);
        // dnsmasq takes no escaped dots: the dotted local part is checked in the test above.
        if fields[0].contains('\\') {
            continue;
        }
        let der = openssl::base64::decode_block(fields[7]).unwrap();
        args.push(support::servers::cert_rr(
            fields[0].trim_end_matches('.'),
            &der,
        ));
    }
    let dns = Dnsmasq::start(&args);
    let der = |c: &CertKey| c.cert.to_der().unwrap();

    let cert_discovery = DnsCertDiscovery::new(dns.addr, Duration::from_secs(3));
    let found = cert_discovery.lookup("clinic@b.test").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to_der().unwrap(), der(&s.clinic), "H1");
    let found = cert_discovery.lookup("anyone@b.test").await.unwrap();
    assert_eq!(found[0].to_der().unwrap(), der(&s.domain), "H2");

    let ldap = LdapDiscovery::new(
        DnsCertDiscovery::new(dns.addr, Duration::from_secs(3)),
        LdapLimits::default(),
    );
    let found = ldap.lookup("john.doe@b.test").await.unwrap();
    let ders: Vec<_> = found.certs.iter().map(|c| c.to_der().unwrap()).collect();
    assert!(ders.contains(&der(&s.dotted)), "H3");
    let found = ldap.lookup("anyone@b.test").await.unwrap();
    let ders: Vec<_> = found.certs.iter().map(|c| c.to_der().unwrap()).collect();
    assert_eq!(ders, vec![der(&s.domain)], "H4");
}
