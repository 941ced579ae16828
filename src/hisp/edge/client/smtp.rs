//! SMTP submission through lettre, one transaction per recipient (see [`super::EdgeClient::submit`]).

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{find_rustls_error, EdgeError, EdgeSettings, SmtpTls};

/// What the submission server said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// The server took responsibility for the message for this recipient. `queue_id` is the
    /// server's id when its reply names one (Postfix: "queued as ID").
    Accepted {
        queue_id: Option<String>,
        reply: String,
    },
    /// Refused with a permanent (5xx) reply, or not an address at all: retrying will not help.
    Rejected { reply: String },
    /// Refused with a transient (4xx) reply, or the connection failed before this recipient's
    /// transaction completed (a timeout after the data was sent leaves it unknown whether the
    /// server queued it): retry later.
    Deferred { reason: String },
}

/// SMTP reply codes that only answer authentication (RFC 4954): 530 "authentication required",
/// 534 "mechanism too weak", 535 "credentials invalid", 538 "encryption required".
const AUTH_REPLY_CODES: [u16; 4] = [530, 534, 535, 538];

pub(crate) struct Submitter {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Submitter {
    pub(crate) fn new(settings: &EdgeSettings) -> Result<Self, EdgeError> {
        // lettre builds its own rustls ClientConfig (ring provider, as compiled in); we give it
        // exactly our CA certificates and switch off its default store, so it trusts nothing else.
        let mut params = TlsParameters::builder(settings.smtp_host.clone())
            .certificate_store(CertificateStore::None);
        let certs = crate::tls::load_certs(&settings.ca_file)
            .map_err(|e| EdgeError::Config(e.to_string()))?;
        for der in certs {
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|e| EdgeError::Config(format!("CA certificate: {e}")))?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| EdgeError::Config(format!("SMTP TLS parameters: {e}")))?;
        let tls = match settings.smtp_tls {
            SmtpTls::Implicit => Tls::Wrapper(params),
            SmtpTls::StartTls => Tls::Required(params),
        };
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.smtp_host.as_str())
                .port(settings.smtp_port)
                .tls(tls)
                .credentials(Credentials::new(
                    settings.user.clone(),
                    settings.password.clone(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login])
                .timeout(Some(settings.timeout))
                .build();
        Ok(Submitter { transport })
    }

    pub(crate) async fn submit(
        &self,
        settings: &EdgeSettings,
        envelope_from: &str,
        rcpt_to: &[String],
        raw_message: &[u8],
    ) -> Result<Vec<(String, RcptOutcome)>, EdgeError> {
        let from = parse_address(envelope_from)?;
        let raw_message = data_payload(raw_message)?;
        let mut outcomes: Vec<(String, RcptOutcome)> = Vec::with_capacity(rcpt_to.len());
        let mut rest = rcpt_to.iter();
        while let Some(rcpt) = rest.next() {
            let outcome = match self.transaction(settings, &from, rcpt, raw_message).await {
                Ok(outcome) => outcome,
                Err(EdgeError::RecipientRejected {
                    reply, permanent, ..
                }) => {
                    if permanent {
                        RcptOutcome::Rejected { reply }
                    } else {
                        RcptOutcome::Deferred { reason: reply }
                    }
                }
                Err(err) => {
                    let any_accepted = outcomes
                        .iter()
                        .any(|(_, o)| matches!(o, RcptOutcome::Accepted { .. }));
                    if !any_accepted {
                        return Err(err);
                    }
                    // Some recipients already have the message: report the rest as deferred so
                    // the caller retries only them.
                    let reason = err.to_string();
                    tracing::warn!(rcpt = %rcpt, error = %err, "submission stopped part-way");
                    outcomes.push((
                        rcpt.clone(),
                        RcptOutcome::Deferred {
                            reason: reason.clone(),
                        },
                    ));
                    for later in rest.by_ref() {
                        outcomes.push((
                            later.clone(),
                            RcptOutcome::Deferred {
                                reason: format!("not attempted after an earlier failure: {reason}"),
                            },
                        ));
                    }
                    break;
                }
            };
            outcomes.push((rcpt.clone(), outcome));
        }
        Ok(outcomes)
    }

    pub(crate) async fn submit_one(
        &self,
        settings: &EdgeSettings,
        envelope_from: &str,
        rcpt: &str,
        raw_message: &[u8],
    ) -> Result<RcptOutcome, EdgeError> {
        let from = parse_address(envelope_from)?;
        let raw_message = data_payload(raw_message)?;
        self.transaction(settings, &from, rcpt, raw_message).await
    }

    /// One complete transaction for one recipient. `Ok` is always `Accepted`; a server refusal,
    /// or an address that cannot be sent to at all, is `Err(RecipientRejected)`.
    async fn transaction(
        &self,
        settings: &EdgeSettings,
        from: &Address,
        rcpt: &str,
        raw_message: &[u8],
    ) -> Result<RcptOutcome, EdgeError> {
        let to = match rcpt.parse::<Address>() {
            Ok(a) => a,
            Err(e) => {
                return Err(EdgeError::RecipientRejected {
                    rcpt: rcpt.to_owned(),
                    reply: format!("not sent: {rcpt:?} is not a valid address: {e}"),
                    permanent: true,
                })
            }
        };
        let envelope = Envelope::new(Some(from.clone()), vec![to])
            .map_err(|e| EdgeError::Config(format!("envelope: {e}")))?;
        let sent = tokio::time::timeout(
            settings.timeout,
            self.transport.send_raw(&envelope, raw_message),
        )
        .await
        .map_err(|_| EdgeError::Timeout {
            operation: "SMTP transaction",
            after: settings.timeout,
        })?;
        match sent {
            Ok(response) => {
                tracing::debug!(rcpt, reply = %reply_text(&response), "SMTP accepted");
                Ok(RcptOutcome::Accepted {
                    queue_id: queue_id(response.message()),
                    reply: reply_text(&response),
                })
            }
            Err(e) => Err(classify(settings, rcpt, e)),
        }
    }
}

/// The bytes to hand to lettre for DATA so the server stores exactly `raw`.
///
/// lettre always terminates DATA with `CRLF . CRLF`, which is right for a message whose last
/// line has no line end; a message that ends in CRLF (the normal case) would gain an empty line,
/// so that final CRLF is left for the terminator to supply. lettre dot-stuffs only after CRLF and
/// converts nothing, so bare CR or LF are refused here rather than sent as ambiguous line ends
/// (and refused by smuggling-aware servers anyway).
fn data_payload(raw: &[u8]) -> Result<&[u8], EdgeError> {
    for (i, pair) in raw.windows(2).enumerate() {
        let bare = match pair {
            [b'\r', next] if *next != b'\n' => Some(i),
            [prev, b'\n'] if *prev != b'\r' => Some(i + 1),
            _ => None,
        };
        if let Some(at) = bare {
            return Err(EdgeError::InvalidMessage(format!(
                "bare CR or LF at byte {at}: SMTP needs CRLF line ends"
            )));
        }
    }
    match raw {
        [] => Err(EdgeError::InvalidMessage("empty message".into())),
        [b'\n', ..] | [b'\r'] => Err(EdgeError::InvalidMessage(
            "bare CR or LF at byte 0: SMTP needs CRLF line ends".into(),
        )),
        [.., b'\r'] => Err(EdgeError::InvalidMessage(
            "message ends with a bare CR".into(),
        )),
        _ => Ok(raw.strip_suffix(b"\r\n").unwrap_or(raw)),
    }
}

fn parse_address(addr: &str) -> Result<Address, EdgeError> {
    addr.parse::<Address>()
        .map_err(|e| EdgeError::Config(format!("envelope sender {addr:?}: {e}")))
}

fn reply_text(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
}

/// Postfix (and Exim/Sendmail-like servers) name the queue entry in the final reply.
fn queue_id<'a>(mut lines: impl Iterator<Item = &'a str>) -> Option<String> {
    lines.find_map(|line| {
        let lower = line.to_ascii_lowercase();
        let at = lower.find("queued as ")? + "queued as ".len();
        let id: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        (!id.is_empty()).then_some(id)
    })
}

/// Turns lettre's error for a one-recipient transaction into ours.
fn classify(settings: &EdgeSettings, rcpt: &str, e: lettre::transport::smtp::Error) -> EdgeError {
    let addr = format!("{}:{}", settings.smtp_host, settings.smtp_port);
    if let Some(code) = e.status() {
        let code_num: u16 = code.to_string().parse().unwrap_or(0);
        let text = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let reply = format!("{code} {text}");
        if AUTH_REPLY_CODES.contains(&code_num) {
            return EdgeError::AuthRejected {
                server: "SMTP server",
                user: settings.user.clone(),
                reply,
            };
        }
        return EdgeError::RecipientRejected {
            rcpt: rcpt.to_owned(),
            reply,
            permanent: e.is_permanent(),
        };
    }
    if let Some(source) = find_rustls_error(&e) {
        return EdgeError::Tls { addr, source };
    }
    if e.is_timeout() {
        return EdgeError::Timeout {
            operation: "SMTP connect",
            after: settings.timeout,
        };
    }
    let msg = e.to_string();
    if e.is_tls() {
        return EdgeError::Tls {
            addr,
            source: rustls::Error::General(msg),
        };
    }
    if has_io_error(&e) {
        return EdgeError::Connect { addr, reason: msg };
    }
    EdgeError::Smtp(msg)
}

fn has_io_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<std::io::Error>() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_leaves_the_last_crlf_to_the_terminator() {
        assert_eq!(data_payload(b"a\r\nb\r\n").unwrap(), b"a\r\nb");
        assert_eq!(data_payload(b"a\r\nb").unwrap(), b"a\r\nb");
        assert_eq!(data_payload(b"a\r\n\r\n").unwrap(), b"a\r\n");
    }

    #[test]
    fn payload_refuses_bare_line_ends() {
        for bad in [&b"a\nb\r\n"[..], b"a\rb\r\n", b"\nab", b"ab\r", b"\r", b""] {
            assert!(
                matches!(data_payload(bad), Err(EdgeError::InvalidMessage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn queue_id_from_postfix_reply() {
        let id = queue_id(["2.0.0 Ok: queued as 8FAB79964D9"].into_iter());
        assert_eq!(id.as_deref(), Some("8FAB79964D9"));
        assert_eq!(queue_id(["2.0.0 Ok"].into_iter()), None);
    }
}
