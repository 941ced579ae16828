//! Each `tests/fixtures/ccda/NAME.xml` must extract to exactly `NAME.expected.json`.
//! Run with `UPDATE_EXPECTED=1` to rewrite the expected files, then review the diff before
//! committing: the expected files are the specification of what we extract.

mod support;

use directd::ingest::model::{Document, DocumentKind, Entry, MatchedBy, SectionKind};
use directd::ingest::{extract_ccda, Limits};

#[test]
fn fixtures_match_expected_json() {
    support::expected::check("ccda", "xml", 6, |path, bytes| -> Document {
        extract_ccda(bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
}

fn load(name: &str) -> Document {
    extract_ccda(&support::ingest::fixture("ccda", name), &Limits::default()).expect("extract")
}

#[test]
fn classification_uses_template_then_loinc_then_body() {
    let ccd = load("ccd_r21_full.xml");
    assert_eq!(
        (ccd.kind, ccd.classified_by),
        (DocumentKind::Ccd, MatchedBy::TemplateId)
    );
    let r11 = load("r11_prefixed_no_realm_header.xml");
    assert_eq!(
        (r11.kind, r11.classified_by),
        (DocumentKind::Ccd, MatchedBy::TemplateId)
    );
    let ds = load("discharge_summary_loinc_only.xml");
    assert_eq!(
        (ds.kind, ds.classified_by),
        (DocumentKind::DischargeSummary, MatchedBy::LoincCode)
    );
    let nf = load("nullflavor_no_templates.xml");
    assert_eq!(
        (nf.kind, nf.classified_by),
        (DocumentKind::GenericCda, MatchedBy::None)
    );
    let pdf = load("unstructured_b64_pdf.xml");
    assert_eq!(pdf.kind, DocumentKind::UnstructuredDocument);
    let reference = load("unstructured_reference.xml");
    assert_eq!(
        (reference.kind, reference.classified_by),
        (DocumentKind::UnstructuredDocument, MatchedBy::Body)
    );
}

#[test]
fn full_ccd_has_every_entry_type() {
    let doc = load("ccd_r21_full.xml");
    let mut seen: Vec<&str> = doc
        .sections
        .iter()
        .flat_map(|s| &s.entries)
        .map(|e| match e {
            Entry::Problem(_) => "problem",
            Entry::Medication(_) => "medication",
            Entry::Allergy(_) => "allergy",
            Entry::Result(_) => "result",
            Entry::VitalSigns(_) => "vital_signs",
            Entry::Immunization(_) => "immunization",
            Entry::Procedure(_) => "procedure",
            Entry::Encounter(_) => "encounter",
            Entry::SocialHistory(_) => "social_history",
            Entry::PlanOfCare(_) => "plan_of_care",
            Entry::FamilyHistory(_) => "family_history",
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 11, "{seen:?}");
    let patient = doc.patient.expect("patient");
    assert_eq!(patient.names[0].given, vec!["Zelda", "Marie"]);
    assert_eq!(patient.races.len(), 2, "raceCode + sdtc:raceCode");
    assert_eq!(
        patient.birth_time.as_deref(),
        Some("1970-05-01T08:30:00-05:00")
    );
    assert_eq!(doc.authors.len(), 2);
    assert!(doc.authors[1].device.is_some());
}

#[test]
fn narrative_tables_flatten_to_tabs_and_lines() {
    let doc = load("ccd_r21_full.xml");
    let vitals = doc
        .sections
        .iter()
        .find(|s| s.kind == SectionKind::VitalSigns)
        .expect("vitals");
    assert_eq!(
        vitals.text.as_deref(),
        Some("Date\tHeight\tWeight\tBP\n2024-03-15\t165 cm\t70 kg\t128/82")
    );
    let local = doc
        .sections
        .iter()
        .find(|s| s.title.as_deref() == Some("Clinic Notes (local section)"))
        .expect("local section");
    assert_eq!(local.kind, SectionKind::Other);
    assert_eq!(
        local.text.as_deref(),
        Some("Patient asked about travel vaccines.\nWill discuss next visit.")
    );
    let nested = doc
        .sections
        .iter()
        .find(|s| s.title.as_deref() == Some("Nested subsection"))
        .expect("nested");
    assert_eq!(
        nested.parent,
        doc.sections.iter().position(|s| std::ptr::eq(s, local))
    );
}

#[test]
fn inline_pdf_is_decoded() {
    let doc = load("unstructured_b64_pdf.xml");
    let derived = doc
        .non_xml_body
        .and_then(|b| b.derived)
        .expect("derived binary");
    assert!(derived.bytes.starts_with(b"%PDF-1.4"));
    assert_eq!(derived.size, derived.bytes.len() as u64);
    assert_eq!(derived.media_type.as_deref(), Some("application/pdf"));
}

#[test]
fn reference_body_names_sibling_attachment() {
    let doc = load("unstructured_reference.xml");
    let body = doc.non_xml_body.expect("body");
    assert_eq!(body.reference.as_deref(), Some("referral_letter.pdf"));
    assert!(body.derived.is_none());
}

#[test]
fn sections_without_templates_match_by_loinc_and_keep_null_flavor() {
    let doc = load("nullflavor_no_templates.xml");
    let kinds: Vec<(SectionKind, MatchedBy)> = doc
        .sections
        .iter()
        .map(|s| (s.kind, s.matched_by))
        .collect();
    assert_eq!(kinds[0], (SectionKind::Allergies, MatchedBy::LoincCode));
    assert_eq!(doc.sections[0].null_flavor.as_deref(), Some("NI"));
    assert!(kinds.contains(&(SectionKind::Other, MatchedBy::None)));
    let problems = &doc.sections[1];
    assert_eq!(problems.entries.len(), 2);
}

#[test]
fn smoking_status_with_the_published_typo_oid_is_still_smoking_status() {
    // NIST's sample CCDs carry the Smoking Status template as 2.16.840.1.113883.10.22.4.78.
    let good = support::ingest::fixture("ccda", "ccd_r21_full.xml");
    let text = String::from_utf8(good).unwrap();
    assert!(text.contains("2.16.840.1.113883.10.20.22.4.78"));
    let typo = text.replace(
        "2.16.840.1.113883.10.20.22.4.78",
        "2.16.840.1.113883.10.22.4.78",
    );
    let doc = directd::ingest::extract_ccda(typo.as_bytes(), &directd::ingest::Limits::default())
        .unwrap();
    let json = serde_json::to_string(&doc).unwrap();
    assert!(
        json.contains("\"observation_type\":\"smoking_status\""),
        "smoking status lost with the typo OID"
    );
}
