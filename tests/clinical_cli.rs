//! `directd ingest`, `ccda` and `patients` as users run them: the built binary against a real
//! store, checking text output, JSON and exit codes.

#[path = "ingest_support/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
    files: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = dir.path().join("in");
    std::fs::create_dir(&files).expect("mkdir");
    Env {
        db: dir.path().join("store.db"),
        files,
        _dir: dir,
    }
}

fn directd(env: &Env, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(&env.db)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DIRECTD_CONFIG")
        .output()
        .expect("spawn directd")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).expect("json output")
}

/// Copies fixtures into the input folder under names that sort in the given order.
fn stage(env: &Env, names: &[&str]) -> PathBuf {
    for (i, name) in names.iter().enumerate() {
        std::fs::write(
            env.files.join(format!("{i:02}-{name}")),
            common::fixture("ccda", name),
        )
        .expect("write fixture");
    }
    env.files.clone()
}

fn ingest(env: &Env, path: &Path) -> Output {
    directd(env, &["ingest", path.to_str().expect("utf-8 path")])
}

/// Document id by the title-independent source file name.
fn doc_id(list: &Value, fixture: &str) -> i64 {
    list.as_array()
        .expect("array")
        .iter()
        .find(|d| {
            d["source_path"]
                .as_str()
                .is_some_and(|p| p.ends_with(fixture))
        })
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("{fixture} not listed"))
}

#[test]
fn documents_sharing_an_identifier_each_show_their_own_patient() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
            "identity_variant_carla_1.xml",
            "identity_variant_carla_2.xml",
            "identity_chain_dora.xml",
            "identity_no_identifier.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let list = json(&directd(&env, &["ccda", "list", "--json"]));
    let expected = [
        ("identity_shared_mrn_ann.xml", "Ann Alpha"),
        ("identity_shared_mrn_bert.xml", "Bert Beta"),
        ("identity_variant_carla_1.xml", "Carla M. Gamma-Ruiz"),
        ("identity_variant_carla_2.xml", "CARLA GAMMA RUIZ"),
        ("identity_chain_dora.xml", "Dora Delta"),
        ("identity_no_identifier.xml", "Carla Gamma-Ruiz"),
    ];
    for (fixture, name) in expected {
        let id = doc_id(&list, fixture);
        let shown = json(&directd(&env, &["ccda", "show", &id.to_string(), "--json"]));
        assert_eq!(shown["summary"]["patient_name"], name, "{fixture}");
        let text = ok(&directd(&env, &["ccda", "show", &id.to_string()]));
        assert!(
            text.contains(&format!("Patient: {name}")),
            "{fixture}: {text}"
        );
    }
    // --patient by the shared MRN finds both documents, each under its own name.
    let text = ok(&directd(&env, &["ccda", "list", "--patient", "1001"]));
    assert!(
        text.contains("Ann Alpha") && text.contains("Bert Beta"),
        "{text}"
    );

    let persons = json(&directd(&env, &["patients", "list", "--json"]));
    assert_eq!(persons.as_array().expect("array").len(), 5);
    let review = json(&directd(&env, &["patients", "review", "--json"]));
    let reasons: Vec<&str> = review
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["family name differs", "family name differs"]);

    let carla = json(&directd(
        &env,
        &[
            "ccda",
            "show",
            &doc_id(&list, "identity_variant_carla_2.xml").to_string(),
            "--json",
        ],
    ));
    let person = carla["summary"]["person_id"].as_i64().expect("person");
    let shown = json(&directd(
        &env,
        &["patients", "show", &person.to_string(), "--json"],
    ));
    let records = shown["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .any(|r| r["identifiers"].as_array().is_some_and(|i| i.len() == 2)));
    let text = ok(&directd(&env, &["patients", "show", &person.to_string()]));
    assert!(
        text.contains("Person ") && text.contains("id G-777 ^ 1.2.3.4.5.6.7"),
        "{text}"
    );
    assert!(text.contains("Link candidates:"), "{text}");
}

#[test]
fn link_unlink_and_dismiss_are_audited_and_refuse_unknown_ids() {
    let env = env();
    let dir = stage(
        &env,
        &[
            "identity_shared_mrn_ann.xml",
            "identity_shared_mrn_bert.xml",
        ],
    );
    ok(&ingest(&env, &dir));
    let review = json(&directd(&env, &["patients", "review", "--json"]));
    let c = &review[0];
    let (a, b) = (
        c["patient_id"].as_i64().expect("a").to_string(),
        c["other_patient_id"].as_i64().expect("b").to_string(),
    );

    let out = ok(&directd(&env, &["patients", "link", &a, &b]));
    assert!(out.starts_with("linked: person "), "{out}");
    assert_eq!(
        json(&directd(&env, &["patients", "list", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(json(&directd(&env, &["patients", "review", "--json"]))
        .as_array()
        .is_some_and(Vec::is_empty));

    let out = ok(&directd(&env, &["patients", "unlink", &a]));
    assert!(out.starts_with("unlinked: record "), "{out}");
    assert_eq!(
        json(&directd(&env, &["patients", "list", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Alone again: a second unlink has nothing to do.
    let again = directd(&env, &["patients", "unlink", &a]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("only record"));

    let unknown = directd(&env, &["patients", "link", &a, "9999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no patient record 9999"));
    assert_eq!(
        directd(&env, &["patients", "show", "9999"]).status.code(),
        Some(2)
    );

    let id = c["id"].as_i64().expect("candidate").to_string();
    let out = ok(&directd(&env, &["patients", "dismiss", &id]));
    assert!(out.contains("stay apart"), "{out}");
    assert_eq!(
        directd(&env, &["patients", "dismiss", "9999"])
            .status
            .code(),
        Some(2)
    );

    let audit = json(&directd(&env, &["audit", "--json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| a.starts_with("patients "))
        .collect();
    assert_eq!(
        actions,
        ["patients link", "patients unlink", "patients dismiss"]
    );
    // The audit trail names records, not people.
    let text = serde_json::to_string(&audit).expect("json");
    assert!(!text.contains("Alpha") && !text.contains("Beta"));
}
