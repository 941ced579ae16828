//! Rows for a section's entries: one table per entry kind, plus every coding of an entry's main
//! code in `entry_codings`.

use rusqlite::{named_params, params, Connection};

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
        super::execute(
            conn,
            "INSERT INTO entry_codings (document_id, entry_table, entry_id, ordinal, code,
                code_system, code_system_name, display, chosen)
             VALUES (:document_id, :entry_table, :entry_id, :ordinal, :code, :code_system,
                 :code_system_name, :display, :chosen)",
            named_params! {
                ":document_id": document_id,
                ":entry_table": table,
                ":entry_id": entry_id,
                ":ordinal": ordinal as i64,
                ":code": coding.code,
                ":code_system": coding.code_system,
                ":code_system_name": coding.code_system_name,
                ":display": coding
                    .display_name
                    .as_deref()
                    .or(coding.original_text.as_deref()),
                ":chosen": chosen == Some(coding as *const Code),
            },
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
            super::execute(
                conn,
                "INSERT INTO vital_signs (document_id, patient_id, section_id, panel_time, code,
                    code_system, display, time, status, value_type, value, value_num, unit,
                    interpretation_code)
                 VALUES (:document_id, :patient_id, :section_id, :panel_time, :code, :code_system,
                     :display, :time, :status, :value_type, :value, :value_num, :unit,
                     :interpretation_code)",
                named_params! {
                    ":document_id": ctx.document_id,
                    ":patient_id": ctx.patient_id,
                    ":section_id": section_id,
                    ":panel_time": panel.time,
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":time": o.time,
                    ":status": o.status,
                    ":value_type": value_type,
                    ":value": value,
                    ":value_num": value_num,
                    ":unit": unit,
                    ":interpretation_code": interp,
                },
            )?;
            continue;
        }
        let (v_code, _, v_display) = cols(v.and_then(|v| v.code.as_ref()));
        let range = o.reference_range.as_ref();
        super::execute(
            conn,
            "INSERT INTO results (document_id, patient_id, section_id, panel_code, panel_system,
                panel_display, panel_time, code, code_system, display, time, status, value_type,
                value, value_num, unit, value_code, value_display, ref_range_text, ref_low,
                ref_high, ref_unit, interpretation_code, interpretation_display)
             VALUES (:document_id, :patient_id, :section_id, :panel_code, :panel_system,
                 :panel_display, :panel_time, :code, :code_system, :display, :time, :status,
                 :value_type, :value, :value_num, :unit, :value_code, :value_display,
                 :ref_range_text, :ref_low, :ref_high, :ref_unit, :interpretation_code,
                 :interpretation_display)",
            named_params! {
                ":document_id": ctx.document_id,
                ":patient_id": ctx.patient_id,
                ":section_id": section_id,
                ":panel_code": p_code,
                ":panel_system": p_system,
                ":panel_display": p_display,
                ":panel_time": panel.time,
                ":code": code,
                ":code_system": system,
                ":display": display,
                ":time": o.time,
                ":status": o.status,
                ":value_type": value_type,
                ":value": value,
                ":value_num": value_num,
                ":unit": unit,
                ":value_code": v_code,
                ":value_display": v_display,
                ":ref_range_text": range.and_then(|r| r.text.as_deref()),
                ":ref_low": range.and_then(|r| r.low.as_deref()),
                ":ref_high": range.and_then(|r| r.high.as_deref()),
                ":ref_unit": range.and_then(|r| r.unit.as_deref()),
                ":interpretation_code": interp,
                ":interpretation_display": interp_display,
            },
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
            super::execute(
                conn,
                "INSERT INTO problems (document_id, patient_id, section_id, code, code_system,
                    display, problem_type, concern_status, status, onset, resolution, negated)
                 VALUES (:document_id, :patient_id, :section_id, :code, :code_system, :display,
                     :problem_type, :concern_status, :status, :onset, :resolution, :negated)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":problem_type": cols(p.problem_type.as_ref()).2,
                    ":concern_status": p.concern_status,
                    ":status": p.status,
                    ":onset": p.onset,
                    ":resolution": p.resolution,
                    ":negated": p.negated,
                },
            )?;
            insert_codings(conn, doc_id, "problems", p.code.as_ref(), systems::PROBLEM)?;
        }
        Entry::Medication(m) => {
            let (code, system, display) = coded(m.drug.as_ref(), systems::MEDICATION);
            let (route, _, route_display) = cols(m.route.as_ref());
            super::execute(
                conn,
                "INSERT INTO medications (document_id, patient_id, section_id, drug_code,
                    drug_system, drug_display, drug_name, status, mood_code, start_time, end_time,
                    frequency, dose_value, dose_unit, route_code, route_display, negated)
                 VALUES (:document_id, :patient_id, :section_id, :drug_code, :drug_system,
                     :drug_display, :drug_name, :status, :mood_code, :start_time, :end_time,
                     :frequency, :dose_value, :dose_unit, :route_code, :route_display, :negated)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":drug_code": code,
                    ":drug_system": system,
                    ":drug_display": display,
                    ":drug_name": m.drug_name,
                    ":status": m.status,
                    ":mood_code": m.mood_code,
                    ":start_time": m.start,
                    ":end_time": m.end,
                    ":frequency": m.frequency,
                    ":dose_value": m.dose_value,
                    ":dose_unit": m.dose_unit,
                    ":route_code": route,
                    ":route_display": route_display,
                    ":negated": m.negated,
                },
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
            super::execute(
                conn,
                "INSERT INTO allergies (document_id, patient_id, section_id, substance_code,
                    substance_system, substance_display, allergy_type_code, allergy_type_display,
                    concern_status, status, severity_code, severity_display, onset, resolution,
                    negated)
                 VALUES (:document_id, :patient_id, :section_id, :substance_code, :substance_system,
                     :substance_display, :allergy_type_code, :allergy_type_display,
                     :concern_status, :status, :severity_code, :severity_display, :onset,
                     :resolution, :negated)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":substance_code": code,
                    ":substance_system": system,
                    ":substance_display": display,
                    ":allergy_type_code": t_code,
                    ":allergy_type_display": t_display,
                    ":concern_status": a.concern_status,
                    ":status": a.status,
                    ":severity_code": s_code,
                    ":severity_display": s_display,
                    ":onset": a.onset,
                    ":resolution": a.resolution,
                    ":negated": a.negated,
                },
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
                super::execute(
                    conn,
                    "INSERT INTO allergy_reactions (allergy_id, code, code_system, display,
                        severity_code, severity_display) VALUES (:allergy_id, :code, :code_system, :display, :severity_code, :severity_display)",
                    named_params! {
                        ":allergy_id": allergy_id,
                        ":code": code,
                        ":code_system": system,
                        ":display": display,
                        ":severity_code": s_code,
                        ":severity_display": s_display,
                    },
                )?;
            }
        }
        Entry::Result(panel) => insert_panel(conn, ctx, section_id, panel, false)?,
        Entry::VitalSigns(panel) => insert_panel(conn, ctx, section_id, panel, true)?,
        Entry::Immunization(i) => {
            let (code, system, display) = coded(i.vaccine.as_ref(), systems::VACCINE);
            let (route, _, route_display) = cols(i.route.as_ref());
            let (reason, _, reason_display) = cols(i.refusal_reason.as_ref());
            super::execute(
                conn,
                "INSERT INTO immunizations (document_id, patient_id, section_id, vaccine_code,
                    vaccine_system, vaccine_display, status, time, negated, lot_number,
                    manufacturer, route_code, route_display, dose_value, dose_unit,
                    refusal_reason_code, refusal_reason_display)
                 VALUES (:document_id, :patient_id, :section_id, :vaccine_code, :vaccine_system,
                     :vaccine_display, :status, :time, :negated, :lot_number, :manufacturer,
                     :route_code, :route_display, :dose_value, :dose_unit, :refusal_reason_code,
                     :refusal_reason_display)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":vaccine_code": code,
                    ":vaccine_system": system,
                    ":vaccine_display": display,
                    ":status": i.status,
                    ":time": i.time,
                    ":negated": i.negated,
                    ":lot_number": i.lot_number,
                    ":manufacturer": i.manufacturer,
                    ":route_code": route,
                    ":route_display": route_display,
                    ":dose_value": i.dose_value,
                    ":dose_unit": i.dose_unit,
                    ":refusal_reason_code": reason,
                    ":refusal_reason_display": reason_display,
                },
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
            super::execute(
                conn,
                "INSERT INTO procedures (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time,
                    target_site_code, target_site_display, performer)
                 VALUES (:document_id, :patient_id, :section_id, :entry_type, :mood_code, :code,
                     :code_system, :display, :status, :start_time, :end_time, :target_site_code,
                     :target_site_display, :performer)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":entry_type": p.entry_type,
                    ":mood_code": p.mood_code,
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":status": p.status,
                    ":start_time": p.start,
                    ":end_time": p.end,
                    ":target_site_code": site,
                    ":target_site_display": site_display,
                    ":performer": p.performers.iter().find_map(participant_name),
                },
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
            super::execute(
                conn,
                "INSERT INTO encounters (document_id, patient_id, section_id, is_episode, id_root,
                    id_extension, code, code_system, display, start_time, end_time, location,
                    responsible_party)
                 VALUES (:document_id, :patient_id, :section_id, 0, :id_root, :id_extension, :code,
                     :code_system, :display, :start_time, :end_time, :location, :responsible_party)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":id_root": id.and_then(|i| i.root.as_deref()),
                    ":id_extension": id.and_then(|i| i.extension.as_deref()),
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":start_time": e.start,
                    ":end_time": e.end,
                    ":location": e.location,
                    ":responsible_party": e.performers.iter().find_map(participant_name),
                },
            )?;
            let encounter_id = conn.last_insert_rowid();
            for d in &e.diagnoses {
                let (code, system, display) = cols(Some(d));
                super::execute(
                    conn,
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
            super::execute(
                conn,
                "INSERT INTO social_history (document_id, patient_id, section_id,
                    observation_type, code, code_system, display, value, unit, value_code,
                    value_display, status, start_time, end_time)
                 VALUES (:document_id, :patient_id, :section_id, :observation_type, :code,
                     :code_system, :display, :value, :unit, :value_code, :value_display, :status,
                     :start_time, :end_time)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":observation_type": s.observation_type,
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":value": v.and_then(|v| v.value.as_deref().or(v.text.as_deref())),
                    ":unit": v.and_then(|v| v.unit.as_deref()),
                    ":value_code": v_code,
                    ":value_display": v_display,
                    ":status": s.status,
                    ":start_time": s.start,
                    ":end_time": s.end,
                },
            )?;
        }
        Entry::PlanOfCare(p) => {
            let (code, system, display) = cols(p.code.as_ref());
            super::execute(
                conn,
                "INSERT INTO plan_of_care (document_id, patient_id, section_id, entry_type,
                    mood_code, code, code_system, display, status, start_time, end_time)
                 VALUES (:document_id, :patient_id, :section_id, :entry_type, :mood_code, :code,
                     :code_system, :display, :status, :start_time, :end_time)",
                named_params! {
                    ":document_id": doc_id,
                    ":patient_id": pat_id,
                    ":section_id": section_id,
                    ":entry_type": p.entry_type,
                    ":mood_code": p.mood_code,
                    ":code": code,
                    ":code_system": system,
                    ":display": display,
                    ":status": p.status,
                    ":start_time": p.start,
                    ":end_time": p.end,
                },
            )?;
        }
        Entry::FamilyHistory(f) => {
            let (rel, _, rel_display) = cols(f.relation.as_ref());
            let gender = f.gender.as_ref().and_then(|g| g.code.as_deref());
            for c in &f.conditions {
                let (code, system, display) = cols(c.code.as_ref());
                super::execute(
                    conn,
                    "INSERT INTO family_history (document_id, patient_id, section_id,
                        relation_code, relation_display, relative_gender, relative_birth_time,
                        condition_code, condition_system, condition_display, onset_age,
                        onset_age_unit, cause_of_death)
                     VALUES (:document_id, :patient_id, :section_id, :relation_code, :relation_display,
                         :relative_gender, :relative_birth_time, :condition_code, :condition_system,
                         :condition_display, :onset_age, :onset_age_unit, :cause_of_death)",
                    named_params! {
                        ":document_id": doc_id,
                        ":patient_id": pat_id,
                        ":section_id": section_id,
                        ":relation_code": rel,
                        ":relation_display": rel_display,
                        ":relative_gender": gender,
                        ":relative_birth_time": f.birth_time,
                        ":condition_code": code,
                        ":condition_system": system,
                        ":condition_display": display,
                        ":onset_age": c.onset_age,
                        ":onset_age_unit": c.onset_age_unit,
                        ":cause_of_death": c.cause_of_death,
                    },
                )?;
            }
        }
    }
    Ok(())
}
