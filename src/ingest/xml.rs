//! The one place untrusted XML is tokenised. Every caller (C-CDA, XDM METADATA.XML) goes through
//! [`SafeReader`], so the DTD/entity refusal and the size, depth and element caps cannot be
//! forgotten by a new parser.
//!
//! Parsing is streaming: the reader hands out events borrowed from the input slice. Callers build a
//! [`Node`] tree only for small self-contained fragments (one header block, one entry), which keeps
//! memory proportional to the largest fragment rather than to the document. A node borrows its
//! name, attributes and text from the input wherever they need no unescaping, so capturing an
//! entry costs its `Vec`s, not a `String` per name and value.

use std::borrow::Cow;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesEnd, BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::error::IngestError;
use super::limits::Limits;

pub(crate) enum Ev<'a> {
    Start(BytesStart<'a>),
    Empty(BytesStart<'a>),
    End(BytesEnd<'a>),
    /// Character data with references already resolved. quick-xml splits text around each
    /// reference, so one text node may arrive as several of these.
    Text(Cow<'a, str>),
    Eof,
}

pub(crate) struct SafeReader<'a> {
    reader: Reader<&'a [u8]>,
    /// The input as text when it is UTF-8 (almost always: legacy encodings are transcoded
    /// first), so that nodes can borrow from it.
    text: Option<&'a str>,
    depth: usize,
    elements: usize,
    limits: &'a Limits,
}

impl<'a> SafeReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], limits: &'a Limits) -> Self {
        let mut reader = Reader::from_reader(bytes);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        SafeReader {
            reader,
            text: std::str::from_utf8(bytes).ok(),
            depth: 0,
            elements: 0,
            limits,
        }
    }

    pub(crate) fn limits(&self) -> &'a Limits {
        self.limits
    }

    fn count_element(&mut self) -> Result<(), IngestError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(IngestError::TooManyElements {
                limit: self.limits.max_elements,
            });
        }
        Ok(())
    }

    fn check_text(&self, len: usize) -> Result<(), IngestError> {
        if len as u64 > self.limits.max_text_bytes {
            return Err(IngestError::TextTooLarge {
                size: len as u64,
                limit: self.limits.max_text_bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn next(&mut self) -> Result<Ev<'a>, IngestError> {
        loop {
            match self.reader.read_event()? {
                Event::Start(e) => {
                    // Checked before anything else so a 10k-deep bomb fails at the cap, not after
                    // building state for every level.
                    if self.depth >= self.limits.max_depth {
                        return Err(IngestError::TooDeep {
                            depth: self.limits.max_depth,
                        });
                    }
                    self.depth += 1;
                    self.count_element()?;
                    return Ok(Ev::Start(e));
                }
                Event::Empty(e) => {
                    if self.depth >= self.limits.max_depth {
                        return Err(IngestError::TooDeep {
                            depth: self.limits.max_depth,
                        });
                    }
                    self.count_element()?;
                    return Ok(Ev::Empty(e));
                }
                Event::End(e) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Ev::End(e));
                }
                Event::Text(t) => {
                    self.check_text(t.len())?;
                    // Already valid UTF-8 as part of the input; only line ends may need the
                    // normalisation `xml10_content` does, and then it is called.
                    if let Some(text) = self.text.and_then(|text| within(text, &t)) {
                        if memchr::memchr(b'\r', text.as_bytes()).is_none() {
                            return Ok(Ev::Text(Cow::Borrowed(text)));
                        }
                    }
                    return Ok(Ev::Text(t.xml10_content()?));
                }
                Event::CData(c) => {
                    self.check_text(c.len())?;
                    return Ok(Ev::Text(c.decode()?));
                }
                Event::GeneralRef(r) => return Ok(Ev::Text(resolve_reference(&r)?)),
                Event::DocType(_) => return Err(IngestError::DtdForbidden),
                // Processing instructions include xml-stylesheet: deliberately never acted on.
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
                Event::Eof => return Ok(Ev::Eof),
            }
        }
    }

    /// The element whose start tag `e` was just returned, without its content, borrowing from
    /// the input where it can.
    pub(crate) fn node(&self, e: &BytesStart<'_>) -> Result<Node<'a>, IngestError> {
        let Some(tag) = self.text.and_then(|text| within(text, e)) else {
            return Node::from_start(e);
        };
        let name_len = e.name().as_ref().len();
        let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        // quick-xml's duplicate check keeps a list of the keys seen, a heap allocation for every
        // element that has attributes (a thirtieth of extraction). A repeated key is found here
        // on the local names kept anyway; only then is the tag read again with quick-xml's own
        // check, which compares qualified names (`a:id` and `b:id` may both appear) and gives
        // its error for a true duplicate.
        let mut declares_namespace = false;
        let mut unchecked = Attributes::new(tag, name_len);
        unchecked.with_checks(false);
        for attr in unchecked {
            let attr = attr?;
            let key = attr.key.0;
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                declares_namespace = true;
                continue;
            }
            let key = within(tag, key).map_or_else(|| utf8(key), Cow::Borrowed);
            // A value without references is already text of the input: borrowed as is, which
            // spares the UTF-8 check and copy `unescape_value` makes of every attribute.
            let value = match within(tag, &attr.value) {
                Some(v) if !v.contains('&') => Cow::Borrowed(v),
                _ => attr.unescape_value()?,
            };
            let key = local_name_str(key);
            if attrs.iter().any(|(k, _)| *k == key) {
                check_attributes(tag, name_len)?;
            }
            attrs.push((key, value));
        }
        // Namespace declarations are not kept, so their repeats are looked for the slow way
        // (a few elements per document declare any).
        if declares_namespace {
            check_attributes(tag, name_len)?;
        }
        Ok(Node {
            name: local_name_str(Cow::Borrowed(tag.get(..name_len).unwrap_or(tag))),
            attrs,
            children: Vec::new(),
            text: Cow::Borrowed(""),
        })
    }

    /// Reads the rest of an element whose start tag was just returned into a [`Node`].
    pub(crate) fn subtree(&mut self, start: &BytesStart<'_>) -> Result<Node<'a>, IngestError> {
        let mut stack = vec![self.node(start)?];
        loop {
            match self.next()? {
                Ev::Start(e) => stack.push(self.node(&e)?),
                Ev::Empty(e) => {
                    let node = self.node(&e)?;
                    if let Some(top) = stack.last_mut() {
                        top.children.push(node);
                    }
                }
                Ev::End(_) => {
                    let Some(done) = stack.pop() else {
                        return Err(IngestError::MalformedXml("unbalanced end tag".into()));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Ev::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        if top.text.is_empty() {
                            // Leading whitespace is left out: it is mostly the indentation
                            // between child elements, which would otherwise be concatenated into
                            // a new String for every element with children.
                            if !t.bytes().all(|b| b.is_ascii_whitespace()) {
                                top.text = t;
                            }
                        } else {
                            top.text.to_mut().push_str(&t);
                        }
                        self.check_text(top.text.len())?;
                    }
                }
                Ev::Eof => return Err(unexpected_eof()),
            }
        }
    }

    /// Discards the rest of an element whose start tag was just returned.
    pub(crate) fn skip(&mut self) -> Result<(), IngestError> {
        let mut level = 0usize;
        loop {
            match self.next()? {
                Ev::Start(_) => level += 1,
                Ev::End(_) if level == 0 => return Ok(()),
                Ev::End(_) => level -= 1,
                Ev::Eof => return Err(unexpected_eof()),
                Ev::Empty(_) | Ev::Text(_) => {}
            }
        }
    }

    /// Consumes whatever follows the root element so trailing garbage or a late DOCTYPE is still
    /// reported instead of silently ignored.
    pub(crate) fn drain(&mut self) -> Result<(), IngestError> {
        loop {
            if let Ev::Eof = self.next()? {
                return Ok(());
            }
        }
    }
}

/// quick-xml's verdict on the attributes of start tag `tag`, duplicates included.
fn check_attributes(tag: &str, name_len: usize) -> Result<(), IngestError> {
    Attributes::new(tag, name_len).try_for_each(|a| a.map(drop).map_err(IngestError::from))
}

pub(crate) fn unexpected_eof() -> IngestError {
    IngestError::MalformedXml("unexpected end of document".into())
}

fn resolve_reference<'a>(r: &BytesRef<'a>) -> Result<Cow<'a, str>, IngestError> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| IngestError::MalformedXml(e.to_string()))?
    {
        return Ok(Cow::Owned(c.to_string()));
    }
    let name = r.decode()?;
    let text = match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => {
            return Err(IngestError::ExternalEntity {
                name: name.into_owned(),
            })
        }
    };
    Ok(Cow::Borrowed(text))
}

/// `part` (an event's bytes, or a piece of them) as a slice of `text`, which it was read from, so
/// that what is cut from it lives as long as the input. `None` if `part` is a copy instead.
fn within<'a>(text: &'a str, part: &[u8]) -> Option<&'a str> {
    let raw = part;
    let start = (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let tag = text.get(start..start.checked_add(raw.len())?)?;
    (tag.as_ptr() == raw.as_ptr()).then_some(tag)
}

fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// [`local_name`] of a name already known to be text. Cut at a byte position found by a plain
/// loop: names are a few bytes long, where `str::rsplit_once`'s searcher set-up cost more than
/// the search (3% of `directd ingest`). ':' is ASCII, so the cut is at a char boundary.
fn local_name_str(qname: Cow<'_, str>) -> Cow<'_, str> {
    let Some(colon) = qname.bytes().rposition(|b| b == b':') else {
        return qname;
    };
    match qname {
        Cow::Borrowed(q) => Cow::Borrowed(&q[colon + 1..]),
        Cow::Owned(q) => Cow::Owned(q[colon + 1..].to_owned()),
    }
}

/// The part of a qualified name after the prefix. CDA mixes the default namespace with `sdtc:`
/// extensions whose local names are meaningful on their own (`sdtc:raceCode` is another race).
pub(crate) fn local_name(qname: &[u8]) -> &[u8] {
    match qname.iter().rposition(|&b| b == b':') {
        Some(i) => &qname[i + 1..],
        None => qname,
    }
}

/// `text` with runs of whitespace made one space and none at either end: what
/// `split_whitespace().collect::<Vec<_>>().join(" ")` gives, in one allocation instead of two.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_words(&mut out, text);
    out
}

/// Appends the words of `text` to `out`, each after one space unless `out` is empty.
fn push_words(out: &mut String, text: &str) {
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// A small element, used for bounded fragments only (see module docs).
#[derive(Debug, Default, Clone)]
pub(crate) struct Node<'a> {
    pub name: Cow<'a, str>,
    /// Attributes by local name; namespace declarations are dropped.
    pub attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub children: Vec<Node<'a>>,
    /// Direct character data, concatenated; whitespace before the first other character is left
    /// out (every reader trims or collapses whitespace).
    pub text: Cow<'a, str>,
}

impl<'a> Node<'a> {
    /// An owned copy of the start tag `e` (see [`SafeReader::node`] for the borrowing one).
    pub(crate) fn from_start(e: &BytesStart<'_>) -> Result<Node<'static>, IngestError> {
        let name = String::from_utf8_lossy(local_name(e.name().as_ref())).into_owned();
        let mut attrs = Vec::new();
        for attr in e.attributes() {
            let attr = attr?;
            let key = attr.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let value = attr.unescape_value()?.into_owned();
            attrs.push((
                Cow::Owned(String::from_utf8_lossy(local_name(key)).into_owned()),
                Cow::Owned(value),
            ));
        }
        Ok(Node {
            name: Cow::Owned(name),
            attrs,
            children: Vec::new(),
            text: Cow::Borrowed(""),
        })
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn attr_string(&self, name: &str) -> Option<String> {
        self.attr(name).map(|v| v.trim().to_string())
    }

    pub(crate) fn is_true(&self, name: &str) -> bool {
        self.attr(name).is_some_and(|v| v.trim() == "true")
    }

    pub(crate) fn child(&self, name: &str) -> Option<&Node<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn children<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Node<'a>> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// First node reached by following `path` one child name at a time, trying every matching
    /// child at each step (a repeated `participant` may hold the wanted role in its second copy).
    pub(crate) fn find(&self, path: &[&str]) -> Option<&Node<'a>> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        self.children
            .iter()
            .filter(|c| c.name == *first)
            .find_map(|c| c.find(rest))
    }

    /// All text below this node, whitespace collapsed; `None` when empty.
    pub(crate) fn all_text(&self) -> Option<String> {
        let mut out = String::new();
        self.collect_words(&mut out);
        (!out.is_empty()).then_some(out)
    }

    /// The words of this node's text and then of each child's, in document order, each after a
    /// single space but the first: the collapsed text, without gathering the raw text first.
    fn collect_words(&self, out: &mut String) {
        push_words(out, &self.text);
        for c in &self.children {
            c.collect_words(out);
        }
    }

    pub(crate) fn template_roots(&self) -> impl Iterator<Item = &str> {
        self.children("templateId").filter_map(|t| t.attr("root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node of the first element of `xml`, as the extractors build it.
    fn first_node(xml: &str) -> Result<Vec<(String, String)>, IngestError> {
        let limits = Limits::default();
        let mut r = SafeReader::new(xml.as_bytes(), &limits);
        loop {
            match r.next()? {
                Ev::Start(e) | Ev::Empty(e) => {
                    let node = r.node(&e)?;
                    return Ok(node
                        .attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect());
                }
                Ev::Eof => panic!("no element in {xml}"),
                _ => {}
            }
        }
    }

    #[test]
    fn a_repeated_attribute_is_refused() {
        for xml in [
            r#"<code code="1" code="2"/>"#,
            r#"<code a="0" code="1" b="2" code="3"></code>"#,
            r#"<code sdtc:x="1" sdtc:x="2"/>"#,
            r#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns="urn:other"/>"#,
        ] {
            let err = first_node(xml).expect_err(xml);
            assert!(
                matches!(err, IngestError::MalformedXml(_)),
                "{xml}: {err:?}"
            );
        }
    }

    #[test]
    fn one_local_name_under_two_prefixes_is_not_a_repeat() {
        let attrs = first_node(r#"<id a:root="1" b:root="2" root="3" extension="4"/>"#).unwrap();
        let keys: Vec<&str> = attrs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["root", "root", "root", "extension"]);
        assert_eq!(attrs[0].1, "1");
    }

    #[test]
    fn collapsed_text_is_what_split_and_join_give() {
        for text in [
            "",
            "   ",
            "a",
            " a  b\t\nc ",
            "\u{a0}x\u{2003}y",
            "ab  ",
            "  ab",
        ] {
            let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(collapse_whitespace(text), joined, "{text:?}");
        }
    }
}
