//! Accounts and their passes: one session per account whose backoff allows it, and the
//! backoff itself.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::session::SessionError;
use super::{Daemon, DaemonError};
use crate::config::Account;
use crate::store::StoreError;

/// What one pass over the accounts did (for logs, the systemd status line and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub accounts_polled: usize,
    pub sent: usize,
    pub received: usize,
    pub duplicates: usize,
    pub statuses: usize,
    pub quarantined: usize,
    pub mdns_sent: usize,
    pub errors: usize,
    /// An account still had items waiting when its session hit its bounds.
    pub more_waiting: bool,
}

impl PassSummary {
    pub(super) fn counts(&self) -> crate::store::PollCounts {
        crate::store::PollCounts {
            accounts_polled: self.accounts_polled,
            received: self.received,
            sent: self.sent,
            statuses: self.statuses,
            quarantined: self.quarantined,
            errors: self.errors,
        }
    }

    pub(super) fn add(&mut self, o: PassSummary) {
        self.accounts_polled += o.accounts_polled;
        self.sent += o.sent;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.statuses += o.statuses;
        self.quarantined += o.quarantined;
        self.mdns_sent += o.mdns_sent;
        self.more_waiting |= o.more_waiting;
        self.errors += o.errors;
    }
}

pub(super) struct AccountState {
    pub(super) account: Account,
    pub(super) failures: u32,
    pub(super) not_before: Instant,
}

pub(super) fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// Backoff for an unavailable store: the account backoff's start, but capped low, since nothing
/// moves while the store is away and an operator's fix should take effect soon.
pub(super) fn store_backoff(d: &crate::config::DaemonConfig, failures: u32) -> Duration {
    backoff(
        d.backoff_initial,
        d.backoff_max.min(Duration::from_secs(30)),
        failures,
    )
}

impl Daemon {
    /// Outbox rows whose sender no configured account covers can never be sent.
    fn give_up_orphans(&mut self) -> Result<(), DaemonError> {
        for id in self.store.due_outgoing()? {
            let msg = self.store.load_outgoing(id)?;
            if self.config.account_for(&msg.sender).is_none() {
                let reason = format!("no configured account sends for {}", msg.sender);
                tracing::warn!(msg_id = id, "{reason}");
                self.store.record_send_failure(id, &reason, "", true)?;
            }
        }
        Ok(())
    }

    /// One pass over every account whose backoff allows it. With `inbound` false only accounts
    /// with due outbox messages are contacted, and only to send.
    pub async fn pass(&mut self, inbound: bool) -> Result<PassSummary, DaemonError> {
        self.give_up_orphans()?;
        let mut total = PassSummary::default();
        for i in 0..self.accounts.len() {
            if self.shutdown.requested() {
                break;
            }
            if Instant::now() < self.accounts[i].not_before {
                continue;
            }
            let due = self.due_for(&self.accounts[i].account)?;
            if !inbound && due.is_empty() {
                continue;
            }
            let started = Instant::now();
            let account = self.accounts[i].account.clone();
            let result = self.session(&account, &due, inbound).await;
            match result {
                Ok(summary) => {
                    self.accounts[i].failures = 0;
                    let m = &self.metrics;
                    m.poll_succeeded(&account.address, started.elapsed());
                    m.sent.fetch_add(summary.sent as u64, Relaxed);
                    m.received.fetch_add(summary.received as u64, Relaxed);
                    m.duplicates.fetch_add(summary.duplicates as u64, Relaxed);
                    m.statuses.fetch_add(summary.statuses as u64, Relaxed);
                    // A quiet daemon is quiet: polls that moved nothing are debug, and the
                    // periodic summary at info says the daemon is alive.
                    let moved = summary.sent
                        + summary.received
                        + summary.duplicates
                        + summary.statuses
                        + summary.quarantined
                        + summary.mdns_sent
                        > 0;
                    let ms = started.elapsed().as_millis() as u64;
                    if moved {
                        tracing::info!(account = %account.address, sent = summary.sent, received = summary.received, duplicates = summary.duplicates, statuses = summary.statuses, ms, "poll complete");
                    } else {
                        tracing::debug!(account = %account.address, ms, "poll complete, nothing new");
                    }
                    total.add(summary);
                }
                Err(SessionError::Store(e)) => return Err(e.into()),
                Err(SessionError::NoAgent) => return Err(DaemonError::NoAgent),
                Err(SessionError::Hisp(e)) => {
                    self.note_unreadable(&account.address, &e);
                    let state = &mut self.accounts[i];
                    state.failures += 1;
                    self.metrics.session_errors.fetch_add(1, Relaxed);
                    let d = &self.config.daemon;
                    let delay = if e.is_permanent() {
                        d.backoff_max
                    } else {
                        backoff(d.backoff_initial, d.backoff_max, state.failures)
                    };
                    state.not_before = Instant::now() + delay;
                    tracing::error!(account = %account.address, error = %e, retry_in_ms = delay.as_millis() as u64, "HISP session failed");
                    total.errors += 1;
                }
            }
            total.accounts_polled += 1;
        }
        Ok(total)
    }

    pub(super) fn due_for(&self, account: &Account) -> Result<Vec<i64>, StoreError> {
        let mut due = Vec::new();
        for id in self.store.due_outgoing()? {
            let msg = self.store.load_outgoing(id)?;
            if self
                .config
                .account_for(&msg.sender)
                .is_some_and(|a| a.address == account.address)
            {
                due.push(id);
            }
        }
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let (i, m) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 1), Duration::from_secs(1));
        assert_eq!(backoff(i, m, 2), Duration::from_secs(2));
        assert_eq!(backoff(i, m, 4), Duration::from_secs(8));
        assert_eq!(backoff(i, m, 7), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 1000), Duration::from_secs(60));
    }
}
