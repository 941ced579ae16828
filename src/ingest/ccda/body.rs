//! The body walked event by event: components, sections (nested), narrative text, and the
//! non-XML body of an unstructured document.

use std::collections::HashMap;

use openssl::sha::sha256;

use super::classify::classify_section;
use super::datatypes::{code, template_id};
use super::entries::read_entry;
use super::hex;
use crate::ingest::error::IngestError;
use crate::ingest::model::*;
use crate::ingest::xml::{
    collapse_whitespace, local_name, unexpected_eof, Ev, Node, SafeReader, Tree,
};
pub(super) fn read_body_component(
    r: &mut SafeReader<'_>,
    doc: &mut Document,
) -> Result<(), IngestError> {
    loop {
        match r.next()? {
            Ev::Start(e) => match local_name(e.name().as_ref()) {
                b"structuredBody" => read_structured_body(r, doc)?,
                b"nonXMLBody" => {
                    let node = r.subtree(&e)?;
                    doc.non_xml_body = Some(read_non_xml_body(node.root())?);
                }
                _ => r.skip()?,
            },
            Ev::End(_) => return Ok(()),
            Ev::Empty(_) | Ev::Text(_) => {}
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
}

fn read_structured_body(r: &mut SafeReader<'_>, doc: &mut Document) -> Result<(), IngestError> {
    loop {
        match r.next()? {
            Ev::Start(e) if local_name(e.name().as_ref()) == b"component" => {
                read_section_component(r, doc, None)?
            }
            Ev::Start(_) => r.skip()?,
            Ev::End(_) => return Ok(()),
            Ev::Empty(_) | Ev::Text(_) => {}
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
}

fn read_section_component(
    r: &mut SafeReader<'_>,
    doc: &mut Document,
    parent: Option<usize>,
) -> Result<(), IngestError> {
    loop {
        match r.next()? {
            Ev::Start(e) if local_name(e.name().as_ref()) == b"section" => {
                let null_flavor = r.node(&e)?.root().attr_string("nullFlavor");
                read_section(r, doc, null_flavor, parent)?;
            }
            Ev::Empty(e) if local_name(e.name().as_ref()) == b"section" => {
                let mut section = empty_section(parent);
                section.null_flavor = r.node(&e)?.root().attr_string("nullFlavor");
                doc.sections.push(section);
            }
            Ev::Start(_) => r.skip()?,
            Ev::End(_) => return Ok(()),
            Ev::Empty(_) | Ev::Text(_) => {}
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
}

fn empty_section(parent: Option<usize>) -> Section {
    Section {
        kind: SectionKind::Other,
        matched_by: MatchedBy::None,
        template_ids: Vec::new(),
        code: None,
        title: None,
        null_flavor: None,
        text: None,
        parent,
        entries: Vec::new(),
    }
}

fn read_section(
    r: &mut SafeReader<'_>,
    doc: &mut Document,
    null_flavor: Option<String>,
    parent: Option<usize>,
) -> Result<(), IngestError> {
    let index = doc.sections.len();
    let mut section = empty_section(parent);
    section.null_flavor = null_flavor;
    // Reserve the slot so nested subsections, pushed while we are still reading, come after it.
    doc.sections.push(section.clone());
    let mut entry_nodes = Vec::new();
    let mut narrative_ids = HashMap::new();
    loop {
        match r.next()? {
            Ev::Start(e) => match local_name(e.name().as_ref()) {
                b"text" => {
                    let narrative = read_narrative(r)?;
                    section.text = narrative.text;
                    narrative_ids = narrative.ids;
                }
                b"component" => read_section_component(r, doc, Some(index))?,
                b"entry" => entry_nodes.push(r.subtree(&e)?),
                _ => {
                    let node = r.subtree(&e)?;
                    read_section_header(&mut section, node.root());
                }
            },
            Ev::Empty(e) => read_section_header(&mut section, r.node(&e)?.root()),
            Ev::End(_) => break,
            Ev::Text(_) => {}
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
    classify_section(&mut section);
    for mut entry in entry_nodes {
        if !narrative_ids.is_empty() {
            resolve_original_text(&mut entry, &narrative_ids);
        }
        read_entry(entry.root(), section.kind, &mut section.entries);
    }
    doc.sections[index] = section;
    Ok(())
}

fn read_section_header(section: &mut Section, node: Node) {
    match node.name() {
        "templateId" => {
            if let Some(t) = template_id(node) {
                section.template_ids.push(t);
            }
        }
        "code" => section.code = Some(code(node)),
        "title" => section.title = node.all_text(),
        _ => {}
    }
}

/// Flattens narrative markup into plain text: block elements on their own lines, table cells
/// separated by tabs, inline markup dropped. Built while streaming since narratives can be large.
///
/// Also returns the text of every narrative element carrying an `ID`, so coded entries whose
/// `originalText` is only a `<reference value="#id"/>` can be given their human wording.
fn read_narrative(r: &mut SafeReader<'_>) -> Result<Narrative, IngestError> {
    let limit = r.limits().max_text_bytes;
    let mut out = String::new();
    let mut level = 0usize;
    let mut first_cell = true;
    let mut open_ids: Vec<(usize, String, usize)> = Vec::new();
    let mut ids = HashMap::new();
    loop {
        match r.next()? {
            Ev::Start(e) => {
                level += 1;
                if let Some(id) = e.try_get_attribute("ID")? {
                    open_ids.push((level, id.unescape_value()?.into_owned(), out.len()));
                }
                match local_name(e.name().as_ref()) {
                    b"tr" => {
                        line_break(&mut out);
                        first_cell = true;
                    }
                    b"td" | b"th" => {
                        if !first_cell {
                            trim_end_spaces(&mut out);
                            out.push('\t');
                        }
                        first_cell = false;
                    }
                    b"paragraph" | b"item" | b"list" | b"table" | b"caption" | b"thead"
                    | b"tbody" | b"tfoot" => line_break(&mut out),
                    _ => {}
                }
            }
            Ev::Empty(e) => match local_name(e.name().as_ref()) {
                b"br" => {
                    trim_end_spaces(&mut out);
                    out.push('\n');
                }
                b"td" | b"th" => {
                    if !first_cell {
                        out.push('\t');
                    }
                    first_cell = false;
                }
                _ => {}
            },
            Ev::End(e) => {
                if level == 0 {
                    break;
                }
                if open_ids.last().is_some_and(|(l, _, _)| *l == level) {
                    if let Some((_, id, start)) = open_ids.pop() {
                        let text = out.get(start..).unwrap_or_default();
                        ids.insert(id, collapse_whitespace(text));
                    }
                }
                level -= 1;
                if matches!(
                    local_name(e.name().as_ref()),
                    b"tr" | b"paragraph" | b"item" | b"list" | b"table" | b"caption"
                ) {
                    line_break(&mut out);
                }
            }
            Ev::Text(t) => {
                for c in t.chars() {
                    if c.is_whitespace() {
                        if !out.is_empty() && !out.ends_with([' ', '\n', '\t']) {
                            out.push(' ');
                        }
                    } else {
                        out.push(c);
                    }
                }
                if out.len() as u64 > limit {
                    return Err(IngestError::TextTooLarge {
                        size: out.len() as u64,
                        limit,
                    });
                }
            }
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
    let lines: Vec<&str> = out
        .lines()
        .map(|l| l.trim_matches(' '))
        .filter(|l| !l.trim().is_empty())
        .collect();
    Ok(Narrative {
        text: (!lines.is_empty()).then(|| lines.join("\n")),
        ids,
    })
}

struct Narrative {
    text: Option<String>,
    ids: HashMap<String, String>,
}

/// Fills empty `originalText` elements that point into the narrative (`#id`) with the referenced
/// text, before the entry is interpreted.
///
/// An entry's own `<text>`, and a string `<value>` (a DICOM text observation's `ED`), may point
/// into the narrative the same way.
fn resolve_original_text(entry: &mut Tree, ids: &HashMap<String, String>) {
    // Every element in document order. One whose content is replaced keeps its old descendants
    // in the arena, unreachable, so visiting them as well changes nothing a reader sees.
    for at in 0..entry.len() {
        let node = entry.node(at);
        let named = matches!(node.name(), "originalText" | "text" | "value");
        if !named || !node.text().trim().is_empty() {
            continue;
        }
        // `#id` is the rule; a bare `id` is common enough to honour.
        let target = node
            .child("reference")
            .and_then(|r| r.attr("value"))
            .map(|v| v.trim().trim_start_matches('#'))
            .and_then(|id| ids.get(id));
        if let Some(text) = target {
            entry.replace_content(at, text.clone());
        }
    }
}

fn trim_end_spaces(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

fn line_break(out: &mut String) {
    trim_end_spaces(out);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn read_non_xml_body(node: Node) -> Result<NonXmlBody, IngestError> {
    let mut body = NonXmlBody::default();
    let Some(text) = node.child("text") else {
        return Ok(body);
    };
    body.media_type = text.attr_string("mediaType");
    body.representation = text.attr_string("representation");
    body.reference = text.child("reference").and_then(|r| r.attr_string("value"));
    if body.representation.as_deref() == Some("B64") {
        // Senders wrap base64 at 64 or 76 columns and indent it; the decoder wants one block.
        let compact: String = text.text().chars().filter(|c| !c.is_whitespace()).collect();
        if !compact.is_empty() {
            let bytes = openssl::base64::decode_block(&compact)
                .map_err(|e| IngestError::BadBase64(e.to_string()))?;
            body.derived = Some(DerivedBinary {
                media_type: body.media_type.clone(),
                size: bytes.len() as u64,
                sha256: hex(&sha256(&bytes)),
                bytes,
            });
        }
    } else {
        let t = text.text().trim();
        if !t.is_empty() {
            body.text = Some(t.to_string());
        }
    }
    Ok(body)
}
