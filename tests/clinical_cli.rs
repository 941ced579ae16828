//! `directd ingest`, `ccda` and `patients` as users run them: the built binary against a real
//! store, checking text output, JSON and exit codes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
    files: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("in");
    std::fs::create_dir(&files).expect("mkdir");
    Env {
        db: dir.path().join("store.db"),
        files,
        _dir: dir,
    }
}

fn directd(env: &Env, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(&env.db)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DIRECTD_CONFIG")
        .output()
        .expect("spawn directd")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("json output")
}

/// Copies fixtures into the input folder under names that sort in the given order.
fn stage(env: &Env, names: &[&str]) -> PathBuf {
    for (i, name) in names.iter().enumerate() {
        std::fs::write(
            env.files.join(format!("{i:02}-{name}")),
            support::ingest::fixture("ccda", name),
        )
        .expect("write fixture");
    }
    env.files.clone()
}

fn ingest(env: &Env, path: &Path) -> Output {
    directd(env, &["ingest", path.to_str().expect("utf-8 path")])
}

/// Document id by the title-independent source file name.
fn doc_id(list: &Value, fixture: &str) -> i64 {
    list["documents"]
        .as_array()
        .expect("array")
        .iter()
        .find(|d| {
            d["source_path"]
                .as_str()
                .is_some_and(|p| p.ends_with(fixture))
        })
        .and_then(|d| d["document_id"].as_i64())
        .unwrap_or_else(|| panic!("{fixture} not listed"))
}

#[test]
fn documents_sharing_an_identifier_each_show_their_own_patient() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
            "identity_chain_dora.xml",
            "identity_no_identifier.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let list = json(&directd(&env, &["ccda", "list", "--json"]));
    let expected = [
        ("identity_shared_mrn_ann.xml", "Ann Alpha"),
        ("identity_shared_mrn_bert.xml", "Bert Beta"),
        ("identity_variant_carla_1.xml", "Carla M. Gamma-Ruiz"),
        ("identity_variant_carla_2.xml", "CARLA GAMMA RUIZ"),
        ("identity_chain_dora.xml", "Dora Delta"),
        ("identity_no_identifier.xml", "Carla Gamma-Ruiz"),
    ];
    for (fixture, name) in expected {
        let id = doc_id(&list, fixture);
        let shown = json(&directd(&env, &["ccda", "show", &id.to_string(), "--json"]));
        assert_eq!(shown["summary"]["patient_name"], name, "{fixture}");
        let text = ok(&directd(&env, &["ccda", "show", &id.to_string()]));
        assert!(
            text.contains(&format!("Patient: {name}")),
            "{fixture}: {text}"
        );
    }
    // --patient by the shared MRN finds both documents, each under its own name.
    let text = ok(&directd(&env, &["ccda", "list", "--patient", "1001"]));
    assert!(
        text.contains("Ann Alpha") && text.contains("Bert Beta"),
        "{text}"
    );

    let persons = json(&directd(&env, &["patients", "list", "--json"]));
    assert_eq!(persons["persons"].as_array().expect("array").len(), 5);
    let review = json(&directd(&env, &["patients", "review", "--json"]));
    let reasons: Vec<&str> = review["candidates"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["family name differs", "family name differs"]);

    let carla = json(&directd(
        &env,
        &[
            "ccda",
            "show",
            &doc_id(&list, "identity_variant_carla_2.xml").to_string(),
            "--json",
        ],
    ));
    let person = carla["summary"]["person_id"].as_i64().expect("person");
    let shown = json(&directd(
        &env,
        &["patients", "show", &person.to_string(), "--json"],
    ));
    let records = shown["person"]["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .any(|r| r["identifiers"].as_array().is_some_and(|i| i.len() == 2)));
    let text = ok(&directd(&env, &["patients", "show", &person.to_string()]));
    assert!(
        text.contains("Person ") && text.contains("id G-777 ^ 1.2.3.4.5.6.7"),
        "{text}"
    );
    assert!(text.contains("Link candidates:"), "{text}");
}

#[test]
fn link_unlink_and_dismiss_are_audited_and_refuse_unknown_ids() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let review = json(&directd(&env, &["patients", "review", "--json"]));
    let c = &review["candidates"][0];
    let (a, b) = (
        c["patient_id"].as_i64().expect("a").to_string(),
        c["other_patient_id"].as_i64().expect("b").to_string(),
    );

    let out = ok(&directd(&env, &["patients", "link", &a, &b]));
    assert!(out.starts_with("linked: person "), "{out}");
    assert_eq!(
        json(&directd(&env, &["patients", "list", "--json"]))["persons"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        json(&directd(&env, &["patients", "review", "--json"]))["candidates"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let out = ok(&directd(&env, &["patients", "unlink", &a]));
    assert!(out.starts_with("unlinked: record "), "{out}");
    assert_eq!(
        json(&directd(&env, &["patients", "list", "--json"]))["persons"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Alone again: a second unlink has nothing to do.
    let again = directd(&env, &["patients", "unlink", &a]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("only record"));

    let unknown = directd(&env, &["patients", "link", &a, "9999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no patient record 9999"));
    assert_eq!(
        directd(&env, &["patients", "show", "9999"]).status.code(),
        Some(2)
    );

    let id = c["candidate_id"].as_i64().expect("candidate").to_string();
    let out = ok(&directd(&env, &["patients", "dismiss", &id]));
    assert!(out.contains("stay apart"), "{out}");
    assert_eq!(
        directd(&env, &["patients", "dismiss", "9999"])
            .status
            .code(),
        Some(2)
    );

    // `audit --json` is one document (docs/json-output.md); its records are `entries`.
    let audit = json(&directd(&env, &["audit", "--json"]))["entries"].clone();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| a.starts_with("patients "))
        .collect();
    assert_eq!(
        actions,
        ["patients link", "patients unlink", "patients dismiss"]
    );
    // The audit trail names records, not people.
    let text = serde_json::to_string(&audit).expect("json");
    assert!(!text.contains("Alpha") && !text.contains("Beta"));
}

/// Cuts a text-table row into cells at the columns where the header's headings start.
fn cells(header: &str, row: &str) -> Vec<(String, String)> {
    let h: Vec<char> = header.chars().collect();
    let starts: Vec<usize> = (0..h.len())
        .filter(|&i| h[i] != ' ' && (i == 0 || h[i - 1] == ' ' && h[i.saturating_sub(2)] == ' '))
        .collect();
    let r: Vec<char> = row.chars().collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let end = starts.get(n + 1).copied().unwrap_or(usize::MAX);
            let heading: String = h[s..end.min(h.len())].iter().collect();
            let cell: String = r
                .get(s.min(r.len())..end.min(r.len()))
                .unwrap_or_default()
                .iter()
                .collect();
            (heading.trim().to_owned(), cell.trim().to_owned())
        })
        .collect()
}

#[test]
fn ccda_list_text_puts_each_cell_under_its_heading() {
    let env = env();
    let dir = stage(&env, &["identity_shared_mrn_bert.xml"]);
    ok(&ingest(&env, &dir));
    let text = ok(&directd(&env, &["ccda", "list"]));
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let row = lines.next().expect("row");
    let got = cells(header, row);
    let want = [
        ("ID", "1"),
        ("TYPE", "progress_note"),
        ("TITLE", "Progress Note"),
        ("EFFECTIVE", "2024-03-02T09:00:00+00:00"),
        ("PATIENT", "Bert Beta"),
        ("BORN", "1972-02-02"),
        ("SEX", "male"),
        ("ENCOUNTER", "-"),
    ];
    for (heading, value) in want {
        let cell = got
            .iter()
            .find(|(h, _)| h == heading)
            .unwrap_or_else(|| panic!("no {heading} heading in {header:?}"));
        assert_eq!(cell.1, value, "{heading}\n{text}");
    }
    let source = got.iter().find(|(h, _)| h == "SOURCE").expect("SOURCE");
    assert!(source.1.ends_with("identity_shared_mrn_bert.xml"), "{text}");
    assert_eq!(got.len(), 9, "{header}");
}

#[test]
fn ingest_counts_and_names_what_it_skips() {
    let env = env();
    let ccda = support::ingest::fixture("ccda", "identity_shared_mrn_ann.xml");
    let pdf = b"%PDF-1.4\n% not a clinical document\n".to_vec();
    let meta = support::ingest::metadata_xml(&[
        support::ingest::MetaDoc::full("DOC0001.XML", "text/xml", &ccda),
        support::ingest::MetaDoc::full("SCAN0001.PDF", "application/pdf", &pdf),
    ]);
    let zip = support::ingest::build_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &ccda),
        ("IHE_XDM/SUBSET01/SCAN0001.PDF", &pdf),
    ]);
    std::fs::write(env.files.join("a-package.zip"), zip).expect("zip");
    std::fs::write(env.files.join("b-scan.pdf"), &pdf).expect("pdf");
    std::fs::write(env.files.join("c-notes.txt"), "call back Tuesday").expect("txt");

    let summary = json(&directd(
        &env,
        &["ingest", "--json", env.files.to_str().expect("utf-8")],
    ));
    assert_eq!(summary["documents"], 1);
    let skipped: Vec<String> = summary["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["file"].as_str().unwrap_or(""),
                s["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped[0].contains("a-package.zip")
            && skipped[0].contains("SCAN0001.PDF: not a C-CDA (a PDF)")
    );
    assert!(skipped[1].contains("b-scan.pdf") && skipped[1].contains("(a PDF)"));
    assert!(skipped[2].contains("c-notes.txt") && skipped[2].contains("(plain text)"));

    // The text summary says the same, and a PDF alone is not reported as "0 new, 0 failures".
    let lone = env.files.join("b-scan.pdf");
    let text = ok(&directd(&env, &["ingest", lone.to_str().expect("utf-8")]));
    assert!(
        text.contains("0 new document(s)") && text.contains("1 skipped (not C-CDA)"),
        "{text}"
    );
    assert!(
        text.contains("SKIPPED ") && text.contains("b-scan.pdf: not a C-CDA (a PDF)"),
        "{text}"
    );
}

#[test]
fn ccda_show_reads_in_words() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "negations_and_bare_codes.xml",
            "coded_translations_and_references.xml",
            "ccd_r21_full.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let list = json(&directd(&env, &["ccda", "list", "--json"]));
    let show = |fixture: &str| {
        ok(&directd(
            &env,
            &["ccda", "show", &doc_id(&list, fixture).to_string()],
        ))
    };
    let neg = show("negations_and_bare_codes.xml");
    let coded = show("coded_translations_and_references.xml");
    let full = show("ccd_r21_full.xml");
    for (text, phrases) in [
        (
            &neg,
            &[
                "- no known allergies",
                "- Heart failure — active",
                "- not coded — active",
                "Furosemide 20 MG Oral Tablet — 2 tablets; by mouth; twice a day",
                "- not taking warfarin",
                "discharge disposition: discharged to a skilled nursing facility",
                "Episode of care: inpatient, 2024-07-15 – 2024-07-20",
                "sex male",
            ][..],
        ),
        (
            &coded,
            &[
                "- Allopurinol 100 MG Oral Tablet — dose 1; by mouth; every 8 hours; active",
                "- Sulfa drugs — Allergy to drug; reaction: Hives; severity: moderate",
                "- Gout, unspecified — active; since 2021-03-01",
                "Urine protein, qualitative: Negative (reference Negative)",
                "[high]",
                // The narrative stays below the entries.
                "  | Allopurinol 100 mg tablet, 1 by mouth every 8 hours",
            ][..],
        ),
        (
            &full,
            &[
                "reaction: Hives (moderate)",
                "once a day",
                "Father: Myocardial infarction at age 57 years (cause of death)",
                "- not given: Tdap; reason: Patient objection",
            ][..],
        ),
    ] {
        for p in phrases {
            assert!(text.contains(p), "missing {p:?} in\n{text}");
        }
    }
    for text in [&neg, &coded, &full] {
        for jargon in [
            "NEGATED",
            "(uncoded)",
            "55561003",
            "0.3333",
            "every 12 h\n",
            "event ",
        ] {
            assert!(!text.contains(jargon), "{jargon:?} in\n{text}");
        }
    }
}

/// `directd ingest` stores without SQLite's per-row foreign-key checks (every reference it writes
/// is to a row the same transaction created or read); what it stored must still pass them.
#[test]
fn bulk_ingest_leaves_every_reference_whole() {
    let env = env();
    let names = support::ingest::xml_fixtures("ccda");
    for path in &names {
        std::fs::copy(path, env.files.join(path.file_name().expect("name"))).expect("copy");
    }
    assert!(names.len() >= 10, "{names:?}");
    // One fixture names a PDF that is not beside it: reported, and the command exits 1.
    let out = directd(
        &env,
        &["ingest", "--json", env.files.to_str().expect("utf-8")],
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(summary["documents"], names.len(), "{summary}");
    let conn = rusqlite::Connection::open(&env.db).expect("open store");
    let dangling: Vec<(String, i64, String)> = conn
        .prepare("PRAGMA foreign_key_check")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(dangling.is_empty(), "{dangling:?}");
    // Rows below every level were written: documents, sections, entries, codings, persons.
    for table in [
        "sections",
        "problems",
        "results",
        "entry_codings",
        "person_members",
    ] {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count");
        assert!(n > 0, "no rows in {table}");
    }
}

fn sql_rows(db: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).expect("open store");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            r.get::<_, Option<String>>(0)
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
        })
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

/// A store filled by an older directd (simulated by degrading its rows the way the old
/// extraction stored them) gains the new extraction from the original bytes, keeping document
/// ids and patient records; a document whose file is gone is reported, not dropped.
#[test]
fn reextract_refreshes_rows_from_the_original_bytes() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "coded_translations_and_references.xml",
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let before_ids = sql_rows(
        &env.db,
        "SELECT group_concat(id || ':' || patient_id) FROM documents",
    );
    let conn = rusqlite::Connection::open(&env.db).expect("open");
    conn.execute_batch(
        "UPDATE problems SET code = NULL, code_system = NULL;
         UPDATE medications SET drug_code = NULL, frequency = 'every 0.3333 d';
         DELETE FROM entry_codings;",
    )
    .expect("degrade");
    drop(conn);
    std::fs::remove_file(env.files.join("02-identity_shared_mrn_bert.xml")).expect("rm");

    let out = json(&directd(&env, &["ccda", "reextract", "--json"]));
    assert_eq!(out["documents"], 2, "{out}");
    let unavailable = out["unavailable"].as_array().expect("unavailable");
    assert_eq!(unavailable.len(), 1, "{out}");
    assert!(unavailable[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("identity_shared_mrn_bert.xml")));

    // Bert's file is gone: his document keeps the rows it had.
    assert_eq!(
        sql_rows(
            &env.db,
            "SELECT code FROM problems ORDER BY document_id, id"
        ),
        ["433144002", "M10.9", "44054006", "NULL"]
    );
    assert_eq!(
        sql_rows(
            &env.db,
            "SELECT drug_code || ' ' || frequency FROM medications"
        ),
        ["197319 every 8 hours"]
    );
    assert_eq!(
        sql_rows(
            &env.db,
            "SELECT CAST(count(*) AS TEXT) FROM entry_codings WHERE entry_table = 'problems'"
        ),
        // Two codings for each of the coded document's problems, one for Ann's.
        ["5"]
    );
    // Same documents, same patient records; a second run changes nothing.
    assert_eq!(
        sql_rows(
            &env.db,
            "SELECT group_concat(id || ':' || patient_id) FROM documents"
        ),
        before_ids
    );
    let counts = "SELECT (SELECT count(*) FROM problems) || ' ' || (SELECT count(*) FROM sections)
        || ' ' || (SELECT count(*) FROM results) || ' ' || (SELECT count(*) FROM patients)";
    let once = sql_rows(&env.db, counts);
    ok(&directd(&env, &["ccda", "reextract"]));
    assert_eq!(sql_rows(&env.db, counts), once);
    // `audit --json` is one document (docs/json-output.md); its records are `entries`.
    let audit = json(&directd(&env, &["audit", "--json"]))["entries"].clone();
    assert!(audit
        .as_array()
        .expect("audit")
        .iter()
        .any(|r| r["action"] == "ccda reextract"));
}

/// The daemon's path: a received XDM zip attachment, ingested by the pipeline; re-extraction
/// finds the member again inside the stored attachment.
/// Stores a message from the lab to the clinic with one attachment `(filename, type, bytes)`, as
/// the daemon would on receiving it.
fn store_received(
    store: &mut directd::store::Store,
    hisp_id: &str,
    body: &[u8],
    (filename, mime_type, data): (&str, &str, Vec<u8>),
) {
    use directd::hisp::{ReceivedAttachment, ReceivedMail};
    store
        .store_incoming(
            "clinic@direct.example.org",
            &ReceivedMail {
                recipient: "clinic@direct.example.org".into(),
                sender: "lab@direct.example.net".into(),
                hisp_id: hisp_id.into(),
                headers: vec![],
                body_type: "text/plain".into(),
                body: body.to_vec(),
                attachments: vec![ReceivedAttachment {
                    filename: filename.into(),
                    mime_type: mime_type.into(),
                    description: String::new(),
                    data,
                }],
                raw: None,
                verdict: None,
                mdn: None,
            },
        )
        .expect("store");
}

#[test]
fn reextract_finds_documents_inside_received_attachments() {
    let env = env();
    let ccda = support::ingest::fixture("ccda", "coded_translations_and_references.xml");
    let meta = support::ingest::metadata_xml(&[support::ingest::MetaDoc::full(
        "DOC0001.XML",
        "text/xml",
        &ccda,
    )]);
    let zip = support::ingest::build_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &ccda),
    ]);
    {
        let mut store =
            directd::store::Store::open(&env.db, std::time::Duration::from_secs(5)).expect("open");
        store_received(
            &mut store,
            "xdm-1",
            b"package attached",
            ("package.zip", "application/zip", zip),
        );
        let (n, tally) = directd::daemon::ingest::ingest_pending(
            &mut store,
            &directd::ingest::Limits::default(),
        )
        .expect("ingest");
        assert_eq!((n, tally.documents), (1, 1));
    }
    let conn = rusqlite::Connection::open(&env.db).expect("open");
    conn.execute_batch("UPDATE problems SET code = NULL; DELETE FROM entry_codings;")
        .expect("degrade");
    drop(conn);
    let out = json(&directd(&env, &["ccda", "reextract", "--json"]));
    assert_eq!(out["documents"], 1, "{out}");
    assert_eq!(
        sql_rows(&env.db, "SELECT code FROM problems ORDER BY id"),
        ["433144002", "M10.9"]
    );
    assert_eq!(
        sql_rows(&env.db, "SELECT xdm_uri FROM documents"),
        ["DOC0001.XML"]
    );
}

/// The daemon ingests a batch of received attachments in one transaction, and each keeps its own
/// outcome: a C-CDA is ingested, a broken one fails with its reason, plain text is not clinical.
#[test]
fn a_batch_of_received_attachments_keeps_each_outcome() {
    let env = env();
    let ccda = support::ingest::fixture("ccda", "coded_translations_and_references.xml");
    let mut store =
        directd::store::Store::open(&env.db, std::time::Duration::from_secs(5)).expect("open");
    let parts: [(&str, &str, Vec<u8>); 3] = [
        ("summary.xml", "text/xml", ccda.clone()),
        ("broken.xml", "text/xml", ccda[..ccda.len() / 2].to_vec()),
        ("note.txt", "text/plain", b"see you Tuesday".to_vec()),
    ];
    for (i, (name, mime, data)) in parts.into_iter().enumerate() {
        store_received(
            &mut store,
            &format!("batch-{i}"),
            b"attached",
            (name, mime, data),
        );
    }
    let (n, tally) =
        directd::daemon::ingest::ingest_pending(&mut store, &directd::ingest::Limits::default())
            .expect("ingest");
    assert_eq!((n, tally.documents, tally.failures.len()), (3, 1, 1));
    drop(store);
    let states = sql_rows(
        &env.db,
        "SELECT filename || ' ' || ingest_state || ' ' || CAST(ingest_error IS NOT NULL AS TEXT) FROM attachments ORDER BY id",
    );
    assert_eq!(
        states,
        [
            "summary.xml ingested 0",
            "broken.xml failed 1",
            "note.txt not_clinical 0"
        ]
    );
    assert_eq!(
        sql_rows(&env.db, "SELECT CAST(count(*) AS TEXT) FROM documents"),
        ["1"]
    );
}

/// An attachment whose rows the store refuses (here a trigger standing in for a constraint an
/// extraction should never break) is marked failed with the store's reason; the others of its
/// batch are ingested, and the next batch is not held back by it.
#[test]
fn an_attachment_the_store_refuses_does_not_hold_back_its_batch() {
    let env = env();
    let ccda = support::ingest::fixture("ccda", "coded_translations_and_references.xml");
    let poison = String::from_utf8(ccda.clone()).unwrap().replacen(
        "<title>Summary of Care</title>",
        "<title>poison</title>",
        1,
    );
    let other = support::ingest::fixture("ccda", "discharge_summary_loinc_only.xml");
    let mut store =
        directd::store::Store::open(&env.db, std::time::Duration::from_secs(5)).expect("open");
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON documents WHEN NEW.title = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned document'); END;",
        )
        .unwrap();
    for (i, data) in [ccda, poison.into_bytes(), other].into_iter().enumerate() {
        store_received(
            &mut store,
            &format!("refused-{i}"),
            b"attached",
            (&format!("doc{i}.xml"), "text/xml", data),
        );
    }
    let limits = directd::ingest::Limits::default();
    let (n, tally) = directd::daemon::ingest::ingest_pending(&mut store, &limits).expect("ingest");
    assert_eq!((n, tally.documents, tally.failures.len()), (3, 2, 1));
    assert!(
        tally.failures[0].contains("poisoned document"),
        "{:?}",
        tally.failures
    );
    let (n, _) = directd::daemon::ingest::ingest_pending(&mut store, &limits).expect("again");
    assert_eq!(n, 0, "nothing left pending");
    drop(store);
    assert_eq!(
        sql_rows(
            &env.db,
            "SELECT filename || ' ' || ingest_state FROM attachments ORDER BY id"
        ),
        ["doc0.xml ingested", "doc1.xml failed", "doc2.xml ingested"]
    );
}

/// The daemon's ingest batches stop at a byte budget as well as a count, so a burst of large
/// messages is not held in memory at once; an attachment larger than the budget goes alone.
#[test]
fn pending_attachments_stop_at_the_byte_budget() {
    let env = env();
    let mut store =
        directd::store::Store::open(&env.db, std::time::Duration::from_secs(5)).expect("open");
    assert!(store.pending_attachments(32, 1 << 20).unwrap().is_empty());
    for (i, size) in [30_000, 10_000, 10_000, 10_000].into_iter().enumerate() {
        store_received(
            &mut store,
            &format!("sized-{i}"),
            b"attached",
            (&format!("part{i}.txt"), "text/plain", vec![b'x'; size]),
        );
    }
    let sizes = |limit: usize, max_bytes: u64| -> Vec<usize> {
        store
            .pending_attachments(limit, max_bytes)
            .unwrap()
            .iter()
            .map(|a| a.data.len())
            .collect()
    };
    assert_eq!(
        sizes(32, 5_000),
        [30_000],
        "the first goes alone, whatever its size"
    );
    assert_eq!(sizes(32, 50_000), [30_000, 10_000, 10_000]);
    assert_eq!(sizes(32, 60_000), [30_000, 10_000, 10_000, 10_000]);
    assert_eq!(sizes(2, u64::MAX), [30_000, 10_000]);
}

/// Documents in the store and how many distinct bytes they hold, read without creating the file;
/// `None` until the ingest has created the store and its tables.
fn stored_documents(db: &Path) -> Option<(i64, i64)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(
        "SELECT count(*), count(DISTINCT sha256) FROM documents",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

/// Bulk ingest commits in batches and a crash loses only the batch in flight: `directd ingest`
/// is SIGKILLed once its first batches are in the store, whole batches are found there, and the
/// same command run again stores exactly the rest (the committed ones count as already stored).
#[test]
fn killed_bulk_ingest_keeps_whole_batches_and_a_rerun_stores_the_rest_once() {
    const FILES: i64 = 200;
    const BATCH: i64 = 4;
    let env = env();
    let base = support::ingest::fixture("ccda", "ccd_r21_full.xml");
    for i in 0..FILES {
        // Each copy is its own document and patient (its own sha256 and MRN), as in an archive;
        // copies of one patient would measure identity linking instead.
        let text = String::from_utf8(base.clone()).expect("utf-8 fixture");
        let bytes = text.replace("MRN-424242", &format!("MRN-{i}"));
        std::fs::write(env.files.join(format!("copy-{i:04}.xml")), bytes).expect("write copy");
    }
    let dir = env.files.to_str().expect("utf-8");
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(&env.db)
        .args(["ingest", "--batch", &BATCH.to_string(), dir])
        .env_remove("RUST_LOG")
        .env_remove("DIRECTD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn directd ingest");
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("ingest ended ({status}) before any batch was seen; the test needs more files");
        }
        if stored_documents(&env.db).is_some_and(|(n, _)| n > 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let (committed, distinct) = stored_documents(&env.db).expect("store readable after the kill");
    assert!(
        committed > 0 && committed < FILES,
        "the kill came mid-ingest: {committed} of {FILES} stored"
    );
    assert_eq!(committed % BATCH, 0, "only whole batches are committed");
    assert_eq!(distinct, committed);

    let out = json(&directd(&env, &["ingest", "--json", dir]));
    assert_eq!(out["documents"], FILES - committed, "{out}");
    assert_eq!(out["already_stored"], committed, "{out}");
    assert_eq!(stored_documents(&env.db), Some((FILES, FILES)));
}
