//! One session with an account's HISP: send what is due, take in what waits, answer the MDNs
//! owed. Nothing is acknowledged before it is committed.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::accounts::{backoff, PassSummary};
use super::{rfc3339_in, Daemon};
use crate::config::Account;
use crate::hisp::edge::client::EdgeClient;
use crate::hisp::edge::EdgeTransport;
use crate::hisp::phimail::PhiMailClient;
use crate::hisp::{HispError, Transport};
use crate::message::{Inbound, RejectedMail};
use crate::store::{SendAttempt, StoreError, StoreOutcome};

/// Bounds on one session's inbound drain; what is left is taken at the next turn, right away.
const MAX_ITEMS_PER_SESSION: usize = 200;
const SESSION_BUDGET: Duration = Duration::from_secs(30);

impl Daemon {
    pub(super) async fn session(
        &mut self,
        account: &Account,
        due: &[i64],
        inbound: bool,
    ) -> Result<PassSummary, SessionError> {
        if let Some(edge) = &account.edge {
            let agent = self.agent.clone().ok_or(SessionError::NoAgent)?;
            let client = EdgeClient::new(edge.clone()).map_err(HispError::from)?;
            let mut transport = EdgeTransport::new(client, agent, &account.address);
            let outcome = self.work(&mut transport, account, due, inbound).await;
            transport.close().await;
            outcome
        } else {
            let mut client = PhiMailClient::connect(&account.connect).await?;
            client.skip = self.given_up_for(&account.address);
            let outcome = self.work(&mut client, account, due, inbound).await;
            client.close().await;
            outcome
        }
    }

    /// One session's work on an open transport: send what is due, take in what waits, answer
    /// the MDNs owed.
    async fn work<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        due: &[i64],
        inbound: bool,
    ) -> Result<PassSummary, SessionError> {
        let mut summary = PassSummary::default();
        self.send_due(transport, account, due, &mut summary).await?;
        if inbound {
            self.drain_inbound(transport, account, &mut summary).await?;
        }
        self.send_mdns(transport, account, &mut summary).await?;
        Ok(summary)
    }

    async fn send_due<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        due: &[i64],
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        for &id in due {
            if self.shutdown.requested() {
                break;
            }
            let msg = self.store.load_outgoing(id)?;
            if msg.recipients.is_empty() {
                continue;
            }
            let attempts =
                self.store
                    .begin_attempt(id, &account.address, account.transport_name())?;
            match transport.send(&msg).await {
                Ok(report) => {
                    let d = &self.config.daemon;
                    let retry_at = rfc3339_in(backoff(d.backoff_initial, d.backoff_max, attempts));
                    let give_up = attempts >= d.max_send_attempts;
                    let deferred = self
                        .must_commit("a submission", |s| {
                            s.record_send_report(id, &report, &retry_at)
                        })
                        .await?;
                    if deferred > 0 && give_up {
                        self.must_commit("a submission", |s| {
                            s.record_send_failure(
                                id,
                                "recipients kept being deferred",
                                &retry_at,
                                true,
                            )
                        })
                        .await?;
                    }
                    summary.sent += 1;
                    tracing::info!(msg_id = id, account = %account.address, recipients = report.recipients.len(), deferred, "message submitted");
                }
                Err(e) => {
                    self.metrics.send_failures.fetch_add(1, Relaxed);
                    let d = &self.config.daemon;
                    let give_up = attempts >= d.max_send_attempts;
                    let retry_at = rfc3339_in(backoff(d.backoff_initial, d.backoff_max, attempts));
                    let reason = e.to_string();
                    let outcome = self
                        .store
                        .record_send_failure(id, &reason, &retry_at, give_up)?;
                    tracing::warn!(msg_id = id, attempts, gave_up = (outcome == SendAttempt::GaveUp), error = %e, "send failed");
                    // A refusal leaves the connection usable; anything else ends the session.
                    if !matches!(e, HispError::Refused { .. }) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }

    async fn drain_inbound<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        let started = Instant::now();
        let mut taken = 0;
        while !self.shutdown.requested() {
            // A HISP that keeps receiving mail would otherwise hold this session forever: the
            // outbox, other accounts, ingestion, signals and the watchdog would all wait.
            if taken >= MAX_ITEMS_PER_SESSION || started.elapsed() >= SESSION_BUDGET {
                summary.more_waiting = true;
                break;
            }
            let Some(item) = transport.next_inbound().await? else {
                break;
            };
            taken += 1;
            match &item {
                Inbound::Status(notices) => {
                    for n in notices {
                        let outcome = self.store.record_status(&account.address, n)?;
                        if !outcome.matched {
                            tracing::warn!(account = %account.address, hisp_id = %n.hisp_id, source = n.source.as_str(), "notification for a message we do not know; recorded and acknowledged");
                        }
                        summary.statuses += 1;
                    }
                }
                Inbound::Mail(m) => match self.store.store_incoming(&account.address, m) {
                    Ok(StoreOutcome::New(id)) => {
                        summary.received += 1;
                        tracing::info!(msg_id = id, account = %account.address, hisp_id = %m.hisp_id, attachments = m.attachments.len(), "message received");
                        if !account.covers(&m.recipient) {
                            // A shared mailbox holds mail for someone no account serves: kept,
                            // but it has not reached its destination, so its sender learns so.
                            let owed = self.store.owe_mdn(id, crate::mdn::Disposition::Failed)?;
                            tracing::warn!(msg_id = id, account = %account.address, failed_mdn_owed = owed, "mail for an address this account does not serve; stored, not delivered");
                        }
                    }
                    Ok(StoreOutcome::Duplicate(id)) => {
                        summary.duplicates += 1;
                        tracing::info!(msg_id = id, hisp_id = %m.hisp_id, "redelivery of a stored message");
                    }
                    Err(e) if e.is_transient() => return Err(e.into()),
                    Err(e) => {
                        // It will fail the same way every time: keep what can be kept, owe the
                        // sender a failed MDN, and let the queue move on.
                        let rejected = RejectedMail {
                            hisp_id: m.hisp_id.clone(),
                            recipient: m.recipient.clone(),
                            sender: m.sender.clone(),
                            raw: m.raw.clone().unwrap_or_default(),
                            reason: format!("cannot be stored: {e}"),
                            mdn: m.mdn.clone(),
                        };
                        let id = self.store.store_rejected(&account.address, &rejected)?.id();
                        summary.quarantined += 1;
                        tracing::error!(msg_id = id, account = %account.address, error = %e, "message cannot be stored; quarantined");
                    }
                },
                Inbound::Rejected(r) => {
                    let id = self.store.store_rejected(&account.address, r)?.id();
                    self.quarantined(&account.address, &r.hisp_id, id);
                    summary.quarantined += 1;
                    // The reason names algorithms and certificates, never content.
                    tracing::warn!(msg_id = id, account = %account.address, reason = %r.reason, "message quarantined");
                }
            }
            // Committed above, into the file the next start will open; only now may the HISP
            // forget the item.
            self.store.check_in_place()?;
            transport.acknowledge(&item).await?;
        }
        Ok(())
    }

    /// Sends the MDNs this account owes. A failure is recorded on the MDN and retried at the
    /// next session; it does not end this one unless the connection is gone.
    async fn send_mdns<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        self.store.owe_dispatched_mdns()?;
        for job in self.store.unsent_mdns(&account.address)? {
            if self.shutdown.requested() {
                break;
            }
            match transport.send_mdn(&job).await {
                Ok(()) => {
                    self.must_commit("an MDN sent", |s| s.mdn_sent(job.id))
                        .await?;
                    summary.mdns_sent += 1;
                }
                Err(e) => {
                    self.store.mdn_failed(job.id, &e.to_string())?;
                    tracing::warn!(account = %account.address, error = %e, "MDN not sent; will retry");
                    if !matches!(e, HispError::Refused { .. }) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) enum SessionError {
    Hisp(HispError),
    Store(StoreError),
    /// An edge account without a loaded security agent (prevented by config validation).
    NoAgent,
}

impl From<HispError> for SessionError {
    fn from(e: HispError) -> Self {
        SessionError::Hisp(e)
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}
