//! A local phiMail-compatible HISP for tests, demos and offline integration work.
//!
//! It speaks the same framing as the real service over real TLS, routes mail between its local
//! accounts, produces `STATUS dispatched|failed` notifications, keeps unacknowledged items at the
//! head of their queue across disconnects, and can inject faults at any protocol step.

pub mod faults;
pub mod lab;
pub mod pki;
mod session;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use faults::FaultPlan;
pub use faults::{Fault, FaultAction};
use state::{Mail, Part, State};
pub use state::{RemoteBehaviour, SentRecord};

#[derive(Debug, Clone)]
pub struct Group {
    pub login: String,
    pub password: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// address → password
    pub accounts: Vec<(String, String)>,
    pub groups: Vec<Group>,
    /// domain → behaviour, for mail that leaves the sandbox.
    pub remote: HashMap<String, RemoteBehaviour>,
    /// How long a final-delivery request may go unconfirmed before `STATUS failed`.
    pub failed_after: Duration,
    /// Accept CRLF line ends and lower-case verbs, which production refuses.
    pub lenient: bool,
    /// Logins (Address Groups, addresses) that may `AUTH` without a password on a connection
    /// that presented a verified client certificate.
    pub cert_logins: Vec<String>,
    /// Providers the directory lists besides the accounts (LOOKUP), as other HISPs' members are.
    pub directory: Vec<DirectoryListing>,
}

/// One entry of the sandbox's provider directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryListing {
    pub address: String,
    pub npi: Option<String>,
    pub name: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            accounts: Vec::new(),
            groups: Vec::new(),
            remote: HashMap::new(),
            failed_after: Duration::from_secs(3600),
            lenient: false,
            cert_logins: Vec::new(),
            directory: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("sandbox TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A running sandbox. Dropping it does not stop it; call [`Sandbox::shutdown`].
pub struct Sandbox {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    faults: Arc<Mutex<FaultPlan>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A message to put straight into a local inbox.
pub struct InjectMail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub body: Vec<u8>,
    pub attachments: Vec<(String, String, Vec<u8>)>,
}

impl Sandbox {
    /// Listens on `listen` (use port 0 for an ephemeral port) with the given TLS identity.
    pub async fn start(
        config: SandboxConfig,
        tls: Arc<rustls::ServerConfig>,
        listen: &str,
    ) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: listen.to_owned(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: listen.to_owned(),
            source,
        })?;
        let state = Arc::new(Mutex::new(new_state(&config)));
        let faults = Arc::new(Mutex::new(FaultPlan::default()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(
            listener,
            TlsAcceptor::from(tls),
            state.clone(),
            faults.clone(),
            stopped,
        ));
        Ok(Sandbox {
            addr,
            state,
            faults,
            stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.faults.lock().expect("fault plan lock").push(fault);
    }

    /// Forgets every fault not fired yet.
    pub fn clear_faults(&self) {
        *self.faults.lock().expect("fault plan lock") = FaultPlan::default();
    }

    /// Faults registered but not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.faults.lock().expect("fault plan lock").pending()
    }

    pub fn inject_mail(&self, m: InjectMail) -> String {
        let mail = Mail {
            id: String::new(),
            sender: m.from.clone(),
            recipient: m.to.clone(),
            to: vec![m.to],
            cc: Vec::new(),
            subject: m.subject,
            date: SystemTime::now(),
            final_requested: false,
            body_type: "text/plain; charset=utf-8".into(),
            body: m.body,
            attachments: m
                .attachments
                .into_iter()
                .map(|(filename, mime_type, data)| Part {
                    filename,
                    mime_type,
                    description: String::new(),
                    data,
                })
                .collect(),
        };
        self.state.lock().expect("state lock").inject(mail)
    }

    /// Unacknowledged items waiting for `addr`.
    pub fn queue_len(&self, addr: &str) -> usize {
        self.state.lock().expect("state lock").queue_len(addr)
    }

    /// Every copy the sandbox accepted from a SEND, in order.
    pub fn sent(&self) -> Vec<SentRecord> {
        self.state.lock().expect("state lock").sent.clone()
    }

    /// How many sessions ended after a MAIL was handed out but before its DONE.
    pub fn abandoned_mail(&self) -> u64 {
        self.state.lock().expect("state lock").abandoned_mail
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn new_state(config: &SandboxConfig) -> State {
    let mut state = State {
        failed_after: config.failed_after,
        remote: config.remote.clone(),
        lenient: config.lenient,
        cert_logins: config
            .cert_logins
            .iter()
            .map(|l| l.to_ascii_lowercase())
            .collect(),
        directory: config.directory.clone(),
        ..Default::default()
    };
    for (addr, pw) in &config.accounts {
        state
            .passwords
            .insert(addr.to_ascii_lowercase(), pw.clone());
    }
    for g in &config.groups {
        state
            .passwords
            .insert(g.login.to_ascii_lowercase(), g.password.clone());
        state.groups.insert(
            g.login.to_ascii_lowercase(),
            g.members.iter().map(|m| m.to_ascii_lowercase()).collect(),
        );
    }
    state
}

/// Runs one protocol session over `stream` against a fresh sandbox holding `config`'s accounts:
/// the server side without TLS or a listener, for fuzzing and protocol tests.
pub async fn session_over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    config: &SandboxConfig,
) {
    let state = Arc::new(Mutex::new(new_state(config)));
    let _ = session::Session::new(stream, state, Arc::new(Mutex::new(FaultPlan::default())))
        .run()
        .await;
}

/// Aborts a connection the way a crashed peer does: SO_LINGER 0 makes close send a TCP RST.
fn reset(tcp: tokio::net::TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<Mutex<State>>,
    faults: Arc<Mutex<FaultPlan>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick() => state.lock().expect("state lock").expire(Instant::now()),
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                // Replies go out as several small writes; without this each one waits on Nagle.
                let _ = tcp.set_nodelay(true);
                let connect_fault = faults.lock().expect("fault plan lock").take("CONNECT");
                let (acceptor, state, faults) = (acceptor.clone(), state.clone(), faults.clone());
                sessions.spawn(async move {
                    match connect_fault {
                        Some(FaultAction::Drop) => return,
                        Some(FaultAction::Reset | FaultAction::ResetAfter) => return reset(tcp),
                        Some(FaultAction::Stall) => {
                            // Accept and never answer: the client's handshake must time out.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(tcp);
                            return;
                        }
                        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
                        _ => {}
                    }
                    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            // rustls hands out peer certificates only once it verified them.
                            let verified = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                            let session = session::Session::new(tls, state, faults)
                                .with_client_certificate(verified);
                            if let Some(tls) = session.run().await {
                                reset(tls.into_inner().0);
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "sandbox TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "sandbox TLS handshake timed out"),
                    }
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    sessions.shutdown().await;
}
