//! Fixture + expected output: each `tests/fixtures/<kind>/NAME.<ext>` must render to exactly
//! `NAME.expected.json`. `UPDATE_EXPECTED=1` rewrites the expected files (review the diff before
//! committing: they are the specification); a mismatch writes `NAME.expected.actual.json` beside
//! it.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
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

/// Renders every fixture of `kind` with `render` and compares it with its `NAME.expected.json`.
/// At least `min` fixtures must exist, so an emptied folder cannot pass. `T` is what is compared:
/// a typed value (read back from the file) or a `serde_json::Value`.
pub fn check<T>(kind: &str, ext: &str, min: usize, render: impl Fn(&Path, &[u8]) -> T)
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let files = fixtures(kind, ext);
    assert!(files.len() >= min, "fixtures missing: {files:?}");
    let mut failures = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read fixture");
        let actual = render(&path, &bytes);
        if let Err(e) = compare(&path.with_extension("expected.json"), &actual) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Compares `actual` with the JSON file `expected`, or rewrites the file under
/// `UPDATE_EXPECTED`. A difference leaves the actual rendering beside it (`*.actual.json`).
pub fn compare<T>(expected: &Path, actual: &T) -> Result<(), String>
where
    T: Serialize + DeserializeOwned + PartialEq,
{
    let text = serde_json::to_string_pretty(actual).expect("serialize") + "\n";
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(expected, &text).expect("write expected");
        return Ok(());
    }
    let expected_text = std::fs::read_to_string(expected)
        .map_err(|e| format!("{}: {e} (run with UPDATE_EXPECTED=1)", expected.display()))?;
    let wanted: T = serde_json::from_str(&expected_text)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    if wanted != *actual {
        let out = expected.with_extension("actual.json");
        std::fs::write(&out, &text).expect("write actual");
        return Err(format!(
            "{} differs; see {}",
            expected.display(),
            out.display()
        ));
    }
    Ok(())
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
