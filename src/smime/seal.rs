//! Sign, then encrypt.

use std::borrow::Cow;
use std::time::SystemTime;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::encrypt::Encrypter;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::Id;
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::sign::Signer;
use openssl::stack::Stack;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;

use super::certs::{
    check_email_eku, check_encryption_cert, check_key_strength, check_time, subject_string,
    usage_allows, Usage,
};
use super::cms;
use super::der::{self, oid, TAG_NULL, TAG_OCTET_STRING, TAG_SEQUENCE, TAG_SET};
use super::error::SmimeError;
use super::mime;
use super::{ContentCipher, Identity, KeyTransport, SealOptions};

/// Inner headers repeated on the outside so relays and the receiving HISP can route and
/// correlate without decrypting. Nothing here carries PHI; Subject is replaced.
const OUTER_COPY: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Disposition-Notification-Options",
];

/// Seals `inner`, a complete RFC 5322 message, for `recipients`: signs it as `signer` and
/// encrypts the signed entity to every recipient certificate. Returns the outer message.
pub fn seal(
    inner: &[u8],
    signer: &Identity,
    recipients: &[X509],
    opts: &SealOptions,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    for r in recipients {
        check_encryption_cert(r)?;
    }
    check_key_strength(&signer.cert)?;
    check_time(&signer.cert)?;
    if !usage_allows(&signer.cert, Usage::Sign) {
        return Err(SmimeError::KeyUsage {
            subject: subject_string(&signer.cert),
            needed: "digitalSignature",
        });
    }
    check_email_eku(&signer.cert)?;

    // The inner message with CRLF line ends: borrowed when it has them already (the usual
    // case), so a wrapped seal never holds a second copy of the message.
    let message: Cow<'_, [u8]> = if mime::crlf_growth(inner) == 0 {
        Cow::Borrowed(inner)
    } else {
        Cow::Owned(mime::to_crlf(inner))
    };
    let (header_block, body) = mime::split_entity(&message);
    let headers = mime::parse_headers(header_block);
    if mime::header(&headers, "From").is_none() {
        return Err(SmimeError::BadHeaders("message has no From".into()));
    }

    // The signed content in pieces: for a wrapped message the `message/rfc822` part header
    // and the message, else the inner message's own entity.
    let unwrapped;
    let content: [&[u8]; 2] = if opts.wrap {
        [RFC822_PART, &message]
    } else {
        unwrapped = content_entity(&headers, body);
        [&unwrapped, &[]]
    };
    let mut random = SealRandom::draw()?;
    let signed = sign_entity(&content, signer, &mut random)?;

    let mut targets: Vec<X509> = recipients.to_vec();
    if opts.encrypt_to_sender {
        targets.push(signer.cert.clone());
    }

    let mut out = Vec::new();
    let mut has_mime_version = false;
    for h in &headers {
        let copy = if opts.wrap {
            OUTER_COPY.iter().any(|n| h.name.eq_ignore_ascii_case(n))
        } else {
            !is_content_header(&h.name)
        };
        if copy {
            has_mime_version |= h.name.eq_ignore_ascii_case("MIME-Version");
            out.extend_from_slice(h.raw);
        }
    }
    if !has_mime_version {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    if opts.wrap {
        out.extend_from_slice(
            format!(
                "Subject: {}\r\n",
                crate::util::one_line(&opts.outer_subject)
            )
            .as_bytes(),
        );
    }
    let smime_type = match opts.cipher {
        ContentCipher::Aes128Cbc | ContentCipher::Aes256Cbc => "enveloped-data",
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm => "authEnveloped-data",
    };
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
        )
        .as_bytes(),
    );
    // The signed entity is encrypted piece by piece and its EnvelopedData base64-encoded as it
    // is produced: neither exists whole (at 1 MB, each whole copy cost about as much as AES).
    let pieces = [&signed.head[..], content[0], content[1], &signed.tail[..]];
    let mut body = mime::Base64Lines::new(&mut out);
    envelop(
        &pieces,
        &targets,
        opts.cipher,
        opts.key_transport,
        &random,
        &mut body,
    )?;
    body.finish();
    Ok(out)
}

/// The header of a `message/rfc822` part, in front of the inner message in a wrapped seal.
const RFC822_PART: &[u8] = b"Content-Type: message/rfc822\r\n\r\n";

fn is_content_header(name: &str) -> bool {
    name.len() >= 8 && name[..8].eq_ignore_ascii_case("content-")
}

/// The MIME entity of an unwrapped message: its Content-* headers and body.
fn content_entity(headers: &[mime::Header<'_>], body: &[u8]) -> Vec<u8> {
    let mut part = Vec::with_capacity(body.len() + 256);
    let mut any = false;
    for h in headers.iter().filter(|h| is_content_header(&h.name)) {
        part.extend_from_slice(h.raw);
        any = true;
    }
    if !any {
        part.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    part.extend_from_slice(b"\r\n");
    part.extend_from_slice(body);
    part
}

/// `multipart/signed` around a content, as the text before and after the content's exact
/// bytes, so the content (the whole message) is not copied once more to sit between them.
struct SignedEntity {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// The random values one seal needs, drawn from OpenSSL's generator in one call: each call
/// costs about as much as drawing all of them.
pub(crate) struct SealRandom {
    boundary: [u8; 12],
    /// The content-encryption key (up to AES-256's) and the CBC IV or GCM nonce.
    key: [u8; 32],
    iv: [u8; 16],
}

impl SealRandom {
    pub(crate) fn draw() -> Result<SealRandom, SmimeError> {
        let mut bytes = [0u8; 60];
        rand_bytes(&mut bytes)?;
        let mut r = SealRandom {
            boundary: [0; 12],
            key: [0; 32],
            iv: [0; 16],
        };
        r.boundary.copy_from_slice(&bytes[..12]);
        r.key.copy_from_slice(&bytes[12..44]);
        r.iv.copy_from_slice(&bytes[44..]);
        Ok(r)
    }
}

/// Builds `multipart/signed` around `content` (the concatenation of its pieces) with a
/// detached SignedData over its exact bytes.
fn sign_entity(
    content: &[&[u8]],
    signer: &Identity,
    random: &mut SealRandom,
) -> Result<SignedEntity, SmimeError> {
    let (sig, micalg) = if signer.key.id() == Id::RSA {
        (
            rsa_signed_data(content, signer, SystemTime::now())?,
            "sha-256",
        )
    } else {
        let sig = cms_signed_data(&content.concat(), signer)?;
        let micalg = micalg_of(&sig)?;
        (sig, micalg)
    };

    // No piece can end in a prefix of the boundary line: each is a whole header block or
    // message, ending in CRLF.
    let boundary = loop {
        let b = format!("----=_directd_{}", cms::hex(&random.boundary));
        if content
            .iter()
            .all(|piece| memchr::memmem::find(piece, b.as_bytes()).is_none())
        {
            break b;
        }
        rand_bytes(&mut random.boundary)?;
    };
    let head = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg={micalg}; boundary=\"{boundary}\"\r\n\r\n\
         This is an S/MIME signed message.\r\n--{boundary}\r\n"
    )
    .into_bytes();
    let mut tail = format!(
        "\r\n--{boundary}\r\n\
         Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
    )
    .into_bytes();
    tail.extend_from_slice(&mime::base64_lines(&sig));
    tail.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(SignedEntity { head, tail })
}

/// A detached SignedData by OpenSSL's `CMS_sign`, for signers whose key is not RSA.
fn cms_signed_data(content: &[u8], signer: &Identity) -> Result<Vec<u8>, SmimeError> {
    let mut chain = Stack::new()?;
    for c in &signer.chain {
        chain.push(c.clone())?;
    }
    // BINARY: the content is already canonical; openssl must not rewrite line ends.
    let cms = CmsContentInfo::sign(
        Some(&signer.cert),
        Some(&signer.key),
        Some(&chain),
        Some(content),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )?;
    Ok(cms.to_der()?)
}

/// SMIMECapabilities (RFC 8551 §2.5.2), most preferred first: the AES-CBC ciphers every
/// Direct agent decrypts, as OpenSSL lists them, without the weak ones it lists after them.
fn smime_capabilities() -> Vec<u8> {
    let caps =
        [oid::AES256_CBC, oid::AES192_CBC, oid::AES128_CBC].map(|c| der::seq(&[&der::oid_tlv(c)]));
    der::seq(&caps.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

fn attribute(ty: &[u8], value: &[u8]) -> Vec<u8> {
    der::seq(&[&der::oid_tlv(ty), &der::tlv(TAG_SET, value)])
}

/// A detached CMS SignedData (RFC 5652 §5) over `content` by an RSA signer: SHA-256,
/// PKCS#1 v1.5, issuerAndSerialNumber, the signer's certificate and chain, and the signed
/// attributes OpenSSL writes (contentType, signingTime, messageDigest, smimeCapabilities).
///
/// Built here because `CMS_sign` spent as much beyond the RSA operation as a fifth of the
/// seal of a 10 KB message (building and freeing its ASN.1 trees, the standard capability
/// list, `CMS_final`'s BIO chain, then `i2d` of the whole structure and our re-parse for
/// `micalg`), and rust-openssl offers no lighter CMS writer. The signature itself is
/// OpenSSL's (`EVP_DigestSign`); only the framing is ours, DER throughout, with each SET OF
/// sorted so that verifiers that re-encode the signed attributes (OpenSSL does) get the bytes
/// that were signed. `openssl cms -verify` checks this output in tests/smime_interop.rs.
fn rsa_signed_data(
    content: &[&[u8]],
    signer: &Identity,
    now: SystemTime,
) -> Result<Vec<u8>, SmimeError> {
    let mut hasher = Hasher::new(MessageDigest::sha256())?;
    for piece in content {
        hasher.update(piece)?;
    }
    let digest = hasher.finish()?;
    // SHA-2 AlgorithmIdentifiers without parameters (RFC 5754 §2).
    let sha256 = der::seq(&[&der::oid_tlv(oid::SHA256)]);
    let data_oid = der::oid_tlv(oid::DATA);
    let attrs = der::set_of(vec![
        attribute(oid::CONTENT_TYPE, &data_oid),
        attribute(oid::SIGNING_TIME, &crate::timefmt::cms_time_der(now)),
        attribute(oid::MESSAGE_DIGEST, &der::tlv(TAG_OCTET_STRING, &digest)),
        attribute(oid::SMIME_CAPABILITIES, &smime_capabilities()),
    ]);
    // The signature covers the attributes as a SET OF; they travel as [0] IMPLICIT.
    let mut signing = Signer::new(MessageDigest::sha256(), &signer.key)?;
    signing.set_rsa_padding(Padding::PKCS1)?;
    let signature = signing.sign_oneshot_to_vec(&attrs)?;
    let mut signed_attrs = attrs;
    signed_attrs[0] = 0xA0;

    let cert_der = signer.cert.to_der()?;
    let (issuer, serial) = der::issuer_and_serial(&cert_der)?;
    let rsa = der::seq(&[&der::oid_tlv(oid::RSA_ENCRYPTION), &der::tlv(TAG_NULL, &[])]);
    let signer_info = der::seq(&[
        &der::small_int(1),
        &der::seq(&[&issuer, &serial]),
        &sha256,
        &signed_attrs,
        &rsa,
        &der::tlv(TAG_OCTET_STRING, &signature),
    ]);
    let mut certs = vec![cert_der];
    for c in &signer.chain {
        certs.push(c.to_der()?);
    }
    let mut certificates = der::set_of(certs);
    certificates[0] = 0xA0;
    let signed_data = der::seq(&[
        &der::small_int(1),
        &der::tlv(TAG_SET, &sha256),
        &der::seq(&[&data_oid]),
        &certificates,
        &der::tlv(TAG_SET, &signer_info),
    ]);
    Ok(der::seq(&[
        &der::oid_tlv(oid::SIGNED_DATA),
        &der::tlv(0xA0, &signed_data),
    ]))
}

/// The `micalg` value for the digest openssl actually used, so the header cannot disagree
/// with the SignerInfo whatever key type the signer has.
fn micalg_of(sig: &[u8]) -> Result<&'static str, SmimeError> {
    let (_, content) = cms::content_info(sig)?;
    let info = cms::signed_data(&content)?;
    let digest = &info
        .signers
        .first()
        .ok_or_else(|| SmimeError::MalformedCms("openssl produced no SignerInfo".into()))?
        .digest;
    match cms::digest_name(digest) {
        Some(name @ ("sha-256" | "sha-384" | "sha-512")) => Ok(name),
        Some(name) => Err(SmimeError::WeakDigest {
            alg: name.to_string(),
        }),
        None => Err(SmimeError::UnsupportedDigest {
            oid: der::oid_to_string(digest),
        }),
    }
}

/// Where [`envelop`] writes the DER of the EnvelopedData, in order, as it is produced.
pub(crate) trait DerSink {
    fn put(&mut self, bytes: &[u8]);
    /// Told the total size first, so the output can be allocated once.
    fn expect_total(&mut self, len: usize);
}

impl DerSink for mime::Base64Lines<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.write(bytes);
    }
    fn expect_total(&mut self, len: usize) {
        self.reserve(len);
    }
}

/// Plaintext encrypted per call to the cipher: small enough to stay in cache between the
/// cipher and the base64 encoder.
const CHUNK: usize = 32 * 1024;

/// Encrypts the concatenation of `pieces` to every certificate in `certs` and writes the
/// result to `sink`: CMS EnvelopedData for CBC, or AuthEnvelopedData (RFC 5083, with
/// RFC 5084's GCMParameters and a 16-byte tag, no authenticated attributes) for GCM.
///
/// Built by hand because rust-openssl's `CmsContentInfo::encrypt` only does PKCS#1 v1.5 key
/// transport and reaching OAEP through it would need unsafe FFI. The structure is RFC 5652
/// §6.1 with KeyTransRecipientInfo (version 0, issuerAndSerialNumber), DER throughout: the
/// ciphertext's length is known before it is produced (CBC pads to the next whole block), so
/// every enclosing length is written first and the ciphertext streamed after it.
pub(crate) fn envelop(
    pieces: &[&[u8]],
    certs: &[X509],
    cipher: ContentCipher,
    transport: KeyTransport,
    random: &SealRandom,
    sink: &mut impl DerSink,
) -> Result<(), SmimeError> {
    let (sym, cipher_oid, gcm) = match cipher {
        ContentCipher::Aes128Cbc => (Cipher::aes_128_cbc(), oid::AES128_CBC, false),
        ContentCipher::Aes256Cbc => (Cipher::aes_256_cbc(), oid::AES256_CBC, false),
        ContentCipher::Aes128Gcm => (Cipher::aes_128_gcm(), oid::AES128_GCM, true),
        ContentCipher::Aes256Gcm => (Cipher::aes_256_gcm(), oid::AES256_GCM, true),
    };
    let key = &random.key[..sym.key_len()];
    // CBC: a 16-byte IV; GCM: the 12-byte nonce RFC 5084 recommends.
    let iv = &random.iv[..if gcm { 12 } else { 16 }];
    const TAG_LEN: u8 = 16;
    let content_alg = if gcm {
        let params = der::seq(&[&der::tlv(TAG_OCTET_STRING, iv), &der::small_int(TAG_LEN)]);
        der::seq(&[&der::oid_tlv(cipher_oid), &params])
    } else {
        der::seq(&[&der::oid_tlv(cipher_oid), &der::tlv(TAG_OCTET_STRING, iv)])
    };
    let plain_len: usize = pieces.iter().map(|p| p.len()).sum();
    let cipher_len = if gcm {
        plain_len
    } else {
        (plain_len / 16 + 1) * 16
    };

    let null = der::tlv(TAG_NULL, &[]);
    let sha256_alg = der::seq(&[&der::oid_tlv(oid::SHA256), &null]);
    let key_alg = match transport {
        KeyTransport::RsaOaepSha256 => {
            let mgf = der::seq(&[&der::oid_tlv(oid::MGF1), &sha256_alg]);
            let params = der::seq(&[&der::tlv(0xA0, &sha256_alg), &der::tlv(0xA1, &mgf)]);
            der::seq(&[&der::oid_tlv(oid::RSAES_OAEP), &params])
        }
        KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepOther => {
            der::seq(&[&der::oid_tlv(oid::RSAES_OAEP), &der::seq(&[])])
        }
        KeyTransport::RsaPkcs1v15 => der::seq(&[&der::oid_tlv(oid::RSA_ENCRYPTION), &null]),
    };

    let mut recipient_infos = Vec::with_capacity(certs.len());
    for cert in certs {
        let pkey = cert.public_key()?;
        let mut enc = Encrypter::new(&pkey)?;
        match transport {
            KeyTransport::RsaOaepSha256 => {
                enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
                enc.set_rsa_oaep_md(MessageDigest::sha256())?;
                enc.set_rsa_mgf1_md(MessageDigest::sha256())?;
            }
            KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepOther => {
                enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
            }
            KeyTransport::RsaPkcs1v15 => enc.set_rsa_padding(Padding::PKCS1)?,
        }
        let mut wrapped = vec![0u8; enc.encrypt_len(key)?];
        let n = enc.encrypt(key, &mut wrapped)?;
        wrapped.truncate(n);

        let (issuer, serial) = der::issuer_and_serial(&cert.to_der()?)?;
        let rid = der::seq(&[&issuer, &serial]);
        recipient_infos.push(der::seq(&[
            &der::small_int(0),
            &rid,
            &key_alg,
            &der::tlv(TAG_OCTET_STRING, &wrapped),
        ]));
    }

    let data_oid = der::oid_tlv(oid::DATA);
    let version = der::small_int(0);
    let recipient_infos = der::set_of(recipient_infos);
    let mac_len = if gcm {
        der::tlv_len(usize::from(TAG_LEN))
    } else {
        0
    };
    let content_type = der::oid_tlv(if gcm {
        oid::AUTH_ENVELOPED_DATA
    } else {
        oid::ENVELOPED_DATA
    });
    let eci_len = data_oid.len() + content_alg.len() + der::tlv_len(cipher_len);
    let body_len = version.len() + recipient_infos.len() + der::tlv_len(eci_len) + mac_len;
    let explicit_len = der::tlv_len(body_len);
    let info_len = content_type.len() + der::tlv_len(explicit_len);

    let mut head = Vec::with_capacity(info_len - cipher_len - mac_len + 32);
    der::push_header(&mut head, TAG_SEQUENCE, info_len);
    head.extend_from_slice(&content_type);
    der::push_header(&mut head, 0xA0, explicit_len);
    der::push_header(&mut head, TAG_SEQUENCE, body_len);
    head.extend_from_slice(&version);
    head.extend_from_slice(&recipient_infos);
    der::push_header(&mut head, TAG_SEQUENCE, eci_len);
    head.extend_from_slice(&data_oid);
    head.extend_from_slice(&content_alg);
    der::push_header(&mut head, 0x80, cipher_len);
    sink.expect_total(der::tlv_len(info_len));
    sink.put(&head);

    let mut crypter = Crypter::new(sym, Mode::Encrypt, key, Some(iv))?;
    let mut buf = vec![0u8; CHUNK + sym.block_size()];
    let mut written = 0usize;
    for piece in pieces {
        for chunk in piece.chunks(CHUNK) {
            let n = crypter.update(chunk, &mut buf)?;
            sink.put(&buf[..n]);
            written += n;
        }
    }
    let n = crypter.finalize(&mut buf)?;
    sink.put(&buf[..n]);
    written += n;
    if written != cipher_len {
        // The lengths above were already written; a cipher that disagrees would make them lie.
        return Err(SmimeError::MalformedCms(format!(
            "encryption produced {written} bytes where {cipher_len} were announced"
        )));
    }
    if gcm {
        let mut tag = [0u8; TAG_LEN as usize];
        crypter.get_tag(&mut tag)?;
        sink.put(&der::tlv(TAG_OCTET_STRING, &tag));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> Identity {
        let (cert, key) = crate::smime::test_certs::rsa_self_signed(0x8123);
        Identity::new(cert, key, Vec::new()).unwrap()
    }

    /// The hand-built SignedData is what OpenSSL itself would encode (its re-encoding is
    /// byte-identical, so every SET OF is sorted and every length definite) and verifies over
    /// the content and only over it.
    #[test]
    fn rsa_signed_data_is_der_that_openssl_verifies() {
        let signer = self_signed();
        let content = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let sig =
            rsa_signed_data(&[&content[..9], &content[9..]], &signer, SystemTime::now()).unwrap();
        let mut cms = CmsContentInfo::from_der(&sig).unwrap();
        assert_eq!(cms.to_der().unwrap(), sig);
        assert_eq!(micalg_of(&sig).unwrap(), "sha-256");
        let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
        cms.verify(None, None, Some(content), None, flags).unwrap();
        let mut cms = CmsContentInfo::from_der(&sig).unwrap();
        assert!(cms
            .verify(
                None,
                None,
                Some(b"Content-Type: text/plain\r\n\r\nhellO\r\n"),
                None,
                flags
            )
            .is_err());
        let info = cms::signed_data(&cms::content_info(&sig).unwrap().1).unwrap();
        assert_eq!(info.certs, vec![&signer.cert.to_der().unwrap()[..]]);
        assert_eq!(
            info.signers[0].message_digest.as_deref(),
            Some(&openssl::hash::hash(MessageDigest::sha256(), content).unwrap()[..])
        );
    }
}
