//! Runs extraction over received attachments after their message is committed. A failure is
//! recorded on the attachment with its reason; it never loses or blocks the message.

use crate::ingest::{ingest_bytes, Extracted, Limits};
use crate::store::{IngestTally, PendingAttachment, Store, StoreError};

/// How many pending attachments one call takes, so a large backlog does not starve the poller.
pub const BATCH: usize = 32;

/// How many bytes of attachments one call holds at most (one larger attachment goes alone): 32
/// messages at the usual 20 MB ceiling would otherwise be held at once, ~640 MB.
pub const BATCH_BYTES: u64 = 16 << 20;

/// Ingests up to [`BATCH`] attachments (and [`BATCH_BYTES`]) waiting in the store: each is
/// extracted outside any transaction, then the batch's rows and states are committed together.
/// Returns how many attachments were processed.
pub fn ingest_pending(
    store: &mut Store,
    limits: &Limits,
) -> Result<(usize, IngestTally), StoreError> {
    let pending = store.pending_attachments(BATCH, BATCH_BYTES)?;
    let batch: Vec<_> = pending
        .iter()
        .map(|att| {
            let outcome =
                ingest_bytes(&att.data, &att.declared_type, Some(&att.filename), limits)
                    .map_err(|e| {
                        tracing::warn!(attachment = att.id, error_kind = %e.kind(), "attachment not ingested");
                        e.to_string()
                    });
            (att, outcome)
        })
        .collect();
    let tallies = match store.record_attachment_extractions(&batch) {
        Ok(tallies) => tallies,
        Err(e) if e.is_transient() => return Err(e),
        Err(_) => record_one_by_one(store, &batch)?,
    };
    let mut total = IngestTally::default();
    for ((att, outcome), t) in batch.iter().zip(tallies) {
        if outcome.is_ok() && !t.failures.is_empty() {
            tracing::warn!(
                attachment = att.id,
                failures = t.failures.len(),
                "attachment not wholly ingested"
            );
        }
        total.documents += t.documents;
        total.already_stored += t.already_stored;
        total.other += t.other;
        total.failures.extend(t.failures);
    }
    Ok((pending.len(), total))
}

/// After the store refused a batch for a reason that does not pass by itself: each attachment
/// is recorded alone, and one the store refuses alone is marked failed with the store's reason,
/// so that it cannot hold back every batch after it (the daemon would otherwise stop on it at
/// every start). A transient error still leaves the rest pending.
fn record_one_by_one(
    store: &mut Store,
    batch: &[(&PendingAttachment, Result<Vec<Extracted>, String>)],
) -> Result<Vec<IngestTally>, StoreError> {
    let mut tallies = Vec::with_capacity(batch.len());
    for item in batch {
        match store.record_attachment_extractions(std::slice::from_ref(item)) {
            Ok(mut one) => tallies.append(&mut one),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                let reason = format!("the store refused its rows: {e}");
                tracing::warn!(attachment = item.0.id, error = %e, "attachment refused by the store");
                store.mark_ingest_failed(item.0.id, &reason)?;
                tallies.push(IngestTally {
                    failures: vec![reason],
                    ..IngestTally::default()
                });
            }
        }
    }
    Ok(tallies)
}
