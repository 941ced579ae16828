use serde::Serialize;
use thiserror::Error;

/// Problems found in a delivery report. [`super::parse_report`] fails outright only when the
/// input is not a report at all; the rest are collected in [`super::Report::problems`] so a
/// malformed but correlatable report still completes its recipient.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum MdnError {
    #[error("not an MDN or DSN (Content-Type: {found})")]
    NotAReport { found: String },
    #[error("multipart/report has no disposition-notification or delivery-status part")]
    MissingReportPart,
    #[error("report part could not be decoded")]
    UndecodableReport,
    #[error("MDN has no Disposition field")]
    MissingDisposition,
    #[error("Disposition {value:?} is not understood")]
    BadDisposition { value: String },
    #[error("no Original-Message-ID, X-Original-Message-ID or In-Reply-To to correlate with")]
    NoCorrelation,
    #[error("report has no Final-Recipient")]
    MissingFinalRecipient,
    #[error("DSN recipient {recipient:?} has no Action")]
    MissingAction { recipient: Option<String> },
}
