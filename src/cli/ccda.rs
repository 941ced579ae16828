//! `directd ccda list` and `directd ccda show ID`: the ingested clinical documents.

mod reextract;
pub(crate) mod render;

use clap::{Args, Subcommand};

use super::output::{json, opt, table};
use super::schema::versioned;
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
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One document as an episode of care: patient, authors, encounter, and every section's
    /// coded entries and narrative.
    Show {
        /// Document id (see `directd ccda list`).
        id: i64,
        /// Also write the document's embedded or referenced file (an Unstructured Document's
        /// PDF, image or text) into this folder: 0600, never over an existing file, audited.
        #[arg(long, value_name = "DIR")]
        save: Option<std::path::PathBuf>,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Extract every stored document again from its original bytes (the received attachment or
    /// the ingested file) and replace its rows, keeping document ids and patient links: what a
    /// store filled by an older directd needs to gain newer extraction.
    Reextract {
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Writes document `id`'s files into `dir`, each audited; fails when it has none to write.
fn save_files(
    store: &crate::store::Store,
    id: i64,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, super::CliError> {
    let files = store.document_files(id)?;
    if files.is_empty() {
        return Err(super::usage(format!(
            "document {id} has no embedded or referenced file to save (only Unstructured Documents do)"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut saved = Vec::new();
    for f in files {
        let Some(data) = &f.data else {
            return Err(super::CliError::Failure(anyhow::anyhow!(
                "document {id} references {:?}, a file the store does not have (it was neither in the message nor beside the document)",
                f.name.as_deref().unwrap_or_default()
            )));
        };
        let ext = crate::mime::extension_for(f.media_type.as_deref().unwrap_or_default());
        let name = super::show::safe_filename(
            f.name.as_deref().unwrap_or_default(),
            &format!("document-{id}.{ext}"),
        );
        let path = super::show::save_unique(dir, &name, data)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(&name).display()))?;
        store.audit(
            &crate::store::current_actor(),
            "ccda save",
            Some(&format!("doc:{id}")),
            Some(&format!("{} file to {}", f.role, path.display())),
        )?;
        saved.push(path);
    }
    Ok(saved)
}

pub fn run(ctx: &Context, args: CcdaArgs) -> CliResult {
    let mut store = ctx.open_store(false)?;
    match args.command {
        CcdaCommand::List {
            patient,
            json: as_json,
        } => {
            let docs = store.list_documents(patient.as_deref())?;
            if as_json {
                return json(&versioned(serde_json::json!({ "documents": docs })));
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
        CcdaCommand::Show {
            id,
            save,
            json: as_json,
        } => {
            let doc = store.load_document(id)?;
            store.audit(
                &crate::store::current_actor(),
                "ccda show",
                Some(&format!("doc:{id}")),
                None,
            )?;
            let saved = match &save {
                Some(dir) => save_files(&store, id, dir)?,
                None => Vec::new(),
            };
            if as_json {
                return json(&versioned(serde_json::json!({
                    "summary": doc.summary,
                    "document": doc.document,
                    "saved": saved,
                })));
            }
            render::print_document(&doc.summary, &doc.document);
            for p in saved {
                outln!("saved {}", p.display());
            }
        }
        CcdaCommand::Reextract { json: as_json } => {
            let done = reextract::reextract_all(&mut store, &crate::ingest::Limits::default())?;
            store.audit(
                &crate::store::current_actor(),
                "ccda reextract",
                None,
                Some(&format!(
                    "{} document(s) re-extracted, {} unavailable, {} failed",
                    done.documents,
                    done.unavailable.len(),
                    done.failures.len()
                )),
            )?;
            let listed = |v: &[(i64, String)]| -> Vec<serde_json::Value> {
                v.iter()
                    .map(|(id, why)| serde_json::json!({ "document_id": id, "reason": why }))
                    .collect()
            };
            if as_json {
                json(&versioned(serde_json::json!({
                    "documents": done.documents,
                    "unavailable": listed(&done.unavailable),
                    "failures": listed(&done.failures),
                })))?;
            } else {
                outln!(
                    "{} document(s) re-extracted, {} unavailable, {} failed",
                    done.documents,
                    done.unavailable.len(),
                    done.failures.len()
                );
                for (id, why) in &done.unavailable {
                    outln!("  UNAVAILABLE document {id}: {why}");
                }
                for (id, why) in &done.failures {
                    outln!("  FAILED document {id}: {why}");
                }
            }
            if !done.failures.is_empty() {
                return Err(super::CliError::Failure(anyhow::anyhow!(
                    "{} document(s) could not be extracted again",
                    done.failures.len()
                )));
            }
        }
    }
    Ok(())
}
