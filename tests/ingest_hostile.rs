//! Hostile XML: every refusal must be the specific error variant, and must be fast.

mod support;

use std::time::{Duration, Instant};

use directd::ingest::{detect, extract_ccda, ingest_bytes, Detected, IngestError, Limits};

fn hostile(name: &str) -> Result<directd::ingest::Document, IngestError> {
    extract_ccda(
        &support::ingest::fixture("hostile", name),
        &Limits::default(),
    )
}

#[test]
fn billion_laughs_is_refused_as_dtd() {
    assert!(matches!(
        hostile("billion_laughs.xml"),
        Err(IngestError::DtdForbidden)
    ));
}

#[test]
fn external_entity_is_refused_as_dtd() {
    assert!(matches!(
        hostile("xxe_passwd.xml"),
        Err(IngestError::DtdForbidden)
    ));
    assert!(matches!(
        hostile("xxe_parameter_entity.xml"),
        Err(IngestError::DtdForbidden)
    ));
}

#[test]
fn doctype_anywhere_is_refused() {
    assert!(matches!(
        hostile("doctype_after_root.xml"),
        Err(IngestError::DtdForbidden)
    ));
}

#[test]
fn undeclared_entity_in_text_is_an_error_not_kept() {
    match hostile("entity_without_dtd.xml") {
        Err(IngestError::ExternalEntity { name }) => assert_eq!(name, "xxe"),
        other => panic!("expected ExternalEntity, got {other:?}"),
    }
}

#[test]
fn undeclared_entity_in_attribute_is_an_error_not_kept() {
    match hostile("entity_in_attribute.xml") {
        Err(IngestError::ExternalEntity { name }) => assert_eq!(name, "xxe"),
        other => panic!("expected ExternalEntity, got {other:?}"),
    }
}

#[test]
fn non_cda_roots_are_refused() {
    match hostile("not_cda.xml") {
        Err(IngestError::NotCda { root }) => assert_eq!(root, "html"),
        other => panic!("expected NotCda, got {other:?}"),
    }
    assert!(matches!(
        hostile("wrong_namespace.xml"),
        Err(IngestError::NotCda { .. })
    ));
    assert!(matches!(
        extract_ccda(b"", &Limits::default()),
        Err(IngestError::NotCda { .. })
    ));
}

#[test]
fn malformed_xml_is_reported() {
    assert!(matches!(
        hostile("malformed.xml"),
        Err(IngestError::MalformedXml(_))
    ));
    let truncated = &support::ingest::fixture("ccda", "ccd_r21_full.xml")[..5000];
    assert!(matches!(
        extract_ccda(truncated, &Limits::default()),
        Err(IngestError::MalformedXml(_))
    ));
}

#[test]
fn hostile_cda_is_still_detected_as_cda_so_it_gets_refused_loudly() {
    let bytes = support::ingest::fixture("hostile", "xxe_passwd.xml");
    assert_eq!(detect(&bytes, "text/plain", Some("x.txt")), Detected::Ccda);
    assert!(matches!(
        ingest_bytes(&bytes, "application/xml", None, &Limits::default()),
        Err(IngestError::DtdForbidden)
    ));
}

fn deep(levels: usize) -> Vec<u8> {
    let mut s = String::from(r#"<ClinicalDocument xmlns="urn:hl7-org:v3">"#);
    s.push_str(&"<a>".repeat(levels));
    s.push_str(&"</a>".repeat(levels));
    s.push_str("</ClinicalDocument>");
    s.into_bytes()
}

#[test]
fn ten_thousand_deep_nesting_is_refused_quickly() {
    let bytes = deep(10_000);
    let started = Instant::now();
    let result = extract_ccda(&bytes, &Limits::default());
    assert!(
        matches!(result, Err(IngestError::TooDeep { depth: 256 })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn deep_nesting_inside_a_section_narrative_is_refused() {
    let mut s = String::from(
        r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody><component><section><text>"#,
    );
    s.push_str(&"<content>".repeat(300));
    s.push_str(&"</content>".repeat(300));
    s.push_str("</text></section></component></structuredBody></component></ClinicalDocument>");
    assert!(matches!(
        extract_ccda(s.as_bytes(), &Limits::default()),
        Err(IngestError::TooDeep { .. })
    ));
}

#[test]
fn nesting_just_under_the_limit_is_accepted() {
    let limits = Limits::default();
    // Root is level 1, so max_depth - 1 nested elements fit.
    let bytes = deep(limits.max_depth - 1);
    assert!(extract_ccda(&bytes, &limits).is_ok());
    let bytes = deep(limits.max_depth);
    assert!(matches!(
        extract_ccda(&bytes, &limits),
        Err(IngestError::TooDeep { .. })
    ));
}

#[test]
fn element_count_is_capped() {
    let limits = Limits {
        max_elements: 100,
        ..Limits::default()
    };
    let bytes = support::ingest::fixture("ccda", "ccd_r21_full.xml");
    assert!(matches!(
        extract_ccda(&bytes, &limits),
        Err(IngestError::TooManyElements { limit: 100 })
    ));
}

#[test]
fn document_size_is_capped() {
    let limits = Limits {
        max_document_bytes: 1000,
        ..Limits::default()
    };
    let bytes = support::ingest::fixture("ccda", "ccd_r21_full.xml");
    assert!(matches!(
        extract_ccda(&bytes, &limits),
        Err(IngestError::TooLarge { limit: 1000, .. })
    ));
}

#[test]
fn text_node_size_is_capped() {
    let limits = Limits {
        max_text_bytes: 64,
        ..Limits::default()
    };
    let bytes = support::ingest::fixture("ccda", "unstructured_b64_pdf.xml");
    assert!(matches!(
        extract_ccda(&bytes, &limits),
        Err(IngestError::TextTooLarge { limit: 64, .. })
    ));
}

#[test]
fn stylesheet_processing_instruction_is_ignored() {
    // The full CCD fixture carries an xml-stylesheet PI pointing at a remote host; extraction
    // must succeed without acting on it (there is no network code to act with).
    let bytes = support::ingest::fixture("ccda", "ccd_r21_full.xml");
    assert!(String::from_utf8_lossy(&bytes).contains("xml-stylesheet"));
    assert!(extract_ccda(&bytes, &Limits::default()).is_ok());
}

#[test]
fn bad_base64_body_is_reported() {
    let doc = r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody>
        <text mediaType="application/pdf" representation="B64">!!!not base64!!!</text>
        </nonXMLBody></component></ClinicalDocument>"#;
    assert!(matches!(
        extract_ccda(doc.as_bytes(), &Limits::default()),
        Err(IngestError::BadBase64(_))
    ));
}

#[test]
fn garbage_never_panics() {
    // A cheap stand-in for the fuzz targets: every prefix of a real document, and some noise.
    let bytes = support::ingest::fixture("ccda", "r11_prefixed_no_realm_header.xml");
    for end in (0..bytes.len()).step_by(97) {
        let _ = extract_ccda(&bytes[..end], &Limits::default());
    }
    for seed in 0u32..200 {
        let noise: Vec<u8> = (0..300u32)
            .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503) >> 13) as u8)
            .collect();
        let _ = extract_ccda(&noise, &Limits::default());
        let _ = directd::ingest::unpack_xdm(&noise, &Limits::default());
    }
}

#[test]
fn byte_order_mark_and_crlf_are_tolerated() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    let text = String::from_utf8(support::ingest::fixture(
        "ccda",
        "discharge_summary_loinc_only.xml",
    ))
    .expect("utf8")
    .replace('\n', "\r\n");
    bytes.extend_from_slice(text.as_bytes());
    assert_eq!(
        detect(&bytes, "application/octet-stream", None),
        Detected::Ccda
    );
    let doc = extract_ccda(&bytes, &Limits::default()).expect("extract");
    assert_eq!(doc.title.as_deref(), Some("Discharge Summary"));
    assert_eq!(doc.sections.len(), 4);
}

#[test]
fn latin1_documents_are_transcoded() {
    let doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>Jos\u{e9} M\u{fc}ller</title></ClinicalDocument>";
    let latin1: Vec<u8> = doc.chars().map(|c| c as u32 as u8).collect();
    assert!(std::str::from_utf8(&latin1).is_err());
    let extracted = extract_ccda(&latin1, &Limits::default()).expect("extract");
    assert_eq!(extracted.title.as_deref(), Some("Jos\u{e9} M\u{fc}ller"));
    // Undeclared non-UTF-8 stays an error rather than being guessed at.
    let undeclared: Vec<u8> =
        latin1[latin1.iter().position(|&b| b == b'\n').unwrap() + 1..].to_vec();
    assert!(matches!(
        extract_ccda(&undeclared, &Limits::default()),
        Err(IngestError::MalformedXml(_))
    ));
}

#[test]
fn error_kinds_for_logs_carry_no_names() {
    let e = directd::ingest::IngestError::ZipTraversal {
        name: "../patient-jane-doe.xml".into(),
    };
    assert_eq!(e.kind(), "ZipTraversal");
    assert!(
        e.to_string().contains("jane"),
        "the full message keeps the detail for the store"
    );
}
