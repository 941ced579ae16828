//! The stored extraction (`documents.document_json`) without its absent parts: an object key
//! whose value is null or an empty list is left out. They were two fifths of the column (a
//! 938-document corpus: 102 MB of JSON, 62 MB without them), and the column was two thirds of
//! the store. Reading it back needs nothing special: serde reads a missing `Option` as `None`,
//! and the model's lists default to empty (`#[serde(default)]`).
//!
//! Done as a serde_json [`Formatter`] because the decision is made on the output tokens: the
//! model's own JSON (what `ccda show --json` prints, a pinned shape) keeps every key, and no
//! field needs an annotation to be left out here. A `Formatter` cannot take back what it wrote,
//! so it shares the output buffer with the writer serde_json is given, to cut a pair it has
//! begun once its value turns out to be absent.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use serde::Serialize;
use serde_json::ser::Formatter;

/// `value` as JSON with null and empty-list object members left out.
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let out = Rc::new(RefCell::new(Vec::with_capacity(4096)));
    let formatter = SkipAbsent {
        out: Rc::clone(&out),
        frames: Vec::new(),
    };
    let mut serializer = serde_json::Serializer::with_formatter(Shared(Rc::clone(&out)), formatter);
    value.serialize(&mut serializer)?;
    let bytes = std::mem::take(&mut *out.borrow_mut());
    // serde_json writes UTF-8 only, and a cut is always at a token boundary.
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

/// The output buffer, as the writer serde_json writes tokens through.
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Frame {
    Object {
        /// Whether a member has been kept (the next one needs a comma).
        kept_any: bool,
        /// Where the member being written began, comma included: where to cut it back to.
        member_start: usize,
        /// Between the key's colon and the end of its value.
        in_value: bool,
        /// The current member's value was absent and the member has been cut.
        cut: bool,
    },
    Array {
        items: usize,
        /// An object member's value, cut when it ends up empty.
        cut_if_empty: bool,
    },
}

struct SkipAbsent {
    out: Rc<RefCell<Vec<u8>>>,
    frames: Vec<Frame>,
}

impl SkipAbsent {
    /// Cuts the current object member if its value is being written now; `false` otherwise
    /// (a null in a list, or the whole value).
    fn cut_member(&mut self) -> bool {
        match self.frames.last_mut() {
            Some(Frame::Object {
                member_start,
                in_value: true,
                cut,
                ..
            }) => {
                self.out.borrow_mut().truncate(*member_start);
                *cut = true;
                true
            }
            _ => false,
        }
    }

    fn in_member_value(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame::Object { in_value: true, .. })
        )
    }
}

impl Formatter for SkipAbsent {
    fn write_null<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.cut_member() {
            return Ok(());
        }
        writer.write_all(b"null")
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        let cut_if_empty = self.in_member_value();
        self.frames.push(Frame::Array {
            items: 0,
            cut_if_empty,
        });
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(Frame::Array {
            items: 0,
            cut_if_empty: true,
        }) = self.frames.pop()
        {
            if self.cut_member() {
                return Ok(());
            }
        }
        writer.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if let Some(Frame::Array { items, .. }) = self.frames.last_mut() {
            *items += 1;
        }
        if first {
            Ok(())
        } else {
            writer.write_all(b",")
        }
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.frames.push(Frame::Object {
            kept_any: false,
            member_start: 0,
            in_value: false,
            cut: false,
        });
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.frames.pop();
        writer.write_all(b"}")
    }

    /// serde_json's `first` is not used: the first member may have been cut.
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        _first: bool,
    ) -> io::Result<()> {
        let len = self.out.borrow().len();
        if let Some(Frame::Object {
            kept_any,
            member_start,
            ..
        }) = self.frames.last_mut()
        {
            *member_start = len;
            if *kept_any {
                return writer.write_all(b",");
            }
        }
        Ok(())
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if let Some(Frame::Object { in_value, .. }) = self.frames.last_mut() {
            *in_value = true;
        }
        writer.write_all(b":")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        if let Some(Frame::Object {
            kept_any,
            in_value,
            cut,
            ..
        }) = self.frames.last_mut()
        {
            *in_value = false;
            if !std::mem::take(cut) {
                *kept_any = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::to_string;

    #[test]
    fn absent_members_are_left_out_and_the_rest_is_kept() {
        let value = json!({
            "a": null,
            "b": [],
            "c": {"d": null, "e": [null, 1, []], "f": {}},
            "g": "null, [] and \"x\": null",
            "h": [{"i": null}],
            "j": 0,
            "k": false,
            "l": ""
        });
        let compact: Value = serde_json::from_str(&to_string(&value).unwrap()).unwrap();
        assert_eq!(
            compact,
            json!({
                "c": {"e": [null, 1, []], "f": {}},
                "g": "null, [] and \"x\": null",
                "h": [{}],
                "j": 0,
                "k": false,
                "l": ""
            })
        );
        // Leading, trailing and consecutive cuts leave valid JSON with no stray commas.
        for value in [
            json!({"a": null, "b": null}),
            json!({"a": null, "b": 1}),
            json!({"a": 1, "b": null}),
            json!({"a": 1, "b": [], "c": null, "d": 2}),
        ] {
            let text = to_string(&value).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let kept: serde_json::Map<_, _> = value
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(back, Value::Object(kept), "{text}");
        }
        // A value that is itself absent is still written: only members are left out.
        assert_eq!(to_string(&Value::Null).unwrap(), "null");
        assert_eq!(to_string(&json!([])).unwrap(), "[]");
        assert_eq!(to_string(&json!([null])).unwrap(), "[null]");
    }

    /// Every fixture's extraction reads back from its stored form exactly as extracted.
    #[test]
    fn every_fixture_reads_back_as_extracted() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda");
        let limits = crate::ingest::Limits::default();
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let doc = crate::ingest::extract_ccda(&std::fs::read(&path).unwrap(), &limits)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let full = serde_json::to_string(&doc).unwrap();
            let stored = to_string(&doc).unwrap();
            assert!(stored.len() < full.len(), "{}", path.display());
            let back: crate::ingest::model::Document =
                serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(back, doc, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} fixtures");
    }
}
