//! A message to send, built from what a person gave (`directd send`'s flags or the web console's
//! Send form) and checked the same way for both: valid and distinct recipient addresses, a
//! one-line subject, a C-CDA that ingestion would accept, and a readable body first.

use crate::message::{OutPart, OutRecipient, PartKind, RecipientKind};

/// Largest file either front end queues; HISPs refuse far smaller messages anyway.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// A file given to attach: its name (as the receiver will see it) and bytes.
pub struct GivenFile {
    pub name: Option<String>,
    pub data: Vec<u8>,
}

/// What a person asked to send, before checking.
#[derive(Default)]
pub struct Draft {
    pub from: String,
    /// (field name for messages, address), To before Cc.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub ccda: Option<GivenFile>,
    /// A document directd built (`send --pdf`'s Unstructured Document), sent as a C-CDA part.
    pub document: Option<GivenFile>,
    pub attach: Vec<GivenFile>,
}

/// The checked message: normalised sender, recipients, and the parts in sending order.
pub struct Composed {
    pub from: String,
    pub recipients: Vec<OutRecipient>,
    pub parts: Vec<OutPart>,
}

/// Refuses what ingestion would refuse (see [`crate::ingest::check_ccda`]), with its reason.
pub fn check_ccda(data: &[u8]) -> Result<(), String> {
    crate::ingest::check_ccda(data, &crate::ingest::Limits::default()).map_err(|e| e.to_string())
}

fn check_address(field: &str, addr: &str) -> Result<String, String> {
    let a = crate::address::normalize(addr);
    if crate::address::is_valid(&a) {
        Ok(a)
    } else {
        Err(format!("{field} {addr:?} is not a valid Direct address"))
    }
}

/// Checks a draft; the error is a sentence naming what to fix. `fields` names the inputs in
/// the front end's words: (from, to, cc, attach, subject).
pub fn compose(d: Draft, fields: [&str; 5]) -> Result<Composed, String> {
    let [from_f, to_f, cc_f, attach_f, subject_f] = fields;
    let from = check_address(from_f, &d.from)?;
    let mut recipients: Vec<OutRecipient> = Vec::new();
    for (field, list, kind) in [
        (to_f, &d.to, RecipientKind::To),
        (cc_f, &d.cc, RecipientKind::Cc),
    ] {
        for a in list {
            let address = check_address(field, a)?;
            if recipients.iter().any(|r| r.address == address) {
                return Err(format!("{address} is named twice"));
            }
            recipients.push(OutRecipient { address, kind });
        }
    }
    if !recipients.iter().any(|r| r.kind == RecipientKind::To) {
        return Err(format!("give at least one recipient ({to_f})"));
    }
    if d.ccda.is_none() && d.document.is_none() && d.attach.is_empty() && d.body.is_none() {
        return Err("nothing to send: give a C-CDA, a file to attach or a body text".into());
    }
    if d.subject
        .as_deref()
        .is_some_and(|s| s.contains(['\r', '\n']))
    {
        return Err(format!("{subject_f} must be one line"));
    }
    for f in d.ccda.iter().chain(&d.attach).chain(&d.document) {
        if f.data.len() as u64 > MAX_FILE {
            return Err(format!(
                "{}: {} bytes is over the {MAX_FILE}-byte limit",
                f.name.as_deref().unwrap_or("file"),
                f.data.len()
            ));
        }
    }
    // The first part is the message body at the HISP, whatever its type. A document sent
    // first would reach many receivers as a body they cannot show (and some never look past
    // the body), so without a body a short text note goes first, as other phiMail clients do.
    let body = d.body.clone().unwrap_or_else(|| {
        let names: Vec<&str> = d
            .ccda
            .iter()
            .chain(&d.attach)
            .chain(&d.document)
            .filter_map(|f| f.name.as_deref())
            .collect();
        format!("Attached: {}.", names.join(", "))
    });
    let mut parts = vec![OutPart {
        kind: PartKind::Text,
        filename: None,
        data: body.into_bytes(),
    }];
    if let Some(f) = d.ccda {
        let name = f.name.clone().unwrap_or_else(|| "document".into());
        if f.data.starts_with(b"%PDF-") {
            return Err(format!(
                "{name}: is a PDF, not a C-CDA (XML); send it with {attach_f}"
            ));
        }
        check_ccda(&f.data).map_err(|why| format!("{name}: {why}"))?;
        parts.push(OutPart {
            kind: PartKind::Cda,
            filename: f.name,
            data: f.data,
        });
    }
    if let Some(f) = d.document {
        check_ccda(&f.data)
            .map_err(|why| format!("the document built for it fails the C-CDA check: {why}"))?;
        parts.push(OutPart {
            kind: PartKind::Cda,
            filename: f.name,
            data: f.data,
        });
    }
    for f in d.attach {
        parts.push(OutPart {
            kind: PartKind::Raw,
            filename: f.name,
            data: f.data,
        });
    }
    Ok(Composed {
        from,
        recipients,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccda_check() {
        assert!(check_ccda(br#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><id/></ClinicalDocument>"#).is_ok());
        let refused = |data: &[u8], why: &str| {
            let err = check_ccda(data).unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        refused(
            b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><a></b></ClinicalDocument>",
            "malformed",
        );
        refused(b"%PDF-1.4 binary", "");
        refused(b"<!DOCTYPE x [<!ENTITY a 'b'>]><ClinicalDocument/>", "DTD");
        refused(b"<html></html>", "not a CDA");
        // The root name alone is not enough: ingestion also requires the HL7 v3 namespace.
        refused(b"<ClinicalDocument><id/></ClinicalDocument>", "not a CDA");
        refused(
            b"<ClinicalDocument xmlns=\"urn:example:other\"><id/></ClinicalDocument>",
            "not a CDA",
        );
        refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">", "");
        refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/><x/>", "");
    }

    #[test]
    fn drafts_are_checked() {
        let fields = ["from", "to", "cc", "attach", "subject"];
        let draft = |to: &[&str]| Draft {
            from: "a@direct.example.org".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            body: Some("hello".into()),
            ..Draft::default()
        };
        let ok = compose(draft(&["b@direct.example.org"]), fields).unwrap();
        assert_eq!(ok.recipients.len(), 1);
        assert_eq!(ok.parts.len(), 1);
        let err = compose(draft(&["not an address"]), fields).err().unwrap();
        assert!(err.contains("not a valid Direct address"), "{err}");
        let err = compose(draft(&["b@x.org", "B@x.org"]), fields)
            .err()
            .unwrap();
        assert!(err.contains("named twice"), "{err}");
        let err = compose(draft(&[]), fields).err().unwrap();
        assert!(err.contains("at least one recipient"), "{err}");
    }
}
