//! The per-recipient delivery state machine (see docs/architecture.md, "Delivery states").
//!
//! Events arrive from several sources (SEND replies, phiMail STATUS lines, later MDNs and DSNs,
//! local timeouts) and may be duplicated or arrive late; this module alone decides whether an
//! event moves a recipient, so every source gets the same rules.

use serde::Serialize;

use crate::message::{NoticeSource, StatusNotice};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Queued,
    Submitted,
    Processed,
    Dispatched,
    Displayed,
    Failed,
    TimedOut,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Submitted => "submitted",
            DeliveryState::Processed => "processed",
            DeliveryState::Dispatched => "dispatched",
            DeliveryState::Displayed => "displayed",
            DeliveryState::Failed => "failed",
            DeliveryState::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => DeliveryState::Queued,
            "submitted" => DeliveryState::Submitted,
            "processed" => DeliveryState::Processed,
            "dispatched" => DeliveryState::Dispatched,
            "displayed" => DeliveryState::Displayed,
            "failed" => DeliveryState::Failed,
            "timed_out" => DeliveryState::TimedOut,
            _ => return None,
        })
    }

    /// A final outcome: nothing but a read receipt may follow it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Dispatched
                | DeliveryState::Displayed
                | DeliveryState::Failed
                | DeliveryState::TimedOut
        )
    }

    fn rank(self) -> u8 {
        match self {
            DeliveryState::Queued => 0,
            DeliveryState::Submitted => 1,
            DeliveryState::Processed => 2,
            DeliveryState::Dispatched => 3,
            DeliveryState::Displayed => 4,
            DeliveryState::Failed | DeliveryState::TimedOut => 5,
        }
    }
}

/// Whether `next` (reported by some source) moves a recipient currently in `current`.
///
/// Progress only goes forward; exactly one final outcome is kept (a late `dispatched` after a
/// local timeout does not resurrect the recipient, a duplicate STATUS changes nothing), except
/// that a read receipt may follow `dispatched`.
pub fn transition(current: DeliveryState, next: DeliveryState) -> bool {
    use DeliveryState::*;
    match (current, next) {
        (Dispatched, Displayed) => true,
        (c, _) if c.is_final() => false,
        (_, Queued) => false,
        (c, n) => n.rank() > c.rank(),
    }
}

/// Maps a phiMail `STATUS` code to a state; unknown codes are recorded but move nothing.
pub fn from_phimail_status(code: &str) -> Option<DeliveryState> {
    match code.to_ascii_lowercase().as_str() {
        "dispatched" => Some(DeliveryState::Dispatched),
        "failed" => Some(DeliveryState::Failed),
        _ => None,
    }
}

/// Maps any delivery notification to the state it reports, given whether the sender asked for
/// final delivery. Follows the Delivery Notification IG: with the option, only a `dispatched`
/// MDN carrying X-DIRECT-FINAL-DESTINATION-DELIVERY is final success (one without it counts as
/// `processed`); failed/denied/error MDNs and failed DSNs are failures; other DSN actions
/// (delayed, delivered, relayed) move nothing.
pub fn from_notice(n: &StatusNotice, final_requested: bool) -> Option<DeliveryState> {
    let code = n.code.to_ascii_lowercase();
    match n.source {
        NoticeSource::Phimail => from_phimail_status(&code),
        NoticeSource::Mdn => match code.as_str() {
            "processed" => Some(DeliveryState::Processed),
            "dispatched" if final_requested && !n.final_delivery_ext => {
                Some(DeliveryState::Processed)
            }
            "dispatched" => Some(DeliveryState::Dispatched),
            "displayed" => Some(DeliveryState::Displayed),
            "failed" | "denied" | "error" => Some(DeliveryState::Failed),
            _ => None,
        },
        NoticeSource::Dsn if code == "failed" => Some(DeliveryState::Failed),
        NoticeSource::Dsn => None,
    }
}

/// Whether nothing more is expected for a recipient: a final state, or, when final delivery was
/// not requested, the last notification such a message gets (phiMail: accepted; S/MIME: the
/// processed MDN).
pub fn is_complete(state: DeliveryState, final_requested: bool, transport: &str) -> bool {
    state.is_final()
        || (!final_requested
            && match transport {
                "edge" => state == DeliveryState::Processed,
                _ => matches!(state, DeliveryState::Submitted | DeliveryState::Processed),
            })
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::*;
    use super::*;

    #[test]
    fn forward_only_with_one_final_outcome() {
        assert!(transition(Queued, Submitted));
        assert!(transition(Submitted, Dispatched));
        assert!(transition(Submitted, Processed));
        assert!(transition(Processed, Dispatched));
        assert!(transition(Dispatched, Displayed));
        assert!(transition(Submitted, Failed));
        assert!(transition(Processed, TimedOut));
        assert!(!transition(Processed, Submitted));
        assert!(!transition(Dispatched, Dispatched));
        assert!(!transition(Dispatched, Failed));
        assert!(!transition(TimedOut, Dispatched));
        assert!(!transition(Failed, Displayed));
        assert!(!transition(Submitted, Queued));
        for s in [
            Queued, Submitted, Processed, Dispatched, Displayed, Failed, TimedOut,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(from_phimail_status("DISPATCHED"), Some(Dispatched));
        assert_eq!(from_phimail_status("delayed"), None);
    }

    fn notice(source: NoticeSource, code: &str, ext: bool) -> StatusNotice {
        StatusNotice {
            hisp_id: "<m@x>".into(),
            recipient: None,
            code: code.into(),
            info: String::new(),
            source,
            final_delivery_ext: ext,
        }
    }

    #[test]
    fn mdn_and_dsn_mapping_follows_the_ig() {
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "processed", false), true),
            Some(Processed)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "dispatched", true), true),
            Some(Dispatched)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "dispatched", false), true),
            Some(Processed)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "dispatched", false), false),
            Some(Dispatched)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "Denied", false), true),
            Some(Failed)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Mdn, "displayed", false), true),
            Some(Displayed)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Dsn, "failed", false), true),
            Some(Failed)
        );
        assert_eq!(
            from_notice(&notice(NoticeSource::Dsn, "delayed", false), true),
            None
        );
        assert!(is_complete(Processed, false, "edge"));
        assert!(!is_complete(Processed, true, "edge"));
        assert!(!is_complete(Submitted, false, "edge"));
        assert!(is_complete(Submitted, false, "phimail"));
        assert!(is_complete(TimedOut, true, "phimail"));
    }
}
