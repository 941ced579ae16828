//! The `directd` binary as users run it: exit codes, validation before queueing, store errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_directd");

struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "placeholder; send never connects").unwrap();
    let db = dir.path().join("store.db");
    let config = dir.path().join("directd.toml");
    directd::fsutil::write_private(
        &config,
        format!(
            "[store]\npath = {db:?}\n[hisp]\nhost = \"127.0.0.1\"\nca_file = {ca:?}\n[[accounts]]\naddress = \"clinic@direct.example.org\"\npassword = \"pw\"\n"
        )
        .as_bytes(),
    )
    .unwrap();
    Fixture { dir, config, db }
}

fn directd(f: &Fixture, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(&f.config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

const CCDA: &[u8] = include_bytes!("../samples/demo-ccd.xml");

#[test]
fn send_queues_and_status_reports_per_recipient() {
    let f = fixture();
    let ccda = write(f.dir.path(), "summary.xml", CCDA);
    let out = directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--cc",
            "b@y.example.org",
            "--final",
            "--ccda",
            &ccda,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert_eq!(id, "1");

    let out = directd(&f, &["status", &id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Issue 15: the message is one object under "message", its outcome explains "complete".
    let v = &v["message"];
    assert_eq!(v["outcome"]["complete"], false);
    assert_eq!(v["outcome"]["state"], "pending");
    let rcpts = v["recipients"].as_array().unwrap();
    assert_eq!(rcpts.len(), 2);
    assert_eq!(rcpts[0]["address"], "a@x.example.org");
    assert_eq!(rcpts[0]["state"], "queued");
    assert_eq!(rcpts[1]["kind"], "cc");

    let out = directd(&f, &["messages", "--out", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Issue 15: the outbox's own state moved under "outbox"; recipients are objects.
    assert_eq!(v["messages"][0]["outbox"]["state"], "queued");
    assert_eq!(v["messages"][0]["recipients"][1]["kind"], "cc");
    let out = directd(&f, &["receipts", &id]);
    assert!(stdout(&out).contains("queued"));

    // The store was created private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&f.db).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn send_refuses_bad_input_before_queueing() {
    let f = fixture();
    let not_xml = write(f.dir.path(), "scan.xml", b"%PDF-1.4 not xml at all");
    // Root named ClinicalDocument but outside the HL7 v3 namespace: ingestion refuses it, so
    // send must too.
    let impostor = write(
        f.dir.path(),
        "impostor.xml",
        br#"<ClinicalDocument xmlns="urn:example:not-hl7"><title>x</title></ClinicalDocument>"#,
    );
    let base = [
        "send",
        "--from",
        "clinic@direct.example.org",
        "--to",
        "a@x.example.org",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--ccda".into(), not_xml.clone()], "scan.xml"),
        (
            vec!["--ccda".into(), impostor.clone()],
            "not a CDA document",
        ),
        (
            vec![
                "--ccda".into(),
                f.dir.path().join("missing.xml").display().to_string(),
            ],
            "missing.xml",
        ),
        (
            vec!["--attach".into(), f.dir.path().display().to_string()],
            "not a regular file",
        ),
        (
            vec![
                "--to".into(),
                "not-an-address".into(),
                "--body".into(),
                "x".into(),
            ],
            "not a valid Direct address",
        ),
        (vec![], "nothing to send"),
    ];
    for (extra, expect) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().map(String::as_str));
        let out = directd(&f, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    let out = directd(
        &f,
        &[
            "send",
            "--from",
            "someone@else.org",
            "--to",
            "a@x.example.org",
            "--body",
            "hi",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no configured account sends for someone@else.org"));
    assert!(!f.db.exists(), "nothing may be queued for refused input");
}

#[test]
fn usage_errors_exit_2_and_missing_things_exit_1() {
    let f = fixture();
    assert_eq!(directd(&f, &["send", "--bogus"]).status.code(), Some(2));
    assert_eq!(
        directd(&f, &["status", "notanumber"]).status.code(),
        Some(2)
    );
    let out = directd(&f, &["status", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--body",
            "hi",
        ],
    );
    let out = directd(&f, &["status", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no message with id 7"));
    let out = directd(&f, &["messages", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/directd.toml", "messages"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/directd.toml"));
    assert!(Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn locked_store_is_a_clear_error() {
    let f = fixture();
    let body = [
        "send",
        "--from",
        "clinic@direct.example.org",
        "--to",
        "a@x.example.org",
        "--body",
        "hi",
    ];
    assert!(directd(&f, &body).status.success());
    let holder = rusqlite::Connection::open(&f.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&f.config)
        .args(body)
        .env("DIRECTD_STORE__BUSY_TIMEOUT_MS", "200")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("locked by another process"),
        "{}",
        stderr(&out)
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(directd(&f, &body).status.success());
}

#[test]
fn read_only_store_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let body = [
        "send",
        "--from",
        "clinic@direct.example.org",
        "--to",
        "a@x.example.org",
        "--body",
        "hi",
    ];
    assert!(directd(&f, &body).status.success());
    std::fs::set_permissions(&f.db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if is_root {
        // Root ignores file modes; drop to nobody to see what an unprivileged operator sees.
        std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The config holds a password, so it stays 0600 and becomes nobody's.
        std::os::unix::fs::chown(&f.config, Some(65534), Some(65534)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .arg("--config")
        .arg(&f.config)
        .args(body)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
}

#[test]
fn demo_round_trip_succeeds() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("dispatched"), "{text}");
    assert!(text.contains("byte-identical"), "{text}");
}

#[test]
fn audit_lists_who_did_what() {
    let f = fixture();
    let out = directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--body",
            "hi",
        ],
    );
    assert!(out.status.success());
    let out = directd(&f, &["audit", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Issue 15: every JSON document is an object with schema_version; the rows are "entries".
    assert_eq!(doc["schema_version"], 1);
    let rows = &doc["entries"];
    assert_eq!(rows[0]["action"], "send");
    assert_eq!(rows[0]["message_ref"], "out:1");
    assert!(!rows[0]["actor"].as_str().unwrap().is_empty());
    // Append-only, enforced by the schema itself.
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    assert!(conn
        .execute("UPDATE delivery_events SET state = 'dispatched'", [])
        .is_err());
}

#[test]
fn config_check_reports_each_problem_with_its_key() {
    let f = fixture();
    // The fixture's CA file is a placeholder, not a certificate; the account inherits it from
    // [hisp], so that is the key to fix.
    let out = directd(&f, &["config", "check", "--connect"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAIL hisp.ca_file"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("skip --connect"), "{}", stdout(&out));
    let bad = f.dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\npoll_interval_secs = 0\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", bad.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("daemon.poll_interval_secs"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn daemon_refuses_a_world_readable_store() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    assert!(directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--body",
            "hi"
        ]
    )
    .status
    .success());
    std::fs::set_permissions(&f.db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = directd(&f, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("readable by group or others"),
        "{}",
        stderr(&out)
    );
}

/// Without --body, the first part queued is a short text note naming the files, so the document
/// does not become the message body at the HISP; with --body, that text is the body.
#[test]
fn send_without_body_puts_a_text_note_first() {
    use directd::hisp::PartKind;
    let f = fixture();
    let ccda = write(f.dir.path(), "summary.xml", CCDA);
    let from = ["send", "--from", "clinic@direct.example.org", "--to"];
    let out = directd(
        &f,
        &[&from[..], &["a@x.example.org", "--ccda", &ccda]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id: i64 = stdout(&out).trim().parse().unwrap();
    let store =
        directd::store::Store::open_existing(&f.db, std::time::Duration::from_secs(5)).unwrap();
    let msg = store.load_outgoing(id).unwrap();
    let kinds: Vec<PartKind> = msg.parts.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [PartKind::Text, PartKind::Cda]);
    assert_eq!(msg.parts[0].data, b"Attached: summary.xml.");
    assert_eq!(msg.parts[1].data, CCDA);

    let out = directd(
        &f,
        &[
            &from[..],
            &["a@x.example.org", "--ccda", &ccda, "--body", "Referral"],
        ]
        .concat(),
    );
    let id: i64 = stdout(&out).trim().parse().unwrap();
    let msg = store.load_outgoing(id).unwrap();
    assert_eq!(msg.parts.len(), 2);
    assert_eq!(msg.parts[0].data, b"Referral");
}

/// Commands that only work on the store read only the `[store]` section: a password file that
/// is missing (or unreadable for this user) stops `run`, not `messages`. A configuration file
/// that cannot be read is reported as unreadable, not as missing.
#[test]
fn store_commands_need_only_the_store_section() {
    let f = fixture();
    let ccda = write(f.dir.path(), "summary.xml", CCDA);
    let sent = directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--ccda",
            &ccda,
        ],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    let text = std::fs::read_to_string(&f.config).unwrap().replace(
        "password = \"pw\"",
        "password_file = \"/nonexistent/clinic.password\"",
    );
    directd::fsutil::write_private(&f.config, text.as_bytes()).unwrap();
    for args in [
        &["messages"][..],
        &["status", "1"],
        &["receipts"],
        &["audit"],
    ] {
        let out = directd(&f, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // Queueing needs the account, not its password.
    let queued = directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "b@x.example.org",
            "--body",
            "hi",
        ],
    );
    assert!(queued.status.success(), "{}", stderr(&queued));
    let run = directd(&f, &["run"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("accounts[0].password_file"),
        "{}",
        stderr(&run)
    );

    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        // The config stays root's and 0600; nobody may not read it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .arg("--config")
            .arg(&f.config)
            .arg("messages")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&f.config.display().to_string()) && err.contains("permission denied"),
            "{err}"
        );
        assert!(!err.contains("not found"), "{err}");
    }
}

/// `demo --dir` leaves a private configuration beside the store, so the next command a new user
/// types (`directd --config DIR/directd.toml messages`) works as printed.
#[test]
fn demo_dir_leaves_a_config_to_continue_with() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let config = dir.path().join("directd.toml");
    assert!(stdout(&out).contains(&format!("directd --config {} messages", config.display())));
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listed = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("messages")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("Demo referral"),
        "{}",
        stdout(&listed)
    );
}

/// A PDF given as --ccda is recognised and the right option named.
#[test]
fn a_pdf_given_as_ccda_points_to_attach() {
    let f = fixture();
    let pdf = write(f.dir.path(), "result.pdf", b"%PDF-1.7\n%binary\n");
    let out = directd(
        &f,
        &[
            "send",
            "--from",
            "clinic@direct.example.org",
            "--to",
            "a@x.example.org",
            "--ccda",
            &pdf,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is a PDF") && stderr(&out).contains("--attach"),
        "{}",
        stderr(&out)
    );
}

/// `config check` lists every problem at once, each under its own key, across sections and
/// accounts, and says --connect was skipped.
#[test]
fn config_check_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("directd.toml");
    directd::fsutil::write_private(
        &config,
        b"[daemon]\npoll_interval_secs = 0\n[hisp]\nhost = \"h\"\n\
          [[accounts]]\naddress = \"not an address\"\npassword = \"p\"\n\
          [[accounts]]\naddress = \"b@x.example.org\"\npassword = \"p\"\nca_file = \"/nonexistent/ca.pem\"\n\
          [retention]\naudit_days = 30\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["config", "check", "--connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for key in [
        "FAIL daemon.poll_interval_secs",
        "FAIL accounts[0].address",
        "FAIL accounts[1].ca_file",
        "FAIL retention.audit_days",
        "skip --connect",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}

/// Before the daemon's first attempt the store cannot know the transport; status and messages
/// take it from the sender's configured account, so an S/MIME message says at once that a read
/// receipt can come.
#[test]
fn a_queued_smime_message_says_read_receipts_are_possible() {
    let f = fixture();
    let keys = f.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let mut config = std::fs::read_to_string(&f.config).unwrap();
    config.push_str(&format!(
        "[[accounts]]\naddress = \"edge@direct.example.org\"\ntransport = \"edge\"\npassword = \"pw\"\n[smime]\nkeys_dir = {keys:?}\n"
    ));
    directd::fsutil::write_private(&f.config, config.as_bytes()).unwrap();
    for from in ["edge@direct.example.org", "clinic@direct.example.org"] {
        let out = directd(
            &f,
            &[
                "send",
                "--from",
                from,
                "--to",
                "a@x.example.org",
                "--body",
                "hi",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = directd(&f, &["status", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["message"]["transport"], "edge");
    assert_eq!(v["message"]["read_receipts_possible"], true);
    let out = directd(&f, &["status", "1"]);
    assert!(
        stdout(&out).contains("Read receipts: possible over S/MIME"),
        "{}",
        stdout(&out)
    );
    let out = directd(&f, &["receipts", "1"]);
    assert!(
        stdout(&out).contains("Read receipts: possible over S/MIME"),
        "{}",
        stdout(&out)
    );
    let out = directd(&f, &["messages", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let possible: Vec<&serde_json::Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["read_receipts_possible"])
        .collect();
    assert_eq!(possible, [false, true], "newest (phiMail) first: {v}");
}
