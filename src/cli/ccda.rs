//! `directd ccda list` and `directd ccda show ID`: the ingested clinical documents.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::output::{json, opt, table};
use super::{CliResult, Context};

#[derive(Args, Debug)]
pub struct CcdaArgs {
    #[command(subcommand)]
    command: CcdaCommand,
}

#[derive(Subcommand, Debug)]
enum CcdaCommand {
    /// List ingested documents.
    List {
        /// Only documents whose patient's name contains this (or whose identifier equals it).
        #[arg(long, value_name = "NAME")]
        patient: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One document as an episode of care: patient, authors, encounter, and every section's
    /// coded entries and narrative.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, args: CcdaArgs) -> CliResult {
    let store = ctx.open_store(false)?;
    match args.command {
        CcdaCommand::List {
            patient,
            json: as_json,
        } => {
            let docs = store.list_documents(patient.as_deref())?;
            if as_json {
                return json(&docs);
            }
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| {
                    let source = match (d.attachment_id, &d.source_path) {
                        (Some(a), _) => format!("attachment {a}"),
                        (None, Some(p)) => p.clone(),
                        _ => "-".into(),
                    };
                    vec![
                        d.id.to_string(),
                        source,
                        d.kind.clone(),
                        opt(&d.title),
                        opt(&d.effective_time),
                        opt(&d.patient_name),
                        opt(&d.birth_time),
                        opt(&d.gender),
                        match (&d.encounter_start, &d.encounter_end) {
                            (None, None) => "-".into(),
                            (a, b) => format!("{} – {}", opt(a), opt(b)),
                        },
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "SOURCE",
                    "TYPE",
                    "TITLE",
                    "EFFECTIVE",
                    "PATIENT",
                    "BORN",
                    "SEX",
                    "ENCOUNTER",
                ],
                &rows,
            );
        }
        CcdaCommand::Show { id, json: as_json } => {
            let doc = store.load_document(id)?;
            store.audit(
                &crate::store::current_actor(),
                "ccda show",
                Some(&format!("doc:{id}")),
                None,
            )?;
            if as_json {
                return json(&doc);
            }
            let v = serde_json::to_value(&doc.document)?;
            print_document(&doc.summary, &v);
        }
    }
    Ok(())
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

/// The human name of a coded value: display name, original text, else the bare code.
fn code(v: &Value) -> Option<String> {
    s(&v["display_name"])
        .or_else(|| s(&v["original_text"]))
        .or_else(|| s(&v["code"]))
}

fn name(v: &Value) -> Option<String> {
    if let Some(t) = s(&v["text"]) {
        return Some(t);
    }
    let mut parts: Vec<String> = v["prefixes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(s)
        .collect();
    parts.extend(v["given"].as_array().into_iter().flatten().filter_map(s));
    parts.extend(s(&v["family"]));
    parts.extend(v["suffixes"].as_array().into_iter().flatten().filter_map(s));
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn first_name(list: &Value) -> Option<String> {
    list.as_array().into_iter().flatten().find_map(name)
}

fn period(v: &Value, start: &str, end: &str) -> String {
    match (s(&v[start]), s(&v[end])) {
        (Some(a), Some(b)) => format!("{a} – {b}"),
        (Some(a), None) => format!("from {a}"),
        (None, Some(b)) => format!("until {b}"),
        (None, None) => String::new(),
    }
}

fn participant(p: &Value) -> String {
    let who = first_name(&p["names"])
        .or_else(|| s(&p["device"]["software"]).or_else(|| s(&p["device"]["manufacturer_model"])))
        .unwrap_or_else(|| "(unnamed)".into());
    match p["organization"]["names"]
        .as_array()
        .and_then(|n| n.first())
        .and_then(s)
    {
        Some(org) => format!("{who}, {org}"),
        None => who,
    }
}

fn value(v: &Value) -> String {
    let val = &v["value"];
    let mut out = s(&val["value"])
        .or_else(|| code(&val["code"]))
        .or_else(|| s(&val["text"]))
        .unwrap_or_default();
    if let Some(u) = s(&val["unit"]) {
        out.push(' ');
        out.push_str(&u);
    }
    out
}

/// One line for an entry: what it is, its value, status and time, whatever the entry type has.
fn entry_line(e: &Value) -> String {
    let what = [
        "problem",
        "drug",
        "substance",
        "vaccine",
        "code",
        "condition",
        "relation",
    ]
    .iter()
    .find_map(|k| code(&e[*k]))
    .or_else(|| s(&e["drug_name"]))
    .unwrap_or_else(|| "(uncoded)".into());
    let mut parts = vec![format!(
        "{}: {what}",
        e["type"].as_str().unwrap_or("entry").replace('_', " ")
    )];
    let val = value(e);
    if !val.is_empty() {
        parts.push(val);
    }
    for k in ["status", "severity"] {
        if let Some(x) = s(&e[k]).or_else(|| code(&e[k])) {
            parts.push(x);
        }
    }
    let when = [
        ("onset", "resolution"),
        ("start", "end"),
        ("start_time", "end_time"),
        ("time", ""),
    ]
    .iter()
    .map(|(a, b)| period(e, a, b))
    .find(|p| !p.is_empty());
    parts.extend(when);
    if e["negated"].as_bool() == Some(true) {
        parts.push("NEGATED".into());
    }
    parts.join(" | ")
}

fn print_document(summary: &crate::store::clinical::DocumentSummary, d: &Value) {
    outln!(
        "Document {}: {} ({})",
        summary.id,
        opt(&summary.title),
        summary.kind
    );
    outln!(
        "  effective {}   sha256 {}",
        opt(&summary.effective_time),
        &summary.sha256[..16]
    );
    let p = &d["patient"];
    if !p.is_null() {
        outln!(
            "\nPatient: {}",
            first_name(&p["names"]).unwrap_or_else(|| "(unnamed)".into())
        );
        outln!(
            "  born {}  gender {}",
            s(&p["birth_time"]).unwrap_or_default(),
            code(&p["gender"]).unwrap_or_default()
        );
        if let (Some(record), Some(person)) = (summary.patient_id, summary.person_id) {
            outln!(
                "  patient record {record}, person {person} (see `directd patients show {person}`)"
            );
        }
        for id in p["ids"].as_array().into_iter().flatten() {
            outln!(
                "  id {} ^ {}",
                s(&id["extension"]).unwrap_or_default(),
                s(&id["root"]).unwrap_or_default()
            );
        }
    }
    for a in d["authors"].as_array().into_iter().flatten() {
        outln!("Author: {}", participant(a));
    }
    if let Some(c) = d["custodian"]["names"]
        .as_array()
        .and_then(|n| n.first())
        .and_then(s)
    {
        outln!("Custodian: {c}");
    }
    let enc = &d["encompassing_encounter"];
    if !enc.is_null() {
        outln!(
            "\nEpisode of care: {} {}",
            code(&enc["code"]).unwrap_or_else(|| "encounter".into()),
            period(enc, "start", "end")
        );
        if let Some(l) = s(&enc["location"]["name"]) {
            outln!("  location {l}");
        }
        if !enc["responsible_party"].is_null() {
            outln!("  responsible {}", participant(&enc["responsible_party"]));
        }
    }
    for ev in d["service_events"].as_array().into_iter().flatten() {
        outln!("Service period: {}", period(ev, "start", "end"));
    }
    for sec in d["sections"].as_array().into_iter().flatten() {
        let title =
            s(&sec["title"]).unwrap_or_else(|| sec["kind"].as_str().unwrap_or("section").into());
        outln!("\n== {title} [{}]", sec["kind"].as_str().unwrap_or("other"));
        for e in sec["entries"].as_array().into_iter().flatten() {
            outln!("  - {}", entry_line(e));
            for o in e["observations"].as_array().into_iter().flatten() {
                let mut line = format!(
                    "      {}: {}",
                    code(&o["code"]).unwrap_or_default(),
                    value(o)
                );
                if let Some(r) = s(&o["reference_range"]["text"]).or_else(|| {
                    let (lo, hi) = (
                        s(&o["reference_range"]["low"]),
                        s(&o["reference_range"]["high"]),
                    );
                    (lo.is_some() || hi.is_some())
                        .then(|| format!("{}-{}", lo.unwrap_or_default(), hi.unwrap_or_default()))
                }) {
                    line.push_str(&format!(" (ref {r})"));
                }
                for i in o["interpretations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| s(&c["code"]))
                {
                    line.push_str(&format!(" [{i}]"));
                }
                outln!("{line}");
            }
            for r in e["reactions"].as_array().into_iter().flatten() {
                outln!(
                    "      reaction: {}",
                    code(&r["code"])
                        .or_else(|| code(&r["reaction"]))
                        .unwrap_or_default()
                );
            }
        }
        if let Some(text) = s(&sec["text"]) {
            for line in text.lines().filter(|l| !l.trim().is_empty()).take(40) {
                outln!(
                    "  | {}",
                    line.chars()
                        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                        .collect::<String>()
                );
            }
        }
    }
    let body = &d["non_xml_body"];
    if !body.is_null() {
        outln!(
            "\nUnstructured body: {} {}",
            s(&body["media_type"]).unwrap_or_default(),
            s(&body["reference"])
                .map(|r| format!("-> {r}"))
                .unwrap_or_default()
        );
    }
}
