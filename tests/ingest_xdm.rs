//! XDM zips generated on the fly with the `zip` writer: valid packages, integrity failures and
//! hostile archives.

mod support;

use directd::ingest::model::DocumentKind;
use directd::ingest::{detect, ingest_bytes, unpack_xdm, Content, Detected, IngestError, Limits};
use support::ingest::{build_zip, metadata_xml, MetaDoc};

const META: &str = "IHE_XDM/SUBSET01/METADATA.XML";

fn ccd() -> Vec<u8> {
    support::ingest::fixture("ccda", "ccd_r21_full.xml")
}

fn discharge() -> Vec<u8> {
    support::ingest::fixture("ccda", "discharge_summary_loinc_only.xml")
}

fn valid_xdm() -> Vec<u8> {
    let (a, b) = (ccd(), discharge());
    let meta = metadata_xml(&[
        MetaDoc::full("DOC0001.XML", "text/xml", &a),
        MetaDoc::full("DOC0002.XML", "text/xml", &b),
    ]);
    build_zip(&[
        ("README.TXT", b"XDM package for tests".as_slice()),
        ("INDEX.HTM", b"<html><body>index</body></html>".as_slice()),
        ("IHE_XDM/", b"".as_slice()),
        ("IHE_XDM/SUBSET01/", b"".as_slice()),
        (META, meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
        ("IHE_XDM/SUBSET01/DOC0002.XML", &b),
    ])
}

#[test]
fn valid_xdm_with_two_documents_unpacks() {
    let docs = unpack_xdm(&valid_xdm(), &Limits::default()).expect("unpack");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].uri, "DOC0001.XML");
    assert_eq!(docs[0].path, "IHE_XDM/SUBSET01/DOC0001.XML");
    assert_eq!(docs[0].bytes, ccd());
    assert_eq!(docs[0].mime_type.as_deref(), Some("text/xml"));
    assert_eq!(docs[0].creation_time.as_deref(), Some("20240315103000"));
    assert_eq!(
        docs[0].source_patient_id.as_deref(),
        Some("MRN-424242^^^&2.16.840.1.113883.19.5.99999.2&ISO")
    );
    assert_eq!(
        docs[0].source_patient_info,
        vec!["PID-5|Quux^Zelda", "PID-7|19700501"]
    );
    assert_eq!(
        docs[0].hash.as_deref(),
        Some(support::ingest::sha1_hex(&ccd()).as_str())
    );
    assert_eq!(docs[0].size, Some(ccd().len() as u64));
    assert_eq!(docs[0].unique_id.as_deref(), Some("1.2.3.4.0"));
    assert_eq!(docs[0].title.as_deref(), Some("Document 0"));
    assert_eq!(docs[1].bytes, discharge());
}

#[test]
fn xdm_sent_as_octet_stream_is_detected_and_ingested() {
    let zip = valid_xdm();
    assert_eq!(
        detect(&zip, "application/octet-stream", Some("attachment.bin")),
        Detected::Xdm
    );
    let out =
        ingest_bytes(&zip, "application/octet-stream", None, &Limits::default()).expect("ingest");
    let kinds: Vec<DocumentKind> = out
        .iter()
        .map(|e| match &e.content {
            Content::Document(d) => d.kind,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![DocumentKind::Ccd, DocumentKind::DischargeSummary]
    );
    assert!(out.iter().all(|e| e.xdm.is_some()));
}

#[test]
fn wrong_hash_is_refused() {
    let a = ccd();
    let mut doc = MetaDoc::full("DOC0001.XML", "text/xml", &a);
    doc.hash = Some("0000000000000000000000000000000000000000".into());
    let zip = build_zip(&[
        (META, metadata_xml(&[doc]).as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
    ]);
    match unpack_xdm(&zip, &Limits::default()) {
        Err(IngestError::XdmHashMismatch { uri }) => assert_eq!(uri, "DOC0001.XML"),
        other => panic!("expected XdmHashMismatch, got {other:?}"),
    }
}

#[test]
fn wrong_size_is_refused() {
    let a = ccd();
    let mut doc = MetaDoc::full("DOC0001.XML", "text/xml", &a);
    doc.size = Some(12);
    let zip = build_zip(&[
        (META, metadata_xml(&[doc]).as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
    ]);
    assert!(matches!(
        unpack_xdm(&zip, &Limits::default()),
        Err(IngestError::XdmSizeMismatch { .. })
    ));
}

#[test]
fn missing_document_is_refused() {
    let a = ccd();
    let zip = build_zip(&[(
        META,
        metadata_xml(&[MetaDoc::full("DOC0009.XML", "text/xml", &a)]).as_bytes(),
    )]);
    match unpack_xdm(&zip, &Limits::default()) {
        Err(IngestError::XdmMissingDocument { uri }) => assert_eq!(uri, "DOC0009.XML"),
        other => panic!("expected XdmMissingDocument, got {other:?}"),
    }
}

#[test]
fn zip_without_metadata_is_refused() {
    let zip = build_zip(&[("DOC0001.XML", &ccd())]);
    assert!(matches!(
        unpack_xdm(&zip, &Limits::default()),
        Err(IngestError::XdmNoMetadata)
    ));
}

#[test]
fn limited_metadata_and_odd_case_are_accepted() {
    let a = ccd();
    let doc = MetaDoc {
        uri: "doc0001.xml",
        mime: "text/xml",
        hash: None,
        size: None,
    };
    let zip = build_zip(&[
        (
            "ihe_xdm/subset01/metadata.xml",
            metadata_xml(&[doc]).as_bytes(),
        ),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
    ]);
    let docs = unpack_xdm(&zip, &Limits::default()).expect("unpack");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].bytes, a);
    assert_eq!(docs[0].hash, None);
}

#[test]
fn one_bad_member_does_not_lose_the_others() {
    let (a, pdf) = (ccd(), b"%PDF-1.4 synthetic".to_vec());
    let broken = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>x</ClinicalDocument>".to_vec();
    let meta = metadata_xml(&[
        MetaDoc::full("DOC0001.XML", "text/xml", &a),
        MetaDoc::full("DOC0002.PDF", "application/pdf", &pdf),
        MetaDoc::full("DOC0003.XML", "text/xml", &broken),
    ]);
    let zip = build_zip(&[
        (META, meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &a),
        ("IHE_XDM/SUBSET01/DOC0002.PDF", &pdf),
        ("IHE_XDM/SUBSET01/DOC0003.XML", &broken),
    ]);
    let out =
        ingest_bytes(&zip, "application/zip", Some("x.zip"), &Limits::default()).expect("ingest");
    assert!(matches!(out[0].content, Content::Document(_)));
    assert!(matches!(out[1].content, Content::NotCda(Detected::Pdf)));
    assert!(matches!(
        out[2].content,
        Content::Failed(IngestError::MalformedXml(_))
    ));
}

#[test]
fn traversal_and_unsafe_names_are_refused() {
    for name in [
        "../evil.xml",
        "IHE_XDM/../../evil.xml",
        "/etc/cron.d/evil",
        "C:/Windows/evil.xml",
        "IHE_XDM\\SUBSET01\\evil.xml",
    ] {
        let zip = build_zip(&[(name, b"x".as_slice()), (META, b"<x/>".as_slice())]);
        match unpack_xdm(&zip, &Limits::default()) {
            Err(IngestError::ZipTraversal { name: got }) => assert_eq!(got, name),
            other => panic!("{name}: expected ZipTraversal, got {other:?}"),
        }
    }
}

#[test]
fn symlinks_are_refused() {
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink(
        "IHE_XDM/SUBSET01/DOC0001.XML",
        "/etc/passwd",
        SimpleFileOptions::default(),
    )
    .expect("symlink");
    w.start_file(META, SimpleFileOptions::default())
        .expect("start");
    w.write_all(b"<x/>").expect("write");
    let zip = w.finish().expect("finish").into_inner();
    assert!(matches!(
        unpack_xdm(&zip, &Limits::default()),
        Err(IngestError::ZipSymlink { .. })
    ));
}

#[test]
fn case_insensitive_duplicates_are_refused() {
    let zip = build_zip(&[
        ("IHE_XDM/SUBSET01/DOC0001.XML", b"a".as_slice()),
        ("ihe_xdm/subset01/doc0001.xml", b"b".as_slice()),
        (META, b"<x/>".as_slice()),
    ]);
    assert!(matches!(
        unpack_xdm(&zip, &Limits::default()),
        Err(IngestError::ZipDuplicate { .. })
    ));
}

#[test]
fn exact_duplicates_are_refused() {
    let mut zip = build_zip(&[
        ("IHE_XDM/SUBSET01/DOC0001.XML", b"a".as_slice()),
        ("IHE_XDM/SUBSET01/DOC0002.XML", b"b".as_slice()),
        (META, b"<x/>".as_slice()),
    ]);
    support::ingest::patch_bytes(&mut zip, b"DOC0002.XML", b"DOC0001.XML");
    let result = unpack_xdm(&zip, &Limits::default());
    assert!(
        matches!(result, Err(IngestError::ZipDuplicate { .. })),
        "{result:?}"
    );
}

#[test]
fn zip_bomb_is_refused_from_declared_sizes() {
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let zip = build_zip(&[
        (META, b"<x/>".as_slice()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &zeros),
    ]);
    match unpack_xdm(&zip, &Limits::default()) {
        Err(IngestError::ZipBomb { ratio }) => assert!(ratio > 100),
        other => panic!("expected ZipBomb, got {other:?}"),
    }
}

#[test]
fn zip_bomb_lying_about_its_size_is_caught_while_reading() {
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let meta = metadata_xml(&[MetaDoc {
        uri: "DOC0001.XML",
        mime: "text/xml",
        hash: None,
        size: None,
    }]);
    let name = "IHE_XDM/SUBSET01/DOC0001.XML";
    let mut zip = build_zip(&[(META, meta.as_bytes()), (name, &zeros)]);
    support::ingest::patch_declared_size(&mut zip, name, 1000);
    let result = unpack_xdm(&zip, &Limits::default());
    // Either our read cap or the zip reader's own size/CRC check must stop it; what matters is
    // that the 4 MiB are never handed back.
    assert!(
        matches!(
            result,
            Err(IngestError::ZipBomb { .. } | IngestError::MalformedZip(_))
        ),
        "{result:?}"
    );
}

#[test]
fn entry_count_is_capped() {
    let names: Vec<String> = (0..6).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"x".as_slice()))
        .collect();
    let zip = build_zip(&entries);
    let limits = Limits {
        max_zip_entries: 5,
        ..Limits::default()
    };
    assert!(matches!(
        unpack_xdm(&zip, &limits),
        Err(IngestError::ZipTooManyEntries { limit: 5 })
    ));
}

#[test]
fn total_size_is_capped() {
    let limits = Limits {
        max_zip_total_bytes: 10_000,
        ..Limits::default()
    };
    assert!(matches!(
        unpack_xdm(&valid_xdm(), &limits),
        Err(IngestError::ZipTooLarge { limit: 10_000 })
    ));
}

#[test]
fn not_a_zip_is_malformed() {
    assert!(matches!(
        unpack_xdm(b"PK\x03\x04 but not really", &Limits::default()),
        Err(IngestError::MalformedZip(_))
    ));
}

#[test]
fn detection_sniffs_content_not_labels() {
    let cda = ccd();
    for name in ["a.xml", "a.XML", "a.ccd", "a.txt"] {
        for mime in [
            "application/xml",
            "text/xml",
            "application/octet-stream",
            "text/plain",
        ] {
            assert_eq!(
                detect(&cda, mime, Some(name)),
                Detected::Ccda,
                "{name} {mime}"
            );
        }
    }
    assert_eq!(
        detect(b"%PDF-1.7", "application/octet-stream", None),
        Detected::Pdf
    );
    assert_eq!(
        detect(b"hello", "text/plain", Some("note.txt")),
        Detected::Text
    );
    assert_eq!(detect(b"<html/>", "text/html", None), Detected::Other);
    let not_cda = support::ingest::fixture("hostile", "wrong_namespace.xml");
    assert_eq!(detect(&not_cda, "text/xml", Some("a.xml")), Detected::Other);
}

/// Each `tests/fixtures/xdm/NAME.zip` unpacks to exactly `NAME.expected.json` (the documents with
/// their metadata, or the refusal); `UPDATE_EXPECTED=1` rewrites them.
#[test]
fn xdm_fixtures_match_expected_json() {
    use serde_json::json;
    support::expected::check("xdm", "zip", 4, |_, zip| {
        match unpack_xdm(zip, &Limits::default()) {
            Ok(docs) => json!(docs
                .iter()
                .map(|d| json!({
                    "uri": d.uri,
                    "path": d.path,
                    "mime_type": d.mime_type,
                    "bytes": { "size": d.bytes.len(), "sha256": directd::util::sha256_hex(&d.bytes) },
                    "entry_uuid": d.entry_uuid,
                    "unique_id": d.unique_id,
                    "title": d.title,
                    "creation_time": d.creation_time,
                    "source_patient_id": d.source_patient_id,
                    "source_patient_info": d.source_patient_info,
                    "hash": d.hash,
                    "size": d.size,
                }))
                .collect::<Vec<_>>()),
            Err(e) => json!({ "error": e.kind(), "message": e.to_string() }),
        }
    });
}
