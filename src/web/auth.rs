//! Passwords (argon2id), the second factor (TOTP, RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps),
//! random tokens, and the back-off after failed logins.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("the system random generator failed: {0}")]
    Random(#[from] openssl::error::ErrorStack),
}

/// Fewer characters than this is refused by `directd users add` and `reset-password`.
pub const MIN_PASSWORD_LEN: usize = 12;

pub fn random_bytes(n: usize) -> Result<Vec<u8>, AuthError> {
    let mut buf = vec![0u8; n];
    openssl::rand::rand_bytes(&mut buf)?;
    Ok(buf)
}

/// 32 random bytes as hex: session cookies and CSRF tokens. Unlike `util::random_hex` (unique
/// ids), these are secrets, so a failing generator is an error, never a fallback.
pub fn random_token() -> Result<String, AuthError> {
    Ok(crate::util::hex(&random_bytes(32)?))
}

/// What the store keeps of a session token: a copy of the store then logs nobody in.
pub fn token_hash(token: &str) -> String {
    crate::util::sha256_hex(token.as_bytes())
}

/// An argon2id PHC string (the crate's defaults: 19 MiB, 2 passes, 1 lane, as OWASP advises).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt =
        SaltString::encode_b64(&random_bytes(16)?).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of no one's password, checked when the name typed is unknown, so that a wrong name
/// takes as long to refuse as a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// Constant-time equality for tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

pub const TOTP_STEP_SECS: u64 = 30;

/// The 6-digit code of `secret` for time step `step` (RFC 4226 dynamic truncation).
pub fn totp_code(secret: &[u8], step: u64) -> u32 {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let mac = PKey::hmac(secret)
        .and_then(|key| {
            let mut signer = Signer::new(MessageDigest::sha1(), &key)?;
            signer.update(&step.to_be_bytes())?;
            signer.sign_to_vec()
        })
        .unwrap_or_default();
    if mac.len() < 20 {
        // No HMAC, no code that anyone could type: refuse rather than accept a constant.
        return u32::MAX;
    }
    let offset = (mac[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    bin % 1_000_000
}

/// The time step a code matches (now, or one step either side for clock drift), if any.
pub fn totp_check(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let typed: u32 = code.parse().ok()?;
    let now = unix_secs / TOTP_STEP_SECS;
    [now, now.saturating_sub(1), now + 1]
        .into_iter()
        .find(|&step| totp_code(secret, step) == typed)
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The otpauth:// URI an authenticator app reads from the enrolment QR code.
pub fn otpauth_uri(user: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/directd:{}?secret={}&issuer=directd&algorithm=SHA1&digits=6&period=30",
        enc(user),
        base32(secret)
    )
}

/// Failures after which logins for a name are refused for a while.
pub const FREE_FAILURES: i64 = 5;

/// How long logins for a name wait after `failures` failures since its last success: nothing
/// for the first few, then 30 s doubling with each further failure, at most 15 minutes.
pub fn backoff_ms(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(5) as u32;
    (30_000i64 << doublings).min(15 * 60 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1 seed; the RFC shows 8 digits, the low 6 are ours.
        let seed = b"12345678901234567890";
        for (time, code) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(totp_code(seed, time / 30), code % 1_000_000, "t={time}");
        }
        assert_eq!(totp_check(seed, "287082", 59), Some(1));
        assert_eq!(totp_check(seed, "287082", 59 + 30), Some(1));
        assert_eq!(totp_check(seed, "287082", 59 + 90), None);
        assert_eq!(totp_check(seed, "28708", 59), None);
    }

    #[test]
    fn base32_and_passwords() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterx"));
        assert!(!verify_password("garbage", "x"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(4), 0);
        assert_eq!(backoff_ms(5), 30_000);
        assert_eq!(backoff_ms(6), 60_000);
        assert_eq!(backoff_ms(50), 15 * 60 * 1000);
    }
}
