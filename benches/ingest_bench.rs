//! Throughput of `ingest_bytes` over a folder of documents (no criterion: a plain timed loop so it
//! runs anywhere with `cargo bench --bench ingest_bench`).
//!
//! `CCDA_CORPUS` selects the folder (default `tests/fixtures/ccda`); `ITERATIONS` the number of
//! passes over it (default 200). Every regular file in the folder is fed in, so a corpus can mix
//! C-CDA and XDM zips; files that are refused still count as processed bytes.

use std::path::PathBuf;
use std::time::Instant;

use directd::ingest::{ingest_bytes, Content, Limits};

fn main() {
    let dir = std::env::var_os("CCDA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ccda"));
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".json"))
        .filter_map(|p| {
            Some((
                p.file_name()?.to_string_lossy().into_owned(),
                std::fs::read(&p).ok()?,
            ))
        })
        .collect();
    files.sort();
    let total_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let limits = Limits::default();

    // One untimed pass so page faults and allocator warm-up do not count.
    let mut documents_per_pass = 0usize;
    let mut refused = 0usize;
    for (name, bytes) in &files {
        match ingest_bytes(bytes, "application/octet-stream", Some(name), &limits) {
            Ok(out) => {
                documents_per_pass += out
                    .iter()
                    .filter(|e| matches!(e.content, Content::Document(_)))
                    .count()
            }
            Err(_) => refused += 1,
        }
    }

    let started = Instant::now();
    for _ in 0..iterations {
        for (name, bytes) in &files {
            let out = ingest_bytes(bytes, "application/octet-stream", Some(name), &limits);
            std::hint::black_box(&out);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mb = (total_bytes * iterations) as f64 / 1_000_000.0;
    println!(
        "corpus {}: {} files, {} bytes, {} documents/pass, {} refused/pass",
        dir.display(),
        files.len(),
        total_bytes,
        documents_per_pass,
        refused
    );
    println!(
        "{iterations} passes in {secs:.3} s: {:.1} MB/s, {:.0} documents/s",
        mb / secs,
        (documents_per_pass * iterations) as f64 / secs
    );
}
