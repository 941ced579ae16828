#![no_main]
//! Any byte string must produce a document or an `IngestError`, never a panic, hang or OOM.
//! Tight limits keep each run cheap and make the cap paths reachable.

use directd::ingest::{extract_ccda, ingest_bytes, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_document_bytes: 1 << 20,
        max_depth: 64,
        max_elements: 50_000,
        max_text_bytes: 1 << 18,
        ..Limits::default()
    };
    let _ = extract_ccda(data, &limits);
    let _ = ingest_bytes(data, "application/xml", Some("fuzz.xml"), &limits);
});
