//! The per-recipient delivery state machine (see docs/ARCHITECTURE.md, "Delivery states").
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

/// Which of the two configured windows a wait is held to (`daemon.processed_timeout_secs`,
/// `daemon.dispatched_timeout_secs`); both count from submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Processed,
    Dispatched,
}

/// A notification a submitted recipient still waits for: who waits (transport, whether final
/// delivery was requested, which states), for how long, and the reason recorded when it is given
/// up as `timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Only recipients of messages sent over this transport; `None` for every transport.
    pub transport: Option<&'static str>,
    /// Only recipients whose sender asked for final delivery.
    pub final_requested: bool,
    /// The states in which the recipient is still waiting.
    pub states: &'static [DeliveryState],
    pub window: Window,
    pub reason: &'static str,
}

/// The timeout policy, first match first: an S/MIME (edge) recipient waits for its processed MDN
/// (a phiMail HISP's acceptance is that confirmation already), and one whose sender asked for
/// final delivery waits for it. [`is_complete`] and the store's expiry both read this table.
pub const WAITS: [Wait; 2] = [
    Wait {
        transport: Some("edge"),
        final_requested: false,
        states: &[DeliveryState::Submitted],
        window: Window::Processed,
        reason: "no processed MDN in time",
    },
    Wait {
        transport: None,
        final_requested: true,
        states: &[DeliveryState::Submitted, DeliveryState::Processed],
        window: Window::Dispatched,
        reason: "no final delivery confirmation in time",
    },
];

impl Wait {
    pub fn applies(&self, state: DeliveryState, final_requested: bool, transport: &str) -> bool {
        self.transport.is_none_or(|t| t == transport)
            && (final_requested || !self.final_requested)
            && self.states.contains(&state)
    }
}

/// A [`Wait`] with its window resolved to a time: recipients of that wait submitted before
/// `cutoff` (RFC 3339, as the store keeps times) have waited too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub wait: Wait,
    pub cutoff: String,
}

/// The policy at `now` for the configured windows, in [`WAITS`] order.
pub fn expiries(
    now: std::time::SystemTime,
    processed: std::time::Duration,
    dispatched: std::time::Duration,
) -> Vec<Expiry> {
    WAITS
        .iter()
        .map(|w| Expiry {
            wait: *w,
            cutoff: crate::timefmt::rfc3339(
                now - match w.window {
                    Window::Processed => processed,
                    Window::Dispatched => dispatched,
                },
            ),
        })
        .collect()
}

/// Whether nothing more is expected for a recipient: a final state, or a submitted one that no
/// [`Wait`] applies to (without final delivery requested, phiMail's acceptance and S/MIME's
/// processed MDN are the last notification such a message gets).
pub fn is_complete(state: DeliveryState, final_requested: bool, transport: &str) -> bool {
    state.is_final()
        || (state != DeliveryState::Queued
            && !WAITS
                .iter()
                .any(|w| w.applies(state, final_requested, transport)))
}

/// What a recipient's delivery state means to the person who sent the message: the one word
/// `directd messages` and `directd status` show, and what `status --wait` exits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Final delivery confirmed, and the recipient's system sent a read receipt.
    Read,
    /// Final delivery confirmed (phiMail `STATUS dispatched`, or a dispatched MDN).
    Dispatched,
    /// Taken by the HISP (or processed by the recipient's security agent) and, as final delivery
    /// was not requested, nothing more is expected.
    Accepted,
    /// Failed, or timed out waiting for a confirmation: it did not (knowingly) arrive.
    Failed,
    /// A confirmation is still expected.
    Pending,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Pending,
        Outcome::Failed,
        Outcome::Accepted,
        Outcome::Dispatched,
        Outcome::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Read => "read",
            Outcome::Dispatched => "dispatched",
            Outcome::Accepted => "accepted",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The outcome of one recipient. A state this directd does not know (a newer store) counts as
/// pending, which is never mistaken for success.
pub fn outcome(state: &str, final_requested: bool, transport: &str) -> Outcome {
    match DeliveryState::parse(state) {
        Some(DeliveryState::Failed | DeliveryState::TimedOut) => Outcome::Failed,
        Some(DeliveryState::Displayed) => Outcome::Read,
        Some(DeliveryState::Dispatched) => Outcome::Dispatched,
        Some(s) if is_complete(s, final_requested, transport) => Outcome::Accepted,
        _ => Outcome::Pending,
    }
}

/// A message's outcome at a glance: `pending 1/2`, `failed 1/1`, `dispatched 2/2`, `read 1/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageOutcome {
    /// The most pressing recipient outcome: pending, then failed, then the weakest success.
    pub state: Outcome,
    /// Recipients with that outcome (for a success: with that outcome or a better one).
    pub count: usize,
    pub total: usize,
    /// No recipient is pending: nothing but a read receipt can still change.
    pub complete: bool,
}

impl MessageOutcome {
    pub fn of(recipients: &[Outcome]) -> MessageOutcome {
        // Ordered Read < Dispatched < Accepted < Failed < Pending, so the maximum is the one
        // a sender must hear about first.
        let state = recipients.iter().copied().max().unwrap_or(Outcome::Pending);
        let count = match state {
            Outcome::Pending | Outcome::Failed => {
                recipients.iter().filter(|&&o| o == state).count()
            }
            _ => recipients.iter().filter(|&&o| o <= state).count(),
        };
        MessageOutcome {
            state,
            count,
            total: recipients.len(),
            complete: !recipients.is_empty() && state != Outcome::Pending,
        }
    }
}

impl std::fmt::Display for MessageOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.state.as_str(), self.count, self.total)
    }
}

/// Whether a transport can ever report `displayed` (a read receipt). phiMail's STATUS
/// notifications carry only `dispatched` and `failed`; S/MIME (edge) recipients may send a
/// displayed MDN, though the Direct specifications leave it optional for them.
pub fn reports_read_receipts(transport: &str) -> bool {
    transport == "edge"
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
        assert!(!is_complete(Queued, false, "phimail"));
        assert!(is_complete(Processed, false, "phimail"));
        assert!(!is_complete(Processed, true, "phimail"));
    }
    #[test]
    fn expiries_follow_the_waits_in_order() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(86_400);
        let e = expiries(now, Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].cutoff, "1970-01-01T23:59:00Z");
        assert_eq!(e[1].cutoff, "1970-01-01T23:00:00Z");
        assert!(e[0].wait.applies(Submitted, false, "edge"));
        assert!(e[0].wait.applies(Submitted, true, "edge"));
        assert!(!e[0].wait.applies(Submitted, false, "phimail"));
        assert!(!e[0].wait.applies(Processed, false, "edge"));
        assert!(e[1].wait.applies(Processed, true, "phimail"));
        assert!(!e[1].wait.applies(Processed, false, "edge"));
        assert!(!e[1].wait.applies(Dispatched, true, "edge"));
    }

    #[test]
    fn message_outcome_names_the_most_pressing_recipient() {
        use Outcome as O;
        let show = |o: &[Outcome]| MessageOutcome::of(o).to_string();
        assert_eq!(show(&[O::Dispatched, O::Dispatched]), "dispatched 2/2");
        assert_eq!(show(&[O::Failed]), "failed 1/1");
        assert_eq!(show(&[O::Pending, O::Dispatched]), "pending 1/2");
        assert_eq!(show(&[O::Read]), "read 1/1");
        assert_eq!(show(&[O::Read, O::Dispatched]), "dispatched 2/2");
        assert_eq!(show(&[O::Failed, O::Read, O::Pending]), "pending 1/3");
        assert_eq!(show(&[O::Failed, O::Dispatched]), "failed 1/2");
        assert!(MessageOutcome::of(&[O::Failed, O::Accepted]).complete);
        assert!(!MessageOutcome::of(&[O::Pending]).complete);
        assert_eq!(outcome("submitted", false, "phimail"), O::Accepted);
        assert_eq!(outcome("submitted", true, "phimail"), O::Pending);
        assert_eq!(outcome("submitted", false, "edge"), O::Pending);
        assert_eq!(outcome("timed_out", true, "edge"), O::Failed);
        assert_eq!(outcome("displayed", true, "edge"), O::Read);
        assert_eq!(outcome("from-the-future", false, "phimail"), O::Pending);
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}
