//! `directd ccda reextract`: extraction run again over the bytes each stored document came from.

use std::path::Path;

use crate::ingest::{ingest_bytes, Content, Limits};
use crate::store::{Store, StoreError};

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
