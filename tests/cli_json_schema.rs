//! `--json` as a contract (issue 15, part 4): every command's real output, from a store that a
//! real daemon filled through the sandbox HISP, is checked against the tables of
//! docs/json-output.md. Every documented field must be there with its type, no undocumented
//! field may appear, and every document the page describes must have been checked.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::process::Stdio;

use directd::sandbox::InjectMail;
use serde_json::Value;
use support::process::{json, text, Cli};
use support::sandbox::*;

const DOC: &str = include_str!("../docs/json-output.md");

#[derive(Debug, Clone)]
enum Ty {
    Integer,
    Str,
    Boolean,
    Object,
    Enum(Vec<String>),
    Nullable(Box<Ty>),
    Array(Box<Ty>),
    Union(Vec<Ty>),
    Named(String),
}

fn parse_ty(s: &str) -> Ty {
    let s = s.trim();
    if let Some(inner) = s.strip_suffix('?') {
        return Ty::Nullable(Box::new(parse_ty(inner)));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Ty::Array(Box::new(parse_ty(inner)));
    }
    if s.contains('|') {
        return Ty::Union(s.split('|').map(parse_ty).collect());
    }
    if let Some(values) = s.strip_prefix("enum(").and_then(|r| r.strip_suffix(')')) {
        return Ty::Enum(values.split(',').map(|v| v.trim().to_owned()).collect());
    }
    match s {
        "integer" => Ty::Integer,
        "string" => Ty::Str,
        "boolean" => Ty::Boolean,
        "object" => Ty::Object,
        name => Ty::Named(name.to_owned()),
    }
}

/// A table's cells, split at the pipes that are not escaped (`\|` is a union's bar).
fn cells(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.trim().trim_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter()
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

/// Each `<!-- schema: NAME -->` table of the page: NAME → [(field, type)].
fn schema() -> HashMap<String, Vec<(String, Ty)>> {
    let mut types = HashMap::new();
    let mut lines = DOC.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- schema: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let mut fields = Vec::new();
        for row in lines.by_ref().skip(2) {
            if !row.starts_with('|') {
                break;
            }
            let c = cells(row);
            fields.push((c[0].clone(), parse_ty(&c[1])));
        }
        assert!(!fields.is_empty(), "schema {name} has no fields");
        types.insert(name.to_owned(), fields);
    }
    types
}

struct Checker {
    types: HashMap<String, Vec<(String, Ty)>>,
    roots_checked: BTreeSet<String>,
}

impl Checker {
    fn check(&self, v: &Value, ty: &Ty, path: &str) -> Result<(), String> {
        let bad = |want: &str| Err(format!("{path}: expected {want}, found {v}"));
        match ty {
            Ty::Integer if v.is_i64() || v.is_u64() => Ok(()),
            Ty::Integer => bad("an integer"),
            Ty::Str if v.is_string() => Ok(()),
            Ty::Str => bad("a string"),
            Ty::Boolean if v.is_boolean() => Ok(()),
            Ty::Boolean => bad("a boolean"),
            Ty::Object if v.is_object() => Ok(()),
            Ty::Object => bad("an object"),
            Ty::Enum(values) => match v.as_str() {
                Some(s) if values.iter().any(|x| x == s) => Ok(()),
                _ => bad(&format!("one of {values:?}")),
            },
            Ty::Nullable(_) if v.is_null() => Ok(()),
            Ty::Nullable(inner) => self.check(v, inner, path),
            Ty::Array(inner) => match v.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| self.check(item, inner, &format!("{path}[{i}]"))),
                None => bad("an array"),
            },
            Ty::Union(alternatives) => {
                let errors: Vec<String> = alternatives
                    .iter()
                    .filter_map(|t| self.check(v, t, path).err())
                    .collect();
                if errors.len() < alternatives.len() {
                    Ok(())
                } else {
                    Err(errors.join(" / "))
                }
            }
            Ty::Named(name) => {
                let fields = self
                    .types
                    .get(name)
                    .unwrap_or_else(|| panic!("{path}: type {name} is not documented"));
                let Some(object) = v.as_object() else {
                    return bad(&format!("a {name} object"));
                };
                for (field, ty) in fields {
                    let value = object
                        .get(field)
                        .ok_or_else(|| format!("{path}: {name}.{field} is missing"))?;
                    self.check(value, ty, &format!("{path}.{field}"))?;
                }
                match object.keys().find(|k| !fields.iter().any(|(f, _)| f == *k)) {
                    Some(extra) => Err(format!("{path}: {name} has undocumented field {extra}")),
                    None => Ok(()),
                }
            }
        }
    }

    /// Checks a whole document against the page's table for `root`.
    fn document(&mut self, root: &str, v: &Value) {
        if let Err(e) = self.check(v, &Ty::Named(root.into()), root) {
            panic!("`{root}` output does not match docs/json-output.md: {e}\n{v:#}");
        }
        self.roots_checked.insert(root.to_owned());
    }
}

fn checker() -> Checker {
    Checker {
        types: schema(),
        roots_checked: BTreeSet::new(),
    }
}

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

    // Every document the page describes was produced and checked.
    let documented: BTreeSet<String> = c
        .types
        .keys()
        .filter(|k| k.chars().next().is_some_and(char::is_lowercase))
        .cloned()
        .collect();
    assert_eq!(documented, c.roots_checked);
    env.lab.sandbox.shutdown().await;
}
