//! Reading a configuration: the TOML file layered with `DIRECTD_*` environment overrides, then
//! every section validated, either stopping at the first problem (start-up) or collecting them
//! all (`config check`).

use std::path::Path;

use serde::Deserialize;

use super::account::account_settings;
use super::raw::{RawConfig, RawStore};
use super::secret::inline_password_problem;
use super::smime::smime_settings;
use super::{
    daemon_settings, retention_settings, store_settings, Account, Config, ConfigError, StoreConfig,
};

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

pub(super) fn toml_from_str(text: &str) -> Result<RawConfig, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Load {
            path: "<inline>".into(),
            message: e.to_string(),
        })
}
