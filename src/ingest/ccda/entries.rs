//! Clinical statements read from their coded form: dispatch by entry template, then by the
//! section they sit in.

use super::datatypes::{code, first_value, ids, period, point_time, status, ts, value_code};
use super::header::participant;
use super::templates::*;
use crate::ingest::model::*;
use crate::ingest::xml::Node;
/// Entry template number `x` of `2.16.840.1.113883.10.20.22.4.x` carried by a clinical statement.
fn entry_templates(node: Node) -> Vec<u32> {
    node.template_roots()
        .filter_map(|r| {
            r.strip_prefix(ENTRY_TEMPLATE_PREFIX)
                .or_else(|| (r == SMOKING_STATUS_TYPO_OID).then_some("78"))
        })
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn is_planned_mood(node: Node) -> bool {
    matches!(
        node.attr("moodCode"),
        Some("INT" | "RQO" | "PRMS" | "PRP" | "APT" | "ARQ")
    )
}

pub(super) fn read_entry(entry: Node, section: SectionKind, out: &mut Vec<Entry>) {
    for statement in entry.all_children() {
        read_statement(statement, section, out);
    }
}

/// Sections whose untemplated acts and observations are problems (diagnoses, complications,
/// findings), as opposed to procedures or results.
fn holds_problems(kind: SectionKind) -> bool {
    use SectionKind as K;
    matches!(
        kind,
        K::Problems
            | K::PastMedicalHistory
            | K::HealthConcerns
            | K::DischargeDiagnosis
            | K::AdmissionDiagnosis
            | K::PreoperativeDiagnosis
            | K::PostoperativeDiagnosis
            | K::PostprocedureDiagnosis
            | K::Complications
            | K::ProcedureFindings
            | K::ProcedureIndications
    )
}

fn read_statement(st: Node, section: SectionKind, out: &mut Vec<Entry>) {
    use SectionKind as K;
    let t = entry_templates(st);
    let has = |n: u32| t.contains(&n);
    let name = st.name();

    // Template ids first: they are unambiguous wherever the entry sits.
    if has(PROBLEM_CONCERN_ACT) {
        return problems_from_concern(st, out);
    }
    if has(PROBLEM_OBSERVATION) {
        return out.push(Entry::Problem(problem(st, None)));
    }
    if has(ALLERGY_CONCERN_ACT) {
        return allergies_from_concern(st, out);
    }
    if has(ALLERGY_INTOLERANCE_OBSERVATION) {
        return out.push(Entry::Allergy(allergy(st, None)));
    }
    if has(IMMUNIZATION_ACTIVITY) {
        return out.push(Entry::Immunization(immunization(st)));
    }
    if has(MEDICATION_ACTIVITY) {
        return out.push(Entry::Medication(medication(st)));
    }
    if has(VITAL_SIGNS_ORGANIZER) || has(VITAL_SIGN_OBSERVATION) {
        return out.push(Entry::VitalSigns(panel(st)));
    }
    if has(RESULT_ORGANIZER) || has(RESULT_OBSERVATION) {
        return out.push(Entry::Result(panel(st)));
    }
    if has(ENCOUNTER_ACTIVITY) {
        return out.push(Entry::Encounter(encounter(st)));
    }
    if has(SMOKING_STATUS) || has(TOBACCO_USE) || has(SOCIAL_HISTORY_OBSERVATION) {
        return out.push(Entry::SocialHistory(social(st, &t)));
    }
    if PLANNED.iter().any(|n| has(*n)) {
        return out.push(Entry::PlanOfCare(planned(st)));
    }
    if has(PROCEDURE_ACTIVITY_ACT)
        || has(PROCEDURE_ACTIVITY_OBSERVATION)
        || has(PROCEDURE_ACTIVITY_PROCEDURE)
    {
        return out.push(Entry::Procedure(procedure(st)));
    }
    if has(FAMILY_HISTORY_ORGANIZER) {
        return out.push(Entry::FamilyHistory(family(st)));
    }
    if has(DISCHARGE_MEDICATION) {
        // Discharge Medication act wraps the actual Medication Activity.
        for inner in related(st, "substanceAdministration") {
            out.push(Entry::Medication(medication(inner)));
        }
        return;
    }

    // No recognised template: fall back to where the entry sits and what element it is.
    match (section, name) {
        (k, "act") if holds_problems(k) => problems_from_concern(st, out),
        (k, "observation") if holds_problems(k) => out.push(Entry::Problem(problem(st, None))),
        (
            K::Anesthesia
            | K::SurgicalProcedure
            | K::ProcedureDescription
            | K::PlannedProcedure
            | K::ProcedureSpecimens
            | K::ProcedureImplants
            | K::DicomObjectCatalog,
            "procedure" | "act",
        ) => out.push(Entry::Procedure(procedure(st))),
        (K::Anesthesia, "substanceAdministration") => out.push(Entry::Medication(medication(st))),
        // DICOM text, code and quantity observations (10.20.6.2.12-14) are findings with values.
        (
            K::ImagingFindings | K::ImagingImpression | K::EstimatedBloodLoss | K::OperativeFluids,
            "observation" | "organizer",
        ) => out.push(Entry::Result(panel(st))),
        (K::Allergies, "act") => allergies_from_concern(st, out),
        (K::Allergies, "observation") => out.push(Entry::Allergy(allergy(st, None))),
        (K::PlanOfTreatment | K::AssessmentAndPlan, _) if is_planned_mood(st) => {
            out.push(Entry::PlanOfCare(planned(st)))
        }
        (K::Medications | K::DischargeMedications, "substanceAdministration") => {
            out.push(Entry::Medication(medication(st)))
        }
        (K::Medications | K::DischargeMedications, "act") => {
            for inner in related(st, "substanceAdministration") {
                out.push(Entry::Medication(medication(inner)));
            }
        }
        (K::Immunizations, "substanceAdministration") => {
            out.push(Entry::Immunization(immunization(st)))
        }
        (K::Results, "organizer" | "observation") => out.push(Entry::Result(panel(st))),
        (K::VitalSigns, "organizer" | "observation") => out.push(Entry::VitalSigns(panel(st))),
        (K::Procedures, "procedure" | "observation" | "act") => {
            out.push(Entry::Procedure(procedure(st)))
        }
        (K::Encounters, "encounter") => out.push(Entry::Encounter(encounter(st))),
        (K::SocialHistory, "observation") => out.push(Entry::SocialHistory(social(st, &t))),
        (K::FamilyHistory, "organizer") => out.push(Entry::FamilyHistory(family(st))),
        _ => {}
    }
}

/// Clinical statements of element `name` reachable through `entryRelationship`.
fn related<'t>(node: Node<'t>, name: &'t str) -> impl Iterator<Item = Node<'t>> + 't {
    node.children("entryRelationship")
        .filter_map(move |er| er.child(name))
}

fn problems_from_concern(act: Node, out: &mut Vec<Entry>) {
    let concern = Concern {
        status: status(act),
        period: period(act.child("effectiveTime")),
    };
    let observations: Vec<Node> = related(act, "observation").collect();
    let templated: Vec<Node> = observations
        .iter()
        .copied()
        .filter(|o| entry_templates(*o).contains(&PROBLEM_OBSERVATION))
        .collect();
    let chosen = if templated.is_empty() {
        observations
    } else {
        templated
    };
    if chosen.is_empty() {
        out.push(Entry::Problem(Problem {
            ids: ids(act),
            concern_status: concern.status,
            onset: concern.period.0,
            resolution: concern.period.1,
            negated: act.is_true("negationInd"),
            ..Problem::default()
        }));
        return;
    }
    for obs in chosen {
        out.push(Entry::Problem(problem(obs, Some(&concern))));
    }
}

struct Concern {
    status: Option<String>,
    period: (Option<String>, Option<String>),
}

fn is_status_observation(o: Node, template: u32) -> bool {
    entry_templates(o).contains(&template)
        || o.child("code").and_then(|c| c.attr("code")) == Some("33999-4")
}

fn problem(obs: Node, concern: Option<&Concern>) -> Problem {
    let (onset, resolution) = period(obs.child("effectiveTime"));
    let status_obs =
        related(obs, "observation").find(|o| is_status_observation(*o, PROBLEM_STATUS));
    let concern_period = concern.map(|c| c.period.clone()).unwrap_or_default();
    Problem {
        ids: ids(obs),
        concern_status: concern.and_then(|c| c.status.clone()),
        code: value_code(obs),
        problem_type: obs.child("code").map(code),
        status: status_obs
            .and_then(|s| s.child("value"))
            .and_then(status_name),
        onset: onset.or(concern_period.0),
        resolution: resolution.or(concern_period.1),
        negated: obs.is_true("negationInd"),
    }
}

/// A status observation's value as words: its display name, else the listed name of its code
/// (`55561003` is "active"), else the code.
fn status_name(v: Node) -> Option<String> {
    v.attr_string("displayName").or_else(|| {
        let c = v.attr_string("code")?;
        Some(
            crate::ingest::vocab::display(v.attr("codeSystem"), &c)
                .map(str::to_owned)
                .unwrap_or(c),
        )
    })
}

fn allergies_from_concern(act: Node, out: &mut Vec<Entry>) {
    let concern = Concern {
        status: status(act),
        period: period(act.child("effectiveTime")),
    };
    // A severity (or status) observation directly under the concern describes the allergies in
    // it; read as an allergy of its own it would be a blank row.
    let (about, observations): (Vec<Node>, Vec<Node>) = related(act, "observation")
        .partition(|o| is_severity(*o) || is_status_observation(*o, ALLERGY_STATUS_OBSERVATION));
    let concern_severity = about
        .iter()
        .find(|o| is_severity(**o))
        .and_then(|o| value_code(*o));
    if observations.is_empty() {
        out.push(Entry::Allergy(Allergy {
            ids: ids(act),
            concern_status: concern.status,
            severity: concern_severity,
            ..Allergy::default()
        }));
        return;
    }
    for obs in observations {
        let mut a = allergy(obs, Some(&concern));
        if a.severity.is_none() {
            a.severity.clone_from(&concern_severity);
        }
        out.push(Entry::Allergy(a));
    }
}

fn is_severity(o: Node) -> bool {
    entry_templates(o).contains(&SEVERITY_OBSERVATION)
        || o.child("code").and_then(|c| c.attr("code")) == Some("SEV")
}

fn allergy(obs: Node, concern: Option<&Concern>) -> Allergy {
    let (onset, resolution) = period(obs.child("effectiveTime"));
    let substance = obs
        .children("participant")
        .filter(|p| p.attr("typeCode").is_none_or(|t| t == "CSM"))
        .find_map(|p| p.find(&["participantRole", "playingEntity", "code"]))
        .map(code);
    let mut a = Allergy {
        ids: ids(obs),
        concern_status: concern.and_then(|c| c.status.clone()),
        allergy_type: value_code(obs),
        substance,
        onset,
        resolution,
        negated: obs.is_true("negationInd"),
        ..Allergy::default()
    };
    for er in obs.children("entryRelationship") {
        let Some(o) = er.child("observation") else {
            continue;
        };
        if is_status_observation(o, ALLERGY_STATUS_OBSERVATION) {
            a.status = o.child("value").and_then(status_name);
        } else if is_severity(o) {
            a.severity = value_code(o);
        } else if entry_templates(o).contains(&REACTION_OBSERVATION)
            || er.attr("typeCode") == Some("MFST")
        {
            a.reactions.push(Reaction {
                code: value_code(o),
                severity: related(o, "observation")
                    .find(|s| is_severity(*s))
                    .and_then(value_code),
            });
        }
    }
    a
}

fn drug(sa: Node) -> (Option<Code>, Option<String>) {
    let material = sa.find(&["consumable", "manufacturedProduct", "manufacturedMaterial"]);
    let drug = material.and_then(|m| m.child("code")).map(code);
    let name = material
        .and_then(|m| m.child("name"))
        .and_then(Node::all_text)
        .or_else(|| {
            drug.as_ref()
                .and_then(|d| d.original_text.clone().or_else(|| d.display_name.clone()))
        });
    (drug, name)
}

fn frequency(et: Node) -> Option<String> {
    let kind = et.attr("type").map(|t| t.rsplit(':').next().unwrap_or(t));
    match kind {
        Some("PIVL_TS") => {
            let p = et.child("period")?;
            let v = p.attr_string("value")?;
            let unit = p.attr_string("unit").unwrap_or_default();
            Some(every(&v, &unit, et.is_true("institutionSpecified")))
        }
        Some("EIVL_TS") => et
            .child("event")
            .and_then(|e| e.attr_string("code"))
            .map(|c| event_timing(&c)),
        _ => None,
    }
}

/// A `PIVL_TS` period in words: `0.3333 d` is "every 8 hours", `12 h` with
/// `institutionSpecified` is "twice a day" (the institution picks the hours). Units UCUM.
fn every(value: &str, unit: &str, institution_specified: bool) -> String {
    let hours_per = |u: &str| -> Option<f64> {
        Some(match u {
            "min" => 1.0 / 60.0,
            "h" => 1.0,
            "d" => 24.0,
            "wk" => 24.0 * 7.0,
            "mo" => 24.0 * 30.0,
            _ => return None,
        })
    };
    let (Ok(n), Some(per)) = (value.trim().parse::<f64>(), hours_per(unit.trim())) else {
        return format!("every {value} {unit}").trim_end().to_owned();
    };
    let hours = n * per;
    if unit.trim() == "mo" && n.fract() == 0.0 && n >= 1.0 {
        return if n == 1.0 {
            "every month".into()
        } else {
            format!("every {n} months")
        };
    }
    if !(hours.is_finite() && hours > 0.0) {
        return format!("every {value} {unit}").trim_end().to_owned();
    }
    // Senders write a third of a day as 0.3333 or 0.33: round to the nearest minute first.
    let minutes = (hours * 60.0).round();
    let whole = |x: f64, step: f64| (x / step - (x / step).round()).abs() < 1e-6;
    let plural = |n: f64, one: &str, many: &str| {
        if (n - 1.0).abs() < 1e-9 {
            format!("every {one}")
        } else {
            format!("every {} {many}", n.round() as u64)
        }
    };
    if institution_specified && minutes <= 24.0 * 60.0 && whole(24.0 * 60.0, minutes) {
        return match (24.0 * 60.0 / minutes).round() as u64 {
            1 => "once a day".into(),
            2 => "twice a day".into(),
            n => format!("{n} times a day"),
        };
    }
    let (m, h) = (minutes, minutes / 60.0);
    if m < 60.0 || !whole(m, 60.0) {
        plural(m, "minute", "minutes")
    } else if h < 24.0 || !whole(h, 24.0) {
        plural(h, "hour", "hours")
    } else if whole(h, 24.0 * 7.0) && h >= 24.0 * 7.0 {
        plural(h / (24.0 * 7.0), "week", "weeks")
    } else {
        plural(h / 24.0, "day", "days")
    }
}

/// `EIVL_TS` event codes (HL7 TimingEvent) in words.
fn event_timing(code: &str) -> String {
    match code {
        "AC" => "before meals",
        "ACM" => "before breakfast",
        "ACD" => "before lunch",
        "ACV" => "before dinner",
        "PC" => "after meals",
        "PCM" => "after breakfast",
        "PCD" => "after lunch",
        "PCV" => "after dinner",
        "C" => "with meals",
        "CM" => "with breakfast",
        "CD" => "with lunch",
        "CV" => "with dinner",
        "HS" => "at bedtime",
        "WAKE" => "on waking",
        "IC" => "between meals",
        "ICM" => "between breakfast and lunch",
        "ICD" => "between lunch and dinner",
        "ICV" => "between dinner and bedtime",
        other => return format!("at event {other}"),
    }
    .to_owned()
}

fn medication(sa: Node) -> Medication {
    let (drug, drug_name) = drug(sa);
    let mut m = Medication {
        ids: ids(sa),
        mood_code: sa.attr_string("moodCode"),
        status: status(sa),
        negated: sa.is_true("negationInd"),
        drug,
        drug_name,
        route: sa.child("routeCode").map(code),
        form: sa.child("administrationUnitCode").map(code),
        ..Medication::default()
    };
    for et in sa.children("effectiveTime") {
        if let Some(f) = frequency(et) {
            m.frequency.get_or_insert(f);
        } else if m.start.is_none() && m.end.is_none() {
            (m.start, m.end) = period(Some(et));
        }
    }
    if let Some(dose) = sa.child("doseQuantity") {
        m.dose_value = dose
            .attr_string("value")
            .or_else(|| dose.child("low").and_then(|l| l.attr_string("value")));
        m.dose_unit = dose.attr_string("unit");
    }
    m
}

fn immunization(sa: Node) -> Immunization {
    let material = sa.find(&["consumable", "manufacturedProduct", "manufacturedMaterial"]);
    Immunization {
        ids: ids(sa),
        status: status(sa),
        negated: sa.is_true("negationInd"),
        time: sa.child("effectiveTime").and_then(point_time),
        vaccine: material.and_then(|m| m.child("code")).map(code),
        lot_number: material
            .and_then(|m| m.child("lotNumberText"))
            .and_then(Node::all_text),
        manufacturer: sa
            .find(&[
                "consumable",
                "manufacturedProduct",
                "manufacturerOrganization",
                "name",
            ])
            .and_then(Node::all_text),
        route: sa.child("routeCode").map(code),
        dose_value: sa
            .child("doseQuantity")
            .and_then(|d| d.attr_string("value")),
        dose_unit: sa.child("doseQuantity").and_then(|d| d.attr_string("unit")),
        refusal_reason: related(sa, "observation")
            .find(|o| entry_templates(*o).contains(&IMMUNIZATION_REFUSAL_REASON))
            .and_then(|o| o.child("code"))
            .map(code),
    }
}

fn observation(obs: Node) -> Observation {
    let range = obs.find(&["referenceRange", "observationRange"]).map(|r| {
        let v = r.child("value");
        let bound = |n: &str| v.and_then(|v| v.child(n));
        // A range given as a string (`<value xsi:type="ST">negative</value>`) is the range.
        let as_text = v
            .filter(|v| v.attr("type").is_some_and(|t| t.ends_with("ST")))
            .and_then(Node::all_text);
        ReferenceRange {
            text: r.child("text").and_then(Node::all_text).or(as_text),
            low: bound("low").and_then(|b| b.attr_string("value")),
            high: bound("high").and_then(|b| b.attr_string("value")),
            unit: bound("low")
                .or(bound("high"))
                .and_then(|b| b.attr_string("unit")),
        }
    });
    let mut name = obs.child("code").map(code);
    // Some senders name a result only in the observation's own <text> (resolved from the
    // narrative like originalText is).
    if let Some(c) = name.as_mut().filter(|c| c.name(&[]).is_none()) {
        c.original_text = obs.child("text").and_then(Node::all_text);
    }
    Observation {
        ids: ids(obs),
        code: name,
        status: status(obs),
        time: obs.child("effectiveTime").and_then(point_time),
        value: first_value(obs),
        interpretations: obs.children("interpretationCode").map(code).collect(),
        reference_range: range,
    }
}

fn panel(node: Node) -> Panel {
    if node.name() == "observation" {
        return Panel {
            observations: vec![observation(node)],
            ..Panel::default()
        };
    }
    Panel {
        ids: ids(node),
        code: node.child("code").map(code),
        status: status(node),
        time: node.child("effectiveTime").and_then(point_time),
        observations: node
            .children("component")
            .filter_map(|c| c.child("observation"))
            .map(observation)
            .collect(),
    }
}

fn procedure(node: Node) -> Procedure {
    let (start, end) = period(node.child("effectiveTime"));
    Procedure {
        entry_type: node.name().to_string(),
        ids: ids(node),
        mood_code: node.attr_string("moodCode"),
        code: node.child("code").map(code),
        status: status(node),
        start,
        end,
        target_site: node.child("targetSiteCode").map(code),
        performers: node.children("performer").map(participant).collect(),
    }
}

fn encounter(node: Node) -> Encounter {
    let (start, end) = period(node.child("effectiveTime"));
    let mut diagnoses = Vec::new();
    for er in node.children("entryRelationship") {
        if let Some(act) = er.child("act") {
            let is_dx = entry_templates(act).contains(&ENCOUNTER_DIAGNOSIS)
                || act.child("code").and_then(|c| c.attr("code")) == Some("29308-4");
            if is_dx {
                diagnoses.extend(related(act, "observation").filter_map(value_code));
            }
        } else if let Some(obs) = er.child("observation") {
            if entry_templates(obs).contains(&PROBLEM_OBSERVATION) {
                diagnoses.extend(value_code(obs));
            }
        }
    }
    Encounter {
        ids: ids(node),
        code: node.child("code").map(code),
        status: status(node),
        start,
        end,
        location: node
            .children("participant")
            .filter(|p| p.attr("typeCode") == Some("LOC"))
            .find_map(|p| p.find(&["participantRole", "playingEntity", "name"]))
            .and_then(Node::all_text),
        performers: node.children("performer").map(participant).collect(),
        diagnoses,
    }
}

fn social(obs: Node, templates: &[u32]) -> SocialHistory {
    let (start, end) = period(obs.child("effectiveTime"));
    let observation_type = if templates.contains(&SMOKING_STATUS) {
        "smoking_status"
    } else if templates.contains(&TOBACCO_USE) {
        "tobacco_use"
    } else {
        "observation"
    };
    SocialHistory {
        observation_type: observation_type.into(),
        ids: ids(obs),
        code: obs.child("code").map(code),
        status: status(obs),
        value: first_value(obs),
        start,
        end,
    }
}

fn planned(node: Node) -> PlannedItem {
    let (start, end) = period(node.child("effectiveTime"));
    let entry_type = match node.name() {
        "substanceAdministration" => "substance_administration".to_string(),
        other => other.to_string(),
    };
    let what = match node.name() {
        "substanceAdministration" => drug(node).0,
        "supply" => node
            .find(&[
                "product",
                "manufacturedProduct",
                "manufacturedMaterial",
                "code",
            ])
            .map(code),
        _ => None,
    };
    PlannedItem {
        entry_type,
        mood_code: node.attr_string("moodCode"),
        ids: ids(node),
        code: what.or_else(|| node.child("code").map(code)),
        status: status(node),
        start,
        end,
    }
}

fn family(org: Node) -> FamilyHistory {
    let subject = org.find(&["subject", "relatedSubject"]);
    let person = subject.and_then(|s| s.child("subject"));
    FamilyHistory {
        ids: ids(org),
        relation: subject.and_then(|s| s.child("code")).map(code),
        gender: person
            .and_then(|p| p.child("administrativeGenderCode"))
            .map(code),
        birth_time: person
            .and_then(|p| p.child("birthTime"))
            .and_then(|b| b.attr("value"))
            .map(ts),
        conditions: org
            .children("component")
            .filter_map(|c| c.child("observation"))
            .map(|obs| {
                let age = related(obs, "observation").find(|o| {
                    entry_templates(*o).contains(&AGE_OBSERVATION)
                        || o.child("code").and_then(|c| c.attr("code")) == Some("445518008")
                });
                let age_value = age.and_then(|a| a.child("value"));
                FamilyCondition {
                    code: value_code(obs),
                    onset_age: age_value.and_then(|v| v.attr_string("value")),
                    onset_age_unit: age_value.and_then(|v| v.attr_string("unit")),
                    cause_of_death: related(obs, "observation").any(|o| {
                        entry_templates(o).contains(&FAMILY_HISTORY_DEATH_OBSERVATION)
                            || o.child("code").and_then(|c| c.attr("code")) == Some("419620001")
                    }),
                }
            })
            .collect(),
    }
}

/// Health Concern acts usually reference (REFR) problems the Problems section already lists, by
/// the problem's id and often a copy of its content. Kept as well they would count each problem
/// twice, so a Health Concerns problem whose id a problem elsewhere carries is dropped; the
/// section's narrative still says what the concern is.
pub(super) fn drop_health_concern_duplicates(doc: &mut Document) {
    let key = |i: &Identifier| Some((i.root.clone()?, i.extension.clone()));
    let listed: std::collections::HashSet<(String, Option<String>)> = doc
        .sections
        .iter()
        .filter(|s| s.kind != SectionKind::HealthConcerns)
        .flat_map(|s| &s.entries)
        .filter_map(|e| match e {
            Entry::Problem(p) => Some(p.ids.iter().filter_map(key)),
            _ => None,
        })
        .flatten()
        .collect();
    if listed.is_empty() {
        return;
    }
    for s in doc
        .sections
        .iter_mut()
        .filter(|s| s.kind == SectionKind::HealthConcerns)
    {
        s.entries.retain(|e| match e {
            Entry::Problem(p) => !p.ids.iter().filter_map(key).any(|k| listed.contains(&k)),
            _ => true,
        });
    }
}

#[cfg(test)]
mod frequency_tests {
    use super::every;

    #[test]
    fn periods_read_as_people_say_them() {
        assert_eq!(every("0.3333", "d", false), "every 8 hours");
        assert_eq!(every("8", "h", false), "every 8 hours");
        assert_eq!(every("12", "h", true), "twice a day");
        assert_eq!(every("8", "h", true), "3 times a day");
        assert_eq!(every("1", "d", false), "every day");
        assert_eq!(every("1", "wk", false), "every week");
        assert_eq!(every("2", "wk", false), "every 2 weeks");
        assert_eq!(every("30", "min", false), "every 30 minutes");
        assert_eq!(every("1.5", "h", false), "every 90 minutes");
        assert_eq!(every("3", "mo", false), "every 3 months");
        assert_eq!(every("x", "d", false), "every x d");
        assert_eq!(every("2", "furlongs", false), "every 2 furlongs");
    }
}
