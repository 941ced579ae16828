//! Bookkeeping for the ingestion pipeline: which attachments wait, and recording what came out of
//! each in one transaction with the clinical rows.

use rusqlite::{params, OptionalExtension};

use super::clinical::{self, Source};
use super::{Store, StoreError};
use crate::ingest::{Content, Extracted};

pub struct PendingAttachment {
    pub id: i64,
    pub incoming_id: i64,
    pub filename: String,
    pub declared_type: String,
    pub data: Vec<u8>,
}

/// What one attachment (or file) yielded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestTally {
    /// Documents newly stored.
    pub documents: usize,
    /// Documents whose bytes were already stored (same sha256).
    pub already_stored: usize,
    /// Members that were not C-CDA (PDFs in an XDM, ...).
    pub other: usize,
    /// Members that failed, with the reason.
    pub failures: Vec<String>,
}

impl Store {
    /// The oldest attachments still to be ingested: at most `limit`, and no more than add up to
    /// `max_bytes` (the first is taken whatever its size), so that a burst of large messages is
    /// not all held in memory at once. Sizes are read first, without the bytes.
    pub fn pending_attachments(
        &self,
        limit: usize,
        max_bytes: u64,
    ) -> Result<Vec<PendingAttachment>, StoreError> {
        let query = || -> rusqlite::Result<Vec<PendingAttachment>> {
            let sizes: Vec<u64> = self
                .conn
                .prepare_cached(
                    "SELECT length(data) FROM attachments
                     WHERE ingest_state = 'pending' ORDER BY id LIMIT ?1",
                )?
                .query_map([limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut total = 0u64;
            let take = sizes
                .iter()
                .take_while(|&&size| {
                    total += size;
                    total <= max_bytes
                })
                .count()
                .max(sizes.len().min(1));
            self.conn
                .prepare_cached(
                    "SELECT id, incoming_id, filename, declared_type, data FROM attachments
                     WHERE ingest_state = 'pending' ORDER BY id LIMIT ?1",
                )?
                .query_map([take as i64], |r| {
                    Ok(PendingAttachment {
                        id: r.get(0)?,
                        incoming_id: r.get(1)?,
                        filename: r.get(2)?,
                        declared_type: r.get(3)?,
                        data: r.get(4)?,
                    })
                })?
                .collect()
        };
        query().map_err(|e| self.err(e))
    }

    /// Stores what came out of one source in one transaction: clinical rows, derived files, and
    /// (for an attachment) its ingest state. `Err` from the extractor is recorded with
    /// [`Store::mark_ingest_failed`] instead.
    pub fn record_extraction(
        &mut self,
        attachment: Option<&PendingAttachment>,
        source_path: Option<&str>,
        extracted: &[Extracted],
    ) -> Result<IngestTally, StoreError> {
        self.write(|tx| record_in(tx, attachment, source_path, extracted, &[]))
    }

    /// [`Store::record_extraction`] for many files from disk in one transaction: one commit (one
    /// fsync) per batch instead of per file is what makes back-loading an archive fast. A crash
    /// loses the uncommitted batch only, and running the same ingest again stores it then (what
    /// was committed is recognised by its sha256 and counted as already stored).
    ///
    /// Each file comes with the files beside it that its documents' `<reference>`s name:
    /// (reference as written, bytes), read by the caller.
    pub fn record_file_extractions(
        &mut self,
        files: &[FileExtraction<'_>],
    ) -> Result<Vec<IngestTally>, StoreError> {
        self.write(|tx| {
            files
                .iter()
                .map(|f| record_in(tx, None, Some(f.path), f.extracted, f.siblings))
                .collect()
        })
    }

    /// Sizes the connection for back-loading many documents in large transactions: a page cache
    /// that holds a batch's working set (the default 2 MiB spilled pages to the WAL mid-batch,
    /// a twentieth of `directd ingest`'s time) and checkpoints every 64 MiB of WAL rather than
    /// every 4 MiB, so a page rewritten by consecutive batches is copied into the database once.
    /// Durability is unchanged: each commit is still synced before it returns.
    ///
    /// It also stops this connection checking foreign keys row by row (a lookup in every parent
    /// table for each entry and coding, a fortieth of the command). Every reference a batch
    /// writes is to a row the same transaction created just before (its document, section and
    /// patient record) or has just read (the person a record joins), and the transaction holds
    /// the write lock, so no one can delete them in between; other connections, the daemon's
    /// included, keep their checks. The CLI test `bulk_ingest_leaves_every_reference_whole` runs
    /// SQLite's own check over what it stored.
    pub fn tune_for_bulk_ingest(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;
                 PRAGMA foreign_keys = OFF;",
            )
            .map_err(|e| self.err(e))
    }

    /// [`Store::record_extraction`] for a batch of received attachments in one transaction, each
    /// with what its extraction gave: the rows and ingest state of every one, or for an `Err`
    /// (the extractor refused it) the failed state and its reason. One commit for the batch
    /// instead of one per attachment is what lets the daemon's ingestion keep pace with
    /// reception; a crash before the commit leaves the whole batch pending, to be ingested again.
    pub fn record_attachment_extractions(
        &mut self,
        batch: &[(&PendingAttachment, Result<Vec<Extracted>, String>)],
    ) -> Result<Vec<IngestTally>, StoreError> {
        self.write(|tx| {
            batch
                .iter()
                .map(|(att, outcome)| match outcome {
                    Ok(extracted) => record_in(tx, Some(att), None, extracted, &[]),
                    Err(reason) => {
                        mark_failed(tx, att.id, reason)?;
                        Ok(IngestTally {
                            failures: vec![reason.clone()],
                            ..IngestTally::default()
                        })
                    }
                })
                .collect()
        })
    }

    /// Records that an attachment could not be ingested at all; the message itself is untouched.
    pub fn mark_ingest_failed(
        &mut self,
        attachment_id: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        mark_failed(&self.conn, attachment_id, reason).map_err(|e| self.err(e))
    }

    pub fn list_documents(
        &self,
        patient: Option<&str>,
    ) -> Result<Vec<clinical::DocumentSummary>, StoreError> {
        clinical::list_documents(&self.conn, patient).map_err(|e| self.err(e))
    }

    pub fn load_document(&self, id: i64) -> Result<clinical::StoredDocument, StoreError> {
        clinical::load_document(&self.conn, id)
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))
    }
}

/// One file from disk for [`Store::record_file_extractions`].
pub struct FileExtraction<'a> {
    pub path: &'a str,
    pub extracted: &'a [Extracted],
    /// The files its documents' `<reference>`s name, as (reference, bytes).
    pub siblings: &'a [(String, Vec<u8>)],
}

fn mark_failed(
    conn: &rusqlite::Connection,
    attachment_id: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE attachments SET ingest_state = 'failed', ingest_error = ?2 WHERE id = ?1",
        params![attachment_id, reason],
    )
    .map(|_| ())
}

fn record_in(
    tx: &rusqlite::Transaction<'_>,
    attachment: Option<&PendingAttachment>,
    source_path: Option<&str>,
    extracted: &[Extracted],
    siblings: &[(String, Vec<u8>)],
) -> rusqlite::Result<IngestTally> {
    let mut tally = IngestTally::default();
    for item in extracted {
        let doc = match &item.content {
            Content::Document(doc) => doc,
            Content::NotCda(_) => {
                tally.other += 1;
                continue;
            }
            Content::Failed(e) => {
                let at = item
                    .xdm
                    .as_ref()
                    .map(|x| format!("{}: ", x.uri))
                    .unwrap_or_default();
                tally.failures.push(format!("{at}{e}"));
                continue;
            }
        };
        let source = Source {
            attachment_id: attachment.map(|a| a.id),
            source_path: source_path.map(str::to_owned),
            xdm_uri: item.xdm.as_ref().map(|x| x.uri.clone()),
        };
        let outcome = clinical::insert_document_in(tx, &source, doc)?;
        if !outcome.inserted {
            tally.already_stored += 1;
            continue;
        }
        tally.documents += 1;
        let Some(body) = &doc.non_xml_body else {
            continue;
        };
        if let Some(d) = &body.derived {
            tx.execute(
                "INSERT INTO document_files (document_id, role, media_type, data, size, sha256)
                     VALUES (?1, 'inline', ?2, ?3, ?4, ?5)",
                params![
                    outcome.document_id,
                    d.media_type,
                    d.bytes,
                    d.bytes.len() as i64,
                    d.sha256
                ],
            )?;
        }
        if let Some(name) = &body.reference {
            match attachment {
                // The reference names a sibling attachment of the same message.
                Some(a) => {
                    let sibling: Option<(i64, i64, String)> = tx
                        .query_row(
                            "SELECT id, size, sha256 FROM attachments
                             WHERE incoming_id = ?1 AND id != ?2 AND lower(filename) = lower(?3)",
                            params![a.incoming_id, a.id, name],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()?;
                    tx.execute(
                        "INSERT INTO document_files (document_id, role, name, media_type, attachment_id, size, sha256)
                         VALUES (?1, 'reference', ?2, ?3, ?4, ?5, ?6)",
                        params![
                            outcome.document_id,
                            name,
                            body.media_type,
                            sibling.as_ref().map(|s| s.0),
                            sibling.as_ref().map(|s| s.1),
                            sibling.as_ref().map(|s| s.2.clone())
                        ],
                    )?;
                    if sibling.is_none() {
                        tally.failures.push(format!(
                            "reference {name:?} names no attachment of this message"
                        ));
                    }
                }
                // From disk: the file beside the document, kept with it byte for byte.
                None => {
                    let data = siblings.iter().find(|(r, _)| r == name).map(|(_, d)| d);
                    tx.execute(
                        "INSERT INTO document_files (document_id, role, name, media_type, data, size, sha256)
                         VALUES (?1, 'reference', ?2, ?3, ?4, ?5, ?6)",
                        params![
                            outcome.document_id,
                            name,
                            body.media_type,
                            data,
                            data.map(|d| d.len() as i64),
                            data.map(|d| crate::util::sha256_hex(d))
                        ],
                    )?;
                    if data.is_none() && source_path.is_some() {
                        tally
                            .failures
                            .push(format!("reference {name:?} names no file beside it"));
                    }
                }
            }
        }
    }
    if let Some(a) = attachment {
        let state = match (
            tally.documents + tally.already_stored,
            tally.failures.is_empty(),
        ) {
            (0, true) => "not_clinical",
            (_, true) => "ingested",
            (0, false) => "failed",
            (_, false) => "partial",
        };
        let error = (!tally.failures.is_empty()).then(|| tally.failures.join("; "));
        tx.execute(
            "UPDATE attachments SET ingest_state = ?2, ingest_error = ?3 WHERE id = ?1",
            params![a.id, state, error],
        )?;
    }
    Ok(tally)
}
