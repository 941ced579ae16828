//! Runs extraction over what the store holds: received attachments after their message is
//! committed, and files from disk for back-loading archives. A failure is recorded on the
//! attachment with its reason; it never loses or blocks the message.

use std::path::Path;

use super::{detect, ingest_bytes, Content, Detected, IngestError, Limits};
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

#[derive(Debug, thiserror::Error)]
pub enum FileIngestError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Refused { path: String, source: IngestError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one file from disk yielded.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub tally: IngestTally,
    /// What was looked at and left alone because it is not a C-CDA: the file itself, or members
    /// of its XDM zip. Reported so that "0 new documents" is never the whole story.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The XDM member's URI, or `None` for the file itself.
    pub member: Option<String>,
    pub detected: Detected,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.detected {
            Detected::Pdf => "a PDF",
            Detected::Text => "plain text",
            Detected::Xdm => "a zip",
            Detected::Ccda => "a C-CDA",
            Detected::Other => {
                "unrecognised; a C-CDA is a ClinicalDocument in the urn:hl7-org:v3 namespace"
            }
        };
        match &self.member {
            Some(m) => write!(f, "{m}: not a C-CDA ({what})"),
            None => write!(f, "not a C-CDA ({what})"),
        }
    }
}

/// Ingests one file from disk (a C-CDA or an XDM zip).
pub fn ingest_file(
    store: &mut Store,
    path: &Path,
    limits: &Limits,
) -> Result<FileOutcome, FileIngestError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| FileIngestError::Read {
        path: shown.clone(),
        source,
    })?;
    // Neither a document nor a whole zip may exceed its cap, so no file larger than both is read.
    let limit = limits.max_document_bytes.max(limits.max_zip_total_bytes);
    if meta.len() > limit {
        return Err(FileIngestError::Refused {
            path: shown,
            source: IngestError::TooLarge {
                size: meta.len(),
                limit,
            },
        });
    }
    let bytes = std::fs::read(path).map_err(|source| FileIngestError::Read {
        path: shown.clone(),
        source,
    })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let extracted = ingest_bytes(&bytes, "application/octet-stream", name.as_deref(), limits)
        .map_err(|source| FileIngestError::Refused {
            path: shown.clone(),
            source,
        })?;
    let skipped = if extracted.is_empty() {
        vec![Skipped {
            member: None,
            detected: detect(&bytes, "application/octet-stream", name.as_deref()),
        }]
    } else {
        extracted
            .iter()
            .filter_map(|e| match (&e.content, &e.xdm) {
                (Content::NotCda(d), Some(m)) => Some(Skipped {
                    member: Some(m.uri.clone()),
                    detected: *d,
                }),
                _ => None,
            })
            .collect()
    };
    let tally = store.record_extraction(None, Some(&shown), &extracted)?;
    Ok(FileOutcome { tally, skipped })
}

/// What [`reextract_all`] did.
#[derive(Debug, Default)]
pub struct Reextracted {
    /// Documents whose rows now come from this version's extraction.
    pub documents: usize,
    /// `(document id, why)` for documents whose bytes could not be found again.
    pub unavailable: Vec<(i64, String)>,
    /// `(document id, why)` for bytes that no longer extract.
    pub failures: Vec<(i64, String)>,
}

/// Extracts every stored document again from its original bytes (the received attachment, or
/// the file it was ingested from) and replaces its rows, so that a store filled by an older
/// version gains what extraction has learnt since (standard codes from translations, text
/// ranges, ...). Re-ingesting would not: the same bytes are already stored.
pub fn reextract_all(store: &mut Store, limits: &Limits) -> Result<Reextracted, StoreError> {
    let mut out = Reextracted::default();
    for src in store.document_sources()? {
        let id = src.document_id;
        let (bytes, mime, name) = match (&src.source.attachment_id, &src.source.source_path) {
            (Some(a), _) => match store.attachment_bytes(*a)? {
                Some((data, ..)) if data.is_empty() => {
                    out.unavailable.push((
                        id,
                        format!("attachment {a}'s content was removed by the retention policy"),
                    ));
                    continue;
                }
                Some(found) => found,
                None => {
                    out.unavailable
                        .push((id, format!("attachment {a} is no longer stored")));
                    continue;
                }
            },
            (None, Some(path)) => match std::fs::read(path) {
                Ok(bytes) => {
                    let name = Path::new(path)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    (bytes, "application/octet-stream".to_owned(), name)
                }
                Err(e) => {
                    out.unavailable.push((id, format!("{path}: {e}")));
                    continue;
                }
            },
            (None, None) => {
                out.unavailable.push((id, "no source recorded".into()));
                continue;
            }
        };
        let extracted = match ingest_bytes(&bytes, &mime, Some(&name), limits) {
            Ok(x) => x,
            Err(e) => {
                out.failures.push((id, e.to_string()));
                continue;
            }
        };
        let doc = extracted.into_iter().find_map(|e| match e.content {
            Content::Document(d) if d.sha256 == src.sha256 => Some(d),
            _ => None,
        });
        match doc {
            Some(d) if store.replace_extraction(id, &d)? => out.documents += 1,
            _ => out.unavailable.push((
                id,
                "the source no longer holds these bytes (the file changed?)".into(),
            )),
        }
    }
    Ok(out)
}
