//! The phiMail line protocol, client side (see docs/phimail-protocol.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::codec::LineConn;
use super::{
    HispError, Inbound, MdnJob, NoticeSource, OutgoingMessage, PartKind, ReceivedAttachment,
    ReceivedMail, RecipientKind, RecipientOutcome, RejectedMail, SendReport, StatusNotice,
    Transport,
};

pub const DEFAULT_PORT: u16 = 32541;

/// Everything needed to open an authenticated session.
#[derive(Clone)]
pub struct ConnectSettings {
    pub host: String,
    pub port: u16,
    pub ca_file: PathBuf,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub user: String,
    pub password: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Largest part we accept from the HISP.
    pub max_part_bytes: u64,
}

impl std::fmt::Debug for ConnectSettings {
    // Hand-written so the password can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A logged-in session. Generic over the stream so the protocol logic can be driven over any
/// byte pipe (the fuzz target does); [`PhiMailClient::connect`] makes the real TLS one.
pub struct PhiMailClient<S = TlsStream<TcpStream>> {
    conn: LineConn<S>,
    max_part_bytes: u64,
    /// HISP ids of messages that repeatedly could not be read, with the reason: handed over as
    /// [`Inbound::Rejected`] without reading them, so they stop blocking the queue.
    pub skip: std::collections::HashMap<String, String>,
}

/// The part of a reply after a `FAIL`/`ERROR` keyword, for error messages.
fn reply_text(reply: &str) -> String {
    reply.trim().to_owned()
}

fn protocol(command: &'static str, problem: &'static str, line: &str) -> HispError {
    HispError::Protocol {
        command,
        problem,
        bytes: line.len(),
    }
}

/// A reply other than the expected one: the HISP's own refusal (`FAIL ...`), quoted, or
/// anything else, which means the framing slipped, described without its content.
fn unexpected(command: &'static str, reply: &str) -> HispError {
    if reply.starts_with("FAIL") || reply.starts_with("ERROR") {
        HispError::Refused {
            command,
            reply: reply_text(reply),
        }
    } else {
        protocol(command, "not the reply the protocol defines here", reply)
    }
}

/// Whether a `FAIL` at TO/CC says "not now" rather than "never" (no certificate, unknown or
/// untrusted domain). The protocol has no codes for this, so the wording decides; a refusal we
/// cannot tell apart is taken as definite, as before.
fn is_temporary_refusal(reply: &str) -> bool {
    let r = reply.to_ascii_lowercase();
    [
        "busy",
        "try again",
        "temporar",
        "timeout",
        "timed out",
        "later",
        "overload",
        "too many connections",
    ]
    .iter()
    .any(|w| r.contains(w))
}

/// Largest attachment count we read for one message; beyond it the message is unreadable and,
/// after its retries, quarantined.
const MAX_ATTACHMENTS: usize = 1000;

/// Filenames travel as one space-separated argument.
fn wire_filename(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl PhiMailClient {
    /// Connects, verifies the server against the configured CA, says INFO VER and logs in.
    pub async fn connect(settings: &ConnectSettings) -> Result<Self, HispError> {
        let addr = format!("{}:{}", settings.host, settings.port);
        let tls = crate::tls::client_config(
            &settings.ca_file,
            settings
                .client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        let tcp = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| HispError::Connect {
                addr: addr.clone(),
                source: std::io::ErrorKind::TimedOut.into(),
            })?
            .map_err(|source| HispError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(settings.host.clone()).map_err(|e| HispError::Tls {
            addr: addr.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        let stream = tokio::time::timeout(
            settings.connect_timeout,
            TlsConnector::from(Arc::clone(&tls)).connect(name, tcp),
        )
        .await
        .map_err(|_| HispError::Tls {
            addr: addr.clone(),
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(|source| HispError::Tls {
            addr: addr.clone(),
            source,
        })?;

        let mut client =
            PhiMailClient::over(stream, settings.read_timeout, settings.max_part_bytes);
        client
            .expect_ok(
                "INFO",
                &format!("INFO VER directd {}", env!("CARGO_PKG_VERSION")),
            )
            .await?;
        let auth = if settings.password.is_empty() {
            format!("AUTH {}", settings.user)
        } else {
            format!("AUTH {} {}", settings.user, settings.password)
        };
        let reply = client.command(&auth).await?;
        if reply != "OK" {
            return Err(HispError::AuthRejected {
                user: settings.user.clone(),
                reply: reply_text(&reply),
            });
        }
        Ok(client)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> PhiMailClient<S> {
    /// A session over an already established stream (no INFO, no AUTH).
    pub fn over(stream: S, read_timeout: Duration, max_part_bytes: u64) -> Self {
        PhiMailClient {
            conn: LineConn::new(stream, read_timeout),
            max_part_bytes,
            skip: Default::default(),
        }
    }

    async fn command(&mut self, line: &str) -> Result<String, HispError> {
        self.conn.write_line(line).await?;
        Ok(self.conn.read_line().await?)
    }

    async fn expect_ok(&mut self, command: &'static str, line: &str) -> Result<(), HispError> {
        let reply = self.command(line).await?;
        if reply == "OK" {
            Ok(())
        } else {
            Err(unexpected(command, &reply))
        }
    }

    async fn read_length(&mut self, command: &'static str) -> Result<u64, HispError> {
        let line = self.conn.read_line().await?;
        line.trim()
            .parse::<u64>()
            .map_err(|_| protocol(command, "expected a byte count", &line))
    }

    /// Adds one recipient; `Err` for connection trouble or a reply outside the protocol, an
    /// outcome (deferred or rejected) for a refusal.
    async fn add_recipient(
        &mut self,
        kind: RecipientKind,
        address: &str,
    ) -> Result<Option<RecipientOutcome>, HispError> {
        let verb = match kind {
            RecipientKind::To => "TO",
            RecipientKind::Cc => "CC",
        };
        let reply = self.command(&format!("{verb} {address}")).await?;
        if reply == "OK" {
            // The second line carries recipient information in an undocumented format; we only
            // need to consume it.
            let _info = self.conn.read_line().await?;
            Ok(None)
        } else if reply.starts_with("FAIL") {
            let reason = reply_text(&reply);
            Ok(Some(if is_temporary_refusal(&reason) {
                RecipientOutcome::Deferred { reason }
            } else {
                RecipientOutcome::Rejected { reason }
            }))
        } else {
            Err(protocol(verb_name(kind), "expected OK or FAIL", &reply))
        }
    }

    async fn add_part(
        &mut self,
        kind: PartKind,
        name: Option<&str>,
        data: &[u8],
    ) -> Result<(), HispError> {
        let verb = match kind {
            PartKind::Cda => "CDA",
            PartKind::Text => "TEXT",
            PartKind::Raw => "RAW",
        };
        let line = match name {
            Some(n) => format!("ADD {verb} {} {}", data.len(), wire_filename(n)),
            None => format!("ADD {verb} {}", data.len()),
        };
        let reply = self.command(&line).await?;
        if reply != "BEGIN" {
            return Err(unexpected("ADD", &reply));
        }
        self.conn.write_raw(data).await?;
        let reply = self.conn.read_line().await?;
        if reply != "OK" {
            return Err(unexpected("ADD", &reply));
        }
        Ok(())
    }

    /// Builds the message template and sends it. Recipients refused at TO/CC or in the SEND
    /// listing are reported per recipient; a `FAIL` for the whole send is an error.
    pub async fn send_message(&mut self, msg: &OutgoingMessage) -> Result<SendReport, HispError> {
        self.expect_ok("CLEAR", "CLEAR").await?;
        let mut outcomes: Vec<(String, RecipientOutcome)> = Vec::new();
        let mut accepted = 0;
        for r in &msg.recipients {
            if let Some(outcome) = self.add_recipient(r.kind, &r.address).await? {
                outcomes.push((r.address.clone(), outcome));
            } else {
                accepted += 1;
            }
        }
        if accepted == 0 {
            return Ok(SendReport {
                recipients: outcomes,
            });
        }
        match msg.subject.as_deref() {
            Some(s) => {
                self.expect_ok("SUBJECT", &format!("SUBJECT {}", crate::util::one_line(s)))
                    .await?
            }
            None => self.expect_ok("SUBJECT", "SUBJECT").await?,
        }
        let final_flag = if msg.final_delivery {
            "SET FINAL 1"
        } else {
            "SET FINAL 0"
        };
        self.expect_ok("SET", final_flag).await?;
        for part in &msg.parts {
            self.add_part(part.kind, part.filename.as_deref(), &part.data)
                .await?;
        }

        self.conn.write_line("SEND").await?;
        loop {
            let line = self.conn.read_line().await?;
            if line == "OK" {
                break;
            }
            if line.starts_with("FAIL") {
                return Err(HispError::Refused {
                    command: "SEND",
                    reply: reply_text(&line),
                });
            }
            let mut words = line.splitn(3, ' ');
            let (verb, rcpt, rest) = (words.next(), words.next(), words.next());
            let outcome = match (verb, rcpt, rest) {
                (Some("QUEUED"), Some(_), Some(id)) if !id.trim().is_empty() => {
                    RecipientOutcome::Queued {
                        hisp_id: id.trim().to_owned(),
                    }
                }
                (Some("ERROR"), Some(_), reason) => RecipientOutcome::Rejected {
                    reason: reason.unwrap_or("refused by HISP").trim().to_owned(),
                },
                _ => return Err(protocol("SEND", "expected QUEUED, ERROR or OK", &line)),
            };
            outcomes.push((rcpt.unwrap_or_default().to_owned(), outcome));
            self.conn.write_line("OK").await?;
        }
        Ok(SendReport {
            recipients: outcomes,
        })
    }

    /// One CHECK; for MAIL also reads every part with SHOW.
    pub async fn check(&mut self) -> Result<Option<Inbound>, HispError> {
        let line = self.command("CHECK").await?;
        let mut words = line.split(' ');
        match words.next().unwrap_or("") {
            "NONE" if line.trim() == "NONE" => Ok(None),
            "STATUS" => {
                let mut parts = line.splitn(4, ' ').skip(1);
                let (id, code) = match (parts.next(), parts.next()) {
                    (Some(id), Some(code)) if !id.is_empty() && !code.is_empty() => (id, code),
                    _ => return Err(protocol("CHECK", "STATUS without id and code", &line)),
                };
                let notice = StatusNotice {
                    hisp_id: id.to_owned(),
                    recipient: None,
                    code: code.to_owned(),
                    info: parts.next().unwrap_or("").to_owned(),
                    source: NoticeSource::Phimail,
                    final_delivery_ext: false,
                };
                Ok(Some(Inbound::Status(vec![notice])))
            }
            "MAIL" => {
                let mail = MailLine::parse(&line);
                if let Some(reason) = self.skip.get(&mail.id) {
                    return Ok(Some(Inbound::Rejected(RejectedMail {
                        hisp_id: mail.id.clone(),
                        recipient: mail.recipient.to_owned(),
                        sender: mail.sender.to_owned(),
                        raw: Vec::new(),
                        mdn: None,
                        reason: format!(
                            "{} after repeated failures: {reason}",
                            super::UNREAD_QUARANTINE
                        ),
                    })));
                }
                // Every failure from here on belongs to this message, so that one that can never
                // be read is counted, and in the end quarantined, instead of blocking the queue.
                let unreadable = |e| HispError::MailUnreadable {
                    hisp_id: mail.id.clone(),
                    source: Box::new(e),
                };
                let count = mail.count.map_err(unreadable)?;
                let read = self
                    .read_mail(mail.recipient, mail.sender, count, &mail.id)
                    .await;
                Ok(Some(Inbound::Mail(read.map_err(unreadable)?)))
            }
            "FAIL" => Err(HispError::Refused {
                command: "CHECK",
                reply: reply_text(&line),
            }),
            _ => Err(protocol(
                "CHECK",
                "expected NONE, STATUS, MAIL or FAIL",
                &line,
            )),
        }
    }

    async fn read_mail(
        &mut self,
        recipient: &str,
        sender: &str,
        count: usize,
        id: &str,
    ) -> Result<ReceivedMail, HispError> {
        self.expect_ok("SHOW", "SHOW 0").await?;
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let line = self.conn.read_line().await?;
            if line.is_empty() {
                break;
            }
            if headers.len() >= 500 {
                return Err(protocol("SHOW", "more than 500 header lines", &line));
            }
            if line.starts_with([' ', '\t']) {
                // A folded header (RFC 5322 §2.2.3): it continues the previous one.
                match headers.last_mut() {
                    Some((_, value)) => {
                        value.push(' ');
                        value.push_str(line.trim());
                        continue;
                    }
                    None => return Err(protocol("SHOW", "continuation before any header", &line)),
                }
            }
            match line.split_once(':') {
                Some((name, value)) => {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()))
                }
                None => return Err(protocol("SHOW", "header line without a colon", &line)),
            }
        }
        let body_type = self.conn.read_line().await?;
        let len = self.read_length("SHOW").await?;
        let body = self.conn.read_payload(len, self.max_part_bytes).await?;
        let announced = self.read_length("SHOW").await?;
        if announced != count as u64 {
            return Err(HispError::Protocol {
                command: "SHOW",
                problem: "attachment count differs from the one CHECK announced",
                bytes: 0,
            });
        }
        let mut listing = Vec::with_capacity(count);
        for _ in 0..count {
            let filename = self.conn.read_line().await?;
            let mime_type = self.conn.read_line().await?;
            let description = self.conn.read_line().await?;
            listing.push((filename, mime_type, description));
        }
        let mut attachments = Vec::with_capacity(count);
        for (k, (listed_name, listed_type, description)) in listing.into_iter().enumerate() {
            self.expect_ok("SHOW", &format!("SHOW {}", k + 1)).await?;
            let filename = self.conn.read_line().await?;
            let mime_type = self.conn.read_line().await?;
            let len = self.read_length("SHOW").await?;
            let data = self.conn.read_payload(len, self.max_part_bytes).await?;
            attachments.push(ReceivedAttachment {
                filename: if filename.is_empty() {
                    listed_name
                } else {
                    filename
                },
                mime_type: if mime_type.is_empty() {
                    listed_type
                } else {
                    mime_type
                },
                description,
                data,
            });
        }
        let (body_type, body) = if is_text(&body_type) {
            (body_type, body)
        } else {
            // Mail from other HISPs often has the document as its only MIME part, which phiMail
            // hands over as part 0. It is a document, not something to read as text: it joins
            // the attachments (first, as it came), so it is listed, saved and ingested like one.
            attachments.insert(
                0,
                ReceivedAttachment {
                    filename: format!("part0.{}", crate::mime::extension_for(&body_type)),
                    mime_type: body_type,
                    description: "delivered as the message body (part 0)".into(),
                    data: body,
                },
            );
            ("text/plain".to_owned(), Vec::new())
        };
        Ok(ReceivedMail {
            recipient: recipient.to_owned(),
            sender: sender.to_owned(),
            hisp_id: id.to_owned(),
            headers,
            body_type,
            body,
            attachments,
            raw: None,
            verdict: None,
            mdn: None,
        })
    }

    /// Acknowledges the item the last CHECK returned: `OK` for a STATUS, `DONE` for a MAIL.
    pub async fn ack(&mut self, item: &Inbound) -> Result<(), HispError> {
        let command = match item {
            Inbound::Status(_) => "OK",
            // phiMail hands over only MAIL it accepted; Rejected never comes from here.
            Inbound::Mail(_) | Inbound::Rejected(_) => "DONE",
        };
        let reply = self.command(command).await?;
        if reply == "OK" {
            Ok(())
        } else {
            Err(unexpected("acknowledgement", &reply))
        }
    }

    /// Directory search: `LOOKUP JSON <filter>`, one JSON object per result.
    pub async fn lookup(&mut self, filter: &str) -> Result<Vec<serde_json::Value>, HispError> {
        self.expect_ok(
            "LOOKUP",
            &format!("LOOKUP JSON {}", crate::util::one_line(filter)),
        )
        .await?;
        let count = self.read_length("LOOKUP").await?;
        if count > 10_000 {
            return Err(HispError::Protocol {
                command: "LOOKUP",
                problem: "more than 10000 results",
                bytes: 0,
            });
        }
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let line = self.conn.read_line().await?;
            let value = serde_json::from_str(&line)
                .map_err(|_| protocol("LOOKUP", "a result that is not JSON", &line))?;
            out.push(value);
        }
        Ok(out)
    }

    pub async fn close(mut self) {
        self.conn.shutdown().await;
    }
}

/// A body type to show as text (`text/plain`, `text/html`, with or without parameters).
fn is_text(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.is_empty() || mime.to_ascii_lowercase().starts_with("text/")
}

fn verb_name(kind: RecipientKind) -> &'static str {
    match kind {
        RecipientKind::To => "TO",
        RecipientKind::Cc => "CC",
    }
}

/// A `MAIL recipient sender count id [more fields]` line. Servers may add fields after the id
/// (the connectors ignore them). A line too broken to name its message still gets an id, derived
/// from the line, so its failures can be counted and it can end in quarantine like any other.
struct MailLine<'a> {
    recipient: &'a str,
    sender: &'a str,
    id: String,
    count: Result<usize, HispError>,
}

impl<'a> MailLine<'a> {
    fn parse(line: &'a str) -> Self {
        let fields: Vec<&str> = line.split(' ').skip(1).collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        let id = match field(3) {
            "" => format!(
                "unparsed-{}",
                &crate::util::sha256_hex(line.as_bytes())[..16]
            ),
            id => id.to_owned(),
        };
        let count = match field(2).parse::<usize>() {
            Ok(n) if n <= MAX_ATTACHMENTS && fields.len() >= 4 => Ok(n),
            Ok(_) if fields.len() >= 4 => Err(protocol(
                "CHECK",
                "MAIL announces more than 1000 attachments",
                line,
            )),
            _ => Err(protocol(
                "CHECK",
                "MAIL line without recipient, sender, count and id",
                line,
            )),
        };
        MailLine {
            recipient: field(0),
            sender: field(1),
            id,
            count,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for PhiMailClient<S> {
    async fn send(&mut self, msg: &OutgoingMessage) -> Result<SendReport, HispError> {
        self.send_message(msg).await
    }

    async fn next_inbound(&mut self) -> Result<Option<Inbound>, HispError> {
        self.check().await
    }

    async fn acknowledge(&mut self, item: &Inbound) -> Result<(), HispError> {
        self.ack(item).await
    }

    async fn send_mdn(&mut self, _job: &MdnJob) -> Result<(), HispError> {
        // The phiMail HISP is the security agent and answers with MDNs itself; it never gives
        // us an MdnRequest, so there is nothing to send.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose message is only the document: it comes as part 0 with a non-text type,
    /// and its headers may be folded.
    #[tokio::test]
    async fn a_document_as_part_0_becomes_an_attachment_and_folded_headers_unfold() {
        let doc: &[u8] = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut s = LineConn::new(server_io, Duration::from_secs(5));
            assert_eq!(s.read_line().await.unwrap(), "CHECK");
            s.write_line("MAIL b@x.org a@y.org 0 id-1 extra-field")
                .await
                .unwrap();
            assert_eq!(s.read_line().await.unwrap(), "SHOW 0");
            let head = format!(
                "OK\nSubject: a long\n\tfolded subject\nFrom: a@y.org\n\napplication/xml\n{}\n",
                doc.len()
            );
            s.write_raw(head.as_bytes()).await.unwrap();
            s.write_raw(doc).await.unwrap();
            s.write_raw(b"0\n").await.unwrap();
        });
        let mut client = PhiMailClient::over(client_io, Duration::from_secs(5), 1 << 20);
        let Some(Inbound::Mail(m)) = client.check().await.unwrap() else {
            panic!("expected a MAIL");
        };
        server.await.unwrap();
        assert_eq!(m.hisp_id, "id-1");
        assert_eq!(m.header("Subject"), Some("a long folded subject"));
        assert_eq!((m.body_type.as_str(), m.body.len()), ("text/plain", 0));
        assert_eq!(m.attachments.len(), 1);
        let part = &m.attachments[0];
        assert_eq!(
            (part.filename.as_str(), part.mime_type.as_str()),
            ("part0.xml", "application/xml")
        );
        assert_eq!(part.data, doc);
    }

    #[test]
    fn temporary_and_definite_refusals() {
        assert!(is_temporary_refusal("FAIL server busy"));
        assert!(is_temporary_refusal(
            "FAIL Temporarily unavailable, try again"
        ));
        assert!(!is_temporary_refusal(
            "FAIL no certificate found for a@b.org"
        ));
        assert!(!is_temporary_refusal("FAIL domain x.org is not reachable"));
    }
}
