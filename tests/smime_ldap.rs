//! LDAP certificate discovery against a real OpenLDAP slapd and a real dnsmasq serving the
//! `_ldap._tcp` SRV records, both private instances on loopback ports (install:
//! scripts/install-slapd.sh, scripts/install-dnsmasq.sh).
//!
//! One directory (`dc=test`) holds the entries of three Direct domains; each domain's SRV
//! records list a dead server at the better priority first, so every lookup also proves that
//! an unreachable server is passed over. DCDT cases:
//! - D1 (address-bound via LDAP), D2 (domain-bound via LDAP): `address_and_domain_bound_d1_d2`.
//! - D5-D8 (invalid certificates found, not selected), D9 (valid chosen over invalid), D11-D13
//!   (nothing usable: nothing sent, the recipient fails with the reason):
//!   `selection_rules_d5_to_d13`.
//! - Bad input: `oversize_results_garbage_and_referrals`; unreachable servers:
//!   `no_reachable_server_is_a_specific_error`; source order: `dns_cert_comes_before_ldap`.
mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use directd::smime::discovery::DnsCertDiscovery;
use directd::smime::ldap::{LdapDiscovery, LdapError, LdapLimits, ServerError};
use directd::smime::{
    Agent, CertDirectory, Direction, KeyStore, RevocationPolicy, SealOptions, SmimeError,
    TrustStore,
};
use support::pki::{build, pki, rsa, CertKey, San};
use support::servers::{cert_rr, free_port, Dnsmasq, Entry, Slapd};

struct Certs {
    clinic: CertKey,
    clinic_dns: CertKey,
    b_domain: CertKey,
    expired: CertKey,
    rogue: CertKey,
    mismatch: CertKey,
    mixed_expired: CertKey,
    mixed_valid: CertKey,
}

fn certs() -> &'static Certs {
    static C: OnceLock<Certs> = OnceLock::new();
    C.get_or_init(|| {
        let pki = pki();
        let ee = |cn: &str, issuer: &CertKey, san, days| {
            build(cn, rsa(2048), Some(issuer), false, Some(san), days)
        };
        Certs {
            clinic: ee(
                "clinic ldap",
                &pki.inter,
                San::Email("clinic@b.test"),
                (-1, 365),
            ),
            clinic_dns: ee(
                "clinic dns",
                &pki.inter,
                San::Email("clinic@b.test"),
                (-1, 365),
            ),
            b_domain: ee("b.test", &pki.inter, San::Dns("b.test"), (-1, 365)),
            expired: ee(
                "expired",
                &pki.inter,
                San::Email("expired@c.test"),
                (-400, -30),
            ),
            rogue: ee(
                "rogue",
                &pki.rogue_root,
                San::Email("rogue@c.test"),
                (-1, 365),
            ),
            mismatch: ee(
                "someone else",
                &pki.inter,
                San::Email("someone@c.test"),
                (-1, 365),
            ),
            mixed_expired: ee(
                "mixed expired",
                &pki.inter,
                San::Email("mixed@c.test"),
                (-400, -30),
            ),
            mixed_valid: ee(
                "mixed valid",
                &pki.inter,
                San::Email("mixed@c.test"),
                (-1, 365),
            ),
        }
    })
}

fn der(c: &CertKey) -> Vec<u8> {
    c.cert.to_der().unwrap()
}

fn person(cn: &str, mail: &str) -> Entry {
    Entry::new(&format!("cn={cn},dc=test"))
        .attr("objectClass", "inetOrgPerson")
        .attr("cn", cn)
        .attr("sn", cn)
        .attr("mail", mail)
}

fn directory() -> Slapd {
    let c = certs();
    let mut entries = vec![
        Entry::new("dc=test")
            .attr("objectClass", "dcObject")
            .attr("objectClass", "organization")
            .attr("o", "test")
            .attr("dc", "test"),
        // A referral to another directory: reported, never followed.
        Entry::new("ou=elsewhere,dc=test")
            .attr("objectClass", "referral")
            .attr("objectClass", "extensibleObject")
            .attr("ou", "elsewhere")
            .attr("ref", "ldap://ldap.other.example/ou=x"),
        person("clinic", "clinic@b.test").bin("userSMIMECertificate", &der(&c.clinic)),
        person("b-domain", "b.test").bin("userCertificate;binary", &der(&c.b_domain)),
        person("expired", "expired@c.test").bin("userCertificate;binary", &der(&c.expired)),
        person("rogue", "rogue@c.test").bin("userCertificate;binary", &der(&c.rogue)),
        person("mismatch", "mismatch@c.test").bin("userCertificate;binary", &der(&c.mismatch)),
        person("mixed", "mixed@c.test")
            .bin("userCertificate;binary", &der(&c.mixed_expired))
            .bin("userSMIMECertificate", &der(&c.mixed_valid)),
        person("garbage", "garbage@c.test").bin(
            "userCertificate;binary",
            b"\x30\x82\x01\x00not a certificate",
        ),
    ];
    for i in 0..40 {
        entries.push(
            person(&format!("many{i}"), "many@c.test")
                .bin("userCertificate;binary", &der(&c.clinic)),
        );
    }
    Slapd::start("dc=test", &entries)
}

struct World {
    _slapd: Slapd,
    dns: Dnsmasq,
}

fn world() -> World {
    let slapd = directory();
    // Nothing listens here: the dead server at the better priority.
    let dead = free_port();
    let port = slapd.port;
    let mut args = Vec::new();
    for domain in ["b.test", "c.test"] {
        args.push(format!(
            "--srv-host=_ldap._tcp.{domain},127.0.0.1,{dead},0,100"
        ));
        args.push(format!(
            "--srv-host=_ldap._tcp.{domain},127.0.0.1,{port},10,100"
        ));
    }
    args.push(format!(
        "--srv-host=_ldap._tcp.d.test,127.0.0.1,{dead},0,100"
    ));
    args.push(cert_rr("clinic.b.test", &der(&certs().clinic_dns)));
    World {
        dns: Dnsmasq::start(&args),
        _slapd: slapd,
    }
}

fn limits() -> LdapLimits {
    LdapLimits {
        per_server: Duration::from_secs(3),
        ..LdapLimits::default()
    }
}

fn ldap(w: &World) -> LdapDiscovery {
    LdapDiscovery::new(
        DnsCertDiscovery::new(w.dns.addr, Duration::from_secs(3)),
        limits(),
    )
}

/// a.example sends; its outgoing anchor is the test intermediate.
fn agent(w: &World, dns_cert: bool) -> Agent {
    let mut trust = TrustStore::new(RevocationPolicy::BestEffort);
    trust.add_anchor("a.example", Direction::Outgoing, pki().inter.cert.clone());
    Agent {
        keys: KeyStore::new(),
        trust,
        directory: CertDirectory::from_certs(Vec::new()),
        discovery: dns_cert.then(|| DnsCertDiscovery::new(w.dns.addr, Duration::from_secs(3))),
        ldap: Some(ldap(w)),
        bundles: None,
        seal: SealOptions::default(),
    }
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn address_and_domain_bound_d1_d2() {
    let w = world();
    let found = ldap(&w).lookup("clinic@b.test").await.unwrap();
    let ders: Vec<_> = found.certs.iter().map(|c| c.to_der().unwrap()).collect();
    assert!(ders.contains(&der(&certs().clinic)), "D1: address-bound");
    assert_eq!(
        found.server,
        Some(format!("127.0.0.1:{}", w._slapd.port)),
        "the live server at the worse priority answered"
    );
    assert_eq!(found.failed.len(), 1, "the dead server was tried first");
    assert!(matches!(found.failed[0].1, ServerError::Connect(_)));

    // D2: no entry for the address, the domain's entry carries a domain-bound certificate.
    let chosen = agent(&w, false)
        .recipient_certs("alice@a.example", "anyone@b.test")
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].to_der().unwrap(), der(&certs().b_domain));
    // D1 through the agent: the address-bound one is preferred over the domain-bound one.
    let chosen = agent(&w, false)
        .recipient_certs("alice@a.example", "clinic@b.test")
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].to_der().unwrap(), der(&certs().clinic));
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn selection_rules_d5_to_d13() {
    let w = world();
    let a = agent(&w, false);
    let send = |to: &'static str| a.recipient_certs("alice@a.example", to);

    // D5-D8: each invalid certificate is found...
    for address in ["expired@c.test", "rogue@c.test", "mismatch@c.test"] {
        let found = ldap(&w).lookup(address).await.unwrap();
        assert_eq!(found.certs.len(), 1, "{address}: found");
    }
    // ...and not selected, each with its reason.
    let err = send("expired@c.test").await.unwrap_err();
    assert!(
        matches!(err, SmimeError::NoRecipientCert { rejected: 1, .. }),
        "expired: {err}"
    );
    let err = send("rogue@c.test").await.unwrap_err();
    assert!(
        matches!(err, SmimeError::NoTrustedRecipientCert { .. }),
        "untrusted issuer: {err}"
    );
    let err = send("mismatch@c.test").await.unwrap_err();
    assert!(
        matches!(err, SmimeError::NoRecipientCert { rejected: 0, .. }),
        "bound to another address: {err}"
    );

    // D9: the valid one of two.
    let chosen = send("mixed@c.test").await.unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].to_der().unwrap(), der(&certs().mixed_valid));

    // D11-D13: nothing published: nothing to encrypt to, the recipient fails.
    let found = ldap(&w).lookup("nobody@c.test").await.unwrap();
    assert!(found.certs.is_empty());
    let err = send("nobody@c.test").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no valid certificate for recipient nobody@c.test (0 unusable found)"
    );
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn oversize_results_garbage_and_referrals() {
    let w = world();
    let l = ldap(&w);

    let err = l.lookup("many@c.test").await.unwrap_err();
    assert!(
        matches!(
            &err,
            LdapError::AllServersFailed {
                last: ServerError::TooManyEntries(32),
                tried: 2,
                ..
            }
        ),
        "{err}"
    );

    let tight = LdapDiscovery::new(
        DnsCertDiscovery::new(w.dns.addr, Duration::from_secs(3)),
        LdapLimits {
            max_bytes: 1000,
            ..limits()
        },
    );
    let err = tight.lookup("clinic@b.test").await.unwrap_err();
    assert!(
        matches!(
            &err,
            LdapError::AllServersFailed {
                last: ServerError::TooLarge(1000),
                ..
            }
        ),
        "{err}"
    );

    let found = l.lookup("garbage@c.test").await.unwrap();
    assert!(found.certs.is_empty());
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.contains("not a certificate")),
        "{:?}",
        found.skipped
    );
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.contains("not followed") && s.contains("ldap.other.example")),
        "the referral is reported: {:?}",
        found.skipped
    );
    let err = agent(&w, false)
        .recipient_certs("alice@a.example", "garbage@c.test")
        .await
        .unwrap_err();
    assert!(matches!(err, SmimeError::NoRecipientCert { .. }), "{err}");
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn no_reachable_server_is_a_specific_error() {
    let w = world();
    let started = Instant::now();
    let err = ldap(&w).lookup("someone@d.test").await.unwrap_err();
    assert!(
        matches!(
            &err,
            LdapError::AllServersFailed {
                tried: 1,
                last: ServerError::Connect(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // A domain without SRV records has no LDAP: nothing found, no error.
    let found = ldap(&w).lookup("someone@e.test").await.unwrap();
    assert!(found.certs.is_empty() && found.server.is_none());
    let err = agent(&w, false)
        .recipient_certs("alice@a.example", "someone@d.test")
        .await
        .unwrap_err();
    assert!(matches!(err, SmimeError::NoRecipientCert { .. }), "{err}");
}

#[cfg_attr(
    any(missing_slapd, missing_dnsmasq),
    ignore = "slapd or dnsmasq is not installed: run scripts/install-slapd.sh and scripts/install-dnsmasq.sh"
)]
#[tokio::test]
async fn dns_cert_comes_before_ldap() {
    let w = world();
    // DNS CERT and LDAP both publish a valid certificate for clinic@b.test: DNS wins.
    let chosen = agent(&w, true)
        .recipient_certs("alice@a.example", "clinic@b.test")
        .await
        .unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].to_der().unwrap(), der(&certs().clinic_dns));
    // DNS has nothing for anyone@b.test (nor at b.test): LDAP's domain-bound one.
    let chosen = agent(&w, true)
        .recipient_certs("alice@a.example", "anyone@b.test")
        .await
        .unwrap();
    assert_eq!(chosen[0].to_der().unwrap(), der(&certs().b_domain));
}
