//! SQLite storage of extracted clinical documents: normalised tables an analyst can query directly,
//! plus the full extraction as JSON for lossless display.
//!
//! All SQL for clinical data lives here. Functions take `&Connection` so callers can pass a
//! `Transaction`; writes additionally run inside a savepoint so a failed insert never leaves half a
//! document behind, whether or not the caller opened a transaction.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::ingest::model::{systems, Code, Document, Entry, Panel, Participant, PersonName};

mod identity;
pub use identity::{
    link, list_persons, load_person, load_record, split_shared_patients, unlink, IdentityError,
    LinkCandidate, PatientRecord, PersonDetail, PersonSummary, Relink,
    MIGRATION as IDENTITY_MIGRATION,
};

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

pub const SCHEMA: &str = include_str!("migrations/0002_clinical.sql");

/// Schema step: every coding of an entry's main code (the primary and each `<translation>`), beside
/// the one chosen for the entry's own code column. Idempotent, so [`init`] can run it again.
pub const CODINGS_MIGRATION: &str = include_str!("migrations/0008_entry_codings.sql");

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
    conn.execute_batch(CODINGS_MIGRATION)
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
    if let Some(id) = find_by_sha(conn, &doc.sha256)? {
        return Ok(InsertOutcome {
            document_id: id,
            inserted: false,
        });
    }
    conn.execute_batch("SAVEPOINT insert_document")?;
    match insert_all(conn, source, doc) {
        Ok(id) => {
            conn.execute_batch("RELEASE insert_document")?;
            Ok(InsertOutcome {
                document_id: id,
                inserted: true,
            })
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

fn find_by_sha(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM documents WHERE sha256 = ?1",
        [sha256],
        |r| r.get(0),
    )
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

/// Every coding of an entry's main code, so the ones not chosen stay queryable.
fn insert_codings(
    conn: &Connection,
    document_id: i64,
    table: &str,
    c: Option<&Code>,
    preferred: &[&str],
) -> rusqlite::Result<()> {
    let Some(c) = c else { return Ok(()) };
    let entry_id = conn.last_insert_rowid();
    let chosen = c.standard(preferred).map(|x| x as *const Code);
    for (ordinal, coding) in c.codings().into_iter().enumerate() {
        conn.execute(
            "INSERT INTO entry_codings (document_id, entry_table, entry_id, ordinal, code,
                code_system, code_system_name, display, chosen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                document_id,
                table,
                entry_id,
                ordinal as i64,
                coding.code,
                coding.code_system,
                coding.code_system_name,
                coding
                    .display_name
                    .as_deref()
                    .or(coding.original_text.as_deref()),
                chosen == Some(coding as *const Code),
            ],
        )?;
    }
    Ok(())
}

fn name_text(n: &PersonName) -> Option<String> {
    let mut parts: Vec<&str> = n.prefixes.iter().map(String::as_str).collect();
    parts.extend(n.given.iter().map(String::as_str));
    parts.extend(n.family.as_deref());
    parts.extend(n.suffixes.iter().map(String::as_str));
    let joined = parts.join(" ");
    if joined.is_empty() {
        n.text.clone()
    } else {
        Some(joined)
    }
}

fn participant_name(p: &Participant) -> Option<String> {
    p.names.iter().find_map(name_text).or_else(|| {
        p.device
            .as_ref()
            .and_then(|d| d.software.clone().or(d.manufacturer_model.clone()))
    })
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
    let mut stored = doc.clone();
    if let Some(derived) = stored
        .non_xml_body
        .as_mut()
        .and_then(|b| b.derived.as_mut())
    {
        derived.bytes.clear();
    }
    let body = doc.non_xml_body.as_ref();
    let derived = body.and_then(|b| b.derived.as_ref());
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
        json(&stored)?,
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
    conn.execute(
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
        conn.execute(
            "INSERT INTO sections (document_id, ordinal, parent_ordinal, kind, matched_by,
                template_id, code, code_system, title, null_flavor, narrative)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                document_id,
                ordinal as i64,
                s.parent.map(|p| p as i64),
                enum_text(&s.kind),
                enum_text(&s.matched_by),
                s.template_ids.first().map(|t| t.root.as_str()),
                code,
                system,
                s.title,
                s.null_flavor,
                s.text,
            ],
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

fn insert_participant(
    conn: &Connection,
    document_id: i64,
    role: &str,
    p: &Participant,
) -> rusqlite::Result<()> {
    let id = p.ids.first();
    let (code, _, code_display) = cols(p.code.as_ref().or(p.function_code.as_ref()));
    conn.execute(
        "INSERT INTO document_participants (document_id, role, name, organization, id_root,
            id_extension, code, code_display, time, device_model, device_software)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            document_id,
            role,
            participant_name(p),
            p.organization.as_ref().and_then(|o| o.names.first()),
            id.and_then(|i| i.root.as_deref()),
            id.and_then(|i| i.extension.as_deref()),
            code,
            code_display,
            p.time,
            p.device
                .as_ref()
                .and_then(|d| d.manufacturer_model.as_deref()),
            p.device.as_ref().and_then(|d| d.software.as_deref()),
        ],
    )?;
    Ok(())
}

fn insert_participants(
    conn: &Connection,
    document_id: i64,
    doc: &Document,
) -> rusqlite::Result<()> {
    for a in &doc.authors {
        insert_participant(conn, document_id, "author", a)?;
    }
    if let Some(c) = &doc.custodian {
        let as_participant = Participant {
            ids: c.ids.clone(),
            organization: Some(c.clone()),
            ..Participant::default()
        };
        insert_participant(conn, document_id, "custodian", &as_participant)?;
    }
    if let Some(l) = &doc.legal_authenticator {
        insert_participant(conn, document_id, "legal_authenticator", l)?;
    }
    for r in &doc.information_recipients {
        insert_participant(conn, document_id, "information_recipient", r)?;
    }
    for se in &doc.service_events {
        let (code, system, display) = cols(se.code.as_ref());
        conn.execute(
            "INSERT INTO service_events (document_id, code, code_system, display, start_time,
                end_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![document_id, code, system, display, se.start, se.end],
        )?;
        for p in &se.performers {
            insert_participant(conn, document_id, "service_event_performer", p)?;
        }
    }
    if let Some(enc) = &doc.encompassing_encounter {
        for p in enc.responsible_party.iter() {
            insert_participant(conn, document_id, "encounter_responsible_party", p)?;
        }
        for p in &enc.participants {
            insert_participant(conn, document_id, "encounter_participant", p)?;
        }
    }
    Ok(())
}

fn insert_episode(
    conn: &Connection,
    document_id: i64,
    patient_id: Option<i64>,
    doc: &Document,
) -> rusqlite::Result<()> {
    let Some(enc) = &doc.encompassing_encounter else {
        return Ok(());
    };
    let id = enc.ids.first();
    let (code, system, display) = cols(enc.code.as_ref());
    let (dd_code, _, dd_display) = cols(enc.discharge_disposition.as_ref());
    conn.execute(
        "INSERT INTO encounters (document_id, patient_id, section_id, is_episode, id_root,
            id_extension, code, code_system, display, start_time, end_time, location,
            responsible_party, discharge_disposition_code, discharge_disposition_display)
         VALUES (?1, ?2, NULL, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            document_id,
            patient_id,
            id.and_then(|i| i.root.as_deref()),
            id.and_then(|i| i.extension.as_deref()),
            code,
            system,
            display,
            enc.start,
            enc.end,
            enc.location.as_ref().and_then(|l| l.name.as_deref()),
            enc.responsible_party.as_ref().and_then(participant_name),
            dd_code,
            dd_display,
        ],
    )?;
    Ok(())
}

struct EntryCtx {
    document_id: i64,
    patient_id: Option<i64>,
}

fn numeric(value_type: Option<&str>, value: Option<&str>) -> Option<f64> {
    match value_type {
        Some("PQ" | "INT" | "REAL") | None => value?.trim().parse().ok(),
        _ => None,
    }
}

fn insert_panel(
    conn: &Connection,
    ctx: &EntryCtx,
    section_id: i64,
    panel: &Panel,
    vitals: bool,
) -> rusqlite::Result<()> {
    let (p_code, p_system, p_display) = coded(panel.code.as_ref(), systems::RESULT);
    for o in &panel.observations {
        let (code, system, display) = coded(o.code.as_ref(), systems::RESULT);
        let v = o.value.as_ref();
        let value_type = v.and_then(|v| v.value_type.as_deref());
        let value = v.and_then(|v| v.value.as_deref().or(v.text.as_deref()));
        let unit = v.and_then(|v| v.unit.as_deref());
        let value_num = numeric(value_type, v.and_then(|v| v.value.as_deref()));
        let (interp, _, interp_display) = cols(o.interpretations.first());
        if vitals {
            conn.execute(
                "INSERT INTO vital_signs (document_id, patient_id, section_id, panel_time, code,
                    code_system, display, time, status, value_type, value, value_num, unit,
                    interpretation_code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    ctx.document_id,
                    ctx.patient_id,
                    section_id,
                    panel.time,
                    code,
                    system,
                    display,
                    o.time,
                    o.status,
                    value_type,
                    value,
                    value_num,
                    unit,
                    interp,
                ],
            )?;
            continue;
        }
        let (v_code, _, v_display) = cols(v.and_then(|v| v.code.as_ref()));
        let range = o.reference_range.as_ref();
        conn.execute(
            "INSERT INTO results (document_id, patient_id, section_id, panel_code, panel_system,
                panel_display, panel_time, code, code_system, display, time, status, value_type,
                value, value_num, unit, value_code, value_display, ref_range_text, ref_low,
                ref_high, ref_unit, interpretation_code, interpretation_display)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            params![
                ctx.document_id,
                ctx.patient_id,
                section_id,
                p_code,
                p_system,
                p_display,
                panel.time,
                code,
                system,
                display,
                o.time,
                o.status,
                value_type,
                value,
                value_num,
                unit,
                v_code,
                v_display,
                range.and_then(|r| r.text.as_deref()),
                range.and_then(|r| r.low.as_deref()),
                range.and_then(|r| r.high.as_deref()),
                range.and_then(|r| r.unit.as_deref()),
                interp,
                interp_display,
            ],
        )?;
        insert_codings(
            conn,
            ctx.document_id,
            "results",
            o.code.as_ref(),
            systems::RESULT,
        )?;
    }
    Ok(())
}

fn insert_entry(
    conn: &Connection,
    ctx: &EntryCtx,
    section_id: i64,
    entry: &Entry,
) -> rusqlite::Result<()> {
    let (doc_id, pat_id) = (ctx.document_id, ctx.patient_id);
    match entry {
        Entry::Problem(p) => {
            let (code, system, display) = coded(p.code.as_ref(), systems::PROBLEM);
            conn.execute(
                "INSERT INTO problems (document_id, patient_id, section_id, code, code_system,
                    display, problem_type, concern_status, status, onset, resolution, negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    cols(p.problem_type.as_ref()).2,
                    p.concern_status,
                    p.status,
                    p.onset,
                    p.resolution,
                    p.negated,
                ],
            )?;
            insert_codings(conn, doc_id, "problems", p.code.as_ref(), systems::PROBLEM)?;
        }
        Entry::Medication(m) => {
            let (code, system, display) = coded(m.drug.as_ref(), systems::MEDICATION);
            let (route, _, route_display) = cols(m.route.as_ref());
            conn.execute(
                "INSERT INTO medications (document_id, patient_id, section_id, drug_code,
                    drug_system, drug_display, drug_name, status, mood_code, start_time, end_time,
                    frequency, dose_value, dose_unit, route_code, route_display, negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    m.drug_name,
                    m.status,
                    m.mood_code,
                    m.start,
                    m.end,
                    m.frequency,
                    m.dose_value,
                    m.dose_unit,
                    route,
                    route_display,
                    m.negated,
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "medications",
                m.drug.as_ref(),
                systems::MEDICATION,
            )?;
        }
        Entry::Allergy(a) => {
            let (code, system, display) = coded(a.substance.as_ref(), systems::SUBSTANCE);
            let (t_code, _, t_display) = cols(a.allergy_type.as_ref());
            let (s_code, _, s_display) = cols(a.severity.as_ref());
            conn.execute(
                "INSERT INTO allergies (document_id, patient_id, section_id, substance_code,
                    substance_system, substance_display, allergy_type_code, allergy_type_display,
                    concern_status, status, severity_code, severity_display, onset, resolution,
                    negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    t_code,
                    t_display,
                    a.concern_status,
                    a.status,
                    s_code,
                    s_display,
                    a.onset,
                    a.resolution,
                    a.negated,
                ],
            )?;
            let allergy_id = conn.last_insert_rowid();
            insert_codings(
                conn,
                doc_id,
                "allergies",
                a.substance.as_ref(),
                systems::SUBSTANCE,
            )?;
            for r in &a.reactions {
                let (code, system, display) = cols(r.code.as_ref());
                let (s_code, _, s_display) = cols(r.severity.as_ref());
                conn.execute(
                    "INSERT INTO allergy_reactions (allergy_id, code, code_system, display,
                        severity_code, severity_display) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![allergy_id, code, system, display, s_code, s_display],
                )?;
            }
        }
        Entry::Result(panel) => insert_panel(conn, ctx, section_id, panel, false)?,
        Entry::VitalSigns(panel) => insert_panel(conn, ctx, section_id, panel, true)?,
        Entry::Immunization(i) => {
            let (code, system, display) = coded(i.vaccine.as_ref(), systems::VACCINE);
            let (route, _, route_display) = cols(i.route.as_ref());
            let (reason, _, reason_display) = cols(i.refusal_reason.as_ref());
            conn.execute(
                "INSERT INTO immunizations (document_id, patient_id, section_id, vaccine_code,
                    vaccine_system, vaccine_display, status, time, negated, lot_number,
                    manufacturer, route_code, route_display, dose_value, dose_unit,
                    refusal_reason_code, refusal_reason_display)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    i.status,
                    i.time,
                    i.negated,
                    i.lot_number,
                    i.manufacturer,
                    route,
                    route_display,
                    i.dose_value,
                    i.dose_unit,
                    reason,
                    reason_display,
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "immunizations",
                i.vaccine.as_ref(),
                systems::VACCINE,
            )?;
        }
        Entry::Procedure(p) => {
            let (code, system, display) = coded(p.code.as_ref(), systems::PROCEDURE);
            let (site, _, site_display) = cols(p.target_site.as_ref());
            conn.execute(
                "INSERT INTO procedures (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time,
                    target_site_code, target_site_display, performer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    p.entry_type,
                    p.mood_code,
                    code,
                    system,
                    display,
                    p.status,
                    p.start,
                    p.end,
                    site,
                    site_display,
                    p.performers.iter().find_map(participant_name),
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "procedures",
                p.code.as_ref(),
                systems::PROCEDURE,
            )?;
        }
        Entry::Encounter(e) => {
            let id = e.ids.first();
            let (code, system, display) = cols(e.code.as_ref());
            conn.execute(
                "INSERT INTO encounters (document_id, patient_id, section_id, is_episode, id_root,
                    id_extension, code, code_system, display, start_time, end_time, location,
                    responsible_party)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    id.and_then(|i| i.root.as_deref()),
                    id.and_then(|i| i.extension.as_deref()),
                    code,
                    system,
                    display,
                    e.start,
                    e.end,
                    e.location,
                    e.performers.iter().find_map(participant_name),
                ],
            )?;
            let encounter_id = conn.last_insert_rowid();
            for d in &e.diagnoses {
                let (code, system, display) = cols(Some(d));
                conn.execute(
                    "INSERT INTO encounter_diagnoses (encounter_id, code, code_system, display)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![encounter_id, code, system, display],
                )?;
            }
        }
        Entry::SocialHistory(s) => {
            let (code, system, display) = cols(s.code.as_ref());
            let v = s.value.as_ref();
            let (v_code, _, v_display) = cols(v.and_then(|v| v.code.as_ref()));
            conn.execute(
                "INSERT INTO social_history (document_id, patient_id, section_id,
                    observation_type, code, code_system, display, value, unit, value_code,
                    value_display, status, start_time, end_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    s.observation_type,
                    code,
                    system,
                    display,
                    v.and_then(|v| v.value.as_deref().or(v.text.as_deref())),
                    v.and_then(|v| v.unit.as_deref()),
                    v_code,
                    v_display,
                    s.status,
                    s.start,
                    s.end,
                ],
            )?;
        }
        Entry::PlanOfCare(p) => {
            let (code, system, display) = cols(p.code.as_ref());
            conn.execute(
                "INSERT INTO plan_of_care (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    p.entry_type,
                    p.mood_code,
                    code,
                    system,
                    display,
                    p.status,
                    p.start,
                    p.end,
                ],
            )?;
        }
        Entry::FamilyHistory(f) => {
            let (rel, _, rel_display) = cols(f.relation.as_ref());
            let gender = f.gender.as_ref().and_then(|g| g.code.as_deref());
            for c in &f.conditions {
                let (code, system, display) = cols(c.code.as_ref());
                conn.execute(
                    "INSERT INTO family_history (document_id, patient_id, section_id,
                        relation_code, relation_display, relative_gender, relative_birth_time,
                        condition_code, condition_system, condition_display, onset_age,
                        onset_age_unit, cause_of_death)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        doc_id,
                        pat_id,
                        section_id,
                        rel,
                        rel_display,
                        gender,
                        f.birth_time,
                        code,
                        system,
                        display,
                        c.onset_age,
                        c.onset_age_unit,
                        c.cause_of_death,
                    ],
                )?;
            }
        }
    }
    Ok(())
}

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
