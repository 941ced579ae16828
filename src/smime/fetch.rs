//! The one HTTP client of the security agent: CRLs from distribution points, issuers from AIA
//! caIssuers, trust bundles.
//!
//! Every URL it is handed comes from a certificate someone else issued, so the client is
//! deliberately narrow: `http` and `https` only (no `file:`, `ldap:` or anything reqwest might
//! grow), a connect timeout, a read timeout and an overall deadline, a cap on the body counted
//! while it streams in (a missing or lying Content-Length does not matter), few redirects and
//! never to another scheme, and no proxies from the environment. What it returns is untrusted
//! bytes; trust comes only from a chain to a configured anchor.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

/// Bounds on one fetch.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// The whole exchange, redirects and body included.
    pub total_timeout: Duration,
    pub max_bytes: usize,
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            // DirectTrust's larger CRLs are a few MiB; nothing legitimate here is bigger.
            max_bytes: 8 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// Why a URL could not be fetched. The URL is named because an administrator has to chase it
/// with the CA that published it; URLs of CRLs and issuers carry no PHI.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not a valid URL")]
    BadUrl { url: String },
    #[error("{url}: only http and https URLs are fetched")]
    Scheme { url: String },
    #[error("{url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the response is larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: too many redirects, or a redirect to something other than http or https")]
    Redirect { url: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

/// A reqwest client set up once with the limits; cheap to clone.
#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    limits: FetchLimits,
}

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpFetcher {
    pub fn new(limits: FetchLimits) -> Result<Self, FetchError> {
        // HTTPS is for the transport only (what is fetched is verified on its own), so the
        // public web roots are the right ones; rustls with ring, as everywhere else in directd.
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Transport {
            url: String::new(),
            reason: format!("TLS setup: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let max_redirects = limits.max_redirects;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let allowed = matches!(attempt.url().scheme(), "http" | "https");
            if !allowed || attempt.previous().len() > max_redirects {
                attempt.error("redirect refused")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .timeout(limits.total_timeout)
            .redirect(redirects)
            .no_proxy()
            .user_agent(concat!("directd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport {
                url: String::new(),
                reason: format!("HTTP client setup: {e}"),
            })?;
        Ok(HttpFetcher { client, limits })
    }

    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// GETs `url` and returns the body, within the limits.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let parsed = check_url(url)?;
        let deadline = self.limits.total_timeout;
        // reqwest's own timeout covers this too; the outer one also bounds the body loop.
        match tokio::time::timeout(deadline, self.get_inner(parsed, url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_owned(),
                seconds: deadline.as_secs(),
            }),
        }
    }

    async fn get_inner(&self, parsed: Url, url: &str) -> Result<Vec<u8>, FetchError> {
        let classify = |e: reqwest::Error| self.classify(url, e);
        let mut response = self.client.get(parsed).send().await.map_err(classify)?;
        let status = response.status();
        // A redirect still standing here is one reqwest would not follow (to `file:` etc.).
        if status.is_redirection() {
            return Err(FetchError::Redirect {
                url: url.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let limit = self.limits.max_bytes;
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, url: &str, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
                seconds: self.limits.total_timeout.as_secs(),
            }
        } else if e.is_redirect() {
            FetchError::Redirect {
                url: url.to_owned(),
            }
        } else {
            // reqwest's top-level message is generic ("error sending request"); the cause
            // (connection refused, TLS failure) is what an administrator needs.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            FetchError::Transport {
                url: url.to_owned(),
                reason,
            }
        }
    }
}

/// Parses `url` and refuses every scheme but `http` and `https`.
pub fn check_url(url: &str) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|_| FetchError::BadUrl {
        url: url.to_owned(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Scheme {
            url: url.to_owned(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https() {
        assert!(check_url("http://ca.example/x.crl").is_ok());
        assert!(check_url("https://ca.example/x.crl").is_ok());
        for bad in [
            "ldap://ca.example/cn=x?certificateRevocationList",
            "file:///etc/passwd",
            "ftp://ca.example/x",
        ] {
            assert!(
                matches!(check_url(bad), Err(FetchError::Scheme { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            check_url("not a url"),
            Err(FetchError::BadUrl { .. })
        ));
    }
}
