//! The unreadable-message policy in one place: a message that keeps failing to be read is
//! counted per (account, HISP id), and once it failed often enough over long enough it is
//! quarantined unread and acknowledged, so the queue behind it moves on. phiMail has no negative
//! acknowledgement, so that acknowledgement may make the HISP report the message delivered:
//! this is loud (an error log, a metric, first in `directd messages`).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::Daemon;
use crate::hisp::HispError;

/// Failed reads of one message: it is quarantined unread once there were enough of them over a
/// long enough time (`daemon.unreadable_retries`, `daemon.unreadable_giveup_secs`).
pub(super) struct Unreadable {
    failures: u32,
    first: Instant,
    reason: String,
}

impl Unreadable {
    pub(super) fn given_up(&self, d: &crate::config::DaemonConfig) -> bool {
        self.failures >= d.unreadable_retries && self.first.elapsed() >= d.unreadable_giveup
    }
}

impl Daemon {
    /// Counts a failure to read one message. Connection trouble in the middle of one message
    /// counts too: a part that is always cut off is as unreadable as a malformed one.
    pub(super) fn note_unreadable(&mut self, account: &str, e: &HispError) {
        let HispError::MailUnreadable { hisp_id, source } = e else {
            return;
        };
        let entry = self
            .unreadable
            .entry((account.to_owned(), hisp_id.clone()))
            .or_insert_with(|| Unreadable {
                failures: 0,
                first: Instant::now(),
                reason: String::new(),
            });
        entry.failures += 1;
        entry.reason = source.to_string();
        if entry.given_up(&self.config.daemon) {
            tracing::error!(account = %account, hisp_id = %hisp_id, failures = entry.failures, "message cannot be read; it will be quarantined UNREAD and acknowledged, and the HISP may then report it delivered to its sender");
        }
    }

    /// The messages of `account` given up on, with the last reason: the transport hands them
    /// over as rejected without reading them.
    pub(super) fn given_up_for(&self, account: &str) -> HashMap<String, String> {
        self.unreadable
            .iter()
            .filter(|((a, _), u)| a == account && u.given_up(&self.config.daemon))
            .map(|((_, id), u)| (id.clone(), u.reason.clone()))
            .collect()
    }

    /// A quarantine was committed; if it was one given up on, say so loudly.
    pub(super) fn quarantined(&mut self, account: &str, hisp_id: &str, msg_id: i64) {
        if self
            .unreadable
            .remove(&(account.to_owned(), hisp_id.to_owned()))
            .is_some()
        {
            self.metrics.quarantined_unread.fetch_add(1, Relaxed);
            tracing::error!(msg_id, account = %account, hisp_id = %hisp_id, "message quarantined UNREAD; directd shows it first in `directd messages`");
        }
    }
}
