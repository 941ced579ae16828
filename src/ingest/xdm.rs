//! IHE XDM (zip) unpacking, entirely in memory.
//!
//! Entry names are only ever used as keys into the archive, never as file-system paths, but the
//! unsafe ones are still refused: an archive that carries them is hostile or broken, and the
//! documents it references cannot be trusted to be the ones the sender meant.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use openssl::sha::sha1;
use zip::ZipArchive;

use super::ccda::hex;
use super::error::IngestError;
use super::limits::Limits;
use super::xml::{Ev, Node, SafeReader};

/// Below this size a high compression ratio is normal (a page of spaces) and harmless.
const RATIO_FLOOR_BYTES: u64 = 64 * 1024;

/// One document listed in METADATA.XML, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmDocument {
    /// The URI slot as written in the metadata.
    pub uri: String,
    /// The zip entry the URI resolved to.
    pub path: String,
    pub mime_type: Option<String>,
    pub bytes: Vec<u8>,
    /// ExtrinsicObject `id` (the entryUUID, usually `urn:uuid:...`).
    pub entry_uuid: Option<String>,
    /// XDSDocumentEntry.uniqueId.
    pub unique_id: Option<String>,
    pub title: Option<String>,
    pub creation_time: Option<String>,
    pub source_patient_id: Option<String>,
    pub source_patient_info: Vec<String>,
    /// SHA-1 hex from the metadata, when given (already verified).
    pub hash: Option<String>,
    /// Size from the metadata, when given (already verified).
    pub size: Option<u64>,
}

const UNIQUE_ID_SCHEME: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";

pub fn unpack(bytes: &[u8], limits: &Limits) -> Result<Vec<XdmDocument>, IngestError> {
    // The zip crate indexes entries by name and silently keeps one of two identical names, so
    // duplicates must be found in the raw central directory before it ever sees the archive.
    let raw_names = central_directory_names(bytes)?;
    if raw_names.len() > limits.max_zip_entries {
        return Err(IngestError::ZipTooManyEntries {
            limit: limits.max_zip_entries,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for raw in &raw_names {
        let name = String::from_utf8_lossy(raw).into_owned();
        if !seen.insert(name.to_lowercase()) {
            return Err(IngestError::ZipDuplicate { name });
        }
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| IngestError::MalformedZip(e.to_string()))?;
    if archive.len() != raw_names.len() {
        return Err(IngestError::MalformedZip(
            "central directory entry count is inconsistent".into(),
        ));
    }

    // Pass 1: judge every entry from the central directory before inflating anything.
    let mut by_lower_name: HashMap<String, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut declared_total = 0u64;
    for index in 0..archive.len() {
        let file = archive
            .by_index_raw(index)
            .map_err(|e| IngestError::MalformedZip(e.to_string()))?;
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        check_name(&name)?;
        if file.is_symlink() {
            return Err(IngestError::ZipSymlink { name });
        }
        by_lower_name.insert(name.to_lowercase(), index);
        names.push(name);
        if file.is_dir() {
            continue;
        }
        declared_total = declared_total.saturating_add(file.size());
        if declared_total > limits.max_zip_total_bytes {
            return Err(IngestError::ZipTooLarge {
                limit: limits.max_zip_total_bytes,
            });
        }
        check_ratio(file.size(), file.compressed_size(), limits)?;
    }

    let metadata_indexes: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let lower = n.to_lowercase();
            lower == "metadata.xml" || lower.ends_with("/metadata.xml")
        })
        .map(|(i, _)| i)
        .collect();
    if metadata_indexes.is_empty() {
        return Err(IngestError::XdmNoMetadata);
    }

    // Pass 2: read what the metadata references, re-checking limits on the actual bytes since the
    // central directory sizes are attacker-controlled.
    let mut budget = Budget {
        remaining: limits.max_zip_total_bytes,
        limits,
    };
    let mut out = Vec::new();
    for meta_index in metadata_indexes {
        let meta_name = names[meta_index].clone();
        let folder = match meta_name.rfind('/') {
            Some(i) => meta_name[..i].to_string(),
            None => String::new(),
        };
        let meta_bytes = budget.read(&mut archive, meta_index)?;
        for entry in parse_metadata(&meta_bytes, limits)? {
            let uri = entry
                .uri
                .clone()
                .ok_or_else(|| IngestError::XdmMissingDocument {
                    uri: format!(
                        "(no URI slot on {})",
                        entry.entry_uuid.as_deref().unwrap_or("ExtrinsicObject")
                    ),
                })?;
            let resolved = resolve(&folder, &uri)
                .and_then(|p| by_lower_name.get(&p.to_lowercase()).copied())
                .ok_or_else(|| IngestError::XdmMissingDocument { uri: uri.clone() })?;
            let data = budget.read(&mut archive, resolved)?;
            if let Some(size) = entry.size {
                if size != data.len() as u64 {
                    return Err(IngestError::XdmSizeMismatch { uri });
                }
            }
            if let Some(hash) = &entry.hash {
                if !hash.eq_ignore_ascii_case(&hex(&sha1(&data))) {
                    return Err(IngestError::XdmHashMismatch { uri });
                }
            }
            out.push(XdmDocument {
                uri,
                path: names[resolved].clone(),
                mime_type: entry.mime_type,
                bytes: data,
                entry_uuid: entry.entry_uuid,
                unique_id: entry.unique_id,
                title: entry.title,
                creation_time: entry.creation_time,
                source_patient_id: entry.source_patient_id,
                source_patient_info: entry.source_patient_info,
                hash: entry.hash,
                size: entry.size,
            });
        }
    }
    Ok(out)
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Raw entry names from the central directory, in order, including duplicates.
fn central_directory_names(bytes: &[u8]) -> Result<Vec<Vec<u8>>, IngestError> {
    let malformed = |what: &str| IngestError::MalformedZip(what.to_string());
    // The end-of-central-directory record is 22 bytes plus a comment of at most 65535.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| malformed("no end of central directory record"))?;
    let mut count = le16(bytes, eocd + 10).ok_or_else(|| malformed("truncated EOCD"))?;
    let mut cd_size = le32(bytes, eocd + 12).ok_or_else(|| malformed("truncated EOCD"))?;
    let mut directory_end = eocd as u64;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF {
        // Zip64: the real values live in the zip64 end record named by the locator just before.
        let locator = eocd
            .checked_sub(20)
            .filter(|&l| bytes[l..].starts_with(b"PK\x06\x07"))
            .ok_or_else(|| malformed("zip64 locator missing"))?;
        let record =
            le64(bytes, locator + 8).ok_or_else(|| malformed("truncated zip64 locator"))?;
        let record = usize::try_from(record).map_err(|_| malformed("zip64 offset"))?;
        if !bytes
            .get(record..)
            .is_some_and(|r| r.starts_with(b"PK\x06\x06"))
        {
            return Err(malformed("zip64 end record missing"));
        }
        count = le64(bytes, record + 32).ok_or_else(|| malformed("truncated zip64 record"))?;
        cd_size = le64(bytes, record + 40).ok_or_else(|| malformed("truncated zip64 record"))?;
        directory_end = record as u64;
    }
    // Measured back from the end record, like the zip crate does, so prepended data is tolerated.
    let mut at = directory_end
        .checked_sub(cd_size)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| malformed("central directory offset"))?;
    // Each header is at least 46 bytes, which bounds `count` by the input size.
    if count > (bytes.len() / 46) as u64 {
        return Err(malformed(
            "central directory entry count exceeds archive size",
        ));
    }
    let mut names = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if !bytes
            .get(at..)
            .is_some_and(|r| r.starts_with(b"PK\x01\x02"))
        {
            return Err(malformed("bad central directory header"));
        }
        let header =
            |off: usize| le16(bytes, at + off).ok_or_else(|| malformed("truncated header"));
        let (name_len, extra_len, comment_len) = (header(28)?, header(30)?, header(32)?);
        let name_start = at + 46;
        let name = bytes
            .get(name_start..name_start + name_len as usize)
            .ok_or_else(|| malformed("truncated entry name"))?;
        names.push(name.to_vec());
        at = name_start + (name_len + extra_len + comment_len) as usize;
    }
    Ok(names)
}

fn check_name(name: &str) -> Result<(), IngestError> {
    let bad = |_: ()| IngestError::ZipTraversal {
        name: name.to_string(),
    };
    let bytes = name.as_bytes();
    let drive_letter = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if name.is_empty()
        || name.contains('\\')
        || name.contains('\0')
        || name.starts_with('/')
        || drive_letter
        || name.contains(':')
        || name.split('/').any(|c| c == "..")
    {
        return Err(bad(()));
    }
    Ok(())
}

fn check_ratio(size: u64, compressed: u64, limits: &Limits) -> Result<(), IngestError> {
    if size <= RATIO_FLOOR_BYTES {
        return Ok(());
    }
    let ratio = size / compressed.max(1);
    if ratio > limits.max_zip_ratio {
        return Err(IngestError::ZipBomb { ratio });
    }
    Ok(())
}

struct Budget<'l> {
    remaining: u64,
    limits: &'l Limits,
}

impl Budget<'_> {
    fn read(
        &mut self,
        archive: &mut ZipArchive<Cursor<&[u8]>>,
        index: usize,
    ) -> Result<Vec<u8>, IngestError> {
        let file = archive
            .by_index(index)
            .map_err(|e| IngestError::MalformedZip(e.to_string()))?;
        let compressed = file.compressed_size();
        let ratio_cap = compressed
            .saturating_mul(self.limits.max_zip_ratio)
            .max(RATIO_FLOOR_BYTES);
        let cap = self.remaining.min(ratio_cap);
        let mut data = Vec::new();
        // One byte past the cap tells "exactly at the limit" from "over it" without trusting the
        // declared size.
        file.take(cap + 1)
            .read_to_end(&mut data)
            .map_err(|e| IngestError::MalformedZip(e.to_string()))?;
        let got = data.len() as u64;
        if got > cap {
            if got > self.remaining {
                return Err(IngestError::ZipTooLarge {
                    limit: self.limits.max_zip_total_bytes,
                });
            }
            return Err(IngestError::ZipBomb {
                ratio: got / compressed.max(1),
            });
        }
        self.remaining -= got;
        Ok(data)
    }
}

/// Lexically joins the metadata folder and a URI slot. `None` when the URI climbs out of the
/// archive; such a document simply does not exist in it.
fn resolve(folder: &str, uri: &str) -> Option<String> {
    let uri = uri.trim();
    if uri.contains("://") || uri.starts_with('/') || uri.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in uri.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

#[derive(Debug, Default)]
struct MetadataEntry {
    entry_uuid: Option<String>,
    unique_id: Option<String>,
    title: Option<String>,
    mime_type: Option<String>,
    uri: Option<String>,
    size: Option<u64>,
    hash: Option<String>,
    creation_time: Option<String>,
    source_patient_id: Option<String>,
    source_patient_info: Vec<String>,
}

fn parse_metadata(bytes: &[u8], limits: &Limits) -> Result<Vec<MetadataEntry>, IngestError> {
    let mut r = SafeReader::new(bytes, limits);
    let root = loop {
        match r.next()? {
            Ev::Start(e) => break r.subtree(&e)?,
            Ev::Empty(_) => return Err(IngestError::XdmBadMetadata("empty document".into())),
            Ev::Text(_) | Ev::End(_) => continue,
            Ev::Eof => return Err(IngestError::XdmBadMetadata("no root element".into())),
        }
    };
    r.drain()?;
    let mut objects = Vec::new();
    collect_named(root.root(), "ExtrinsicObject", &mut objects);
    if objects.is_empty() {
        return Err(IngestError::XdmBadMetadata("no ExtrinsicObject".into()));
    }
    Ok(objects.into_iter().map(metadata_entry).collect())
}

fn collect_named<'t>(node: Node<'t>, name: &str, out: &mut Vec<Node<'t>>) {
    for c in node.all_children() {
        if c.name() == name {
            out.push(c);
        } else {
            collect_named(c, name, out);
        }
    }
}

fn slot_values(obj: Node, name: &str) -> Vec<String> {
    obj.children("Slot")
        .filter(|s| s.attr("name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .flat_map(|s| s.children("ValueList"))
        .flat_map(|vl| vl.children("Value"))
        .filter_map(|v| {
            let t = v.text().trim();
            (!t.is_empty()).then(|| t.to_string())
        })
        .collect()
}

/// XDS splits long URIs across values prefixed `1|`, `2|`...; a plain single value is the common
/// case.
fn join_uri(values: Vec<String>) -> Option<String> {
    let mut numbered: Vec<(u32, String)> = Vec::new();
    for v in &values {
        match v
            .split_once('|')
            .and_then(|(n, rest)| Some((n.parse().ok()?, rest)))
        {
            Some((n, rest)) => numbered.push((n, rest.to_string())),
            None => return values.into_iter().next(),
        }
    }
    numbered.sort_by_key(|(n, _)| *n);
    let joined: String = numbered.into_iter().map(|(_, s)| s).collect();
    (!joined.is_empty()).then_some(joined)
}

fn metadata_entry(obj: Node) -> MetadataEntry {
    let first = |name: &str| slot_values(obj, name).into_iter().next();
    MetadataEntry {
        entry_uuid: obj.attr_string("id"),
        unique_id: obj
            .children("ExternalIdentifier")
            .find(|e| e.attr("identificationScheme") == Some(UNIQUE_ID_SCHEME))
            .and_then(|e| e.attr_string("value")),
        title: obj
            .find(&["Name", "LocalizedString"])
            .and_then(|l| l.attr_string("value")),
        mime_type: obj.attr_string("mimeType"),
        uri: join_uri(slot_values(obj, "URI")),
        size: first("size").and_then(|s| s.parse().ok()),
        hash: first("hash"),
        creation_time: first("creationTime"),
        source_patient_id: first("sourcePatientId"),
        source_patient_info: slot_values(obj, "sourcePatientInfo"),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_name, resolve};

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "C:/x",
            "a\\b",
            "c:x",
            "",
            "a/..",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["IHE_XDM/SUBSET01/DOC0001.XML", "README.TXT", "a/b..c/x"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn uris_resolve_relative_to_metadata_folder() {
        assert_eq!(
            resolve("IHE_XDM/SUBSET01", "DOC0001.XML").as_deref(),
            Some("IHE_XDM/SUBSET01/DOC0001.XML")
        );
        assert_eq!(
            resolve("IHE_XDM/SUBSET01", "../SUBSET02/a.xml").as_deref(),
            Some("IHE_XDM/SUBSET02/a.xml")
        );
        assert_eq!(resolve("", "../../x"), None);
    }
}
