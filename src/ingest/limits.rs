//! Resource caps applied to every untrusted input. Defaults are sized for real hospital traffic
//! (a large CCD is a few MiB; an XDM rarely holds more than a handful of documents) with wide margin.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest XML document accepted, in bytes.
    pub max_document_bytes: u64,
    /// Deepest element nesting accepted; real C-CDA stays well under 40. It also bounds the
    /// recursion of the fragment walkers, so keep it in the hundreds, not the hundreds of thousands.
    pub max_depth: usize,
    /// Most elements (start + empty tags) in one document.
    pub max_elements: usize,
    /// Largest single text node (an inline base64 PDF is the usual big one).
    pub max_text_bytes: u64,
    /// Most entries in one XDM zip.
    pub max_zip_entries: usize,
    /// Largest total uncompressed size of one XDM zip.
    pub max_zip_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of a single zip entry.
    pub max_zip_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 64 * 1024 * 1024,
            max_depth: 256,
            max_elements: 5_000_000,
            max_text_bytes: 48 * 1024 * 1024,
            max_zip_entries: 1000,
            max_zip_total_bytes: 256 * 1024 * 1024,
            max_zip_ratio: 100,
        }
    }
}
