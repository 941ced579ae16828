//! S/MIME throughput: `seal` (sign + encrypt) and `open` (decrypt + verify + chain validation)
//! messages per second for 10 KB and 1 MB messages, RSA-2048 everywhere, one thread.
//!
//! No criterion: a plain timed loop so it runs anywhere with `cargo bench --bench smime_bench`.
//! Each case runs for `SMIME_SECS` seconds (default 3) after one untimed warm-up call, in slices
//! alternating with as long of RSA-2048 signing (`openssl speed rsa2048`'s operation) in the same
//! process, so that the ratio to sign/s is not moved by the machine's drift between measurements.
//! The PKI is generated in-process with the openssl crate (a root, an intermediate, a sender and
//! a receiver certificate), from `tests/support/pki.rs`.
//!
//! Output: a markdown table, then one `RESULT` line per case for `benches/run.sh` to parse.
//!
//! Memory (run as separate processes by `benches/run.sh`, so each peak is its own):
//! - `smime_bench --rss-seal MB`: seals an MB-megabyte message and prints `RSS_SEAL` with the
//!   message size, the process's peak RSS (VmHWM) before sealing (PKI and message in memory) and
//!   after it.
//! - `smime_bench --write-case DIR MB`: writes an MB-megabyte sealed message `DIR/msg.eml`
//!   with bob's key and certificate, the root anchor and a `[smime]` configuration, for
//!   `directd inspect` to open under `/usr/bin/time`; prints `CASE` with the sizes.

use std::time::{Duration, Instant};

use directd::smime::{open, seal, SealOptions};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;

#[path = "../tests/support/pki.rs"]
mod pki;

/// An inner Direct message of about `size` bytes: headers, a short text part and a base64
/// attachment (the demo C-CDA repeated) in 76-column lines, as a real sender would produce.
fn message(size: usize) -> Vec<u8> {
    const CCDA: &[u8] = include_bytes!("../samples/demo-ccd.xml");
    let head = "From: Alice <alice@a.example>\r\n\
To: bob@b.example\r\n\
Subject: Discharge summary\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <bench@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Summary attached.\r\n\
--b1\r\n\
Content-Type: application/xml; name=\"ccd.xml\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"ccd.xml\"\r\n\
\r\n";
    let tail = "--b1--\r\n";
    // Allocated once: a doubling Vec would leave a transient peak the memory mode would count.
    let mut out = Vec::with_capacity(size.max(head.len() + tail.len()));
    out.extend_from_slice(head.as_bytes());
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0usize;
    while out.len() + 78 + tail.len() <= size {
        // Not real base64 of the document (no dependency for that), but the same alphabet and
        // line shape, derived from its bytes so the content is not one repeated line.
        for _ in 0..76 {
            out.push(alphabet[(CCDA[i % CCDA.len()] as usize + i) % 64]);
            i += 1;
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(tail.as_bytes());
    out
}

/// Calls per second of `ours` and of `reference`, each run for `budget` in total but in
/// alternating slices (after one untimed warm-up call each). A shared VM's speed drifts by
/// 10-20% between one measurement and the next, which is the size of the ratios being judged;
/// alternating moves both sides alike.
fn interleaved(
    budget: Duration,
    mut ours: impl FnMut(),
    mut reference: impl FnMut(),
) -> [(f64, usize); 2] {
    const SLICES: u32 = 12;
    let slice = budget / SLICES;
    let timed = |f: &mut dyn FnMut(), total: &mut (Duration, usize)| {
        let started = Instant::now();
        let mut n = 0usize;
        while n < 1 || started.elapsed() < slice {
            f();
            n += 1;
        }
        total.0 += started.elapsed();
        total.1 += n;
    };
    ours();
    reference();
    let (mut a, mut b) = ((Duration::ZERO, 0), (Duration::ZERO, 0));
    for _ in 0..SLICES {
        timed(&mut ours, &mut a);
        timed(&mut reference, &mut b);
    }
    [a, b].map(|(t, n)| (n as f64 / t.as_secs_f64(), n))
}

/// What `openssl speed rsa2048` counts as one sign: an RSA-2048 private-key operation with
/// PKCS#1 v1.5 padding over a digest-sized input, on a context set up once.
fn rsa_sign_op(key: &PKey<Private>) -> impl FnMut() {
    let mut ctx = PkeyCtx::new(key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_rsa_padding(Padding::PKCS1).unwrap();
    let digest = [0x5a_u8; 32];
    let mut sig = vec![0u8; key.size()];
    move || {
        std::hint::black_box(ctx.sign(&digest, Some(&mut sig)).unwrap());
    }
}

/// One message size's figures, for the `RESULT` lines.
struct Case {
    key: String,
    seal: Rate,
    open: Rate,
    inner: usize,
    sealed: usize,
}

struct Rate {
    per_sec: f64,
    calls: usize,
    /// RSA-2048 signs per second in the slices alternating with this operation.
    sign_per_sec: f64,
}

/// A field of /proc/self/status in kB (VmHWM: peak resident set; VmRSS: current).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

fn megabytes(arg: Option<String>) -> usize {
    arg.and_then(|a| a.parse::<usize>().ok())
        .expect("size in MB")
        << 20
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    match args.next().as_deref() {
        Some("--rss-seal") => return rss_seal(megabytes(args.next())),
        Some("--write-case") => {
            let dir = std::path::PathBuf::from(args.next().expect("directory"));
            return write_case(&dir, megabytes(args.next()));
        }
        _ => {}
    }
    let secs: f64 = std::env::var("SMIME_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);

    // The tests' PKI: root -> intermediate -> alice@a.example (signer) and bob@b.example.
    let pki = pki::pki();
    let signer = pki.alice.identity(&[&pki.inter]);
    let keys = pki.bob_keys();
    let trust = pki.bob_trust();
    let recipients = [pki.bob.cert.clone()];
    let opts = SealOptions::default();

    println!("| message | sealed size | seal msgs/s | seal MB/s | open msgs/s | open MB/s |");
    println!("|---|---|---|---|---|---|");
    let mut results = Vec::new();
    // SMIME_ONLY=10kb (or 1mb) runs one case, for profiling.
    let only = std::env::var("SMIME_ONLY").ok();
    for (label, size) in [("10 KB", 10 * 1024), ("1 MB", 1024 * 1024)] {
        if only
            .as_deref()
            .is_some_and(|o| o != label.replace(' ', "").to_lowercase())
        {
            continue;
        }
        let inner = message(size);
        let sealed = seal(&inner, &signer, &recipients, &opts).unwrap();
        let opened = open(&sealed, &keys, &trust, None).unwrap();
        assert_eq!(opened.inner, inner, "round trip changed the message");

        let [(seal_rate, seal_n), (seal_sign, _)] = interleaved(
            budget,
            || {
                std::hint::black_box(seal(&inner, &signer, &recipients, &opts).unwrap());
            },
            rsa_sign_op(&pki.alice.key),
        );
        let [(open_rate, open_n), (open_sign, _)] = interleaved(
            budget,
            || {
                std::hint::black_box(open(&sealed, &keys, &trust, None).unwrap());
            },
            rsa_sign_op(&pki.alice.key),
        );
        let mb = inner.len() as f64 / 1_000_000.0;
        println!(
            "| {label} ({} B) | {} B | {seal_rate:.1} | {:.1} | {open_rate:.1} | {:.1} |",
            inner.len(),
            sealed.len(),
            seal_rate * mb,
            open_rate * mb
        );
        results.push(Case {
            key: label.replace(' ', "").to_lowercase(),
            seal: Rate {
                per_sec: seal_rate,
                calls: seal_n,
                sign_per_sec: seal_sign,
            },
            open: Rate {
                per_sec: open_rate,
                calls: open_n,
                sign_per_sec: open_sign,
            },
            inner: inner.len(),
            sealed: sealed.len(),
        });
    }
    println!();
    for case in results {
        let key = &case.key;
        for (op, r) in [("seal", &case.seal), ("open", &case.open)] {
            println!(
                "RESULT smime_{op}_{key} {:.2} ({} calls)",
                r.per_sec, r.calls
            );
            // RSA-2048 signs per second in the slices alternating with it.
            println!("RESULT smime_{op}_{key}_sign {:.2}", r.sign_per_sec);
        }
        // Bytes each message puts through the digest and cipher (inner) and base64 (sealed).
        println!("RESULT smime_inner_{key} {}", case.inner);
        println!("RESULT smime_sealed_{key} {}", case.sealed);
    }
}

fn rss_seal(size: usize) {
    let pki = pki::pki();
    let signer = pki.alice.identity(&[&pki.inter]);
    let recipients = [pki.bob.cert.clone()];
    let inner = message(size);
    let before = status_kb("VmHWM").max(status_kb("VmRSS"));
    let sealed = seal(&inner, &signer, &recipients, &SealOptions::default()).unwrap();
    let peak = status_kb("VmHWM");
    println!(
        "RSS_SEAL inner={} sealed={} hwm_before_kb={before} hwm_kb={peak}",
        inner.len(),
        std::hint::black_box(sealed).len()
    );
}

fn write_case(dir: &std::path::Path, size: usize) {
    let pki = pki::pki();
    let inner = message(size);
    let sealed = seal(
        &inner,
        &pki.alice.identity(&[&pki.inter]),
        std::slice::from_ref(&pki.bob.cert),
        &SealOptions::default(),
    )
    .unwrap();
    std::fs::write(dir.join("msg.eml"), &sealed).unwrap();
    pki::write_pem(dir, "bob", &pki.bob);
    std::fs::write(dir.join("root.pem"), pki.root.cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("directd.toml"), "[smime]\n").unwrap();
    println!("CASE inner={} sealed={}", inner.len(), sealed.len());
}
