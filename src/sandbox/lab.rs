//! A sandbox with a freshly generated CA on an ephemeral loopback port, plus the daemon
//! configuration that talks to it: what `directd demo` and the integration tests share.

use std::path::{Path, PathBuf};

use super::pki::TestPki;
use super::{Sandbox, SandboxConfig, SandboxError};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("generating the test PKI: {0}")]
    Pki(#[from] openssl::error::ErrorStack),
    #[error("writing the test PKI: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

pub struct Lab {
    pub sandbox: Sandbox,
    pub ca_file: PathBuf,
    /// A client certificate and key from the same CA, for mutual TLS.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Lab {
    /// Generates a CA and server certificate for 127.0.0.1 into `dir` and starts the sandbox.
    pub async fn start(dir: &Path, config: SandboxConfig) -> Result<Lab, LabError> {
        Self::start_with(dir, config, false).await
    }

    /// Like [`start`](Self::start); with `mutual_tls` the sandbox asks for client certificates
    /// and verifies them against its own CA, which issued [`Lab::client_cert`].
    pub async fn start_with(
        dir: &Path,
        config: SandboxConfig,
        mutual_tls: bool,
    ) -> Result<Lab, LabError> {
        let files = TestPki::generate(&["127.0.0.1", "localhost"])?.write_to(dir)?;
        let tls = crate::tls::server_config_with_client_ca(
            crate::tls::load_certs(&files.server_cert)?,
            crate::tls::load_key(&files.server_key)?,
            mutual_tls.then_some(files.ca_cert.as_path()),
        )?;
        let sandbox = Sandbox::start(config, tls, "127.0.0.1:0").await?;
        Ok(Lab {
            sandbox,
            ca_file: files.ca_cert,
            client_cert: files.client_cert,
            client_key: files.client_key,
        })
    }

    /// Daemon configuration (TOML) for `accounts` (address, password) against this sandbox, with
    /// short intervals suited to tests and demos. `extra_daemon` is appended to `[daemon]`.
    pub fn daemon_toml(
        &self,
        store: &Path,
        accounts: &[(&str, &str)],
        extra_daemon: &str,
    ) -> String {
        let mut s = format!(
            "[store]\npath = {store:?}\n\n[daemon]\npoll_interval_secs = 0.2\noutbox_check_ms = 50\nbackoff_initial_secs = 0.1\nbackoff_max_secs = 1\n{extra_daemon}\n\n[hisp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = {:?}\nread_timeout_secs = 2\nconnect_timeout_secs = 2\n",
            self.sandbox.addr().port(),
            self.ca_file,
        );
        for (address, password) in accounts {
            s.push_str(&format!(
                "\n[[accounts]]\naddress = {address:?}\npassword = {password:?}\n"
            ));
        }
        s
    }
}
