//! MDN build/parse round trips, DSNs, and the malformed reports ETT sends.
mod support;

use directd::mdn::{
    build_mdn, is_report, parse_report, wants_final_delivery, CorrelationSource, Disposition,
    DsnAction, MdnError, OriginalInfo, ReportKind,
};

fn original() -> OriginalInfo {
    OriginalInfo {
        message_id: "<m1@a.example>".into(),
        original_recipient: Some("Bob@B.example".into()),
        final_recipient: "bob@b.example".into(),
        subject: Some("Referral".into()),
        from: "alice@a.example".into(),
    }
}

#[test]
fn build_then_parse_every_disposition() {
    let all = [
        Disposition::Processed,
        Disposition::Dispatched,
        Disposition::Failed,
        Disposition::Displayed,
        Disposition::Denied,
        Disposition::Error,
    ];
    for kind in all {
        let msg = build_mdn(kind, &original(), "b.example; directd", true);
        let text = String::from_utf8(msg.clone()).unwrap();
        assert!(text.contains("In-Reply-To: <m1@a.example>\r\n"), "{kind:?}");
        assert!(text.contains("From: bob@b.example\r\n"));
        assert!(text.contains("To: alice@a.example\r\n"));
        assert!(text.contains("report-type=disposition-notification"));
        assert!(text.contains("Final-Recipient: rfc822; bob@b.example\r\n"));
        assert!(text.contains("Original-Recipient: rfc822; Bob@B.example\r\n"));
        assert!(text.contains("Reporting-UA: b.example; directd\r\n"));
        assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; "));
        assert!(!text
            .to_ascii_lowercase()
            .contains("disposition-notification-to"));
        assert_eq!(
            text.contains("X-DIRECT-FINAL-DESTINATION-DELIVERY"),
            kind == Disposition::Dispatched
        );
        assert!(is_report(&msg));

        let r = parse_report(&msg).unwrap();
        assert_eq!(r.kind, ReportKind::Mdn);
        assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
        assert_eq!(r.correlation, Some(CorrelationSource::OriginalMessageId));
        assert_eq!(r.reporting_agent.as_deref(), Some("b.example; directd"));
        assert_eq!(r.from.as_deref(), Some("bob@b.example"));
        assert!(r.problems.is_empty(), "{kind:?}: {:?}", r.problems);
        assert_eq!(r.recipients.len(), 1);
        let rr = &r.recipients[0];
        assert_eq!(rr.disposition, Some(kind));
        assert_eq!(rr.final_recipient.as_deref(), Some("bob@b.example"));
        assert_eq!(rr.original_recipient.as_deref(), Some("bob@b.example"));
        assert_eq!(rr.final_delivery_ext, kind == Disposition::Dispatched);
        assert_eq!(rr.is_failure(), kind.is_failure());
    }
}

/// MT 40: without the final-delivery option, no MDN directd builds, whatever its
/// disposition, carries the X-DIRECT-FINAL-DESTINATION-DELIVERY field; with it, only the
/// dispatched one does.
#[test]
fn dispatched_without_the_option_has_no_extension() {
    let msg = build_mdn(Disposition::Dispatched, &original(), "directd", false);
    let r = parse_report(&msg).unwrap();
    assert!(!r.recipients[0].final_delivery_ext);
    for kind in [
        Disposition::Processed,
        Disposition::Dispatched,
        Disposition::Displayed,
        Disposition::Failed,
        Disposition::Denied,
        Disposition::Error,
    ] {
        let text = String::from_utf8(build_mdn(kind, &original(), "directd", false)).unwrap();
        assert!(
            !text
                .to_ascii_uppercase()
                .contains("X-DIRECT-FINAL-DESTINATION-DELIVERY"),
            "{kind:?}: {text}"
        );
    }
}

/// Every MDN gets its own Message-ID, across thousands of them (the IG requires unique
/// Message-IDs; a repeated one would make the sender's correlation or duplicate suppression
/// swallow a report).
#[test]
fn mdn_message_ids_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5000 {
        let msg = build_mdn(Disposition::Processed, &original(), "directd", false);
        let text = String::from_utf8(msg).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("every MDN has a Message-ID")
            .to_string();
        assert!(id.starts_with('<') && id.ends_with("@b.example>"), "{id}");
        assert!(seen.insert(id.clone()), "Message-ID {id} repeated");
    }
}

#[test]
fn header_injection_is_neutralised() {
    let mut o = original();
    o.subject = Some("hi\r\nBcc: eve@evil.example".into());
    o.message_id = "m2@a.example".into();
    let text =
        String::from_utf8(build_mdn(Disposition::Processed, &o, "ua\r\nX: y", false)).unwrap();
    assert!(!text.contains("\r\nBcc:"));
    assert!(!text.contains("\r\nX: y"));
    assert!(text.contains("Original-Message-ID: <m2@a.example>\r\n"));
}

const DSN: &str = "From: MAILER-DAEMON@b.example\r\n\
To: alice@a.example\r\n\
Subject: Delivery Status Notification (Failure)\r\n\
Message-ID: <dsn1@b.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Delivery to the following recipients failed.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.b.example\r\n\
X-Original-Message-ID: <m1@a.example>\r\n\
Arrival-Date: Tue, 24 Nov 2026 10:00:05 +0000\r\n\
\r\n\
Original-Recipient: rfc822;bob@b.example\r\n\
Final-Recipient: rfc822;bob@b.example\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\
\r\n\
Final-Recipient: RFC822; Carol@B.example\r\n\
Action: delivered (relayed to final destination)\r\n\
Status: 2.0.0\r\n\
\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: alice@a.example\r\n\
Message-ID: <m1@a.example>\r\n\
\r\n\
--b1--\r\n";

#[test]
fn dsn_per_recipient() {
    assert!(is_report(DSN.as_bytes()));
    let r = parse_report(DSN.as_bytes()).unwrap();
    assert_eq!(r.kind, ReportKind::Dsn);
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
    assert_eq!(r.correlation, Some(CorrelationSource::XOriginalMessageId));
    assert_eq!(r.reporting_agent.as_deref(), Some("dns; mx.b.example"));
    assert_eq!(r.recipients.len(), 2);
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.recipients[0].action, Some(DsnAction::Failed));
    assert_eq!(r.recipients[0].status.as_deref(), Some("5.1.1"));
    assert!(r.recipients[0].is_failure());
    assert_eq!(
        r.recipients[1].final_recipient.as_deref(),
        Some("carol@b.example")
    );
    assert_eq!(r.recipients[1].action, Some(DsnAction::Delivered));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn dsn_correlation_fallbacks() {
    let no_x = DSN.replace("X-Original-Message-ID: <m1@a.example>\r\n", "");
    let r = parse_report(no_x.as_bytes()).unwrap();
    assert_eq!(r.correlation, Some(CorrelationSource::ReturnedHeaders));
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));

    let irt = no_x.replace(
        "Message-ID: <dsn1@b.example>\r\n",
        "Message-ID: <dsn1@b.example>\r\nIn-Reply-To: <m9@a.example>\r\n",
    );
    let r = parse_report(irt.as_bytes()).unwrap();
    assert_eq!(r.correlation, Some(CorrelationSource::InReplyTo));
    assert_eq!(r.original_message_id.as_deref(), Some("<m9@a.example>"));
}

/// An MDN as a typical HISP sends it; the ETT variants below are edits of it.
const MDN: &str = "From: bob@b.example\r\n\
To: alice@a.example\r\n\
Subject: Processed: Referral\r\n\
Message-ID: <mdn1@b.example>\r\n\
In-Reply-To: <m1@a.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=\"r\"\r\n\
\r\n\
--r\r\n\
Content-Type: text/plain\r\n\
\r\n\
Your message was processed.\r\n\
--r\r\n\
Content-Type: message/disposition-notification\r\n\
\r\n\
Reporting-UA: b.example; HISP\r\n\
Final-Recipient: rfc822; bob@b.example\r\n\
Original-Message-ID: <m1@a.example>\r\n\
Disposition: automatic-action/MDN-sent-automatically; processed\r\n\
\r\n\
--r--\r\n";

#[test]
fn ett_processed_only() {
    let r = parse_report(MDN.as_bytes()).unwrap();
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Processed));
    assert!(!r.recipients[0].final_delivery_ext);
    assert!(r.problems.is_empty());
}

#[test]
fn ett_extra_whitespace() {
    let msg = MDN
        .replace(
            "Final-Recipient: rfc822; bob@b.example",
            "Final-Recipient  :   rfc822 ;    bob@b.example   ",
        )
        .replace(
            "Disposition: automatic-action/MDN-sent-automatically; processed",
            "Disposition:    automatic-action / MDN-sent-automatically ;   Processed   ",
        )
        .replace(
            "Original-Message-ID: <m1@a.example>",
            "Original-Message-ID:     <m1@a.example>   ",
        );
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Processed));
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn ett_extra_line_breaks() {
    let msg = MDN
        .replace(
            "Reporting-UA: b.example; HISP\r\n",
            "\r\n\r\nReporting-UA: b.example; HISP\r\n\r\n",
        )
        .replace(
            "Final-Recipient: rfc822; bob@b.example\r\n",
            "Final-Recipient: rfc822;\r\n bob@b.example\r\n\r\n",
        )
        .replace(
            "Disposition: automatic-action/MDN-sent-automatically; processed\r\n",
            "Disposition: automatic-action/MDN-sent-automatically;\r\n\tprocessed\r\n\r\n\r\n",
        );
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Processed));
    assert_eq!(r.reporting_agent.as_deref(), Some("b.example; HISP"));
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    // A line break with no folding whitespace at all.
    let unfolded = MDN.replace(
        "Final-Recipient: rfc822; bob@b.example",
        "Final-Recipient:\r\nrfc822; bob@b.example",
    );
    let r = parse_report(unfolded.as_bytes()).unwrap();
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
}

#[test]
fn ett_missing_disposition() {
    let msg = MDN.replace(
        "Disposition: automatic-action/MDN-sent-automatically; processed\r\n",
        "",
    );
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(r.problems, vec![MdnError::MissingDisposition]);
    assert_eq!(r.recipients[0].disposition, None);
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
}

#[test]
fn ett_letter_case_in_rfc822() {
    for ty in ["RFC822", "Rfc822", "rFc822"] {
        let msg = MDN.replace("rfc822; bob@b.example", &format!("{ty};BOB@B.Example"));
        let r = parse_report(msg.as_bytes()).unwrap();
        assert_eq!(
            r.recipients[0].final_recipient.as_deref(),
            Some("bob@b.example"),
            "{ty}"
        );
    }
    let upper = MDN
        .replace("Final-Recipient", "FINAL-RECIPIENT")
        .replace("Disposition:", "DISPOSITION:");
    let r = parse_report(upper.as_bytes()).unwrap();
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Processed));
}

#[test]
fn ett_different_sender() {
    // The MDN comes from a HISP address, not the recipient: correlation uses the fields.
    let msg = MDN.replace("From: bob@b.example", "From: postmaster@hisp.b.example");
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(r.from.as_deref(), Some("postmaster@hisp.b.example"));
    assert_eq!(
        r.recipients[0].final_recipient.as_deref(),
        Some("bob@b.example")
    );
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
}

#[test]
fn ett_different_message_id() {
    // Original-Message-ID names a message we never sent; In-Reply-To disagrees with it.
    // The report field wins; the tracker decides the id is unknown.
    let msg = MDN.replace(
        "Original-Message-ID: <m1@a.example>",
        "Original-Message-ID: <other@a.example>",
    );
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(r.original_message_id.as_deref(), Some("<other@a.example>"));

    // Brackets left off by the sender are restored.
    let bare = MDN.replace(
        "Original-Message-ID: <m1@a.example>",
        "Original-Message-ID:  m1@a.example ",
    );
    let r = parse_report(bare.as_bytes()).unwrap();
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));
    assert_eq!(r.correlation, Some(CorrelationSource::OriginalMessageId));
    assert_eq!(r.message_id.as_deref(), Some("<mdn1@b.example>"));

    // No Original-Message-ID at all: In-Reply-To is the fallback.
    let msg = MDN.replace("Original-Message-ID: <m1@a.example>\r\n", "");
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(r.correlation, Some(CorrelationSource::InReplyTo));
    assert_eq!(r.original_message_id.as_deref(), Some("<m1@a.example>"));

    // Neither.
    let msg = msg.replace("In-Reply-To: <m1@a.example>\r\n", "");
    let r = parse_report(msg.as_bytes()).unwrap();
    assert_eq!(r.original_message_id, None);
    assert!(r.problems.contains(&MdnError::NoCorrelation));
}

#[test]
fn ett_failure_mdn_and_dispatched_with_extension() {
    let failed = MDN
        .replace("; processed", "; failed")
        .replace("processed.\r\n", "failed.\r\nFailure: no such user\r\n");
    let r = parse_report(failed.as_bytes()).unwrap();
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Failed));
    assert!(r.recipients[0].is_failure());

    let error = MDN.replace("; processed", "; processed/error");
    let r = parse_report(error.as_bytes()).unwrap();
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Error));

    let dispatched = MDN.replace(
        "; processed\r\n",
        "; dispatched\r\nx-direct-final-destination-delivery:\r\n",
    );
    let r = parse_report(dispatched.as_bytes()).unwrap();
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Dispatched));
    assert!(r.recipients[0].final_delivery_ext);

    let odd = MDN.replace("; processed", "; exploded");
    let r = parse_report(odd.as_bytes()).unwrap();
    assert!(matches!(r.problems[0], MdnError::BadDisposition { .. }));
}

#[test]
fn base64_report_part_and_nesting() {
    let fields = "Reporting-UA: x\r\nFinal-Recipient: rfc822; bob@b.example\r\nOriginal-Message-ID: <m1@a.example>\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n";
    let b64 = openssl::base64::encode_block(fields.as_bytes());
    let inner = format!(
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: message/disposition-notification\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--r--\r\n"
    );
    let nested = format!(
        "From: bob@b.example\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n{inner}\r\n--m--\r\n"
    );
    assert!(is_report(nested.as_bytes()));
    let r = parse_report(nested.as_bytes()).unwrap();
    assert_eq!(r.recipients[0].disposition, Some(Disposition::Processed));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn not_reports() {
    let plain = "From: a@a.example\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
    assert!(!is_report(plain.as_bytes()));
    assert!(matches!(
        parse_report(plain.as_bytes()),
        Err(MdnError::NotAReport { .. })
    ));
    let empty_report = "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nx\r\n--r--\r\n";
    // Unreadable, but still a report: never answer it.
    assert!(is_report(empty_report.as_bytes()));
    assert!(matches!(
        parse_report(empty_report.as_bytes()),
        Err(MdnError::MissingReportPart)
    ));
    assert!(!is_report(b""));
    assert!(parse_report(b"\xff\xfe\x00garbage").is_err());
}

#[test]
fn final_delivery_option() {
    let yes = [
        "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n",
        "disposition-notification-options: x-direct-final-destination-delivery = optional , TRUE\r\n",
        "Disposition-Notification-Options: signed-receipt-protocol=optional,pkcs7-signature;\r\n X-DIRECT-FINAL-DESTINATION-DELIVERY=required,true\r\n",
        "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=true\r\n",
    ];
    for h in yes {
        let msg = format!("From: a@a.example\r\n{h}Subject: x\r\n\r\nbody\r\n");
        assert!(wants_final_delivery(msg.as_bytes()), "{h}");
    }
    let no = [
        "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false\r\n",
        "Disposition-Notification-Options: signed-receipt-protocol=optional,pkcs7-signature\r\n",
        "X-Other: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n",
        "",
    ];
    for h in no {
        let msg = format!("From: a@a.example\r\n{h}\r\nDisposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n");
        assert!(!wants_final_delivery(msg.as_bytes()), "{h}");
    }
}

/// Each `tests/fixtures/mdn/NAME.eml` parses to exactly `NAME.expected.json` (the report, or the
/// refusal); `UPDATE_EXPECTED=1` rewrites them.
#[test]
fn report_fixtures_match_expected_json() {
    support::expected::check("mdn", "eml", 5, |path, bytes| {
        assert!(is_report(bytes), "{} is not a report", path.display());
        match parse_report(bytes) {
            Ok(report) => serde_json::to_value(report).unwrap(),
            Err(e) => serde_json::json!({ "error": e }),
        }
    });
}
