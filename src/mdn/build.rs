//! Building the MDNs a Direct receiver owes its sender. The result is a plain RFC 5322 message;
//! like any Direct message it must then be sealed before it is sent.

use std::time::SystemTime;

use super::{Disposition, OriginalInfo, FINAL_DELIVERY_FIELD};

/// Builds a `multipart/report; report-type=disposition-notification` message for `original`.
///
/// The MDN goes from the final recipient to the original sender, answers the original
/// Message-ID in both `In-Reply-To` and `Original-Message-ID`, and never carries
/// `Disposition-Notification-To` (an MDN must not ask for an MDN). The
/// `X-DIRECT-FINAL-DESTINATION-DELIVERY` extension field is added to a `Dispatched` MDN when
/// `final_delivery_ext` is set, i.e. when the sender asked for it; it means nothing on the other
/// dispositions and is left off them.
///
/// Every value is put on one line, so nothing from the original message can inject headers.
pub fn build_mdn(
    kind: Disposition,
    original: &OriginalInfo,
    reporting_ua: &str,
    final_delivery_ext: bool,
) -> Vec<u8> {
    let final_recipient = clean(&original.final_recipient);
    let to = clean(&original.from);
    let original_id = bracketed(&clean(&original.message_id));
    let subject = original.subject.as_deref().map(clean).unwrap_or_default();
    let domain = final_recipient
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "localhost".to_string());
    let token = crate::util::random_hex(12);
    let boundary = format!("----=_directd_mdn_{token}");
    let (label, disposition, sentence) = match kind {
        Disposition::Processed => ("Processed", "processed", "was received and processed"),
        Disposition::Dispatched => (
            "Dispatched",
            "dispatched",
            "was delivered to its final destination",
        ),
        Disposition::Displayed => ("Displayed", "displayed", "was displayed to the recipient"),
        Disposition::Failed => ("Failed", "failed", "could not be processed"),
        Disposition::Denied => ("Denied", "denied", "was refused by the recipient"),
        Disposition::Error => (
            "Error",
            "processed/error",
            "could not be processed because of an error",
        ),
    };

    let mut m = String::with_capacity(1536);
    m.push_str(&format!("From: {final_recipient}\r\n"));
    m.push_str(&format!("To: {to}\r\n"));
    if subject.is_empty() {
        m.push_str(&format!("Subject: {label}\r\n"));
    } else {
        m.push_str(&format!("Subject: {label}: {subject}\r\n"));
    }
    m.push_str(&format!(
        "Date: {}\r\n",
        crate::timefmt::rfc5322(SystemTime::now())
    ));
    m.push_str(&format!("Message-ID: <{token}.mdn@{domain}>\r\n"));
    m.push_str(&format!("In-Reply-To: {original_id}\r\n"));
    m.push_str(&format!("References: {original_id}\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&format!(
        "The message {original_id} sent to {final_recipient} {sentence}.\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: message/disposition-notification\r\n\r\n");
    m.push_str(&format!("Reporting-UA: {}\r\n", clean(reporting_ua)));
    if let Some(orig) = &original.original_recipient {
        m.push_str(&format!("Original-Recipient: rfc822; {}\r\n", clean(orig)));
    }
    m.push_str(&format!("Final-Recipient: rfc822; {final_recipient}\r\n"));
    m.push_str(&format!("Original-Message-ID: {original_id}\r\n"));
    m.push_str(&format!(
        "Disposition: automatic-action/MDN-sent-automatically; {disposition}\r\n"
    ));
    if kind == Disposition::Dispatched && final_delivery_ext {
        m.push_str(&format!("{FINAL_DELIVERY_FIELD}: \r\n"));
    }
    m.push_str(&format!("\r\n--{boundary}--\r\n"));
    m.into_bytes()
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn bracketed(id: &str) -> String {
    if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    }
}
