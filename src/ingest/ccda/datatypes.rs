//! HL7 v3 data types (II, CD, PN, AD, TEL, TS, IVL, PQ, ...) read from captured nodes.

use crate::ingest::model::*;
use crate::ingest::xml::{collapse_whitespace, Node};
pub(super) fn template_id(node: Node) -> Option<TemplateId> {
    Some(TemplateId {
        root: node.attr_string("root")?,
        extension: node.attr_string("extension"),
    })
}

pub(super) fn identifier(node: Node) -> Identifier {
    Identifier {
        root: node.attr_string("root"),
        extension: node.attr_string("extension"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

pub(super) fn code(node: Node) -> Code {
    Code {
        code: node.attr_string("code"),
        code_system: node.attr_string("codeSystem"),
        code_system_name: node.attr_string("codeSystemName"),
        display_name: node.attr_string("displayName"),
        original_text: node.child("originalText").and_then(Node::all_text),
        null_flavor: node.attr_string("nullFlavor"),
        translations: node.children("translation").map(code).collect(),
    }
}

pub(super) fn person_name(node: Node) -> PersonName {
    let parts = |n: &str| -> Vec<String> { node.children(n).filter_map(Node::all_text).collect() };
    let text = collapse_whitespace(node.text());
    PersonName {
        name_use: node.attr_string("use"),
        prefixes: parts("prefix"),
        given: parts("given"),
        family: node.child("family").and_then(Node::all_text),
        suffixes: parts("suffix"),
        text: (!text.is_empty()).then_some(text),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

pub(super) fn address(node: Node) -> Address {
    let part = |n: &str| node.child(n).and_then(Node::all_text);
    Address {
        address_use: node.attr_string("use"),
        street: node
            .children("streetAddressLine")
            .filter_map(Node::all_text)
            .collect(),
        city: part("city"),
        state: part("state"),
        postal_code: part("postalCode"),
        country: part("country"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

pub(super) fn telecom(node: Node) -> Telecom {
    Telecom {
        telecom_use: node.attr_string("use"),
        value: node.attr_string("value"),
        null_flavor: node.attr_string("nullFlavor"),
    }
}

pub(super) fn organization(node: Node) -> Organization {
    Organization {
        ids: node.children("id").map(identifier).collect(),
        names: node.children("name").filter_map(Node::all_text).collect(),
        telecoms: node.children("telecom").map(telecom).collect(),
        addresses: node.children("addr").map(address).collect(),
    }
}

/// Converts an HL7 `TS` to ISO 8601 at the precision given; anything that does not look like a
/// `TS` is kept as sent so no information is lost.
pub(crate) fn ts(raw: &str) -> String {
    let raw = raw.trim();
    let (main, zone) = match raw.find(['+', '-']) {
        Some(i) if i >= 4 => (&raw[..i], Some(&raw[i..])),
        _ => (raw, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    let valid_len = matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let zone_ok = zone.is_none_or(|z| z.len() == 5 && all_digits(&z[1..]));
    let fraction_ok = fraction.is_none_or(|f| digits.len() == 14 && all_digits(f) && !f.is_empty());
    if !valid_len || !all_digits(digits) || !zone_ok || !fraction_ok {
        return raw.to_string();
    }
    let d = digits;
    let mut out = d[..4].to_string();
    if d.len() >= 6 {
        out.push('-');
        out.push_str(&d[4..6]);
    }
    if d.len() >= 8 {
        out.push('-');
        out.push_str(&d[6..8]);
    }
    if d.len() >= 10 {
        out.push('T');
        out.push_str(&d[8..10]);
    }
    if d.len() >= 12 {
        out.push(':');
        out.push_str(&d[10..12]);
    }
    if d.len() >= 14 {
        out.push(':');
        out.push_str(&d[12..14]);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    if let Some(z) = zone {
        out.push_str(&z[..3]);
        out.push(':');
        out.push_str(&z[3..]);
    }
    out
}

/// `(start, end)` of an `IVL_TS` or a single `TS` (start only).
pub(super) fn period(node: Option<Node>) -> (Option<String>, Option<String>) {
    let Some(node) = node else {
        return (None, None);
    };
    if let Some(v) = node.attr("value") {
        return (Some(ts(v)), None);
    }
    let bound = |n: &str| node.child(n).and_then(|b| b.attr("value")).map(ts);
    (bound("low").or_else(|| bound("center")), bound("high"))
}

/// A single point in time: `@value`, else `low`.
pub(super) fn point_time(node: Node) -> Option<String> {
    period(Some(node)).0
}

pub(super) fn status(node: Node) -> Option<String> {
    node.child("statusCode").and_then(|s| s.attr_string("code"))
}

pub(super) fn ids(node: Node) -> Vec<Identifier> {
    node.children("id").map(identifier).collect()
}

pub(super) fn value(node: Node) -> Value {
    let value_type = node
        .attr("type")
        .map(|t| t.rsplit(':').next().unwrap_or(t).trim().to_string());
    let coded = matches!(
        value_type.as_deref(),
        Some("CD" | "CE" | "CO" | "CV" | "CS")
    ) || node.attr("code").is_some()
        || node.attr("codeSystem").is_some();
    let mut v = Value {
        value: node.attr_string("value"),
        unit: node.attr_string("unit"),
        null_flavor: node.attr_string("nullFlavor"),
        ..Value::default()
    };
    if coded {
        v.code = Some(code(node));
    } else if value_type.as_deref() == Some("IVL_PQ") {
        let low = node.child("low");
        let high = node.child("high");
        let low_v = low.and_then(|n| n.attr_string("value"));
        let high_v = high.and_then(|n| n.attr_string("value"));
        v.value = match (&low_v, &high_v) {
            (Some(l), Some(h)) => Some(format!("{l}-{h}")),
            (Some(l), None) => Some(format!(">={l}")),
            (None, Some(h)) => Some(format!("<={h}")),
            (None, None) => None,
        };
        v.unit = low
            .or(high)
            .and_then(|n| n.attr_string("unit"))
            .or(v.unit.take());
    } else {
        let t = node.all_text();
        v.text = t;
    }
    v.value_type = value_type;
    v
}

pub(super) fn first_value(node: Node) -> Option<Value> {
    node.child("value").map(value)
}

/// The coded content of a CD-typed `value`, which is where problems, allergy types and reactions
/// carry their meaning.
pub(super) fn value_code(node: Node) -> Option<Code> {
    node.child("value").map(code)
}

#[cfg(test)]
mod tests {
    use super::ts;

    #[test]
    fn hl7_timestamps_become_iso() {
        assert_eq!(ts("1970"), "1970");
        assert_eq!(ts("197005"), "1970-05");
        assert_eq!(ts("19700501"), "1970-05-01");
        assert_eq!(ts("20240102143000-0500"), "2024-01-02T14:30:00-05:00");
        assert_eq!(ts("202401021430+0100"), "2024-01-02T14:30+01:00");
        assert_eq!(ts("20240102143000.123"), "2024-01-02T14:30:00.123");
        assert_eq!(ts("not a date"), "not a date");
        assert_eq!(ts("2024-01-02"), "2024-01-02");
    }
}
