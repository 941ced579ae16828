//! Runs extraction over received attachments after their message is committed. A failure is
//! recorded on the attachment with its reason; it never loses or blocks the message.
//!
//! In the daemon this is its own worker ([`Ingester`]): a blocking thread with its own store
//! connection, so a backlog of large documents is extracted while sessions go on receiving, and
//! a slow session never holds ingestion back.

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use super::Shutdown;
use crate::ingest::{ingest_bytes, Limits};
use crate::store::{IngestTally, Store, StoreError};

/// How many pending attachments one call takes, so shutdown is noticed between batches.
pub const BATCH: usize = 32;

/// Ingests attachments waiting in the store. Returns how many attachments were processed.
pub fn ingest_pending(
    store: &mut Store,
    limits: &Limits,
) -> Result<(usize, IngestTally), StoreError> {
    let mut total = IngestTally::default();
    let pending = store.pending_attachments(BATCH)?;
    for att in &pending {
        match ingest_bytes(&att.data, &att.declared_type, Some(&att.filename), limits) {
            Ok(extracted) => {
                let t = store.record_extraction(Some(att), None, &extracted)?;
                if !t.failures.is_empty() {
                    tracing::warn!(
                        attachment = att.id,
                        failures = t.failures.len(),
                        "attachment partly ingested"
                    );
                }
                total.documents += t.documents;
                total.already_stored += t.already_stored;
                total.other += t.other;
                total.failures.extend(t.failures);
            }
            Err(e) => {
                tracing::warn!(attachment = att.id, error_kind = %e.kind(), "attachment not ingested");
                store.mark_ingest_failed(att.id, &e.to_string())?;
                total.failures.push(e.to_string());
            }
        }
    }
    Ok((pending.len(), total))
}

/// The ingestion worker; [`Ingester::finish`] ends it after the batch in hand.
pub(super) struct Ingester {
    wake: SyncSender<()>,
    worker: tokio::task::JoinHandle<()>,
}

impl Ingester {
    /// Starts the worker on `store` (a connection of its own). It looks for pending attachments
    /// when woken and at least every `idle`, so work left by a crash or a missed wake-up is
    /// still found.
    pub(super) fn spawn(
        mut store: Store,
        limits: Limits,
        shutdown: Shutdown,
        idle: Duration,
        retry: impl Fn(u32) -> Duration + Send + 'static,
    ) -> Ingester {
        // One slot: wake-ups that arrive while a batch runs collapse into one more look.
        let (wake, woken) = mpsc::sync_channel(1);
        let worker = tokio::task::spawn_blocking(move || {
            let mut failures = 0u32;
            while !shutdown.requested() {
                let wait = match store
                    .check_in_place()
                    .and_then(|()| ingest_pending(&mut store, &limits))
                {
                    Ok((attachments, tally)) => {
                        failures = 0;
                        if attachments > 0 {
                            tracing::info!(
                                attachments,
                                documents = tally.documents,
                                already_stored = tally.already_stored,
                                failures = tally.failures.len(),
                                "ingested"
                            );
                        }
                        if attachments == BATCH {
                            continue;
                        }
                        idle
                    }
                    // The run loop meets the same store and decides whether the daemon stops;
                    // here the attachments simply stay pending until the store answers again.
                    Err(e) => {
                        failures += 1;
                        let wait = retry(failures);
                        tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "ingestion cannot use the store; retrying");
                        wait
                    }
                };
                match woken.recv_timeout(wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        });
        Ingester { wake, worker }
    }

    /// Asks the worker to look for pending attachments now (after a session stored some).
    pub(super) fn wake(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Ends the worker after the batch in hand and waits for it.
    pub(super) async fn finish(self) {
        drop(self.wake);
        if let Err(e) = self.worker.await {
            tracing::error!(error = %e, "the ingestion worker ended abnormally");
        }
    }
}
