//! Streaming C-CDA extractor.
//!
//! The document is walked once with [`SafeReader`]. The body structure (component / section /
//! text) is followed event by event; each header block and each `entry` is small and
//! self-contained, so it is captured as a [`Node`] and interpreted on its own. Entries are read from
//! their coded form, never from the narrative tables, which real senders shape inconsistently.
//!
//! Tolerance rule: anything missing or nulled becomes `None`/empty; only unsafe or unparsable XML is
//! an error.
//!
//! `mod.rs` finds the root and drives the walk; `encoding` maps legacy single-byte input to UTF-8;
//! `body` follows sections and narrative; `header` reads the header blocks; `datatypes` the HL7
//! data types both use; `classify` names document and section kinds; `entries` reads clinical
//! statements; `templates` names the template ids they dispatch on.

mod body;
mod classify;
mod datatypes;
mod encoding;
mod entries;
mod header;
mod templates;

use openssl::sha::sha256;

use super::error::IngestError;
use super::limits::Limits;
use super::model::*;
use super::xml::{local_name, unexpected_eof, Ev, SafeReader};
use body::read_body_component;
use classify::classify_document;
use encoding::transcode_legacy;
use entries::drop_health_concern_duplicates;
use header::read_header_node;

const HL7_V3_NS: &str = "urn:hl7-org:v3";
pub(super) const LOINC: &str = "2.16.840.1.113883.6.1";

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
                    read_header_node(&mut doc, node.root());
                }
            }
            Ev::Empty(e) => read_header_node(&mut doc, r.node(&e)?.root()),
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

pub(crate) use crate::util::hex;
