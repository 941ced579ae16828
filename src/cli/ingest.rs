//! `directd ingest PATH...`: back-load C-CDA files, XDM zips or whole folders from disk.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{CliError, CliResult, Context};
use crate::ingest::{detect, ingest_bytes, Content, Detected, Extracted, IngestError, Limits};
use crate::store::{FileExtraction, Store};

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
    /// Files stored per transaction. A crash loses at most the batch being stored, which the
    /// same command run again stores (documents already stored are recognised and skipped).
    #[arg(long, value_name = "N", default_value_t = 256)]
    batch: usize,
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
    store
        .tune_for_bulk_ingest()
        .map_err(|e| CliError::Failure(e.into()))?;
    let limits = Limits::default();
    let progress = std::io::stderr().is_terminal() && !args.json;
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut batch = Batch::default();
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
        totals.bytes += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        match extract_file(file, &limits) {
            Ok(extracted) => batch.push(extracted),
            Err(e) => {
                let text = e.to_string();
                let reason = text
                    .split_once(": ")
                    .map(|(_, r)| r.to_owned())
                    .unwrap_or(text);
                totals.failures.push((file.display().to_string(), reason));
            }
        }
        if batch.files.len() >= args.batch.max(1) || batch.bytes >= BATCH_BYTES {
            batch.commit(&mut store, &mut totals)?;
        }
    }
    batch.commit(&mut store, &mut totals)?;
    if progress {
        eprintln!("\r{}\r", " ".repeat(50));
    }
    let Totals {
        documents,
        already,
        bytes,
        failures,
        skipped,
    } = totals;
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
        super::output::json(&super::schema::versioned(serde_json::json!({
            "files": files.len(), "documents": documents, "already_stored": already,
            "skipped": listed(&skipped), "failures": listed(&failures),
            "seconds": secs, "bytes": bytes,
        })))?;
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

/// Files are committed in batches of `--batch` files, or sooner once the files of a batch add up
/// to this many bytes, so the extracted documents held in memory stay bounded.
const BATCH_BYTES: u64 = 64 << 20;

/// What the whole run found, summed over its batches.
#[derive(Default)]
struct Totals {
    documents: usize,
    already: usize,
    bytes: u64,
    /// `(file, reason)`.
    failures: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

/// Extracted files waiting for their transaction.
#[derive(Default)]
struct Batch {
    files: Vec<ExtractedFile>,
    bytes: u64,
}

impl Batch {
    fn push(&mut self, file: ExtractedFile) {
        self.bytes += file.size;
        self.files.push(file);
    }

    /// Stores the batch in one transaction and adds what it yielded to `totals`. Only a store
    /// error ends the run; the batch is then not committed, and a second run stores it.
    fn commit(&mut self, store: &mut Store, totals: &mut Totals) -> Result<(), CliError> {
        if self.files.is_empty() {
            return Ok(());
        }
        let items: Vec<FileExtraction<'_>> = self
            .files
            .iter()
            .map(|f| FileExtraction {
                path: f.shown.as_str(),
                extracted: f.extracted.as_slice(),
                siblings: f.siblings.as_slice(),
            })
            .collect();
        let tallies = store
            .record_file_extractions(&items)
            .map_err(|e| CliError::Failure(e.into()))?;
        for (file, t) in self.files.iter().zip(tallies) {
            totals.documents += t.documents;
            totals.already += t.already_stored;
            totals.skipped.extend(
                file.skipped
                    .iter()
                    .map(|s| (file.shown.clone(), s.to_string())),
            );
            totals
                .failures
                .extend(t.failures.into_iter().map(|f| (file.shown.clone(), f)));
        }
        self.files.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// One file from disk, extracted and not yet stored.
pub struct ExtractedFile {
    /// The path as given, recorded as the documents' source.
    pub shown: String,
    pub size: u64,
    pub extracted: Vec<Extracted>,
    /// What was looked at and left alone because it is not a C-CDA: the file itself, or members
    /// of its XDM zip. Reported so that "0 new documents" is never the whole story.
    pub skipped: Vec<Skipped>,
    /// The files beside it that its documents' `<reference>`s name: (reference, bytes).
    pub siblings: Vec<(String, Vec<u8>)>,
}

/// The file a document's `<reference value="…">` names, read from beside the document: a
/// relative path inside the document's folder (no `..`, not absolute, no URL), a regular file no
/// larger than a document may be. `None` when there is no such file.
fn referenced_file(dir: &Path, reference: &str, limits: &Limits) -> Option<Vec<u8>> {
    let relative = Path::new(reference.strip_prefix("./").unwrap_or(reference));
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if reference.contains(':') || reference.contains('\\') || !plain {
        return None;
    }
    let path = dir.join(relative);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > limits.max_document_bytes {
        return None;
    }
    std::fs::read(path).ok()
}

/// Reads and extracts one file from disk (a C-CDA or an XDM zip); storing it is the batch's job.
pub fn extract_file(path: &Path, limits: &Limits) -> Result<ExtractedFile, FileIngestError> {
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
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut siblings: Vec<(String, Vec<u8>)> = Vec::new();
    for e in extracted.iter().filter(|e| e.xdm.is_none()) {
        let Content::Document(doc) = &e.content else {
            continue;
        };
        let Some(reference) = doc.non_xml_body.as_ref().and_then(|b| b.reference.as_ref()) else {
            continue;
        };
        if siblings.iter().any(|(r, _)| r == reference) {
            continue;
        }
        if let Some(data) = referenced_file(dir, reference, limits) {
            siblings.push((reference.clone(), data));
        }
    }
    Ok(ExtractedFile {
        shown,
        size: bytes.len() as u64,
        extracted,
        skipped,
        siblings,
    })
}
