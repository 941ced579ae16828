//! Legacy single-byte encodings mapped to UTF-8 before parsing.

/// quick-xml is built without its encoding tables, so it reads UTF-8 only. A few senders still
/// emit ISO-8859-1 or windows-1252; both are single-byte and trivially mapped, so such documents are
/// converted instead of refused. Returns `None` when the input is already UTF-8 or declares another
/// encoding (which then fails as malformed).
pub(super) fn transcode_legacy(bytes: &[u8]) -> Option<Vec<u8>> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
    let declared = head
        .split("encoding=")
        .nth(1)?
        .trim_start_matches(['"', '\''])
        .split(['"', '\''])
        .next()?
        .to_string();
    let cp1252 = match declared.as_str() {
        "iso-8859-1" | "latin1" | "iso_8859-1" | "l1" => false,
        "windows-1252" | "cp1252" => true,
        _ => return None,
    };
    // windows-1252 differs from Latin-1 only in 0x80..=0x9F.
    const CP1252_HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    let text: String = bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F if cp1252 => CP1252_HIGH[(b - 0x80) as usize],
            _ => char::from(b),
        })
        .collect();
    Some(text.into_bytes())
}
