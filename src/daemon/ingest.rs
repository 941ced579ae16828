//! Runs extraction over received attachments after their message is committed. A failure is
//! recorded on the attachment with its reason; it never loses or blocks the message.

use crate::ingest::{ingest_bytes, Limits};
use crate::store::{IngestTally, Store, StoreError};

/// How many pending attachments one call takes, so a large backlog does not starve the poller.
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
