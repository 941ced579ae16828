//! Message Disposition Notifications (RFC 8098) and Delivery Status Notifications (RFC 3464)
//! as the Implementation Guide for Delivery Notification in Direct uses them: building the
//! processed/dispatched/failure MDNs a receiver owes, and reading whatever real senders return,
//! including the malformed variants ONC's Edge Testing Tool sends.

mod build;
mod error;
mod parse;

use serde::Serialize;

pub use build::build_mdn;
pub use error::MdnError;
pub use parse::{is_report, parse_report, wants_final_delivery};

/// The extension field and disposition-notification option that ask for, and confirm,
/// delivery to the final destination.
pub const FINAL_DELIVERY_FIELD: &str = "X-DIRECT-FINAL-DESTINATION-DELIVERY";

/// An MDN disposition, as sent and as understood on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Decrypted and trusted by the receiving HISP.
    Processed,
    /// Handed to the final destination (sent with the extension field when asked for).
    Dispatched,
    Failed,
    /// A read receipt.
    Displayed,
    Denied,
    Error,
}

impl Disposition {
    /// Whether this disposition ends the recipient with a failure.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Disposition::Failed | Disposition::Denied | Disposition::Error
        )
    }
}

/// What the receiver knows about the message it is answering.
#[derive(Debug, Clone)]
pub struct OriginalInfo {
    pub message_id: String,
    /// The address as the sender wrote it, if different from the final one.
    pub original_recipient: Option<String>,
    /// The local address that received the message; the MDN is sent from it.
    pub final_recipient: String,
    pub subject: Option<String>,
    /// The original sender; the MDN goes to it.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Mdn,
    Dsn,
}

/// Where the original Message-ID of a report was found, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationSource {
    OriginalMessageId,
    XOriginalMessageId,
    InReplyTo,
    /// The Message-ID of the returned original in a DSN's third part.
    ReturnedHeaders,
}

/// A DSN per-recipient Action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DsnAction {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
    Other(String),
}

/// What a report says about one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecipientReport {
    /// Address with the `rfc822;` type stripped and lower-cased, so it compares directly with
    /// the recipient as submitted.
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    pub disposition: Option<Disposition>,
    /// The Disposition field as received, for logs.
    pub disposition_raw: Option<String>,
    /// The `X-DIRECT-FINAL-DESTINATION-DELIVERY` extension field was present.
    pub final_delivery_ext: bool,
    pub action: Option<DsnAction>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl RecipientReport {
    /// A failed/denied/error MDN or a failed DSN: the recipient's final, negative outcome.
    pub fn is_failure(&self) -> bool {
        self.disposition.is_some_and(Disposition::is_failure)
            || self.action == Some(DsnAction::Failed)
    }
}

/// A parsed MDN or DSN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub kind: ReportKind,
    /// The Message-ID of the message this report is about, angle brackets kept.
    pub original_message_id: Option<String>,
    pub correlation: Option<CorrelationSource>,
    /// Reporting-UA (MDN) or Reporting-MTA (DSN).
    pub reporting_agent: Option<String>,
    /// The report's own From address, lower-cased.
    pub from: Option<String>,
    /// The report's own Message-ID.
    pub message_id: Option<String>,
    pub recipients: Vec<RecipientReport>,
    /// Non-fatal defects; the fields above are still as good as the report allowed.
    pub problems: Vec<MdnError>,
}
