//! Each `tests/fixtures/ccda/NAME.xml`, stored alone in a fresh store, must produce exactly the
//! rows in `NAME.rows.json`; the identity fixtures stored together must link as
//! `identity_cases.rows.json` says. Run with `UPDATE_EXPECTED=1` to rewrite them, then review
//! the diff: these files are the specification of what analysts find in the tables.

mod support;

use directd::ingest::{extract_ccda, Limits};
use directd::store::clinical::{init, insert_document, Source};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

/// Per table, the columns worth pinning: what an extraction decided, not row ids or times.
const TABLES: &[(&str, &str)] = &[
    ("patients", "given, family, birth_time, gender_code"),
    ("patient_identifiers", "root, extension"),
    ("sections", "ordinal, kind, matched_by, title"),
    (
        "problems",
        "code, code_system, display, problem_type, concern_status, status, onset, resolution, negated",
    ),
    (
        "medications",
        "drug_code, drug_system, drug_display, drug_name, status, mood_code, start_time, end_time, frequency, dose_value, dose_unit, route_code, route_display, negated",
    ),
    (
        "allergies",
        "substance_code, substance_system, substance_display, allergy_type_display, status, severity_display, negated",
    ),
    ("allergy_reactions", "code, display, severity_display"),
    (
        "results",
        "panel_code, code, code_system, display, value_type, value, unit, value_display, ref_range_text, ref_low, ref_high, interpretation_code",
    ),
    ("vital_signs", "code, display, value, unit"),
    ("immunizations", "vaccine_code, vaccine_display, status, negated, refusal_reason_display"),
    ("procedures", "entry_type, code, code_system, display, status"),
    ("encounters", "is_episode, code, display, discharge_disposition_code, discharge_disposition_display"),
    ("entry_codings", "entry_table, ordinal, code, code_system, chosen"),
];

fn open() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join("rows.sqlite")).expect("open");
    // A fresh store per fixture: without fsyncs (durability is not what these tests check).
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = OFF;")
        .expect("pragma");
    init(&conn).expect("schema");
    (dir, conn)
}

fn cell(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(format!("<{} bytes>", b.len())),
    }
}

fn query(conn: &Connection, sql: &str) -> Value {
    let mut stmt = conn.prepare(sql).expect(sql);
    let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
    let rows = stmt
        .query_map([], |r| {
            let mut m = Map::new();
            for (i, n) in names.iter().enumerate() {
                m.insert(n.clone(), cell(r.get_ref(i)?));
            }
            Ok(Value::Object(m))
        })
        .expect("query");
    Value::Array(rows.map(|r| r.expect("row")).collect())
}

fn store(conn: &Connection, name: &str) {
    let doc =
        extract_ccda(&support::ingest::fixture("ccda", name), &Limits::default()).expect(name);
    insert_document(
        conn,
        &Source {
            source_path: Some(name.into()),
            ..Source::default()
        },
        &doc,
    )
    .expect(name);
}

/// See [`support::expected::compare`]: the rows file is rewritten under `UPDATE_EXPECTED`.
fn check(path: &std::path::Path, actual: &Value, failures: &mut Vec<String>) {
    if let Err(e) = support::expected::compare(path, actual) {
        failures.push(e);
    }
}

#[test]
fn each_fixture_stores_the_expected_rows() {
    let mut failures = Vec::new();
    for path in support::ingest::xml_fixtures("ccda") {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let (_dir, conn) = open();
        store(&conn, name);
        let mut tables = Map::new();
        for (table, columns) in TABLES {
            let rows = query(&conn, &format!("SELECT {columns} FROM {table} ORDER BY id"));
            if rows.as_array().is_some_and(|r| !r.is_empty()) {
                tables.insert((*table).to_owned(), rows);
            }
        }
        check(
            &path.with_extension("rows.json"),
            &Value::Object(tables),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn identity_fixtures_link_as_expected() {
    let (_dir, conn) = open();
    let names = [
        "identity_shared_mrn_ann.xml",
        "identity_shared_mrn_bert.xml",
        "identity_variant_carla_1.xml",
        "identity_variant_carla_2.xml",
        "identity_chain_dora.xml",
        "identity_no_identifier.xml",
    ];
    for n in names {
        store(&conn, n);
    }
    // Persons are numbered by their first document so the file does not depend on row ids.
    let actual = json!({
        "documents": query(
            &conn,
            "SELECT d.source_path AS document,
                    trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_as_stated,
                    (SELECT min(d2.id) FROM documents d2 JOIN person_members m2
                       ON m2.patient_id = d2.patient_id WHERE m2.person_id = m.person_id)
                       AS person_first_document,
                    m.linked_by, m.evidence
             FROM documents d JOIN patients p ON p.id = d.patient_id
             JOIN person_members m ON m.patient_id = p.id ORDER BY d.id",
        ),
        "candidates": query(
            &conn,
            "SELECT a.source_path AS document, b.source_path AS other_document,
                    c.id_root, c.id_extension, c.reason, c.state
             FROM patient_link_candidates c
             JOIN documents a ON a.patient_id = c.patient_id
             JOIN documents b ON b.patient_id = c.other_patient_id ORDER BY c.id",
        ),
    });
    let mut failures = Vec::new();
    check(
        &support::ingest::fixture_dir("ccda").join("identity_cases.rows.json"),
        &actual,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
