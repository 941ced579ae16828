//! Parsing a decrypted inner Direct message into body and attachments.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = directd::hisp::edge::message::parse_inner(data);
});
