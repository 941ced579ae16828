//! A cheap stand-in for the cargo-fuzz targets that runs in CI: deterministic mutations of
//! real inputs must never panic, and whatever parses as a report is recognised as one.
mod support;

use directd::mdn::{
    build_mdn, is_report, parse_report, wants_final_delivery, Disposition, OriginalInfo,
};
use directd::smime::{open, seal, SealOptions};
use support::pki::{pki, INNER};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..(1 + rng.next() % 4) {
        if out.is_empty() {
            break;
        }
        let pos = (rng.next() as usize) % out.len();
        match rng.next() % 4 {
            0 => out[pos] = rng.next() as u8,
            1 => {
                out.remove(pos);
            }
            2 => out.insert(
                pos,
                [b'\r', b'\n', b' ', b';', b'-', b'\0'][(rng.next() % 6) as usize],
            ),
            _ => out.truncate(pos),
        }
    }
    out
}

#[test]
fn mdn_parser_survives_mutations() {
    let seed = build_mdn(
        Disposition::Dispatched,
        &OriginalInfo {
            message_id: "<m1@a.example>".into(),
            original_recipient: None,
            final_recipient: "bob@b.example".into(),
            subject: Some("s".into()),
            from: "alice@a.example".into(),
        },
        "ua",
        true,
    );
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let input = mutate(&mut rng, &seed);
        if parse_report(&input).is_ok() {
            assert!(is_report(&input));
        }
        let _ = wants_final_delivery(&input);
    }
}

#[test]
fn open_survives_mutations() {
    let pki = pki();
    let sealed = seal(
        INNER.as_bytes(),
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    let keys = pki.bob_keys();
    let trust = pki.bob_trust();
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut accepted = 0;
    for _ in 0..300 {
        let input = mutate(&mut rng, &sealed);
        if let Ok(opened) = open(&input, &keys, &trust, None) {
            assert_eq!(opened.inner, INNER.as_bytes());
            accepted += 1;
        }
    }
    // Mutations in the base64 line breaks or trailing whitespace may still open; anything
    // that opens must have verified, so it is the original message.
    assert!(accepted < 300);
}
