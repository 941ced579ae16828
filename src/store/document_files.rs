//! The files that belong to an ingested document (schema version 3's `document_files`): an
//! Unstructured Document's inline body, or the file its `<reference>` names.

use rusqlite::params;

use super::{Store, StoreError};

/// One file of a document, with its bytes when the store has them.
#[derive(Debug, Clone)]
pub struct DocumentFile {
    /// `inline` (decoded from the document) or `reference` (a sibling file).
    pub role: String,
    /// The referenced name; inline bodies have none.
    pub name: Option<String>,
    pub media_type: Option<String>,
    /// `None` for a reference that named no file the store received.
    pub data: Option<Vec<u8>>,
    pub sha256: Option<String>,
}

impl Store {
    /// The files of document `document_id`, inline body first.
    pub fn document_files(&self, document_id: i64) -> Result<Vec<DocumentFile>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.role, f.name, f.media_type, COALESCE(f.data, a.data), f.sha256
                 FROM document_files f LEFT JOIN attachments a ON a.id = f.attachment_id
                 WHERE f.document_id = ?1 ORDER BY f.role = 'reference', f.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![document_id], |r| {
                Ok(DocumentFile {
                    role: r.get(0)?,
                    name: r.get(1)?,
                    media_type: r.get(2)?,
                    data: r.get(3)?,
                    sha256: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}
