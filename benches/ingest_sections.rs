//! Per-document section coverage of our C-CDA extractor, as JSON lines, for side-by-side
//! comparison with BlueButton.js (`benches/bluebutton_compare.sh`). Not a timing bench: it makes one
//! untimed pass over the corpus and prints, for each file, which kinds of item were extracted and
//! how many, using the same section names as `benches/bluebutton_run.js`.
//!
//! `CCDA_CORPUS` selects the folder (default `tests/fixtures/ccda`). Only `*.xml` files are read
//! (the same selection as the BlueButton.js side). Run with
//! `cargo bench --bench ingest_sections` (add `harness = false` for it in Cargo.toml).
//!
//! Output, one JSON object per line:
//! `{"file":"x.xml","bytes":123,"ok":true,"error":null,"kind":"ccd","counts":{"allergies":2,...}}`

use std::collections::BTreeMap;
use std::path::PathBuf;

use directd::ingest::model::{Document, Entry, SectionKind};
use directd::ingest::{ingest_bytes, Content, Limits};

/// Section names shared with the BlueButton.js side. Keep in sync with `bluebutton_run.js`.
const KINDS: &[&str] = &[
    "demographics",
    "allergies",
    "care_plan",
    "chief_complaint",
    "encounters",
    "functional_statuses",
    "immunizations",
    "instructions",
    "medications",
    "problems",
    "procedures",
    "results",
    "smoking_status",
    "vitals",
    "family_history",
];

fn has_text(t: &Option<String>) -> bool {
    t.as_deref().is_some_and(|s| !s.trim().is_empty())
}

fn counts(doc: &Document) -> BTreeMap<&'static str, usize> {
    let mut c: BTreeMap<&'static str, usize> = KINDS.iter().map(|k| (*k, 0)).collect();
    let mut bump = |k: &'static str, n: usize| *c.get_mut(k).expect("known kind") += n;
    if let Some(p) = &doc.patient {
        let named = p
            .names
            .iter()
            .any(|n| n.family.is_some() || !n.given.is_empty() || n.text.is_some());
        let gender = p.gender.as_ref().is_some_and(|g| g.code.is_some());
        if named || p.birth_time.is_some() || gender {
            bump("demographics", 1);
        }
    }
    for s in &doc.sections {
        // Narrative-only kinds: BlueButton.js reports these as free text / narrative rows too.
        match s.kind {
            SectionKind::ChiefComplaint
            | SectionKind::ChiefComplaintAndReasonForVisit
            | SectionKind::ReasonForVisit
                if has_text(&s.text) =>
            {
                bump("chief_complaint", 1)
            }
            SectionKind::Instructions | SectionKind::DischargeInstructions if has_text(&s.text) => {
                bump("instructions", 1)
            }
            SectionKind::FunctionalStatus if has_text(&s.text) || !s.entries.is_empty() => {
                bump("functional_statuses", 1)
            }
            _ => {}
        }
        for e in &s.entries {
            match e {
                Entry::Problem(_) => bump("problems", 1),
                Entry::Medication(_) => bump("medications", 1),
                Entry::Allergy(_) => bump("allergies", 1),
                Entry::Result(p) => bump("results", p.observations.len().max(1)),
                Entry::VitalSigns(p) => bump("vitals", p.observations.len().max(1)),
                Entry::Immunization(_) => bump("immunizations", 1),
                Entry::Procedure(_) => bump("procedures", 1),
                Entry::Encounter(_) => bump("encounters", 1),
                Entry::SocialHistory(h) if h.observation_type == "smoking_status" => {
                    bump("smoking_status", 1)
                }
                Entry::SocialHistory(_) => {}
                Entry::PlanOfCare(_) => bump("care_plan", 1),
                Entry::FamilyHistory(_) => bump("family_history", 1),
            }
        }
    }
    c
}

fn main() {
    let dir = std::env::var_os("CCDA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ccda"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    files.sort();
    let limits = Limits::default();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                let line = serde_json::json!({"file": name, "bytes": 0, "ok": false,
                    "error": e.to_string(), "kind": null, "counts": {}});
                println!("{line}");
                continue;
            }
        };
        let (ok, error, kind, c) =
            match ingest_bytes(&bytes, "application/octet-stream", Some(&name), &limits) {
                Ok(out) => match out.into_iter().next().map(|e| e.content) {
                    Some(Content::Document(doc)) => (
                        true,
                        None,
                        serde_json::to_value(doc.kind).ok(),
                        counts(&doc),
                    ),
                    Some(Content::Failed(e)) => (false, Some(e.to_string()), None, BTreeMap::new()),
                    Some(Content::NotCda(d)) => (
                        false,
                        Some(format!("not a CDA: {d:?}")),
                        None,
                        BTreeMap::new(),
                    ),
                    None => (
                        false,
                        Some("not recognised as C-CDA".into()),
                        None,
                        BTreeMap::new(),
                    ),
                },
                Err(e) => (false, Some(e.to_string()), None, BTreeMap::new()),
            };
        let line = serde_json::json!({"file": name, "bytes": bytes.len(), "ok": ok,
            "error": error, "kind": kind, "counts": c});
        println!("{line}");
    }
}
