//! store_clinical against a real SQLite file.

mod support;

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
    extract_ccda(&support::ingest::fixture("ccda", name), &Limits::default()).expect("extract")
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
    // One record per document; Zelda's three documents form one person (MRN, name, birth date
    // and sex agree), Otto and the fully nulled patient are persons of their own.
    assert_eq!(count(&conn, "patients"), 5);
    assert_eq!(count(&conn, "persons"), 3);

    let zelda = list_documents(&conn, Some("Quux")).expect("list");
    assert_eq!(zelda.len(), 3);
    assert!(zelda.iter().all(|d| d
        .patient_name
        .as_deref()
        .is_some_and(|n| n.starts_with("Zelda"))));
    assert_eq!(
        zelda
            .iter()
            .map(|d| d.person_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1
    );
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
    assert_eq!((patients, docs), (5, 1));
    let person_docs: i64 = conn
        .query_row("SELECT max(document_count) FROM v_persons", [], |r| {
            r.get(0)
        })
        .expect("persons view");
    assert_eq!(person_docs, 3);
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

/// Inserts fixtures in order and returns their document ids.
fn insert_all(conn: &Connection, names: &[&str]) -> Vec<i64> {
    names
        .iter()
        .map(|n| {
            insert_document(
                conn,
                &Source {
                    source_path: Some((*n).into()),
                    ..Source::default()
                },
                &doc(n),
            )
            .expect(n)
            .document_id
        })
        .collect()
}

/// The patient name every view gives for one document: its summary, its patients row, and each
/// `v_*` view that has rows for it.
fn names_shown(conn: &Connection, document_id: i64) -> Vec<String> {
    let mut names = vec![load_document(conn, document_id)
        .expect("load")
        .expect("present")
        .summary
        .patient_name
        .unwrap_or_default()];
    for sql in [
        "SELECT trim(coalesce(p.given,'') || ' ' || coalesce(p.family,'')) FROM documents d
         JOIN patients p ON p.id = d.patient_id WHERE d.id = ?1",
        "SELECT DISTINCT v.patient_name FROM v_patient_documents v JOIN documents d
         ON d.patient_id = v.patient_id WHERE d.id = ?1",
        "SELECT DISTINCT patient_name FROM v_problems WHERE document_id = ?1",
    ] {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let rows = stmt
            .query_map([document_id], |r| r.get::<_, String>(0))
            .expect("query");
        names.extend(rows.map(|r| r.expect("row")));
    }
    names
}

fn person(conn: &Connection, document_id: i64) -> i64 {
    conn.query_row(
        "SELECT m.person_id FROM documents d JOIN person_members m ON m.patient_id = d.patient_id
         WHERE d.id = ?1",
        [document_id],
        |r| r.get(0),
    )
    .expect("person")
}

fn candidates(conn: &Connection) -> Vec<(i64, i64, String, String)> {
    let mut stmt = conn
        .prepare(
            "SELECT a.id, b.id, c.id_extension, c.reason FROM patient_link_candidates c
             JOIN documents a ON a.patient_id = c.patient_id
             JOIN documents b ON b.patient_id = c.other_patient_id ORDER BY c.id",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn a_shared_identifier_does_not_file_another_person_under_it() {
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
        ],
    );
    // Each view of each document names the patient that document names.
    for (id, want) in ids.iter().zip(["Ann Alpha", "Bert Beta"]) {
        let shown = names_shown(&conn, *id);
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown.iter().all(|n| n == want), "{want}: {shown:?}");
    }
    assert_ne!(person(&conn, ids[0]), person(&conn, ids[1]));
    // The example-root MRN is kept for review; the test SSN is no evidence at all.
    assert_eq!(
        candidates(&conn),
        vec![(
            ids[1],
            ids[0],
            "1001".to_owned(),
            "family name differs".to_owned()
        )]
    );
    let bert = list_documents(&conn, Some("Beta")).expect("list");
    assert_eq!(bert.len(), 1);
    assert_eq!(bert[0].birth_time.as_deref(), Some("1972-02-02"));
    assert_eq!(bert[0].gender.as_deref(), Some("male"));
    // Looked up by the shared identifier, both documents come back, each with its own patient.
    let by_mrn = list_documents(&conn, Some("1001")).expect("list");
    let mut names: Vec<_> = by_mrn
        .iter()
        .filter_map(|d| d.patient_name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["Ann Alpha", "Bert Beta"]);
}

#[test]
fn one_person_across_documents_with_name_variations() {
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &[
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
        ],
    );
    assert_eq!(person(&conn, ids[0]), person(&conn, ids[1]));
    assert!(candidates(&conn).is_empty());
    // Linked, yet each document still shows the name as it wrote it.
    assert!(names_shown(&conn, ids[0])
        .iter()
        .all(|n| n == "Carla M. Gamma-Ruiz"));
    assert!(names_shown(&conn, ids[1])
        .iter()
        .all(|n| n == "CARLA GAMMA RUIZ"));
    let evidence: String = conn
        .query_row(
            "SELECT evidence FROM person_members m JOIN documents d ON d.patient_id = m.patient_id
             WHERE d.id = ?1",
            [ids[1]],
            |r| r.get(0),
        )
        .expect("evidence");
    assert!(evidence.contains("1.2.3.4.5.6.7^G-777"), "{evidence}");
}

#[test]
fn identifiers_do_not_chain_into_another_person() {
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &[
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
            "identity_chain_dora.xml",
        ],
    );
    // Dora shares only the identifier Carla's second document added.
    assert_ne!(person(&conn, ids[2]), person(&conn, ids[0]));
    assert_eq!(
        candidates(&conn),
        vec![(
            ids[2],
            ids[1],
            "X-1".to_owned(),
            "family name differs".to_owned()
        )]
    );
    assert!(names_shown(&conn, ids[2]).iter().all(|n| n == "Dora Delta"));
    assert_eq!(count(&conn, "persons"), 2);
}

#[test]
fn a_document_without_identifier_is_never_linked() {
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &["identity_variant_carla_1.xml", "identity_no_identifier.xml"],
    );
    assert_ne!(person(&conn, ids[0]), person(&conn, ids[1]));
    assert!(candidates(&conn).is_empty());
    assert!(names_shown(&conn, ids[1])
        .iter()
        .all(|n| n == "Carla Gamma-Ruiz"));
    let identifiers: i64 = conn
        .query_row(
            "SELECT count(*) FROM patient_identifiers i JOIN documents d ON d.patient_id = i.patient_id
             WHERE d.id = ?1",
            [ids[1]],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(identifiers, 0);
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
        support::ingest::fixture("ccda", "ccd_r21_full.xml"),
        support::ingest::fixture("ccda", "discharge_summary_loinc_only.xml"),
    );
    let meta = support::ingest::metadata_xml(&[
        support::ingest::MetaDoc::full("DOC0001.XML", "text/xml", &a),
        support::ingest::MetaDoc::full("DOC0002.XML", "text/xml", &b),
    ]);
    let zip = support::ingest::build_zip(&[
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
    // Two records (one per document) of one person.
    assert_eq!(count(&conn, "patients"), 2);
    assert_eq!(count(&conn, "persons"), 1);
}

/// A store written before patient records were per document: Bert's document was filed under
/// Ann's row because they share an MRN. Opening it with this version gives each document its own
/// record again.
#[test]
fn migration_splits_patients_shared_under_the_old_rule() {
    use directd::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.sqlite");
    let ann = doc("identity_shared_mrn_ann.xml");
    let bert = doc("identity_shared_mrn_bert.xml");
    {
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(include_str!("../src/store/migrations/0001_core.sql"))
            .expect("v1");
        conn.execute_batch(directd::store::clinical::SCHEMA)
            .expect("v2");
        conn.execute_batch(include_str!(
            "../src/store/migrations/0003_document_files.sql"
        ))
        .expect("v3");
        conn.execute_batch(include_str!("../src/store/migrations/0004_edge.sql"))
            .expect("v4");
        conn.execute_batch(
            "PRAGMA user_version = 4;
             INSERT INTO patients (id, given, family, birth_time, gender_code)
                 VALUES (1, 'Ann', 'Alpha', '1961-01-01', 'F');
             INSERT INTO patient_identifiers (patient_id, root, extension)
                 VALUES (1, '2.16.840.1.113883.19.5', '1001');",
        )
        .expect("old patient");
        for (id, d) in [(1, &ann), (2, &bert)] {
            conn.execute(
                "INSERT INTO documents (id, sha256, patient_id, kind, classified_by, template_ids,
                    document_json) VALUES (?1, ?2, 1, 'progress_note', 'template_id', '[]', ?3)",
                rusqlite::params![id, d.sha256, serde_json::to_string(d).expect("json")],
            )
            .expect("document");
            conn.execute(
                "INSERT INTO problems (document_id, patient_id, display, negated)
                 VALUES (?1, 1, 'x', 0)",
                [id],
            )
            .expect("problem");
        }
    }
    let store = Store::open(&path, std::time::Duration::from_secs(5)).expect("migrate");
    assert_eq!(
        store.schema_version().expect("version"),
        directd::store::SCHEMA_VERSION
    );
    drop(store);
    let conn = Connection::open(&path).expect("reopen");
    assert_eq!(names_shown(&conn, 1), ["Ann Alpha"; 4]);
    assert_eq!(names_shown(&conn, 2), ["Bert Beta"; 4]);
    assert_ne!(person(&conn, 1), person(&conn, 2));
    assert_eq!(count(&conn, "patients"), 2);
    assert_eq!(candidates(&conn).len(), 1);
}

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Text(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(_) => Some("<blob>".into()),
                    })
                })
                .collect()
        })
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn standard_codes_from_translations_fill_the_main_columns() {
    let (_dir, conn) = open();
    insert_all(&conn, &["coded_translations_and_references.xml"]);
    // A nullFlavor primary with SNOMED and ICD-10 translations, and a local primary with an
    // ICD-10 translation: the standard code goes in the main column either way.
    assert_eq!(
        rows(
            &conn,
            "SELECT code, code_system, display FROM problems ORDER BY id"
        ),
        vec![
            vec![
                s("433144002"),
                s("2.16.840.1.113883.6.96"),
                s("Chronic kidney disease stage 3")
            ],
            vec![
                s("M10.9"),
                s("2.16.840.1.113883.6.90"),
                s("Gout, unspecified")
            ],
        ]
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT drug_code, drug_system, drug_display, frequency FROM medications"
        ),
        vec![vec![
            s("197319"),
            s("2.16.840.1.113883.6.88"),
            s("Allopurinol 100 MG Oral Tablet"),
            s("every 8 hours")
        ]]
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT code, display FROM results WHERE value_type = 'PQ'"
        ),
        vec![vec![
            s("3084-1"),
            s("Urate [Mass/volume] in Serum or Plasma")
        ]]
    );
    // Every coding is kept, the chosen one marked.
    assert_eq!(
        rows(
            &conn,
            "SELECT entry_table, code, chosen FROM entry_codings ORDER BY entry_table, id"
        ),
        vec![
            vec![s("medications"), s("197319"), s("1")],
            vec![s("problems"), s("433144002"), s("1")],
            vec![s("problems"), s("N18.30"), s("0")],
            vec![s("problems"), s("GOUT-01"), s("0")],
            vec![s("problems"), s("M10.9"), s("1")],
            vec![s("results"), s("URIC"), s("0")],
            vec![s("results"), s("3084-1"), s("1")],
        ]
    );
}

#[test]
fn text_ranges_narrative_names_and_concern_severity_are_kept() {
    let (_dir, conn) = open();
    insert_all(&conn, &["coded_translations_and_references.xml"]);
    // Named only through the narrative; range given only as a string.
    assert_eq!(
        rows(
            &conn,
            "SELECT display, value, ref_range_text, ref_low, ref_high FROM results ORDER BY id"
        ),
        vec![
            vec![
                s("Urine protein, qualitative"),
                s("Negative"),
                s("Negative"),
                None,
                None
            ],
            vec![
                s("Urate [Mass/volume] in Serum or Plasma"),
                s("7.9"),
                s("2.5 - 7.0 mg/dL (adult female)"),
                s("2.5"),
                s("7.0")
            ],
        ]
    );
    // One allergy, named from the narrative, carrying the concern's severity; no blank row.
    assert_eq!(
        rows(
            &conn,
            "SELECT substance_display, severity_display, (SELECT group_concat(display)
               FROM allergy_reactions r WHERE r.allergy_id = a.id) FROM allergies a"
        ),
        vec![vec![s("Sulfa drugs"), s("Moderate"), s("Hives")]]
    );
    // The Health Concern references both problems; neither is stored twice.
    assert_eq!(count(&conn, "problems"), 2);
    let concern_rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM problems p JOIN sections s ON s.id = p.section_id
             WHERE s.kind = 'health_concerns'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(concern_rows, 0);
    let narrative: String = conn
        .query_row(
            "SELECT narrative FROM sections WHERE kind = 'health_concerns'",
            [],
            |r| r.get(0),
        )
        .expect("narrative");
    assert_eq!(narrative, "Kidney function; gout flares.");
}

#[test]
fn operative_and_imaging_sections_keep_narrative_and_entries() {
    let (_dir, conn) = open();
    insert_all(
        &conn,
        &["operative_note_sections.xml", "imaging_report_dicom.xml"],
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT s.kind, p.code FROM problems p JOIN sections s ON s.id = p.section_id
             ORDER BY p.id"
        ),
        vec![
            vec![s("preoperative_diagnosis"), s("85189001")],
            vec![s("postoperative_diagnosis"), s("K35.32")],
            vec![s("complications"), s("48661000")],
            vec![s("procedure_findings"), s("47693006")],
        ]
    );
    assert_eq!(
        rows(&conn, "SELECT display FROM procedures ORDER BY id"),
        vec![vec![s("General anesthesia")], vec![s("Study")]]
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT drug_display, route_display, dose_value, dose_unit FROM medications"
        ),
        vec![vec![s("propofol"), s("INTRAVENOUS"), s("150"), s("mg")]]
    );
    assert_eq!(
        rows(
            &conn,
            "SELECT s.kind, r.display, r.value FROM results r JOIN sections s ON s.id = r.section_id
             ORDER BY r.id"
        ),
        vec![
            vec![
                s("imaging_findings"),
                s("Finding"),
                s("Dilated appendix with periappendiceal fat stranding.")
            ],
            vec![s("imaging_findings"), s("Length of structure"), s("11")],
        ]
    );
    let kinds = rows(
        &conn,
        "SELECT kind FROM sections WHERE narrative IS NOT NULL ORDER BY id",
    );
    assert_eq!(
        kinds.into_iter().flatten().flatten().collect::<Vec<_>>(),
        [
            "preoperative_diagnosis",
            "postoperative_diagnosis",
            "anesthesia",
            "complications",
            "procedure_findings",
            "imaging_findings",
            "imaging_impression"
        ]
    );
}

/// A reviewer split Carla's two records; a third document that agrees with both joins one and
/// leaves a candidate for the other, so the reviewer's decision is not silently undone by a merge.
#[test]
fn a_record_agreeing_with_two_persons_joins_one_and_flags_the_other() {
    use directd::store::clinical::{link, unlink};
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &[
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
        ],
    );
    let record = |doc: i64| -> i64 {
        conn.query_row(
            "SELECT patient_id FROM documents WHERE id = ?1",
            [doc],
            |r| r.get(0),
        )
        .expect("record")
    };
    let split = unlink(&conn, record(ids[1])).expect("unlink");
    assert_ne!(person(&conn, ids[0]), person(&conn, ids[1]));
    assert_eq!(split.from_person_id, Some(person(&conn, ids[0])));

    let mut third = doc("identity_variant_carla_2.xml");
    third.sha256 = "0".repeat(64);
    let id3 = insert_document(&conn, &Source::default(), &third)
        .expect("third")
        .document_id;
    assert_eq!(person(&conn, id3), person(&conn, ids[0]));
    assert_eq!(count(&conn, "persons"), 2);
    let c = candidates(&conn);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].0, c[0].1), (id3, ids[1]));
    assert!(c[0].3.contains("never merged automatically"), "{c:?}");

    // Linking them is the reviewer's call; it closes the candidate.
    let joined = link(&conn, record(id3), record(ids[1])).expect("link");
    assert_eq!(joined.moved, 1);
    assert_eq!(count(&conn, "persons"), 1);
    let open_left: i64 = conn
        .query_row(
            "SELECT count(*) FROM patient_link_candidates WHERE state = 'open'",
            [],
            |r| r.get(0),
        )
        .expect("open");
    assert_eq!(open_left, 0);
}

#[test]
fn replace_extraction_keeps_the_document_and_refuses_other_bytes() {
    use directd::store::clinical::replace_extraction;
    let (_dir, conn) = open();
    let d = doc("ccd_r21_full.xml");
    let id = insert_document(&conn, &Source::default(), &d)
        .expect("insert")
        .document_id;
    let before: Vec<i64> = TABLES.iter().map(|t| count(&conn, t)).collect();
    assert!(replace_extraction(&conn, id, &d).expect("replace"));
    assert_eq!(
        TABLES.iter().map(|t| count(&conn, t)).collect::<Vec<_>>(),
        before
    );
    assert_eq!(
        load_document(&conn, id)
            .expect("load")
            .expect("present")
            .document,
        d
    );
    // Another document's extraction is not these bytes: nothing changes.
    assert!(
        !replace_extraction(&conn, id, &doc("discharge_summary_loinc_only.xml")).expect("other")
    );
    assert!(!replace_extraction(&conn, id + 1, &d).expect("missing"));
    assert_eq!(
        TABLES.iter().map(|t| count(&conn, t)).collect::<Vec<_>>(),
        before
    );
}

/// `identity_shared_mrn_ann.xml` (MRN 1001) as the document `doc_id` of a patient named `family`.
fn shared_mrn_doc(doc_id: &str, family: &str) -> Document {
    let xml = String::from_utf8(support::ingest::fixture(
        "ccda",
        "identity_shared_mrn_ann.xml",
    ))
    .expect("utf-8")
    .replace("ID-ANN-1", doc_id)
    .replace(
        "<family>Alpha</family>",
        &format!("<family>{family}</family>"),
    );
    extract_ccda(xml.as_bytes(), &Limits::default()).expect("extract")
}

fn insert_doc(conn: &Connection, doc: &Document) -> i64 {
    insert_document(conn, &Source::default(), doc)
        .expect("insert")
        .document_id
}

#[test]
fn an_identifier_many_persons_carry_is_not_evidence() {
    let (_dir, conn) = open();
    // 25 different people carry MRN 1001: it still links a record that agrees with one of them.
    let first = insert_doc(&conn, &shared_mrn_doc("P-0", "Alpha"));
    for i in 1..25 {
        insert_doc(
            &conn,
            &shared_mrn_doc(&format!("P-{i}"), &format!("Other{i}")),
        );
    }
    let again = insert_doc(&conn, &shared_mrn_doc("P-again", "Alpha"));
    assert_eq!(person(&conn, again), person(&conn, first));
    assert_eq!(count(&conn, "persons"), 25);

    // A 26th person: now the number identifies no one, so an agreeing record starts a person of
    // its own and is compared with nobody through it.
    insert_doc(&conn, &shared_mrn_doc("P-25", "Other25"));
    let candidates_before = count(&conn, "patient_link_candidates");
    let late = insert_doc(&conn, &shared_mrn_doc("P-late", "Alpha"));
    assert_ne!(person(&conn, late), person(&conn, first));
    assert_eq!(count(&conn, "persons"), 27);
    assert_eq!(count(&conn, "patient_link_candidates"), candidates_before);
}

/// The per-person index linking reads (`person_identifiers`, `person_demographics`) equals what
/// the tables it summarises say, whatever changed them.
fn assert_person_index_is_current(conn: &Connection, step: &str) {
    let kept = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    };
    let identifiers = "SELECT person_id || '|' || root || '|' || extension || '|' || records || '|' || first_patient_id";
    assert_eq!(
        kept(&format!("{identifiers} FROM person_identifiers ORDER BY 1")),
        kept(&format!(
            "{identifiers} FROM (SELECT m.person_id, i.root, i.extension, count(*) AS records,
                min(i.patient_id) AS first_patient_id
             FROM person_members m JOIN patient_identifiers i ON i.patient_id = m.patient_id
             GROUP BY m.person_id, i.root, i.extension) ORDER BY 1"
        )),
        "identifiers after {step}"
    );
    let demographics = "SELECT person_id || '|' || quote(family) || '|' || quote(given) || '|' || quote(birth_time) || '|' || quote(gender_code) || '|' || records || '|' || first_patient_id";
    assert_eq!(
        kept(&format!(
            "{demographics} FROM person_demographics ORDER BY 1"
        )),
        kept(&format!(
            "{demographics} FROM (SELECT m.person_id, p.family, p.given, p.birth_time,
                p.gender_code, count(*) AS records, min(p.id) AS first_patient_id
             FROM person_members m JOIN patients p ON p.id = m.patient_id
             GROUP BY m.person_id, p.family, p.given, p.birth_time, p.gender_code) ORDER BY 1"
        )),
        "demographics after {step}"
    );
}

#[test]
fn the_person_index_follows_every_change_to_persons_and_records() {
    use directd::store::clinical::{link, unlink};
    let (_dir, conn) = open();
    let ids = insert_all(
        &conn,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
        ],
    );
    let again = insert_doc(&conn, &shared_mrn_doc("ANN-2", "Alpha"));
    assert_eq!(person(&conn, again), person(&conn, ids[0]));
    assert_person_index_is_current(&conn, "ingestion");
    let patient = |document: i64| -> i64 {
        conn.query_row(
            "SELECT patient_id FROM documents WHERE id = ?1",
            [document],
            |r| r.get(0),
        )
        .expect("patient")
    };
    // A reviewer joins Bert's person into Ann's, then takes Ann's second record out again.
    link(&conn, patient(ids[0]), patient(ids[1])).expect("link");
    assert_eq!(person(&conn, ids[1]), person(&conn, ids[0]));
    assert_person_index_is_current(&conn, "link");
    unlink(&conn, patient(again)).expect("unlink");
    assert_person_index_is_current(&conn, "unlink");
    // A member's identifier and demographics change, and a record is deleted with its document.
    conn.execute(
        "DELETE FROM patient_identifiers WHERE patient_id = ?1 AND extension = '1001'",
        [patient(ids[1])],
    )
    .expect("delete identifier");
    assert_person_index_is_current(&conn, "an identifier removed");
    conn.execute(
        "UPDATE patients SET family = 'Gamma' WHERE id = ?1",
        [patient(ids[3])],
    )
    .expect("update");
    assert_person_index_is_current(&conn, "demographics changed");
    let gone = patient(ids[2]);
    conn.execute("DELETE FROM documents WHERE id = ?1", [ids[2]])
        .expect("delete document");
    conn.execute("DELETE FROM patients WHERE id = ?1", [gone])
        .expect("delete patient");
    assert_person_index_is_current(&conn, "a record deleted");
    // Linking reads it: a new record agreeing with Ann does not join her person, since Bert's
    // record (linked in by the reviewer) disagrees with it, and every record must agree.
    let third = insert_doc(&conn, &shared_mrn_doc("ANN-3", "Alpha"));
    assert_ne!(person(&conn, third), person(&conn, ids[0]));
    assert_eq!(
        candidates(&conn).last().map(|c| (c.0, c.3.as_str())),
        Some((third, "family name differs"))
    );
    assert_person_index_is_current(&conn, "ingestion after the changes");
}
