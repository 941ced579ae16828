//! Fixture + expected output: each `tests/fixtures/<kind>/NAME.<ext>` must render to exactly
//! `NAME.expected.json`. `UPDATE_EXPECTED=1` rewrites the expected files (review the diff before
//! committing: they are the specification); a mismatch writes `NAME.actual.json` beside it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ingest::fixture_dir;

/// The fixtures of `kind` ending in `.ext`, sorted so failures come out in a stable order.
pub fn fixtures(kind: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Renders every fixture of `kind` with `render` and compares it with its expected JSON. At
/// least `min` fixtures must exist, so an emptied folder cannot pass.
pub fn check(kind: &str, ext: &str, min: usize, render: impl Fn(&Path, &[u8]) -> Value) {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let files = fixtures(kind, ext);
    assert!(files.len() >= min, "fixtures missing: {files:?}");
    let mut failures = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read fixture");
        let actual = render(&path, &bytes);
        let text = serde_json::to_string_pretty(&actual).expect("serialize") + "\n";
        let expected_path = path.with_extension("expected.json");
        if update {
            std::fs::write(&expected_path, &text).expect("write expected");
            continue;
        }
        let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_EXPECTED=1)",
                expected_path.display()
            )
        });
        let expected: Value = serde_json::from_str(&expected_text)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if expected != actual {
            let out = path.with_extension("actual.json");
            std::fs::write(&out, &text).expect("write actual");
            failures.push(format!("{} differs; see {}", path.display(), out.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bytes as JSON: the text when it is short UTF-8, else its size and SHA-256.
pub fn bytes(data: &[u8]) -> Value {
    match std::str::from_utf8(data) {
        Ok(text) if text.len() <= 2000 => Value::String(text.to_owned()),
        _ => serde_json::json!({
            "size": data.len(),
            "sha256": directd::util::sha256_hex(data),
        }),
    }
}
