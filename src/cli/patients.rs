//! `directd patients`: the persons that patient records were linked into, and the reviewer's
//! decisions (`link`, `unlink`, `dismiss`), each recorded in the audit trail.
//!
//! A *record* is the patient as one document states them (its id is what `link`, `unlink` and
//! the review list use); a *person* groups records that the evidence, or a reviewer, says are one
//! patient.

use clap::{Args, Subcommand};

use super::output::{json, opt, table};
use super::schema::versioned;
use super::{CliError, CliResult, Context};
use crate::store::clinical::IdentityError;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  directd patients list\n  directd patients show 3\n  directd patients review\n  directd patients link 12 7\n  directd patients unlink 12"
)]
pub struct PatientsArgs {
    #[command(subcommand)]
    command: PatientsCommand,
}

#[derive(Subcommand, Debug)]
enum PatientsCommand {
    /// Every person, with the names their documents state and how many records and documents.
    List {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One person: each record (as its document states the patient), its identifiers and
    /// documents, and the link candidates that involve it.
    Show {
        /// Person id (from `patients list`).
        person: i64,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Open link candidates: records sharing an identifier whose demographics disagree.
    Review {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Declare two records the same patient: B's person joins A's.
    Link {
        /// Patient record id.
        a: i64,
        /// Patient record id.
        b: i64,
    },
    /// Take a record out of its person into a person of its own.
    Unlink {
        /// Patient record id.
        record: i64,
    },
    /// Close a link candidate: the two records are different patients.
    Dismiss {
        /// Candidate id (from `patients review` or `show`).
        candidate: i64,
    },
}

/// A refusal is the user's input naming nothing to act on: a usage error, exit 2.
fn refused<T>(r: Result<T, IdentityError>) -> Result<T, CliError> {
    r.map_err(|e| match e {
        IdentityError::Sqlite(e) => CliError::Failure(e.into()),
        other => super::usage(other.to_string()),
    })
}

pub fn run(ctx: &Context, args: PatientsArgs) -> CliResult {
    let mut store = ctx.open_store(false)?;
    let actor = crate::store::current_actor();
    match args.command {
        PatientsCommand::List { json: as_json } => {
            let persons = store.persons()?;
            if as_json {
                return json(&versioned(serde_json::json!({ "persons": persons })));
            }
            let rows: Vec<Vec<String>> = persons
                .iter()
                .map(|p| {
                    vec![
                        p.person_id.to_string(),
                        p.names.clone(),
                        opt(&p.birth_times),
                        p.records.to_string(),
                        p.documents.to_string(),
                        match p.open_candidates {
                            0 => "-".into(),
                            n => format!("{n} to review"),
                        },
                    ]
                })
                .collect();
            table(
                &["PERSON", "NAMES", "BORN", "RECORDS", "DOCUMENTS", "REVIEW"],
                &rows,
            );
        }
        PatientsCommand::Show {
            person,
            json: as_json,
        } => {
            let detail = store.person(person)?.ok_or_else(|| {
                super::usage(format!("no person {person} (see `directd patients list`)"))
            })?;
            store.audit(
                &actor,
                "patients show",
                Some(&format!("person:{person}")),
                None,
            )?;
            if as_json {
                return json(&versioned(serde_json::json!({ "person": detail })));
            }
            let documents: usize = detail.records.iter().map(|r| r.document_ids.len()).sum();
            outln!(
                "Person {}: {} record(s), {documents} document(s)",
                detail.person_id,
                detail.records.len()
            );
            for r in &detail.records {
                let docs: Vec<String> = r.document_ids.iter().map(i64::to_string).collect();
                outln!(
                    "\n  record {}: {}  born {}  sex {}  (document {})",
                    r.patient_id,
                    if r.name.is_empty() {
                        "(unnamed)"
                    } else {
                        &r.name
                    },
                    opt(&r.birth_time),
                    opt(&r.gender_code),
                    if docs.is_empty() {
                        "-".into()
                    } else {
                        docs.join(", ")
                    }
                );
                let how = match r.linked_by.as_deref() {
                    Some("first") => "first record of this person".to_owned(),
                    Some(by) => format!("{by}: {}", opt(&r.evidence)),
                    None => "-".to_owned(),
                };
                outln!("    linked: {how}");
                for id in &r.identifiers {
                    outln!("    id {id}");
                }
            }
            if !detail.candidates.is_empty() {
                outln!("\nLink candidates:");
                for c in &detail.candidates {
                    outln!(
                        "  {}: record {} and record {} share {}: {} [{}]",
                        c.id,
                        c.patient_id,
                        c.other_patient_id,
                        c.identifier,
                        c.reason,
                        c.state
                    );
                }
            }
        }
        PatientsCommand::Review { json: as_json } => {
            let candidates = store.link_candidates()?;
            if as_json {
                return json(&versioned(serde_json::json!({ "candidates": candidates })));
            }
            let rows: Vec<Vec<String>> = candidates
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.patient_id.to_string(),
                        c.other_patient_id.to_string(),
                        c.identifier.clone(),
                        c.reason.clone(),
                    ]
                })
                .collect();
            table(
                &[
                    "CANDIDATE",
                    "RECORD",
                    "OTHER",
                    "SHARED IDENTIFIER",
                    "WHY NOT LINKED",
                ],
                &rows,
            );
        }
        PatientsCommand::Link { a, b } => {
            let outcome = refused(store.link_patients(&actor, a, b)?)?;
            match outcome.from_person_id {
                Some(from) => outln!(
                    "linked: person {} now holds record {a} and record {b} ({} record(s) came from person {from})",
                    outcome.person_id,
                    outcome.moved
                ),
                None => outln!(
                    "record {a} and record {b} already belong to person {}",
                    outcome.person_id
                ),
            }
        }
        PatientsCommand::Unlink { record } => {
            let outcome = refused(store.unlink_patient(&actor, record)?)?;
            outln!(
                "unlinked: record {record} left person {} and is now person {}",
                outcome.from_person_id.unwrap_or_default(),
                outcome.person_id
            );
        }
        PatientsCommand::Dismiss { candidate } => {
            let (a, b) = refused(store.dismiss_candidate(&actor, candidate)?)?;
            outln!("dismissed candidate {candidate}: record {a} and record {b} stay apart");
        }
    }
    Ok(())
}
