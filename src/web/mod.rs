//! The web console (`directd web`): inbox, message, sent, document, patient, send and audit
//! pages behind a password and a TOTP second factor. Another client of the store, like the CLI:
//! it reads the store and writes outbox, MDN-owed and audit rows; the daemon does all network
//! work. It is given no HISP passwords nor S/MIME keys (see [`crate::config::Config::load_without_secrets`]).
//!
//! - `config` — the `[web]` section.
//! - `auth` — passwords, TOTP, tokens, login back-off.
//! - `routes` — the handlers: sessions, CSRF, access to accounts, audit rows.
//! - `pages` — the HTML (maud: compile-time templates that escape everything they insert).

pub mod auth;
pub mod config;
mod pages;
mod routes;

use std::sync::{Arc, Mutex};

use crate::store::Store;

pub use config::WebConfig;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("web: cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("web: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("web: {0}")]
    Serve(std::io::Error),
}

/// What every request handler shares.
pub struct App {
    store: Mutex<Store>,
    web: WebConfig,
    /// The configuration without secrets: accounts (for the Send page) and the store.
    config: crate::config::Config,
}

impl App {
    pub fn new(store: Store, web: WebConfig, config: crate::config::Config) -> Arc<App> {
        Arc::new(App {
            store: Mutex::new(store),
            web,
            config,
        })
    }

    fn secure(&self) -> bool {
        self.web.tls.is_some()
    }
}

/// Accepts TCP connections and completes TLS handshakes off the accept loop, so one slow or
/// silent client delays nobody else's connection.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    fn start(listener: tokio::net::TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    );
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves the console until `shutdown` resolves. `started` is told the address bound (port 0
/// picks a free one) and whether it is HTTPS.
pub async fn serve(
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    started: impl FnOnce(std::net::SocketAddr, bool),
) -> Result<(), WebError> {
    let addr = app.web.listen;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Listen { addr, source })?;
    let local = tcp.local_addr().map_err(WebError::Serve)?;
    let router = routes::router(app.clone());
    match &app.web.tls {
        Some((cert, key)) => {
            let mut config = (*crate::tls::server_config(
                crate::tls::load_certs(cert)?,
                crate::tls::load_key(key)?,
            )?)
            .clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            started(local, true);
            axum::serve(TlsListener::start(tcp, Arc::new(config)), router)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(WebError::Serve)
        }
        None => {
            started(local, false);
            axum::serve(tcp, router)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(WebError::Serve)
        }
    }
}
