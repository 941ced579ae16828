//! Typed configuration: a TOML file layered with `DIRECTD_*` environment overrides, validated once
//! at start. Every validation error names the key it concerns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::hisp::edge::client::{AfterFetch, EdgeSettings, SmtpTls};
use crate::hisp::phimail::{ConnectSettings, DEFAULT_PORT};
use crate::smime::AgentSettings;

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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    hisp: RawEndpoint,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    smime: Option<RawSmime>,
    #[serde(default)]
    retention: RawRetention,
    /// Read by `directd web` alone (see `crate::web::config`); named here so a typo in it is
    /// refused like one anywhere else.
    #[serde(default, rename = "web")]
    _web: Option<crate::web::config::RawWeb>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    content_days: Option<u32>,
    quarantine_days: Option<u32>,
    audit_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmime {
    keys_dir: Option<PathBuf>,
    recipient_certs_dir: Option<PathBuf>,
    #[serde(default)]
    anchors: Vec<RawAnchor>,
    #[serde(default)]
    crl_files: Vec<PathBuf>,
    revocation: Option<String>,
    cipher: Option<String>,
    key_transport: Option<String>,
    outer_subject: Option<String>,
    /// `IP:port` of a DNS server to ask for CERT records, or "system" for /etc/resolv.conf's first.
    dns_nameserver: Option<String>,
    /// LDAP discovery through `_ldap._tcp` SRV records (default: on when dns_nameserver is set).
    ldap: Option<bool>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    bundles: Vec<RawBundle>,
}

/// `[[smime.bundles]]`: a trust bundle fetched from a URL and refreshed on an interval.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    url: String,
    domain: String,
    #[serde(default = "both_directions")]
    direction: String,
    /// `"24h"`, `"30m"`, `"3600s"`, `"1d"`; default 24h.
    refresh: Option<String>,
    signer: Option<PathBuf>,
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

/// `[smime.network]`: CRLs from distribution points and issuers from AIA over HTTP.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    enabled: Option<bool>,
    timeout_secs: Option<f64>,
    max_bytes: Option<usize>,
    /// Default: `smime-cache` beside the store.
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnchor {
    domain: String,
    #[serde(default = "both_directions")]
    direction: String,
    file: PathBuf,
    bundle_signer: Option<PathBuf>,
}

fn both_directions() -> String {
    "both".into()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    busy_timeout_ms: Option<u64>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    poll_interval_secs: Option<f64>,
    outbox_check_ms: Option<u64>,
    backoff_initial_secs: Option<f64>,
    backoff_max_secs: Option<f64>,
    max_send_attempts: Option<u32>,
    dispatched_timeout_secs: Option<f64>,
    processed_timeout_secs: Option<f64>,
    metrics_listen: Option<String>,
    unreadable_retries: Option<u32>,
    unreadable_giveup_secs: Option<f64>,
    summary_interval_secs: Option<f64>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    connect_timeout_secs: Option<f64>,
    read_timeout_secs: Option<f64>,
    max_part_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    address: String,
    login: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default = "default_transport")]
    transport: String,
    // The endpoint fields again (not `flatten`, which would defeat deny_unknown_fields).
    host: Option<String>,
    port: Option<u16>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    connect_timeout_secs: Option<f64>,
    read_timeout_secs: Option<f64>,
    max_part_bytes: Option<u64>,
    // Edge transport (SMTP submission + IMAP retrieval); hosts default to `host`.
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_tls: Option<String>,
    imap_host: Option<String>,
    imap_port: Option<u16>,
    mailbox: Option<String>,
    after_fetch: Option<String>,
}

impl RawAccount {
    fn endpoint(&self) -> RawEndpoint {
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

fn default_transport() -> String {
    "phimail".into()
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

/// A secret read from a file; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
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

fn smime_settings(raw: &RawSmime) -> Result<AgentSettings, ConfigError> {
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

fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    if let Some(mode) = crate::fsutil::group_or_world_readable(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?
    {
        return Err(invalid(
            key,
            format!(
                "{} is readable by group or others (mode {mode:o}); chmod 600 it",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// The largest part read from a HISP unless configured lower: far above what HISPs accept (tens
/// of MB), so a real message is stored rather than quarantined unread, and still a ceiling
/// against a peer that announces gigabytes.
pub const DEFAULT_MAX_PART_BYTES: u64 = 512 << 20;

impl Config {
    /// Loads `path` (a missing file is an error only when `required`), applies `DIRECTD_*`
    /// environment overrides (`DIRECTD_STORE__PATH`, `DIRECTD_DAEMON__POLL_INTERVAL_SECS`, ...)
    /// and validates the result.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        Self::load_with(path, required, true)
    }

    /// Like [`Config::load`] without reading the accounts' password files (their passwords are
    /// left empty): for `directd send`, which only queues, so a user who may send but not read
    /// the HISP passwords can.
    pub fn load_without_secrets(path: &Path, required: bool) -> Result<Config, ConfigError> {
        Self::load_with(path, required, false)
    }

    fn load_with(path: &Path, required: bool, secrets: bool) -> Result<Config, ConfigError> {
        let raw: RawConfig = layered(path, required)?
            .try_deserialize()
            .map_err(|e| load_error(path, e.to_string()))?;
        if let Some(e) = inline_password_problem(path, &raw) {
            return Err(e);
        }
        Self::validate(raw, secrets)
    }

    /// Only the `[store]` section, layered like [`Config::load`]: what the commands that just
    /// read or write the store need. Account secrets are not read, so a password file this user
    /// cannot read (or that is not there yet) does not stop `directd messages`.
    pub fn load_store(path: &Path, required: bool) -> Result<StoreConfig, ConfigError> {
        #[derive(Deserialize)]
        struct StoreOnly {
            #[serde(default)]
            store: RawStore,
        }
        let raw: StoreOnly = layered(path, required)?
            .try_deserialize()
            .map_err(|e| load_error(path, e.to_string()))?;
        store_settings(&raw.store)
    }

    /// Parses TOML text (used by the demo and tests), with no environment layering.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml_from_str(text)?;
        Self::validate(raw, true)
    }

    fn validate(raw: RawConfig, secrets: bool) -> Result<Config, ConfigError> {
        Self::validate_all(raw, secrets).map_err(|mut problems| problems.remove(0))
    }

    /// Checks every section and every account, collecting each problem instead of stopping at
    /// the first (`config check` lists them all). Sections do not depend on each other, so one
    /// broken account does not hide a problem in the next.
    fn validate_all(raw: RawConfig, secrets: bool) -> Result<Config, Vec<ConfigError>> {
        fn keep<T>(r: Result<T, ConfigError>, problems: &mut Vec<ConfigError>) -> Option<T> {
            r.map_err(|e| problems.push(e)).ok()
        }
        let mut problems = Vec::new();
        let store = keep(store_settings(&raw.store), &mut problems);
        let daemon = keep(daemon_settings(&raw.daemon), &mut problems);
        let mut accounts: Vec<Account> = Vec::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            if let Some(account) = keep(
                account_settings(&raw, i, a, &accounts, secrets),
                &mut problems,
            ) {
                accounts.push(account);
            }
        }
        let smime = keep(
            raw.smime.as_ref().map(smime_settings).transpose(),
            &mut problems,
        );
        let retention = keep(retention_settings(&raw.retention), &mut problems);
        match (store, daemon, smime, retention) {
            (Some(store), Some(daemon), Some(mut smime), Some(retention))
                if problems.is_empty() =>
            {
                // Fetched CRLs live beside the store: the daemon's state directory.
                if let Some(net) = smime.as_mut().and_then(|s| s.network.as_mut()) {
                    if net.cache_dir.is_none() {
                        let dir = store.path.parent().unwrap_or(Path::new("."));
                        net.cache_dir = Some(dir.join("smime-cache"));
                    }
                }
                Ok(Config {
                    retention,
                    store,
                    daemon,
                    accounts,
                    smime,
                })
            }
            _ => Err(problems),
        }
    }

    /// Every problem with the configuration at `path` (for `config check`), or the configuration.
    pub fn check(path: &Path, required: bool) -> Result<Config, Vec<ConfigError>> {
        let raw: RawConfig = layered(path, required)
            .and_then(|c| {
                c.try_deserialize()
                    .map_err(|e| load_error(path, e.to_string()))
            })
            .map_err(|e| vec![e])?;
        let mut problems = inline_password_problem(path, &raw)
            .into_iter()
            .collect::<Vec<_>>();
        match Self::validate_all(raw, true) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// The account that sends for `from`.
    pub fn account_for(&self, from: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.covers(from))
    }
}

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

/// One `[[accounts]]` entry, checked against the accounts before it (no address twice).
fn account_settings(
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

/// Held to the same rule as password files: a password others can read is refused.
fn inline_password_problem(path: &Path, raw: &RawConfig) -> Option<ConfigError> {
    let i = raw.accounts.iter().position(|a| a.password.is_some())?;
    let mode = crate::fsutil::group_or_world_readable(path).ok()??;
    Some(invalid(
        format!("accounts[{i}].password"),
        format!(
            "{} holds a password and is readable by group or others (mode {mode:o}); chmod 600 it, or move the password to password_file",
            path.display()
        ),
    ))
}

pub(crate) fn load_error(path: &Path, message: String) -> ConfigError {
    ConfigError::Load {
        path: path.to_owned(),
        message,
    }
}

/// The file (when there is one to read) with `DIRECTD_<SECTION>__<KEY>` environment overrides
/// on top. A missing file is an error only when `required`; a file that exists but cannot be
/// read is always one, said as such (not as "not found").
pub(crate) fn layered(path: &Path, required: bool) -> Result<config::Config, ConfigError> {
    let mut builder = config::Config::builder();
    match std::fs::File::open(path) {
        Ok(_) => {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(load_error(path, "configuration file not found".into()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(load_error(
                path,
                "cannot read the configuration file: permission denied (run as the directd user, or pass --db STORE)".into(),
            ))
        }
        Err(e) => return Err(load_error(path, format!("cannot read the configuration file: {e}"))),
    }
    // Only DIRECTD_<SECTION>__<KEY> variables are configuration; others that share the
    // prefix (DIRECTD_CONFIG, build tooling's DIRECTD_BUILD_INFO...) are not keys.
    let overrides: config::Map<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("DIRECTD_") && k.contains("__"))
        .collect();
    let env = config::Environment::with_prefix("DIRECTD")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .source(Some(overrides));
    builder
        .add_source(env)
        .build()
        .map_err(|e| load_error(path, e.to_string()))
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

fn toml_from_str(text: &str) -> Result<RawConfig, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Load {
            path: "<inline>".into(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
