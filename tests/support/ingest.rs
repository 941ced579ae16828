//! C-CDA and XDM fixtures: reading them, and building XDM zips around documents.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

pub fn fixture(kind: &str, name: &str) -> Vec<u8> {
    let path = fixture_dir(kind).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn xml_fixtures(kind: &str) -> Vec<PathBuf> {
    super::expected::fixtures(kind, "xml")
}

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub fn build_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, options).expect("start_file");
        w.write_all(data).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

pub fn sha1_hex(data: &[u8]) -> String {
    directd::util::hex(&openssl::sha::sha1(data))
}

/// One ExtrinsicObject of an XDM METADATA.XML. `None` slots are left out, as in "limited"
/// metadata.
pub struct MetaDoc<'a> {
    pub uri: &'a str,
    pub mime: &'a str,
    pub hash: Option<String>,
    pub size: Option<u64>,
}

impl<'a> MetaDoc<'a> {
    /// Full metadata with the correct hash and size of `data`.
    pub fn full(uri: &'a str, mime: &'a str, data: &[u8]) -> Self {
        MetaDoc {
            uri,
            mime,
            hash: Some(sha1_hex(data)),
            size: Some(data.len() as u64),
        }
    }
}

pub fn metadata_xml(docs: &[MetaDoc<'_>]) -> String {
    let mut objects = String::new();
    for (i, d) in docs.iter().enumerate() {
        let slot = |name: &str, value: &str| {
            format!(
                "<rim:Slot name=\"{name}\"><rim:ValueList><rim:Value>{value}</rim:Value></rim:ValueList></rim:Slot>"
            )
        };
        let mut slots = String::new();
        slots += &slot("creationTime", "20240315103000");
        slots += &slot(
            "sourcePatientId",
            "MRN-424242^^^&amp;2.16.840.1.113883.19.5.99999.2&amp;ISO",
        );
        slots += "<rim:Slot name=\"sourcePatientInfo\"><rim:ValueList><rim:Value>PID-5|Quux^Zelda</rim:Value><rim:Value>PID-7|19700501</rim:Value></rim:ValueList></rim:Slot>";
        if let Some(h) = &d.hash {
            slots += &slot("hash", h);
        }
        if let Some(s) = d.size {
            slots += &slot("size", &s.to_string());
        }
        slots += &slot("URI", d.uri);
        objects += &format!(
            r#"<rim:ExtrinsicObject id="urn:uuid:00000000-0000-0000-0000-00000000000{i}" mimeType="{mime}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
  {slots}
  <rim:Name><rim:LocalizedString value="Document {i}"/></rim:Name>
  <rim:ExternalIdentifier id="ei{i}" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="1.2.3.4.{i}" registryObject="x"/>
</rim:ExtrinsicObject>
"#,
            mime = d.mime
        );
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
<rim:RegistryObjectList>
{objects}<rim:RegistryPackage id="SubmissionSet01"/>
</rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"#
    )
}

/// Rewrites the uncompressed-size field of `name` in both the local header and the central
/// directory, to simulate an archive that lies about its sizes.
pub fn patch_declared_size(zip: &mut [u8], name: &str, new_size: u32) {
    let name = name.as_bytes();
    let mut i = 0;
    while i + 46 <= zip.len() {
        let sig = &zip[i..i + 4];
        if sig == b"PK\x03\x04" {
            let name_len = u16::from_le_bytes([zip[i + 26], zip[i + 27]]) as usize;
            if zip.get(i + 30..i + 30 + name_len) == Some(name) {
                zip[i + 22..i + 26].copy_from_slice(&new_size.to_le_bytes());
            }
        } else if sig == b"PK\x01\x02" {
            let name_len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if zip.get(i + 46..i + 46 + name_len) == Some(name) {
                zip[i + 24..i + 28].copy_from_slice(&new_size.to_le_bytes());
            }
        }
        i += 1;
    }
}

/// Replaces every occurrence of `from` with `to` (same length), e.g. to forge duplicate names the
/// zip writer refuses to produce.
pub fn patch_bytes(zip: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= zip.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
}
