//! `[smime]`: the S/MIME security agent's settings (certificates, trust anchors, bundles,
//! revocation, network fetching).

use super::raw::RawSmime;
use super::{choice, interval, invalid, secs, ConfigError};
use crate::smime::AgentSettings;

pub(super) fn smime_settings(raw: &RawSmime) -> Result<AgentSettings, ConfigError> {
    use crate::smime::{ContentCipher, Direction, KeyTransport, RevocationPolicy};
    let mut settings = AgentSettings {
        keys_dir: raw.keys_dir.clone(),
        recipient_certs_dir: raw.recipient_certs_dir.clone(),
        crl_files: raw.crl_files.clone(),
        ..Default::default()
    };
    for (key, dir) in [
        ("smime.keys_dir", &raw.keys_dir),
        ("smime.recipient_certs_dir", &raw.recipient_certs_dir),
    ] {
        if let Some(d) = dir {
            if !d.is_dir() {
                return Err(invalid(key, format!("{} is not a directory", d.display())));
            }
        }
    }
    settings.revocation = choice(
        "smime.revocation",
        raw.revocation.as_deref().unwrap_or("best-effort"),
        &[
            ("require", RevocationPolicy::Require),
            ("best-effort", RevocationPolicy::BestEffort),
            ("off", RevocationPolicy::Off),
        ],
    )?;
    settings.seal.cipher = choice(
        "smime.cipher",
        raw.cipher.as_deref().unwrap_or("aes128"),
        &[
            ("aes128", ContentCipher::Aes128Cbc),
            ("aes256", ContentCipher::Aes256Cbc),
            ("aes128-gcm", ContentCipher::Aes128Gcm),
            ("aes256-gcm", ContentCipher::Aes256Gcm),
        ],
    )?;
    settings.seal.key_transport = choice(
        "smime.key_transport",
        raw.key_transport.as_deref().unwrap_or("rsa-oaep-sha256"),
        &[
            ("rsa-oaep-sha256", KeyTransport::RsaOaepSha256),
            ("rsa-oaep-sha1", KeyTransport::RsaOaepSha1),
            ("rsa-pkcs1v15", KeyTransport::RsaPkcs1v15),
        ],
    )?;
    settings.dns_nameserver = match raw.dns_nameserver.as_deref() {
        None => None,
        Some("system") => {
            let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let ip = conf
                .lines()
                .filter_map(|l| l.trim().strip_prefix("nameserver"))
                .find_map(|v| v.trim().parse::<std::net::IpAddr>().ok())
                .ok_or_else(|| {
                    invalid(
                        "smime.dns_nameserver",
                        "\"system\": no nameserver in /etc/resolv.conf",
                    )
                })?;
            Some(std::net::SocketAddr::new(ip, 53))
        }
        Some(addr) => Some(addr.parse().map_err(|_| {
            invalid(
                "smime.dns_nameserver",
                format!("{addr:?}: expected IP:port or \"system\""),
            )
        })?),
    };
    settings.ldap = raw.ldap.unwrap_or(true) && settings.dns_nameserver.is_some();
    if raw.network.enabled.unwrap_or(true) {
        let mut limits = crate::smime::fetch::FetchLimits::default();
        if raw.network.timeout_secs.is_some() {
            limits.total_timeout =
                secs("smime.network.timeout_secs", raw.network.timeout_secs, 30.0)?;
            limits.read_timeout = limits.read_timeout.min(limits.total_timeout);
            limits.connect_timeout = limits.connect_timeout.min(limits.total_timeout);
        }
        if let Some(max) = raw.network.max_bytes {
            if max == 0 {
                return Err(invalid("smime.network.max_bytes", "must be positive"));
            }
            limits.max_bytes = max;
        }
        settings.network = Some(crate::smime::NetSettings {
            cache_dir: raw.network.cache_dir.clone(),
            limits,
        });
    }
    if let Some(subject) = &raw.outer_subject {
        settings.seal.outer_subject = subject.clone();
    }
    for (i, a) in raw.anchors.iter().enumerate() {
        let directions = choice(
            format!("smime.anchors[{i}].direction"),
            &a.direction,
            &[
                ("incoming", &[Direction::Incoming][..]),
                ("outgoing", &[Direction::Outgoing]),
                ("both", &[Direction::Incoming, Direction::Outgoing]),
            ],
        )?
        .to_vec();
        if !a.file.is_file() {
            return Err(invalid(
                format!("smime.anchors[{i}].file"),
                format!("{} does not exist", a.file.display()),
            ));
        }
        settings.anchors.push(crate::smime::AnchorSource {
            domain: a.domain.to_ascii_lowercase(),
            directions,
            file: a.file.clone(),
            bundle_signer: a.bundle_signer.clone(),
        });
    }
    for (i, b) in raw.bundles.iter().enumerate() {
        let directions = choice(
            format!("smime.bundles[{i}].direction"),
            &b.direction,
            &[
                ("incoming", &[Direction::Incoming][..]),
                ("outgoing", &[Direction::Outgoing]),
                ("both", &[Direction::Incoming, Direction::Outgoing]),
            ],
        )?
        .to_vec();
        if crate::smime::fetch::check_url(&b.url).is_err() {
            return Err(invalid(
                format!("smime.bundles[{i}].url"),
                format!("{:?}: expected an http or https URL", b.url),
            ));
        }
        if let Some(signer) = &b.signer {
            if !signer.is_file() {
                return Err(invalid(
                    format!("smime.bundles[{i}].signer"),
                    format!("{} does not exist", signer.display()),
                ));
            }
        }
        settings.bundles.push(crate::smime::BundleSettings {
            url: b.url.clone(),
            domain: b.domain.to_ascii_lowercase(),
            directions,
            refresh: interval(
                &format!("smime.bundles[{i}].refresh"),
                b.refresh.as_deref().unwrap_or("24h"),
            )?,
            signer: b.signer.clone(),
        });
    }
    Ok(settings)
}
