//! PDFs both ways (issue 14, item 4): `send --pdf` wraps a PDF in an Unstructured Document
//! naming the patient, the real daemon sends it through a real sandbox HISP, the receiving
//! account ingests it, and `ccda show` reads back the demographics the sender gave and `--save`
//! writes the PDF out byte for byte, 0600, never over another file, audited.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::SystemTime;

use directd::ingest::model::DocumentKind;
use directd::ingest::{extract_ccda, Limits};
use directd::unstructured::{build, Author, Content, PatientDemographics};
use support::process::{json, text, Cli, Daemon};
use support::sandbox::*;

/// A small but well-formed PDF: header, one empty page, xref, trailer.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\nxref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n0000000115 00000 n \ntrailer << /Size 4 /Root 1 0 R >>\nstartxref\n186\n%%EOF\n\xe2\xe3\xcf\xd3 binary tail \x00\x01\x02\xff";

#[test]
fn the_builder_and_ingestion_agree_on_every_demographic() {
    let mut p = PatientDemographics::new("Example, Ann Marie", "1970-04-03", "female").unwrap();
    p.id = Some(("MRN-0042".into(), "2.16.840.1.113883.19.5".into()));
    p.street = Some("12 Main St".into());
    p.city = Some("Springfield".into());
    p.state = Some("IL".into());
    p.postal_code = Some("62701".into());
    p.phone = Some("+1-555-0100".into());
    p.marital_status = Some("M".into());
    p.race = Some("2106-3".into());
    p.ethnicity = Some("2186-5".into());
    p.language = Some("es".into());
    let author = Author {
        organization: "Example Reference Lab".into(),
        direct_address: "lab@direct.example.org".into(),
        person: Some("Dr Pat Pathologist".into()),
        npi: Some("1245319599".into()),
    };
    let content = Content {
        data: PDF,
        media_type: "application/pdf",
        loinc: "11502-2",
        title: None,
    };
    let xml = build(&p, &author, &content, SystemTime::now()).unwrap();
    let doc = extract_ccda(&xml, &Limits::default()).unwrap();

    assert_eq!(doc.kind, DocumentKind::UnstructuredDocument);
    assert_eq!(doc.title.as_deref(), Some("Laboratory report"));
    assert_eq!(doc.code.as_ref().unwrap().code.as_deref(), Some("11502-2"));
    let patient = doc.patient.as_ref().unwrap();
    let name = &patient.names[0];
    assert_eq!(name.given, ["Ann", "Marie"]);
    assert_eq!(name.family.as_deref(), Some("Example"));
    assert_eq!(patient.birth_time.as_deref(), Some("1970-04-03"));
    assert_eq!(patient.gender.as_ref().unwrap().code.as_deref(), Some("F"));
    assert_eq!(patient.ids[0].extension.as_deref(), Some("MRN-0042"));
    assert_eq!(
        patient.ids[0].root.as_deref(),
        Some("2.16.840.1.113883.19.5")
    );
    let addr = &patient.addresses[0];
    assert_eq!(addr.street, ["12 Main St"]);
    assert_eq!(
        (
            addr.city.as_deref(),
            addr.state.as_deref(),
            addr.postal_code.as_deref()
        ),
        (Some("Springfield"), Some("IL"), Some("62701"))
    );
    assert_eq!(
        patient.telecoms[0].value.as_deref(),
        Some("tel:+1-555-0100")
    );
    assert_eq!(
        patient.marital_status.as_ref().unwrap().code.as_deref(),
        Some("M")
    );
    assert_eq!(patient.races[0].code.as_deref(), Some("2106-3"));
    assert_eq!(patient.ethnicities[0].code.as_deref(), Some("2186-5"));
    assert_eq!(patient.languages[0].code.as_deref(), Some("es"));
    let author_seen = &doc.authors[0];
    assert_eq!(author_seen.ids[0].extension.as_deref(), Some("1245319599"));
    assert_eq!(
        author_seen.organization.as_ref().unwrap().names,
        ["Example Reference Lab"]
    );
    assert_eq!(
        doc.custodian.as_ref().unwrap().names,
        ["Example Reference Lab"]
    );
    let body = doc.non_xml_body.as_ref().unwrap();
    assert_eq!(body.media_type.as_deref(), Some("application/pdf"));
    assert_eq!(body.derived.as_ref().unwrap().bytes, PDF);

    // Unknown demographics are stated as unknown, as the US Realm Header requires, not left out.
    let bare = PatientDemographics::new("Ann Example", "1970-04-03", "UN").unwrap();
    let xml = build(&bare, &author, &content, SystemTime::now()).unwrap();
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(text.contains(r#"<id nullFlavor="NI"/>"#), "{text}");
    assert!(text.contains(r#"<addr nullFlavor="UNK"/>"#));
    assert!(text.contains(r#"<telecom nullFlavor="UNK"/>"#));
    let doc = extract_ccda(&xml, &Limits::default()).unwrap();
    assert_eq!(
        doc.patient.unwrap().gender.unwrap().code.as_deref(),
        Some("UN")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_result_sent_with_demographics_is_read_back_and_saved_byte_exact() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let cli = Cli::new(&env, &[A, B]);
    let pdf = env.dir.path().join("cbc-result.pdf");
    std::fs::write(&pdf, PDF).unwrap();
    let pdf = pdf.to_str().unwrap();

    let sent = cli
        .run(&[
            "send",
            "--from",
            A,
            "--to",
            B,
            "--pdf",
            pdf,
            "--patient-name",
            "Ann Marie Example",
            "--birth-date",
            "1970-04-03",
            "--gender",
            "F",
            "--patient-id",
            "MRN-0042",
            "--patient-id-root",
            "2.16.840.1.113883.19.5",
            "--patient-city",
            "Springfield",
            "--patient-state",
            "IL",
            "--marital-status",
            "S",
            "--race",
            "2054-5",
            "--ethnicity",
            "2135-2",
            "--language",
            "en",
            "--organization",
            "Example Reference Lab",
            "--author-npi",
            "1245319599",
        ])
        .await;
    assert!(sent.status.success(), "{}", text(&sent));
    let daemon = Daemon(cli.command(&["run"]).stderr(Stdio::null()).spawn().unwrap());
    assert!(
        wait_until(30, || !env.store().list_documents(None).unwrap().is_empty()).await,
        "the receiving account never ingested the document"
    );
    daemon.stop();

    let listed = json(&cli.run(&["ccda", "list", "--json"]).await);
    let docs = listed
        .as_array()
        .or(listed["documents"].as_array())
        .unwrap()
        .clone();
    assert_eq!(docs.len(), 1, "{listed}");
    let id = docs[0]["document_id"].as_i64().unwrap().to_string();
    let shown = cli.run(&["ccda", "show", &id, "--json"]).await;
    assert!(shown.status.success(), "{}", text(&shown));
    let shown = json(&shown);
    let doc = &shown["document"];
    assert_eq!(doc["kind"], "unstructured_document", "{doc}");
    let patient = &doc["patient"];
    assert_eq!(
        patient["names"][0]["given"],
        serde_json::json!(["Ann", "Marie"])
    );
    assert_eq!(patient["names"][0]["family"], "Example");
    assert_eq!(patient["birth_time"], "1970-04-03");
    assert_eq!(patient["gender"]["code"], "F");
    assert_eq!(patient["ids"][0]["extension"], "MRN-0042");
    assert_eq!(patient["addresses"][0]["city"], "Springfield");
    assert_eq!(patient["marital_status"]["code"], "S");
    assert_eq!(patient["races"][0]["code"], "2054-5");
    assert_eq!(patient["ethnicities"][0]["code"], "2135-2");
    assert_eq!(patient["languages"][0]["code"], "en");
    // The list shows the patient as this document names them.
    assert_eq!(docs[0]["patient_name"], "Ann Marie Example", "{listed}");

    // As a person reads it: the patient this document names, and how to get the PDF out.
    let words = text(&cli.run(&["ccda", "show", &id]).await);
    println!("{words}");
    assert!(words.contains("Ann Marie Example"), "{words}");
    assert!(
        words.contains(&format!(
            "Unstructured body: application/pdf, {} bytes in the document",
            PDF.len()
        )),
        "{words}"
    );
    assert!(
        words.contains(&format!("directd ccda show {id} --save DIR")),
        "{words}"
    );

    // Saved: byte for byte, private, and a second save never overwrites the first.
    let out = env.dir.path().join("out");
    let saved = cli
        .run(&["ccda", "show", &id, "--save", out.to_str().unwrap()])
        .await;
    assert!(saved.status.success(), "{}", text(&saved));
    let first = out.join(format!("document-{id}.pdf"));
    assert_eq!(std::fs::read(&first).unwrap(), PDF);
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        text(&saved).contains(&format!("saved {}", first.display())),
        "{}",
        text(&saved)
    );
    std::fs::write(&first, b"edited by the user").unwrap();
    let again = cli
        .run(&["ccda", "show", &id, "--save", out.to_str().unwrap()])
        .await;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(std::fs::read(&first).unwrap(), b"edited by the user");
    assert_eq!(
        std::fs::read(out.join(format!("document-{id}-1.pdf"))).unwrap(),
        PDF
    );
    let audit = text(&cli.run(&["audit"]).await);
    assert_eq!(audit.matches("ccda save").count(), 2, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_pdf_refuses_what_it_cannot_wrap_with_the_reason() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let cli = Cli::new(&env, &[A, B]);
    let pdf = env.dir.path().join("r.pdf");
    std::fs::write(&pdf, PDF).unwrap();
    let not_pdf = env.dir.path().join("r.txt");
    std::fs::write(&not_pdf, b"plain text").unwrap();
    let (pdf, not_pdf) = (pdf.to_str().unwrap(), not_pdf.to_str().unwrap());
    let refused = |extra: &[&str], why: &str| {
        let mut args = vec!["send", "--from", A, "--to", B];
        args.extend(extra);
        let o = cli.command(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(why),
            "{args:?}: wanted {why:?} in {}",
            text(&o)
        );
    };
    let who = [
        "--patient-name",
        "Ann Example",
        "--birth-date",
        "1970-04-03",
    ];
    refused(
        &[&["--pdf", not_pdf][..], &who, &["--gender", "F"]].concat(),
        "is not a PDF",
    );
    refused(&[&["--pdf", pdf][..], &who].concat(), "--gender");
    refused(
        &[
            "--pdf",
            pdf,
            "--patient-name",
            "Ann Example",
            "--birth-date",
            "03/04/1970",
            "--gender",
            "F",
        ],
        "YYYY-MM-DD",
    );
    refused(
        &[&["--pdf", pdf][..], &who, &["--gender", "X"]].concat(),
        "F, M or UN",
    );
    refused(
        &[
            &["--pdf", pdf][..],
            &who,
            &["--gender", "F", "--document-type", "99999-9"],
        ]
        .concat(),
        "give --title",
    );
    // Patient flags without --pdf mean a mistake, not a silently ignored option.
    refused(&["--body", "x", "--gender", "F"], "--pdf");
    // A PDF given as a C-CDA points to --pdf.
    refused(&["--ccda", pdf], "--pdf");
    // Every refusal came before anything was queued: the store was never even created.
    assert!(!env.store_path.exists());
}

/// `ingest` from disk keeps the file an Unstructured Document's `<reference>` names, read from
/// beside it, and `--save` writes it back; a reference out of the folder or to nothing is
/// reported, never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_from_disk_resolves_a_reference_to_the_file_beside_it() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let cli = Cli::new(&env, &[A]);
    let dir = env.dir.path().join("archive");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let p = PatientDemographics::new("Ann Example", "1970-04-03", "F").unwrap();
    let author = Author {
        organization: "Example Imaging".into(),
        direct_address: "imaging@direct.example.org".into(),
        ..Author::default()
    };
    let referencing = |name: &str, reference: &str| {
        let content = Content {
            data: b"unused",
            media_type: "application/pdf",
            loinc: "18748-4",
            title: Some(name),
        };
        let xml =
            String::from_utf8(build(&p, &author, &content, SystemTime::now()).unwrap()).unwrap();
        let start = xml.find("<text mediaType").unwrap();
        let end = xml.find("</text>").unwrap() + "</text>".len();
        format!(
            "{}<text mediaType=\"application/pdf\"><reference value=\"{reference}\"/></text>{}",
            &xml[..start],
            &xml[end..]
        )
    };
    std::fs::write(dir.join("sub/report.xml"), referencing("found", "scan.pdf")).unwrap();
    std::fs::write(dir.join("sub/scan.pdf"), PDF).unwrap();
    std::fs::write(dir.join("outside.pdf"), b"%PDF-1.4 not to be read").unwrap();
    std::fs::write(
        dir.join("sub/escape.xml"),
        referencing("escape", "../outside.pdf"),
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/missing.xml"),
        referencing("missing", "gone.pdf"),
    )
    .unwrap();

    let out = cli.run(&["ingest", "--json", dir.to_str().unwrap()]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "two references name no file: {}",
        text(&out)
    );
    let summary = json(&out);
    let failures: Vec<String> = summary["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["file"].as_str().unwrap(),
                f["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(failures.len(), 2, "{summary}");
    assert!(
        failures.iter().any(|f| f.contains("escape.xml")
            && f.contains("\"../outside.pdf\" names no file beside it")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(
            |f| f.contains("missing.xml") && f.contains("\"gone.pdf\" names no file beside it")
        ),
        "{failures:?}"
    );

    let listed = json(&cli.run(&["ccda", "list", "--json"]).await);
    let found = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "found")
        .unwrap()
        .clone();
    let id = found["document_id"].to_string();
    let words = text(&cli.run(&["ccda", "show", &id]).await);
    assert!(
        words.contains("Unstructured body: application/pdf, in the file \"scan.pdf\" beside it"),
        "{words}"
    );
    let out_dir = env.dir.path().join("out");
    let saved = cli
        .run(&["ccda", "show", &id, "--save", out_dir.to_str().unwrap()])
        .await;
    assert!(saved.status.success(), "{}", text(&saved));
    assert_eq!(std::fs::read(out_dir.join("scan.pdf")).unwrap(), PDF);
    // The one whose reference pointed out of the folder has nothing to save.
    let escape = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "escape")
        .unwrap()["document_id"]
        .to_string();
    let refused = cli
        .run(&["ccda", "show", &escape, "--save", out_dir.to_str().unwrap()])
        .await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("a file the store does not have"),
        "{}",
        text(&refused)
    );
    assert!(!out_dir.join("outside.pdf").exists());
}
