//! store_clinical against a real SQLite file.

#[path = "ingest_support/mod.rs"]
mod common;

use directd::ingest::{extract_ccda, Document, Limits};
use directd::store::clinical::{init, insert_document, list_documents, load_document, Source};
use rusqlite::Connection;

fn open() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join("clinical.sqlite")).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .expect("pragma");
    init(&conn).expect("schema");
    (dir, conn)
}

fn doc(name: &str) -> Document {
    extract_ccda(&common::fixture("ccda", name), &Limits::default()).expect("extract")
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

const TABLES: [&str; 19] = [
    "documents",
    "patients",
    "patient_identifiers",
    "patient_races",
    "document_participants",
    "service_events",
    "sections",
    "encounters",
    "encounter_diagnoses",
    "problems",
    "medications",
    "allergies",
    "allergy_reactions",
    "results",
    "vital_signs",
    "immunizations",
    "procedures",
    "social_history",
    "plan_of_care",
];

#[test]
fn insert_fills_every_table() {
    let (_dir, conn) = open();
    let source = Source {
        attachment_id: Some(7),
        ..Source::default()
    };
    let out = insert_document(&conn, &source, &doc("ccd_r21_full.xml")).expect("insert");
    assert!(out.inserted);
    for table in TABLES.iter().chain(["family_history"].iter()) {
        assert!(count(&conn, table) > 0, "{table} is empty");
    }
    assert_eq!(count(&conn, "problems"), 2);
    assert_eq!(count(&conn, "medications"), 2);
    assert_eq!(count(&conn, "results"), 4);
    assert_eq!(count(&conn, "vital_signs"), 3);
    assert_eq!(count(&conn, "plan_of_care"), 5);
    // The episode of care plus one Encounter Activity.
    assert_eq!(count(&conn, "encounters"), 2);
    let (hgb, num): (String, f64) = conn
        .query_row(
            "SELECT value, value_num FROM results WHERE code = '718-7'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("hgb");
    assert_eq!((hgb.as_str(), num), ("13.2", 13.2));
    let smoking: String = conn
        .query_row(
            "SELECT value_display FROM social_history WHERE observation_type = 'smoking_status'",
            [],
            |r| r.get(0),
        )
        .expect("smoking");
    assert_eq!(smoking, "Former smoker");
}

#[test]
fn reinserting_the_same_bytes_adds_no_rows() {
    let (_dir, conn) = open();
    let d = doc("ccd_r21_full.xml");
    let first = insert_document(&conn, &Source::default(), &d).expect("first");
    let before: Vec<i64> = TABLES.iter().map(|t| count(&conn, t)).collect();
    let second = insert_document(
        &conn,
        &Source {
            source_path: Some("/elsewhere/copy.xml".into()),
            ..Source::default()
        },
        &d,
    )
    .expect("second");
    assert!(!second.inserted);
    assert_eq!(second.document_id, first.document_id);
    let after: Vec<i64> = TABLES.iter().map(|t| count(&conn, t)).collect();
    assert_eq!(before, after);
}

#[test]
fn works_inside_a_caller_transaction() {
    let (_dir, mut conn) = open();
    let tx = conn.transaction().expect("tx");
    insert_document(&tx, &Source::default(), &doc("ccd_r21_full.xml")).expect("insert");
    tx.commit().expect("commit");
    assert_eq!(count(&conn, "documents"), 1);
}

#[test]
fn same_patient_identifier_links_documents() {
    let (_dir, conn) = open();
    for name in [
        "ccd_r21_full.xml",
        "discharge_summary_loinc_only.xml",
        "r11_prefixed_no_realm_header.xml",
        "unstructured_b64_pdf.xml",
        "nullflavor_no_templates.xml",
    ] {
        insert_document(&conn, &Source::default(), &doc(name)).expect(name);
    }
    // Zelda (3 documents by MRN), Otto, and the fully nulled patient who cannot be matched.
    assert_eq!(count(&conn, "patients"), 3);

    let zelda = list_documents(&conn, Some("Quux")).expect("list");
    assert_eq!(zelda.len(), 3);
    assert!(zelda
        .iter()
        .all(|d| d.patient_name.as_deref() == Some("Zelda Marie Quux")));
    let by_mrn = list_documents(&conn, Some("MRN-424242")).expect("list");
    assert_eq!(by_mrn.len(), 3);
    let otto = list_documents(&conn, Some("PAT-1")).expect("list");
    assert_eq!(otto.len(), 1);
    assert_eq!(otto[0].kind, "ccd");
    assert_eq!(list_documents(&conn, None).expect("all").len(), 5);
    assert!(list_documents(&conn, Some("Nobody"))
        .expect("none")
        .is_empty());

    let (patients, docs): (i64, i64) = conn
        .query_row(
            "SELECT count(*), max(document_count) FROM v_patient_documents",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("view");
    assert_eq!((patients, docs), (3, 3));
    for view in ["v_problems", "v_medications", "v_results", "v_allergies"] {
        assert!(count(&conn, view) > 0, "{view} is empty");
    }
    let name: String = conn
        .query_row(
            "SELECT patient_name FROM v_problems WHERE code = '195967001'",
            [],
            |r| r.get(0),
        )
        .expect("asthma");
    assert_eq!(name, "Otto Q. Testperson");
}

#[test]
fn load_document_round_trips_the_extraction() {
    let (_dir, conn) = open();
    let d = doc("ccd_r21_full.xml");
    let id = insert_document(&conn, &Source::default(), &d)
        .expect("insert")
        .document_id;
    let stored = load_document(&conn, id).expect("load").expect("present");
    assert_eq!(stored.document, d);
    assert_eq!(
        stored.summary.title.as_deref(),
        Some("Continuity of Care Document")
    );
    assert!(load_document(&conn, id + 100).expect("load").is_none());
}

#[test]
fn derived_binary_is_not_duplicated_into_the_database() {
    let (_dir, conn) = open();
    let d = doc("unstructured_b64_pdf.xml");
    let id = insert_document(&conn, &Source::default(), &d)
        .expect("insert")
        .document_id;
    let (sha, size): (String, i64) = conn
        .query_row(
            "SELECT derived_sha256, derived_size FROM documents WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    let derived = d.non_xml_body.and_then(|b| b.derived).expect("derived");
    assert_eq!((sha, size as u64), (derived.sha256, derived.size));
    let stored = load_document(&conn, id).expect("load").expect("present");
    let stored_bytes = stored
        .document
        .non_xml_body
        .and_then(|b| b.derived)
        .map(|d| d.bytes)
        .expect("derived");
    assert!(stored_bytes.is_empty());
}

#[test]
fn schema_is_idempotent() {
    let (_dir, conn) = open();
    init(&conn).expect("second init");
}

#[test]
fn xdm_attachment_end_to_end() {
    use directd::ingest::{ingest_bytes, Content};
    let (_dir, conn) = open();
    let (a, b) = (
        common::fixture("ccda", "ccd_r21_full.xml"),
        common::fixture("ccda", "discharge_summary_loinc_only.xml"),
    );
    let meta = common::metadata_xml(&[
        common::MetaDoc::full("DOC0001.XML", "text/xml", &a),
        common::MetaDoc::full("DOC0002.XML", "text/xml", &b),
    ]);
    let zip = common::build_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
        ("IHE_XDM/SUBSET01/DOC0002.XML", &b),
    ]);
    for round in 0..2 {
        let extracted = ingest_bytes(&zip, "application/octet-stream", None, &Limits::default())
            .expect("ingest");
        for e in extracted {
            let Content::Document(doc) = e.content else {
                panic!("unexpected content");
            };
            let source = Source {
                attachment_id: Some(42),
                xdm_uri: e.xdm.map(|m| m.uri),
                ..Source::default()
            };
            let out = insert_document(&conn, &source, &doc).expect("insert");
            assert_eq!(out.inserted, round == 0);
        }
    }
    let uris: Vec<String> = conn
        .prepare("SELECT xdm_uri FROM documents WHERE attachment_id = 42 ORDER BY xdm_uri")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(uris, vec!["DOC0001.XML", "DOC0002.XML"]);
    assert_eq!(count(&conn, "patients"), 1);
}
