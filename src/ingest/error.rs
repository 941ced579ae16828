//! Every reason ingestion can refuse an input, one variant each, so callers and tests can tell a
//! hostile document from a merely broken one without string matching.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum IngestError {
    /// Any `<!DOCTYPE`: C-CDA never needs one, and refusing it outright closes billion-laughs and
    /// XXE without having to reason about which declarations are harmless.
    #[error("XML document type declarations (DTD) are not accepted")]
    DtdForbidden,
    /// An entity reference other than the five XML predefined ones or a character reference. With
    /// DTDs refused it can only be an attempt to smuggle an external or undeclared entity.
    #[error("reference to undeclared or external entity &{name};")]
    ExternalEntity { name: String },
    #[error("XML nesting deeper than {depth} elements")]
    TooDeep { depth: usize },
    #[error("XML document has more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("input is {size} bytes, limit is {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("XML text node of {size} bytes exceeds limit of {limit}")]
    TextTooLarge { size: u64, limit: u64 },
    #[error("not a CDA document: root element is {root:?}{}", namespace_hint(.root))]
    NotCda { root: String },
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    #[error("invalid base64 in nonXMLBody: {0}")]
    BadBase64(String),

    #[error("malformed zip archive: {0}")]
    MalformedZip(String),
    #[error("unsafe zip entry name {name:?}")]
    ZipTraversal { name: String },
    #[error("zip entry {name:?} is a symbolic link")]
    ZipSymlink { name: String },
    #[error("duplicate zip entry name {name:?} (names are compared case-insensitively)")]
    ZipDuplicate { name: String },
    #[error("zip archive has too many entries (limit {limit})")]
    ZipTooManyEntries { limit: usize },
    #[error("zip entry compression ratio {ratio}:1 exceeds the limit")]
    ZipBomb { ratio: u64 },
    #[error("zip archive uncompressed content exceeds {limit} bytes")]
    ZipTooLarge { limit: u64 },
    #[error("XDM archive has no METADATA.XML")]
    XdmNoMetadata,
    #[error("XDM metadata is not a usable ebRIM submission: {0}")]
    XdmBadMetadata(String),
    #[error("XDM document {uri:?} does not match the SHA-1 declared in METADATA.XML")]
    XdmHashMismatch { uri: String },
    #[error("XDM document {uri:?} does not match the size declared in METADATA.XML")]
    XdmSizeMismatch { uri: String },
    #[error("XDM document {uri:?} listed in METADATA.XML is not in the archive")]
    XdmMissingDocument { uri: String },
}

/// A `ClinicalDocument` root that is refused can only be in the wrong namespace (or none); saying
/// so spares the sender a hunt, since the element name looks right.
fn namespace_hint(root: &str) -> &'static str {
    if root.rsplit(':').next() == Some("ClinicalDocument") {
        " outside the HL7 v3 namespace (xmlns=\"urn:hl7-org:v3\")"
    } else {
        ""
    }
}

impl From<quick_xml::Error> for IngestError {
    fn from(e: quick_xml::Error) -> Self {
        match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            )) => IngestError::ExternalEntity { name },
            other => IngestError::MalformedXml(other.to_string()),
        }
    }
}

impl From<quick_xml::events::attributes::AttrError> for IngestError {
    fn from(e: quick_xml::events::attributes::AttrError) -> Self {
        IngestError::MalformedXml(e.to_string())
    }
}

impl From<quick_xml::encoding::EncodingError> for IngestError {
    fn from(e: quick_xml::encoding::EncodingError) -> Self {
        IngestError::MalformedXml(e.to_string())
    }
}

impl IngestError {
    /// The variant's name (`ZipTraversal`, `DtdForbidden`...), for logs: the full message may
    /// quote names from inside the document or zip, which stay in the store, not the journal.
    pub fn kind(&self) -> String {
        format!("{self:?}")
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}
