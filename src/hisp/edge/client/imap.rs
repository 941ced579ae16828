//! IMAP retrieval over implicit TLS: async-imap on a tokio-rustls stream built from our own
//! rustls configuration. Every network step runs under the configured timeout; after any error
//! the session is dropped, since its state on the wire is then unknown.

use std::future::Future;
use std::sync::Arc;

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{Response, Status};
use futures::TryStreamExt;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{find_rustls_error, AfterFetch, EdgeError, EdgeSettings};

type Session = async_imap::Session<TlsStream<TcpStream>>;

/// A message's identity in a mailbox: a UID means something only together with the mailbox's
/// UIDVALIDITY at the time it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImapUid {
    pub validity: u32,
    pub uid: u32,
}

/// One message as stored on the server: exactly the bytes of `BODY[]`, which include whatever
/// trace headers the servers prepended (Return-Path, Delivered-To, Received).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: ImapUid,
    pub raw: Vec<u8>,
}

struct Conn {
    session: Session,
    /// RFC 4315: `UID EXPUNGE` removes only the named message.
    uidplus: bool,
    /// RFC 6851.
    move_cmd: bool,
}

pub(crate) struct Retriever {
    tls: Arc<rustls::ClientConfig>,
    conn: Option<Conn>,
}

async fn timed<T, E>(
    settings: &EdgeSettings,
    operation: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, EdgeError> {
    tokio::time::timeout(settings.timeout, fut)
        .await
        .map_err(|_| EdgeError::Timeout {
            operation,
            after: settings.timeout,
        })
}

fn imap_err(command: &'static str, e: ImapError) -> EdgeError {
    EdgeError::Imap {
        command,
        reason: e.to_string(),
    }
}

/// Runs an IMAP command under the timeout and maps its error.
async fn command<T>(
    settings: &EdgeSettings,
    name: &'static str,
    fut: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, EdgeError> {
    timed(settings, name, fut)
        .await?
        .map_err(|e| imap_err(name, e))
}

impl Retriever {
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Retriever { tls, conn: None }
    }

    pub(crate) async fn fetch_next(
        &mut self,
        settings: &EdgeSettings,
    ) -> Result<Option<super::FetchedMessage>, EdgeError> {
        let result = self.fetch_next_inner(settings).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    pub(crate) async fn acknowledge(
        &mut self,
        settings: &EdgeSettings,
        uid: ImapUid,
    ) -> Result<(), EdgeError> {
        let result = self.acknowledge_inner(settings, uid).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    pub(crate) async fn close(&mut self, settings: &EdgeSettings) {
        if let Some(mut conn) = self.conn.take() {
            if let Err(e) = command(settings, "LOGOUT", conn.session.logout()).await {
                tracing::debug!(error = %e, "IMAP logout");
            }
        }
    }

    async fn session(&mut self, settings: &EdgeSettings) -> Result<&mut Conn, EdgeError> {
        if self.conn.is_none() {
            self.conn = Some(connect(settings, &self.tls).await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// SELECTs the mailbox (which also brings the server's view up to date) and returns its
    /// UIDVALIDITY.
    async fn select(conn: &mut Conn, settings: &EdgeSettings) -> Result<u32, EdgeError> {
        let mailbox = command(settings, "SELECT", conn.session.select(&settings.mailbox)).await?;
        drain_unsolicited(&conn.session);
        mailbox.uid_validity.ok_or_else(|| EdgeError::Imap {
            command: "SELECT",
            reason: format!("{} has no UIDVALIDITY", settings.mailbox),
        })
    }

    async fn fetch_next_inner(
        &mut self,
        settings: &EdgeSettings,
    ) -> Result<Option<FetchedMessage>, EdgeError> {
        let conn = self.session(settings).await?;
        let validity = Self::select(conn, settings).await?;
        let found = command(settings, "UID SEARCH", conn.session.uid_search("UNDELETED")).await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        // UIDs grow with arrival order: the smallest is the oldest.
        uids.sort_unstable();
        for uid in uids {
            let fetches = timed(settings, "UID FETCH", async {
                conn.session
                    .uid_fetch(uid.to_string(), "(UID FLAGS BODY.PEEK[])")
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?
            .map_err(|e| imap_err("UID FETCH", e))?;
            drain_unsolicited(&conn.session);
            let body = fetches
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
                .map(<[u8]>::to_vec);
            match body {
                Some(raw) => {
                    return Ok(Some(FetchedMessage {
                        uid: ImapUid { validity, uid },
                        raw,
                    }))
                }
                // Expunged by another client between SEARCH and FETCH: take the next one.
                None => tracing::debug!(uid, "message vanished before FETCH"),
            }
        }
        Ok(None)
    }

    async fn acknowledge_inner(
        &mut self,
        settings: &EdgeSettings,
        uid: ImapUid,
    ) -> Result<(), EdgeError> {
        let conn = self.session(settings).await?;
        let validity = Self::select(conn, settings).await?;
        if validity != uid.validity {
            return Err(EdgeError::UidValidityChanged {
                mailbox: settings.mailbox.clone(),
                expected: uid.validity,
                found: validity,
            });
        }
        let set = uid.uid.to_string();
        match &settings.after_fetch {
            AfterFetch::Delete => delete(conn, settings, &set).await?,
            AfterFetch::Move(folder) => {
                if let Err(e) = move_to(conn, settings, &set, folder).await {
                    if !is_trycreate(&e) {
                        return Err(e);
                    }
                    command(settings, "CREATE", conn.session.create(folder)).await?;
                    move_to(conn, settings, &set, folder).await?;
                }
            }
        }
        drain_unsolicited(&conn.session);
        Ok(())
    }
}

async fn delete(conn: &mut Conn, settings: &EdgeSettings, set: &str) -> Result<(), EdgeError> {
    timed(settings, "UID STORE", async {
        conn.session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?
    .map_err(|e| imap_err("UID STORE", e))?;
    if conn.uidplus {
        timed(settings, "UID EXPUNGE", async {
            conn.session
                .uid_expunge(set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .map_err(|e| imap_err("UID EXPUNGE", e))?;
    } else {
        // Without UIDPLUS, EXPUNGE also removes anything else flagged \Deleted in the mailbox;
        // fetch_next never hands those out, so nothing the daemon still needs is lost.
        timed(settings, "EXPUNGE", async {
            conn.session.expunge().await?.try_collect::<Vec<_>>().await
        })
        .await?
        .map_err(|e| imap_err("EXPUNGE", e))?;
    }
    Ok(())
}

async fn move_to(
    conn: &mut Conn,
    settings: &EdgeSettings,
    set: &str,
    folder: &str,
) -> Result<(), EdgeError> {
    if conn.move_cmd {
        command(settings, "UID MOVE", conn.session.uid_mv(set, folder)).await
    } else {
        command(settings, "UID COPY", conn.session.uid_copy(set, folder)).await?;
        delete(conn, settings, set).await
    }
}

/// RFC 3501: a NO with `[TRYCREATE]` means the target mailbox does not exist yet. async-imap
/// hands a NO over only as text (its rendering of the response code: `TryCreate`), hence the
/// case-insensitive match.
fn is_trycreate(e: &EdgeError) -> bool {
    matches!(e, EdgeError::Imap { reason, .. } if reason.to_ascii_lowercase().contains("trycreate"))
}

/// Unsolicited EXISTS/EXPUNGE/FETCH responses pile up in a bounded channel (async-imap drops
/// them when it is full); we re-SELECT before each operation, so they carry nothing we need.
fn drain_unsolicited(session: &Session) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

async fn connect(
    settings: &EdgeSettings,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Conn, EdgeError> {
    let addr = format!("{}:{}", settings.imap_host, settings.imap_port);
    let server_name = ServerName::try_from(settings.imap_host.clone())
        .map_err(|e| EdgeError::Config(format!("IMAP host {:?}: {e}", settings.imap_host)))?;
    let tcp = timed(
        settings,
        "IMAP connect",
        TcpStream::connect((settings.imap_host.as_str(), settings.imap_port)),
    )
    .await?
    .map_err(|e| EdgeError::Connect {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let stream = timed(
        settings,
        "IMAP TLS handshake",
        TlsConnector::from(Arc::clone(tls)).connect(server_name, tcp),
    )
    .await?
    .map_err(|e| match find_rustls_error(&e) {
        Some(source) => EdgeError::Tls {
            addr: addr.clone(),
            source,
        },
        None => EdgeError::Connect {
            addr: addr.clone(),
            reason: format!("during TLS handshake: {e}"),
        },
    })?;

    let mut client = async_imap::Client::new(stream);
    let greeting = tokio::time::timeout(settings.timeout, client.read_response())
        .await
        .map_err(|_| EdgeError::Timeout {
            operation: "IMAP greeting",
            after: settings.timeout,
        })?;
    match greeting {
        None => {
            return Err(EdgeError::Imap {
                command: "greeting",
                reason: "connection closed before the greeting".into(),
            })
        }
        Some(Err(e)) => {
            return Err(EdgeError::Imap {
                command: "greeting",
                reason: e.to_string(),
            })
        }
        Some(Ok(resp)) => {
            if let Response::Data {
                status: Status::Bye,
                information,
                ..
            } = resp.parsed()
            {
                return Err(EdgeError::Imap {
                    command: "greeting",
                    reason: format!("server said BYE: {}", information.as_deref().unwrap_or("")),
                });
            }
        }
    }

    let login = timed(
        settings,
        "IMAP LOGIN",
        client.login(&settings.user, &settings.password),
    )
    .await?;
    let mut session = match login {
        Ok(session) => session,
        Err((ImapError::No(reply), _)) => {
            return Err(EdgeError::AuthRejected {
                server: "IMAP server",
                user: settings.user.clone(),
                reply,
            })
        }
        Err((e, _)) => return Err(imap_err("LOGIN", e)),
    };
    // Capabilities after login: servers (Dovecot among them) announce more once authenticated.
    let caps = command(settings, "CAPABILITY", session.capabilities()).await?;
    let conn = Conn {
        uidplus: caps.has_str("UIDPLUS"),
        move_cmd: caps.has_str("MOVE"),
        session,
    };
    drain_unsolicited(&conn.session);
    tracing::debug!(%addr, uidplus = conn.uidplus, r#move = conn.move_cmd, "IMAP session open");
    Ok(conn)
}
