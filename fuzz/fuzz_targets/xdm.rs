#![no_main]
//! Any byte string must unpack or fail with an `IngestError`; the small zip limits stop the
//! fuzzer from spending its time inflating legitimately large entries.

use directd::ingest::{unpack_xdm, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_zip_entries: 64,
        max_zip_total_bytes: 4 << 20,
        max_document_bytes: 1 << 20,
        max_depth: 64,
        max_elements: 50_000,
        ..Limits::default()
    };
    let _ = unpack_xdm(data, &limits);
});
