//! What a Direct domain publishes so others can find its certificates (DCDT hosting cases
//! H1-H4): DNS CERT records (RFC 4398) in zone-file form and LDAP entries in LDIF, for
//! address-bound and domain-bound certificates alike. Only certificates are ever written, never
//! a key.

use openssl::x509::X509;

use super::certs::{san_dns, san_emails};

/// Where a certificate is published: an address (`local@domain`) or a whole domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Address(String),
    Domain(String),
}

impl Published {
    /// The names a certificate speaks for: its rfc822Name SANs, else its dNSName SANs.
    pub fn of(cert: &X509) -> Vec<Published> {
        let emails = san_emails(cert);
        if !emails.is_empty() {
            return emails.into_iter().map(Published::Address).collect();
        }
        san_dns(cert).into_iter().map(Published::Domain).collect()
    }

    /// The value looked up: the address, or the domain.
    pub fn mail(&self) -> &str {
        match self {
            Published::Address(a) | Published::Domain(a) => a,
        }
    }

    pub fn domain(&self) -> &str {
        match self {
            Published::Address(a) => a.rsplit_once('@').map_or(a.as_str(), |(_, d)| d),
            Published::Domain(d) => d,
        }
    }

    /// The DNS owner name, fully qualified: RFC 4398 §3 maps `local@domain` to `local.domain.`
    /// with the local part as one label (a dot inside it escaped as `\.`).
    pub fn owner_name(&self) -> String {
        match self {
            Published::Address(a) => {
                let (local, domain) = a.rsplit_once('@').unwrap_or(("", a));
                let mut label = String::new();
                for c in local.chars() {
                    match c {
                        '.' | '\\' | ';' | '(' | ')' | '"' | '$' | '@' => {
                            label.push('\\');
                            label.push(c);
                        }
                        c => label.push(c),
                    }
                }
                format!("{label}.{domain}.")
            }
            Published::Domain(d) => format!("{d}."),
        }
    }
}

/// One zone-file line: `owner TTL IN CERT PKIX 0 0 base64`. Most certificates make records
/// over 512 bytes, so the zone's servers must answer over TCP.
pub fn cert_record(
    name: &Published,
    cert: &X509,
    ttl: u32,
) -> Result<String, openssl::error::ErrorStack> {
    let der = cert.to_der()?;
    Ok(format!(
        "{} {ttl} IN CERT PKIX 0 0 {}",
        name.owner_name(),
        openssl::base64::encode_block(&der)
    ))
}

/// An LDIF entry under `base` (default: the domain's `dc=` components) holding the
/// certificate in both attributes Direct discovery reads.
pub fn ldif_entry(
    name: &Published,
    cert: &X509,
    base: Option<&str>,
) -> Result<String, openssl::error::ErrorStack> {
    let der = cert.to_der()?;
    let b64 = openssl::base64::encode_block(&der);
    let base = base.map(str::to_owned).unwrap_or_else(|| {
        name.domain()
            .split('.')
            .map(|l| format!("dc={l}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    let mail = name.mail();
    Ok(format!(
        "dn: cn={cn},{base}\n\
         objectClass: inetOrgPerson\n\
         cn: {mail}\n\
         sn: {mail}\n\
         mail: {mail}\n\
         userSMIMECertificate:: {b64}\n\
         userCertificate;binary:: {b64}\n",
        cn = ldap3::dn_escape(mail),
    ))
}
