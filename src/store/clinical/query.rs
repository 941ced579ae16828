//! What `ccda list` and `ccda show` read, and where re-extraction finds each document's bytes.

use rusqlite::{Connection, OptionalExtension};

use super::{replace_extraction, DocumentSummary, Source, StoredDocument};
use crate::ingest::model::Document;

const SUMMARY_SELECT: &str = "SELECT d.id, d.sha256, d.kind, d.title, d.effective_time,
        d.patient_id,
        CASE WHEN p.id IS NULL THEN NULL
             ELSE trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) END,
        d.attachment_id, d.source_path, d.xdm_uri, d.ingested_at,
        p.birth_time, coalesce(p.gender_display, p.gender_code),
        e.start_time, e.end_time, m.person_id
    FROM documents d LEFT JOIN patients p ON p.id = d.patient_id
    LEFT JOIN person_members m ON m.patient_id = d.patient_id
    LEFT JOIN encounters e ON e.document_id = d.id AND e.is_episode = 1";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentSummary> {
    Ok(DocumentSummary {
        id: r.get(0)?,
        sha256: r.get(1)?,
        kind: r.get(2)?,
        title: r.get(3)?,
        effective_time: r.get(4)?,
        patient_id: r.get(5)?,
        patient_name: r.get(6)?,
        attachment_id: r.get(7)?,
        source_path: r.get(8)?,
        xdm_uri: r.get(9)?,
        ingested_at: r.get(10)?,
        birth_time: r.get(11)?,
        gender: r.get(12)?,
        encounter_start: r.get(13)?,
        encounter_end: r.get(14)?,
        person_id: r.get(15)?,
    })
}

/// Documents newest first. `patient_filter` matches a patient identifier extension exactly, or
/// any part of the patient's given or family name (case-insensitive).
pub fn list_documents(
    conn: &Connection,
    patient_filter: Option<&str>,
) -> rusqlite::Result<Vec<DocumentSummary>> {
    let order = " ORDER BY d.effective_time DESC, d.id DESC";
    match patient_filter {
        None => {
            let mut stmt = conn.prepare(&format!("{SUMMARY_SELECT}{order}"))?;
            let rows = stmt.query_map([], summary_row)?;
            rows.collect()
        }
        Some(filter) => {
            let sql = format!(
                "{SUMMARY_SELECT} WHERE p.id IN (
                    SELECT patient_id FROM patient_identifiers WHERE extension = ?1
                    UNION
                    SELECT id FROM patients
                     WHERE given LIKE '%' || ?1 || '%' OR family LIKE '%' || ?1 || '%'){order}"
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([filter], summary_row)?;
            rows.collect()
        }
    }
}

/// Where each stored document's bytes can be found again, for re-extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSource {
    pub document_id: i64,
    pub sha256: String,
    pub source: Source,
}

pub fn document_sources(conn: &Connection) -> rusqlite::Result<Vec<StoredSource>> {
    let mut stmt = conn.prepare(
        "SELECT id, sha256, attachment_id, source_path, xdm_uri FROM documents ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredSource {
            document_id: r.get(0)?,
            sha256: r.get(1)?,
            source: Source {
                attachment_id: r.get(2)?,
                source_path: r.get(3)?,
                xdm_uri: r.get(4)?,
            },
        })
    })?;
    rows.collect()
}

pub fn load_document(conn: &Connection, id: i64) -> rusqlite::Result<Option<StoredDocument>> {
    let row = conn
        .query_row(&format!("{SUMMARY_SELECT} WHERE d.id = ?1"), [id], |r| {
            Ok((summary_row(r)?, ()))
        })
        .optional()?;
    let Some((summary, ())) = row else {
        return Ok(None);
    };
    let json: String = conn.query_row(
        "SELECT document_json FROM documents WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let document = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Some(StoredDocument { summary, document }))
}

/// Re-extraction: finding each document's bytes again and replacing what was stored from them.
impl crate::store::Store {
    pub fn document_sources(&self) -> Result<Vec<StoredSource>, crate::store::StoreError> {
        document_sources(&self.conn).map_err(|e| self.err(e))
    }

    /// `(data, declared type, filename)` of a received attachment.
    pub fn attachment_bytes(
        &self,
        attachment_id: i64,
    ) -> Result<Option<(Vec<u8>, String, String)>, crate::store::StoreError> {
        self.conn
            .query_row(
                "SELECT data, declared_type, filename FROM attachments WHERE id = ?1",
                [attachment_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// See [`replace_extraction`]; one transaction per document.
    pub fn replace_extraction(
        &mut self,
        document_id: i64,
        doc: &Document,
    ) -> Result<bool, crate::store::StoreError> {
        self.write(|tx| replace_extraction(tx, document_id, doc))
    }
}
