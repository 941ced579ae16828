//! Direct addresses are plain e-mail addresses (`local@domain`); this is the check every entry
//! point shares.

/// A conservative syntax check: one `@`, a non-empty local part without spaces or control
/// characters, and a dotted domain of letters, digits and hyphens.
///
/// ```
/// use directd::address::is_valid;
/// assert!(is_valid("clinic@direct.example.org"));
/// assert!(!is_valid("clinic@localhost"));
/// assert!(!is_valid("Dr Lee <lee@direct.example.org>"));
/// ```
pub fn is_valid(addr: &str) -> bool {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'
                )
        });
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// The address inside a header or envelope value: `Dr Lee <lee@x.org>`, `<lee@x.org>` and
/// `lee@x.org` all give `lee@x.org`, lower-cased.
///
/// ```
/// use directd::address::bare;
/// assert_eq!(bare("Dr Lee <Lee@X.org>"), "lee@x.org");
/// assert_eq!(bare(" <lee@x.org> "), "lee@x.org");
/// assert_eq!(bare("lee@x.org"), "lee@x.org");
/// ```
pub fn bare(value: &str) -> String {
    let v = value.trim();
    let inner = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    inner.trim().to_ascii_lowercase()
}

/// Lower-cases an address for comparison and storage keys.
pub fn normalize(addr: &str) -> String {
    addr.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_direct_addresses_and_refuses_junk() {
        assert!(is_valid("clinic-a@sandbox.local"));
        assert!(is_valid("dr.smith+lab@direct.example-hospital.org"));
        for bad in [
            "",
            "nobody",
            "@x.org",
            "a@",
            "a@nodot",
            "a b@x.org",
            "a@x..org",
            "a@-x.org",
            "a@x.org\n",
            "<a@x.org>",
        ] {
            assert!(!is_valid(bad), "{bad:?} should be refused");
        }
    }
}
