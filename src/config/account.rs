//! `[[accounts]]`: one login at a HISP, its addresses, its endpoint (falling back to `[hisp]`)
//! and, for `transport = "edge"`, its SMTP/IMAP endpoints.

use std::path::PathBuf;

use super::raw::{RawAccount, RawConfig, RawEndpoint};
use super::secret::read_secret;
use super::{choice, invalid, secs, Account, ConfigError, DEFAULT_MAX_PART_BYTES};
use crate::hisp::edge::client::{AfterFetch, EdgeSettings, SmtpTls};
use crate::hisp::phimail::{ConnectSettings, DEFAULT_PORT};

/// One `[[accounts]]` entry, checked against the accounts before it (no address twice).
pub(super) fn account_settings(
    raw: &RawConfig,
    i: usize,
    a: &RawAccount,
    earlier: &[Account],
    secrets: bool,
) -> Result<Account, ConfigError> {
    let key = |k: &str| format!("accounts[{i}].{k}");
    let endpoint = a.endpoint();
    let address = crate::address::normalize(&a.address);
    if !crate::address::is_valid(&address) {
        return Err(invalid(
            key("address"),
            format!("{:?} is not a valid Direct address", a.address),
        ));
    }
    if a.transport != "phimail" && a.transport != "edge" {
        return Err(invalid(
            key("transport"),
            format!("{:?}: expected phimail or edge", a.transport),
        ));
    }
    if a.transport == "edge" && raw.smime.is_none() {
        return Err(invalid(
            key("transport"),
            "edge accounts need an [smime] section (directd is their security agent)",
        ));
    }
    let mut addresses = vec![address.clone()];
    for (j, m) in a.members.iter().enumerate() {
        let m = crate::address::normalize(m);
        if !crate::address::is_valid(&m) {
            return Err(invalid(
                format!("accounts[{i}].members[{j}]"),
                format!("{m:?} is not a valid Direct address"),
            ));
        }
        addresses.push(m);
    }
    if earlier
        .iter()
        .any(|other: &Account| other.address == address)
    {
        return Err(invalid(
            key("address"),
            format!("{address} is configured twice"),
        ));
    }
    let password = match (&a.password, &a.password_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                key("password_file"),
                "set password or password_file, not both",
            ))
        }
        (Some(p), None) => p.clone(),
        (None, Some(f)) if secrets => read_secret(&key("password_file"), f)?,
        (None, Some(_)) => String::new(),
        (None, None) if endpoint.client_cert.is_some() || raw.hisp.client_cert.is_some() => {
            String::new()
        }
        (None, None) => {
            return Err(invalid(
                key("password"),
                "missing (set password or password_file)",
            ))
        }
    };
    let ep = |pick: fn(&RawEndpoint) -> Option<&PathBuf>| {
        pick(&endpoint).or_else(|| pick(&raw.hisp)).cloned()
    };
    let host = endpoint
        .host
        .clone()
        .or_else(|| raw.hisp.host.clone())
        .ok_or_else(|| invalid(key("host"), "missing (set it here or in [hisp])"))?;
    let ca_file = ep(|e| e.ca_file.as_ref()).ok_or_else(|| {
        invalid(
            key("ca_file"),
            "missing: the CA that signs the HISP's server certificate",
        )
    })?;
    // Name the key where the value was written: most accounts inherit it from [hisp].
    let ca_file_key = if endpoint.ca_file.is_some() {
        key("ca_file")
    } else {
        "hisp.ca_file".to_owned()
    };
    if !ca_file.is_file() {
        return Err(invalid(
            &ca_file_key,
            format!("{} does not exist", ca_file.display()),
        ));
    }
    let client_cert = match (
        ep(|e| e.client_cert.as_ref()),
        ep(|e| e.client_key.as_ref()),
    ) {
        (Some(c), Some(k)) => {
            if let Some(mode) = crate::fsutil::group_or_world_readable(&k)
                .map_err(|e| invalid(key("client_key"), format!("{}: {e}", k.display())))?
            {
                return Err(invalid(
                    key("client_key"),
                    format!(
                        "{} is readable by group or others (mode {mode:o}); chmod 600 it",
                        k.display()
                    ),
                ));
            }
            Some((c, k))
        }
        (None, None) => None,
        _ => {
            return Err(invalid(
                key("client_cert"),
                "client_cert and client_key go together",
            ))
        }
    };
    let num = |pick: fn(&RawEndpoint) -> Option<f64>| pick(&endpoint).or(pick(&raw.hisp));
    let connect = ConnectSettings {
        host,
        port: endpoint.port.or(raw.hisp.port).unwrap_or(DEFAULT_PORT),
        ca_file,
        client_cert,
        user: a
            .login
            .clone()
            .map(|l| crate::address::normalize(&l))
            .unwrap_or_else(|| address.clone()),
        password,
        connect_timeout: secs(
            &key("connect_timeout_secs"),
            num(|e| e.connect_timeout_secs),
            30.0,
        )?,
        read_timeout: secs(
            &key("read_timeout_secs"),
            num(|e| e.read_timeout_secs),
            120.0,
        )?,
        max_part_bytes: endpoint
            .max_part_bytes
            .or(raw.hisp.max_part_bytes)
            .unwrap_or(DEFAULT_MAX_PART_BYTES),
    };
    let edge = if a.transport == "edge" {
        let smtp_tls = choice(
            key("smtp_tls"),
            a.smtp_tls.as_deref().unwrap_or("starttls"),
            &[
                ("starttls", SmtpTls::StartTls),
                ("implicit", SmtpTls::Implicit),
            ],
        )?;
        let after_fetch = match a.after_fetch.as_deref().unwrap_or("delete") {
            "delete" => AfterFetch::Delete,
            other => match other.strip_prefix("move:") {
                Some(folder) if !folder.is_empty() => AfterFetch::Move(folder.to_owned()),
                _ => {
                    return Err(invalid(
                        key("after_fetch"),
                        format!("{other:?}: expected delete or move:FOLDER"),
                    ))
                }
            },
        };
        Some(EdgeSettings {
            smtp_host: a.smtp_host.clone().unwrap_or_else(|| connect.host.clone()),
            smtp_port: a.smtp_port.unwrap_or(if smtp_tls == SmtpTls::Implicit {
                465
            } else {
                587
            }),
            smtp_tls,
            imap_host: a.imap_host.clone().unwrap_or_else(|| connect.host.clone()),
            imap_port: a.imap_port.unwrap_or(993),
            user: connect.user.clone(),
            password: connect.password.clone(),
            ca_file: connect.ca_file.clone(),
            mailbox: a.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
            after_fetch,
            timeout: connect.read_timeout,
        })
    } else {
        None
    };
    Ok(Account {
        address: address.clone(),
        addresses,
        connect,
        edge,
        ca_file_key,
    })
}
