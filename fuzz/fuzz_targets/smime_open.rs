//! Hostile bytes into `open`: MIME splitting, base64, the CMS/DER reader and the algorithm
//! checks all run before any private key is needed, so empty stores reach all of them.
#![no_main]

use directd::smime::{open, Envelope, KeyStore, RevocationPolicy, TrustStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = KeyStore::new();
    let trust = TrustStore::new(RevocationPolicy::BestEffort);
    let envelope = Envelope {
        mail_from: "a@a.example".into(),
        rcpt_to: vec!["b@b.example".into()],
    };
    let _ = open(data, &keys, &trust, None);
    let _ = open(data, &keys, &trust, Some(&envelope));
});
