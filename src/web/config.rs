//! The `[web]` section: where the console listens, its TLS certificate, and how long an idle
//! session lasts. Read on its own (like `Config::load_store`) so the console needs nothing of
//! the daemon's secrets to start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The `[web]` table as written; unknown keys are refused when any part of the file is loaded.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    listen: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    idle_timeout_secs: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// Certificate chain and key (PEM); without them the console speaks plain HTTP, which is
    /// allowed on a loopback address only.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A session unused for this long is ended (default 15 minutes).
    pub idle_timeout: Duration,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web.listen {0:?} is not an address and port (for example 127.0.0.1:8443)")]
    Listen(String),
    #[error("web.cert_file and web.key_file go together: give both for HTTPS, or neither for plain HTTP on loopback")]
    HalfTls,
    #[error("web.listen {0} is not a loopback address, so the console needs HTTPS: set web.cert_file and web.key_file")]
    PlainOffLoopback(SocketAddr),
    #[error("web.idle_timeout_secs must be between 1 and 86400, not {0}")]
    Idle(f64),
    #[error(transparent)]
    Load(#[from] crate::config::ConfigError),
}

impl RawWeb {
    pub fn validate(&self) -> Result<WebConfig, WebConfigError> {
        let listen_text = self.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| WebConfigError::Listen(listen_text.to_owned()))?;
        let tls = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => return Err(WebConfigError::HalfTls),
        };
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(WebConfigError::PlainOffLoopback(listen));
        }
        let idle_timeout = match self.idle_timeout_secs {
            None => DEFAULT_IDLE,
            Some(s) if (1.0..=86400.0).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => return Err(WebConfigError::Idle(s)),
        };
        Ok(WebConfig {
            listen,
            tls,
            idle_timeout,
        })
    }
}

/// The `[web]` section of the configuration file (with `DIRECTD_WEB__*` overrides).
pub fn load(path: &Path, required: bool) -> Result<WebConfig, WebConfigError> {
    #[derive(Deserialize)]
    struct WebOnly {
        #[serde(default)]
        web: RawWeb,
    }
    let raw: WebOnly = crate::config::layered(path, required)?
        .try_deserialize()
        .map_err(|e| crate::config::load_error(path, e.to_string()))?;
    raw.web.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml: &str) -> RawWeb {
        #[derive(Deserialize)]
        struct W {
            web: RawWeb,
        }
        let w: W = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        w.web
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let c = RawWeb::default().validate().unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.idle_timeout, DEFAULT_IDLE);
        assert!(c.tls.is_none());
        assert!(matches!(
            raw("[web]\nlisten = \"0.0.0.0:443\"").validate(),
            Err(WebConfigError::PlainOffLoopback(_))
        ));
        assert!(matches!(
            raw("[web]\nlisten = \"0.0.0.0:443\"\ncert_file = \"c.pem\"").validate(),
            Err(WebConfigError::HalfTls)
        ));
        let tls = raw("[web]\nlisten = \"0.0.0.0:443\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\nidle_timeout_secs = 60")
            .validate()
            .unwrap();
        assert!(tls.tls.is_some());
        assert_eq!(tls.idle_timeout, Duration::from_secs(60));
        assert!(matches!(
            raw("[web]\nidle_timeout_secs = 0").validate(),
            Err(WebConfigError::Idle(_))
        ));
    }
}
