//! SQLite storage of extracted clinical documents: normalised tables an analyst can query directly,
//! plus the full extraction as JSON for lossless display.
//!
//! All SQL for clinical data lives in this folder (the schema in `../migrations/`): this file stores
//! and replaces documents, `participants` and `entries` write the rows below a document, `query`
//! reads them back, `identity` groups patient records into persons. Functions take `&Connection` so callers can pass a
//! `Transaction`; writes additionally run inside a savepoint so a failed insert never leaves half a
//! document behind, whether or not the caller opened a transaction.

use rusqlite::{named_params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::ingest::model::{systems, Code, Document};

mod compact_json;
mod entries;
mod identity;
mod participants;
mod query;
pub use identity::{
    link, list_persons, load_person, load_record, split_shared_patients, unlink, IdentityError,
    LinkCandidate, PatientRecord, PersonDetail, PersonSummary, Relink,
    MIGRATION as IDENTITY_MIGRATION, PERSON_INDEX_MIGRATION,
};
pub use query::{document_sources, list_documents, load_document, StoredSource};

use entries::{insert_entry, EntryCtx};
use participants::{insert_episode, insert_participants};

/// Tables whose rows carry both `document_id` and the `patient_id` of that document's patient.
const PATIENT_TABLES: [&str; 11] = [
    "encounters",
    "problems",
    "medications",
    "allergies",
    "results",
    "vital_signs",
    "immunizations",
    "procedures",
    "social_history",
    "plan_of_care",
    "family_history",
];

pub const SCHEMA: &str = include_str!("../migrations/0002_clinical.sql");

/// Schema step: every coding of an entry's main code (the primary and each `<translation>`), beside
/// the one chosen for the entry's own code column. Idempotent, so [`init`] can run it again.
pub const CODINGS_MIGRATION: &str = include_str!("../migrations/0008_entry_codings.sql");

/// Where a document came from; at most one of the locations is usually set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// `attachments.id` in the main store.
    pub attachment_id: Option<i64>,
    /// File path for documents ingested from disk.
    pub source_path: Option<String>,
    /// URI inside an XDM zip, when the document was a member of one.
    pub xdm_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertOutcome {
    pub document_id: i64,
    /// `false` when the same bytes (same SHA-256) were already stored.
    pub inserted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSummary {
    /// `document_id` in JSON, as every id says what it identifies (docs/json-output.md).
    #[serde(rename = "document_id")]
    pub id: i64,
    pub sha256: String,
    pub kind: String,
    pub title: Option<String>,
    pub effective_time: Option<String>,
    pub patient_id: Option<i64>,
    pub patient_name: Option<String>,
    pub attachment_id: Option<i64>,
    pub source_path: Option<String>,
    pub xdm_uri: Option<String>,
    pub ingested_at: String,
    pub birth_time: Option<String>,
    pub gender: Option<String>,
    /// The episode of care (encompassingEncounter) period.
    pub encounter_start: Option<String>,
    pub encounter_end: Option<String>,
    /// The person this document's patient record is linked to (see `directd patients`).
    pub person_id: Option<i64>,
}

/// What `ccda show` displays: the stored row plus the full extraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub summary: DocumentSummary,
    pub document: Document,
}

/// The clinical tables at their current shape, for a connection that is not a [`crate::store::Store`]
/// (the store applies the same steps as numbered migrations). Safe to call again.
pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let has_persons: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'persons'",
        [],
        |r| r.get(0),
    )?;
    if !has_persons {
        conn.execute_batch(IDENTITY_MIGRATION)?;
        split_shared_patients(conn)?;
    }
    conn.execute_batch(CODINGS_MIGRATION)?;
    conn.execute_batch(PERSON_INDEX_MIGRATION)
}

/// Stores a document and everything extracted from it. Re-inserting the same bytes is a no-op that
/// returns the existing id, so re-processing a mailbox never duplicates clinical rows.
///
/// The derived binary of an unstructured document is *not* stored here (only its hash and size):
/// the caller keeps it as an attachment.
pub fn insert_document(
    conn: &Connection,
    source: &Source,
    doc: &Document,
) -> rusqlite::Result<InsertOutcome> {
    conn.execute_batch("SAVEPOINT insert_document")?;
    match insert_once(conn, source, doc) {
        Ok(outcome) => {
            conn.execute_batch("RELEASE insert_document")?;
            Ok(outcome)
        }
        Err(e) => {
            // Best effort: the original error is the one worth reporting.
            let _ = conn.execute_batch("ROLLBACK TO insert_document; RELEASE insert_document");
            // Another connection may have stored the same bytes between our lookup and insert;
            // that is the idempotent outcome, not a failure.
            if let Some(id) = find_by_sha(conn, &doc.sha256)? {
                return Ok(InsertOutcome {
                    document_id: id,
                    inserted: false,
                });
            }
            Err(e)
        }
    }
}

/// [`insert_document`] inside the caller's write transaction, which the caller rolls back on `Err`
/// (every batch of the store does). Without the savepoint: its sub-journal copied every page the
/// document touched, a twentieth of `directd ingest` on small documents. Nobody else can store the
/// same bytes between the lookup and the insert, since the transaction holds the write lock.
pub(crate) fn insert_document_in(
    tx: &rusqlite::Transaction<'_>,
    source: &Source,
    doc: &Document,
) -> rusqlite::Result<InsertOutcome> {
    insert_once(tx, source, doc)
}

/// The document's rows unless its bytes are stored already, with no guard against a failure
/// half way (see the two callers).
fn insert_once(
    conn: &Connection,
    source: &Source,
    doc: &Document,
) -> rusqlite::Result<InsertOutcome> {
    if let Some(id) = find_by_sha(conn, &doc.sha256)? {
        return Ok(InsertOutcome {
            document_id: id,
            inserted: false,
        });
    }
    Ok(InsertOutcome {
        document_id: insert_all(conn, source, doc)?,
        inserted: true,
    })
}

/// Replaces what was extracted from document `document_id` by `doc`, a fresh extraction of the
/// same bytes by this version: the header columns, participants, sections and every entry row.
/// The document keeps its id (audit entries and links name it) and its patient record (identity
/// decisions, manual ones included, stay as they are). `Ok(false)` when `doc` is not of the same
/// bytes, which would make it another document.
pub fn replace_extraction(
    conn: &Connection,
    document_id: i64,
    doc: &Document,
) -> rusqlite::Result<bool> {
    let stored: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT sha256, patient_id FROM documents WHERE id = ?1",
            [document_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((_, patient_id)) = stored.filter(|(sha, _)| *sha == doc.sha256) else {
        return Ok(false);
    };
    conn.execute_batch("SAVEPOINT replace_extraction")?;
    let result = (|| {
        for table in PATIENT_TABLES.iter().chain(&[
            "entry_codings",
            "document_participants",
            "service_events",
            "sections",
        ]) {
            conn.execute(
                &format!("DELETE FROM {table} WHERE document_id = ?1"),
                [document_id],
            )?;
        }
        let header = header_values(doc)?;
        let sets: Vec<String> = HEADER_COLUMNS
            .split(',')
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", c.trim(), i + 2))
            .collect();
        let mut values: Vec<rusqlite::types::Value> = vec![document_id.into()];
        values.extend(header);
        conn.execute(
            &format!("UPDATE documents SET {} WHERE id = ?1", sets.join(", ")),
            rusqlite::params_from_iter(values),
        )?;
        insert_children(conn, document_id, patient_id, doc)
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("RELEASE replace_extraction")?;
            Ok(true)
        }
        Err(e) => {
            let _ =
                conn.execute_batch("ROLLBACK TO replace_extraction; RELEASE replace_extraction");
            Err(e)
        }
    }
}

/// `conn.execute` through the connection's statement cache. Bulk ingest runs the same few dozen
/// INSERTs for every section, entry and coding; preparing each one anew (SQL parse and named
/// parameter lookup) was a quarter of `directd ingest`'s time.
pub(super) fn execute<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn find_by_sha(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM documents WHERE sha256 = ?1")?
        .query_row([sha256], |r| r.get(0))
        .optional()
}

/// `(code, code_system, display)` of the coding chosen for the main column (see
/// [`Code::standard`]), with the original text, else the listed name of a common code
/// ([`crate::ingest::vocab`]), standing in for a missing display name.
fn coded<'a>(
    c: Option<&'a Code>,
    preferred: &[&str],
) -> (Option<&'a str>, Option<&'a str>, Option<&'a str>) {
    match c {
        None => (None, None, None),
        Some(c) => {
            let chosen = c.standard(preferred);
            // A bare common code (a severity `6736007`) gets its listed name, as `ccda show` does.
            (
                chosen.and_then(|x| x.code.as_deref()),
                chosen.and_then(|x| x.code_system.as_deref()),
                c.name(preferred)
                    .or_else(|| crate::ingest::vocab::listed_name(c)),
            )
        }
    }
}

/// [`coded`] for values with no preferred code system: the primary coding when it has a code,
/// else the first translation that has one.
fn cols(c: Option<&Code>) -> (Option<&str>, Option<&str>, Option<&str>) {
    coded(c, systems::ANY)
}

fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Columns of `documents` that come from the extraction (not from where the bytes came from), in
/// the order [`header_values`] gives them.
const HEADER_COLUMNS: &str = "kind, classified_by, template_ids, doc_id_root, doc_id_extension,
    loinc_code, code_display, title, effective_time, confidentiality, language, set_id_root,
    set_id_extension, version_number, custodian, body_media_type, body_reference, derived_sha256,
    derived_size, document_json";

fn header_values(doc: &Document) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value;
    let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::Text(s.to_owned()));
    fn json<T: Serialize>(v: &T) -> rusqlite::Result<rusqlite::types::Value> {
        serde_json::to_string(v)
            .map(rusqlite::types::Value::Text)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
    /// The whole extraction, without its absent members (see [`compact_json`]).
    fn stored_json(doc: &Document) -> rusqlite::Result<rusqlite::types::Value> {
        compact_json::to_string(doc)
            .map(rusqlite::types::Value::Text)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
    let body = doc.non_xml_body.as_ref();
    let derived = body.and_then(|b| b.derived.as_ref());
    // The derived binary's bytes go to `document_files`, not into the JSON. Only a document that
    // has some is copied to leave them out: a deep copy of every structured document was a
    // twentieth of bulk ingest's time.
    let document_json = if derived.is_some_and(|d| !d.bytes.is_empty()) {
        let mut stored = doc.clone();
        if let Some(d) = stored
            .non_xml_body
            .as_mut()
            .and_then(|b| b.derived.as_mut())
        {
            d.bytes.clear();
        }
        stored_json(&stored)?
    } else {
        stored_json(doc)?
    };
    Ok(vec![
        Value::Text(enum_text(&doc.kind)),
        Value::Text(enum_text(&doc.classified_by)),
        json(&doc.template_ids)?,
        text(doc.id.as_ref().and_then(|i| i.root.as_deref())),
        text(doc.id.as_ref().and_then(|i| i.extension.as_deref())),
        text(doc.code.as_ref().and_then(|c| c.code.as_deref())),
        text(cols(doc.code.as_ref()).2),
        text(doc.title.as_deref()),
        text(doc.effective_time.as_deref()),
        text(doc.confidentiality.as_deref()),
        text(doc.language.as_deref()),
        text(doc.set_id.as_ref().and_then(|i| i.root.as_deref())),
        text(doc.set_id.as_ref().and_then(|i| i.extension.as_deref())),
        text(doc.version_number.as_deref()),
        text(
            doc.custodian
                .as_ref()
                .and_then(|c| c.names.first())
                .map(String::as_str),
        ),
        text(body.and_then(|b| b.media_type.as_deref())),
        text(body.and_then(|b| b.reference.as_deref())),
        text(derived.map(|d| d.sha256.as_str())),
        derived.map_or(Value::Null, |d| Value::Integer(d.size as i64)),
        document_json,
    ])
}

fn insert_all(conn: &Connection, source: &Source, doc: &Document) -> rusqlite::Result<i64> {
    let patient_id = match &doc.patient {
        Some(p) => Some(identity::assign_patient(conn, p)?),
        None => None,
    };
    let header = header_values(doc)?;
    let placeholders: Vec<String> = (1..=5 + header.len()).map(|i| format!("?{i}")).collect();
    let mut values: Vec<rusqlite::types::Value> = vec![
        doc.sha256.clone().into(),
        source.attachment_id.into(),
        source.source_path.clone().into(),
        source.xdm_uri.clone().into(),
        patient_id.into(),
    ];
    values.extend(header);
    execute(
        conn,
        &format!(
            "INSERT INTO documents (sha256, attachment_id, source_path, xdm_uri, patient_id,
                {HEADER_COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        ),
        rusqlite::params_from_iter(values),
    )?;
    let document_id = conn.last_insert_rowid();
    insert_children(conn, document_id, patient_id, doc)?;
    Ok(document_id)
}

/// Everything below the `documents` row: participants, the episode, sections and their entries.
fn insert_children(
    conn: &Connection,
    document_id: i64,
    patient_id: Option<i64>,
    doc: &Document,
) -> rusqlite::Result<()> {
    insert_participants(conn, document_id, doc)?;
    insert_episode(conn, document_id, patient_id, doc)?;

    let mut section_ids = Vec::with_capacity(doc.sections.len());
    for (ordinal, s) in doc.sections.iter().enumerate() {
        let (code, system, _) = cols(s.code.as_ref());
        execute(
            conn,
            "INSERT INTO sections (document_id, ordinal, parent_ordinal, kind, matched_by,
                template_id, code, code_system, title, null_flavor, narrative)
             VALUES (:document_id, :ordinal, :parent_ordinal, :kind, :matched_by, :template_id,
                 :code, :code_system, :title, :null_flavor, :narrative)",
            named_params! {
                ":document_id": document_id,
                ":ordinal": ordinal as i64,
                ":parent_ordinal": s.parent.map(|p| p as i64),
                ":kind": enum_text(&s.kind),
                ":matched_by": enum_text(&s.matched_by),
                ":template_id": s.template_ids.first().map(|t| t.root.as_str()),
                ":code": code,
                ":code_system": system,
                ":title": s.title,
                ":null_flavor": s.null_flavor,
                ":narrative": s.text,
            },
        )?;
        section_ids.push(conn.last_insert_rowid());
    }
    let ctx = EntryCtx {
        document_id,
        patient_id,
    };
    for (s, section_id) in doc.sections.iter().zip(section_ids) {
        for entry in &s.entries {
            insert_entry(conn, &ctx, section_id, entry)?;
        }
    }
    Ok(())
}
