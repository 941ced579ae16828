//! The edge transport: directd as the Direct security agent over standard mail protocols.
//! Outgoing messages are built, signed and encrypted here and submitted over SMTP; incoming ones
//! are fetched over IMAP, decrypted and verified (or quarantined with the reason), and MDNs are
//! answered. The mail servers never see anything but sealed messages.

pub mod client;
pub mod message;

use std::sync::Arc;

use client::{EdgeClient, ImapUid, RcptOutcome};

use super::{
    HispError, Inbound, MdnJob, MdnRequest, NoticeSource, OutgoingMessage, ReceivedMail,
    RecipientOutcome, RejectedMail, SendReport, StatusNotice, Transport,
};
use crate::mdn::{self, OriginalInfo, ReportKind};
use crate::smime::{self, Agent, Envelope};

pub struct EdgeTransport {
    client: EdgeClient,
    agent: Arc<Agent>,
    /// The account's own address, used when a message names no delivery address.
    address: String,
    /// The IMAP message the last `next_inbound` returned, which `acknowledge` removes.
    current: Option<ImapUid>,
}

/// The Message-ID of one send of outgoing message `local_id`: the IG needs every message's to
/// be unique, and correlation of MDNs depends on it. The local id keeps sends of different
/// messages apart, the random part different attempts of the same one.
fn new_message_id(local_id: i64, sender: &str) -> String {
    let domain = sender.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{local_id}.{}@{domain}>", crate::util::random_hex(8))
}

/// The first value of a top-level header of `raw` (unfolded), without parsing the body.
fn header(raw: &[u8], name: &str) -> Option<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))?;
    let head = String::from_utf8_lossy(&raw[..end]).replace("\r\n", "\n");
    let mut value: Option<String> = None;
    for line in head.split('\n') {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case(name) {
                value = Some(v.trim().to_owned());
            }
        }
    }
    value
}

impl EdgeTransport {
    pub fn new(client: EdgeClient, agent: Arc<Agent>, address: &str) -> Self {
        EdgeTransport {
            client,
            agent,
            address: address.to_owned(),
            current: None,
        }
    }

    /// Turns one fetched message into what the daemon stores.
    async fn classify(&self, raw: Vec<u8>) -> Inbound {
        // Trace headers the receiving MTA prepended: the SMTP envelope, for the AS 1.3 check.
        let mail_from = header(&raw, "Return-Path").map(|v| crate::address::bare(&v));
        let delivered_to = header(&raw, "Delivered-To")
            .or_else(|| header(&raw, "X-Original-To"))
            .map(|v| crate::address::bare(&v));
        let hisp_id = header(&raw, "Message-ID")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| format!("<sha256.{}@directd>", crate::util::sha256_hex(&raw)));
        let recipient = delivered_to.clone().unwrap_or_else(|| self.address.clone());
        let outer_from = header(&raw, "From")
            .map(|v| crate::address::bare(&v))
            .unwrap_or_default();
        let reject = |raw: Vec<u8>, reason: String| {
            Inbound::Rejected(RejectedMail {
                hisp_id: hisp_id.clone(),
                recipient: recipient.clone(),
                sender: mail_from
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| outer_from.clone()),
                raw,
                reason,
                mdn: None,
            })
        };
        let envelope = match (&mail_from, &delivered_to) {
            (Some(from), Some(to)) if !from.is_empty() => Some(Envelope {
                mail_from: from.clone(),
                rcpt_to: vec![to.clone()],
            }),
            _ => None,
        };
        let opened = match self.agent.open(&raw, envelope.as_ref()).await {
            Ok(o) => o,
            Err(smime::SmimeError::NotEncrypted { .. }) if mdn::is_report(&raw) => {
                // Mail servers' own delivery reports (DSNs) cannot be signed; they are accepted
                // as DSNs only, and an unsigned MDN is never believed.
                return match mdn::parse_report(&raw) {
                    Ok(r) if r.kind == ReportKind::Dsn => Inbound::Status(notices(&r)),
                    Ok(_) => reject(
                        raw,
                        "unsigned MDN: MDNs must be signed and encrypted".into(),
                    ),
                    Err(e) => reject(raw, format!("unreadable delivery report: {e}")),
                };
            }
            Err(e) => return reject(raw, e.to_string()),
        };
        if mdn::is_report(&opened.inner) {
            // Never answer a report with an MDN.
            return match mdn::parse_report(&opened.inner) {
                Ok(r) => Inbound::Status(notices(&r)),
                Err(e) => reject(raw, format!("unreadable MDN/DSN: {e}")),
            };
        }
        let parsed = match message::parse_inner(&opened.inner) {
            Ok(p) => p,
            Err(e) => return reject(raw, e.to_string()),
        };
        let sender = parsed
            .from
            .clone()
            .unwrap_or_else(|| opened.verdict.from.clone());
        let mdn = parsed
            .message_id
            .clone()
            .map(|original_message_id| MdnRequest {
                to: sender.clone(),
                original_message_id,
                final_delivery: mdn::wants_final_delivery(&opened.inner),
            });
        Inbound::Mail(ReceivedMail {
            recipient,
            sender,
            hisp_id,
            headers: parsed.headers,
            body_type: parsed.body_type,
            body: parsed.body,
            attachments: parsed.attachments,
            verdict: serde_json::to_string(&opened.verdict).ok(),
            raw: Some(raw),
            mdn,
        })
    }
}

/// One notice per recipient a report speaks for.
fn notices(r: &mdn::Report) -> Vec<StatusNotice> {
    let id = r.original_message_id.clone().unwrap_or_default();
    let source = match r.kind {
        ReportKind::Mdn => NoticeSource::Mdn,
        ReportKind::Dsn => NoticeSource::Dsn,
    };
    let one = |rr: Option<&mdn::RecipientReport>| {
        let code = match rr {
            Some(rr) => match (&rr.disposition, &rr.action) {
                (Some(d), _) => serde_json::to_value(d)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                (None, Some(a)) => serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "other".into()),
                (None, None) => "unknown".into(),
            },
            None => "unknown".into(),
        };
        let info = rr
            .and_then(|rr| rr.diagnostic.clone().or_else(|| rr.disposition_raw.clone()))
            .unwrap_or_default();
        StatusNotice {
            hisp_id: id.clone(),
            recipient: rr.and_then(|rr| rr.final_recipient.clone()),
            code,
            info,
            source,
            final_delivery_ext: rr.is_some_and(|rr| rr.final_delivery_ext),
        }
    };
    if r.recipients.is_empty() {
        vec![one(None)]
    } else {
        r.recipients.iter().map(|rr| one(Some(rr))).collect()
    }
}

impl Transport for EdgeTransport {
    async fn send(&mut self, msg: &OutgoingMessage) -> Result<SendReport, HispError> {
        let mut outcomes = Vec::new();
        let identity = match self.agent.keys.identity_for(&msg.sender) {
            Ok(i) => i,
            Err(e) => {
                let reason = e.to_string();
                return Ok(SendReport {
                    recipients: msg
                        .recipients
                        .iter()
                        .map(|r| {
                            (
                                r.address.clone(),
                                RecipientOutcome::Rejected {
                                    reason: reason.clone(),
                                },
                            )
                        })
                        .collect(),
                });
            }
        };
        // Encrypt to every valid certificate of every recipient we can reach.
        let mut certs = Vec::new();
        let mut reachable = Vec::new();
        for r in &msg.recipients {
            match self.agent.recipient_certs(&msg.sender, &r.address).await {
                Ok(found) => {
                    certs.extend(found);
                    reachable.push(r.address.clone());
                }
                Err(e) => outcomes.push((
                    r.address.clone(),
                    RecipientOutcome::Rejected {
                        reason: e.to_string(),
                    },
                )),
            }
        }
        if reachable.is_empty() {
            return Ok(SendReport {
                recipients: outcomes,
            });
        }
        let message_id = new_message_id(msg.local_id, &msg.sender);
        let inner = message::build_inner(
            msg,
            &message_id,
            &crate::timefmt::rfc5322(std::time::SystemTime::now()),
            &crate::util::random_hex(12),
        );
        let sealed = match smime::seal(&inner, identity, &certs, &self.agent.seal) {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("cannot seal: {e}");
                outcomes.extend(reachable.into_iter().map(|a| {
                    (
                        a,
                        RecipientOutcome::Rejected {
                            reason: reason.clone(),
                        },
                    )
                }));
                return Ok(SendReport {
                    recipients: outcomes,
                });
            }
        };
        for (rcpt, outcome) in self.client.submit(&msg.sender, &reachable, &sealed).await? {
            outcomes.push((
                rcpt,
                match outcome {
                    RcptOutcome::Accepted { .. } => RecipientOutcome::Queued {
                        hisp_id: message_id.clone(),
                    },
                    RcptOutcome::Rejected { reply } => RecipientOutcome::Rejected { reason: reply },
                    RcptOutcome::Deferred { reason } => RecipientOutcome::Deferred { reason },
                },
            ));
        }
        Ok(SendReport {
            recipients: outcomes,
        })
    }

    async fn next_inbound(&mut self) -> Result<Option<Inbound>, HispError> {
        let Some(fetched) = self.client.fetch_next().await? else {
            self.current = None;
            return Ok(None);
        };
        self.current = Some(fetched.uid);
        Ok(Some(self.classify(fetched.raw).await))
    }

    async fn acknowledge(&mut self, _item: &Inbound) -> Result<(), HispError> {
        if let Some(uid) = self.current.take() {
            self.client.acknowledge(uid).await?;
        }
        Ok(())
    }

    async fn send_mdn(&mut self, job: &MdnJob) -> Result<(), HispError> {
        let refuse = |reply: String| HispError::Refused {
            command: "MDN",
            reply,
        };
        let identity = self
            .agent
            .keys
            .identity_for(&job.from)
            .map_err(|e| refuse(e.to_string()))?;
        let certs = self
            .agent
            .recipient_certs(&job.from, &job.to)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        let original = OriginalInfo {
            message_id: job.original_message_id.clone(),
            original_recipient: None,
            final_recipient: job.from.clone(),
            subject: None,
            from: job.to.clone(),
        };
        let report = mdn::build_mdn(
            job.disposition,
            &original,
            concat!("directd/", env!("CARGO_PKG_VERSION")),
            job.final_delivery_ext,
        );
        let sealed = smime::seal(&report, identity, &certs, &self.agent.seal)
            .map_err(|e| refuse(e.to_string()))?;
        match self.client.submit_one(&job.from, &job.to, &sealed).await? {
            RcptOutcome::Accepted { .. } => Ok(()),
            RcptOutcome::Rejected { reply } => Err(refuse(reply)),
            RcptOutcome::Deferred { reason } => Err(refuse(reason)),
        }
    }
}

impl EdgeTransport {
    pub async fn close(mut self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{header, new_message_id};

    #[test]
    fn message_ids_are_unique_across_thousands_of_sends() {
        let mut seen = std::collections::HashSet::new();
        for local_id in 0..2000 {
            // Three attempts of each message, as retries make.
            for _ in 0..3 {
                let id = new_message_id(local_id, "alice@a.example");
                assert!(id.starts_with(&format!("<{local_id}.")), "{id}");
                assert!(id.ends_with("@a.example>"), "{id}");
                assert!(seen.insert(id.clone()), "Message-ID {id} repeated");
            }
        }
        assert_eq!(seen.len(), 6000);
    }

    #[test]
    fn trace_headers_are_read_without_parsing_the_body() {
        let raw = b"Return-Path: <Alice@A.test>\r\nDelivered-To: bob@b.test\r\nSubject: x\r\n  folded\r\n\r\nReturn-Path: <evil@x>\r\n";
        assert_eq!(
            header(raw, "return-path")
                .map(|v| crate::address::bare(&v))
                .as_deref(),
            Some("alice@a.test")
        );
        assert_eq!(header(raw, "Subject").as_deref(), Some("x folded"));
        assert_eq!(header(raw, "Missing"), None);
        assert_eq!(crate::address::bare("Bob <bob@b.test>"), "bob@b.test");
    }
}
