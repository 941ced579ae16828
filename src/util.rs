//! Small helpers several layers need, one copy each: hex, sha256 in hex, random tokens.

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The sha256 of `data` in lower-case hex, as the store records attachments and parts.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&openssl::sha::sha256(data))
}

/// `s` as one line: CR and LF become spaces, so a value cannot start a second protocol line or
/// header, and words on either side stay apart.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// `bytes` random bytes in hex, for Message-IDs and MIME boundaries: they need uniqueness, not
/// secrecy, so a failing RNG falls back to the clock rather than failing the message.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:x}");
    }
    hex(&buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_and_digests() {
        assert_eq!(super::hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (a, b) = (super::random_hex(12), super::random_hex(12));
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
    }
}
