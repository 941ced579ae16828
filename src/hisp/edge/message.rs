//! The inner (authoritative) RFC 5322 message of a Direct exchange: built for what we send,
//! parsed from what the security agent decrypted.

use mail_parser::{MessageParser, MimeHeaders};

use crate::hisp::{OutgoingMessage, PartKind, ReceivedAttachment, RecipientKind};

/// Upper bound on what the parser is given; HISPs refuse far smaller messages.
const MAX_INNER: usize = 128 * 1024 * 1024;

/// A header value on one line, RFC 2047-encoded when it is not plain ASCII.
fn header_text(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.is_ascii() {
        one_line
    } else {
        format!(
            "=?utf-8?B?{}?=",
            openssl::base64::encode_block(one_line.as_bytes())
        )
    }
}

/// A filename parameter value: quoted, without quotes, backslashes or control characters.
fn param(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

fn content_type(kind: PartKind, filename: Option<&str>) -> &'static str {
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match (kind, ext.as_str()) {
        (PartKind::Cda, _) | (_, "xml") => "application/xml",
        (PartKind::Text, _) | (_, "txt") => "text/plain; charset=utf-8",
        (_, "pdf") => "application/pdf",
        (_, "zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Builds the complete inner message (CRLF) for `msg`: headers, the body as the first part and
/// every other part as a base64 attachment. `message_id` includes the angle brackets.
pub fn build_inner(
    msg: &OutgoingMessage,
    message_id: &str,
    date: &str,
    boundary_token: &str,
) -> Vec<u8> {
    let list = |kind: RecipientKind| {
        msg.recipients
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let boundary = format!("=_directd_{boundary_token}");
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", msg.sender));
    let to = list(RecipientKind::To);
    if !to.is_empty() {
        out.push_str(&format!("To: {to}\r\n"));
    }
    let cc = list(RecipientKind::Cc);
    if !cc.is_empty() {
        out.push_str(&format!("Cc: {cc}\r\n"));
    }
    out.push_str(&format!(
        "Subject: {}\r\n",
        header_text(msg.subject.as_deref().unwrap_or(""))
    ));
    out.push_str(&format!(
        "Date: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
    ));
    if msg.final_delivery {
        out.push_str("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n");
    }
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    let (body, attachments) = match msg.parts.split_first() {
        Some((first, rest)) if first.kind == PartKind::Text => (first.data.as_slice(), rest),
        _ => (&b""[..], msg.parts.as_slice()),
    };
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        String::from_utf8_lossy(&crate::mime::base64_lines(body))
    ));
    for (i, part) in attachments.iter().enumerate() {
        let name = param(
            part.filename
                .as_deref()
                .unwrap_or(&format!("attachment{}.bin", i + 1)),
        );
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            content_type(part.kind, Some(&name)),
            String::from_utf8_lossy(&crate::mime::base64_lines(&part.data))
        ));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

/// The parts of a decrypted inner message the store keeps.
#[derive(Debug, Clone)]
pub struct ParsedInner {
    pub headers: Vec<(String, String)>,
    pub from: Option<String>,
    pub message_id: Option<String>,
    pub body_type: String,
    pub body: Vec<u8>,
    pub attachments: Vec<ReceivedAttachment>,
}

#[derive(Debug, thiserror::Error)]
pub enum InnerError {
    #[error("inner message is not valid MIME")]
    Unparsable,
    #[error("inner message of {0} bytes is over the {MAX_INNER}-byte limit")]
    TooLarge(usize),
}

/// Parses a decrypted inner message: headers (as text), the first text part as the body, and
/// every other leaf part as an attachment with its decoded bytes.
pub fn parse_inner(inner: &[u8]) -> Result<ParsedInner, InnerError> {
    if inner.len() > MAX_INNER {
        return Err(InnerError::TooLarge(inner.len()));
    }
    let msg = MessageParser::default()
        .parse(inner)
        .ok_or(InnerError::Unparsable)?;
    let headers = msg
        .headers()
        .iter()
        .map(|h| {
            let raw = &inner[h.offset_start as usize..h.offset_end as usize];
            let value = String::from_utf8_lossy(raw)
                .replace("\r\n", " ")
                .replace('\n', " ")
                .trim()
                .to_owned();
            (h.name.as_str().to_owned(), value)
        })
        .collect();
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.to_ascii_lowercase());
    let message_id = msg.message_id().map(|id| format!("<{id}>"));
    let body_part = msg.text_body.first().copied();
    let (body_type, body) = match body_part.and_then(|i| msg.parts.get(i as usize)) {
        Some(p) => (
            p.content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("plain")))
                .unwrap_or_else(|| "text/plain".into()),
            p.contents().to_vec(),
        ),
        None => ("text/plain".into(), Vec::new()),
    };
    let mut attachments = Vec::new();
    for (i, p) in msg.parts.iter().enumerate() {
        let leaf = !matches!(
            p.body,
            mail_parser::PartType::Multipart(_) | mail_parser::PartType::Message(_)
        );
        if i == 0 || !leaf || Some(i as u32) == body_part {
            continue;
        }
        let mime_type = p
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
            .unwrap_or_else(|| "application/octet-stream".into());
        attachments.push(ReceivedAttachment {
            filename: p
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("part{i}")),
            mime_type,
            description: String::new(),
            data: p.contents().to_vec(),
        });
    }
    Ok(ParsedInner {
        headers,
        from,
        message_id,
        body_type,
        body,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hisp::{OutPart, OutRecipient};

    #[test]
    fn built_message_parses_back_byte_exact() {
        let ccda =
            b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\r\n\x00binary-ish\xff</ClinicalDocument>"
                .to_vec();
        let msg = OutgoingMessage {
            local_id: 7,
            sender: "a@a.example".into(),
            recipients: vec![
                OutRecipient {
                    address: "b@b.example".into(),
                    kind: RecipientKind::To,
                },
                OutRecipient {
                    address: "c@c.example".into(),
                    kind: RecipientKind::Cc,
                },
            ],
            subject: Some("Référral\r\nBcc: evil@x".into()),
            final_delivery: true,
            parts: vec![
                OutPart {
                    kind: PartKind::Text,
                    filename: None,
                    data: b"See attached.".to_vec(),
                },
                OutPart {
                    kind: PartKind::Cda,
                    filename: Some("summary \"x\".xml".into()),
                    data: ccda.clone(),
                },
            ],
        };
        let inner = build_inner(
            &msg,
            "<m7@a.example>",
            "Wed, 25 Nov 2026 22:50:00 +0000",
            "tok",
        );
        let text = String::from_utf8_lossy(&inner);
        assert!(text.contains("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n"));
        assert!(
            !text.contains("\r\nBcc:"),
            "a subject must not inject headers"
        );
        let parsed = parse_inner(&inner).unwrap();
        assert_eq!(parsed.from.as_deref(), Some("a@a.example"));
        assert_eq!(parsed.message_id.as_deref(), Some("<m7@a.example>"));
        assert_eq!(parsed.body, b"See attached.");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].data, ccda);
        assert_eq!(parsed.attachments[0].filename, "summary x.xml");
        assert_eq!(parsed.attachments[0].mime_type, "application/xml");
        let subject = parsed.headers.iter().find(|(n, _)| n == "Subject").unwrap();
        assert!(subject.1.starts_with("=?utf-8?B?"));
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        assert!(parse_inner(b"").is_err() || parse_inner(b"").unwrap().attachments.is_empty());
        let _ = parse_inner(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--");
    }
}
