//! The one place untrusted XML is tokenised. Every caller (C-CDA, XDM METADATA.XML) goes through
//! [`SafeReader`], so the DTD/entity refusal and the size, depth and element caps cannot be
//! forgotten by a new parser.
//!
//! Parsing is streaming: the reader hands out events borrowed from the input slice. Callers build a
//! [`Tree`] only for small self-contained fragments (one header block, one entry), which keeps
//! memory proportional to the largest fragment rather than to the document. A tree borrows its
//! names, attributes and text from the input wherever they need no unescaping, so capturing an
//! entry costs two arena `Vec`s, not a `String` per name and value.

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
    pub(crate) fn node(&self, e: &BytesStart<'_>) -> Result<Tree<'a>, IngestError> {
        let mut tree = Tree::default();
        let at = self.open_element(&mut tree, e)?;
        tree.close(at);
        Ok(tree)
    }

    /// Appends the element whose start tag is `e` to `tree`, children still to come; its index.
    fn open_element(&self, tree: &mut Tree<'a>, e: &BytesStart<'_>) -> Result<usize, IngestError> {
        let Some(tag) = self.text.and_then(|text| within(text, e)) else {
            return tree.open_copied(e);
        };
        let name_len = e.name().as_ref().len();
        let first_attr = tree.attrs.len();
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
            if tree.attrs[first_attr..].iter().any(|(k, _)| *k == key) {
                check_attributes(tag, name_len)?;
            }
            tree.attrs.push((key, value));
        }
        // Namespace declarations are not kept, so their repeats are looked for the slow way
        // (a few elements per document declare any).
        if declares_namespace {
            check_attributes(tag, name_len)?;
        }
        let name = local_name_str(Cow::Borrowed(tag.get(..name_len).unwrap_or(tag)));
        Ok(tree.open(name, first_attr))
    }

    /// Reads the rest of an element whose start tag was just returned into a [`Tree`].
    pub(crate) fn subtree(&mut self, start: &BytesStart<'_>) -> Result<Tree<'a>, IngestError> {
        let mut tree = Tree::default();
        // Indices of the elements whose end tag is still to come, innermost last.
        let mut open = vec![self.open_element(&mut tree, start)?];
        loop {
            match self.next()? {
                Ev::Start(e) => open.push(self.open_element(&mut tree, &e)?),
                Ev::Empty(e) => {
                    let at = self.open_element(&mut tree, &e)?;
                    tree.close(at);
                }
                Ev::End(_) => {
                    let Some(done) = open.pop() else {
                        return Err(IngestError::MalformedXml("unbalanced end tag".into()));
                    };
                    tree.close(done);
                    if open.is_empty() {
                        return Ok(tree);
                    }
                }
                Ev::Text(t) => {
                    if let Some(&top) = open.last() {
                        let text = &mut tree.elements[top].text;
                        if text.is_empty() {
                            // Leading whitespace is left out: it is mostly the indentation
                            // between child elements, which would otherwise be concatenated into
                            // a new String for every element with children.
                            if !t.bytes().all(|b| b.is_ascii_whitespace()) {
                                *text = t;
                            }
                        } else {
                            text.to_mut().push_str(&t);
                        }
                        self.check_text(text.len())?;
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

/// A small fragment (see module docs), read into one arena: its elements in document order,
/// each followed by its descendants, and all their attributes in one list. A per-element tree
/// of `Vec`s cost an allocation for each element's children and for its attributes, and a
/// recursive drop (measured: 2.4% of `directd ingest`'s own instructions on the samples).
#[derive(Debug, Default)]
pub(crate) struct Tree<'a> {
    elements: Vec<Element<'a>>,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

#[derive(Debug)]
struct Element<'a> {
    name: Cow<'a, str>,
    /// Direct character data, concatenated; whitespace before the first other character is left
    /// out (every reader trims or collapses whitespace).
    text: Cow<'a, str>,
    /// This element's attributes by local name, as `Tree::attrs[attrs.0..attrs.1]`; namespace
    /// declarations are dropped.
    attrs: (u32, u32),
    /// One past this element's last descendant: where its next sibling is.
    end: u32,
    /// One past its last child still read as one: `end` unless [`Tree::replace_content`] took
    /// the children away.
    children_end: u32,
}

impl<'a> Tree<'a> {
    /// The element the fragment was read from.
    pub(crate) fn root(&self) -> Node<'_> {
        Node { tree: self, at: 0 }
    }

    /// Appends an element whose attributes are `attrs[first_attr..]`; its index.
    fn open(&mut self, name: Cow<'a, str>, first_attr: usize) -> usize {
        let at = self.elements.len();
        self.elements.push(Element {
            name,
            text: Cow::Borrowed(""),
            attrs: (index(first_attr), index(self.attrs.len())),
            end: 0,
            children_end: 0,
        });
        at
    }

    /// Marks element `at` complete: everything appended since it is its content.
    fn close(&mut self, at: usize) {
        let end = index(self.elements.len());
        let element = &mut self.elements[at];
        element.end = end;
        element.children_end = end;
    }

    /// [`Tree::open`] with an owned copy of the start tag `e`, for input that is not one UTF-8
    /// slice (see [`SafeReader::open_element`] for the borrowing one).
    fn open_copied(&mut self, e: &BytesStart<'_>) -> Result<usize, IngestError> {
        let name = String::from_utf8_lossy(local_name(e.name().as_ref())).into_owned();
        let first_attr = self.attrs.len();
        for attr in e.attributes() {
            let attr = attr?;
            let key = attr.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let value = attr.unescape_value()?.into_owned();
            self.attrs.push((
                Cow::Owned(String::from_utf8_lossy(local_name(key)).into_owned()),
                Cow::Owned(value),
            ));
        }
        Ok(self.open(Cow::Owned(name), first_attr))
    }

    /// How many elements the fragment has.
    pub(crate) fn len(&self) -> usize {
        self.elements.len()
    }

    /// Element `at`, counting in document order from the root (0).
    pub(crate) fn node(&self, at: usize) -> Node<'_> {
        assert!(
            at < self.elements.len(),
            "element {at} of {}",
            self.elements.len()
        );
        Node { tree: self, at }
    }

    /// Gives element `at` the text `text` in place of its content; its descendants stay in the
    /// arena but are no longer its children.
    pub(crate) fn replace_content(&mut self, at: usize, text: String) {
        let element = &mut self.elements[at];
        element.text = Cow::Owned(text);
        element.children_end = index(at + 1);
    }
}

/// An arena position as stored. A fragment is far below `u32::MAX` elements, since the reader's
/// element cap (`Limits::max_elements`) is checked first, and below `u32::MAX` attributes, since
/// each takes at least four bytes of input: `u32::MAX` of them would need 16 GiB, and
/// `Limits::max_document_bytes` caps a document at 64 MiB by default.
fn index(at: usize) -> u32 {
    u32::try_from(at).expect("fragment below the element cap")
}

/// One element of a [`Tree`]: a copyable handle, so that readers pass elements by value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'t> {
    tree: &'t Tree<'t>,
    at: usize,
}

impl<'t> Node<'t> {
    fn element(self) -> &'t Element<'t> {
        &self.tree.elements[self.at]
    }

    /// Local name.
    pub(crate) fn name(self) -> &'t str {
        &self.element().name
    }

    /// Direct character data (see [`Element::text`]).
    pub(crate) fn text(self) -> &'t str {
        &self.element().text
    }

    /// Attributes by local name, in document order.
    pub(crate) fn attrs(self) -> &'t [(Cow<'t, str>, Cow<'t, str>)] {
        let (first, end) = self.element().attrs;
        &self.tree.attrs[first as usize..end as usize]
    }

    /// The element after this one's descendants: its next sibling if it has one.
    fn end(self) -> usize {
        self.element().end as usize
    }

    pub(crate) fn attr(self, name: &str) -> Option<&'t str> {
        self.attrs()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn attr_string(self, name: &str) -> Option<String> {
        self.attr(name).map(|v| v.trim().to_string())
    }

    pub(crate) fn is_true(self, name: &str) -> bool {
        self.attr(name).is_some_and(|v| v.trim() == "true")
    }

    /// Child elements, in document order.
    pub(crate) fn all_children(self) -> Children<'t> {
        Children {
            tree: self.tree,
            next: self.at + 1,
            end: self.element().children_end as usize,
        }
    }

    pub(crate) fn child(self, name: &str) -> Option<Node<'t>> {
        self.all_children().find(|c| c.name() == name)
    }

    pub(crate) fn children<'s>(self, name: &'s str) -> impl Iterator<Item = Node<'t>> + 's
    where
        't: 's,
    {
        self.all_children().filter(move |c| c.name() == name)
    }

    /// First node reached by following `path` one child name at a time, trying every matching
    /// child at each step (a repeated `participant` may hold the wanted role in its second copy).
    pub(crate) fn find(self, path: &[&str]) -> Option<Node<'t>> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        self.children(first).find_map(|c| c.find(rest))
    }

    /// All text below this node, whitespace collapsed; `None` when empty.
    pub(crate) fn all_text(self) -> Option<String> {
        let mut out = String::new();
        self.collect_words(&mut out);
        (!out.is_empty()).then_some(out)
    }

    /// The words of this node's text and then of each child's, in document order, each after a
    /// single space but the first: the collapsed text, without gathering the raw text first.
    fn collect_words(self, out: &mut String) {
        push_words(out, self.text());
        for c in self.all_children() {
            c.collect_words(out);
        }
    }

    pub(crate) fn template_roots(self) -> impl Iterator<Item = &'t str> {
        self.children("templateId").filter_map(|t| t.attr("root"))
    }
}

/// The child elements of a [`Node`]: each child's descendants are skipped by its `end`.
pub(crate) struct Children<'t> {
    tree: &'t Tree<'t>,
    next: usize,
    end: usize,
}

impl<'t> Iterator for Children<'t> {
    type Item = Node<'t>;

    fn next(&mut self) -> Option<Node<'t>> {
        if self.next >= self.end {
            return None;
        }
        let node = Node {
            tree: self.tree,
            at: self.next,
        };
        self.next = node.end();
        Some(node)
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
                    let tree = r.node(&e)?;
                    return Ok(tree
                        .root()
                        .attrs()
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

    /// The tree of the first element of `xml`, as the extractors read it.
    fn first_tree<'a>(xml: &'a str, limits: &'a Limits) -> Tree<'a> {
        let mut r = SafeReader::new(xml.as_bytes(), limits);
        loop {
            match r.next().unwrap() {
                Ev::Start(e) => return r.subtree(&e).unwrap(),
                Ev::Eof => panic!("no element in {xml}"),
                _ => {}
            }
        }
    }

    #[test]
    fn children_skip_their_siblings_descendants() {
        let limits = Limits::default();
        let tree = first_tree(
            r#"<a k="v"><b n="1"><c><d/></c> one </b><e/><b n="2">two</b> tail</a>"#,
            &limits,
        );
        let root = tree.root();
        let names: Vec<&str> = root.all_children().map(Node::name).collect();
        assert_eq!(names, ["b", "e", "b"]);
        let ns: Vec<&str> = root.children("b").filter_map(|b| b.attr("n")).collect();
        assert_eq!(ns, ["1", "2"]);
        assert_eq!(root.attr("k"), Some("v"));
        assert_eq!(root.find(&["b", "c", "d"]).map(Node::name), Some("d"));
        assert!(
            root.find(&["b", "d"]).is_none(),
            "a grandchild is not a child"
        );
        assert_eq!(root.all_text().as_deref(), Some("tail one two"));
        assert_eq!(tree.len(), 6);
    }

    #[test]
    fn replaced_content_hides_the_old_children() {
        let limits = Limits::default();
        let mut tree = first_tree(r#"<a><t><reference value="r"/></t><u/></a>"#, &limits);
        let at = (0..tree.len())
            .find(|&i| tree.node(i).name() == "t")
            .unwrap();
        tree.replace_content(at, "from the narrative".into());
        let root = tree.root();
        let t = root.child("t").unwrap();
        assert_eq!(t.text(), "from the narrative");
        assert_eq!(t.all_children().count(), 0);
        let names: Vec<&str> = root.all_children().map(Node::name).collect();
        assert_eq!(
            names,
            ["t", "u"],
            "the sibling after the replaced element is still found"
        );
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
