//! The file's shape as serde reads it: every section and key, nothing checked yet. `mod.rs`,
//! `account.rs` and `smime.rs` turn these into the typed settings and name the key of each
//! problem; `deny_unknown_fields` makes a misspelt key an error instead of a silent default.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    #[serde(default)]
    pub(super) hisp: RawEndpoint,
    #[serde(default)]
    pub(super) accounts: Vec<RawAccount>,
    pub(super) smime: Option<RawSmime>,
    #[serde(default)]
    pub(super) retention: RawRetention,
    /// Read by `directd web` alone (see `crate::web::config`); named here so a typo in it is
    /// refused like one anywhere else.
    #[serde(default, rename = "web")]
    pub(super) _web: Option<crate::web::config::RawWeb>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub(super) content_days: Option<u32>,
    pub(super) quarantine_days: Option<u32>,
    pub(super) audit_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmime {
    pub(super) keys_dir: Option<PathBuf>,
    pub(super) recipient_certs_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) anchors: Vec<RawAnchor>,
    #[serde(default)]
    pub(super) crl_files: Vec<PathBuf>,
    pub(super) revocation: Option<String>,
    pub(super) cipher: Option<String>,
    pub(super) key_transport: Option<String>,
    pub(super) outer_subject: Option<String>,
    /// `IP:port` of a DNS server to ask for CERT records, or "system" for /etc/resolv.conf's first.
    pub(super) dns_nameserver: Option<String>,
    /// LDAP discovery through `_ldap._tcp` SRV records (default: on when dns_nameserver is set).
    pub(super) ldap: Option<bool>,
    #[serde(default)]
    pub(super) network: RawNetwork,
    #[serde(default)]
    pub(super) bundles: Vec<RawBundle>,
}

/// `[[smime.bundles]]`: a trust bundle fetched from a URL and refreshed on an interval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBundle {
    pub(super) url: String,
    pub(super) domain: String,
    #[serde(default = "both_directions")]
    pub(super) direction: String,
    /// `"24h"`, `"30m"`, `"3600s"`, `"1d"`; default 24h.
    pub(super) refresh: Option<String>,
    pub(super) signer: Option<PathBuf>,
}

/// `[smime.network]`: CRLs from distribution points and issuers from AIA over HTTP.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) enabled: Option<bool>,
    pub(super) timeout_secs: Option<f64>,
    pub(super) max_bytes: Option<usize>,
    /// Default: `smime-cache` beside the store.
    pub(super) cache_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnchor {
    pub(super) domain: String,
    #[serde(default = "both_directions")]
    pub(super) direction: String,
    pub(super) file: PathBuf,
    pub(super) bundle_signer: Option<PathBuf>,
}

pub(super) fn both_directions() -> String {
    "both".into()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<PathBuf>,
    pub(super) busy_timeout_ms: Option<u64>,
    pub(super) key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) poll_interval_secs: Option<f64>,
    pub(super) outbox_check_ms: Option<u64>,
    pub(super) backoff_initial_secs: Option<f64>,
    pub(super) backoff_max_secs: Option<f64>,
    pub(super) max_send_attempts: Option<u32>,
    pub(super) dispatched_timeout_secs: Option<f64>,
    pub(super) processed_timeout_secs: Option<f64>,
    pub(super) metrics_listen: Option<String>,
    pub(super) unreadable_retries: Option<u32>,
    pub(super) unreadable_giveup_secs: Option<f64>,
    pub(super) summary_interval_secs: Option<f64>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) client_cert: Option<PathBuf>,
    pub(super) client_key: Option<PathBuf>,
    pub(super) connect_timeout_secs: Option<f64>,
    pub(super) read_timeout_secs: Option<f64>,
    pub(super) max_part_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) address: String,
    pub(super) login: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) members: Vec<String>,
    #[serde(default = "default_transport")]
    pub(super) transport: String,
    // The endpoint fields again (not `flatten`, which would defeat deny_unknown_fields).
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) client_cert: Option<PathBuf>,
    pub(super) client_key: Option<PathBuf>,
    pub(super) connect_timeout_secs: Option<f64>,
    pub(super) read_timeout_secs: Option<f64>,
    pub(super) max_part_bytes: Option<u64>,
    // Edge transport (SMTP submission + IMAP retrieval); hosts default to `host`.
    pub(super) smtp_host: Option<String>,
    pub(super) smtp_port: Option<u16>,
    pub(super) smtp_tls: Option<String>,
    pub(super) imap_host: Option<String>,
    pub(super) imap_port: Option<u16>,
    pub(super) mailbox: Option<String>,
    pub(super) after_fetch: Option<String>,
}

impl RawAccount {
    pub(super) fn endpoint(&self) -> RawEndpoint {
        RawEndpoint {
            host: self.host.clone(),
            port: self.port,
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            connect_timeout_secs: self.connect_timeout_secs,
            read_timeout_secs: self.read_timeout_secs,
            max_part_bytes: self.max_part_bytes,
        }
    }
}

pub(super) fn default_transport() -> String {
    "phimail".into()
}
