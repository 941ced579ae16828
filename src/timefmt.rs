//! Date formatting without a date crate: the store keeps UTC RFC 3339 text, mail headers want
//! RFC 5322 dates, and both are a few lines over the civil-from-days algorithm.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) for days since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split(t: SystemTime) -> (i64, i64, u32, u32, i64, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
    (y, secs.rem_euclid(86_400), m, d, days, weekday)
}

/// `2026-11-25T22:50:00Z`
pub fn rfc3339(t: SystemTime) -> String {
    let (y, s, m, d, _, _) = split(t);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `Wed, 25 Nov 2026 22:50:00 +0000`
pub fn rfc5322(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, s, m, d, _, wd) = split(t);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} +0000",
        DAYS[wd as usize],
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A CMS `Time` (RFC 5652 §11.3) as DER: UTCTime (`YYMMDDHHMMSSZ`) for 1950 through 2049,
/// GeneralizedTime otherwise, as the RFC requires of signingTime.
pub fn cms_time_der(t: SystemTime) -> Vec<u8> {
    let (y, s, m, d, _, _) = split(t);
    let (tag, text) = if (1950..2050).contains(&y) {
        (0x17, format!("{:02}", y % 100))
    } else {
        (0x18, format!("{y:04}"))
    };
    let text = format!(
        "{text}{m:02}{d:02}{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    let mut out = vec![tag, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_647_000); // 2026-11-25T22:50:00Z
        assert_eq!(rfc3339(t), "2026-11-25T22:50:00Z");
        assert_eq!(rfc5322(t), "Wed, 25 Nov 2026 22:50:00 +0000");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        assert_eq!(rfc5322(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn cms_time_switches_to_generalized_time_in_2050() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_647_000);
        assert_eq!(cms_time_der(t), b"\x17\x0d261125225000Z");
        let y2050 = UNIX_EPOCH + Duration::from_secs(2_524_608_000); // 2050-01-01
        assert_eq!(cms_time_der(y2050), b"\x18\x0f20500101000000Z");
    }
}
