//! C-CDA and XDM ingestion: bytes in, typed documents out. No I/O and no SQL here; the callers
//! decide where bytes come from (`daemon::ingest` for received attachments, `cli/ingest.rs` for
//! files from disk) and `store::clinical` decides how results are kept.
//!
//! Every input is untrusted. All XML goes through one hardened reader (`xml.rs`) and all zip
//! handling stays in memory (`xdm.rs`); limits are passed explicitly so tests and operators can
//! tighten them.

pub mod ccda;
pub mod error;
pub mod limits;
pub mod model;
pub mod vocab;
pub mod xdm;
mod xml;

pub use error::IngestError;
pub use limits::Limits;
pub use model::Document;
pub use xdm::XdmDocument;

use quick_xml::events::Event;
use quick_xml::Reader;

/// What an attachment is, judged from its content first: senders label C-CDA as
/// `application/octet-stream` or `.txt` often enough that the declared type is only a tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Ccda,
    Xdm,
    Pdf,
    Text,
    Other,
}

pub fn detect(bytes: &[u8], declared_mime: &str, filename: Option<&str>) -> Detected {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Detected::Xdm;
    }
    if bytes.starts_with(b"%PDF-") {
        return Detected::Pdf;
    }
    if root_is_cda(bytes) {
        return Detected::Ccda;
    }
    let mime = declared_mime.trim().to_ascii_lowercase();
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let labelled_text = mime.starts_with("text/plain") || ext.as_deref() == Some("txt");
    if labelled_text && std::str::from_utf8(bytes).is_ok() {
        return Detected::Text;
    }
    Detected::Other
}

/// Looks only at the first element. DTDs are skipped rather than refused here so that a hostile
/// CDA is still routed to the extractor, which reports it as `DtdForbidden`.
fn root_is_cda(bytes: &[u8]) -> bool {
    let mut reader = Reader::from_reader(bytes);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return ccda::is_cda_start(&e).unwrap_or(false)
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(Event::Text(t)) if !t.iter().all(u8::is_ascii_whitespace) => return false,
            Ok(_) => continue,
        }
    }
}

pub fn extract_ccda(bytes: &[u8], limits: &Limits) -> Result<Document, IngestError> {
    ccda::extract(bytes, limits)
}

/// Whether ingestion would accept `bytes` as a C-CDA: the one test both `directd send --ccda`
/// and the ingestion pipeline apply, so nothing can be sent as a C-CDA that a directd receiving
/// it would refuse (a `ClinicalDocument` outside the HL7 v3 namespace, a DTD, malformed XML).
pub fn check_ccda(bytes: &[u8], limits: &Limits) -> Result<(), IngestError> {
    extract_ccda(bytes, limits).map(|_| ())
}

pub fn unpack_xdm(bytes: &[u8], limits: &Limits) -> Result<Vec<XdmDocument>, IngestError> {
    xdm::unpack(bytes, limits)
}

/// One result of [`ingest_bytes`].
#[derive(Debug)]
pub struct Extracted {
    /// The XDM member this came from (metadata and bytes); `None` when it is the attachment itself.
    pub xdm: Option<XdmDocument>,
    pub content: Content,
}

#[derive(Debug)]
pub enum Content {
    Document(Box<Document>),
    /// An XDM member that is not a CDA (typically a PDF); its bytes are in `Extracted::xdm`.
    NotCda(Detected),
    /// An XDM member that failed extraction. The other members are still returned, so one bad
    /// document does not lose the rest of the message.
    Failed(IngestError),
}

/// One attachment in, zero or more extracted documents out. A plain C-CDA yields one; an XDM zip
/// yields one per listed document; PDFs, text and anything else yield none (the caller keeps the
/// attachment as is). A C-CDA with an inline base64 body carries it in
/// `Document::non_xml_body.derived` for the caller to store.
///
/// Errors are about the attachment as a whole: an unsafe or unreadable C-CDA, or an XDM container
/// that is unsafe or fails its integrity checks.
pub fn ingest_bytes(
    bytes: &[u8],
    declared_mime: &str,
    filename: Option<&str>,
    limits: &Limits,
) -> Result<Vec<Extracted>, IngestError> {
    match detect(bytes, declared_mime, filename) {
        Detected::Ccda => Ok(vec![Extracted {
            xdm: None,
            content: Content::Document(Box::new(extract_ccda(bytes, limits)?)),
        }]),
        Detected::Xdm => Ok(unpack_xdm(bytes, limits)?
            .into_iter()
            .map(|member| {
                let mime = member.mime_type.as_deref().unwrap_or("");
                let content = match detect(&member.bytes, mime, Some(&member.path)) {
                    Detected::Ccda => match extract_ccda(&member.bytes, limits) {
                        Ok(doc) => Content::Document(Box::new(doc)),
                        Err(e) => Content::Failed(e),
                    },
                    other => Content::NotCda(other),
                };
                Extracted {
                    xdm: Some(member),
                    content,
                }
            })
            .collect()),
        Detected::Pdf | Detected::Text | Detected::Other => Ok(Vec::new()),
    }
}
