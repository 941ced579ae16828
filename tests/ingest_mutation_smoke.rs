//! Poor man's fuzzing that runs in plain `cargo test`: random mutations of the fixtures must
//! never panic. `MUTATION_ITERATIONS=200000 cargo test --test mutation_smoke` for a longer run;
//! the real fuzzing lives in `fuzz/`.

mod support;

use directd::ingest::{ingest_bytes, Limits};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: [&[u8]; 12] = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#x0;",
    b"\"",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b"<section>",
    b"xsi:type=\"PIVL_TS\"",
];

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len());
        match rng.below(5) {
            0 => out.truncate(at),
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(200)).min(out.len());
                out.drain(at..end);
            }
            _ => {
                let end = (at + rng.below(400)).min(out.len());
                let chunk = out[at..end].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
        }
    }
    out
}

#[test]
fn mutated_inputs_never_panic() {
    let iterations: usize = std::env::var("MUTATION_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut seeds: Vec<Vec<u8>> = support::ingest::xml_fixtures("ccda")
        .iter()
        .map(|p| std::fs::read(p).expect("fixture"))
        .collect();
    let ccd = seeds[0].clone();
    let meta = support::ingest::metadata_xml(&[support::ingest::MetaDoc::full(
        "DOC0001.XML",
        "text/xml",
        &ccd,
    )]);
    seeds.push(support::ingest::build_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &ccd),
    ]));
    let limits = Limits {
        max_zip_total_bytes: 8 << 20,
        ..Limits::default()
    };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..iterations {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        let _ = ingest_bytes(&input, "application/octet-stream", None, &limits);
    }
}
