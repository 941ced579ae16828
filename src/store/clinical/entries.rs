//! Rows for a section's entries: one table per entry kind, plus every coding of an entry's main
//! code in `entry_codings`.

use rusqlite::{params, Connection};

use super::participants::participant_name;
use super::{coded, cols};
use crate::ingest::model::{systems, Code, Entry, Panel};

/// Every coding of an entry's main code, so the ones not chosen stay queryable.
pub(super) fn insert_codings(
    conn: &Connection,
    document_id: i64,
    table: &str,
    c: Option<&Code>,
    preferred: &[&str],
) -> rusqlite::Result<()> {
    let Some(c) = c else { return Ok(()) };
    let entry_id = conn.last_insert_rowid();
    let chosen = c.standard(preferred).map(|x| x as *const Code);
    for (ordinal, coding) in c.codings().into_iter().enumerate() {
        conn.execute(
            "INSERT INTO entry_codings (document_id, entry_table, entry_id, ordinal, code,
                code_system, code_system_name, display, chosen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                document_id,
                table,
                entry_id,
                ordinal as i64,
                coding.code,
                coding.code_system,
                coding.code_system_name,
                coding
                    .display_name
                    .as_deref()
                    .or(coding.original_text.as_deref()),
                chosen == Some(coding as *const Code),
            ],
        )?;
    }
    Ok(())
}

pub(super) struct EntryCtx {
    pub(super) document_id: i64,
    pub(super) patient_id: Option<i64>,
}

fn numeric(value_type: Option<&str>, value: Option<&str>) -> Option<f64> {
    match value_type {
        Some("PQ" | "INT" | "REAL") | None => value?.trim().parse().ok(),
        _ => None,
    }
}

fn insert_panel(
    conn: &Connection,
    ctx: &EntryCtx,
    section_id: i64,
    panel: &Panel,
    vitals: bool,
) -> rusqlite::Result<()> {
    let (p_code, p_system, p_display) = coded(panel.code.as_ref(), systems::RESULT);
    for o in &panel.observations {
        let (code, system, display) = coded(o.code.as_ref(), systems::RESULT);
        let v = o.value.as_ref();
        let value_type = v.and_then(|v| v.value_type.as_deref());
        let value = v.and_then(|v| v.value.as_deref().or(v.text.as_deref()));
        let unit = v.and_then(|v| v.unit.as_deref());
        let value_num = numeric(value_type, v.and_then(|v| v.value.as_deref()));
        let (interp, _, interp_display) = cols(o.interpretations.first());
        if vitals {
            conn.execute(
                "INSERT INTO vital_signs (document_id, patient_id, section_id, panel_time, code,
                    code_system, display, time, status, value_type, value, value_num, unit,
                    interpretation_code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    ctx.document_id,
                    ctx.patient_id,
                    section_id,
                    panel.time,
                    code,
                    system,
                    display,
                    o.time,
                    o.status,
                    value_type,
                    value,
                    value_num,
                    unit,
                    interp,
                ],
            )?;
            continue;
        }
        let (v_code, _, v_display) = cols(v.and_then(|v| v.code.as_ref()));
        let range = o.reference_range.as_ref();
        conn.execute(
            "INSERT INTO results (document_id, patient_id, section_id, panel_code, panel_system,
                panel_display, panel_time, code, code_system, display, time, status, value_type,
                value, value_num, unit, value_code, value_display, ref_range_text, ref_low,
                ref_high, ref_unit, interpretation_code, interpretation_display)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            params![
                ctx.document_id,
                ctx.patient_id,
                section_id,
                p_code,
                p_system,
                p_display,
                panel.time,
                code,
                system,
                display,
                o.time,
                o.status,
                value_type,
                value,
                value_num,
                unit,
                v_code,
                v_display,
                range.and_then(|r| r.text.as_deref()),
                range.and_then(|r| r.low.as_deref()),
                range.and_then(|r| r.high.as_deref()),
                range.and_then(|r| r.unit.as_deref()),
                interp,
                interp_display,
            ],
        )?;
        insert_codings(
            conn,
            ctx.document_id,
            "results",
            o.code.as_ref(),
            systems::RESULT,
        )?;
    }
    Ok(())
}

pub(super) fn insert_entry(
    conn: &Connection,
    ctx: &EntryCtx,
    section_id: i64,
    entry: &Entry,
) -> rusqlite::Result<()> {
    let (doc_id, pat_id) = (ctx.document_id, ctx.patient_id);
    match entry {
        Entry::Problem(p) => {
            let (code, system, display) = coded(p.code.as_ref(), systems::PROBLEM);
            conn.execute(
                "INSERT INTO problems (document_id, patient_id, section_id, code, code_system,
                    display, problem_type, concern_status, status, onset, resolution, negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    cols(p.problem_type.as_ref()).2,
                    p.concern_status,
                    p.status,
                    p.onset,
                    p.resolution,
                    p.negated,
                ],
            )?;
            insert_codings(conn, doc_id, "problems", p.code.as_ref(), systems::PROBLEM)?;
        }
        Entry::Medication(m) => {
            let (code, system, display) = coded(m.drug.as_ref(), systems::MEDICATION);
            let (route, _, route_display) = cols(m.route.as_ref());
            conn.execute(
                "INSERT INTO medications (document_id, patient_id, section_id, drug_code,
                    drug_system, drug_display, drug_name, status, mood_code, start_time, end_time,
                    frequency, dose_value, dose_unit, route_code, route_display, negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    m.drug_name,
                    m.status,
                    m.mood_code,
                    m.start,
                    m.end,
                    m.frequency,
                    m.dose_value,
                    m.dose_unit,
                    route,
                    route_display,
                    m.negated,
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "medications",
                m.drug.as_ref(),
                systems::MEDICATION,
            )?;
        }
        Entry::Allergy(a) => {
            let (code, system, display) = coded(a.substance.as_ref(), systems::SUBSTANCE);
            let (t_code, _, t_display) = cols(a.allergy_type.as_ref());
            let (s_code, _, s_display) = cols(a.severity.as_ref());
            conn.execute(
                "INSERT INTO allergies (document_id, patient_id, section_id, substance_code,
                    substance_system, substance_display, allergy_type_code, allergy_type_display,
                    concern_status, status, severity_code, severity_display, onset, resolution,
                    negated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    t_code,
                    t_display,
                    a.concern_status,
                    a.status,
                    s_code,
                    s_display,
                    a.onset,
                    a.resolution,
                    a.negated,
                ],
            )?;
            let allergy_id = conn.last_insert_rowid();
            insert_codings(
                conn,
                doc_id,
                "allergies",
                a.substance.as_ref(),
                systems::SUBSTANCE,
            )?;
            for r in &a.reactions {
                let (code, system, display) = cols(r.code.as_ref());
                let (s_code, _, s_display) = cols(r.severity.as_ref());
                conn.execute(
                    "INSERT INTO allergy_reactions (allergy_id, code, code_system, display,
                        severity_code, severity_display) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![allergy_id, code, system, display, s_code, s_display],
                )?;
            }
        }
        Entry::Result(panel) => insert_panel(conn, ctx, section_id, panel, false)?,
        Entry::VitalSigns(panel) => insert_panel(conn, ctx, section_id, panel, true)?,
        Entry::Immunization(i) => {
            let (code, system, display) = coded(i.vaccine.as_ref(), systems::VACCINE);
            let (route, _, route_display) = cols(i.route.as_ref());
            let (reason, _, reason_display) = cols(i.refusal_reason.as_ref());
            conn.execute(
                "INSERT INTO immunizations (document_id, patient_id, section_id, vaccine_code,
                    vaccine_system, vaccine_display, status, time, negated, lot_number,
                    manufacturer, route_code, route_display, dose_value, dose_unit,
                    refusal_reason_code, refusal_reason_display)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    code,
                    system,
                    display,
                    i.status,
                    i.time,
                    i.negated,
                    i.lot_number,
                    i.manufacturer,
                    route,
                    route_display,
                    i.dose_value,
                    i.dose_unit,
                    reason,
                    reason_display,
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "immunizations",
                i.vaccine.as_ref(),
                systems::VACCINE,
            )?;
        }
        Entry::Procedure(p) => {
            let (code, system, display) = coded(p.code.as_ref(), systems::PROCEDURE);
            let (site, _, site_display) = cols(p.target_site.as_ref());
            conn.execute(
                "INSERT INTO procedures (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time,
                    target_site_code, target_site_display, performer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    p.entry_type,
                    p.mood_code,
                    code,
                    system,
                    display,
                    p.status,
                    p.start,
                    p.end,
                    site,
                    site_display,
                    p.performers.iter().find_map(participant_name),
                ],
            )?;
            insert_codings(
                conn,
                doc_id,
                "procedures",
                p.code.as_ref(),
                systems::PROCEDURE,
            )?;
        }
        Entry::Encounter(e) => {
            let id = e.ids.first();
            let (code, system, display) = cols(e.code.as_ref());
            conn.execute(
                "INSERT INTO encounters (document_id, patient_id, section_id, is_episode, id_root,
                    id_extension, code, code_system, display, start_time, end_time, location,
                    responsible_party)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    id.and_then(|i| i.root.as_deref()),
                    id.and_then(|i| i.extension.as_deref()),
                    code,
                    system,
                    display,
                    e.start,
                    e.end,
                    e.location,
                    e.performers.iter().find_map(participant_name),
                ],
            )?;
            let encounter_id = conn.last_insert_rowid();
            for d in &e.diagnoses {
                let (code, system, display) = cols(Some(d));
                conn.execute(
                    "INSERT INTO encounter_diagnoses (encounter_id, code, code_system, display)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![encounter_id, code, system, display],
                )?;
            }
        }
        Entry::SocialHistory(s) => {
            let (code, system, display) = cols(s.code.as_ref());
            let v = s.value.as_ref();
            let (v_code, _, v_display) = cols(v.and_then(|v| v.code.as_ref()));
            conn.execute(
                "INSERT INTO social_history (document_id, patient_id, section_id,
                    observation_type, code, code_system, display, value, unit, value_code,
                    value_display, status, start_time, end_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    s.observation_type,
                    code,
                    system,
                    display,
                    v.and_then(|v| v.value.as_deref().or(v.text.as_deref())),
                    v.and_then(|v| v.unit.as_deref()),
                    v_code,
                    v_display,
                    s.status,
                    s.start,
                    s.end,
                ],
            )?;
        }
        Entry::PlanOfCare(p) => {
            let (code, system, display) = cols(p.code.as_ref());
            conn.execute(
                "INSERT INTO plan_of_care (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    doc_id,
                    pat_id,
                    section_id,
                    p.entry_type,
                    p.mood_code,
                    code,
                    system,
                    display,
                    p.status,
                    p.start,
                    p.end,
                ],
            )?;
        }
        Entry::FamilyHistory(f) => {
            let (rel, _, rel_display) = cols(f.relation.as_ref());
            let gender = f.gender.as_ref().and_then(|g| g.code.as_deref());
            for c in &f.conditions {
                let (code, system, display) = cols(c.code.as_ref());
                conn.execute(
                    "INSERT INTO family_history (document_id, patient_id, section_id,
                        relation_code, relation_display, relative_gender, relative_birth_time,
                        condition_code, condition_system, condition_display, onset_age,
                        onset_age_unit, cause_of_death)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        doc_id,
                        pat_id,
                        section_id,
                        rel,
                        rel_display,
                        gender,
                        f.birth_time,
                        code,
                        system,
                        display,
                        c.onset_age,
                        c.onset_age_unit,
                        c.cause_of_death,
                    ],
                )?;
            }
        }
    }
    Ok(())
}
