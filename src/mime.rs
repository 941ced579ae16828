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
    let mut closed = false;
    // Only lines that start with the delimiter are looked at: the boundary is searched for,
    // rather than every line of the body split and compared.
    let finder = memchr::memmem::Finder::new(dash);
    let mut search = 0usize;
    while let Some(found) = finder.find(&body[search..]) {
        let line_start = search + found;
        let pos =
            memchr::memchr(b'\n', &body[line_start..]).map_or(body.len(), |e| line_start + e + 1);
        search = pos;
        if line_start > 0 && body[line_start - 1] != b'\n' {
            continue;
        }
        let Some(after) = trim_eol(&body[line_start..pos]).strip_prefix(dash) else {
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
    let mut out = Vec::with_capacity(data.len() + crlf_growth(data));
    extend_crlf(&mut out, data);
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

/// How many bytes [`extend_crlf`] adds to `data`: one per bare LF.
pub(crate) fn crlf_growth(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data)
        .filter(|&i| i == 0 || data[i - 1] != b'\r')
        .count()
}

/// Appends `data` to `out` with bare LF replaced by CRLF, copying whole runs between line ends
/// (a byte-at-a-time loop cost as much as the signature's digest).
pub(crate) fn extend_crlf(out: &mut Vec<u8>, data: &[u8]) {
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', data) {
        if i == 0 || data[i - 1] != b'\r' {
            out.extend_from_slice(&data[start..i]);
            out.extend_from_slice(b"\r\n");
            start = i + 1;
        }
    }
    out.extend_from_slice(&data[start..]);
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Input bytes per 76-character line.
const BASE64_LINE_BYTES: usize = 57;

/// Base64 in 76-character CRLF-terminated lines, written as the input arrives in pieces of
/// any size, so an encoded CMS structure never has to exist unencoded in one buffer.
pub(crate) struct Base64Lines<'o> {
    out: &'o mut Vec<u8>,
    pending: [u8; BASE64_LINE_BYTES],
    pending_len: usize,
}

impl<'o> Base64Lines<'o> {
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        Base64Lines {
            out,
            pending: [0; BASE64_LINE_BYTES],
            pending_len: 0,
        }
    }

    /// The encoded size of `n` input bytes, line ends included.
    pub(crate) fn encoded_len(n: usize) -> usize {
        n.div_ceil(3) * 4 + n.div_ceil(BASE64_LINE_BYTES) * 2
    }

    pub(crate) fn write(&mut self, mut data: &[u8]) {
        if self.pending_len > 0 {
            let take = (BASE64_LINE_BYTES - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < BASE64_LINE_BYTES {
                return;
            }
            let line = self.pending;
            encode_line(self.out, &line);
            self.pending_len = 0;
        }
        let mut lines = data.chunks_exact(BASE64_LINE_BYTES);
        for line in &mut lines {
            encode_line(self.out, line);
        }
        let rest = lines.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Makes room for the encoding of `n` more input bytes.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.out.reserve(Self::encoded_len(n));
    }

    /// Writes the last, shorter line (padded) if there is one.
    pub(crate) fn finish(self) {
        if self.pending_len > 0 {
            encode_line(self.out, &self.pending[..self.pending_len]);
        }
    }
}

/// Encodes at most one line's worth of input and its CRLF.
fn encode_line(out: &mut Vec<u8>, line: &[u8]) {
    let a = BASE64_ALPHABET;
    // Built on the stack and appended once: per-byte pushes cost a capacity check each.
    let mut text = [0u8; 78];
    let mut n = 0;
    let mut groups = line.chunks_exact(3);
    for g in &mut groups {
        let v = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        text[n] = a[(v >> 18) as usize & 63];
        text[n + 1] = a[(v >> 12) as usize & 63];
        text[n + 2] = a[(v >> 6) as usize & 63];
        text[n + 3] = a[v as usize & 63];
        n += 4;
    }
    let rest = groups.remainder();
    if !rest.is_empty() {
        let v = u32::from(rest[0]) << 16 | rest.get(1).map_or(0, |&y| u32::from(y) << 8);
        text[n] = a[(v >> 18) as usize & 63];
        text[n + 1] = a[(v >> 12) as usize & 63];
        text[n + 2] = if rest.len() == 2 {
            a[(v >> 6) as usize & 63]
        } else {
            b'='
        };
        text[n + 3] = b'=';
        n += 4;
    }
    text[n] = b'\r';
    text[n + 1] = b'\n';
    out.extend_from_slice(&text[..n + 2]);
}

/// Base64 with 76-character lines, CRLF-terminated.
pub(crate) fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(Base64Lines::encoded_len(data.len()));
    let mut enc = Base64Lines::new(&mut out);
    enc.write(data);
    enc.finish();
    out
}

/// Sextet values of the base64 alphabet; `SKIP` for whitespace, `PAD` for `=`, `BAD` else.
const B64_SKIP: u8 = 0x40;
const B64_PAD: u8 = 0x41;
const B64_BAD: u8 = 0xFF;
const BASE64_VALUES: [u8; 256] = {
    let mut t = [B64_BAD; 256];
    let mut i = 0;
    while i < 64 {
        t[BASE64_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    // What u8::is_ascii_whitespace accepts: space, tab, LF, form feed, CR.
    t[b' ' as usize] = B64_SKIP;
    t[b'\t' as usize] = B64_SKIP;
    t[b'\n' as usize] = B64_SKIP;
    t[0x0C] = B64_SKIP;
    t[b'\r' as usize] = B64_SKIP;
    t[b'=' as usize] = B64_PAD;
    t
};

/// Decodes base64, ignoring whitespace. Returns `None` on any other junk, on a length that is
/// not a whole number of 4-character groups, and on padding anywhere but at the end.
pub(crate) fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    // One pass straight into the output: the encoded form of a large message is never copied.
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    decode_base64_with(
        data.len(),
        |i| data[i],
        |bytes| out.extend_from_slice(bytes),
    )?;
    Some(out)
}

/// [`base64_decode`] of `buf[from..]` into the front of `buf` itself, which is truncated to the
/// decoded bytes; on `None` the buffer's contents are unspecified. For a sealed message handed
/// over whole, so that it is never held encoded and decoded at once (no base64 crate decodes
/// in place). Writing never overtakes reading: every 3 bytes written follow 4 characters read,
/// and writing starts at 0, reading at `from`.
pub(crate) fn base64_decode_in_place(buf: &mut Vec<u8>, from: usize) -> Option<()> {
    let cells = std::cell::Cell::from_mut(&mut buf[..]).as_slice_of_cells();
    let input = &cells[from..];
    let mut written = 0;
    decode_base64_with(
        input.len(),
        |i| input[i].get(),
        |bytes| {
            for &b in bytes {
                cells[written].set(b);
                written += 1;
            }
        },
    )?;
    buf.truncate(written);
    // Gives the tail back (for a large buffer, glibc shrinks the mapping without copying).
    buf.shrink_to_fit();
    Some(())
}

/// The decoder both forms share: `len` characters read through `at`, each group of up to three
/// decoded bytes handed to `emit` as soon as it is complete.
#[inline(always)]
fn decode_base64_with(
    len: usize,
    at: impl Fn(usize) -> u8,
    mut emit: impl FnMut(&[u8]),
) -> Option<()> {
    let mut acc = 0u32;
    let mut have = 0u32;
    let mut pads = 0u32;
    let mut i = 0usize;
    while i < len {
        // Whole groups of four characters, the bulk of every line, in one step: what the loop
        // below would do with them, without its checks per character (and, as there, all four
        // are read before their bytes are emitted).
        if have == 0 && pads == 0 && i + 4 <= len {
            let [a, b, c, d] =
                [i, i + 1, i + 2, i + 3].map(|k| u32::from(BASE64_VALUES[usize::from(at(k))]));
            if a | b | c | d < 64 {
                let group = a << 18 | b << 12 | c << 6 | d;
                emit(&[(group >> 16) as u8, (group >> 8) as u8, group as u8]);
                i += 4;
                continue;
            }
        }
        let v = BASE64_VALUES[usize::from(at(i))];
        i += 1;
        if v < 64 {
            if pads > 0 {
                return None;
            }
            acc = acc << 6 | u32::from(v);
            have += 1;
            if have == 4 {
                emit(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                have = 0;
            }
        } else if v == B64_PAD {
            // "xx==" or "xxx=": padding completes the last group only.
            pads += 1;
            if have + pads > 4 || have < 2 {
                return None;
            }
        } else if v != B64_SKIP {
            return None;
        }
    }
    match (have, pads) {
        (0, 0) => {}
        (2, 2) => emit(&[(acc >> 4) as u8]),
        (3, 1) => emit(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return None,
    }
    Some(())
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
        assert_eq!(to_crlf(b"\n\nx\r\n\n"), b"\r\n\r\nx\r\n\r\n");
        assert_eq!(crlf_growth(b"\n\nx\r\n\n"), 3);
    }

    /// The reference: openssl's encoder cut into 76-character lines, as seal used to do.
    fn openssl_lines(data: &[u8]) -> Vec<u8> {
        let encoded = openssl::base64::encode_block(data);
        let mut out = Vec::new();
        for chunk in encoded.as_bytes().chunks(76) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn base64_lines_match_openssl_in_any_pieces() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [0, 1, 2, 3, 56, 57, 58, 114, 115, 999, 1000] {
            let want = openssl_lines(&data[..len]);
            assert_eq!(base64_lines(&data[..len]), want, "length {len}");
            assert_eq!(Base64Lines::encoded_len(len), want.len(), "length {len}");
            for piece in [1, 5, 57, 100] {
                let mut out = Vec::new();
                let mut enc = Base64Lines::new(&mut out);
                for p in data[..len].chunks(piece) {
                    enc.write(p);
                }
                enc.finish();
                assert_eq!(out, want, "length {len} in pieces of {piece}");
            }
        }
    }

    /// The delimiter search finds the parts a line-by-line reading finds (the reading it
    /// replaced, kept here as the reference): delimiters only at the start of a line, with
    /// trailing blanks, CRLF or bare LF, a boundary that also occurs inside lines and as the
    /// prefix of a longer one, a preamble, a missing close delimiter.
    #[test]
    fn multipart_split_finds_delimiters_only_at_line_starts() {
        fn by_lines<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<&'a [u8]>> {
            let dash = format!("--{boundary}");
            let (mut parts, mut start, mut pos) = (Vec::new(), None, 0usize);
            for line in lines(body) {
                let line_start = pos;
                pos += line.len();
                let Some(after) = trim_eol(line).strip_prefix(dash.as_bytes()) else {
                    continue;
                };
                let close = after.starts_with(b"--");
                let tail = if close { &after[2..] } else { after };
                if !tail.iter().all(|b| *b == b' ' || *b == b'\t') {
                    continue;
                }
                if let Some(s) = start {
                    let mut end = line_start;
                    if end > s && body[end - 1] == b'\n' {
                        end -= 1;
                        if end > s && body[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(&body[s..end.max(s)]);
                }
                if close {
                    return Some(parts).filter(|p| !p.is_empty());
                }
                start = Some(pos);
            }
            if let Some(s) = start {
                parts.push(&body[s..]);
            }
            Some(parts).filter(|p| !p.is_empty())
        }
        let bodies: [&[u8]; 8] = [
            b"preamble\r\n--b\r\none\r\n--b \t\r\ntwo --b\r\n--b--\r\nepilogue",
            b"--b\none\n--bb\nstill one\n--b\ntwo\n--b--",
            b"--b\r\nx--b\r\n--b--b\r\n--b\r\n\r\n--b--",
            b"--b\r\nno close delimiter\r\n",
            b"--b",
            b"text without delimiters",
            b"",
            b"--b\r\n--b\r\n--b--  \r\n",
        ];
        for body in bodies {
            assert_eq!(
                split_multipart(body, "b"),
                by_lines(body, "b"),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let parts = split_multipart(bodies[0], "b").unwrap();
        assert_eq!(parts, [&b"one"[..], b"two --b"]);
    }

    #[test]
    fn base64_decodes_in_place_behind_a_header_as_it_decodes_a_copy() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 253) as u8).collect();
        for len in [0, 1, 2, 3, 57, 2999, 3000] {
            for header in [&b""[..], b"H: v\r\n\r\n"] {
                let mut buf = header.to_vec();
                buf.extend_from_slice(&openssl_lines(&data[..len]));
                base64_decode_in_place(&mut buf, header.len()).unwrap();
                assert_eq!(buf, &data[..len], "length {len}, header {}", header.len());
            }
        }
        for bad in [&b"QUJ"[..], b"QUJD!", b"QQ==QQ=="] {
            let mut buf = bad.to_vec();
            assert!(base64_decode_in_place(&mut buf, 0).is_none());
        }
    }

    #[test]
    fn base64_decodes_what_openssl_encodes_and_refuses_junk() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 256) as u8).collect();
        for len in [0, 1, 2, 3, 4, 57, 299, 300] {
            let encoded = openssl_lines(&data[..len]);
            assert_eq!(
                base64_decode(&encoded).unwrap(),
                &data[..len],
                "length {len}"
            );
        }
        assert_eq!(base64_decode(b" QUJD\r\nRA==\r\n").unwrap(), b"ABCD");
        assert_eq!(base64_decode(b"QUI=").unwrap(), b"AB");
        for bad in [
            &b"QUJ"[..],
            b"QUJD!",
            b"QQ==QQ==",
            b"Q===",
            b"QUJDR",
            b"=QUJ",
            b"QU=I",
        ] {
            assert!(
                base64_decode(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
