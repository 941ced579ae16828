//! Streaming C-CDA extractor.
//!
//! The document is walked once with [`SafeReader`]. The body structure (component / section /
//! text) is followed event by event; each header block and each `entry` is small and
//! self-contained, so it is captured as a [`Node`] and interpreted on its own. Entries are read from
//! their coded form, never from the narrative tables, which real senders shape inconsistently.
//!
//! Tolerance rule: anything missing or nulled becomes `None`/empty; only unsafe or unparsable XML is
//! an error.

use std::collections::HashMap;

use openssl::sha::sha256;

use super::error::IngestError;
use super::limits::Limits;
use super::model::*;
use super::xml::{local_name, unexpected_eof, Ev, Node, SafeReader};

const HL7_V3_NS: &str = "urn:hl7-org:v3";
const LOINC: &str = "2.16.840.1.113883.6.1";
const DOC_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.1.";
const SECTION_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.2.";
const ENTRY_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.4.";

pub fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, IngestError> {
    if bytes.len() as u64 > limits.max_document_bytes {
        return Err(IngestError::TooLarge {
            size: bytes.len() as u64,
            limit: limits.max_document_bytes,
        });
    }
    let digest = hex(&sha256(bytes));
    let transcoded = transcode_legacy(bytes);
    let mut r = SafeReader::new(transcoded.as_deref().unwrap_or(bytes), limits);
    let root = loop {
        match r.next()? {
            Ev::Start(e) => break e,
            Ev::Empty(e) => {
                return Err(IngestError::NotCda {
                    root: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                })
            }
            Ev::Text(t) if t.trim().is_empty() => continue,
            Ev::Text(_) | Ev::End(_) => {
                return Err(IngestError::MalformedXml(
                    "content before the root element".into(),
                ))
            }
            Ev::Eof => {
                return Err(IngestError::NotCda {
                    root: String::new(),
                })
            }
        }
    };
    if !is_cda_start(&root)? {
        return Err(IngestError::NotCda {
            root: String::from_utf8_lossy(root.name().as_ref()).into_owned(),
        });
    }

    let mut doc = Document {
        sha256: digest,
        kind: DocumentKind::GenericCda,
        classified_by: MatchedBy::None,
        template_ids: Vec::new(),
        id: None,
        code: None,
        title: None,
        effective_time: None,
        confidentiality: None,
        language: None,
        set_id: None,
        version_number: None,
        related_documents: Vec::new(),
        patient: None,
        authors: Vec::new(),
        custodian: None,
        legal_authenticator: None,
        information_recipients: Vec::new(),
        encompassing_encounter: None,
        service_events: Vec::new(),
        sections: Vec::new(),
        non_xml_body: None,
    };

    loop {
        match r.next()? {
            Ev::Start(e) => {
                if local_name(e.name().as_ref()) == b"component" {
                    read_body_component(&mut r, &mut doc)?;
                } else {
                    let node = r.subtree(&e)?;
                    read_header_node(&mut doc, &node);
                }
            }
            Ev::Empty(e) => read_header_node(&mut doc, &Node::from_start(&e)?),
            Ev::End(_) => break,
            Ev::Text(_) => {}
            Ev::Eof => return Err(unexpected_eof()),
        }
    }
    r.drain()?;
    classify_document(&mut doc);
    drop_health_concern_duplicates(&mut doc);
    Ok(doc)
}

/// The root must be `ClinicalDocument` bound to the HL7 v3 namespace. The binding can only be
/// declared on the root itself, so checking its own `xmlns`/`xmlns:p` attributes is sufficient.
pub(crate) fn is_cda_start(root: &quick_xml::events::BytesStart<'_>) -> Result<bool, IngestError> {
    let qname = root.name();
    let qname = qname.as_ref();
    if local_name(qname) != b"ClinicalDocument" {
        return Ok(false);
    }
    let wanted: Vec<u8> = match qname.iter().rposition(|&b| b == b':') {
        Some(i) => [b"xmlns:".as_slice(), &qname[..i]].concat(),
        None => b"xmlns".to_vec(),
    };
    for attr in root.attributes() {
        let attr = attr?;
        if attr.key.as_ref() == wanted.as_slice() {
            return Ok(attr.unescape_value()?.trim() == HL7_V3_NS);
        }
    }
    Ok(false)
}

/// quick-xml is built without its encoding tables, so it reads UTF-8 only. A few senders still
/// emit ISO-8859-1 or windows-1252; both are single-byte and trivially mapped, so such documents are
/// converted instead of refused. Returns `None` when the input is already UTF-8 or declares another
/// encoding (which then fails as malformed).
fn transcode_legacy(bytes: &[u8]) -> Option<Vec<u8>> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    let declared = head
        .split("encoding=")
        .nth(1)?
        .trim_start_matches(['"', '\''])
        .split(['"', '\''])
        .next()?
        .to_string();
    let cp1252 = match declared.as_str() {
        "iso-8859-1" | "latin1" | "iso_8859-1" | "l1" => false,
        "windows-1252" | "cp1252" => true,
        _ => return None,
    };
    // windows-1252 differs from Latin-1 only in 0x80..=0x9F.
    const CP1252_HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    let text: String = bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F if cp1252 => CP1252_HIGH[(b - 0x80) as usize],
            _ => char::from(b),
        })
        .collect();
    Some(text.into_bytes())
}

pub(crate) use crate::util::hex;

// ---------------------------------------------------------------------------------------------
// Body

fn read_body_component(r: &mut SafeReader<'_>, doc: &mut Document) -> Result<(), IngestError> {
    loop {
        match r.next()? {
            Ev::Start(e) => match local_name(e.name().as_ref()) {
                b"structuredBody" => read_structured_body(r, doc)?,
                b"nonXMLBody" => {
                    let node = r.subtree(&e)?;
                    doc.non_xml_body = Some(read_non_xml_body(&node)?);
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
                let node = Node::from_start(&e)?;
                read_section(r, doc, node.attr_string("nullFlavor"), parent)?;
            }
            Ev::Empty(e) if local_name(e.name().as_ref()) == b"section" => {
                let node = Node::from_start(&e)?;
                let mut section = empty_section(parent);
                section.null_flavor = node.attr_string("nullFlavor");
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
                    read_section_header(&mut section, &node);
                }
            },
            Ev::Empty(e) => read_section_header(&mut section, &Node::from_start(&e)?),
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
        read_entry(&entry, section.kind, &mut section.entries);
    }
    doc.sections[index] = section;
    Ok(())
}

fn read_section_header(section: &mut Section, node: &Node) {
    match node.name.as_str() {
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
                        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        ids.insert(id, text);
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
fn resolve_original_text(node: &mut Node, ids: &HashMap<String, String>) {
    let named = matches!(node.name.as_str(), "originalText" | "text" | "value");
    if named && node.text.trim().is_empty() {
        // `#id` is the rule; a bare `id` is common enough to honour.
        let target = node
            .child("reference")
            .and_then(|r| r.attr("value"))
            .map(|v| v.trim().trim_start_matches('#'))
            .and_then(|id| ids.get(id));
        if let Some(text) = target {
            node.text = text.clone();
            node.children.clear();
        }
    }
    for c in &mut node.children {
        resolve_original_text(c, ids);
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

fn read_non_xml_body(node: &Node) -> Result<NonXmlBody, IngestError> {
    let mut body = NonXmlBody::default();
    let Some(text) = node.child("text") else {
        return Ok(body);
    };
    body.media_type = text.attr_string("mediaType");
    body.representation = text.attr_string("representation");
    body.reference = text.child("reference").and_then(|r| r.attr_string("value"));
    if body.representation.as_deref() == Some("B64") {
        // Senders wrap base64 at 64 or 76 columns and indent it; the decoder wants one block.
        let compact: String = text.text.chars().filter(|c| !c.is_whitespace()).collect();
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
        let t = text.text.trim();
        if !t.is_empty() {
            body.text = Some(t.to_string());
        }
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Header

fn read_header_node(doc: &mut Document, node: &Node) {
    match node.name.as_str() {
        "templateId" => {
            if let Some(t) = template_id(node) {
                doc.template_ids.push(t);
            }
        }
        "id" => doc.id = Some(identifier(node)),
        "code" => doc.code = Some(code(node)),
        "title" => doc.title = node.all_text(),
        "effectiveTime" => doc.effective_time = node.attr("value").map(ts),
        "confidentialityCode" => doc.confidentiality = node.attr_string("code"),
        "languageCode" => doc.language = node.attr_string("code"),
        "setId" => doc.set_id = Some(identifier(node)),
        "versionNumber" => doc.version_number = node.attr_string("value"),
        // Multiple recordTargets are legal but unheard of in practice; the first one wins.
        "recordTarget" if doc.patient.is_none() => {
            doc.patient = node.child("patientRole").map(patient);
        }
        "author" => doc.authors.push(participant(node)),
        "custodian" => {
            doc.custodian = node
                .find(&["assignedCustodian", "representedCustodianOrganization"])
                .map(organization)
        }
        "legalAuthenticator" => doc.legal_authenticator = Some(participant(node)),
        "informationRecipient" => doc.information_recipients.push(participant(node)),
        "documentationOf" => {
            if let Some(se) = node.child("serviceEvent") {
                doc.service_events.push(service_event(se));
            }
        }
        "componentOf" => {
            doc.encompassing_encounter = node.child("encompassingEncounter").map(encompassing)
        }
        "relatedDocument" => {
            let parent = node.child("parentDocument");
            doc.related_documents.push(RelatedDocument {
                type_code: node.attr_string("typeCode"),
                id: parent.and_then(|p| p.child("id")).map(identifier),
                set_id: parent.and_then(|p| p.child("setId")).map(identifier),
                version_number: parent
                    .and_then(|p| p.child("versionNumber"))
                    .and_then(|v| v.attr_string("value")),
            });
        }
        _ => {}
    }
}

fn patient(role: &Node) -> Patient {
    let mut p = Patient {
        ids: role.children("id").map(identifier).collect(),
        addresses: role.children("addr").map(address).collect(),
        telecoms: role.children("telecom").map(telecom).collect(),
        provider_organization: role.child("providerOrganization").map(organization),
        ..Patient::default()
    };
    let Some(person) = role.child("patient") else {
        return p;
    };
    p.names = person.children("name").map(person_name).collect();
    p.gender = person.child("administrativeGenderCode").map(code);
    p.birth_time = person
        .child("birthTime")
        .and_then(|b| b.attr("value"))
        .map(ts);
    p.marital_status = person.child("maritalStatusCode").map(code);
    p.races = person.children("raceCode").map(code).collect();
    p.ethnicities = person.children("ethnicGroupCode").map(code).collect();
    p.languages = person
        .children("languageCommunication")
        .map(|l| Language {
            code: l.child("languageCode").and_then(|c| c.attr_string("code")),
            preferred: l
                .child("preferenceInd")
                .and_then(|v| v.attr("value"))
                .map(|v| v.trim() == "true"),
        })
        .collect();
    p.guardians = person
        .children("guardian")
        .map(|g| Guardian {
            relationship: g.child("code").map(code),
            names: g
                .find(&["guardianPerson"])
                .map(|gp| gp.children("name").map(person_name).collect())
                .unwrap_or_default(),
            addresses: g.children("addr").map(address).collect(),
            telecoms: g.children("telecom").map(telecom).collect(),
        })
        .collect();
    p
}

/// Reads any participation (author, performer, legalAuthenticator, informationRecipient,
/// responsibleParty, encounterParticipant): they share one shape with different element names.
fn participant(node: &Node) -> Participant {
    const ROLES: [&str; 4] = [
        "assignedAuthor",
        "assignedEntity",
        "intendedRecipient",
        "participantRole",
    ];
    let role = ROLES.iter().find_map(|r| node.child(r));
    let mut p = Participant {
        type_code: node.attr_string("typeCode"),
        function_code: node.child("functionCode").map(code),
        time: node.child("time").and_then(point_time),
        ..Participant::default()
    };
    let Some(role) = role else { return p };
    p.ids = role.children("id").map(identifier).collect();
    p.code = role.child("code").map(code);
    p.addresses = role.children("addr").map(address).collect();
    p.telecoms = role.children("telecom").map(telecom).collect();
    for person in ["assignedPerson", "informationRecipient", "playingEntity"] {
        if let Some(n) = role.child(person) {
            p.names.extend(n.children("name").map(person_name));
        }
    }
    p.device = role.child("assignedAuthoringDevice").map(|d| Device {
        manufacturer_model: d.child("manufacturerModelName").and_then(Node::all_text),
        software: d.child("softwareName").and_then(Node::all_text),
    });
    p.organization = [
        "representedOrganization",
        "receivedOrganization",
        "scopingOrganization",
    ]
    .iter()
    .find_map(|o| role.child(o))
    .map(organization);
    p
}

fn service_event(se: &Node) -> ServiceEvent {
    let (start, end) = period(se.child("effectiveTime"));
    ServiceEvent {
        code: se.child("code").map(code),
        start,
        end,
        performers: se.children("performer").map(participant).collect(),
    }
}

fn encompassing(enc: &Node) -> EncompassingEncounter {
    let (start, end) = period(enc.child("effectiveTime"));
    EncompassingEncounter {
        ids: enc.children("id").map(identifier).collect(),
        code: enc.child("code").map(code),
        start,
        end,
        location: enc
            .find(&["location", "healthCareFacility"])
            .map(|f| Location {
                ids: f.children("id").map(identifier).collect(),
                code: f.child("code").map(code),
                name: f
                    .find(&["location", "name"])
                    .or_else(|| f.find(&["serviceProviderOrganization", "name"]))
                    .and_then(Node::all_text),
                address: f.find(&["location", "addr"]).map(address),
            }),
        responsible_party: enc.child("responsibleParty").map(participant),
        participants: enc
            .children("encounterParticipant")
            .map(participant)
            .collect(),
        discharge_disposition: enc.child("dischargeDispositionCode").map(code),
    }
}

// ---------------------------------------------------------------------------------------------
// Data types

fn template_id(node: &Node) -> Option<TemplateId> {
    Some(TemplateId {
        root: node.attr_string("root")?,
        extension: node.attr_string("extension"),
    })
}

fn identifier(node: &Node) -> Identifier {
    Identifier {
        root: node.attr_string("root"),
        extension: node.attr_string("extension"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

fn code(node: &Node) -> Code {
    Code {
        code: node.attr_string("code"),
        code_system: node.attr_string("codeSystem"),
        code_system_name: node.attr_string("codeSystemName"),
        display_name: node.attr_string("displayName"),
        original_text: node.child("originalText").and_then(Node::all_text),
        null_flavor: node.attr_string("nullFlavor"),
        translations: node.children("translation").map(code).collect(),
    }
}

fn person_name(node: &Node) -> PersonName {
    let parts = |n: &str| -> Vec<String> { node.children(n).filter_map(Node::all_text).collect() };
    let text = node.text.split_whitespace().collect::<Vec<_>>().join(" ");
    PersonName {
        name_use: node.attr_string("use"),
        prefixes: parts("prefix"),
        given: parts("given"),
        family: node.child("family").and_then(Node::all_text),
        suffixes: parts("suffix"),
        text: (!text.is_empty()).then_some(text),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

fn address(node: &Node) -> Address {
    let part = |n: &str| node.child(n).and_then(Node::all_text);
    Address {
        address_use: node.attr_string("use"),
        street: node
            .children("streetAddressLine")
            .filter_map(Node::all_text)
            .collect(),
        city: part("city"),
        state: part("state"),
        postal_code: part("postalCode"),
        country: part("country"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

fn telecom(node: &Node) -> Telecom {
    Telecom {
        telecom_use: node.attr_string("use"),
        value: node.attr_string("value"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

fn organization(node: &Node) -> Organization {
    Organization {
        ids: node.children("id").map(identifier).collect(),
        names: node.children("name").filter_map(Node::all_text).collect(),
        telecoms: node.children("telecom").map(telecom).collect(),
        addresses: node.children("addr").map(address).collect(),
    }
}

/// Converts an HL7 `TS` to ISO 8601 at the precision given; anything that does not look like a
/// `TS` is kept as sent so no information is lost.
pub(crate) fn ts(raw: &str) -> String {
    let raw = raw.trim();
    let (main, zone) = match raw.find(['+', '-']) {
        Some(i) if i >= 4 => (&raw[..i], Some(&raw[i..])),
        _ => (raw, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    let valid_len = matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let zone_ok = zone.is_none_or(|z| z.len() == 5 && all_digits(&z[1..]));
    let fraction_ok = fraction.is_none_or(|f| digits.len() == 14 && all_digits(f) && !f.is_empty());
    if !valid_len || !all_digits(digits) || !zone_ok || !fraction_ok {
        return raw.to_string();
    }
    let d = digits;
    let mut out = d[..4].to_string();
    if d.len() >= 6 {
        out.push('-');
        out.push_str(&d[4..6]);
    }
    if d.len() >= 8 {
        out.push('-');
        out.push_str(&d[6..8]);
    }
    if d.len() >= 10 {
        out.push('T');
        out.push_str(&d[8..10]);
    }
    if d.len() >= 12 {
        out.push(':');
        out.push_str(&d[10..12]);
    }
    if d.len() >= 14 {
        out.push(':');
        out.push_str(&d[12..14]);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    if let Some(z) = zone {
        out.push_str(&z[..3]);
        out.push(':');
        out.push_str(&z[3..]);
    }
    out
}

/// `(start, end)` of an `IVL_TS` or a single `TS` (start only).
fn period(node: Option<&Node>) -> (Option<String>, Option<String>) {
    let Some(node) = node else {
        return (None, None);
    };
    if let Some(v) = node.attr("value") {
        return (Some(ts(v)), None);
    }
    let bound = |n: &str| node.child(n).and_then(|b| b.attr("value")).map(ts);
    (bound("low").or_else(|| bound("center")), bound("high"))
}

/// A single point in time: `@value`, else `low`.
fn point_time(node: &Node) -> Option<String> {
    period(Some(node)).0
}

fn status(node: &Node) -> Option<String> {
    node.child("statusCode").and_then(|s| s.attr_string("code"))
}

fn ids(node: &Node) -> Vec<Identifier> {
    node.children("id").map(identifier).collect()
}

fn value(node: &Node) -> Value {
    let value_type = node
        .attr("type")
        .map(|t| t.rsplit(':').next().unwrap_or(t).trim().to_string());
    let coded = matches!(
        value_type.as_deref(),
        Some("CD" | "CE" | "CO" | "CV" | "CS")
    ) || node.attr("code").is_some()
        || node.attr("codeSystem").is_some();
    let mut v = Value {
        value: node.attr_string("value"),
        unit: node.attr_string("unit"),
        null_flavor: node.attr_string("nullFlavor"),
        ..Value::default()
    };
    if coded {
        v.code = Some(code(node));
    } else if value_type.as_deref() == Some("IVL_PQ") {
        let low = node.child("low");
        let high = node.child("high");
        let low_v = low.and_then(|n| n.attr_string("value"));
        let high_v = high.and_then(|n| n.attr_string("value"));
        v.value = match (&low_v, &high_v) {
            (Some(l), Some(h)) => Some(format!("{l}-{h}")),
            (Some(l), None) => Some(format!(">={l}")),
            (None, Some(h)) => Some(format!("<={h}")),
            (None, None) => None,
        };
        v.unit = low
            .or(high)
            .and_then(|n| n.attr_string("unit"))
            .or(v.unit.take());
    } else {
        let t = node.all_text();
        v.text = t;
    }
    v.value_type = value_type;
    v
}

fn first_value(node: &Node) -> Option<Value> {
    node.child("value").map(value)
}

/// The coded content of a CD-typed `value`, which is where problems, allergy types and reactions
/// carry their meaning.
fn value_code(node: &Node) -> Option<Code> {
    node.child("value").map(code)
}

/// Health Concern acts usually reference (REFR) problems the Problems section already lists, by
/// the problem's id and often a copy of its content. Kept as well they would count each problem
/// twice, so a Health Concerns problem whose id a problem elsewhere carries is dropped; the
/// section's narrative still says what the concern is.
fn drop_health_concern_duplicates(doc: &mut Document) {
    let key = |i: &Identifier| Some((i.root.clone()?, i.extension.clone()));
    let listed: std::collections::HashSet<(String, Option<String>)> = doc
        .sections
        .iter()
        .filter(|s| s.kind != SectionKind::HealthConcerns)
        .flat_map(|s| &s.entries)
        .filter_map(|e| match e {
            Entry::Problem(p) => Some(p.ids.iter().filter_map(key)),
            _ => None,
        })
        .flatten()
        .collect();
    if listed.is_empty() {
        return;
    }
    for s in doc
        .sections
        .iter_mut()
        .filter(|s| s.kind == SectionKind::HealthConcerns)
    {
        s.entries.retain(|e| match e {
            Entry::Problem(p) => !p.ids.iter().filter_map(key).any(|k| listed.contains(&k)),
            _ => true,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Classification

fn classify_document(doc: &mut Document) {
    let by_template = doc.template_ids.iter().find_map(|t| {
        if t.root == "2.16.840.1.113883.10.20.1" {
            return Some(DocumentKind::Ccd);
        }
        let n = t.root.strip_prefix(DOC_TEMPLATE_PREFIX)?;
        Some(match n {
            "2" => DocumentKind::Ccd,
            "3" => DocumentKind::HistoryAndPhysical,
            "4" => DocumentKind::ConsultationNote,
            "5" => DocumentKind::DiagnosticImagingReport,
            "6" => DocumentKind::ProcedureNote,
            "7" => DocumentKind::OperativeNote,
            "8" => DocumentKind::DischargeSummary,
            "9" => DocumentKind::ProgressNote,
            "10" => DocumentKind::UnstructuredDocument,
            "13" => DocumentKind::TransferSummary,
            "14" => DocumentKind::ReferralNote,
            "15" => DocumentKind::CarePlan,
            _ => return None,
        })
    });
    if let Some(kind) = by_template {
        doc.kind = kind;
        doc.classified_by = MatchedBy::TemplateId;
        return;
    }
    let by_code = doc
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref().is_none_or(|s| s == LOINC))
        .and_then(|c| c.code.as_deref())
        .and_then(|c| {
            Some(match c {
                "34133-9" => DocumentKind::Ccd,
                "34117-2" => DocumentKind::HistoryAndPhysical,
                "11488-4" => DocumentKind::ConsultationNote,
                "18748-4" => DocumentKind::DiagnosticImagingReport,
                "28570-0" => DocumentKind::ProcedureNote,
                "11504-8" => DocumentKind::OperativeNote,
                "18842-5" | "11490-0" => DocumentKind::DischargeSummary,
                "11506-3" => DocumentKind::ProgressNote,
                "18761-7" => DocumentKind::TransferSummary,
                "57133-1" => DocumentKind::ReferralNote,
                "52521-2" => DocumentKind::CarePlan,
                _ => return None,
            })
        });
    if let Some(kind) = by_code {
        doc.kind = kind;
        doc.classified_by = MatchedBy::LoincCode;
    } else if doc.non_xml_body.is_some() {
        doc.kind = DocumentKind::UnstructuredDocument;
        doc.classified_by = MatchedBy::Body;
    }
}

fn section_kind_by_template(root: &str) -> Option<SectionKind> {
    use SectionKind as K;
    if let Some(rest) = root.strip_prefix(SECTION_TEMPLATE_PREFIX) {
        // "N.1" is the entries-required variant of section N.
        let n = rest.strip_suffix(".1").unwrap_or(rest);
        return Some(match n {
            "1" => K::Medications,
            "2" => K::Immunizations,
            "3" => K::Results,
            "4" => K::VitalSigns,
            "5" => K::Problems,
            "6" => K::Allergies,
            "7" => K::Procedures,
            "8" => K::Assessment,
            "9" => K::AssessmentAndPlan,
            "10" => K::PlanOfTreatment,
            "11" => K::DischargeMedications,
            "12" => K::ReasonForVisit,
            "13" => K::ChiefComplaintAndReasonForVisit,
            "14" => K::FunctionalStatus,
            "15" => K::FamilyHistory,
            "17" => K::SocialHistory,
            "18" => K::Payers,
            "20" => K::PastMedicalHistory,
            "21" => K::AdvanceDirectives,
            "22" => K::Encounters,
            "23" => K::MedicalEquipment,
            "24" => K::DischargeDiagnosis,
            "41" => K::DischargeInstructions,
            "43" => K::AdmissionDiagnosis,
            "45" => K::Instructions,
            "56" => K::MentalStatus,
            "57" => K::Nutrition,
            "58" => K::HealthConcerns,
            "60" => K::Goals,
            "65" => K::Notes,
            "500" => K::CareTeams,
            "25" => K::Anesthesia,
            "27" => K::ProcedureDescription,
            "28" => K::ProcedureFindings,
            "29" => K::ProcedureIndications,
            "30" => K::PlannedProcedure,
            "31" => K::ProcedureSpecimens,
            "34" => K::PreoperativeDiagnosis,
            "35" => K::PostoperativeDiagnosis,
            "36" => K::PostprocedureDiagnosis,
            "37" => K::Complications,
            "40" => K::ProcedureImplants,
            _ => return None,
        });
    }
    Some(match root {
        "1.3.6.1.4.1.19376.1.5.3.1.1.13.2.1" => K::ChiefComplaint,
        "1.3.6.1.4.1.19376.1.5.3.1.3.1" => K::ReasonForReferral,
        "1.3.6.1.4.1.19376.1.5.3.1.3.4" => K::HistoryOfPresentIllness,
        "1.3.6.1.4.1.19376.1.5.3.1.3.5" => K::HospitalCourse,
        "1.3.6.1.4.1.19376.1.5.3.1.3.18" => K::ReviewOfSystems,
        "2.16.840.1.113883.10.20.2.10" => K::PhysicalExam,
        "2.16.840.1.113883.10.20.18.2.9" => K::EstimatedBloodLoss,
        "2.16.840.1.113883.10.20.7.12" => K::OperativeFluids,
        "2.16.840.1.113883.10.20.7.13" => K::SurgicalDrains,
        "2.16.840.1.113883.10.20.7.14" => K::SurgicalProcedure,
        "2.16.840.1.113883.10.20.6.1.1" => K::DicomObjectCatalog,
        "2.16.840.1.113883.10.20.6.1.2" => K::ImagingFindings,
        _ => return None,
    })
}

fn section_kind_by_loinc(code: &str) -> Option<SectionKind> {
    use SectionKind as K;
    Some(match code {
        "10160-0" => K::Medications,
        "11369-6" => K::Immunizations,
        "30954-2" => K::Results,
        "8716-3" => K::VitalSigns,
        "11450-4" => K::Problems,
        "48765-2" => K::Allergies,
        "47519-4" => K::Procedures,
        "51848-0" => K::Assessment,
        "51847-2" => K::AssessmentAndPlan,
        "18776-5" => K::PlanOfTreatment,
        "10183-2" => K::DischargeMedications,
        "29299-5" => K::ReasonForVisit,
        "46239-0" => K::ChiefComplaintAndReasonForVisit,
        "47420-5" => K::FunctionalStatus,
        "10157-6" => K::FamilyHistory,
        "29762-2" => K::SocialHistory,
        "48768-6" => K::Payers,
        "11348-0" => K::PastMedicalHistory,
        "42348-3" => K::AdvanceDirectives,
        "46240-8" => K::Encounters,
        "46264-8" => K::MedicalEquipment,
        "11535-2" => K::DischargeDiagnosis,
        "8653-8" => K::DischargeInstructions,
        "46241-6" => K::AdmissionDiagnosis,
        "69730-0" => K::Instructions,
        "10190-7" => K::MentalStatus,
        "61144-2" => K::Nutrition,
        "75310-3" => K::HealthConcerns,
        "61146-7" => K::Goals,
        "85847-2" => K::CareTeams,
        "10154-3" => K::ChiefComplaint,
        "42349-1" => K::ReasonForReferral,
        "10164-2" => K::HistoryOfPresentIllness,
        "8648-8" => K::HospitalCourse,
        "10187-3" => K::ReviewOfSystems,
        "29545-1" => K::PhysicalExam,
        "10219-4" => K::PreoperativeDiagnosis,
        "10218-6" => K::PostoperativeDiagnosis,
        "59769-0" => K::PostprocedureDiagnosis,
        "59774-0" => K::Anesthesia,
        "55109-3" => K::Complications,
        "59776-5" => K::ProcedureFindings,
        "29554-3" => K::ProcedureDescription,
        "59768-2" => K::ProcedureIndications,
        "59772-4" => K::PlannedProcedure,
        "59773-2" => K::ProcedureSpecimens,
        "55122-6" => K::ProcedureImplants,
        "59770-8" => K::EstimatedBloodLoss,
        "11537-8" => K::SurgicalDrains,
        "10216-0" => K::OperativeFluids,
        "10223-6" => K::SurgicalProcedure,
        "18782-3" => K::ImagingFindings,
        "19005-8" => K::ImagingImpression,
        _ => return None,
    })
}

const DICOM: &str = "1.2.840.10008.2.16.4";

/// Sections of a Diagnostic Imaging Report carry DICOM codes (PS3.16) rather than LOINC.
fn section_kind_by_dicom(code: &str) -> Option<SectionKind> {
    use SectionKind as K;
    Some(match code {
        "121181" => K::DicomObjectCatalog,
        "121070" => K::ImagingFindings,
        "121072" | "121073" | "121076" => K::ImagingImpression,
        "121060" => K::HistoryOfPresentIllness,
        "121064" => K::ProcedureDescription,
        "121109" => K::ProcedureIndications,
        _ => return None,
    })
}

fn classify_section(section: &mut Section) {
    if let Some(kind) = section
        .template_ids
        .iter()
        .find_map(|t| section_kind_by_template(&t.root))
    {
        section.kind = kind;
        section.matched_by = MatchedBy::TemplateId;
        return;
    }
    let by_code = section
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref().is_none_or(|s| s == LOINC))
        .and_then(|c| c.code.as_deref())
        .and_then(section_kind_by_loinc);
    if let Some(kind) = by_code {
        section.kind = kind;
        section.matched_by = MatchedBy::LoincCode;
        return;
    }
    // MatchedBy::LoincCode stands for "by its section code"; DICOM codes are the imaging report's.
    let by_dicom = section
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref() == Some(DICOM))
        .and_then(|c| c.code.as_deref())
        .and_then(section_kind_by_dicom);
    if let Some(kind) = by_dicom {
        section.kind = kind;
        section.matched_by = MatchedBy::LoincCode;
    }
}

// ---------------------------------------------------------------------------------------------
// Entries

/// Entry template number `x` of `2.16.840.1.113883.10.20.22.4.x` carried by a clinical statement.
fn entry_templates(node: &Node) -> Vec<u32> {
    node.template_roots()
        .filter_map(|r| {
            r.strip_prefix(ENTRY_TEMPLATE_PREFIX).or_else(|| {
                // The Smoking Status template's OID was published with a typo (".10.22.4.78",
                // missing ".20") and real documents, NIST's samples among them, carry it.
                (r == SMOKING_STATUS_TYPO_OID).then_some("78")
            })
        })
        .filter_map(|n| n.parse().ok())
        .collect()
}

const SMOKING_STATUS_TYPO_OID: &str = "2.16.840.1.113883.10.22.4.78";

fn is_planned_mood(node: &Node) -> bool {
    matches!(
        node.attr("moodCode"),
        Some("INT" | "RQO" | "PRMS" | "PRP" | "APT" | "ARQ")
    )
}

fn read_entry(entry: &Node, section: SectionKind, out: &mut Vec<Entry>) {
    for statement in &entry.children {
        read_statement(statement, section, out);
    }
}

/// Sections whose untemplated acts and observations are problems (diagnoses, complications,
/// findings), as opposed to procedures or results.
fn holds_problems(kind: SectionKind) -> bool {
    use SectionKind as K;
    matches!(
        kind,
        K::Problems
            | K::PastMedicalHistory
            | K::HealthConcerns
            | K::DischargeDiagnosis
            | K::AdmissionDiagnosis
            | K::PreoperativeDiagnosis
            | K::PostoperativeDiagnosis
            | K::PostprocedureDiagnosis
            | K::Complications
            | K::ProcedureFindings
            | K::ProcedureIndications
    )
}

fn read_statement(st: &Node, section: SectionKind, out: &mut Vec<Entry>) {
    use SectionKind as K;
    let t = entry_templates(st);
    let has = |n: u32| t.contains(&n);
    let name = st.name.as_str();

    // Template ids first: they are unambiguous wherever the entry sits.
    if has(3) {
        return problems_from_concern(st, out);
    }
    if has(4) {
        return out.push(Entry::Problem(problem(st, None)));
    }
    if has(30) {
        return allergies_from_concern(st, out);
    }
    if has(7) {
        return out.push(Entry::Allergy(allergy(st, None)));
    }
    if has(52) {
        return out.push(Entry::Immunization(immunization(st)));
    }
    if has(16) {
        return out.push(Entry::Medication(medication(st)));
    }
    if has(26) || has(27) {
        return out.push(Entry::VitalSigns(panel(st)));
    }
    if has(1) || has(2) {
        return out.push(Entry::Result(panel(st)));
    }
    if has(49) {
        return out.push(Entry::Encounter(encounter(st)));
    }
    if has(78) || has(85) || has(38) {
        return out.push(Entry::SocialHistory(social(st, &t)));
    }
    if [39, 40, 41, 42, 43, 44, 120].iter().any(|n| has(*n)) {
        return out.push(Entry::PlanOfCare(planned(st)));
    }
    if has(12) || has(13) || has(14) {
        return out.push(Entry::Procedure(procedure(st)));
    }
    if has(45) {
        return out.push(Entry::FamilyHistory(family(st)));
    }
    if has(35) {
        // Discharge Medication act wraps the actual Medication Activity.
        for inner in related(st, "substanceAdministration") {
            out.push(Entry::Medication(medication(inner)));
        }
        return;
    }

    // No recognised template: fall back to where the entry sits and what element it is.
    match (section, name) {
        (k, "act") if holds_problems(k) => problems_from_concern(st, out),
        (k, "observation") if holds_problems(k) => out.push(Entry::Problem(problem(st, None))),
        (
            K::Anesthesia
            | K::SurgicalProcedure
            | K::ProcedureDescription
            | K::PlannedProcedure
            | K::ProcedureSpecimens
            | K::ProcedureImplants
            | K::DicomObjectCatalog,
            "procedure" | "act",
        ) => out.push(Entry::Procedure(procedure(st))),
        (K::Anesthesia, "substanceAdministration") => out.push(Entry::Medication(medication(st))),
        // DICOM text, code and quantity observations (10.20.6.2.12-14) are findings with values.
        (
            K::ImagingFindings | K::ImagingImpression | K::EstimatedBloodLoss | K::OperativeFluids,
            "observation" | "organizer",
        ) => out.push(Entry::Result(panel(st))),
        (K::Allergies, "act") => allergies_from_concern(st, out),
        (K::Allergies, "observation") => out.push(Entry::Allergy(allergy(st, None))),
        (K::PlanOfTreatment | K::AssessmentAndPlan, _) if is_planned_mood(st) => {
            out.push(Entry::PlanOfCare(planned(st)))
        }
        (K::Medications | K::DischargeMedications, "substanceAdministration") => {
            out.push(Entry::Medication(medication(st)))
        }
        (K::Medications | K::DischargeMedications, "act") => {
            for inner in related(st, "substanceAdministration") {
                out.push(Entry::Medication(medication(inner)));
            }
        }
        (K::Immunizations, "substanceAdministration") => {
            out.push(Entry::Immunization(immunization(st)))
        }
        (K::Results, "organizer" | "observation") => out.push(Entry::Result(panel(st))),
        (K::VitalSigns, "organizer" | "observation") => out.push(Entry::VitalSigns(panel(st))),
        (K::Procedures, "procedure" | "observation" | "act") => {
            out.push(Entry::Procedure(procedure(st)))
        }
        (K::Encounters, "encounter") => out.push(Entry::Encounter(encounter(st))),
        (K::SocialHistory, "observation") => out.push(Entry::SocialHistory(social(st, &t))),
        (K::FamilyHistory, "organizer") => out.push(Entry::FamilyHistory(family(st))),
        _ => {}
    }
}

/// Clinical statements of element `name` reachable through `entryRelationship`.
fn related<'a>(node: &'a Node, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
    node.children("entryRelationship")
        .filter_map(move |er| er.child(name))
}

fn problems_from_concern(act: &Node, out: &mut Vec<Entry>) {
    let concern = Concern {
        status: status(act),
        period: period(act.child("effectiveTime")),
    };
    let observations: Vec<&Node> = related(act, "observation").collect();
    let templated: Vec<&Node> = observations
        .iter()
        .copied()
        .filter(|o| entry_templates(o).contains(&4))
        .collect();
    let chosen = if templated.is_empty() {
        observations
    } else {
        templated
    };
    if chosen.is_empty() {
        out.push(Entry::Problem(Problem {
            ids: ids(act),
            concern_status: concern.status,
            onset: concern.period.0,
            resolution: concern.period.1,
            negated: act.is_true("negationInd"),
            ..Problem::default()
        }));
        return;
    }
    for obs in chosen {
        out.push(Entry::Problem(problem(obs, Some(&concern))));
    }
}

struct Concern {
    status: Option<String>,
    period: (Option<String>, Option<String>),
}

fn is_status_observation(o: &Node, template: u32) -> bool {
    entry_templates(o).contains(&template)
        || o.child("code").and_then(|c| c.attr("code")) == Some("33999-4")
}

fn problem(obs: &Node, concern: Option<&Concern>) -> Problem {
    let (onset, resolution) = period(obs.child("effectiveTime"));
    let status_obs = related(obs, "observation").find(|o| is_status_observation(o, 6));
    let concern_period = concern.map(|c| c.period.clone()).unwrap_or_default();
    Problem {
        ids: ids(obs),
        concern_status: concern.and_then(|c| c.status.clone()),
        code: value_code(obs),
        problem_type: obs.child("code").map(code),
        status: status_obs
            .and_then(|s| s.child("value"))
            .and_then(status_name),
        onset: onset.or(concern_period.0),
        resolution: resolution.or(concern_period.1),
        negated: obs.is_true("negationInd"),
    }
}

/// A status observation's value as words: its display name, else the listed name of its code
/// (`55561003` is "active"), else the code.
fn status_name(v: &Node) -> Option<String> {
    v.attr_string("displayName").or_else(|| {
        let c = v.attr_string("code")?;
        Some(
            super::vocab::display(v.attr("codeSystem"), &c)
                .map(str::to_owned)
                .unwrap_or(c),
        )
    })
}

fn allergies_from_concern(act: &Node, out: &mut Vec<Entry>) {
    let concern = Concern {
        status: status(act),
        period: period(act.child("effectiveTime")),
    };
    // A severity (or status) observation directly under the concern describes the allergies in
    // it; read as an allergy of its own it would be a blank row.
    let (about, observations): (Vec<&Node>, Vec<&Node>) =
        related(act, "observation").partition(|o| is_severity(o) || is_status_observation(o, 28));
    let concern_severity = about
        .iter()
        .find(|o| is_severity(o))
        .and_then(|o| value_code(o));
    if observations.is_empty() {
        out.push(Entry::Allergy(Allergy {
            ids: ids(act),
            concern_status: concern.status,
            severity: concern_severity,
            ..Allergy::default()
        }));
        return;
    }
    for obs in observations {
        let mut a = allergy(obs, Some(&concern));
        if a.severity.is_none() {
            a.severity.clone_from(&concern_severity);
        }
        out.push(Entry::Allergy(a));
    }
}

fn is_severity(o: &Node) -> bool {
    entry_templates(o).contains(&8) || o.child("code").and_then(|c| c.attr("code")) == Some("SEV")
}

fn allergy(obs: &Node, concern: Option<&Concern>) -> Allergy {
    let (onset, resolution) = period(obs.child("effectiveTime"));
    let substance = obs
        .children("participant")
        .filter(|p| p.attr("typeCode").is_none_or(|t| t == "CSM"))
        .find_map(|p| p.find(&["participantRole", "playingEntity", "code"]))
        .map(code);
    let mut a = Allergy {
        ids: ids(obs),
        concern_status: concern.and_then(|c| c.status.clone()),
        allergy_type: value_code(obs),
        substance,
        onset,
        resolution,
        negated: obs.is_true("negationInd"),
        ..Allergy::default()
    };
    for er in obs.children("entryRelationship") {
        let Some(o) = er.child("observation") else {
            continue;
        };
        if is_status_observation(o, 28) {
            a.status = o.child("value").and_then(status_name);
        } else if is_severity(o) {
            a.severity = value_code(o);
        } else if entry_templates(o).contains(&9) || er.attr("typeCode") == Some("MFST") {
            a.reactions.push(Reaction {
                code: value_code(o),
                severity: related(o, "observation")
                    .find(|s| is_severity(s))
                    .and_then(value_code),
            });
        }
    }
    a
}

fn drug(sa: &Node) -> (Option<Code>, Option<String>) {
    let material = sa.find(&["consumable", "manufacturedProduct", "manufacturedMaterial"]);
    let drug = material.and_then(|m| m.child("code")).map(code);
    let name = material
        .and_then(|m| m.child("name"))
        .and_then(Node::all_text)
        .or_else(|| {
            drug.as_ref()
                .and_then(|d| d.original_text.clone().or_else(|| d.display_name.clone()))
        });
    (drug, name)
}

fn frequency(et: &Node) -> Option<String> {
    let kind = et.attr("type").map(|t| t.rsplit(':').next().unwrap_or(t));
    match kind {
        Some("PIVL_TS") => {
            let p = et.child("period")?;
            let v = p.attr_string("value")?;
            let unit = p.attr_string("unit").unwrap_or_default();
            Some(every(&v, &unit, et.is_true("institutionSpecified")))
        }
        Some("EIVL_TS") => et
            .child("event")
            .and_then(|e| e.attr_string("code"))
            .map(|c| event_timing(&c)),
        _ => None,
    }
}

/// A `PIVL_TS` period in words: `0.3333 d` is "every 8 hours", `12 h` with
/// `institutionSpecified` is "twice a day" (the institution picks the hours). Units UCUM.
fn every(value: &str, unit: &str, institution_specified: bool) -> String {
    let hours_per = |u: &str| -> Option<f64> {
        Some(match u {
            "min" => 1.0 / 60.0,
            "h" => 1.0,
            "d" => 24.0,
            "wk" => 24.0 * 7.0,
            "mo" => 24.0 * 30.0,
            _ => return None,
        })
    };
    let (Ok(n), Some(per)) = (value.trim().parse::<f64>(), hours_per(unit.trim())) else {
        return format!("every {value} {unit}").trim_end().to_owned();
    };
    let hours = n * per;
    if unit.trim() == "mo" && n.fract() == 0.0 && n >= 1.0 {
        return if n == 1.0 {
            "every month".into()
        } else {
            format!("every {n} months")
        };
    }
    if !(hours.is_finite() && hours > 0.0) {
        return format!("every {value} {unit}").trim_end().to_owned();
    }
    // Senders write a third of a day as 0.3333 or 0.33: round to the nearest minute first.
    let minutes = (hours * 60.0).round();
    let whole = |x: f64, step: f64| (x / step - (x / step).round()).abs() < 1e-6;
    let plural = |n: f64, one: &str, many: &str| {
        if (n - 1.0).abs() < 1e-9 {
            format!("every {one}")
        } else {
            format!("every {} {many}", n.round() as u64)
        }
    };
    if institution_specified && minutes <= 24.0 * 60.0 && whole(24.0 * 60.0, minutes) {
        return match (24.0 * 60.0 / minutes).round() as u64 {
            1 => "once a day".into(),
            2 => "twice a day".into(),
            n => format!("{n} times a day"),
        };
    }
    let (m, h) = (minutes, minutes / 60.0);
    if m < 60.0 || !whole(m, 60.0) {
        plural(m, "minute", "minutes")
    } else if h < 24.0 || !whole(h, 24.0) {
        plural(h, "hour", "hours")
    } else if whole(h, 24.0 * 7.0) && h >= 24.0 * 7.0 {
        plural(h / (24.0 * 7.0), "week", "weeks")
    } else {
        plural(h / 24.0, "day", "days")
    }
}

/// `EIVL_TS` event codes (HL7 TimingEvent) in words.
fn event_timing(code: &str) -> String {
    match code {
        "AC" => "before meals",
        "ACM" => "before breakfast",
        "ACD" => "before lunch",
        "ACV" => "before dinner",
        "PC" => "after meals",
        "PCM" => "after breakfast",
        "PCD" => "after lunch",
        "PCV" => "after dinner",
        "C" => "with meals",
        "CM" => "with breakfast",
        "CD" => "with lunch",
        "CV" => "with dinner",
        "HS" => "at bedtime",
        "WAKE" => "on waking",
        "IC" => "between meals",
        "ICM" => "between breakfast and lunch",
        "ICD" => "between lunch and dinner",
        "ICV" => "between dinner and bedtime",
        other => return format!("at event {other}"),
    }
    .to_owned()
}

fn medication(sa: &Node) -> Medication {
    let (drug, drug_name) = drug(sa);
    let mut m = Medication {
        ids: ids(sa),
        mood_code: sa.attr_string("moodCode"),
        status: status(sa),
        negated: sa.is_true("negationInd"),
        drug,
        drug_name,
        route: sa.child("routeCode").map(code),
        form: sa.child("administrationUnitCode").map(code),
        ..Medication::default()
    };
    for et in sa.children("effectiveTime") {
        if let Some(f) = frequency(et) {
            m.frequency.get_or_insert(f);
        } else if m.start.is_none() && m.end.is_none() {
            (m.start, m.end) = period(Some(et));
        }
    }
    if let Some(dose) = sa.child("doseQuantity") {
        m.dose_value = dose
            .attr_string("value")
            .or_else(|| dose.child("low").and_then(|l| l.attr_string("value")));
        m.dose_unit = dose.attr_string("unit");
    }
    m
}

fn immunization(sa: &Node) -> Immunization {
    let material = sa.find(&["consumable", "manufacturedProduct", "manufacturedMaterial"]);
    Immunization {
        ids: ids(sa),
        status: status(sa),
        negated: sa.is_true("negationInd"),
        time: sa.child("effectiveTime").and_then(point_time),
        vaccine: material.and_then(|m| m.child("code")).map(code),
        lot_number: material
            .and_then(|m| m.child("lotNumberText"))
            .and_then(Node::all_text),
        manufacturer: sa
            .find(&[
                "consumable",
                "manufacturedProduct",
                "manufacturerOrganization",
                "name",
            ])
            .and_then(Node::all_text),
        route: sa.child("routeCode").map(code),
        dose_value: sa
            .child("doseQuantity")
            .and_then(|d| d.attr_string("value")),
        dose_unit: sa.child("doseQuantity").and_then(|d| d.attr_string("unit")),
        refusal_reason: related(sa, "observation")
            .find(|o| entry_templates(o).contains(&53))
            .and_then(|o| o.child("code"))
            .map(code),
    }
}

fn observation(obs: &Node) -> Observation {
    let range = obs.find(&["referenceRange", "observationRange"]).map(|r| {
        let v = r.child("value");
        let bound = |n: &str| v.and_then(|v| v.child(n));
        // A range given as a string (`<value xsi:type="ST">negative</value>`) is the range.
        let as_text = v
            .filter(|v| v.attr("type").is_some_and(|t| t.ends_with("ST")))
            .and_then(Node::all_text);
        ReferenceRange {
            text: r.child("text").and_then(Node::all_text).or(as_text),
            low: bound("low").and_then(|b| b.attr_string("value")),
            high: bound("high").and_then(|b| b.attr_string("value")),
            unit: bound("low")
                .or(bound("high"))
                .and_then(|b| b.attr_string("unit")),
        }
    });
    let mut name = obs.child("code").map(code);
    // Some senders name a result only in the observation's own <text> (resolved from the
    // narrative like originalText is).
    if let Some(c) = name.as_mut().filter(|c| c.name(&[]).is_none()) {
        c.original_text = obs.child("text").and_then(Node::all_text);
    }
    Observation {
        ids: ids(obs),
        code: name,
        status: status(obs),
        time: obs.child("effectiveTime").and_then(point_time),
        value: first_value(obs),
        interpretations: obs.children("interpretationCode").map(code).collect(),
        reference_range: range,
    }
}

fn panel(node: &Node) -> Panel {
    if node.name == "observation" {
        return Panel {
            observations: vec![observation(node)],
            ..Panel::default()
        };
    }
    Panel {
        ids: ids(node),
        code: node.child("code").map(code),
        status: status(node),
        time: node.child("effectiveTime").and_then(point_time),
        observations: node
            .children("component")
            .filter_map(|c| c.child("observation"))
            .map(observation)
            .collect(),
    }
}

fn procedure(node: &Node) -> Procedure {
    let (start, end) = period(node.child("effectiveTime"));
    Procedure {
        entry_type: node.name.clone(),
        ids: ids(node),
        mood_code: node.attr_string("moodCode"),
        code: node.child("code").map(code),
        status: status(node),
        start,
        end,
        target_site: node.child("targetSiteCode").map(code),
        performers: node.children("performer").map(participant).collect(),
    }
}

fn encounter(node: &Node) -> Encounter {
    let (start, end) = period(node.child("effectiveTime"));
    let mut diagnoses = Vec::new();
    for er in node.children("entryRelationship") {
        if let Some(act) = er.child("act") {
            let is_dx = entry_templates(act).contains(&80)
                || act.child("code").and_then(|c| c.attr("code")) == Some("29308-4");
            if is_dx {
                diagnoses.extend(related(act, "observation").filter_map(value_code));
            }
        } else if let Some(obs) = er.child("observation") {
            if entry_templates(obs).contains(&4) {
                diagnoses.extend(value_code(obs));
            }
        }
    }
    Encounter {
        ids: ids(node),
        code: node.child("code").map(code),
        status: status(node),
        start,
        end,
        location: node
            .children("participant")
            .filter(|p| p.attr("typeCode") == Some("LOC"))
            .find_map(|p| p.find(&["participantRole", "playingEntity", "name"]))
            .and_then(Node::all_text),
        performers: node.children("performer").map(participant).collect(),
        diagnoses,
    }
}

fn social(obs: &Node, templates: &[u32]) -> SocialHistory {
    let (start, end) = period(obs.child("effectiveTime"));
    let observation_type = if templates.contains(&78) {
        "smoking_status"
    } else if templates.contains(&85) {
        "tobacco_use"
    } else {
        "observation"
    };
    SocialHistory {
        observation_type: observation_type.into(),
        ids: ids(obs),
        code: obs.child("code").map(code),
        status: status(obs),
        value: first_value(obs),
        start,
        end,
    }
}

fn planned(node: &Node) -> PlannedItem {
    let (start, end) = period(node.child("effectiveTime"));
    let entry_type = match node.name.as_str() {
        "substanceAdministration" => "substance_administration".to_string(),
        other => other.to_string(),
    };
    let what = match node.name.as_str() {
        "substanceAdministration" => drug(node).0,
        "supply" => node
            .find(&[
                "product",
                "manufacturedProduct",
                "manufacturedMaterial",
                "code",
            ])
            .map(code),
        _ => None,
    };
    PlannedItem {
        entry_type,
        mood_code: node.attr_string("moodCode"),
        ids: ids(node),
        code: what.or_else(|| node.child("code").map(code)),
        status: status(node),
        start,
        end,
    }
}

fn family(org: &Node) -> FamilyHistory {
    let subject = org.find(&["subject", "relatedSubject"]);
    let person = subject.and_then(|s| s.child("subject"));
    FamilyHistory {
        ids: ids(org),
        relation: subject.and_then(|s| s.child("code")).map(code),
        gender: person
            .and_then(|p| p.child("administrativeGenderCode"))
            .map(code),
        birth_time: person
            .and_then(|p| p.child("birthTime"))
            .and_then(|b| b.attr("value"))
            .map(ts),
        conditions: org
            .children("component")
            .filter_map(|c| c.child("observation"))
            .map(|obs| {
                let age = related(obs, "observation").find(|o| {
                    entry_templates(o).contains(&31)
                        || o.child("code").and_then(|c| c.attr("code")) == Some("445518008")
                });
                let age_value = age.and_then(|a| a.child("value"));
                FamilyCondition {
                    code: value_code(obs),
                    onset_age: age_value.and_then(|v| v.attr_string("value")),
                    onset_age_unit: age_value.and_then(|v| v.attr_string("unit")),
                    cause_of_death: related(obs, "observation").any(|o| {
                        entry_templates(o).contains(&47)
                            || o.child("code").and_then(|c| c.attr("code")) == Some("419620001")
                    }),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod frequency_tests {
    use super::every;

    #[test]
    fn periods_read_as_people_say_them() {
        assert_eq!(every("0.3333", "d", false), "every 8 hours");
        assert_eq!(every("8", "h", false), "every 8 hours");
        assert_eq!(every("12", "h", true), "twice a day");
        assert_eq!(every("8", "h", true), "3 times a day");
        assert_eq!(every("1", "d", false), "every day");
        assert_eq!(every("1", "wk", false), "every week");
        assert_eq!(every("2", "wk", false), "every 2 weeks");
        assert_eq!(every("30", "min", false), "every 30 minutes");
        assert_eq!(every("1.5", "h", false), "every 90 minutes");
        assert_eq!(every("3", "mo", false), "every 3 months");
        assert_eq!(every("x", "d", false), "every x d");
        assert_eq!(every("2", "furlongs", false), "every 2 furlongs");
    }
}

#[cfg(test)]
mod tests {
    use super::ts;

    #[test]
    fn hl7_timestamps_become_iso() {
        assert_eq!(ts("1970"), "1970");
        assert_eq!(ts("197005"), "1970-05");
        assert_eq!(ts("19700501"), "1970-05-01");
        assert_eq!(ts("20240102143000-0500"), "2024-01-02T14:30:00-05:00");
        assert_eq!(ts("202401021430+0100"), "2024-01-02T14:30+01:00");
        assert_eq!(ts("20240102143000.123"), "2024-01-02T14:30:00.123");
        assert_eq!(ts("not a date"), "not a date");
        assert_eq!(ts("2024-01-02"), "2024-01-02");
    }
}
