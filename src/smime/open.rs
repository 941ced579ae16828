//! Decrypt, verify, unwrap.
//!
//! Order matters: everything that can be decided from public structure (MIME shape, content
//! cipher, whether a key of ours is addressed) is decided before a private key is used, and
//! nothing from the decrypted content is believed until every signature has verified.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::MessageParser;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::encrypt::Decrypter;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::sign::Verifier as SignatureVerifier;
use openssl::stack::Stack;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;

use super::certs::{
    self, check_email_eku, check_key_strength, subject_string, usage_allows, Usage,
};
use super::cms;
use super::der::{self, oid, Children, TAG_INTEGER, TAG_NULL, TAG_OCTET_STRING, TAG_SEQUENCE};
use super::error::SmimeError;
use super::mime;
use super::trust::Direction;
use super::{
    Binding, Envelope, EnvelopeCheck, KeyStore, KeyTransport, Opened, SignerVerdict, TrustStore,
    Verdict,
};

/// Opens an inbound Direct message. `envelope`, when given, is checked against the inner
/// headers as AS 1.3 requires.
///
/// Signers are validated against the incoming anchors of the local domain whose certificate
/// decrypted the message: that is the recipient the sender addressed. Every signer must verify,
/// chain to those anchors and be bound to the inner From (or Sender); one bad SignerInfo
/// rejects the message, so an attacker cannot ride on a legitimate co-signature.
pub fn open(
    raw: &[u8],
    keys: &KeyStore,
    trust: &TrustStore,
    envelope: Option<&Envelope>,
) -> Result<Opened, SmimeError> {
    let (header_block, body) = mime::split_entity(raw);
    let outer_headers = outer_headers(header_block, body)?;
    let der_bytes = decode_body(&outer_headers, body)?;
    open_decoded(&outer_headers, Cow::Owned(der_bytes), keys, trust, envelope)
}

/// A sealed message handed over whole and decoded in place of its text, for a caller that has
/// no further use for the text ([`super::Agent::open_owned`]): the message is then held at most
/// decoded and decrypted, never also as sealed text, the largest of the three (a 20 MB message
/// is ~29 MB sealed). It can be opened again, as after fetching what a chain named.
pub struct Decoded {
    header_block: Vec<u8>,
    der: Vec<u8>,
}

impl Decoded {
    /// Refuses what [`open`] refuses before decoding (not S/MIME encrypted, an encrypted
    /// part among others), then decodes the body.
    pub fn new(mut raw: Vec<u8>) -> Result<Decoded, SmimeError> {
        let (header_block, body) = mime::split_entity(&raw);
        let body_start = offset_in(&raw, body);
        let headers = outer_headers(header_block, body)?;
        let base64 = mime::header(&headers, "Content-Transfer-Encoding")
            .is_some_and(|cte| cte.trim().eq_ignore_ascii_case("base64"));
        let header_block = header_block.to_vec();
        let der = if base64 {
            mime::base64_decode_in_place(&mut raw, body_start)
                .ok_or_else(|| SmimeError::MalformedMime("body is not valid base64".into()))?;
            raw
        } else {
            decode_body(&headers, body)?
        };
        Ok(Decoded { header_block, der })
    }

    /// [`open`] of the decoded message; each call decrypts a copy, keeping the decoded form.
    pub fn open(
        &self,
        keys: &KeyStore,
        trust: &TrustStore,
        envelope: Option<&Envelope>,
    ) -> Result<Opened, SmimeError> {
        let headers = mime::parse_headers(&self.header_block);
        open_decoded(&headers, Cow::Borrowed(&self.der), keys, trust, envelope)
    }
}

/// The outer headers of an S/MIME encrypted message, refusing any other kind of message.
fn outer_headers<'a>(
    header_block: &'a [u8],
    body: &[u8],
) -> Result<Vec<mime::Header<'a>>, SmimeError> {
    let outer_headers = mime::parse_headers(header_block);
    let ct = mime::parse_content_type(
        mime::header(&outer_headers, "Content-Type").unwrap_or("text/plain"),
    );
    if !is_pkcs7_mime(&ct.mime) {
        if ct.mime.starts_with("multipart/") && contains_pkcs7_part(&ct, body) {
            return Err(SmimeError::MixedContent);
        }
        return Err(SmimeError::NotEncrypted { found: ct.mime });
    }
    Ok(outer_headers)
}

/// [`open`] from the decoded CMS on.
fn open_decoded(
    outer_headers: &[mime::Header<'_>],
    der_bytes: Cow<'_, [u8]>,
    keys: &KeyStore,
    trust: &TrustStore,
    envelope: Option<&Envelope>,
) -> Result<Opened, SmimeError> {
    let (ty, content) = cms::content_info(&der_bytes)?;
    if ty == oid::SIGNED_DATA {
        return Err(SmimeError::NotEncrypted {
            found: "signed-data without encryption".into(),
        });
    }
    let authenticated = ty == oid::AUTH_ENVELOPED_DATA;
    if !authenticated && ty != oid::ENVELOPED_DATA {
        return Err(SmimeError::UnsupportedCmsType {
            oid: der::oid_to_string(&ty),
        });
    }
    let enveloped = cms::enveloped_data(&content)?;
    let content_cipher = check_cipher(&enveloped.content_cipher, authenticated)?;
    let sealed = SealedContent::locate(&enveloped, &der_bytes, content_cipher)?;

    // Several of our keys can match one RecipientInfo (a renewed key under a reused issuer
    // and serial, or a subject key identifier two certificates share), and several
    // RecipientInfos can name keys of ours: each pairing is tried before giving up. A wrong
    // key does not always fail to decrypt: with PKCS#1 v1.5 a wrong key can unwrap to a
    // well-formed but wrong content key, and about one time in 256 the CBC padding under it
    // looks valid. So a pairing counts only once the signature over what it decrypted
    // verifies.
    let candidates: Vec<(&certs::Identity, &cms::RecipientInfo)> = enveloped
        .recipients
        .iter()
        .filter_map(|ri| ri.rid.as_ref().map(|rid| (ri, rid)))
        .flat_map(|(ri, rid)| {
            keys.identities()
                .iter()
                .filter(move |id| rid.matches(&id.cert))
                .map(move |id| (id, ri))
        })
        .collect();
    let mut failure = SmimeError::NoMatchingRecipient;
    let mut opened = None;
    // An owned EnvelopedData is decrypted in place by the last pairing tried (the usual one),
    // so `open` holds the message once sealed and once decrypted, never more; a borrowed one
    // is kept for a later open and each pairing decrypts a copy.
    let mut der_bytes = Some(der_bytes);
    let last = candidates.len().saturating_sub(1);
    for (n, (identity, recipient)) in candidates.into_iter().enumerate() {
        let key_transport = match key_transport_of(recipient, identity) {
            Ok(kt) => kt,
            Err(e) => {
                if matches!(failure, SmimeError::NoMatchingRecipient) {
                    failure = e;
                }
                continue;
            }
        };
        let buffer = if n == last && matches!(der_bytes, Some(Cow::Owned(_))) {
            der_bytes.take().map(Cow::into_owned)
        } else {
            der_bytes.as_deref().map(<[u8]>::to_vec)
        };
        let Some(buffer) = buffer else {
            break;
        };
        let decrypted = match sealed.decrypt(buffer, recipient, key_transport, identity) {
            Ok(decrypted) => decrypted,
            Err(e) => {
                // What a fitting key decrypted and we refused says more than a key
                // that did not fit.
                if matches!(
                    failure,
                    SmimeError::DecryptFailed(_) | SmimeError::NoMatchingRecipient
                ) {
                    failure = SmimeError::DecryptFailed(e);
                }
                continue;
            }
        };
        let recipient_domain = identity.domain().unwrap_or_default();
        match verify_signed(&decrypted, trust, &recipient_domain) {
            Ok(signed) => {
                opened = Some((identity, key_transport, recipient_domain, decrypted, signed));
                break;
            }
            Err(e) => failure = e,
        }
    }
    let Some((identity, key_transport, recipient_domain, decrypted, signed)) = opened else {
        return Err(failure);
    };
    let Signed {
        content: signed_content,
        signers,
        notes,
    } = signed;

    let (inner, wrapped) = unwrap_inner(outer_headers, decrypted, signed_content)?;
    let parsed = MessageParser::default()
        .parse_headers(&inner[..])
        .ok_or_else(|| SmimeError::BadHeaders("inner headers unreadable".into()))?;
    let senders = sender_addresses(&parsed);
    let from = senders.first().cloned().ok_or(SmimeError::MissingFrom)?;
    let signers = bind_signers(signers, &senders, &from)?;

    let envelope_check = match envelope {
        None => EnvelopeCheck::NotChecked,
        Some(env) => {
            check_envelope(env, &senders, &parsed)?;
            EnvelopeCheck::Passed
        }
    };

    let serial = certs::serial_hex(&identity.cert);
    Ok(Opened {
        inner_len: inner.len(),
        verdict: Verdict {
            decrypted_by: subject_string(&identity.cert),
            decrypted_by_serial: serial,
            recipient_domain,
            content_cipher: content_cipher.to_string(),
            key_transport,
            signers,
            wrapped,
            from,
            envelope: envelope_check,
            notes,
        },
        inner,
    })
}

fn is_pkcs7_mime(mime_type: &str) -> bool {
    mime_type == "application/pkcs7-mime" || mime_type == "application/x-pkcs7-mime"
}

/// Whether a multipart body smuggles an encrypted part among others (the EFAIL shape).
fn contains_pkcs7_part(ct: &mime::ContentType, body: &[u8]) -> bool {
    let Some(boundary) = ct.param("boundary") else {
        return false;
    };
    mime::split_multipart(body, boundary)
        .unwrap_or_default()
        .iter()
        .any(|part| {
            let (h, _) = mime::split_entity(part);
            let headers = mime::parse_headers(h);
            mime::header(&headers, "Content-Type")
                .map(|v| is_pkcs7_mime(&mime::parse_content_type(v).mime))
                .unwrap_or(false)
        })
}

fn decode_body(headers: &[mime::Header<'_>], body: &[u8]) -> Result<Vec<u8>, SmimeError> {
    mime::decode_transfer(mime::header(headers, "Content-Transfer-Encoding"), body)
        .ok_or_else(|| SmimeError::MalformedMime("body is not valid base64".into()))
}

/// The content cipher, if acceptable: AES-CBC in EnvelopedData, AES-GCM in AuthEnvelopedData
/// (RFC 5084). GCM outside AuthEnvelopedData would carry no tag to check, and CBC inside it
/// no authentication, so each is only accepted in its own structure.
fn check_cipher(oid_bytes: &[u8], authenticated: bool) -> Result<&'static str, SmimeError> {
    match (cms::cipher_name(oid_bytes), authenticated) {
        (Some(name @ ("aes-128-cbc" | "aes-192-cbc" | "aes-256-cbc")), false)
        | (Some(name @ ("aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm")), true) => Ok(name),
        (Some(name @ ("des-ede3-cbc" | "rc2-cbc" | "des-cbc")), _) => Err(SmimeError::WeakCipher {
            alg: name.to_string(),
        }),
        _ => Err(SmimeError::UnsupportedCipher {
            oid: der::oid_to_string(oid_bytes),
        }),
    }
}

/// Where the ciphertext of an EnvelopedData lies in its decoded buffer, and how it was
/// encrypted: what decrypting needs once the structure has been read and checked.
struct SealedContent {
    cipher: Cipher,
    iv: Vec<u8>,
    /// Byte ranges of the ciphertext in the buffer, in order.
    segments: Vec<Range<usize>>,
    /// AES-GCM: the tag to check and the authenticated attributes, if any.
    tag: Option<Vec<u8>>,
    aad: Option<Vec<u8>>,
}

/// Ciphertext decrypted per call: one buffer of this size is all decryption adds.
const CHUNK: usize = 32 * 1024;

impl SealedContent {
    fn locate(
        info: &cms::EnvelopedInfo<'_>,
        buffer: &[u8],
        cipher_name: &str,
    ) -> Result<SealedContent, SmimeError> {
        let malformed = |what: &str| SmimeError::MalformedCms(what.to_string());
        let cipher = Cipher::from_nid(match cipher_name {
            "aes-128-cbc" => Nid::AES_128_CBC,
            "aes-192-cbc" => Nid::AES_192_CBC,
            "aes-256-cbc" => Nid::AES_256_CBC,
            "aes-128-gcm" => Nid::AES_128_GCM,
            "aes-192-gcm" => Nid::AES_192_GCM,
            _ => Nid::AES_256_GCM,
        })
        .ok_or_else(|| malformed("content cipher unavailable"))?;
        let gcm = cipher_name.ends_with("gcm");
        let params = info
            .content_params
            .as_deref()
            .ok_or_else(|| malformed("content-encryption algorithm without parameters"))?;
        let (params, _) = der::read_tlv(params)?;
        let (iv, tag_len) = if gcm {
            // GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 }
            let mut p = Children::of(&params);
            let nonce = p.expect(TAG_OCTET_STRING, "GCMParameters without nonce")?;
            let icv = match p.next_tlv()? {
                Some(t) if t.tag == TAG_INTEGER && t.content.len() == 1 => {
                    usize::from(t.content[0])
                }
                None => 12,
                _ => return Err(malformed("GCMParameters with a bad ICV length")),
            };
            if nonce.content.is_empty() || !(12..=16).contains(&icv) {
                return Err(malformed("GCMParameters out of range"));
            }
            (nonce.content.to_vec(), icv)
        } else {
            if params.tag != TAG_OCTET_STRING || params.content.len() != 16 {
                return Err(malformed("AES-CBC parameters are not a 16-byte IV"));
            }
            (params.content.to_vec(), 0)
        };
        let tag = if gcm {
            let mac = info
                .mac
                .ok_or_else(|| malformed("AuthEnvelopedData without mac"))?;
            if mac.len() != tag_len {
                return Err(malformed(
                    "AuthEnvelopedData mac length disagrees with its parameters",
                ));
            }
            Some(mac.to_vec())
        } else {
            None
        };
        let base = buffer.as_ptr() as usize;
        let segments = info
            .encrypted
            .iter()
            .map(|seg| {
                let start = seg.as_ptr() as usize - base;
                start..start + seg.len()
            })
            .collect();
        Ok(SealedContent {
            cipher,
            iv,
            segments,
            tag,
            aad: info.auth_attrs.clone(),
        })
    }

    /// Unwraps the content key with `identity`'s private key and decrypts the content in
    /// `buffer` (the decoded EnvelopedData), reusing its memory: the plaintext is written
    /// behind the ciphertext still to be read, which it never overtakes.
    fn decrypt(
        &self,
        mut buffer: Vec<u8>,
        recipient: &cms::RecipientInfo,
        transport: KeyTransport,
        identity: &certs::Identity,
    ) -> Result<Vec<u8>, ErrorStack> {
        let key = self.unwrap_key(recipient, transport, identity)?;
        let mut crypter = Crypter::new(self.cipher, Mode::Decrypt, &key, Some(&self.iv))?;
        if let Some(aad) = &self.aad {
            crypter.aad_update(aad)?;
        }
        let mut out = vec![0u8; CHUNK + self.cipher.block_size()];
        let mut written = 0usize;
        for seg in &self.segments {
            let mut at = seg.start;
            while at < seg.end {
                let end = (at + CHUNK).min(seg.end);
                let n = crypter.update(&buffer[at..end], &mut out)?;
                buffer[written..written + n].copy_from_slice(&out[..n]);
                written += n;
                at = end;
            }
        }
        if let Some(tag) = &self.tag {
            crypter.set_tag(tag)?;
        }
        let n = crypter.finalize(&mut out)?;
        // Room is certain: CBC's final block was the last 16 bytes read.
        buffer[written..written + n].copy_from_slice(&out[..n]);
        written += n;
        buffer.truncate(written);
        Ok(buffer)
    }

    /// The content-encryption key. One of the wrong length is replaced by a random key, as
    /// OpenSSL's CMS does against million-message attacks on PKCS#1 v1.5: the content then
    /// fails to decrypt or to verify like any other wrong key, and nothing tells the sender
    /// which.
    fn unwrap_key(
        &self,
        recipient: &cms::RecipientInfo,
        transport: KeyTransport,
        identity: &certs::Identity,
    ) -> Result<Vec<u8>, ErrorStack> {
        let mut dec = Decrypter::new(&identity.key)?;
        match transport {
            KeyTransport::RsaPkcs1v15 => dec.set_rsa_padding(Padding::PKCS1)?,
            _ => {
                let oaep =
                    oaep_parameters(recipient.key_params.as_deref()).ok_or_else(ErrorStack::get)?;
                dec.set_rsa_padding(Padding::PKCS1_OAEP)?;
                dec.set_rsa_oaep_md(oaep.hash)?;
                dec.set_rsa_mgf1_md(oaep.mgf1)?;
                if !oaep.label.is_empty() {
                    dec.set_rsa_oaep_label(&oaep.label)?;
                }
            }
        }
        let mut key = vec![0u8; dec.decrypt_len(&recipient.encrypted_key)?];
        let n = dec.decrypt(&recipient.encrypted_key, &mut key)?;
        key.truncate(n);
        if key.len() != self.cipher.key_len() {
            key = vec![0u8; self.cipher.key_len()];
            rand_bytes(&mut key)?;
        }
        Ok(key)
    }
}

/// RSAES-OAEP-params (RFC 4055 §4.1) as the decrypter needs them.
struct OaepParameters {
    hash: MessageDigest,
    mgf1: MessageDigest,
    label: Vec<u8>,
}

/// Reads OAEP parameters: absent or empty means SHA-1 throughout and no label. `None` for
/// anything this agent cannot decrypt with (an unknown hash or mask function).
fn oaep_parameters(params: Option<&[u8]>) -> Option<OaepParameters> {
    let mut out = OaepParameters {
        hash: MessageDigest::sha1(),
        mgf1: MessageDigest::sha1(),
        label: Vec::new(),
    };
    let Some(params) = params else {
        return Some(out);
    };
    let (seq, _) = der::read_tlv(params).ok()?;
    if seq.tag != TAG_SEQUENCE {
        // Some agents write NULL parameters for the defaults.
        return (seq.tag == TAG_NULL).then_some(out);
    }
    let digest = |oid_bytes: &[u8]| {
        Some(match oid_bytes {
            o if o == oid::SHA1 => MessageDigest::sha1(),
            o if o == oid::SHA224 => MessageDigest::sha224(),
            o if o == oid::SHA256 => MessageDigest::sha256(),
            o if o == oid::SHA384 => MessageDigest::sha384(),
            o if o == oid::SHA512 => MessageDigest::sha512(),
            _ => return None,
        })
    };
    let mut fields = Children::of(&seq);
    while let Some(field) = fields.next_tlv().ok()? {
        let alg = Children::of(&field).next_tlv().ok()??;
        let (alg_oid, alg_params) = der::algorithm(&alg).ok()?;
        match field.tag {
            0xA0 => out.hash = digest(&alg_oid)?,
            0xA1 => {
                if alg_oid != oid::MGF1 {
                    return None;
                }
                let (hash, _) = der::read_tlv(alg_params.as_deref()?).ok()?;
                out.mgf1 = digest(&der::algorithm(&hash).ok()?.0)?;
            }
            0xA2 => {
                if alg_oid != oid::P_SPECIFIED {
                    return None;
                }
                if let Some(label) = alg_params {
                    let (label, _) = der::read_tlv(&label).ok()?;
                    if label.tag != TAG_OCTET_STRING {
                        return None;
                    }
                    out.label = label.content.to_vec();
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Names the key transport of the RecipientInfo addressed to us, reading the OAEP hash from
/// its parameters.
fn key_transport_of(
    recipient: &cms::RecipientInfo,
    identity: &certs::Identity,
) -> Result<KeyTransport, SmimeError> {
    if recipient.key_alg == oid::RSA_ENCRYPTION {
        Ok(KeyTransport::RsaPkcs1v15)
    } else if recipient.key_alg == oid::RSAES_OAEP {
        Ok(oaep_hash(recipient.key_params.as_deref()))
    } else {
        Err(SmimeError::UnsupportedRecipientKey {
            subject: subject_string(&identity.cert),
        })
    }
}

fn oaep_hash(params: Option<&[u8]>) -> KeyTransport {
    let Some(params) = params else {
        return KeyTransport::RsaOaepSha1;
    };
    let Ok((seq, _)) = der::read_tlv(params) else {
        return KeyTransport::RsaOaepOther;
    };
    let mut c = Children::of(&seq);
    match c.next_tlv() {
        Ok(None) => KeyTransport::RsaOaepSha1,
        Ok(Some(t)) if t.tag == 0xA0 => {
            let hash = Children::of(&t)
                .next_tlv()
                .ok()
                .flatten()
                .and_then(|alg| der::algorithm(&alg).ok());
            match hash {
                Some((h, _)) if h == oid::SHA256 => KeyTransport::RsaOaepSha256,
                Some((h, _)) if h == oid::SHA1 => KeyTransport::RsaOaepSha1,
                _ => KeyTransport::RsaOaepOther,
            }
        }
        _ => KeyTransport::RsaOaepOther,
    }
}

/// The bytes a signature verified: where they lie in the decrypted entity, or, for the
/// few forms where they are not its own bytes (opaque signed-data, a bare-LF sender's content
/// canonicalised), a copy.
enum SignedContent {
    Within(Range<usize>),
    Owned(Vec<u8>),
}

/// The offset of `part`, a slice of `whole`, within it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// A verified signer before it is bound to the From address.
struct VerifiedSigner {
    cert: openssl::x509::X509,
    digest: &'static str,
    trusted_by: String,
    chain: Vec<String>,
}

/// The signed content (exact bytes), its verified signers, and what the administrator should
/// know about how it was signed.
struct Signed {
    content: SignedContent,
    signers: Vec<VerifiedSigner>,
    notes: Vec<String>,
}

/// The `micalg` name of a digest we accept for signatures; MD5 and SHA-1 are refused as weak.
fn accepted_digest(oid_bytes: &[u8]) -> Result<&'static str, SmimeError> {
    match cms::digest_name(oid_bytes) {
        Some(name @ ("md5" | "sha-1")) => Err(SmimeError::WeakDigest {
            alg: name.to_string(),
        }),
        Some(name) => Ok(name),
        None => Err(SmimeError::UnsupportedDigest {
            oid: der::oid_to_string(oid_bytes),
        }),
    }
}

/// What to record when `micalg` does not name `digest` (a `micalg` name), or `None` when it
/// does in any spelling agents use (`sha-256`, `sha256`, `SHA256`).
///
/// The header is advisory: the SignerInfo's digest is what was verified, so a wrong or missing
/// `micalg` is worth telling the administrator but not worth refusing the message
/// (RFC 5751 §3.4.3.2: receivers SHOULD recover gracefully).
fn micalg_note(micalg: Option<&str>, digest: &str) -> Option<String> {
    let normal = |m: &str| m.trim().to_ascii_lowercase().replace('-', "");
    let listed: Vec<&str> = micalg
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if listed.is_empty() {
        return Some(format!(
            "multipart/signed has no micalg; the signature digest {digest} was used"
        ));
    }
    if listed.iter().any(|m| normal(m) == normal(digest)) {
        return None;
    }
    // The header is the sender's text: keep the note one short printable line.
    let shown: String = listed
        .join(",")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    Some(format!(
        "micalg {shown} does not name the signature digest {digest}; the signature digest was used"
    ))
}

/// For the `smime_verify` fuzz target: the signed entity inside a decrypted message, which
/// anyone who can encrypt to our certificate controls.
#[cfg(fuzzing)]
pub fn fuzz_verify_signed(decrypted: &[u8], trust: &TrustStore) {
    let _ = verify_signed(decrypted, trust, "b.example");
}

/// Checks the decrypted entity is signed by trusted signers whose signatures verify, in
/// either form RFC 5751 makes a receiver accept: `multipart/signed` with a detached signature,
/// or opaque `application/pkcs7-mime; smime-type=signed-data` carrying the content inside.
fn verify_signed(decrypted: &[u8], trust: &TrustStore, domain: &str) -> Result<Signed, SmimeError> {
    let (h, body) = mime::split_entity(decrypted);
    let headers = mime::parse_headers(h);
    let ct = mime::parse_content_type(mime::header(&headers, "Content-Type").unwrap_or(""));
    if is_pkcs7_mime(&ct.mime) {
        // Agents that omit smime-type are let through to the CMS type check below.
        let smime_type = ct.param("smime-type").unwrap_or("signed-data");
        if !smime_type.eq_ignore_ascii_case("signed-data") {
            return Err(SmimeError::Unsigned {
                found: format!("{}; smime-type={smime_type}", ct.mime),
            });
        }
        let sig = decode_body(&headers, body)?;
        return check_signed_data(&sig, Form::Opaque, trust, domain);
    }
    if ct.mime != "multipart/signed" {
        let found = if ct.mime.is_empty() {
            "no Content-Type".to_string()
        } else {
            ct.mime.clone()
        };
        return Err(SmimeError::Unsigned { found });
    }
    let protocol = ct.param("protocol").unwrap_or("").to_ascii_lowercase();
    if protocol != "application/pkcs7-signature" && protocol != "application/x-pkcs7-signature" {
        return Err(SmimeError::Unsigned {
            found: format!("multipart/signed with protocol {protocol:?}"),
        });
    }
    let boundary = ct
        .param("boundary")
        .ok_or_else(|| SmimeError::MalformedMime("multipart/signed without boundary".into()))?;
    let parts = mime::split_multipart(body, boundary)
        .ok_or_else(|| SmimeError::MalformedMime("multipart/signed has no parts".into()))?;
    if parts.len() != 2 {
        return Err(SmimeError::MalformedMime(format!(
            "multipart/signed has {} parts, expected 2",
            parts.len()
        )));
    }
    let (sh, sbody) = mime::split_entity(parts[1]);
    let sig_headers = mime::parse_headers(sh);
    let sig_ct = mime::parse_content_type(mime::header(&sig_headers, "Content-Type").unwrap_or(""));
    if sig_ct.mime != "application/pkcs7-signature"
        && sig_ct.mime != "application/x-pkcs7-signature"
    {
        return Err(SmimeError::Unsigned {
            found: format!("signature part of type {}", sig_ct.mime),
        });
    }
    let sig = decode_body(&sig_headers, sbody)?;
    let form = Form::Detached {
        content: parts[0],
        micalg: ct.param("micalg"),
    };
    let mut signed = check_signed_data(&sig, form, trust, domain)?;
    if let SignedContent::Within(range) = &mut signed.content {
        let start = offset_in(decrypted, parts[0]);
        *range = start + range.start..start + range.end;
    }
    Ok(signed)
}

/// Where the signed content of a SignedData is.
enum Form<'a> {
    /// Beside it, in part 1 of a `multipart/signed` whose header announced `micalg`.
    Detached {
        content: &'a [u8],
        micalg: Option<&'a str>,
    },
    /// Inside it, as eContent.
    Opaque,
}

/// Verifies the CMS SignedData `sig`: every SignerInfo with an accepted digest, a strong key,
/// a valid signature, a chain to `domain`'s incoming anchors and signing key usage.
fn check_signed_data(
    sig: &[u8],
    form: Form<'_>,
    trust: &TrustStore,
    domain: &str,
) -> Result<Signed, SmimeError> {
    let (ty, sd) = cms::content_info(sig)?;
    if ty != oid::SIGNED_DATA {
        return Err(SmimeError::UnsupportedCmsType {
            oid: der::oid_to_string(&ty),
        });
    }
    let info = cms::signed_data(&sd)?;
    let certs = info
        .certs
        .iter()
        .map(|der| trust.parse_cert(der))
        .collect::<Result<Vec<_>, _>>()?;
    if info.signers.is_empty() {
        return Err(SmimeError::Unsigned {
            found: "SignedData with no SignerInfo".into(),
        });
    }

    if matches!(form, Form::Opaque) && !info.has_content {
        return Err(SmimeError::MalformedCms(
            "opaque signed-data carries no content".into(),
        ));
    }
    // The announced digest list is checked too, though only for digests we know: OpenSSL 3.0's
    // CMS_verify leaks its content BIO when it cannot set one of them up (found by the
    // smime_verify fuzz target). Weak ones listed beside a strong signer are left to the
    // per-signer check below.
    if let Some(unknown) = info
        .digest_algorithms
        .iter()
        .find(|alg| cms::digest_name(alg).is_none())
    {
        return Err(SmimeError::UnsupportedDigest {
            oid: der::oid_to_string(unknown),
        });
    }
    let mut notes = Vec::new();
    let mut signer_certs = Vec::with_capacity(info.signers.len());
    for si in &info.signers {
        let digest = accepted_digest(&si.digest)?;
        if let Form::Detached { micalg, .. } = form {
            if let Some(note) = micalg_note(micalg, digest) {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        // RFC 5652 §5.3: the attribute names the type of what was signed. OpenSSL does not
        // compare them; a signature over one type must not pass for another.
        if si
            .content_type
            .as_ref()
            .is_some_and(|ct| *ct != info.content_type)
        {
            return Err(SmimeError::MalformedCms(
                "a SignerInfo's contentType attribute does not name the signed content's type"
                    .into(),
            ));
        }
        let (_, cert) = info
            .certs
            .iter()
            .zip(&certs)
            .find(|(der, c)| si.sid.matches_encoded(der, c))
            .ok_or_else(|| SmimeError::SignerCertMissing {
                sid: si.sid.describe(),
            })?;
        check_key_strength(cert)?;
        signer_certs.push((cert.clone(), digest));
    }

    // CMS_verify checks every SignerInfo; chain checks are ours so each failure gets its own
    // error. BINARY keeps openssl from rewriting line ends in the content.
    let verifier = Verifier {
        sig,
        certs: &certs,
        flags: CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
    };
    let content = match form {
        Form::Opaque => {
            let mut out = Vec::new();
            let (mut cms, parsed) = verifier.read()?;
            cms.verify(Some(&parsed), None, None, Some(&mut out), verifier.flags)
                .map_err(SmimeError::BadSignature)?;
            SignedContent::Owned(out)
        }
        Form::Detached { content, .. } => {
            // OpenSSL's reading of the whole SignedData cost more than the signature checks
            // themselves; in the shape every S/MIME agent writes they are made here instead.
            let attributes_verified = !info.has_extra_fields
                && info
                    .signers
                    .iter()
                    .zip(&signer_certs)
                    .all(|(si, (cert, _))| attributes_verify_here(si, cert));
            verify_detached(&verifier, attributes_verified, &info.signers, content)?
        }
    };

    let mut signers = Vec::with_capacity(signer_certs.len());
    for (cert, digest) in signer_certs {
        let verdict = trust.verify_chain(domain, Direction::Incoming, &cert, &certs)?;
        if !usage_allows(&cert, Usage::Sign) {
            return Err(SmimeError::KeyUsage {
                subject: subject_string(&cert),
                needed: "digitalSignature",
            });
        }
        check_email_eku(&cert)?;
        signers.push(VerifiedSigner {
            cert,
            digest,
            trusted_by: verdict.anchor,
            chain: verdict.chain,
        });
    }
    Ok(Signed {
        content,
        signers,
        notes,
    })
}

/// OpenSSL's reading of a CMS structure our own parser already accepted. Its refusal is
/// reported as malformed CMS rather than as OpenSSL's error stack, which means nothing to an
/// administrator.
fn read_cms(der: &[u8]) -> Result<CmsContentInfo, SmimeError> {
    CmsContentInfo::from_der(der)
        .map_err(|_| SmimeError::MalformedCms("OpenSSL cannot read the CMS structure".into()))
}

/// Signatures up to this size are re-encoded without their certificates before OpenSSL
/// reads them; a detached signature is a few kilobytes.
const MAX_STRIPPED_SIGNATURE: usize = 64 * 1024;

/// A SignedData for OpenSSL's verifier, with the certificates it carried, already parsed.
struct Verifier<'a> {
    sig: &'a [u8],
    certs: &'a [X509],
    flags: CMSOptions,
}

impl Verifier<'_> {
    /// OpenSSL's reading of the SignedData and the certificates to verify with. It gets the
    /// certificates already parsed (from the cache) and a SignedData without them, except for
    /// opaque signatures big enough that the copy would cost more.
    fn read(&self) -> Result<(CmsContentInfo, Stack<X509>), SmimeError> {
        let mut parsed = Stack::new()?;
        for c in self.certs {
            parsed.push(c.clone())?;
        }
        let cms = if self.sig.len() <= MAX_STRIPPED_SIGNATURE {
            read_cms(&cms::without_certificates(self.sig)?)?
        } else {
            read_cms(self.sig)?
        };
        Ok((cms, parsed))
    }

    fn verify_detached(&self, content: &[u8]) -> Result<(), SmimeError> {
        let (mut cms, certs) = self.read()?;
        cms.verify(Some(&certs), None, Some(content), None, self.flags)
            .map_err(SmimeError::BadSignature)
    }

    /// Every SignerInfo's signature over its signed attributes, leaving the messageDigest
    /// attribute to the caller: rust-openssl's verify copies the content into a growing
    /// memory BIO (three copies of a 1 MB message, and as many megabytes held).
    fn verify_attributes(&self) -> Result<(), SmimeError> {
        let (mut cms, certs) = self.read()?;
        cms.verify(
            Some(&certs),
            None,
            Some(&[]),
            None,
            self.flags | CMSOptions::NO_CONTENT_VERIFY,
        )
        .map_err(SmimeError::BadSignature)
    }
}

/// Whether `si`'s signature over its signed attributes verifies with `cert`'s key, checked
/// here as `CMS_verify` would check it, for the shape every S/MIME agent writes: an RSA key,
/// PKCS#1 v1.5, a SHA-2 digest, signed attributes in DER (so the bytes received are the bytes
/// OpenSSL would re-encode and check) that keep OpenSSL's attribute rules, and no unsigned
/// attributes. `false` says only that it was not verified here: CMS_verify then decides, so
/// every refusal stays OpenSSL's and nothing it would accept is refused.
fn attributes_verify_here(si: &cms::SignerInfoSummary, cert: &X509) -> bool {
    let Some(attrs) = si.signed_attrs.as_deref() else {
        return false;
    };
    let md = match cms::digest_name(&si.digest) {
        Some("sha-256") => MessageDigest::sha256(),
        Some("sha-384") => MessageDigest::sha384(),
        Some("sha-512") => MessageDigest::sha512(),
        _ => return false,
    };
    // OpenSSL takes rsaEncryption, or an RSA signature OID whatever digest it names, as
    // PKCS#1 v1.5 with the SignerInfo's digest; RSASSA-PSS is left to it.
    let pkcs1 = [
        oid::RSA_ENCRYPTION,
        oid::SHA256_WITH_RSA,
        oid::SHA384_WITH_RSA,
        oid::SHA512_WITH_RSA,
    ]
    .contains(&si.signature_alg.as_slice());
    if !pkcs1
        || si.has_trailer
        || si.message_digest.is_none()
        || !cms::signed_attrs_are_der(attrs)
        || !cms::signed_attribute_rules_hold(attrs)
    {
        return false;
    }
    let Ok(key) = cert.public_key() else {
        return false;
    };
    if key.id() != Id::RSA {
        return false;
    }
    let verified = SignatureVerifier::new(md, &key).and_then(|mut v| {
        v.set_rsa_padding(Padding::PKCS1)?;
        v.verify_oneshot(&si.signature, attrs)
    });
    // A failed check leaves errors on OpenSSL's queue that are not CMS_verify's.
    if !matches!(verified, Ok(true)) {
        let _ = ErrorStack::get();
        return false;
    }
    true
}

/// Verifies a detached signature over `content`, exactly as transmitted or, for senders that
/// sign the canonical form but transmit bare LF, over its CRLF form. Returns the bytes that
/// verified, as a range of `content` when they are its own.
///
/// When every SignerInfo has signed attributes (every S/MIME agent writes them), the
/// signatures over the attributes are checked first, by OpenSSL unless
/// `attributes_verified` says they were already, and the content's digest is compared with
/// each messageDigest attribute here, streaming; other shapes go through OpenSSL whole.
fn verify_detached(
    verifier: &Verifier<'_>,
    attributes_verified: bool,
    signers: &[cms::SignerInfoSummary],
    content: &[u8],
) -> Result<SignedContent, SmimeError> {
    let attributed = signers.iter().all(|s| s.message_digest.is_some());
    if attributed && !attributes_verified {
        verifier.verify_attributes()?;
    }
    let check = |bytes: &[u8]| {
        if attributed {
            digests_match(signers, bytes)
        } else {
            verifier.verify_detached(bytes)
        }
    };
    let first = match check(content) {
        Ok(()) => return Ok(SignedContent::Within(0..content.len())),
        Err(first) => first,
    };
    if mime::crlf_growth(content) > 0 {
        let canonical = mime::to_crlf(content);
        if check(&canonical).is_ok() {
            return Ok(SignedContent::Owned(canonical));
        }
    }
    Err(first)
}

/// Whether `content` has the digest every SignerInfo's messageDigest attribute names.
fn digests_match(signers: &[cms::SignerInfoSummary], content: &[u8]) -> Result<(), SmimeError> {
    let mut computed: Vec<(&[u8], openssl::hash::DigestBytes)> = Vec::new();
    for si in signers {
        let expected = si.message_digest.as_deref().unwrap_or_default();
        let digest = match computed
            .iter()
            .find(|(alg, _)| *alg == si.digest.as_slice())
        {
            Some((_, d)) => d,
            None => {
                let md = match cms::digest_name(&si.digest) {
                    Some("sha-256") => MessageDigest::sha256(),
                    Some("sha-384") => MessageDigest::sha384(),
                    Some("sha-512") => MessageDigest::sha512(),
                    // accepted_digest admitted nothing else.
                    _ => return Err(SmimeError::BadSignature(ErrorStack::get())),
                };
                computed.push((&si.digest, openssl::hash::hash(md, content)?));
                &computed[computed.len() - 1].1
            }
        };
        if &digest[..] != expected {
            return Err(SmimeError::BadSignature(ErrorStack::get()));
        }
    }
    Ok(())
}

/// The inner message: the `message/rfc822` body when wrapped; otherwise the outer non-MIME
/// headers in front of the signed entity. `decrypted` is the buffer `signed` points into;
/// a wrapped message is moved to its start rather than copied out of it.
fn unwrap_inner(
    outer_headers: &[mime::Header<'_>],
    decrypted: Vec<u8>,
    signed: SignedContent,
) -> Result<(Vec<u8>, bool), SmimeError> {
    let (mut buffer, range) = match signed {
        SignedContent::Within(range) => (decrypted, range),
        SignedContent::Owned(copy) => {
            drop(decrypted);
            let len = copy.len();
            (copy, 0..len)
        }
    };
    let signed = &buffer[range.clone()];
    let (h, body) = mime::split_entity(signed);
    let headers = mime::parse_headers(h);
    let ct = mime::parse_content_type(mime::header(&headers, "Content-Type").unwrap_or(""));
    if ct.mime == "message/rfc822" {
        let start = range.start + offset_in(signed, body);
        buffer.copy_within(start..range.end, 0);
        buffer.truncate(range.end - start);
        return Ok((buffer, true));
    }
    let mut inner = Vec::with_capacity(signed.len() + 1024);
    for oh in outer_headers {
        let n = &oh.name;
        let is_content = n.len() >= 8 && n[..8].eq_ignore_ascii_case("content-");
        if !is_content && !n.eq_ignore_ascii_case("MIME-Version") {
            inner.extend_from_slice(oh.raw);
        }
    }
    inner.extend_from_slice(b"MIME-Version: 1.0\r\n");
    inner.extend_from_slice(signed);
    Ok((inner, false))
}

fn addresses(addr: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    addr.map(|a| {
        a.iter()
            .filter_map(|x| x.address().map(|s| s.trim().to_ascii_lowercase()))
            .collect()
    })
    .unwrap_or_default()
}

/// From addresses, then Sender: a multi-author message is sent by its Sender.
fn sender_addresses(msg: &mail_parser::Message<'_>) -> Vec<String> {
    let mut out = addresses(msg.from());
    for s in addresses(msg.sender()) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Requires every signer to be bound to a From/Sender address, address binding preferred.
fn bind_signers(
    signers: Vec<VerifiedSigner>,
    senders: &[String],
    from: &str,
) -> Result<Vec<SignerVerdict>, SmimeError> {
    let mut out = Vec::with_capacity(signers.len());
    for s in signers {
        let best: Option<(Binding, &String)> = senders
            .iter()
            .filter_map(|a| certs::binding(&s.cert, a).map(|b| (b, a)))
            .min_by_key(|(b, _)| *b);
        let Some((binding, address)) = best else {
            return Err(SmimeError::SignerMismatch {
                from: from.to_string(),
                signer: subject_string(&s.cert),
            });
        };
        out.push(SignerVerdict {
            subject: subject_string(&s.cert),
            address: Some(address.clone()),
            binding: Some(binding),
            digest: s.digest.to_string(),
            trusted_by: s.trusted_by,
            chain: s.chain,
        });
    }
    Ok(out)
}

fn check_envelope(
    env: &Envelope,
    senders: &[String],
    msg: &mail_parser::Message<'_>,
) -> Result<(), SmimeError> {
    let mail_from = crate::address::bare(&env.mail_from);
    if !senders.contains(&mail_from) {
        return Err(SmimeError::EnvelopeMismatch {
            reason: format!("MAIL FROM <{mail_from}> is not the message From or Sender"),
        });
    }
    let mut listed = addresses(msg.to());
    listed.extend(addresses(msg.cc()));
    for rcpt in &env.rcpt_to {
        let rcpt = crate::address::bare(rcpt);
        if !listed.contains(&rcpt) {
            return Err(SmimeError::EnvelopeMismatch {
                reason: format!("RCPT TO <{rcpt}> is not in To or Cc"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smime::der::TAG_SET;
    use crate::smime::RevocationPolicy;
    use openssl::pkey::{PKey, Private};
    use openssl::sign::Signer;

    const CONTENT: &[u8] = b"Content-Type: text/plain\r\n\r\nhello\r\n";

    fn signer() -> (X509, PKey<Private>) {
        crate::smime::test_certs::rsa_self_signed(0x8124)
    }

    fn attribute(ty: &[u8], values: &[&[u8]]) -> Vec<u8> {
        der::seq(&[&der::oid_tlv(ty), &der::tlv(TAG_SET, &values.concat())])
    }

    fn content_type(ty: &[u8]) -> Vec<u8> {
        attribute(oid::CONTENT_TYPE, &[&der::oid_tlv(ty)])
    }

    fn message_digest() -> Vec<u8> {
        let digest = openssl::hash::hash(MessageDigest::sha256(), CONTENT).unwrap();
        attribute(oid::MESSAGE_DIGEST, &[&der::tlv(TAG_OCTET_STRING, &digest)])
    }

    fn signing_time() -> Vec<u8> {
        attribute(oid::SIGNING_TIME, &[&der::tlv(0x17, b"261124100000Z")])
    }

    /// A detached SignedData over CONTENT whose one SignerInfo signs `attrs` (an encoded SET
    /// OF, in the order given) with PKCS#1 v1.5 and SHA-256; `edit` changes the encoding of
    /// the attributes after signing.
    fn signed_data(
        (cert, key): &(X509, PKey<Private>),
        attrs: &[Vec<u8>],
        edit: impl Fn(&mut Vec<u8>),
    ) -> Vec<u8> {
        let set = der::tlv(TAG_SET, &attrs.concat());
        let mut signing = Signer::new(MessageDigest::sha256(), key).unwrap();
        signing.set_rsa_padding(Padding::PKCS1).unwrap();
        let signature = signing.sign_oneshot_to_vec(&set).unwrap();
        let mut signed_attrs = set;
        signed_attrs[0] = 0xA0;
        edit(&mut signed_attrs);
        let cert_der = cert.to_der().unwrap();
        let (issuer, serial) = der::issuer_and_serial(&cert_der).unwrap();
        let sha256 = der::seq(&[&der::oid_tlv(oid::SHA256)]);
        let rsa = der::seq(&[&der::oid_tlv(oid::RSA_ENCRYPTION), &der::tlv(TAG_NULL, &[])]);
        let signer_info = der::seq(&[
            &der::small_int(1),
            &der::seq(&[&issuer, &serial]),
            &sha256,
            &signed_attrs,
            &rsa,
            &der::tlv(TAG_OCTET_STRING, &signature),
        ]);
        let signed = der::seq(&[
            &der::small_int(1),
            &der::tlv(TAG_SET, &sha256),
            &der::seq(&[&der::oid_tlv(oid::DATA)]),
            &der::tlv(0xA0, &cert_der),
            &der::tlv(TAG_SET, &signer_info),
        ]);
        der::seq(&[&der::oid_tlv(oid::SIGNED_DATA), &der::tlv(0xA0, &signed)])
    }

    fn verified_here(sig: &[u8], cert: &X509) -> bool {
        let info = cms::signed_data(&cms::content_info(sig).unwrap().1).unwrap();
        attributes_verify_here(&info.signers[0], cert)
    }

    fn openssl_accepts(sig: &[u8]) -> bool {
        let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
        CmsContentInfo::from_der(sig)
            .and_then(|mut cms| cms.verify(None, None, Some(CONTENT), None, flags))
            .is_ok()
    }

    /// The whole check, up to the chain: with no anchors, a SignedData whose signatures
    /// verified fails on trust.
    fn check(sig: &[u8]) -> SmimeError {
        let trust = TrustStore::new(RevocationPolicy::Off);
        let form = Form::Detached {
            content: CONTENT,
            micalg: Some("sha-256"),
        };
        match check_signed_data(sig, form, &trust, "b.example") {
            Ok(_) => panic!("accepted without anchors"),
            Err(e) => e,
        }
    }

    fn passed_signature_checks(err: &SmimeError) -> bool {
        matches!(
            err,
            SmimeError::NoTrustAnchors { .. } | SmimeError::Untrusted { .. }
        )
    }

    /// What this file verifies itself it verifies as OpenSSL does: every shape accepted here
    /// OpenSSL accepts, and each shape it leaves is refused by CMS_verify, not by us.
    #[test]
    fn signatures_over_signed_attributes_verified_here_agree_with_openssl() {
        let pki = signer();
        let usual = [content_type(oid::DATA), signing_time(), message_digest()];

        let sig = signed_data(&pki, &usual, |_| {});
        assert!(verified_here(&sig, &pki.0));
        assert!(openssl_accepts(&sig));
        let err = check(&sig);
        assert!(passed_signature_checks(&err), "{err:?}");

        // OpenSSL checks the attributes in the order received, not sorted.
        let reordered = [message_digest(), signing_time(), content_type(oid::DATA)];
        let sig = signed_data(&pki, &reordered, |_| {});
        assert!(verified_here(&sig, &pki.0));
        assert!(openssl_accepts(&sig));
    }

    #[test]
    fn a_signed_attribute_altered_after_signing_is_refused() {
        let pki = signer();
        let usual = [content_type(oid::DATA), signing_time(), message_digest()];
        let sig = signed_data(&pki, &usual, |attrs| {
            let at = attrs
                .windows(4)
                .position(|w| w == b"2611")
                .expect("signing time");
            attrs[at + 3] = b'2';
        });
        assert!(!verified_here(&sig, &pki.0));
        assert!(!openssl_accepts(&sig));
        let err = check(&sig);
        assert!(matches!(err, SmimeError::BadSignature(_)), "{err:?}");
    }

    /// RFC 5652 §5.3: a signature over another content type does not vouch for this one.
    /// OpenSSL does not compare them, so this refusal is ours on every path.
    #[test]
    fn a_content_type_attribute_naming_another_type_is_refused() {
        let pki = signer();
        let attrs = [
            content_type(oid::SIGNED_DATA),
            signing_time(),
            message_digest(),
        ];
        let sig = signed_data(&pki, &attrs, |_| {});
        assert!(openssl_accepts(&sig), "OpenSSL alone would accept it");
        let err = check(&sig);
        assert!(
            matches!(&err, SmimeError::MalformedCms(m) if m.contains("contentType")),
            "{err:?}"
        );
    }

    /// OpenSSL's rules for signed attributes (ossl_cms_si_check_attributes): each break of
    /// them is left to CMS_verify, which refuses it although the signature itself is good.
    #[test]
    fn signed_attributes_breaking_the_cms_rules_are_refused() {
        let pki = signer();
        let ct = content_type(oid::DATA);
        let md = message_digest();
        let st = signing_time();
        let two_times = attribute(
            oid::SIGNING_TIME,
            &[
                &der::tlv(0x17, b"261124100000Z"),
                &der::tlv(0x17, b"261124100001Z"),
            ],
        );
        let counter = attribute(oid::COUNTERSIGNATURE, &[&der::seq(&[])]);
        let cases: [(&str, Vec<Vec<u8>>); 6] = [
            ("no messageDigest", vec![ct.clone(), st.clone()]),
            ("no contentType", vec![st.clone(), md.clone()]),
            (
                "signingTime twice",
                vec![ct.clone(), st.clone(), st.clone(), md.clone()],
            ),
            (
                "signingTime with two values",
                vec![ct.clone(), two_times, md.clone()],
            ),
            (
                "a signed countersignature",
                vec![ct.clone(), counter, md.clone()],
            ),
            (
                "signingTime without a value",
                vec![ct.clone(), attribute(oid::SIGNING_TIME, &[]), md.clone()],
            ),
        ];
        for (name, attrs) in cases {
            let sig = signed_data(&pki, &attrs, |_| {});
            assert!(!verified_here(&sig, &pki.0), "{name}");
            assert!(!openssl_accepts(&sig), "{name}");
            let err = check(&sig);
            assert!(
                matches!(err, SmimeError::BadSignature(_)),
                "{name}: {err:?}"
            );
        }
    }

    /// Attributes whose encoding OpenSSL would change before checking the signature (values
    /// out of SET OF order, a long-form length) are not checked here: OpenSSL's verdict on
    /// its re-encoding stands.
    #[test]
    fn signed_attributes_not_in_der_are_left_to_openssl() {
        let pki = signer();
        let unsorted = attribute(
            oid::SMIME_CAPABILITIES,
            &[&der::seq(&[&der::oid_tlv(oid::AES256_CBC)]), &der::seq(&[])],
        );
        let attrs = [content_type(oid::DATA), unsorted, message_digest()];
        let sig = signed_data(&pki, &attrs, |_| {});
        assert!(!verified_here(&sig, &pki.0));
        assert!(!openssl_accepts(&sig), "OpenSSL sorts, then checks");
        assert!(matches!(check(&sig), SmimeError::BadSignature(_)));

        // signingTime's SET written with a long-form length: the signature over these bytes
        // verifies, but OpenSSL checks the minimal form.
        let long_time = der::seq(&[
            &der::oid_tlv(oid::SIGNING_TIME),
            &[&[TAG_SET, 0x81, 15][..], &der::tlv(0x17, b"261124100000Z")].concat(),
        ]);
        let attrs = [content_type(oid::DATA), long_time, message_digest()];
        let sig = signed_data(&pki, &attrs, |_| {});
        assert!(!verified_here(&sig, &pki.0));
        assert!(!openssl_accepts(&sig));
    }
}
