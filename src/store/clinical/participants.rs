//! Rows for a document's people: authors, custodian, legal authenticator, recipients,
//! service-event performers, and the episode of care (`encompassingEncounter`) with its parties.

use rusqlite::{named_params, Connection};

use super::cols;
use crate::ingest::model::{Document, Participant, PersonName};

pub(super) fn name_text(n: &PersonName) -> Option<String> {
    let mut parts: Vec<&str> = n.prefixes.iter().map(String::as_str).collect();
    parts.extend(n.given.iter().map(String::as_str));
    parts.extend(n.family.as_deref());
    parts.extend(n.suffixes.iter().map(String::as_str));
    let joined = parts.join(" ");
    if joined.is_empty() {
        n.text.clone()
    } else {
        Some(joined)
    }
}

pub(super) fn participant_name(p: &Participant) -> Option<String> {
    p.names.iter().find_map(name_text).or_else(|| {
        p.device
            .as_ref()
            .and_then(|d| d.software.clone().or(d.manufacturer_model.clone()))
    })
}

pub(super) fn insert_participant(
    conn: &Connection,
    document_id: i64,
    role: &str,
    p: &Participant,
) -> rusqlite::Result<()> {
    let id = p.ids.first();
    let (code, _, code_display) = cols(p.code.as_ref().or(p.function_code.as_ref()));
    super::execute(
        conn,
        "INSERT INTO document_participants (document_id, role, name, organization, id_root,
            id_extension, code, code_display, time, device_model, device_software)
         VALUES (:document_id, :role, :name, :organization, :id_root, :id_extension, :code,
             :code_display, :time, :device_model, :device_software)",
        named_params! {
            ":document_id": document_id,
            ":role": role,
            ":name": participant_name(p),
            ":organization": p.organization.as_ref().and_then(|o| o.names.first()),
            ":id_root": id.and_then(|i| i.root.as_deref()),
            ":id_extension": id.and_then(|i| i.extension.as_deref()),
            ":code": code,
            ":code_display": code_display,
            ":time": p.time,
            ":device_model": p.device
                .as_ref()
                .and_then(|d| d.manufacturer_model.as_deref()),
            ":device_software": p.device.as_ref().and_then(|d| d.software.as_deref()),
        },
    )?;
    Ok(())
}

pub(super) fn insert_participants(
    conn: &Connection,
    document_id: i64,
    doc: &Document,
) -> rusqlite::Result<()> {
    for a in &doc.authors {
        insert_participant(conn, document_id, "author", a)?;
    }
    if let Some(c) = &doc.custodian {
        let as_participant = Participant {
            ids: c.ids.clone(),
            organization: Some(c.clone()),
            ..Participant::default()
        };
        insert_participant(conn, document_id, "custodian", &as_participant)?;
    }
    if let Some(l) = &doc.legal_authenticator {
        insert_participant(conn, document_id, "legal_authenticator", l)?;
    }
    for r in &doc.information_recipients {
        insert_participant(conn, document_id, "information_recipient", r)?;
    }
    for se in &doc.service_events {
        let (code, system, display) = cols(se.code.as_ref());
        super::execute(
            conn,
            "INSERT INTO service_events (document_id, code, code_system, display, start_time,
                end_time) VALUES (:document_id, :code, :code_system, :display, :start_time, :end_time)",
            named_params! {
                ":document_id": document_id,
                ":code": code,
                ":code_system": system,
                ":display": display,
                ":start_time": se.start,
                ":end_time": se.end,
            },
        )?;
        for p in &se.performers {
            insert_participant(conn, document_id, "service_event_performer", p)?;
        }
    }
    if let Some(enc) = &doc.encompassing_encounter {
        for p in enc.responsible_party.iter() {
            insert_participant(conn, document_id, "encounter_responsible_party", p)?;
        }
        for p in &enc.participants {
            insert_participant(conn, document_id, "encounter_participant", p)?;
        }
    }
    Ok(())
}

pub(super) fn insert_episode(
    conn: &Connection,
    document_id: i64,
    patient_id: Option<i64>,
    doc: &Document,
) -> rusqlite::Result<()> {
    let Some(enc) = &doc.encompassing_encounter else {
        return Ok(());
    };
    let id = enc.ids.first();
    let (code, system, display) = cols(enc.code.as_ref());
    let (dd_code, _, dd_display) = cols(enc.discharge_disposition.as_ref());
    super::execute(
        conn,
        "INSERT INTO encounters (document_id, patient_id, section_id, is_episode, id_root,
            id_extension, code, code_system, display, start_time, end_time, location,
            responsible_party, discharge_disposition_code, discharge_disposition_display)
         VALUES (:document_id, :patient_id, NULL, 1, :id_root, :id_extension, :code,
             :code_system, :display, :start_time, :end_time, :location,
             :responsible_party, :discharge_disposition_code,
             :discharge_disposition_display)",
        named_params! {
            ":document_id": document_id,
            ":patient_id": patient_id,
            ":id_root": id.and_then(|i| i.root.as_deref()),
            ":id_extension": id.and_then(|i| i.extension.as_deref()),
            ":code": code,
            ":code_system": system,
            ":display": display,
            ":start_time": enc.start,
            ":end_time": enc.end,
            ":location": enc.location.as_ref().and_then(|l| l.name.as_deref()),
            ":responsible_party": enc.responsible_party.as_ref().and_then(participant_name),
            ":discharge_disposition_code": dd_code,
            ":discharge_disposition_display": dd_display,
        },
    )?;
    Ok(())
}
