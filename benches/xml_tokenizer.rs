//! The limit for C-CDA ingestion: quick-xml's tokenizer alone over the same files, every event
//! read and dropped (no attribute parsing, no unescaping, no tree, no store). Whatever
//! `directd ingest` does on top of this is what its MB/s is compared against in benches/run.sh.
//!
//! `CCDA_CORPUS` selects the folder (default `tests/fixtures/ccda`), `ITERATIONS` the number of
//! timed passes (default 20). Prints `RESULT xml_tokenizer_mbs X`.

use std::path::PathBuf;
use std::time::Instant;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Events in one document; an error ends the document (the extractor would refuse it too).
fn tokenize(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return events,
            Ok(e) => {
                std::hint::black_box(&e);
                events += 1;
            }
        }
    }
}

fn main() {
    let dir = std::env::var_os("CCDA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ccda"));
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let events: usize = files.iter().map(|f| tokenize(f)).sum();
    let started = Instant::now();
    for _ in 0..iterations {
        for f in &files {
            std::hint::black_box(tokenize(f));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "corpus {}: {} files, {bytes} bytes, {events} events/pass",
        dir.display(),
        files.len()
    );
    println!(
        "RESULT xml_tokenizer_mbs {:.1} ({iterations} passes in {secs:.3} s)",
        (bytes * iterations) as f64 / secs / 1e6
    );
}
