//! Hostile signed content after decryption. `smime_open` cannot get past decryption (the fuzzer
//! cannot produce a valid encryption for our key), yet anyone can encrypt to our public
//! certificate, so these bytes are attacker-controlled too: the multipart/signed split, micalg,
//! the SignedData DER walk, certificate parsing and its cache, and CMS verification.
#![no_main]

use directd::smime::{fuzz_verify_signed, RevocationPolicy, TrustStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let trust = TrustStore::new(RevocationPolicy::BestEffort);
    fuzz_verify_signed(data, &trust);
});
