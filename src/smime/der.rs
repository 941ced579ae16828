//! Just enough BER/DER to read the CMS fields rust-openssl does not expose (content-encryption
//! and key-transport algorithms, SignerInfo digests, the certificates carried in a SignedData)
//! and to write an EnvelopedData whose key transport is RSA-OAEP, which `CMS_encrypt` cannot do.
//!
//! The reader accepts BER indefinite lengths because `openssl cms` streams its output that way.
//! Every input is hostile: lengths are checked against the buffer and nesting is capped.

use super::error::SmimeError;

/// Nesting limit for indefinite-length values; real CMS never goes near it.
const MAX_DEPTH: usize = 32;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

pub(crate) mod oid {
    pub(crate) const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    pub(crate) const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
    pub(crate) const ENVELOPED_DATA: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
    pub(crate) const AUTH_ENVELOPED_DATA: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    pub(crate) const AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
    pub(crate) const AES192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
    pub(crate) const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];
    pub(crate) const AES128_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06];
    pub(crate) const AES192_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x1A];
    pub(crate) const AES256_GCM: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2E];
    pub(crate) const DES_EDE3_CBC: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x07];
    pub(crate) const RC2_CBC: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x02];
    pub(crate) const DES_CBC: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x07];
    pub(crate) const RSA_ENCRYPTION: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    pub(crate) const RSAES_OAEP: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x07];
    pub(crate) const MGF1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08];
    pub(crate) const P_SPECIFIED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x09];
    pub(crate) const MESSAGE_DIGEST: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
    pub(crate) const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
    pub(crate) const SIGNING_TIME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05];
    pub(crate) const COUNTERSIGNATURE: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x06];
    pub(crate) const RECEIPT_REQUEST: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x01,
    ];
    pub(crate) const SIGNING_CERTIFICATE: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x0C,
    ];
    pub(crate) const SIGNING_CERTIFICATE_V2: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x2F,
    ];
    pub(crate) const SHA256_WITH_RSA: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    pub(crate) const SHA384_WITH_RSA: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C];
    pub(crate) const SHA512_WITH_RSA: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D];
    pub(crate) const SMIME_CAPABILITIES: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x0F];
    pub(crate) const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
    pub(crate) const MD5: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02, 0x05];
    pub(crate) const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
    pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub(crate) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub(crate) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25];
    pub(crate) const ANY_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25, 0x00];
    pub(crate) const EMAIL_PROTECTION: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
    pub(crate) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
}

/// One decoded value. `content` excludes the end-of-contents octets of an indefinite value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole encoding (identifier, length, content), as found in the input.
    pub raw: &'a [u8],
}

fn malformed(what: &str) -> SmimeError {
    SmimeError::MalformedCms(what.to_string())
}

/// Reads the first value of `input`, returning it and what follows it.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), SmimeError> {
    read_tlv_depth(input, 0)
}

fn read_tlv_depth(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), SmimeError> {
    if depth > MAX_DEPTH {
        return Err(malformed("nesting too deep"));
    }
    let tag = *input.first().ok_or_else(|| malformed("truncated value"))?;
    if tag & 0x1F == 0x1F {
        // CMS never uses high tag numbers; refusing them keeps the reader small.
        return Err(malformed("high tag number"));
    }
    let len_byte = *input.get(1).ok_or_else(|| malformed("truncated length"))?;
    let mut pos = 2usize;
    if len_byte == 0x80 {
        if tag & 0x20 == 0 {
            return Err(malformed("indefinite length on a primitive value"));
        }
        let mut rest = &input[pos..];
        loop {
            if rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
                let content_len = input.len() - pos - rest.len();
                let content = &input[pos..pos + content_len];
                let total = pos + content_len + 2;
                return Ok((
                    Tlv {
                        tag,
                        content,
                        raw: &input[..total],
                    },
                    &input[total..],
                ));
            }
            let (_, after) = read_tlv_depth(rest, depth + 1)?;
            rest = after;
        }
    }
    let len = if len_byte & 0x80 == 0 {
        usize::from(len_byte)
    } else {
        let count = usize::from(len_byte & 0x7F);
        if count > 4 {
            return Err(malformed("length too large"));
        }
        let bytes = input
            .get(pos..pos + count)
            .ok_or_else(|| malformed("truncated length"))?;
        pos += count;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= input.len())
        .ok_or_else(|| malformed("value runs past the end of its container"))?;
    Ok((
        Tlv {
            tag,
            content: &input[pos..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Iterates the children of a constructed value.
pub(crate) struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Children<'a> {
    pub(crate) fn of(tlv: &Tlv<'a>) -> Self {
        Children { rest: tlv.content }
    }

    /// The next child, or an error naming `what` if there is none or it has another tag.
    pub(crate) fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, SmimeError> {
        match self.next_tlv()? {
            Some(t) if t.tag == tag => Ok(t),
            _ => Err(malformed(what)),
        }
    }

    pub(crate) fn next_tlv(&mut self) -> Result<Option<Tlv<'a>>, SmimeError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tlv, rest) = read_tlv(self.rest)?;
        self.rest = rest;
        Ok(Some(tlv))
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }
}

/// Reads an AlgorithmIdentifier, returning the OID content bytes and the raw parameters if any.
pub(crate) fn algorithm(tlv: &Tlv<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>), SmimeError> {
    if tlv.tag != TAG_SEQUENCE {
        return Err(malformed("algorithm identifier is not a SEQUENCE"));
    }
    let mut c = Children::of(tlv);
    let oid = c.expect(TAG_OID, "algorithm identifier without OID")?;
    let params = c.next_tlv()?.map(|p| p.raw.to_vec());
    Ok((oid.content.to_vec(), params))
}

/// Dotted form of an OID, for error messages and reports.
pub(crate) fn oid_to_string(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    let mut first = true;
    for b in oid {
        value = (value << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if first {
                let (a, rest) = if value < 80 {
                    (value / 40, value % 40)
                } else {
                    (2, value - 80)
                };
                parts.push(a.to_string());
                parts.push(rest.to_string());
                first = false;
            } else {
                parts.push(value.to_string());
            }
            value = 0;
        }
    }
    parts.join(".")
}

/// Encodes one DER value with a definite length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Appends the identifier and definite length of a value whose `len` content bytes follow
/// separately, so large contents can be streamed rather than copied into their container.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The encoded size of a value with `len` content bytes.
pub(crate) fn tlv_len(len: usize) -> usize {
    let length_octets = if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    };
    1 + length_octets + len
}

pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// DER SET OF: members sorted by their encoding, as X.690 requires.
pub(crate) fn set_of(mut members: Vec<Vec<u8>>) -> Vec<u8> {
    members.sort();
    tlv(TAG_SET, &members.concat())
}

pub(crate) fn oid_tlv(oid: &[u8]) -> Vec<u8> {
    tlv(TAG_OID, oid)
}

pub(crate) fn small_int(v: u8) -> Vec<u8> {
    tlv(TAG_INTEGER, &[v])
}

/// The issuer Name and serialNumber of a certificate, as encoded in the certificate itself, so a
/// recipient or signer identifier matches byte for byte whatever encoding the CA chose.
pub(crate) fn issuer_and_serial(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SmimeError> {
    let (cert, _) = read_tlv(cert_der)?;
    let mut c = Children::of(&cert);
    let tbs = c.expect(TAG_SEQUENCE, "certificate without TBSCertificate")?;
    let mut t = Children::of(&tbs);
    if t.peek_tag() == Some(0xA0) {
        t.next_tlv()?;
    }
    let serial = t.expect(TAG_INTEGER, "certificate without serial")?;
    t.expect(TAG_SEQUENCE, "certificate without signature algorithm")?;
    let issuer = t.expect(TAG_SEQUENCE, "certificate without issuer")?;
    Ok((issuer.raw.to_vec(), serial.raw.to_vec()))
}

/// The key purpose OIDs of a certificate's extended key usage extension, or `None` when it
/// has none (RFC 5280 §4.2.1.12). The openssl crate offers no reader for it.
pub(crate) fn extended_key_usage(cert_der: &[u8]) -> Result<Option<Vec<Vec<u8>>>, SmimeError> {
    let (cert, _) = read_tlv(cert_der)?;
    let tbs = Children::of(&cert).expect(TAG_SEQUENCE, "certificate without TBSCertificate")?;
    let mut t = Children::of(&tbs);
    let mut extensions = None;
    while let Some(field) = t.next_tlv()? {
        if field.tag == 0xA3 {
            extensions = Some(field);
        }
    }
    let Some(extensions) = extensions else {
        return Ok(None);
    };
    let list = Children::of(&extensions).expect(TAG_SEQUENCE, "extensions are not a SEQUENCE")?;
    let mut exts = Children::of(&list);
    while let Some(ext) = exts.next_tlv()? {
        let mut e = Children::of(&ext);
        let id = e.expect(TAG_OID, "extension without OID")?;
        if id.content != oid::EXT_KEY_USAGE {
            continue;
        }
        let mut value = e
            .next_tlv()?
            .ok_or_else(|| malformed("extension without value"))?;
        if value.tag == 0x01 {
            value = e.expect(TAG_OCTET_STRING, "extension without value")?;
        }
        let (purposes, _) = read_tlv(value.content)?;
        let mut p = Children::of(&purposes);
        let mut out = Vec::new();
        while let Some(purpose) = p.next_tlv()? {
            if purpose.tag != TAG_OID {
                return Err(malformed("extended key usage lists a non-OID"));
            }
            out.push(purpose.content.to_vec());
        }
        return Ok(Some(out));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_indefinite_length() {
        let data = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00, 0xFF];
        let (t, rest) = read_tlv(&data).unwrap();
        assert_eq!(t.tag, 0x30);
        assert_eq!(t.content, &[0x02, 0x01, 0x05]);
        assert_eq!(rest, &[0xFF]);
    }

    #[test]
    fn rejects_overlong() {
        assert!(read_tlv(&[0x30, 0x05, 0x00]).is_err());
        assert!(read_tlv(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut data = Vec::new();
        for _ in 0..10_000 {
            data.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(read_tlv(&data).is_err());
    }

    #[test]
    fn oid_strings() {
        assert_eq!(oid_to_string(oid::SHA256), "2.16.840.1.101.3.4.2.1");
        assert_eq!(oid_to_string(oid::DES_EDE3_CBC), "1.2.840.113549.3.7");
    }

    #[test]
    fn streamed_headers_match_whole_values() {
        for len in [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 20 << 20] {
            let content = vec![1u8; len];
            let whole = tlv(0x80, &content);
            let mut head = Vec::new();
            push_header(&mut head, 0x80, len);
            assert_eq!(&whole[..head.len()], &head[..], "length {len}");
            assert_eq!(tlv_len(len), whole.len(), "length {len}");
        }
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let enc = tlv(TAG_OCTET_STRING, &content);
        let (t, rest) = read_tlv(&enc).unwrap();
        assert_eq!(t.content.len(), 300);
        assert!(rest.is_empty());
    }
}
