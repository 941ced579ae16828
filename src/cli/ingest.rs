//! `directd ingest PATH...`: back-load C-CDA files, XDM zips or whole folders from disk.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{CliError, CliResult, Context};
use crate::ingest::{detect, ingest_bytes, Content, Detected, IngestError, Limits};
use crate::store::{IngestTally, Store, StoreError};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  directd ingest ~/archive/ccda/\n  directd ingest referral.xml xdm-package.zip"
)]
pub struct IngestArgs {
    /// Files or folders (folders are walked recursively; hidden files are skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            collect(&e, out)?;
        }
    } else if meta.is_file() {
        out.push(path.to_owned());
    }
    Ok(())
}

pub fn run(ctx: &Context, args: IngestArgs) -> CliResult {
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files).map_err(|e| super::usage(format!("{}: {e}", p.display())))?;
    }
    let mut store = ctx.open_store(true)?;
    let limits = Limits::default();
    let progress = std::io::stderr().is_terminal() && !args.json;
    let started = Instant::now();
    let (mut documents, mut already, mut bytes) = (0usize, 0usize, 0u64);
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if progress {
            let width = 30;
            let done = (i * width) / files.len().max(1);
            eprint!(
                "\r[{}{}] {}/{} files",
                "#".repeat(done),
                " ".repeat(width - done),
                i,
                files.len()
            );
        }
        bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        match ingest_file(&mut store, file, &limits) {
            Ok(outcome) => {
                let t = outcome.tally;
                skipped.extend(
                    outcome
                        .skipped
                        .iter()
                        .map(|s| (file.display().to_string(), s.to_string())),
                );
                documents += t.documents;
                already += t.already_stored;
                failures.extend(
                    t.failures
                        .into_iter()
                        .map(|f| (file.display().to_string(), f)),
                );
            }
            Err(FileIngestError::Store(e)) => return Err(CliError::Failure(e.into())),
            Err(e @ (FileIngestError::Read { .. } | FileIngestError::Refused { .. })) => {
                let text = e.to_string();
                let reason = text
                    .split_once(": ")
                    .map(|(_, r)| r.to_owned())
                    .unwrap_or(text);
                failures.push((file.display().to_string(), reason));
            }
        }
    }
    if progress {
        eprintln!("\r{}\r", " ".repeat(50));
    }
    let secs = started.elapsed().as_secs_f64();
    store.audit(
        &crate::store::current_actor(),
        "ingest",
        None,
        Some(&format!(
            "{} file(s), {documents} new document(s), {} skipped",
            files.len(),
            skipped.len()
        )),
    )?;
    if args.json {
        let listed = |v: &[(String, String)]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(f, r)| serde_json::json!({ "file": f, "reason": r }))
                .collect()
        };
        super::output::json(&serde_json::json!({
            "files": files.len(), "documents": documents, "already_stored": already,
            "skipped": listed(&skipped), "failures": listed(&failures),
            "seconds": secs, "bytes": bytes,
        }))?;
    } else {
        outln!(
            "{} file(s), {:.1} MB in {secs:.2} s: {documents} new document(s), {already} already stored, {} skipped (not C-CDA), {} failure(s)",
            files.len(),
            bytes as f64 / 1e6,
            skipped.len(),
            failures.len()
        );
        for (file, reason) in &skipped {
            outln!("  SKIPPED {file}: {reason}");
        }
        for (file, reason) in &failures {
            outln!("  FAILED {file}: {reason}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failure(anyhow::anyhow!(
            "{} file(s) could not be fully ingested",
            failures.len()
        )))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileIngestError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Refused { path: String, source: IngestError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one file from disk yielded.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub tally: IngestTally,
    /// What was looked at and left alone because it is not a C-CDA: the file itself, or members
    /// of its XDM zip. Reported so that "0 new documents" is never the whole story.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The XDM member's URI, or `None` for the file itself.
    pub member: Option<String>,
    pub detected: Detected,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.detected {
            Detected::Pdf => "a PDF",
            Detected::Text => "plain text",
            Detected::Xdm => "a zip",
            Detected::Ccda => "a C-CDA",
            Detected::Other => {
                "unrecognised; a C-CDA is a ClinicalDocument in the urn:hl7-org:v3 namespace"
            }
        };
        match &self.member {
            Some(m) => write!(f, "{m}: not a C-CDA ({what})"),
            None => write!(f, "not a C-CDA ({what})"),
        }
    }
}

/// Ingests one file from disk (a C-CDA or an XDM zip).
pub fn ingest_file(
    store: &mut Store,
    path: &Path,
    limits: &Limits,
) -> Result<FileOutcome, FileIngestError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| FileIngestError::Read {
        path: shown.clone(),
        source,
    })?;
    // Neither a document nor a whole zip may exceed its cap, so no file larger than both is read.
    let limit = limits.max_document_bytes.max(limits.max_zip_total_bytes);
    if meta.len() > limit {
        return Err(FileIngestError::Refused {
            path: shown,
            source: IngestError::TooLarge {
                size: meta.len(),
                limit,
            },
        });
    }
    let bytes = std::fs::read(path).map_err(|source| FileIngestError::Read {
        path: shown.clone(),
        source,
    })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let extracted = ingest_bytes(&bytes, "application/octet-stream", name.as_deref(), limits)
        .map_err(|source| FileIngestError::Refused {
            path: shown.clone(),
            source,
        })?;
    let skipped = if extracted.is_empty() {
        vec![Skipped {
            member: None,
            detected: detect(&bytes, "application/octet-stream", name.as_deref()),
        }]
    } else {
        extracted
            .iter()
            .filter_map(|e| match (&e.content, &e.xdm) {
                (Content::NotCda(d), Some(m)) => Some(Skipped {
                    member: Some(m.uri.clone()),
                    detected: *d,
                }),
                _ => None,
            })
            .collect()
    };
    let tally = store.record_extraction(None, Some(&shown), &extracted)?;
    Ok(FileOutcome { tally, skipped })
}
