//! The inner (decrypted) message as the store keeps it: each `tests/fixtures/inner_mime/NAME.eml`
//! parses to exactly `NAME.expected.json` (headers, body, attachments with their decoded bytes).
//! `UPDATE_EXPECTED=1` rewrites the expected files.

mod support;

use directd::hisp::edge::message::parse_inner;
use serde_json::json;
use support::expected::bytes;

#[test]
fn inner_message_fixtures_match_expected_json() {
    support::expected::check("inner_mime", "eml", 3, |path, data| {
        let inner = parse_inner(data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        json!({
            "headers": inner.headers,
            "from": inner.from,
            "message_id": inner.message_id,
            "body_type": inner.body_type,
            "body": bytes(&inner.body),
            "attachments": inner.attachments.iter().map(|a| json!({
                "filename": a.filename,
                "mime_type": a.mime_type,
                "description": a.description,
                "data": bytes(&a.data),
            })).collect::<Vec<_>>(),
        })
    });
}
