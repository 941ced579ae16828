//! Reading the CMS fields that decide whether a message is acceptable before any private-key
//! operation happens: the content cipher, who the recipients are, and which digests the
//! signers used. See RFC 5652 §5 and §6 for the structures.

use openssl::bn::BigNum;
use openssl::x509::X509;

use super::der::{
    self, oid, Children, Tlv, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET,
};
use super::error::SmimeError;

fn malformed(what: &str) -> SmimeError {
    SmimeError::MalformedCms(what.to_string())
}

/// Splits a ContentInfo into its content type and the explicitly tagged content.
pub(crate) fn content_info(data: &[u8]) -> Result<(Vec<u8>, Tlv<'_>), SmimeError> {
    let (ci, _) = der::read_tlv(data)?;
    if ci.tag != TAG_SEQUENCE {
        return Err(malformed("ContentInfo is not a SEQUENCE"));
    }
    let mut c = Children::of(&ci);
    let ty = c.expect(TAG_OID, "ContentInfo without content type")?;
    let wrapper = c.expect(0xA0, "ContentInfo without content")?;
    let mut w = Children::of(&wrapper);
    let content = w
        .next_tlv()?
        .ok_or_else(|| malformed("empty ContentInfo content"))?;
    Ok((ty.content.to_vec(), content))
}

/// How a RecipientInfo or SignerInfo names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertId {
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    SubjectKeyId(Vec<u8>),
}

impl CertId {
    fn read(t: &Tlv<'_>) -> Result<Self, SmimeError> {
        match t.tag {
            TAG_SEQUENCE => {
                let mut c = Children::of(t);
                let issuer = c.expect(TAG_SEQUENCE, "IssuerAndSerialNumber without issuer")?;
                let serial = c.expect(TAG_INTEGER, "IssuerAndSerialNumber without serial")?;
                Ok(CertId::IssuerSerial {
                    issuer: issuer.raw.to_vec(),
                    serial: serial.raw.to_vec(),
                })
            }
            0x80 => Ok(CertId::SubjectKeyId(t.content.to_vec())),
            _ => Err(malformed("unknown certificate identifier")),
        }
    }

    pub(crate) fn matches(&self, cert: &X509) -> bool {
        match self {
            CertId::IssuerSerial { issuer, serial } => cert
                .to_der()
                .ok()
                .and_then(|d| der::issuer_and_serial(&d).ok())
                .is_some_and(|(i, s)| &i == issuer && &s == serial),
            CertId::SubjectKeyId(ski) => cert
                .subject_key_id()
                .is_some_and(|k| k.as_slice() == ski.as_slice()),
        }
    }

    /// As [`CertId::matches`], for a certificate whose DER encoding is at hand: an issuer
    /// and serial are compared without encoding the certificate again.
    pub(crate) fn matches_encoded(&self, cert_der: &[u8], cert: &X509) -> bool {
        match self {
            CertId::IssuerSerial { issuer, serial } => {
                der::issuer_and_serial(cert_der).is_ok_and(|(i, s)| &i == issuer && &s == serial)
            }
            CertId::SubjectKeyId(_) => self.matches(cert),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            CertId::IssuerSerial { serial, .. } => format!("serial {}", serial_hex(serial)),
            CertId::SubjectKeyId(ski) => format!("key id {}", hex(ski)),
        }
    }
}

/// A DER INTEGER (tag and length included, as CertId keeps it) in hex the way `openssl x509
/// -serial` and certificate viewers show serials: upper case, no sign byte.
pub(crate) fn serial_hex(integer: &[u8]) -> String {
    let content = der::read_tlv(integer)
        .map(|(t, _)| t.content)
        .unwrap_or(integer);
    BigNum::from_slice(content)
        .ok()
        .and_then(|bn| bn.to_hex_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| hex(content))
}

pub(crate) use crate::util::hex;

/// One RecipientInfo. Only key transport carries a `rid`; other kinds are kept so the caller
/// can say it found none it could use.
#[derive(Debug, Clone)]
pub(crate) struct RecipientInfo {
    pub rid: Option<CertId>,
    pub key_alg: Vec<u8>,
    /// Raw AlgorithmIdentifier parameters (the OAEP hash lives here).
    pub key_params: Option<Vec<u8>>,
    /// The content-encryption key, encrypted to the recipient's public key.
    pub encrypted_key: Vec<u8>,
}

/// An EnvelopedData or AuthEnvelopedData, its ciphertext still in the input.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopedInfo<'a> {
    pub recipients: Vec<RecipientInfo>,
    pub content_cipher: Vec<u8>,
    /// Raw parameters of the content-encryption algorithm (the IV, or GCMParameters).
    pub content_params: Option<Vec<u8>>,
    /// The encryptedContent, in order: one slice for DER, one per segment when a BER sender
    /// (`openssl cms` streaming, Java agents) cut it into a constructed OCTET STRING.
    pub encrypted: Vec<&'a [u8]>,
    /// AuthEnvelopedData only: the authenticated attributes as they are authenticated (the
    /// SET OF encoding), and the MAC.
    pub auth_attrs: Option<Vec<u8>>,
    pub mac: Option<&'a [u8]>,
}

/// Reads an EnvelopedData, or an AuthEnvelopedData (RFC 5083), whose fields up to the content
/// encryption algorithm are the same.
pub(crate) fn enveloped_data<'a>(content: &Tlv<'a>) -> Result<EnvelopedInfo<'a>, SmimeError> {
    let mut c = Children::of(content);
    c.expect(TAG_INTEGER, "EnvelopedData without version")?;
    if c.peek_tag() == Some(0xA0) {
        c.next_tlv()?; // originatorInfo
    }
    let ris = c.expect(TAG_SET, "EnvelopedData without recipientInfos")?;
    let mut recipients = Vec::new();
    let mut r = Children::of(&ris);
    while let Some(ri) = r.next_tlv()? {
        if ri.tag != TAG_SEQUENCE {
            recipients.push(RecipientInfo {
                rid: None,
                key_alg: Vec::new(),
                key_params: None,
                encrypted_key: Vec::new(),
            });
            continue;
        }
        let mut k = Children::of(&ri);
        k.expect(TAG_INTEGER, "KeyTransRecipientInfo without version")?;
        let rid_tlv = k
            .next_tlv()?
            .ok_or_else(|| malformed("KeyTransRecipientInfo without rid"))?;
        let rid = CertId::read(&rid_tlv)?;
        let alg = k.expect(TAG_SEQUENCE, "KeyTransRecipientInfo without algorithm")?;
        let (key_alg, key_params) = der::algorithm(&alg)?;
        let encrypted_key = k.expect(
            TAG_OCTET_STRING,
            "KeyTransRecipientInfo without encryptedKey",
        )?;
        recipients.push(RecipientInfo {
            rid: Some(rid),
            key_alg,
            key_params,
            encrypted_key: encrypted_key.content.to_vec(),
        });
    }
    let eci = c.expect(TAG_SEQUENCE, "EnvelopedData without encryptedContentInfo")?;
    let mut e = Children::of(&eci);
    e.expect(TAG_OID, "EncryptedContentInfo without content type")?;
    let alg = e.expect(
        TAG_SEQUENCE,
        "EncryptedContentInfo without contentEncryptionAlgorithm",
    )?;
    let (content_cipher, content_params) = der::algorithm(&alg)?;
    let mut encrypted = Vec::new();
    match e.next_tlv()? {
        Some(t) if t.tag == 0x80 => encrypted.push(t.content),
        Some(t) if t.tag == 0xA0 => octet_segments(&t, &mut encrypted, 0)?,
        _ => return Err(malformed("EncryptedContentInfo without encryptedContent")),
    }
    // AuthEnvelopedData continues with authAttrs [1] and the mac; EnvelopedData may carry
    // unprotectedAttrs [1], which nothing reads.
    let mut auth_attrs = None;
    let mut mac = None;
    if c.peek_tag() == Some(0xA1) {
        let attrs = c
            .next_tlv()?
            .ok_or_else(|| malformed("truncated attributes"))?;
        // Authenticated as the SET OF they implicitly tag (RFC 5083 §2.2); DER-encoded,
        // which a definite length implies for everything this reader needs to re-encode.
        let mut set = attrs.raw.to_vec();
        set[0] = TAG_SET;
        auth_attrs = Some(set);
    }
    if c.peek_tag() == Some(TAG_OCTET_STRING) {
        mac = c.next_tlv()?.map(|t| t.content);
    }
    Ok(EnvelopedInfo {
        recipients,
        content_cipher,
        content_params,
        encrypted,
        auth_attrs,
        mac,
    })
}

/// The primitive pieces of a constructed OCTET STRING (BER), in order.
fn octet_segments<'a>(
    t: &Tlv<'a>,
    out: &mut Vec<&'a [u8]>,
    depth: usize,
) -> Result<(), SmimeError> {
    if depth > 8 {
        return Err(malformed("encryptedContent nested too deep"));
    }
    let mut c = Children::of(t);
    while let Some(part) = c.next_tlv()? {
        match part.tag {
            TAG_OCTET_STRING => out.push(part.content),
            0x24 => octet_segments(&part, out, depth + 1)?,
            _ => return Err(malformed("encryptedContent segment is not an OCTET STRING")),
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub(crate) struct SignerInfoSummary {
    pub sid: CertId,
    pub digest: Vec<u8>,
    /// The messageDigest signed attribute, when the SignerInfo has signed attributes holding
    /// exactly one, with exactly one value. `None` for every other shape.
    pub message_digest: Option<Vec<u8>>,
    /// The contentType signed attribute's value, on the same terms as `message_digest`.
    pub content_type: Option<Vec<u8>>,
    /// The signed attributes as their signature covers them: the `[0] IMPLICIT` field
    /// retagged as the SET OF it stands for (RFC 5652 §5.4).
    pub signed_attrs: Option<Vec<u8>>,
    /// The signatureAlgorithm OID and the signature; empty when the SignerInfo ends early.
    pub signature_alg: Vec<u8>,
    pub signature: Vec<u8>,
    /// Whether anything follows the signature (unsignedAttrs, or bytes that are not).
    pub has_trailer: bool,
}

#[derive(Debug)]
pub(crate) struct SignedInfo<'a> {
    /// The `certificates` field, still DER: parsing is left to callers that need the
    /// certificates (OpenSSL 3.0 decodes a public key more slowly than it verifies a signature).
    pub certs: Vec<&'a [u8]>,
    /// The `digestAlgorithms` set: OIDs.
    pub digest_algorithms: Vec<Vec<u8>>,
    pub signers: Vec<SignerInfoSummary>,
    /// The eContentType OID.
    pub content_type: Vec<u8>,
    pub has_content: bool,
    /// Whether the SignedData holds CRLs or anything after its signerInfos.
    pub has_extra_fields: bool,
}

impl SignedInfo<'_> {
    pub(crate) fn parse_certs(&self) -> Result<Vec<X509>, SmimeError> {
        self.certs
            .iter()
            .map(|der| X509::from_der(der).map_err(SmimeError::from))
            .collect()
    }
}

pub(crate) fn signed_data<'a>(content: &Tlv<'a>) -> Result<SignedInfo<'a>, SmimeError> {
    let mut c = Children::of(content);
    c.expect(TAG_INTEGER, "SignedData without version")?;
    let algs = c.expect(TAG_SET, "SignedData without digestAlgorithms")?;
    let mut digest_algorithms = Vec::new();
    let mut a = Children::of(&algs);
    while let Some(alg) = a.next_tlv()? {
        digest_algorithms.push(der::algorithm(&alg)?.0);
    }
    let encap = c.expect(TAG_SEQUENCE, "SignedData without encapContentInfo")?;
    let mut e = Children::of(&encap);
    let content_type = e
        .expect(TAG_OID, "encapContentInfo without content type")?
        .content
        .to_vec();
    let has_content = e.next_tlv()?.is_some();
    let mut certs = Vec::new();
    if c.peek_tag() == Some(0xA0) {
        let set = c.next_tlv()?.unwrap_or(encap);
        let mut s = Children::of(&set);
        while let Some(cert) = s.next_tlv()? {
            // Attribute certificates and other choices are tagged; only plain X.509 is used.
            if cert.tag == TAG_SEQUENCE {
                certs.push(cert.raw);
            }
        }
    }
    let mut has_extra_fields = false;
    if c.peek_tag() == Some(0xA1) {
        c.next_tlv()?; // CRLs
        has_extra_fields = true;
    }
    let sis = c.expect(TAG_SET, "SignedData without signerInfos")?;
    let mut signers = Vec::new();
    let mut s = Children::of(&sis);
    while let Some(si) = s.next_tlv()? {
        let mut f = Children::of(&si);
        f.expect(TAG_INTEGER, "SignerInfo without version")?;
        let sid_tlv = f
            .next_tlv()?
            .ok_or_else(|| malformed("SignerInfo without sid"))?;
        let sid = CertId::read(&sid_tlv)?;
        let alg = f.expect(TAG_SEQUENCE, "SignerInfo without digestAlgorithm")?;
        let (digest, _) = der::algorithm(&alg)?;
        let mut message_digest = None;
        let mut content_type = None;
        let mut signed_attrs = None;
        if f.peek_tag() == Some(0xA0) {
            let attrs = f
                .next_tlv()?
                .ok_or_else(|| malformed("truncated SignerInfo"))?;
            message_digest = single_value(&attrs, oid::MESSAGE_DIGEST, TAG_OCTET_STRING);
            content_type = single_value(&attrs, oid::CONTENT_TYPE, TAG_OID);
            let mut set = attrs.raw.to_vec();
            set[0] = TAG_SET;
            signed_attrs = Some(set);
        }
        // The rest is read leniently: what cannot be read here is left to OpenSSL.
        let (signature_alg, signature, has_trailer) = match (f.next_tlv(), f.next_tlv()) {
            (Ok(Some(alg)), Ok(Some(sig))) if sig.tag == TAG_OCTET_STRING => {
                match der::algorithm(&alg) {
                    Ok((alg, _)) => (alg, sig.content.to_vec(), f.peek_tag().is_some()),
                    Err(_) => (Vec::new(), Vec::new(), true),
                }
            }
            _ => (Vec::new(), Vec::new(), true),
        };
        signers.push(SignerInfoSummary {
            sid,
            digest,
            message_digest,
            content_type,
            signed_attrs,
            signature_alg,
            signature,
            has_trailer,
        });
    }
    has_extra_fields |= c.peek_tag().is_some();
    Ok(SignedInfo {
        certs,
        digest_algorithms,
        signers,
        content_type,
        has_content,
        has_extra_fields,
    })
}

/// `sig`, a ContentInfo holding SignedData, re-encoded without its `certificates` field, for
/// handing to OpenSSL's verifier together with certificates already parsed: OpenSSL would
/// otherwise decode every carried certificate again for each message, and its public-key
/// decoder costs more than the signature check. The other fields are kept byte for byte.
pub(crate) fn without_certificates(sig: &[u8]) -> Result<Vec<u8>, SmimeError> {
    let (ci, _) = der::read_tlv(sig)?;
    let mut c = Children::of(&ci);
    let ty = c.expect(TAG_OID, "ContentInfo without content type")?;
    let wrapper = c.expect(0xA0, "ContentInfo without content")?;
    let sd = Children::of(&wrapper)
        .next_tlv()?
        .ok_or_else(|| malformed("empty ContentInfo content"))?;
    let mut fields = Vec::with_capacity(sd.content.len());
    let mut f = Children::of(&sd);
    while let Some(field) = f.next_tlv()? {
        if field.tag != 0xA0 {
            fields.extend_from_slice(field.raw);
        }
    }
    let signed_data = der::tlv(TAG_SEQUENCE, &fields);
    Ok(der::seq(&[ty.raw, &der::tlv(0xA0, &signed_data)]))
}

/// The value of the one `ty` attribute among `attrs` (signedAttrs), or `None` when there is
/// not exactly one such attribute with exactly one value tagged `tag`, or anything in the
/// attributes cannot be read.
fn single_value(attrs: &Tlv<'_>, ty: &[u8], tag: u8) -> Option<Vec<u8>> {
    let mut found = None;
    let mut a = Children::of(attrs);
    while let Some(attr) = a.next_tlv().ok()? {
        let mut f = Children::of(&attr);
        let attr_type = f.expect(TAG_OID, "attribute without type").ok()?;
        if attr_type.content != ty {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let values = f.expect(TAG_SET, "attribute without values").ok()?;
        let mut v = Children::of(&values);
        let value = v.expect(tag, "attribute value of another type").ok()?;
        if v.next_tlv().ok()?.is_some() {
            return None;
        }
        found = Some(value.content.to_vec());
    }
    found
}

/// Whether `attrs` (signedAttrs retagged as a SET OF) keep OpenSSL's rules for signed
/// attributes (RFC 5652 §11, RFC 2634 and RFC 5035): contentType and messageDigest each
/// exactly once; these, signingTime and the ESS signingCertificate(V2) and receiptRequest
/// attributes at most once and with exactly one value; no countersignature. (Other
/// attributes, even without a value, OpenSSL lets through.)
pub(crate) fn signed_attribute_rules_hold(attrs: &[u8]) -> bool {
    const SINGLE: &[&[u8]] = &[
        oid::CONTENT_TYPE,
        oid::MESSAGE_DIGEST,
        oid::SIGNING_TIME,
        oid::SIGNING_CERTIFICATE,
        oid::SIGNING_CERTIFICATE_V2,
        oid::RECEIPT_REQUEST,
    ];
    let Ok((set, rest)) = der::read_tlv(attrs) else {
        return false;
    };
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut a = Children::of(&set);
    loop {
        let attr = match a.next_tlv() {
            Ok(Some(attr)) => attr,
            Ok(None) => break,
            Err(_) => return false,
        };
        let mut f = Children::of(&attr);
        let (Ok(ty), Ok(values)) = (
            f.expect(TAG_OID, "attribute without type"),
            f.expect(TAG_SET, "attribute without values"),
        ) else {
            return false;
        };
        let count = {
            let mut v = Children::of(&values);
            let mut n = 0usize;
            loop {
                match v.next_tlv() {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break n,
                    Err(_) => return false,
                }
            }
        };
        if ty.content == oid::COUNTERSIGNATURE {
            return false;
        }
        if SINGLE.contains(&ty.content) {
            if count != 1 || seen.contains(&ty.content) {
                return false;
            }
            seen.push(ty.content);
        }
    }
    rest.is_empty() && seen.contains(&oid::CONTENT_TYPE) && seen.contains(&oid::MESSAGE_DIGEST)
}

/// Whether `attrs` (signedAttrs retagged as a SET OF) are already the bytes OpenSSL's
/// verifier would sign-check: it re-encodes the attributes it decoded, in the order received,
/// as DER. That holds when every length is definite and minimal, each attribute's values are
/// in DER SET OF order, and every value is of a type whose decoding OpenSSL keeps byte for
/// byte (SEQUENCE and SET are kept whole; OIDs, OCTET STRINGs, times and character strings
/// as their content).
pub(crate) fn signed_attrs_are_der(attrs: &[u8]) -> bool {
    fn definite(t: &Tlv<'_>) -> bool {
        t.raw.get(1) != Some(&0x80) && t.raw.len() == der::tlv_len(t.content.len())
    }
    fn all_definite(t: &Tlv<'_>, depth: usize) -> bool {
        if !definite(t) {
            return false;
        }
        if t.tag & 0x20 == 0 {
            return true;
        }
        if depth > 16 {
            return false;
        }
        let mut c = Children::of(t);
        loop {
            match c.next_tlv() {
                Ok(Some(child)) if all_definite(&child, depth + 1) => {}
                Ok(None) => return true,
                _ => return false,
            }
        }
    }
    // OpenSSL's SET OF order: bytewise, a prefix first.
    fn in_order(values: &[&[u8]]) -> bool {
        values.windows(2).all(|w| w[0] <= w[1])
    }
    const KEPT: &[u8] = &[
        TAG_OCTET_STRING,
        TAG_SEQUENCE,
        TAG_SET,
        0x0C, // UTF8String
        0x13, // PrintableString
        0x16, // IA5String
    ];
    let Ok((set, rest)) = der::read_tlv(attrs) else {
        return false;
    };
    if !rest.is_empty() || set.tag != TAG_SET || !all_definite(&set, 0) {
        return false;
    }
    let mut a = Children::of(&set);
    while let Ok(Some(attr)) = a.next_tlv() {
        let mut f = Children::of(&attr);
        let Ok(values) = f.expect(TAG_OID, "").and_then(|_| f.expect(TAG_SET, "")) else {
            return false;
        };
        if f.peek_tag().is_some() {
            return false;
        }
        let mut raws = Vec::new();
        let mut v = Children::of(&values);
        while let Ok(Some(value)) = v.next_tlv() {
            let readable = match value.tag {
                TAG_OID => valid_oid(value.content),
                // OpenSSL refuses times too short to hold a date.
                0x17 => value.content.len() >= 13,
                0x18 => value.content.len() >= 15,
                tag => KEPT.contains(&tag),
            };
            if !readable {
                return false;
            }
            raws.push(value.raw);
        }
        if !in_order(&raws) {
            return false;
        }
    }
    true
}

/// Whether `content` is an OID OpenSSL decodes: non-empty, each arc minimally encoded, the
/// last byte ending an arc.
fn valid_oid(content: &[u8]) -> bool {
    let mut arc_start = true;
    for b in content {
        if arc_start && *b == 0x80 {
            return false;
        }
        arc_start = b & 0x80 == 0;
    }
    !content.is_empty() && arc_start
}

/// A digest OID's name as `micalg` spells it (RFC 5751 §3.4.3.2).
pub(crate) fn digest_name(oid_bytes: &[u8]) -> Option<&'static str> {
    Some(match oid_bytes {
        o if o == oid::MD5 => "md5",
        o if o == oid::SHA1 => "sha-1",
        o if o == oid::SHA256 => "sha-256",
        o if o == oid::SHA384 => "sha-384",
        o if o == oid::SHA512 => "sha-512",
        _ => return None,
    })
}

pub(crate) fn cipher_name(oid_bytes: &[u8]) -> Option<&'static str> {
    Some(match oid_bytes {
        o if o == oid::AES128_CBC => "aes-128-cbc",
        o if o == oid::AES192_CBC => "aes-192-cbc",
        o if o == oid::AES256_CBC => "aes-256-cbc",
        o if o == oid::AES128_GCM => "aes-128-gcm",
        o if o == oid::AES192_GCM => "aes-192-gcm",
        o if o == oid::AES256_GCM => "aes-256-gcm",
        o if o == oid::DES_EDE3_CBC => "des-ede3-cbc",
        o if o == oid::RC2_CBC => "rc2-cbc",
        o if o == oid::DES_CBC => "des-cbc",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(values: &[u8]) -> Vec<u8> {
        der::tlv(
            TAG_SET,
            &der::seq(&[&der::oid_tlv(oid::SMIME_CAPABILITIES), values]),
        )
    }

    /// An indefinite length is not DER even where its header happens to be as long as the
    /// definite one (content of 256 bytes or more), nor is a long form where a short fits.
    #[test]
    fn signed_attributes_in_der_only() {
        let cap = der::seq(&[&der::tlv(TAG_OCTET_STRING, &[7u8; 300])]);
        assert!(signed_attrs_are_der(&attrs(&der::tlv(TAG_SET, &cap))));

        let mut indefinite = vec![TAG_SET, 0x80];
        indefinite.extend_from_slice(&cap);
        indefinite.extend_from_slice(&[0, 0]);
        assert!(!signed_attrs_are_der(&attrs(&indefinite)));

        let short = der::seq(&[&der::oid_tlv(oid::AES128_CBC)]);
        assert!(signed_attrs_are_der(&attrs(&der::tlv(TAG_SET, &short))));
        let mut long_form = vec![TAG_SET, 0x81, short.len() as u8];
        long_form.extend_from_slice(&short);
        assert!(!signed_attrs_are_der(&attrs(&long_form)));

        // Values OpenSSL would decode and encode otherwise: a BOOLEAN, an OID it refuses.
        let boolean = der::tlv(TAG_SET, &der::tlv(0x01, &[1]));
        assert!(!signed_attrs_are_der(&attrs(&boolean)));
        let bad_oid = der::tlv(TAG_SET, &der::tlv(TAG_OID, &[0x2A, 0x80, 0x01]));
        assert!(!signed_attrs_are_der(&attrs(&bad_oid)));
    }
}
