//! The hostile-input corpus through the whole pipeline: each message is injected into the sandbox
//! HISP, received by the real daemon, stored, and handed to ingestion. Every hostile case ends with
//! its specific error recorded (on the attachment, or as the quarantine reason), nothing is lost,
//! and the daemon goes on to process the good message queued after all of them.

mod support;

use directd::sandbox::InjectMail;
use support::ingest::{build_zip, fixture, metadata_xml, MetaDoc};
use support::sandbox::*;

const META: &str = "IHE_XDM/SUBSET01/METADATA.XML";

/// (case, attachment filename, declared type, bytes, what the recorded error must say)
fn corpus() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Vec<u8>,
    &'static str,
)> {
    let deep = format!(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">{}{}</ClinicalDocument>",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    );
    let zeros = vec![0u8; 4 * 1024 * 1024];
    let bomb_meta = metadata_xml(&[MetaDoc {
        uri: "DOC0001.XML",
        mime: "text/xml",
        hash: None,
        size: None,
    }]);
    let bomb = build_zip(&[
        (META, bomb_meta.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &zeros),
    ]);
    let traversal = build_zip(&[
        (META, b"<x/>"),
        ("../../etc/cron.d/evil", b"* * * * * root true"),
    ]);
    let good_doc = fixture("ccda", "ccd_r21_full.xml");
    let dup = build_zip(&[
        (META, b"<x/>"),
        ("IHE_XDM/SUBSET01/DOC.XML", &good_doc),
        ("ihe_xdm/subset01/doc.xml", &good_doc),
    ]);
    let mut bad_hash = MetaDoc::full("DOC0001.XML", "text/xml", &good_doc);
    bad_hash.hash = Some("0".repeat(40));
    let wrong_hash = build_zip(&[
        (META, metadata_xml(&[bad_hash]).as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &good_doc),
    ]);
    vec![
        (
            "billion laughs",
            "laughs.xml",
            "application/xml",
            fixture("hostile", "billion_laughs.xml"),
            "DTD",
        ),
        (
            "external entity",
            "xxe.xml",
            "text/xml",
            fixture("hostile", "xxe_passwd.xml"),
            "DTD",
        ),
        (
            "parameter entity",
            "pe.xml",
            "application/xml",
            fixture("hostile", "xxe_parameter_entity.xml"),
            "DTD",
        ),
        (
            "entity without DTD",
            "ent.xml",
            "application/xml",
            fixture("hostile", "entity_without_dtd.xml"),
            "entity",
        ),
        (
            "10k-deep nesting",
            "deep.xml",
            "application/xml",
            deep.into_bytes(),
            "deep",
        ),
        (
            "malformed XML",
            "broken.xml",
            "application/xml",
            fixture("hostile", "malformed.xml"),
            "malformed",
        ),
        ("zip bomb", "bomb.zip", "application/zip", bomb, "ratio"),
        (
            "traversal name",
            "trav.zip",
            "application/octet-stream",
            traversal,
            "unsafe",
        ),
        (
            "duplicate names",
            "dup.zip",
            "application/zip",
            dup,
            "duplicate",
        ),
        (
            "XDM hash mismatch",
            "hash.zip",
            "application/zip",
            wrong_hash,
            "does not match the SHA-1",
        ),
    ]
}

#[tokio::test]
async fn every_hostile_case_gets_its_specific_error_and_the_daemon_goes_on() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let cases = corpus();
    for (case, name, mime, data, _) in &cases {
        env.lab.sandbox.inject_mail(InjectMail {
            to: B.into(),
            from: "attacker@evil.example".into(),
            subject: case.to_string(),
            body: b"see attachment".to_vec(),
            attachments: vec![(name.to_string(), mime.to_string(), data.clone())],
        });
    }
    // Messages hostile at the protocol level rather than in their attachments.
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "attacker@evil.example".into(),
        subject: "x".repeat(20_000), // a header line over the codec's limit
        body: b"huge header".to_vec(),
        attachments: vec![],
    });
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "attacker@evil.example".into(),
        subject: "nul bytes".into(),
        body: b"body\0with\0nuls".to_vec(),
        attachments: vec![(
            "nul\u{1}name.bin".into(),
            "application/octet-stream".into(),
            b"\0\0\0".to_vec(),
        )],
    });
    let good = fixture("ccda", "ccd_r21_full.xml");
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: "the good one".into(),
        body: b"fine".to_vec(),
        attachments: vec![("ccd.xml".into(), "application/xml".into(), good.clone())],
    });
    let total = cases.len() + 3;

    let daemon = RunningDaemon::start(
        env.config(&[B], "unreadable_retries = 3\nunreadable_giveup_secs = 0.5"),
    );
    let store = env.store();
    let done = wait_until(60, || {
        store.incoming_count().unwrap() as usize == total
            && env.lab.sandbox.queue_len(B) == 0
            && store
                .list_messages(false, true, None)
                .unwrap()
                .iter()
                .all(|m| {
                    store
                        .incoming(m.id)
                        .unwrap()
                        .attachments
                        .iter()
                        .all(|a| a.ingest_state != "pending")
                })
    })
    .await;
    daemon.stop().await;
    assert!(
        done,
        "stored {} of {total}",
        store.incoming_count().unwrap()
    );

    let rows = store.list_messages(false, true, None).unwrap();
    for (case, _, _, _, expect) in &cases {
        let m = rows
            .iter()
            .find(|m| m.subject.as_deref() == Some(*case))
            .unwrap_or_else(|| panic!("{case} not stored"));
        let detail = store.incoming(m.id).unwrap();
        let att = &detail.attachments[0];
        assert_eq!(att.ingest_state, "failed", "{case}: {att:?}");
        let err = att.ingest_error.clone().unwrap_or_default();
        println!("{case}: {err}");
        assert!(
            err.to_lowercase().contains(&expect.to_lowercase()),
            "{case}: expected {expect:?} in {err:?}"
        );
    }
    let huge = rows
        .iter()
        .find(|m| m.state == "QUARANTINED-UNREAD")
        .expect("the over-long header is quarantined unread");
    assert!(store
        .incoming(huge.id)
        .unwrap()
        .quarantine_reason
        .unwrap()
        .contains("longer than"));
    let nul = rows
        .iter()
        .find(|m| m.subject.as_deref() == Some("nul bytes"))
        .unwrap();
    assert_eq!(store.incoming(nul.id).unwrap().body, b"body\0with\0nuls");
    let ok = rows
        .iter()
        .find(|m| m.subject.as_deref() == Some("the good one"))
        .unwrap();
    let ok = store.incoming(ok.id).unwrap();
    assert_eq!(ok.attachments[0].ingest_state, "ingested");
    assert_eq!(
        store.list_documents(None).unwrap().len(),
        1,
        "only the good document became clinical rows"
    );
    println!(
        "hostile corpus: {} cases through the daemon, all with their specific error",
        cases.len() + 2
    );
    env.lab.sandbox.shutdown().await;
}
