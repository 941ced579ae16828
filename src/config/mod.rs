//! Typed configuration: a TOML file layered with `DIRECTD_*` environment overrides, validated once
//! at start. Every validation error names the key it concerns.
//!
//! Two stages, as ripgrep parses its flags: `raw` is the file's shape as serde reads it, and the
//! typed settings here (`Config` and its sections) are built from it by the checks in this file
//! (`[store]`, `[daemon]`, `[retention]`), `account` (`[[accounts]]`), `smime` (`[smime]`) and
//! `secret` (password and key files). `load` reads the file and runs the checks.

use std::path::PathBuf;
use std::time::Duration;

use crate::hisp::edge::client::EdgeSettings;
use crate::hisp::phimail::ConnectSettings;
use crate::smime::AgentSettings;

mod account;
mod load;
mod raw;
mod secret;
mod smime;
pub(crate) use load::{layered, load_error};

use raw::{RawDaemon, RawRetention, RawStore};
use secret::read_secret;
pub use secret::Secret;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/directd/directd.toml";
pub const DEFAULT_STORE_PATH: &str = "/var/lib/directd/directd.db";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The value `options` pairs with the name `value`; otherwise an error on `key` listing the names.
fn choice<T: Clone>(
    key: impl Into<String>,
    value: &str,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    if let Some((_, v)) = options.iter().find(|(name, _)| *name == value) {
        return Ok(v.clone());
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let expected = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    };
    Err(invalid(key, format!("{value:?}: expected {expected}")))
}

/// A duration written as a number with a unit: `s`, `m`, `h` or `d`.
fn interval(key: &str, text: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        invalid(
            key,
            format!("{text:?}: expected a number with s, m, h or d, e.g. \"24h\""),
        )
    };
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.trim().parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad()),
    };
    if secs < 60 {
        return Err(invalid(key, format!("{text:?}: at least one minute")));
    }
    Ok(Duration::from_secs(secs))
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub busy_timeout: Duration,
    /// SQLCipher key (from `store.key_file`), when the store is encrypted at rest.
    pub key: Option<Secret>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        store_settings(&RawStore::default()).expect("the defaults name no key file")
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub poll_interval: Duration,
    pub outbox_check: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub max_send_attempts: u32,
    /// How long a recipient that asked for final delivery may stay unconfirmed before it is
    /// `timed_out` locally (the HISP's own `failed` usually arrives first).
    pub dispatched_timeout: Duration,
    /// How long an S/MIME recipient may go without a processed MDN before it is `timed_out`.
    pub processed_timeout: Duration,
    /// Where to serve Prometheus metrics (loopback only); `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// A message that cannot be read is quarantined unread (and acknowledged, so the queue
    /// moves on) only after this many failed reads...
    pub unreadable_retries: u32,
    /// ...spread over at least this long since the first, so a HISP's bad minute is not
    /// mistaken for a message that can never be read.
    pub unreadable_giveup: Duration,
    /// How often the daemon logs a summary of its polls at info (idle polls are debug).
    pub summary_interval: Duration,
}

/// One login at a HISP.
#[derive(Debug, Clone)]
pub struct Account {
    /// The Direct address (or Address Group login) this account polls for.
    pub address: String,
    /// Addresses this account may send from and receives for.
    pub addresses: Vec<String>,
    /// The phiMail endpoint (host, port, CA, login), also the defaults for the edge endpoints.
    pub connect: ConnectSettings,
    /// Set for `transport = "edge"`: SMTP/IMAP with directd as the S/MIME security agent.
    pub edge: Option<EdgeSettings>,
    /// The configuration key the CA file came from (`accounts[N].ca_file` or `hisp.ca_file`),
    /// for messages about it.
    pub ca_file_key: String,
}

impl Account {
    /// `phimail` or `edge`, as recorded on the messages it sends.
    pub fn transport_name(&self) -> &'static str {
        if self.edge.is_some() {
            "edge"
        } else {
            "phimail"
        }
    }

    pub fn covers(&self, addr: &str) -> bool {
        self.addresses.iter().any(|a| a.eq_ignore_ascii_case(addr))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// What leaves the store when (`[retention]`); empty keeps everything.
    pub retention: crate::store::Retention,
    pub store: StoreConfig,
    pub daemon: DaemonConfig,
    pub accounts: Vec<Account>,
    /// The S/MIME security agent, when configured (`[smime]`).
    pub smime: Option<AgentSettings>,
}

fn secs(key: &str, v: Option<f64>, default: f64) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && v > 0.0 && v < 1e9) {
        return Err(invalid(
            key,
            format!("must be a positive number of seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The largest part read from a HISP unless configured lower: far above what HISPs accept (tens
/// of MB), so a real message is stored rather than quarantined unread, and still a ceiling
/// against a peer that announces gigabytes.
pub const DEFAULT_MAX_PART_BYTES: u64 = 512 << 20;

fn daemon_settings(d: &RawDaemon) -> Result<DaemonConfig, ConfigError> {
    let daemon = DaemonConfig {
        poll_interval: secs("daemon.poll_interval_secs", d.poll_interval_secs, 60.0)?,
        outbox_check: Duration::from_millis(d.outbox_check_ms.unwrap_or(1000).max(10)),
        backoff_initial: secs("daemon.backoff_initial_secs", d.backoff_initial_secs, 1.0)?,
        backoff_max: secs("daemon.backoff_max_secs", d.backoff_max_secs, 300.0)?,
        max_send_attempts: d.max_send_attempts.unwrap_or(20).max(1),
        dispatched_timeout: secs(
            "daemon.dispatched_timeout_secs",
            d.dispatched_timeout_secs,
            3600.0,
        )?,
        processed_timeout: secs(
            "daemon.processed_timeout_secs",
            d.processed_timeout_secs,
            3600.0,
        )?,
        unreadable_retries: d.unreadable_retries.unwrap_or(5).max(1),
        unreadable_giveup: secs(
            "daemon.unreadable_giveup_secs",
            d.unreadable_giveup_secs,
            900.0,
        )?,
        summary_interval: secs(
            "daemon.summary_interval_secs",
            d.summary_interval_secs,
            3600.0,
        )?,
        metrics_listen: match &d.metrics_listen {
            None => None,
            Some(s) => {
                let addr: std::net::SocketAddr = s.parse().map_err(|_| {
                    invalid(
                        "daemon.metrics_listen",
                        format!("{s:?} is not an IP:port address"),
                    )
                })?;
                // Metrics reveal traffic volumes per account; keep them off the network.
                if !addr.ip().is_loopback() {
                    return Err(invalid(
                        "daemon.metrics_listen",
                        format!("{addr} is not a loopback address"),
                    ));
                }
                Some(addr)
            }
        },
    };
    if daemon.backoff_max < daemon.backoff_initial {
        return Err(invalid(
            "daemon.backoff_max_secs",
            "must not be below daemon.backoff_initial_secs",
        ));
    }
    Ok(daemon)
}

fn retention_settings(r: &RawRetention) -> Result<crate::store::Retention, ConfigError> {
    if let Some(days) = r.audit_days.filter(|d| *d < crate::store::MIN_AUDIT_DAYS) {
        return Err(invalid(
            "retention.audit_days",
            format!(
                "{days} is less than the six years ({} days) audit records must be kept",
                crate::store::MIN_AUDIT_DAYS
            ),
        ));
    }
    for (k, v) in [
        ("retention.content_days", r.content_days),
        ("retention.quarantine_days", r.quarantine_days),
    ] {
        if v == Some(0) {
            return Err(invalid(
                k,
                "must be at least 1 day (leave it out to keep everything)",
            ));
        }
    }
    Ok(crate::store::Retention {
        content_days: r.content_days,
        quarantine_days: r.quarantine_days,
        audit_days: r.audit_days,
    })
}

fn store_settings(raw: &RawStore) -> Result<StoreConfig, ConfigError> {
    Ok(StoreConfig {
        path: raw
            .path
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE_PATH.into()),
        busy_timeout: Duration::from_millis(raw.busy_timeout_ms.unwrap_or(5000)),
        key: match &raw.key_file {
            Some(f) => Some(Secret(read_secret("store.key_file", f)?)),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::hisp::phimail::DEFAULT_PORT;

    fn ca(dir: &Path) -> PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, "x").unwrap();
        p
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let base = format!("[hisp]\nhost = \"h\"\nca_file = \"{}\"\n", ca.display());
        let bad_addr = format!("{base}[[accounts]]\naddress = \"nope\"\npassword = \"p\"\n");
        let e = Config::from_toml(&bad_addr).unwrap_err().to_string();
        assert!(e.starts_with("accounts[0].address:"), "{e}");
        let no_pw = format!("{base}[[accounts]]\naddress = \"a@b.org\"\n");
        assert!(Config::from_toml(&no_pw)
            .unwrap_err()
            .to_string()
            .starts_with("accounts[0].password:"));
        let unknown = format!("{base}[daemon]\npoll_interval_secs = 5\nbogus = 1\n");
        assert!(Config::from_toml(&unknown)
            .unwrap_err()
            .to_string()
            .contains("bogus"));
        let neg = "[daemon]\npoll_interval_secs = -1\n";
        assert!(Config::from_toml(neg)
            .unwrap_err()
            .to_string()
            .starts_with("daemon.poll_interval_secs:"));
    }

    #[test]
    fn enumerated_values_are_checked_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "[hisp]\nhost = \"h\"\nca_file = \"{}\"\n",
            ca(dir.path()).display()
        );
        let e = Config::from_toml(&format!("{base}[smime]\ncipher = \"des\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "smime.cipher: \"des\": expected aes128, aes256, aes128-gcm or aes256-gcm"
        );
        let e = Config::from_toml(&format!("{base}[smime]\nrevocation = \"maybe\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "smime.revocation: \"maybe\": expected require, best-effort or off"
        );
        let c = Config::from_toml(&format!(
            "{base}[smime]\ncipher = \"aes256\"\nkey_transport = \"rsa-pkcs1v15\"\n"
        ))
        .unwrap();
        let smime = c.smime.expect("[smime] configured");
        assert_eq!(smime.seal.cipher, crate::smime::ContentCipher::Aes256Cbc);
        assert_eq!(
            smime.seal.key_transport,
            crate::smime::KeyTransport::RsaPkcs1v15
        );
    }

    #[test]
    fn network_fetching_defaults_beside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "[store]\npath = \"/srv/directd/store.db\"\n[hisp]\nhost = \"h\"\nca_file = \"{}\"\n",
            ca(dir.path()).display()
        );
        let c = Config::from_toml(&format!("{base}[smime]\n")).unwrap();
        let net = c.smime.unwrap().network.expect("on by default");
        assert_eq!(
            net.cache_dir.as_deref(),
            Some(Path::new("/srv/directd/smime-cache"))
        );
        assert_eq!(net.limits.max_bytes, 8 * 1024 * 1024);
        let c = Config::from_toml(&format!(
            "{base}[smime.network]\ntimeout_secs = 2\nmax_bytes = 1000\ncache_dir = \"/tmp/c\"\n"
        ))
        .unwrap();
        let net = c.smime.unwrap().network.unwrap();
        assert_eq!(net.limits.total_timeout, Duration::from_secs(2));
        assert_eq!(net.limits.read_timeout, Duration::from_secs(2));
        assert_eq!(net.limits.max_bytes, 1000);
        assert_eq!(net.cache_dir.as_deref(), Some(Path::new("/tmp/c")));
        let c = Config::from_toml(&format!("{base}[smime.network]\nenabled = false\n")).unwrap();
        assert!(c.smime.unwrap().network.is_none());
        let e = Config::from_toml(&format!("{base}[smime.network]\nmax_bytes = 0\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "smime.network.max_bytes: must be positive");
    }

    #[test]
    fn trust_bundles_by_url() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "[hisp]\nhost = \"h\"\nca_file = \"{}\"\n[smime]\n",
            ca(dir.path()).display()
        );
        let c = Config::from_toml(&format!(
            "{base}[[smime.bundles]]\nurl = \"https://bundles.example/direct.p7b\"\ndomain = \"A.example\"\nrefresh = \"6h\"\n"
        ))
        .unwrap();
        let b = &c.smime.unwrap().bundles[0];
        assert_eq!(b.refresh, Duration::from_secs(6 * 3600));
        assert_eq!(b.domain, "a.example");
        assert_eq!(b.directions.len(), 2);
        for (bad, message) in [
            (
                "url = \"file:///etc/b.p7b\"\ndomain = \"a\"",
                "smime.bundles[0].url: \"file:///etc/b.p7b\": expected an http or https URL",
            ),
            (
                "url = \"http://x/b\"\ndomain = \"a\"\nrefresh = \"soon\"",
                "smime.bundles[0].refresh: \"soon\": expected a number with s, m, h or d, e.g. \"24h\"",
            ),
            (
                "url = \"http://x/b\"\ndomain = \"a\"\nrefresh = \"5s\"",
                "smime.bundles[0].refresh: \"5s\": at least one minute",
            ),
        ] {
            let e = Config::from_toml(&format!("{base}[[smime.bundles]]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(e, message);
        }
    }

    #[test]
    fn an_inline_password_in_a_readable_config_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "").unwrap();
        let path = dir.path().join("directd.toml");
        std::fs::write(
            &path,
            format!(
                "[hisp]\nhost = \"h\"\nca_file = {ca:?}\n[[accounts]]\naddress = \"a@b.org\"\npassword = \"s3cret\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Config::load(&path, true).unwrap_err().to_string();
        assert!(
            e.contains("accounts[0].password") && e.contains("mode 644") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Config::load(&path, true).unwrap().accounts[0]
                .connect
                .password,
            "s3cret"
        );
    }

    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[hisp]\nhost = \"h\"\nca_file = \"{}\"\n[[accounts]]\naddress = \"a@b.org\"\npassword_file = \"{}\"\n",
            ca.display(),
            pw.display()
        );
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(
            e.contains("accounts[0].password_file") && e.contains("644"),
            "{e}"
        );
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.accounts[0].connect.password, "s3cret");
        assert_eq!(c.accounts[0].connect.port, DEFAULT_PORT);
        assert!(!format!("{:?}", c.accounts[0]).contains("s3cret"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.toml");
        std::fs::write(
            &file,
            "[store]\npath = \"/tmp/a.db\"\n[daemon]\npoll_interval_secs = 30\n",
        )
        .unwrap();
        // Only this test sets this variable, so the process-wide environment is safe to touch.
        std::env::set_var("DIRECTD_DAEMON__POLL_INTERVAL_SECS", "7");
        std::env::set_var("DIRECTD_NOT_A_KEY", "x");
        let c = Config::load(&file, true).unwrap();
        std::env::remove_var("DIRECTD_DAEMON__POLL_INTERVAL_SECS");
        std::env::remove_var("DIRECTD_NOT_A_KEY");
        assert_eq!(c.daemon.poll_interval, Duration::from_secs(7));
        assert_eq!(c.store.path, PathBuf::from("/tmp/a.db"));
        let missing = Config::load(&dir.path().join("none.toml"), true).unwrap_err();
        assert!(missing.to_string().contains("none.toml"));
    }
}
