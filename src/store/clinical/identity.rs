//! Patient identity across documents.
//!
//! A `patients` row is the patient exactly as one document states them, and every clinical row of
//! that document points at it, so no view can show a document under another person's demographics.
//! Rows of different documents are grouped into a *person* (`person_members`) only on evidence: an
//! identifier with the same assigning authority (root) and extension, and demographics that agree
//! (normalised family name, birth date, administrative sex, and the given name where both state
//! one) with every record already in that person. Real data reuses identifiers (test SSNs, example
//! MRN roots, one practice's MRN space at several sites), so a shared identifier alone is never
//! enough: a disagreement becomes a row in `patient_link_candidates` for a person to review, and
//! two persons are never merged automatically. Because each record keeps only its own document's
//! identifiers, a match cannot chain through identifiers another person's document added.

use rusqlite::{named_params, params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::cols;
use crate::ingest::model::{Document, Patient};

/// Schema step that replaced "one patients row per identifier" with "one row per document, grouped
/// into persons on evidence". Appended to the store's migrations; [`split_shared_patients`] then
/// rewrites rows stored under the old rule.
pub const MIGRATION: &str = include_str!("../migrations/0007_patient_identity.sql");

/// Schema step: the per-person index of identifiers and demographics that linking reads, kept by
/// triggers. Idempotent, so [`super::init`] and [`split_shared_patients`] can run it again.
pub const PERSON_INDEX_MIGRATION: &str = include_str!("../migrations/0011_person_index.sql");

/// A record can be compared against this many other people at most; a placeholder identifier
/// shared by hundreds of documents would otherwise fill the review list quadratically.
const MAX_CANDIDATES_PER_RECORD: usize = 20;

/// An identifier that this many different persons already carry identifies none of them (an
/// example MRN in vendors' sample documents, a practice's default number): it is not evidence, so
/// a new record is neither linked nor compared through it. Without the cap every record carrying
/// such a number was compared with every person before it: in a bulk load where 683 documents
/// carry the HL7 example MRN, that quadratic comparison was a fifth of `directd ingest`'s time.
const MAX_PERSONS_PER_IDENTIFIER: usize = 25;

/// Stores `p` as a new record, then links it to a person on evidence (or starts a person).
pub(super) fn assign_patient(conn: &Connection, p: &Patient) -> rusqlite::Result<i64> {
    let patient_id = insert_record(conn, p)?;
    link_on_evidence(conn, patient_id)?;
    Ok(patient_id)
}

fn usable_ids(p: &Patient) -> Vec<(&str, &str)> {
    p.ids
        .iter()
        .filter_map(|i| Some((i.root.as_deref()?, i.extension.as_deref()?)))
        .filter(|(_, ext)| !ext.trim().is_empty())
        .collect()
}

fn insert_record(conn: &Connection, p: &Patient) -> rusqlite::Result<i64> {
    let name = p
        .names
        .iter()
        .find(|n| n.name_use.as_deref() == Some("L"))
        .or(p.names.first());
    let join = |v: Option<&Vec<String>>| v.filter(|v| !v.is_empty()).map(|v| v.join(" "));
    let addr = p.addresses.first();
    let telecom = |scheme: &str| {
        p.telecoms.iter().find_map(|t| {
            t.value
                .as_deref()
                .and_then(|v| v.strip_prefix(scheme))
                .map(str::trim)
        })
    };
    let (gender, _, gender_display) = cols(p.gender.as_ref());
    let (marital, _, marital_display) = cols(p.marital_status.as_ref());
    let (race, _, race_display) = cols(p.races.first());
    let (eth, _, eth_display) = cols(p.ethnicities.first());
    let language = p
        .languages
        .iter()
        .find(|l| l.preferred == Some(true))
        .or(p.languages.first())
        .and_then(|l| l.code.as_deref());
    super::execute(
        conn,
        "INSERT INTO patients (given, family, prefix, suffix, birth_time, gender_code,
            gender_display, marital_status_code, marital_status_display, race_code,
            race_display, ethnicity_code, ethnicity_display, language, street, city, state,
            postal_code, country, phone, email, provider_organization)
         VALUES (:given, :family, :prefix, :suffix, :birth_time, :gender_code,
             :gender_display, :marital_status_code, :marital_status_display, :race_code,
             :race_display, :ethnicity_code, :ethnicity_display, :language, :street,
             :city, :state, :postal_code, :country, :phone, :email, :provider_organization)",
        named_params! {
            ":given": join(name.map(|n| &n.given)),
            ":family": name.and_then(|n| n.family.as_deref()),
            ":prefix": join(name.map(|n| &n.prefixes)),
            ":suffix": join(name.map(|n| &n.suffixes)),
            ":birth_time": p.birth_time,
            ":gender_code": gender,
            ":gender_display": gender_display,
            ":marital_status_code": marital,
            ":marital_status_display": marital_display,
            ":race_code": race,
            ":race_display": race_display,
            ":ethnicity_code": eth,
            ":ethnicity_display": eth_display,
            ":language": language,
            ":street": join(addr.map(|a| &a.street)),
            ":city": addr.and_then(|a| a.city.as_deref()),
            ":state": addr.and_then(|a| a.state.as_deref()),
            ":postal_code": addr.and_then(|a| a.postal_code.as_deref()),
            ":country": addr.and_then(|a| a.country.as_deref()),
            ":phone": telecom("tel:"),
            ":email": telecom("mailto:"),
            ":provider_organization": p.provider_organization
                .as_ref()
                .and_then(|o| o.names.first()),
        },
    )?;
    let patient_id = conn.last_insert_rowid();
    for (root, ext) in usable_ids(p) {
        super::execute(
            conn,
            "INSERT OR IGNORE INTO patient_identifiers (patient_id, root, extension)
             VALUES (?1, ?2, ?3)",
            params![patient_id, root, ext],
        )?;
    }
    for race in &p.races {
        let (code, system, display) = cols(Some(race));
        super::execute(
            conn,
            "INSERT OR IGNORE INTO patient_races (patient_id, code, code_system, display)
             VALUES (?1, ?2, ?3, ?4)",
            params![patient_id, code, system, display],
        )?;
    }
    Ok(patient_id)
}

/// The demographics that must agree before two records count as one person, normalised so that
/// case, accents, punctuation and spacing ("O'Brien", "OBRIEN", "Müller"/"Muller") do not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Demographics {
    family: Option<String>,
    /// The first given name only: middle names and initials come and go between systems.
    given: Option<String>,
    /// `YYYY-MM-DD`; a year or month alone is not precise enough to be evidence.
    birth_date: Option<String>,
    sex: Option<String>,
}

fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è'..='ë' | 'ē' | 'ę' | 'ě' => 'e',
            'ì'..='ï' | 'ī' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò'..='ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ù'..='ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            other => other,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Demographics {
    fn load(conn: &Connection, patient_id: i64) -> rusqlite::Result<Demographics> {
        conn.prepare_cached(
            "SELECT family, given, birth_time, gender_code FROM patients WHERE id = ?1",
        )?
        .query_row([patient_id], |r| Demographics::from_row(r, 0))
    }

    /// From the columns `family, given, birth_time, gender_code` starting at `at`.
    fn from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Demographics> {
        let family: Option<String> = r.get(at)?;
        let given: Option<String> = r.get(at + 1)?;
        let birth: Option<String> = r.get(at + 2)?;
        let sex: Option<String> = r.get(at + 3)?;
        Ok(Demographics {
            family: family.as_deref().map(fold).and_then(non_empty),
            given: given
                .as_deref()
                .and_then(|g| g.split_whitespace().next())
                .map(fold)
                .and_then(non_empty),
            birth_date: birth
                .as_deref()
                .and_then(|b| b.get(..10))
                .filter(|b| b.as_bytes()[4] == b'-' && b.as_bytes()[7] == b'-')
                .map(str::to_owned),
            sex: sex
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|s| matches!(s.as_str(), "M" | "F")),
        })
    }

    /// `None` when the two agree; otherwise why not, in words a reviewer can act on (no PHI).
    fn disagreement(&self, other: &Demographics) -> Option<&'static str> {
        let (Some(a), Some(b)) = (&self.family, &other.family) else {
            return Some("a family name is missing");
        };
        if a != b {
            return Some("family name differs");
        }
        let (Some(a), Some(b)) = (&self.birth_date, &other.birth_date) else {
            return Some("a full birth date is missing");
        };
        if a != b {
            return Some("birth date differs");
        }
        let (Some(a), Some(b)) = (&self.sex, &other.sex) else {
            return Some("administrative sex is missing or not M/F");
        };
        if a != b {
            return Some("administrative sex differs");
        }
        if let (Some(a), Some(b)) = (&self.given, &other.given) {
            // An initial agrees with a name it begins ("J" and "John").
            let initial = |x: &str, y: &str| x.chars().count() == 1 && y.starts_with(x);
            if a != b && !initial(a, b) && !initial(b, a) {
                return Some("given name differs");
            }
        }
        None
    }
}

/// Identifiers that are placeholders by construction and so prove nothing about who a patient is:
/// SSNs that the Social Security Administration never issues (area 000, 666 or 9xx, group 00,
/// serial 0000) and the classic test numbers (all one digit, 123-45-6789).
fn is_placeholder(root: &str, extension: &str) -> bool {
    const SSN: &str = "2.16.840.1.113883.4.1";
    if root != SSN {
        return false;
    }
    let digits: String = extension.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 9 {
        return true;
    }
    let (area, group, serial) = (&digits[..3], &digits[3..5], &digits[5..]);
    let b = digits.as_bytes();
    area == "000"
        || area == "666"
        || area.starts_with('9')
        || group == "00"
        || serial == "0000"
        || b.iter().all(|&c| c == b[0])
        || digits == "123456789"
}

fn person_of(conn: &Connection, patient_id: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT person_id FROM person_members WHERE patient_id = ?1")?
        .query_row([patient_id], |r| r.get(0))
        .optional()
}

fn members(conn: &Connection, person_id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT patient_id FROM person_members WHERE person_id = ?1 ORDER BY patient_id",
    )?;
    let rows = stmt.query_map([person_id], |r| r.get(0))?;
    rows.collect()
}

fn new_person(conn: &Connection, patient_id: i64) -> rusqlite::Result<i64> {
    super::execute(conn, "INSERT INTO persons DEFAULT VALUES", [])?;
    let person_id = conn.last_insert_rowid();
    super::execute(
        conn,
        "INSERT INTO person_members (patient_id, person_id, linked_by) VALUES (?1, ?2, 'first')",
        params![patient_id, person_id],
    )?;
    Ok(person_id)
}

fn add_candidate(
    conn: &Connection,
    patient_id: i64,
    other: i64,
    (root, ext): (&str, &str),
    reason: &str,
) -> rusqlite::Result<()> {
    super::execute(
        conn,
        "INSERT OR IGNORE INTO patient_link_candidates
            (patient_id, other_patient_id, id_root, id_extension, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![patient_id, other, root, ext, reason],
    )?;
    Ok(())
}

/// The persons that hold a record carrying `(root, extension)` (the record being linked is in
/// none yet), in the order of their first such record: `(person, that record)`; empty when more
/// than [`MAX_PERSONS_PER_IDENTIFIER`] persons carry it.
///
/// Read from the per-person index the triggers of migration 0011 keep, not from every record
/// that carries the identifier: that join made storing a patient's n-th document cost O(n).
fn sharing_persons(
    conn: &Connection,
    (root, ext): (&str, &str),
) -> rusqlite::Result<Vec<(i64, i64)>> {
    // `person_identifiers` (migration 0011) has a row per person and identifier. The record
    // being linked is not a member of any person yet, so every row is another person's.
    let mut stmt = conn.prepare_cached(
        "SELECT person_id, first_patient_id FROM person_identifiers
         WHERE root = ?1 AND extension = ?2 ORDER BY first_patient_id LIMIT ?3",
    )?;
    let limit = MAX_PERSONS_PER_IDENTIFIER as i64 + 1;
    let rows = stmt.query_map(params![root, ext, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let persons: Vec<(i64, i64)> = rows.collect::<rusqlite::Result<_>>()?;
    if persons.len() > MAX_PERSONS_PER_IDENTIFIER {
        return Ok(Vec::new());
    }
    Ok(persons)
}

/// The distinct demographics of a person's records, in the order they first appear. Distinct
/// ones are enough, since agreement depends on nothing else; the index keeps only those. Read
/// once per person and record: a person found again through a second identifier is not read
/// again.
fn person_demographics(conn: &Connection, person: i64) -> rusqlite::Result<Vec<Demographics>> {
    let mut stmt = conn.prepare_cached(
        "SELECT family, given, birth_time, gender_code FROM person_demographics
         WHERE person_id = ?1 ORDER BY first_patient_id",
    )?;
    let rows = stmt.query_map([person], |r| Demographics::from_row(r, 0))?;
    rows.collect()
}

/// Puts a freshly stored record into the one person its evidence supports, or into a new person.
fn link_on_evidence(conn: &Connection, patient_id: i64) -> rusqlite::Result<()> {
    let me = Demographics::load(conn, patient_id)?;
    let ids: Vec<(String, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT root, extension FROM patient_identifiers WHERE patient_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([patient_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut judged: Vec<i64> = Vec::new();
    let mut agreeing: Vec<(i64, String)> = Vec::new();
    let mut candidates = 0usize;
    for (root, ext) in &ids {
        if is_placeholder(root, ext) {
            continue;
        }
        for (person, other) in sharing_persons(conn, (root, ext))? {
            if judged.contains(&person) {
                continue;
            }
            judged.push(person);
            let records = person_demographics(conn, person)?;
            // Every record of the person must agree, not just the one sharing the identifier:
            // otherwise a chain of small differences could walk one person into another.
            match records.iter().find_map(|d| me.disagreement(d)) {
                None => agreeing.push((person, format!("{root}^{ext}"))),
                Some(r) if candidates < MAX_CANDIDATES_PER_RECORD => {
                    candidates += 1;
                    add_candidate(conn, patient_id, other, (root, ext), r)?;
                }
                Some(_) => {}
            }
        }
    }
    let Some((person, evidence)) = agreeing.first().cloned() else {
        new_person(conn, patient_id)?;
        return Ok(());
    };
    super::execute(
        conn,
        "INSERT INTO person_members (patient_id, person_id, linked_by, evidence)
         VALUES (?1, ?2, 'evidence', ?3)",
        params![
            patient_id,
            person,
            format!("identifier {evidence}; family name, birth date and sex agree, and given name where both state one")
        ],
    )?;
    // Agreeing with two persons means they may be one, but joining them is a person's decision.
    for (other_person, evidence) in agreeing.iter().skip(1) {
        if let Some(&other) = members(conn, *other_person)?.first() {
            let (root, ext) = evidence.split_once('^').unwrap_or((evidence, ""));
            add_candidate(
                conn,
                patient_id,
                other,
                (root, ext),
                "also agrees with another person; persons are never merged automatically",
            )?;
        }
    }
    Ok(())
}

/// Rewrites a store written under the old rule, where every document whose patient shared any
/// identifier with an earlier one was filed under that earlier row and its demographics. Each
/// document gets its own record from its stored extraction, linked by the rules above, in the
/// order the documents were stored.
pub fn split_shared_patients(conn: &Connection) -> rusqlite::Result<()> {
    // Linking reads the per-person index, which a store this old does not have yet (its own
    // migration, later in the list, runs again harmlessly: it is idempotent).
    conn.execute_batch(PERSON_INDEX_MIGRATION)?;
    // Ids first, each extraction read on its own: a store's JSON may not fit in memory at once.
    let docs: Vec<i64> = {
        let mut stmt =
            conn.prepare("SELECT id FROM documents WHERE patient_id IS NOT NULL ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let old: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM patients")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for document_id in docs {
        let json: String = conn.query_row(
            "SELECT document_json FROM documents WHERE id = ?1",
            [document_id],
            |r| r.get(0),
        )?;
        let doc: Document = serde_json::from_str(&json).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        let new_id = match &doc.patient {
            Some(p) => Some(assign_patient(conn, p)?),
            None => None,
        };
        conn.execute(
            "UPDATE documents SET patient_id = ?2 WHERE id = ?1",
            params![document_id, new_id],
        )?;
        for table in super::PATIENT_TABLES {
            conn.execute(
                &format!("UPDATE {table} SET patient_id = ?2 WHERE document_id = ?1"),
                params![document_id, new_id],
            )?;
        }
    }
    for id in old {
        conn.execute("DELETE FROM patients WHERE id = ?1", [id])?;
    }
    Ok(())
}

/// One person as `directd patients list` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSummary {
    pub person_id: i64,
    /// Every distinct name the person's documents state, comma-separated.
    pub names: String,
    pub birth_times: Option<String>,
    pub records: i64,
    pub documents: i64,
    pub open_candidates: i64,
}

/// One document's statement of the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub patient_id: i64,
    pub person_id: Option<i64>,
    pub name: String,
    pub birth_time: Option<String>,
    pub gender_code: Option<String>,
    pub linked_by: Option<String>,
    pub evidence: Option<String>,
    pub identifiers: Vec<String>,
    pub document_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCandidate {
    #[serde(rename = "candidate_id")]
    pub id: i64,
    pub patient_id: i64,
    pub other_patient_id: i64,
    pub identifier: String,
    pub reason: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonDetail {
    pub person_id: i64,
    pub records: Vec<PatientRecord>,
    pub candidates: Vec<LinkCandidate>,
}

const CANDIDATE_COLUMNS: &str =
    "c.id, c.patient_id, c.other_patient_id, c.id_extension || ' ^ ' || c.id_root, c.reason, c.state";

fn candidate_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LinkCandidate> {
    Ok(LinkCandidate {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        other_patient_id: r.get(2)?,
        identifier: r.get(3)?,
        reason: r.get(4)?,
        state: r.get(5)?,
    })
}

pub fn list_persons(conn: &Connection) -> rusqlite::Result<Vec<PersonSummary>> {
    let mut stmt = conn.prepare(
        "SELECT person_id, coalesce(names, ''), birth_times, record_count, document_count,
                open_candidates
         FROM v_persons ORDER BY person_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PersonSummary {
            person_id: r.get(0)?,
            names: r.get(1)?,
            birth_times: r.get(2)?,
            records: r.get(3)?,
            documents: r.get(4)?,
            open_candidates: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub fn load_record(conn: &Connection, patient_id: i64) -> rusqlite::Result<Option<PatientRecord>> {
    let row = conn
        .query_row(
            "SELECT p.id, m.person_id,
                    trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')),
                    p.birth_time, p.gender_code, m.linked_by, m.evidence
             FROM patients p LEFT JOIN person_members m ON m.patient_id = p.id WHERE p.id = ?1",
            [patient_id],
            |r| {
                Ok(PatientRecord {
                    patient_id: r.get(0)?,
                    person_id: r.get(1)?,
                    name: r.get(2)?,
                    birth_time: r.get(3)?,
                    gender_code: r.get(4)?,
                    linked_by: r.get(5)?,
                    evidence: r.get(6)?,
                    identifiers: Vec::new(),
                    document_ids: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut record) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT extension || ' ^ ' || root FROM patient_identifiers WHERE patient_id = ?1
         ORDER BY id",
    )?;
    record.identifiers = stmt
        .query_map([patient_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT id FROM documents WHERE patient_id = ?1 ORDER BY id")?;
    record.document_ids = stmt
        .query_map([patient_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(record))
}

pub fn load_person(conn: &Connection, person_id: i64) -> rusqlite::Result<Option<PersonDetail>> {
    let ids = members(conn, person_id)?;
    if ids.is_empty() {
        return Ok(None);
    }
    let mut records = Vec::with_capacity(ids.len());
    for id in &ids {
        records.extend(load_record(conn, *id)?);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT {CANDIDATE_COLUMNS} FROM patient_link_candidates c
         JOIN person_members m ON m.patient_id IN (c.patient_id, c.other_patient_id)
         WHERE m.person_id = ?1 ORDER BY c.id"
    ))?;
    let candidates = stmt
        .query_map([person_id], candidate_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(PersonDetail {
        person_id,
        records,
        candidates,
    }))
}

/// What a manual link or unlink changed, for the audit trail and the command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Relink {
    /// The person the record(s) now belong to.
    pub person_id: i64,
    /// The person they left (`None` when nothing moved).
    pub from_person_id: Option<i64>,
    /// Records moved.
    pub moved: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no patient record {0} (see `directd patients list` / `show`)")]
    NoRecord(i64),
    #[error("no link candidate {0} (see `directd patients review`)")]
    NoCandidate(i64),
    #[error("patient record {0} is the only record of its person; nothing to unlink")]
    AlreadyAlone(i64),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

fn require_person(conn: &Connection, patient_id: i64) -> Result<i64, IdentityError> {
    person_of(conn, patient_id)?.ok_or(IdentityError::NoRecord(patient_id))
}

/// Puts every record of `b`'s person into `a`'s person: a reviewer's decision that they are one
/// patient. Candidates between the two persons are marked linked.
pub fn link(conn: &Connection, a: i64, b: i64) -> Result<Relink, IdentityError> {
    let pa = require_person(conn, a)?;
    let pb = require_person(conn, b)?;
    if pa == pb {
        return Ok(Relink {
            person_id: pa,
            from_person_id: None,
            moved: 0,
        });
    }
    let moved = conn.execute(
        "UPDATE person_members SET person_id = ?1, linked_by = 'manual',
            evidence = 'linked by a reviewer', linked_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')
         WHERE person_id = ?2",
        params![pa, pb],
    )?;
    conn.execute("DELETE FROM persons WHERE id = ?1", [pb])?;
    conn.execute(
        "UPDATE patient_link_candidates SET state = 'linked'
         WHERE patient_id IN (SELECT patient_id FROM person_members WHERE person_id = ?1)
           AND other_patient_id IN (SELECT patient_id FROM person_members WHERE person_id = ?1)",
        [pa],
    )?;
    Ok(Relink {
        person_id: pa,
        from_person_id: Some(pb),
        moved,
    })
}

/// Takes one record out of its person into a person of its own.
pub fn unlink(conn: &Connection, patient_id: i64) -> Result<Relink, IdentityError> {
    let from = require_person(conn, patient_id)?;
    if members(conn, from)?.len() < 2 {
        return Err(IdentityError::AlreadyAlone(patient_id));
    }
    conn.execute(
        "DELETE FROM person_members WHERE patient_id = ?1",
        [patient_id],
    )?;
    let person_id = new_person(conn, patient_id)?;
    conn.execute(
        "UPDATE person_members SET linked_by = 'manual', evidence = 'unlinked by a reviewer'
         WHERE patient_id = ?1",
        [patient_id],
    )?;
    Ok(Relink {
        person_id,
        from_person_id: Some(from),
        moved: 1,
    })
}

/// Closes a candidate without linking: a reviewer decided the two records are different people.
pub fn dismiss(conn: &Connection, candidate_id: i64) -> Result<(i64, i64), IdentityError> {
    let pair: Option<(i64, i64)> = conn
        .query_row(
            "UPDATE patient_link_candidates SET state = 'dismissed' WHERE id = ?1
             RETURNING patient_id, other_patient_id",
            [candidate_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    pair.ok_or(IdentityError::NoCandidate(candidate_id))
}

/// Open review items across the store, oldest first.
pub fn open_candidates(conn: &Connection) -> rusqlite::Result<Vec<LinkCandidate>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM patient_link_candidates c WHERE c.state = 'open'
         ORDER BY c.id"
    ))?;
    let rows = stmt.query_map([], candidate_row)?;
    rows.collect()
}

/// The reviewer's commands. Each change and its audit row commit together: an identity decision
/// without a record of who made it would be worse than none.
impl crate::store::Store {
    pub fn persons(&self) -> Result<Vec<PersonSummary>, crate::store::StoreError> {
        list_persons(&self.conn).map_err(|e| self.err(e))
    }

    pub fn person(&self, person_id: i64) -> Result<Option<PersonDetail>, crate::store::StoreError> {
        load_person(&self.conn, person_id).map_err(|e| self.err(e))
    }

    pub fn link_candidates(&self) -> Result<Vec<LinkCandidate>, crate::store::StoreError> {
        open_candidates(&self.conn).map_err(|e| self.err(e))
    }

    /// Runs one reviewer decision and its audit row in one transaction. `Ok(Err(_))` is a
    /// refusal (unknown id, nothing to do): nothing was changed.
    fn decide<T>(
        &mut self,
        actor: &str,
        action: &str,
        change: impl FnOnce(&Connection) -> Result<T, IdentityError>,
        audit: impl FnOnce(&T) -> (String, String),
    ) -> Result<Result<T, IdentityError>, crate::store::StoreError> {
        self.write(|tx| {
            let outcome = match change(tx) {
                Ok(o) => o,
                Err(IdentityError::Sqlite(e)) => return Err(e),
                Err(refusal) => return Ok(Err(refusal)),
            };
            let (target, detail) = audit(&outcome);
            crate::store::audit::record(tx, actor, action, Some(&target), Some(&detail))?;
            Ok(Ok(outcome))
        })
    }

    pub fn link_patients(
        &mut self,
        actor: &str,
        a: i64,
        b: i64,
    ) -> Result<Result<Relink, IdentityError>, crate::store::StoreError> {
        self.decide(
            actor,
            "patients link",
            |tx| link(tx, a, b),
            |o| {
                let what = match o.from_person_id {
                    Some(from) => format!("took {} record(s) of person {from}", o.moved),
                    None => "already held both".into(),
                };
                (
                    format!("patient:{a}"),
                    format!("with patient:{b}; person {} {what}", o.person_id),
                )
            },
        )
    }

    pub fn unlink_patient(
        &mut self,
        actor: &str,
        patient_id: i64,
    ) -> Result<Result<Relink, IdentityError>, crate::store::StoreError> {
        self.decide(
            actor,
            "patients unlink",
            |tx| unlink(tx, patient_id),
            |o| {
                (
                    format!("patient:{patient_id}"),
                    format!(
                        "left person {} for new person {}",
                        o.from_person_id.unwrap_or_default(),
                        o.person_id
                    ),
                )
            },
        )
    }

    pub fn dismiss_candidate(
        &mut self,
        actor: &str,
        candidate_id: i64,
    ) -> Result<Result<(i64, i64), IdentityError>, crate::store::StoreError> {
        self.decide(
            actor,
            "patients dismiss",
            |tx| dismiss(tx, candidate_id),
            |(a, b)| {
                (
                    format!("patient:{a}"),
                    format!("candidate {candidate_id} with patient:{b}"),
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_ssns_are_not_evidence() {
        let ssn = "2.16.840.1.113883.4.1";
        for fake in [
            "111-11-1111",
            "123-45-6789",
            "999999999",
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "12345",
        ] {
            assert!(is_placeholder(ssn, fake), "{fake}");
        }
        assert!(!is_placeholder(ssn, "219-09-9999"));
        assert!(!is_placeholder("2.16.840.1.113883.19.5", "111-11-1111"));
    }

    fn demo(family: &str, given: &str, birth: &str, sex: &str) -> Demographics {
        let opt = |s: &str| non_empty(s.to_owned());
        Demographics {
            family: opt(&fold(family)),
            given: opt(&fold(given)),
            birth_date: opt(birth),
            sex: opt(sex),
        }
    }

    #[test]
    fn demographics_agree_across_spelling_but_not_across_people() {
        let a = demo("O'Brien", "Seán", "1950-02-03", "M");
        assert_eq!(
            a.disagreement(&demo("OBRIEN", "sean", "1950-02-03", "M")),
            None
        );
        assert_eq!(
            a.disagreement(&demo("O Brien", "S", "1950-02-03", "M")),
            None
        );
        assert_eq!(
            a.disagreement(&demo("O'Brien", "", "1950-02-03", "M")),
            None
        );
        assert_eq!(
            a.disagreement(&demo("O'Brien", "Sean", "1950-02-04", "M")),
            Some("birth date differs")
        );
        assert_eq!(
            a.disagreement(&demo("O'Brien", "Sean", "1950-02-03", "F")),
            Some("administrative sex differs")
        );
        assert_eq!(
            a.disagreement(&demo("O'Brien", "Mary", "1950-02-03", "M")),
            Some("given name differs")
        );
        assert_eq!(
            a.disagreement(&demo("", "Sean", "1950-02-03", "M")),
            Some("a family name is missing")
        );
        assert_eq!(
            a.disagreement(&demo("Bryan", "Sean", "1950-02-03", "M")),
            Some("family name differs")
        );
    }
}
