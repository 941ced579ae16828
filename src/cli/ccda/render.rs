//! `ccda show` as a clinician reads a document: every coded entry in words (names, not codes;
//! "every 8 hours", not a period in days; "no known allergies", not a negation flag), then the
//! section's own narrative, which is what the author actually wrote.

use crate::ingest::model::{
    systems, Allergy, Code, Document, Entry, Immunization, Medication, Observation, Panel,
    Participant, PersonName, Problem, Section, SectionKind,
};
use crate::ingest::vocab::name_of;
use crate::store::clinical::DocumentSummary;

use super::super::output::opt;

const NOT_CODED: &str = "not coded";

fn named(c: Option<&Code>, preferred: &[&str]) -> Option<String> {
    c.and_then(|c| name_of(c, preferred))
}

fn person_name(n: &PersonName) -> Option<String> {
    let mut parts: Vec<&str> = n.prefixes.iter().map(String::as_str).collect();
    parts.extend(n.given.iter().map(String::as_str));
    parts.extend(n.family.as_deref());
    parts.extend(n.suffixes.iter().map(String::as_str));
    if parts.is_empty() {
        n.text.clone().filter(|t| !t.is_empty())
    } else {
        Some(parts.join(" "))
    }
}

fn participant(p: &Participant) -> String {
    let who = p.names.iter().find_map(person_name).or_else(|| {
        p.device
            .as_ref()
            .and_then(|d| d.software.clone().or(d.manufacturer_model.clone()))
    });
    // An organisation authoring in its own name (a lab's result) is not an "unnamed" person.
    match (who, p.organization.as_ref().and_then(|o| o.names.first())) {
        (Some(who), Some(org)) => format!("{who}, {org}"),
        (Some(who), None) => who,
        (None, Some(org)) => org.clone(),
        (None, None) => "(unnamed)".into(),
    }
}

fn period(start: &Option<String>, end: &Option<String>) -> Option<String> {
    match (start, end) {
        (Some(a), Some(b)) if a == b => Some(a.clone()),
        (Some(a), Some(b)) => Some(format!("{a} – {b}")),
        (Some(a), None) => Some(format!("since {a}")),
        (None, Some(b)) => Some(format!("until {b}")),
        (None, None) => None,
    }
}

/// "a; b; c" of whatever parts are present.
fn joined(parts: impl IntoIterator<Item = Option<String>>) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn with_details(what: String, details: String) -> String {
    if details.is_empty() {
        what
    } else {
        format!("{what} — {details}")
    }
}

fn problem(p: &Problem) -> String {
    let name = named(p.code.as_ref(), systems::PROBLEM);
    if p.negated {
        return match name {
            Some(n) => format!("no {n}"),
            None => "no known problems".into(),
        };
    }
    let kind = named(p.problem_type.as_ref(), &[]).filter(|k| !k.eq_ignore_ascii_case("problem"));
    with_details(
        name.unwrap_or_else(|| NOT_CODED.into()),
        joined([
            kind,
            p.status.clone().or(p.concern_status.clone()),
            period(&p.onset, &p.resolution),
        ]),
    )
}

fn dose(value: &Option<String>, unit: &Option<String>, form: Option<&Code>) -> Option<String> {
    let value = value.as_ref()?;
    let one = value.trim() == "1";
    let unit = unit.clone().filter(|u| u != "1").or_else(|| {
        named(form, &[]).map(|f| {
            let f = f.to_lowercase();
            if one || f.ends_with('s') {
                f
            } else {
                format!("{f}s")
            }
        })
    });
    Some(match unit {
        Some(u) => format!("{value} {u}"),
        None => format!("dose {value}"),
    })
}

fn route(c: Option<&Code>) -> Option<String> {
    let c = c?;
    // The listed wording ("by mouth") reads better than the SPL's capitals ("ORAL").
    c.code
        .as_deref()
        .and_then(|x| crate::ingest::vocab::display(c.code_system.as_deref(), x))
        .map(str::to_owned)
        .or_else(|| name_of(c, &[]).map(|n| n.to_lowercase()))
}

fn medication(m: &Medication) -> String {
    let drug = named(m.drug.as_ref(), systems::MEDICATION).or(m.drug_name.clone());
    if m.negated {
        return match drug {
            Some(d) => format!("not taking {d}"),
            None => "no known medications".into(),
        };
    }
    let planned = matches!(m.mood_code.as_deref(), Some("INT" | "RQO" | "PRMS" | "PRP"));
    with_details(
        drug.unwrap_or_else(|| NOT_CODED.into()),
        joined([
            dose(&m.dose_value, &m.dose_unit, m.form.as_ref()),
            route(m.route.as_ref()),
            m.frequency.clone(),
            planned.then(|| "planned".to_owned()),
            m.status.clone(),
            period(&m.start, &m.end),
        ]),
    )
}

fn allergy(a: &Allergy) -> String {
    let substance = named(a.substance.as_ref(), systems::SUBSTANCE);
    if a.negated {
        return match substance {
            Some(s) if !s.eq_ignore_ascii_case("no known allergies") => {
                format!("no allergy to {s}")
            }
            _ => "no known allergies".into(),
        };
    }
    let reactions: Vec<String> = a
        .reactions
        .iter()
        .filter_map(|r| {
            let what = named(r.code.as_ref(), systems::PROBLEM)?;
            Some(match named(r.severity.as_ref(), &[]) {
                Some(sev) => format!("{what} ({})", sev.to_lowercase()),
                None => what,
            })
        })
        .collect();
    with_details(
        substance.unwrap_or_else(|| NOT_CODED.into()),
        joined([
            named(a.allergy_type.as_ref(), &[]),
            (!reactions.is_empty()).then(|| format!("reaction: {}", reactions.join(", "))),
            named(a.severity.as_ref(), &[]).map(|s| format!("severity: {}", s.to_lowercase())),
            a.status.clone().or(a.concern_status.clone()),
            period(&a.onset, &a.resolution),
        ]),
    )
}

fn immunization(i: &Immunization) -> String {
    let vaccine = named(i.vaccine.as_ref(), systems::VACCINE);
    if i.negated {
        return joined([
            Some(format!(
                "not given: {}",
                vaccine.unwrap_or_else(|| NOT_CODED.into())
            )),
            named(i.refusal_reason.as_ref(), &[]).map(|r| format!("reason: {r}")),
        ]);
    }
    with_details(
        vaccine.unwrap_or_else(|| NOT_CODED.into()),
        joined([
            i.time.clone(),
            dose(&i.dose_value, &i.dose_unit, None),
            route(i.route.as_ref()),
            i.lot_number.clone().map(|l| format!("lot {l}")),
            i.manufacturer.clone(),
        ]),
    )
}

fn value_text(o: &Observation) -> Option<String> {
    let v = o.value.as_ref()?;
    let main = v
        .value
        .clone()
        .or_else(|| v.code.as_ref().and_then(|c| name_of(c, &[])))
        .or_else(|| v.text.clone())?;
    Some(match &v.unit {
        Some(u) if u != "1" => format!("{main} {u}"),
        _ => main,
    })
}

fn observation(o: &Observation, preferred: &[&str]) -> String {
    let mut line = format!(
        "{}: {}",
        named(o.code.as_ref(), preferred).unwrap_or_else(|| NOT_CODED.into()),
        value_text(o).unwrap_or_else(|| "no value".into())
    );
    if let Some(r) = &o.reference_range {
        let bounds = match (&r.low, &r.high) {
            (Some(l), Some(h)) => Some(format!("{l}–{h}")),
            (Some(l), None) => Some(format!("≥ {l}")),
            (None, Some(h)) => Some(format!("≤ {h}")),
            (None, None) => None,
        };
        let range = match (bounds, &r.text) {
            (Some(b), Some(t)) if !t.contains(&b) => Some(format!("{b}; {t}")),
            (Some(b), None) => Some(b),
            (_, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        if let Some(range) = range {
            line.push_str(&format!(" (reference {range})"));
        }
    }
    let interpretations: Vec<String> = o
        .interpretations
        .iter()
        .filter_map(|c| name_of(c, &[]))
        .filter(|i| !i.eq_ignore_ascii_case("normal"))
        .collect();
    if !interpretations.is_empty() {
        line.push_str(&format!(" [{}]", interpretations.join(", ")));
    }
    if let Some(t) = &o.time {
        line.push_str(&format!(", {t}"));
    }
    line
}

fn panel(p: &Panel, out: &mut Vec<String>) {
    // A bare observation or an uncoded organizer is not worth a heading line of its own.
    if let Some(name) = named(p.code.as_ref(), systems::RESULT) {
        out.push(with_details(
            name,
            joined([p.time.clone(), p.status.clone()]),
        ));
        for o in &p.observations {
            out.push(observation(o, systems::RESULT));
        }
    } else {
        for o in &p.observations {
            out.push(observation(o, systems::RESULT));
        }
    }
}

/// The lines for one entry, the first as "- ..." and the rest indented under it.
fn entry_lines(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    match e {
        Entry::Problem(p) => out.push(problem(p)),
        Entry::Medication(m) => out.push(medication(m)),
        Entry::Allergy(a) => out.push(allergy(a)),
        Entry::Result(p) | Entry::VitalSigns(p) => panel(p, &mut out),
        Entry::Immunization(i) => out.push(immunization(i)),
        Entry::Procedure(p) => out.push(with_details(
            named(p.code.as_ref(), systems::PROCEDURE).unwrap_or_else(|| NOT_CODED.into()),
            joined([
                named(p.target_site.as_ref(), &[]).map(|s| format!("site: {s}")),
                p.status.clone(),
                period(&p.start, &p.end),
                p.performers.first().map(participant),
            ]),
        )),
        Entry::Encounter(enc) => {
            let diagnoses: Vec<String> = enc
                .diagnoses
                .iter()
                .filter_map(|d| name_of(d, systems::PROBLEM))
                .collect();
            out.push(with_details(
                named(enc.code.as_ref(), &[]).unwrap_or_else(|| "encounter".into()),
                joined([
                    period(&enc.start, &enc.end),
                    enc.location.clone(),
                    enc.performers.first().map(participant),
                    (!diagnoses.is_empty()).then(|| format!("diagnosis: {}", diagnoses.join(", "))),
                ]),
            ));
        }
        Entry::SocialHistory(sh) => {
            let what = named(sh.code.as_ref(), &[]).unwrap_or_else(|| NOT_CODED.into());
            let value = sh.value.as_ref().and_then(|v| {
                let main = v
                    .code
                    .as_ref()
                    .and_then(|c| name_of(c, &[]))
                    .or(v.value.clone())
                    .or(v.text.clone())?;
                Some(match &v.unit {
                    Some(u) if u != "1" => format!("{main} {u}"),
                    _ => main,
                })
            });
            out.push(with_details(
                match value {
                    Some(v) => format!("{what}: {v}"),
                    None => what,
                },
                joined([period(&sh.start, &sh.end)]),
            ));
        }
        Entry::PlanOfCare(p) => out.push(with_details(
            format!(
                "planned: {}",
                named(p.code.as_ref(), systems::PROCEDURE).unwrap_or_else(|| NOT_CODED.into())
            ),
            joined([p.status.clone(), period(&p.start, &p.end)]),
        )),
        Entry::FamilyHistory(f) => {
            let who = named(f.relation.as_ref(), &[]).unwrap_or_else(|| "relative".into());
            let conditions: Vec<String> = f
                .conditions
                .iter()
                .map(|c| {
                    let mut t = named(c.code.as_ref(), systems::PROBLEM)
                        .unwrap_or_else(|| NOT_CODED.into());
                    if let (Some(age), unit) = (&c.onset_age, &c.onset_age_unit) {
                        t.push_str(&format!(" at age {age}{}", unit_suffix(unit)));
                    }
                    if c.cause_of_death {
                        t.push_str(" (cause of death)");
                    }
                    t
                })
                .collect();
            out.push(format!("{who}: {}", conditions.join(", ")));
        }
    }
    out
}

fn unit_suffix(unit: &Option<String>) -> &'static str {
    match unit.as_deref() {
        Some("a") => " years",
        Some("mo") => " months",
        Some("wk") => " weeks",
        Some("d") => " days",
        _ => "",
    }
}

/// "discharge_diagnosis" as "Discharge diagnosis", for sections without a title.
fn kind_words(kind: SectionKind) -> String {
    let raw = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "section".into());
    let words = raw.replace('_', " ").replace("dicom", "DICOM");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// One section as read: its title, each entry's lines (the first is the entry, the rest its
/// details), and the narrative's non-blank lines (extracted text, never the document's markup).
pub struct SectionView {
    pub title: String,
    pub entries: Vec<Vec<String>>,
    pub narrative: Vec<String>,
}

pub struct PatientView {
    pub name: String,
    pub born: String,
    pub sex: String,
    /// (patient record, person) when the record is linked.
    pub record: Option<(i64, i64)>,
    pub ids: Vec<String>,
}

pub struct EpisodeView {
    /// "encounter kind, period".
    pub what: String,
    pub details: Vec<String>,
}

/// A document as a clinician reads it; `ccda show` prints it and the web console shows it.
pub struct DocumentView {
    pub id: i64,
    pub title: String,
    pub kind: String,
    pub effective: String,
    pub sha256_short: String,
    pub patient: Option<PatientView>,
    pub authors: Vec<String>,
    pub custodian: Option<String>,
    pub episode: Option<EpisodeView>,
    pub service_periods: Vec<String>,
    pub sections: Vec<SectionView>,
    /// An unstructured body's media type and reference.
    pub unstructured: Option<String>,
}

fn section(s: &Section) -> SectionView {
    let title = s
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| s.code.as_ref().and_then(|c| c.display_name.clone()))
        .unwrap_or_else(|| kind_words(s.kind));
    SectionView {
        title,
        entries: s
            .entries
            .iter()
            .map(entry_lines)
            .filter(|l| !l.is_empty())
            .collect(),
        narrative: s
            .text
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

pub fn document_view(summary: &DocumentSummary, d: &Document) -> DocumentView {
    let patient = d.patient.as_ref().map(|p| PatientView {
        name: p
            .names
            .iter()
            .find(|n| n.name_use.as_deref() == Some("L"))
            .or(p.names.first())
            .and_then(person_name)
            .unwrap_or_else(|| "(unnamed)".into()),
        born: p.birth_time.clone().unwrap_or_else(|| "-".into()),
        sex: named(p.gender.as_ref(), &[]).unwrap_or_else(|| "-".into()),
        record: summary.patient_id.zip(summary.person_id),
        ids: p
            .ids
            .iter()
            .map(|id| {
                format!(
                    "{} ^ {}",
                    id.extension.as_deref().unwrap_or("(no value)"),
                    id.root
                        .as_deref()
                        .or(id.null_flavor.as_deref())
                        .unwrap_or_default()
                )
            })
            .collect(),
    });
    let episode = d.encompassing_encounter.as_ref().map(|enc| {
        let mut details = Vec::new();
        if let Some(l) = enc.location.as_ref().and_then(|l| l.name.as_deref()) {
            details.push(format!("location {l}"));
        }
        if let Some(r) = &enc.responsible_party {
            details.push(format!("responsible {}", participant(r)));
        }
        if let Some(dd) = named(enc.discharge_disposition.as_ref(), &[]) {
            details.push(format!("discharge disposition: {dd}"));
        }
        EpisodeView {
            what: format!(
                "{}{}",
                named(enc.code.as_ref(), &[]).unwrap_or_else(|| "encounter".into()),
                period(&enc.start, &enc.end)
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default()
            ),
            details,
        }
    });
    DocumentView {
        id: summary.id,
        title: opt(&summary.title),
        kind: summary.kind.replace('_', " "),
        effective: opt(&summary.effective_time),
        sha256_short: summary.sha256[..16.min(summary.sha256.len())].to_owned(),
        patient,
        authors: d.authors.iter().map(participant).collect(),
        custodian: d.custodian.as_ref().and_then(|c| c.names.first()).cloned(),
        episode,
        service_periods: d
            .service_events
            .iter()
            .filter_map(|ev| period(&ev.start, &ev.end))
            .collect(),
        sections: d.sections.iter().map(section).collect(),
        unstructured: d.non_xml_body.as_ref().map(|body| {
            let what = match (&body.derived, &body.reference) {
                (Some(file), _) => format!("{} bytes in the document", file.size),
                (None, Some(name)) => format!("in the file {name:?} beside it"),
                (None, None) => "no content".to_string(),
            };
            format!(
                "{}, {what}",
                body.media_type.as_deref().unwrap_or("type not given")
            )
        }),
    }
}

pub fn print_document(summary: &DocumentSummary, d: &Document) {
    let v = document_view(summary, d);
    outln!("Document {}: {} ({})", v.id, v.title, v.kind);
    outln!("  effective {}   sha256 {}", v.effective, v.sha256_short);
    if let Some(p) = &v.patient {
        outln!("\nPatient: {}", p.name);
        outln!("  born {}  sex {}", p.born, p.sex);
        if let Some((record, person)) = p.record {
            outln!(
                "  patient record {record}, person {person} (see `directd patients show {person}`)"
            );
        }
        for id in &p.ids {
            outln!("  id {id}");
        }
    }
    for a in &v.authors {
        outln!("Author: {a}");
    }
    if let Some(c) = &v.custodian {
        outln!("Custodian: {c}");
    }
    if let Some(e) = &v.episode {
        outln!("\nEpisode of care: {}", e.what);
        for d in &e.details {
            outln!("  {d}");
        }
    }
    for p in &v.service_periods {
        outln!("Service period: {p}");
    }
    for s in &v.sections {
        outln!("\n== {}", s.title);
        for e in &s.entries {
            let mut lines = e.iter();
            if let Some(first) = lines.next() {
                outln!("  - {first}");
            }
            for l in lines {
                outln!("    {l}");
            }
        }
        if !s.narrative.is_empty() && !s.entries.is_empty() {
            outln!("  narrative:");
        }
        for line in &s.narrative {
            outln!("  | {line}");
        }
    }
    if let Some(u) = &v.unstructured {
        outln!("\nUnstructured body: {u}");
        if d.non_xml_body
            .as_ref()
            .is_some_and(|b| b.derived.is_some() || b.reference.is_some())
        {
            outln!("  (directd ccda show {} --save DIR writes it out)", v.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::model::Reaction;

    fn coded(code: &str, system: &str) -> Code {
        Code {
            code: Some(code.into()),
            code_system: Some(system.into()),
            ..Code::default()
        }
    }

    #[test]
    fn negations_and_missing_codes_read_as_words() {
        let nka = Allergy {
            negated: true,
            substance: Some(Code {
                null_flavor: Some("NA".into()),
                ..Code::default()
            }),
            ..Allergy::default()
        };
        assert_eq!(allergy(&nka), "no known allergies");
        let uncoded = Problem::default();
        assert_eq!(problem(&uncoded), "not coded");
        let bare = Problem {
            code: Some(coded("55561003", systems::SNOMED_CT)),
            ..Problem::default()
        };
        assert_eq!(problem(&bare), "active");
    }

    #[test]
    fn medication_and_allergy_details_in_words() {
        let m = Medication {
            drug: Some(Code {
                display_name: Some("Allopurinol 100 MG Oral Tablet".into()),
                ..coded("197319", systems::RXNORM)
            }),
            dose_value: Some("1".into()),
            form: Some(Code {
                display_name: Some("Tablet".into()),
                ..Code::default()
            }),
            route: Some(coded("C38288", "2.16.840.1.113883.3.26.1.1")),
            frequency: Some("every 8 hours".into()),
            status: Some("active".into()),
            ..Medication::default()
        };
        assert_eq!(
            medication(&m),
            "Allopurinol 100 MG Oral Tablet — 1 tablet; by mouth; every 8 hours; active"
        );
        let a = Allergy {
            substance: Some(Code {
                original_text: Some("Sulfa drugs".into()),
                ..Code::default()
            }),
            reactions: vec![Reaction {
                code: Some(Code {
                    display_name: Some("Hives".into()),
                    ..Code::default()
                }),
                severity: Some(coded("24484000", systems::SNOMED_CT)),
            }],
            ..Allergy::default()
        };
        assert_eq!(allergy(&a), "Sulfa drugs — reaction: Hives (severe)");
    }
}
