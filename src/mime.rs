//! Byte-exact MIME splitting.
//!
//! mail-parser decodes and normalises, but a detached signature covers the exact bytes of the
//! first body part, so multipart/signed has to be cut by hand. The same helpers serve the
//! MDN/DSN parser, which must tolerate sloppy senders. Nothing here allocates in proportion to
//! anything but the input, and part counts are capped.

/// More parts than any Direct message carries; past it the input is treated as hostile.
pub(crate) const MAX_PARTS: usize = 512;

/// One header field, unfolded. `name` keeps its case; compare with `eq_ignore_ascii_case`.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    pub name: String,
    pub value: String,
    /// The field as it appeared, folding and line ends included.
    pub raw: &'a [u8],
}

/// Splits an entity at the first empty line. An entity with no empty line is all headers.
pub(crate) fn split_entity(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&raw[..0], &raw[2..]);
    }
    if raw.starts_with(b"\n") {
        return (&raw[..0], &raw[1..]);
    }
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\r\n") {
                return (&raw[..i + 1], &rest[2..]);
            }
            if rest.starts_with(b"\n") {
                return (&raw[..i + 1], &rest[1..]);
            }
        }
        i += 1;
    }
    (raw, &raw[raw.len()..])
}

/// Lines of `data` with their line ends, tolerating bare LF.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|b| *b == b'\n')
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses a header block. A line with no colon that is not folded is treated as a continuation
/// of the previous field, which is what broken MDN generators need.
pub(crate) fn parse_headers(block: &[u8]) -> Vec<Header<'_>> {
    let mut out: Vec<Header<'_>> = Vec::new();
    let mut start = 0usize;
    for line in lines(block) {
        let line_start = start;
        start += line.len();
        let text = trim_eol(line);
        if text.is_empty() {
            continue;
        }
        let folded = text[0] == b' ' || text[0] == b'\t';
        let colon = text.iter().position(|b| *b == b':');
        // obs-fields allow whitespace before the colon; sloppy MDN generators use it.
        let valid_name = colon.is_some_and(|c| {
            let name = text[..c]
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(&text[..0], |end| &text[..=end]);
            !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())
        });
        if folded || !valid_name {
            if let Some(last) = out.last_mut() {
                let piece = String::from_utf8_lossy(text);
                let piece = piece.trim();
                if !piece.is_empty() {
                    if !last.value.is_empty() {
                        last.value.push(' ');
                    }
                    last.value.push_str(piece);
                }
                let raw_start = raw_offset(block, last.raw);
                last.raw = &block[raw_start..start];
            }
            continue;
        }
        let c = colon.unwrap_or(0);
        out.push(Header {
            name: String::from_utf8_lossy(&text[..c]).trim().to_string(),
            value: String::from_utf8_lossy(&text[c + 1..]).trim().to_string(),
            raw: &block[line_start..start],
        });
    }
    out
}

fn raw_offset(block: &[u8], raw: &[u8]) -> usize {
    (raw.as_ptr() as usize).saturating_sub(block.as_ptr() as usize)
}

pub(crate) fn header<'h>(headers: &'h [Header<'_>], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A parsed Content-Type: lower-cased `type/subtype` and its parameters (names lower-cased).
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `type/subtype; name=value; name="quoted value"`. RFC 2231 continuations are not
/// needed for the parameters Direct uses.
pub(crate) fn parse_content_type(value: &str) -> ContentType {
    let mut parts = split_params(value).into_iter();
    let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            Some((n.trim().to_ascii_lowercase(), unquote(v.trim())))
        })
        .collect();
    ContentType { mime, params }
}

/// Splits on `;` outside quotes.
pub(crate) fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for ch in value.chars() {
        if escaped {
            cur.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quotes => {
                cur.push(ch);
                escaped = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(ch);
            }
            ';' if !in_quotes => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// The body parts of a multipart body, each exactly the bytes between the line end after one
/// delimiter and the line end before the next (RFC 2046 §5.1.1), so part 1 of multipart/signed
/// is the signed text byte for byte. Returns `None` if no closing structure is found.
pub(crate) fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut pos = 0usize;
    let mut closed = false;
    for line in lines(body) {
        let line_start = pos;
        pos += line.len();
        let text = trim_eol(line);
        let Some(after) = text.strip_prefix(dash) else {
            continue;
        };
        let is_close = after.starts_with(b"--");
        let tail = if is_close { &after[2..] } else { after };
        if !tail.iter().all(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        if let Some(start) = part_start {
            // The line break before a delimiter belongs to the delimiter, not the part.
            let mut end = line_start;
            if end > start && body[end - 1] == b'\n' {
                end -= 1;
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push(&body[start..end.max(start)]);
            if parts.len() > MAX_PARTS {
                return None;
            }
        }
        if is_close {
            closed = true;
            break;
        }
        part_start = Some(pos);
    }
    if !closed && part_start.is_some() {
        // Tolerate a missing close delimiter: the last part runs to the end.
        if let Some(start) = part_start {
            parts.push(&body[start..]);
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts)
    }
}

/// Replaces bare LF with CRLF; CMS signatures and S/MIME both work on canonical text.
pub(crate) fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// A file extension (without the dot) for content of `content_type` that came without a name:
/// a phiMail part, an Unstructured Document's body.
pub fn extension_for(content_type: &str) -> &'static str {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    match mime.to_ascii_lowercase().as_str() {
        "application/xml" | "text/xml" | "application/hl7-v3+xml" => "xml",
        "application/pdf" => "pdf",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "text/plain" => "txt",
        "text/rtf" | "application/rtf" => "rtf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "image/gif" => "gif",
        _ => "bin",
    }
}

/// Base64 with 76-character lines, CRLF-terminated.
pub(crate) fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = openssl::base64::encode_block(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decodes base64, ignoring whitespace. Returns `None` on any other junk.
pub(crate) fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    // Bytes, not chars: building a String one char at a time cost more than the decoding.
    let mut compact = Vec::with_capacity(data.len());
    for &b in data {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            compact.push(b);
        } else if !b.is_ascii_whitespace() {
            return None;
        }
    }
    if compact.is_empty() {
        return Some(Vec::new());
    }
    if compact.len() % 4 != 0 {
        return None;
    }
    let text = String::from_utf8(compact).ok()?;
    openssl::base64::decode_block(&text).ok()
}

/// Decodes a part body by its Content-Transfer-Encoding (base64 and quoted-printable; anything
/// else is taken as is).
pub(crate) fn decode_transfer(cte: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    match cte.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => base64_decode(body),
        Some("quoted-printable") => Some(decode_qp(body)),
        _ => Some(body.to_vec()),
    }
}

fn decode_qp(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = body.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|s| u8::from_str_radix(s, 16).ok())
            });
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_signed_parts_exactly() {
        let body =
            b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\r\n--b\r\nsig\r\n--b--\r\n";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(parts[0], b"Content-Type: text/plain\r\n\r\nhi\r\n");
        assert_eq!(parts[1], b"sig");
    }

    #[test]
    fn boundary_prefix_lines_are_not_delimiters() {
        let body = b"--b\r\nx\r\n--bb\r\ny\r\n--b--";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(parts, vec![&b"x\r\n--bb\r\ny"[..]]);
    }

    #[test]
    fn headers_unfold_and_keep_raw() {
        let block = b"Subject: a\r\n b\r\nTo: x@y\r\n";
        let h = parse_headers(block);
        assert_eq!(h[0].value, "a b");
        assert_eq!(h[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(h[1].raw, b"To: x@y\r\n");
    }

    #[test]
    fn content_type_params() {
        let ct = parse_content_type(
            "Multipart/Signed; protocol=\"application/pkcs7-signature\"; micalg=SHA-256; boundary=\"a;b\"",
        );
        assert_eq!(ct.mime, "multipart/signed");
        assert_eq!(ct.param("boundary"), Some("a;b"));
        assert_eq!(ct.param("MICALG"), Some("SHA-256"));
    }

    #[test]
    fn crlf_canonicalisation() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
    }
}
