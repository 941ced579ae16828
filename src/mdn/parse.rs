//! Reading MDNs and DSNs.
//!
//! Real senders get the format wrong in small ways (ETT tests for several), and a report that
//! cannot be read leaves a recipient waiting for a timeout. So fields are read in order with
//! blank lines and stray line breaks ignored, names and address types compared without regard
//! to case, and a missing field is recorded as a problem rather than failing the parse.

use mail_parser::MessageParser;

use super::{
    CorrelationSource, Disposition, DsnAction, MdnError, RecipientReport, Report, ReportKind,
    FINAL_DELIVERY_FIELD,
};
use crate::mime;

/// How deep to look for a report inside multipart and message/rfc822 wrappers.
const MAX_NESTING: usize = 4;

const MDN_TYPES: &[&str] = &[
    "message/disposition-notification",
    "message/global-disposition-notification",
];
const DSN_TYPES: &[&str] = &["message/delivery-status", "message/global-delivery-status"];

/// The report part found, with the headers of the message that carries it.
struct Found<'a> {
    kind: ReportKind,
    part_headers: Vec<mime::Header<'a>>,
    part_body: &'a [u8],
    /// Headers of a returned original (DSN third part), if any.
    returned: Option<Vec<mime::Header<'a>>>,
}

/// Whether `msg` is an MDN or DSN. The agent must never answer one with an MDN, so this errs
/// towards yes: a top-level `multipart/report` counts even when its report part is unreadable
/// (and [`parse_report`] fails on it).
pub fn is_report(msg: &[u8]) -> bool {
    let (h, body) = mime::split_entity(msg);
    let headers = mime::parse_headers(h);
    let ct = mime::parse_content_type(mime::header(&headers, "Content-Type").unwrap_or(""));
    ct.mime == "multipart/report" || find(&headers, body, 0).is_some()
}

/// Parses an MDN or DSN. Fails only if `msg` is not a report; everything else that is wrong
/// is listed in [`Report::problems`].
pub fn parse_report(msg: &[u8]) -> Result<Report, MdnError> {
    let (h, body) = mime::split_entity(msg);
    let headers = mime::parse_headers(h);
    let Some(found) = find(&headers, body, 0) else {
        let ct = mime::parse_content_type(mime::header(&headers, "Content-Type").unwrap_or(""));
        return Err(if ct.mime == "multipart/report" {
            MdnError::MissingReportPart
        } else {
            MdnError::NotAReport { found: ct.mime }
        });
    };
    let mut problems = Vec::new();
    let decoded = mime::decode_transfer(
        mime::header(&found.part_headers, "Content-Transfer-Encoding"),
        found.part_body,
    );
    let decoded = match decoded {
        Some(d) => d,
        None => {
            problems.push(MdnError::UndecodableReport);
            Vec::new()
        }
    };
    let fields = mime::parse_headers(&decoded);

    let parsed_headers = MessageParser::default().parse_headers(msg);
    let from = parsed_headers
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase());
    let message_id = mime::header(&headers, "Message-ID").map(|v| v.trim().to_string());
    let in_reply_to = mime::header(&headers, "In-Reply-To").and_then(first_msg_id);

    let mut report = Report {
        kind: found.kind,
        original_message_id: None,
        correlation: None,
        reporting_agent: None,
        from,
        message_id,
        recipients: Vec::new(),
        problems,
    };
    match found.kind {
        ReportKind::Mdn => read_mdn(&fields, &mut report),
        ReportKind::Dsn => read_dsn(&fields, &mut report),
    }

    if report.original_message_id.is_none() {
        if let Some(id) = in_reply_to {
            report.original_message_id = Some(id);
            report.correlation = Some(CorrelationSource::InReplyTo);
        } else if let Some(id) = found
            .returned
            .as_ref()
            .and_then(|h| mime::header(h, "Message-ID"))
            .and_then(first_msg_id)
        {
            report.original_message_id = Some(id);
            report.correlation = Some(CorrelationSource::ReturnedHeaders);
        } else {
            report.problems.push(MdnError::NoCorrelation);
        }
    }
    Ok(report)
}

fn is_field(f: &mime::Header<'_>, name: &str) -> bool {
    f.name.eq_ignore_ascii_case(name)
}

fn non_empty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn read_mdn(fields: &[mime::Header<'_>], report: &mut Report) {
    // An MDN speaks for one recipient, so field order and grouping do not matter.
    let mut r = RecipientReport::default();
    for f in fields {
        if is_field(f, "Reporting-UA") {
            report.reporting_agent = non_empty(&f.value);
        } else if is_field(f, "Original-Message-ID") {
            if let Some(id) = first_msg_id(&f.value) {
                report.original_message_id = Some(id);
                report.correlation = Some(CorrelationSource::OriginalMessageId);
            }
        } else if is_field(f, "X-Original-Message-ID") && report.original_message_id.is_none() {
            if let Some(id) = first_msg_id(&f.value) {
                report.original_message_id = Some(id);
                report.correlation = Some(CorrelationSource::XOriginalMessageId);
            }
        } else if is_field(f, "Final-Recipient") {
            r.final_recipient = strip_address_type(&f.value);
        } else if is_field(f, "Original-Recipient") {
            r.original_recipient = strip_address_type(&f.value);
        } else if is_field(f, "Disposition") {
            r.disposition_raw = non_empty(&f.value);
            r.disposition = parse_disposition(&f.value);
            if r.disposition.is_none() {
                report.problems.push(MdnError::BadDisposition {
                    value: f.value.clone(),
                });
            }
        } else if is_field(f, FINAL_DELIVERY_FIELD) {
            r.final_delivery_ext = true;
        } else if is_field(f, "Error") || is_field(f, "Failure") {
            r.diagnostic = non_empty(&f.value);
        }
    }
    if r.disposition_raw.is_none() {
        report.problems.push(MdnError::MissingDisposition);
    }
    if r.final_recipient.is_none() {
        report.problems.push(MdnError::MissingFinalRecipient);
    }
    report.recipients.push(r);
}

/// Per-message DSN fields; everything else belongs to the current recipient.
const DSN_MESSAGE_FIELDS: &[&str] = &[
    "Reporting-MTA",
    "Original-Envelope-Id",
    "DSN-Gateway",
    "Received-From-MTA",
    "Arrival-Date",
];

fn read_dsn(fields: &[mime::Header<'_>], report: &mut Report) {
    // Recipients are delimited by their Original-/Final-Recipient fields rather than by blank
    // lines, which senders insert and drop freely.
    let mut current: Option<RecipientReport> = None;
    for f in fields {
        if is_field(f, "X-Original-Message-ID") {
            if let Some(id) = first_msg_id(&f.value) {
                report.original_message_id = Some(id);
                report.correlation = Some(CorrelationSource::XOriginalMessageId);
            }
            continue;
        }
        if is_field(f, "Original-Message-ID") && report.original_message_id.is_none() {
            if let Some(id) = first_msg_id(&f.value) {
                report.original_message_id = Some(id);
                report.correlation = Some(CorrelationSource::OriginalMessageId);
            }
            continue;
        }
        if is_field(f, "Reporting-MTA") {
            report.reporting_agent = non_empty(&f.value);
            continue;
        }
        if DSN_MESSAGE_FIELDS.iter().any(|n| is_field(f, n)) {
            continue;
        }
        let starts_recipient = (is_field(f, "Original-Recipient")
            && current
                .as_ref()
                .is_none_or(|r| r.original_recipient.is_some() || r.final_recipient.is_some()))
            || (is_field(f, "Final-Recipient")
                && current.as_ref().is_none_or(|r| r.final_recipient.is_some()));
        if starts_recipient {
            if let Some(done) = current.take() {
                report.recipients.push(done);
            }
            current = Some(RecipientReport::default());
        }
        let Some(r) = current.as_mut() else {
            continue;
        };
        if is_field(f, "Original-Recipient") {
            r.original_recipient = strip_address_type(&f.value);
        } else if is_field(f, "Final-Recipient") {
            r.final_recipient = strip_address_type(&f.value);
        } else if is_field(f, "Action") {
            r.action = parse_action(&f.value);
        } else if is_field(f, "Status") {
            r.status = non_empty(&f.value);
        } else if is_field(f, "Diagnostic-Code") {
            r.diagnostic = non_empty(&f.value);
        }
    }
    if let Some(done) = current.take() {
        report.recipients.push(done);
    }
    if report.recipients.is_empty() {
        report.problems.push(MdnError::MissingFinalRecipient);
    }
    for r in &report.recipients {
        if r.action.is_none() {
            report.problems.push(MdnError::MissingAction {
                recipient: r.final_recipient.clone(),
            });
        }
        if r.final_recipient.is_none() {
            report.problems.push(MdnError::MissingFinalRecipient);
        }
    }
}

/// `rfc822; Bob@Example.org` → `bob@example.org`, whatever the case and spacing of the type.
fn strip_address_type(value: &str) -> Option<String> {
    let value = value.trim();
    let addr = match value.split_once(';') {
        Some((ty, rest)) if !ty.contains('@') => rest,
        _ => value,
    };
    let addr: String = addr.chars().filter(|c| !c.is_whitespace()).collect();
    let addr = addr.trim_start_matches('<').trim_end_matches('>');
    non_empty(&addr.to_ascii_lowercase())
}

/// Reads `action-mode/sending-mode; type/modifier` and also the bare `type` some send.
fn parse_disposition(value: &str) -> Option<Disposition> {
    let after = match value.split_once(';') {
        Some((_, rest)) => rest,
        None => value,
    };
    let mut pieces = after.split('/').map(|p| p.trim().to_ascii_lowercase());
    let ty = pieces.next()?;
    let ty = ty.split_whitespace().next().unwrap_or("").to_string();
    let modifiers: Vec<String> = pieces.collect();
    let has = |m: &str| {
        modifiers
            .iter()
            .any(|x| x.split(',').any(|y| y.trim() == m))
    };
    Some(match ty.as_str() {
        "processed" if has("error") => Disposition::Error,
        "processed" if has("failed") || has("failure") => Disposition::Failed,
        "processed" => Disposition::Processed,
        "dispatched" => Disposition::Dispatched,
        "displayed" => Disposition::Displayed,
        "failed" | "failure" => Disposition::Failed,
        "denied" => Disposition::Denied,
        "error" => Disposition::Error,
        _ => return None,
    })
}

fn parse_action(value: &str) -> Option<DsnAction> {
    let word = value
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .find(|w| !w.is_empty())?
        .to_ascii_lowercase();
    Some(match word.as_str() {
        "failed" => DsnAction::Failed,
        "delayed" => DsnAction::Delayed,
        "delivered" => DsnAction::Delivered,
        "relayed" => DsnAction::Relayed,
        "expanded" => DsnAction::Expanded,
        _ => DsnAction::Other(word),
    })
}

/// The first msg-id in a field, angle brackets added if the sender left them off, so ids
/// compare equal however they were written.
fn first_msg_id(value: &str) -> Option<String> {
    let v = value.trim();
    if let Some(s) = v.find('<') {
        if let Some(len) = v[s..].find('>') {
            let inner = v[s + 1..s + len].trim();
            return (!inner.is_empty()).then(|| format!("<{inner}>"));
        }
    }
    v.split_whitespace()
        .next()
        .map(|id| format!("<{}>", id.trim_matches(|c| c == '<' || c == '>')))
}

fn find<'a>(headers: &[mime::Header<'a>], body: &'a [u8], depth: usize) -> Option<Found<'a>> {
    if depth > MAX_NESTING {
        return None;
    }
    let ct = mime::parse_content_type(mime::header(headers, "Content-Type").unwrap_or(""));
    let kind_of = |t: &str| {
        if MDN_TYPES.contains(&t) {
            Some(ReportKind::Mdn)
        } else if DSN_TYPES.contains(&t) {
            Some(ReportKind::Dsn)
        } else {
            None
        }
    };
    if let Some(kind) = kind_of(&ct.mime) {
        return Some(Found {
            kind,
            part_headers: headers.to_vec(),
            part_body: body,
            returned: None,
        });
    }
    if ct.mime == "message/rfc822" {
        let (h, b) = mime::split_entity(body);
        return find(&mime::parse_headers(h), b, depth + 1);
    }
    if !ct.mime.starts_with("multipart/") {
        return None;
    }
    let parts = mime::split_multipart(body, ct.param("boundary")?)?;
    let split: Vec<(Vec<mime::Header<'a>>, &'a [u8])> = parts
        .iter()
        .map(|p| {
            let (h, b) = mime::split_entity(p);
            (mime::parse_headers(h), b)
        })
        .collect();
    if ct.mime == "multipart/report" {
        let part_type = |h: &[mime::Header<'_>]| {
            mime::parse_content_type(mime::header(h, "Content-Type").unwrap_or("")).mime
        };
        let report = split
            .iter()
            .find_map(|(h, b)| kind_of(&part_type(h)).map(|k| (k, h, *b)));
        if let Some((kind, h, b)) = report {
            let returned = split.iter().find_map(|(h, b)| {
                let t = part_type(h);
                if t == "message/rfc822" || t == "text/rfc822-headers" {
                    let (rh, _) = mime::split_entity(b);
                    Some(mime::parse_headers(rh))
                } else {
                    None
                }
            });
            return Some(Found {
                kind,
                part_headers: h.clone(),
                part_body: b,
                returned,
            });
        }
        return None;
    }
    split.into_iter().find_map(|(h, b)| find(&h, b, depth + 1))
}

/// Whether the message's `Disposition-Notification-Options` ask for the
/// `X-DIRECT-FINAL-DESTINATION-DELIVERY` (dispatched) MDN. `headers` may be a header block or
/// a whole message.
pub fn wants_final_delivery(headers: &[u8]) -> bool {
    let (h, _) = mime::split_entity(headers);
    mime::parse_headers(h)
        .iter()
        .filter(|f| {
            f.name
                .eq_ignore_ascii_case("Disposition-Notification-Options")
        })
        .flat_map(|f| mime::split_params(&f.value))
        .any(|param| {
            let Some((name, values)) = param.split_once('=') else {
                return false;
            };
            // Values are "importance, value[, value...]"; the importance word is never
            // "true", so senders that leave it off are understood too.
            name.trim().eq_ignore_ascii_case(FINAL_DELIVERY_FIELD)
                && values
                    .split(',')
                    .any(|v| v.trim().trim_matches('"').eq_ignore_ascii_case("true"))
        })
}
