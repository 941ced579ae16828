//! Hostile bytes into the MDN/DSN reader and the helpers the agent calls on every message.
#![no_main]

use directd::mdn::{is_report, parse_report, wants_final_delivery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reported = is_report(data);
    let parsed = parse_report(data);
    // Anything parse_report reads as a report must also stop the agent from answering it.
    if parsed.is_ok() {
        assert!(reported);
    }
    let _ = wants_final_delivery(data);
});
