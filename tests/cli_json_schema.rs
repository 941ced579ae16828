//! `--json` as a contract (issue 15, part 4): every command's real output, from a store that a
//! real daemon filled through the sandbox HISP, is checked against the tables of
//! docs/json-output.md. Every documented field must be there with its type, no undocumented
//! field may appear, and every document the page describes must have been checked.

mod support;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::Stdio;

use directd::sandbox::InjectMail;
use support::json_schema::{checker, parse_ty, Ty};
use support::process::{json, text, Cli};
use support::sandbox::*;

#[test]
fn the_checker_refuses_what_the_page_does_not_say() {
    let c = checker();
    let ok = serde_json::json!({"state": "failed", "count": 1, "total": 2, "complete": true});
    let outcome = Ty::Named("Outcome".into());
    c.check(&ok, &outcome, "x").unwrap();
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("count");
    assert!(c
        .check(&missing, &outcome, "x")
        .unwrap_err()
        .contains("count is missing"));
    let mut extra = ok.clone();
    extra["surprise"] = 1.into();
    assert!(c
        .check(&extra, &outcome, "x")
        .unwrap_err()
        .contains("undocumented field surprise"));
    let mut retyped = ok.clone();
    retyped["count"] = "1".into();
    assert!(c.check(&retyped, &outcome, "x").is_err());
    let mut unknown = ok;
    unknown["state"] = "delivered".into();
    assert!(c.check(&unknown, &outcome, "x").is_err());
    // A union takes either shape, and nothing else.
    let union = parse_ty("[OutgoingMessage|IncomingMessage]");
    assert!(c
        .check(&serde_json::json!([{"direction": "in"}]), &union, "m")
        .is_err());
}

/// Every documented command, on a store with sent and received messages, a failed CC, an
/// attachment that failed ingestion, a queued read-receipt answer and a poll record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_what_the_page_documents() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let cli = Cli::new(&env, &[A, B]);
    let daemon = cli.daemon(&env).await;
    let out = cli
        .run(&[
            "send",
            "--from",
            A,
            "--to",
            B,
            "--cc",
            "nobody@sandbox.local",
            "--final",
            "--body",
            "hi",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@results.example".into(),
        subject: "results".into(),
        body: b"see attachment".to_vec(),
        attachments: vec![(
            "broken.xml".into(),
            "application/xml".into(),
            include_bytes!("fixtures/hostile/malformed.xml").to_vec(),
        )],
    });
    let mut c = checker();
    for _ in 0..2 {
        let out = cli.run(&["poll", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out));
        c.document("poll", &json(&out));
    }
    let store = env.store();
    let incoming: Vec<i64> = store
        .list_messages(false, true, None)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(incoming.len(), 2);
    assert!(
        wait_until(15, || env
            .store()
            .list_messages(false, true, None)
            .unwrap()
            .iter()
            .all(|m| env
                .store()
                .incoming(m.id)
                .unwrap()
                .attachments
                .iter()
                .all(|a| a.ingest_state != "pending")))
        .await
    );
    daemon.stop();

    let messages = json(&cli.run(&["messages", "--json"]).await);
    c.document("messages", &messages);
    let directions: BTreeSet<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, BTreeSet::from(["in", "out"]));
    for filter in [&["--state", "failed"][..], &["--unread"], &["--out"]] {
        let out = cli
            .run(&[&["messages", "--json"][..], filter].concat())
            .await;
        c.document("messages", &json(&out));
    }
    let out = cli.run(&["status", &id, "--json"]).await;
    assert_eq!(out.status.code(), Some(3), "the CC failed: {}", text(&out));
    let status = json(&out);
    c.document("status", &status);
    assert_eq!(status["message"]["recipients"][1]["kind"], "cc");
    assert_eq!(
        status["message"],
        messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["outgoing_id"] == id.parse::<i64>().unwrap())
            .unwrap()
            .clone(),
        "the same message is the same object in messages and status"
    );
    for args in [vec!["receipts", "--json"], vec!["receipts", &id, "--json"]] {
        c.document("receipts", &json(&cli.run(&args).await));
    }

    let mut follow = cli
        .command(&["receipts", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = tokio::task::block_in_place(|| {
        std::io::BufReader::new(follow.stdout.take().unwrap())
            .lines()
            .take(3)
            .map(Result::unwrap)
            .collect()
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(lines.len(), 3);
    for line in lines {
        assert!(!line.contains('\n'));
        c.document("receipts-follow", &serde_json::from_str(&line).unwrap());
    }

    for &m in &incoming {
        let save = env.dir.path().join(format!("saved-{m}"));
        let m = m.to_string();
        let out = cli
            .run(&[
                "show",
                &m,
                "--json",
                "--mark-read",
                "--save",
                save.to_str().unwrap(),
            ])
            .await;
        assert!(out.status.success(), "{}", text(&out));
        let shown = json(&out);
        c.document("show", &shown);
        assert!(shown["mark_read"].is_object());
        let out = cli.run(&["show", &m, "--json"]).await;
        let shown = json(&out);
        c.document("show", &shown);
        assert!(shown["mark_read"].is_null());
    }
    c.document("audit", &json(&cli.run(&["audit", "--json"]).await));

    let endpoints = env.dir.path().join("endpoint_pfile.csv");
    std::fs::write(
        &endpoints,
        "\"NPI\",\"Endpoint Type\",\"Endpoint\",\"Affiliation Legal Business Name\"\n\"1245319599\",\"DIRECT\",\"lab@results.example\",\"Example Lab\"\n",
    )
    .unwrap();
    let imported = cli
        .run(&["directory", "import", endpoints.to_str().unwrap(), "--json"])
        .await;
    c.document("directory-import", &json(&imported));
    for query in ["1245319599", "clinic-b"] {
        let found = cli.run(&["directory", "search", query, "--json"]).await;
        assert!(found.status.success(), "{}", text(&found));
        let found = json(&found);
        assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
        c.document("directory-search", &found);
    }

    // Clinical documents: two sharing an MRN (a candidate link for review), one unstructured.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda/");
    let out = cli
        .run(&[
            "ingest",
            "--json",
            &format!("{fixtures}identity_shared_mrn_ann.xml"),
            &format!("{fixtures}identity_shared_mrn_bert.xml"),
            &format!("{fixtures}identity_variant_carla_1.xml"),
            &format!("{fixtures}identity_variant_carla_2.xml"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"),
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let ingested = json(&out);
    c.document("ingest", &ingested);
    assert!(
        !ingested["skipped"].as_array().unwrap().is_empty(),
        "{ingested}"
    );
    let list = json(&cli.run(&["ccda", "list", "--json"]).await);
    c.document("ccda-list", &list);
    let docs = list["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 4, "{list}");
    for d in docs {
        let id = d["document_id"].to_string();
        c.document(
            "ccda-show",
            &json(&cli.run(&["ccda", "show", &id, "--json"]).await),
        );
    }
    let out = cli.run(&["ccda", "reextract", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    c.document("ccda-reextract", &json(&out));
    let persons = json(&cli.run(&["patients", "list", "--json"]).await);
    c.document("patients-list", &persons);
    let review = json(&cli.run(&["patients", "review", "--json"]).await);
    c.document("patients-review", &review);
    assert!(
        !review["candidates"].as_array().unwrap().is_empty(),
        "{review}"
    );
    for p in persons["persons"].as_array().unwrap() {
        let id = p["person_id"].to_string();
        let shown = json(&cli.run(&["patients", "show", &id, "--json"]).await);
        c.document("patients-show", &shown);
    }

    // Every document the page describes was produced and checked (`inspect` by
    // tests/smime_inspect.rs, which has the S/MIME messages for it).
    c.roots_checked.insert("inspect".into());
    let documented: BTreeSet<String> = c
        .types
        .keys()
        .filter(|k| k.chars().next().is_some_and(char::is_lowercase))
        .cloned()
        .collect();
    assert_eq!(documented, c.roots_checked);
    env.lab.sandbox.shutdown().await;
}
