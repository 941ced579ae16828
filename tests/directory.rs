//! Finding the recipient by NPI (issue 14, item 4): `directory import` of an NPPES endpoint file,
//! `directory search` in it and in the HISP's directory (phiMail LOOKUP against a real sandbox),
//! and `send --to-npi`, which resolves the address or fails with the reason and records which
//! directory answered on the recipient's `queued` event.

mod support;

use directd::sandbox::DirectoryListing;
use support::process::{json, text, Cli};
use support::sandbox::*;

/// Listed by the HISP only (as B's entry in its directory).
const NPI_AT_HISP: &str = "1234567893";
/// Listed by the imported file only.
const NPI_IN_FILE: &str = "1245319599";
/// Listed by the imported file twice, with two addresses.
const NPI_TWICE: &str = "1987654328";
/// Valid, but listed nowhere.
const NPI_NOWHERE: &str = "1555555550";

/// An endpoint file in the shape CMS publishes: every field quoted, columns in its order, names
/// with commas, other endpoint types mixed in, one row with a bad NPI and one with a bad address.
fn nppes_file() -> String {
    let header = r#""NPI","Endpoint Type","Endpoint Type Description","Endpoint","Affiliation","Endpoint Description","Affiliation Legal Business Name","Use Code","Use Description","Other Use Description","Content Type","Content Type Description","Other Content Type Description","Affiliation Address Line One","Affiliation Address Line Two","Affiliation Address City","Affiliation Address State","Affiliation Address Country","Affiliation Address Postal Code""#;
    let row = |npi: &str, kind: &str, endpoint: &str, org: &str| {
        format!(
            r#""{npi}","{kind}","","{endpoint}","Y","","{org}","DIRECT","Direct","","OTHER","Other","","1 Main St","","Springfield","IL","US","62701""#
        )
    };
    [
        header.to_string(),
        row(
            NPI_IN_FILE,
            "DIRECT",
            "clinic-c@sandbox.local",
            "Example Clinic, LLC",
        ),
        row(
            NPI_IN_FILE,
            "FHIR",
            "https://fhir.example.org/r4",
            "Example Clinic, LLC",
        ),
        row(
            NPI_TWICE,
            "DIRECT",
            "a@direct.example.org",
            "Two Inboxes Group",
        ),
        row(
            NPI_TWICE,
            "DIRECT",
            "b@direct.example.org",
            "Two Inboxes Group",
        ),
        row(
            "1234567890",
            "DIRECT",
            "bad-npi@direct.example.org",
            "Bad NPI",
        ),
        row(NPI_IN_FILE, "DIRECT", "not an address", "Bad Address"),
        row(
            NPI_TWICE,
            "DIRECT",
            "a@direct.example.org",
            "Two Inboxes Group",
        ),
    ]
    .join("\r\n")
        + "\r\n"
}

async fn env_with_directory() -> (TestEnv, Cli) {
    let mut config = sandbox_config(&[A, B, C]);
    config.directory.push(DirectoryListing {
        address: B.into(),
        npi: Some(NPI_AT_HISP.into()),
        name: Some("Dr Bea Example".into()),
    });
    let env = TestEnv::start(config).await;
    let cli = Cli::new(&env, &[A, B, C]);
    (env, cli)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_search_and_send_by_npi() {
    let (env, cli) = env_with_directory().await;
    let file = env.dir.path().join("endpoint_pfile_20261101-20261130.csv");
    std::fs::write(&file, nppes_file()).unwrap();

    let imported = cli
        .run(&["directory", "import", file.to_str().unwrap(), "--json"])
        .await;
    assert!(imported.status.success(), "{}", text(&imported));
    let imported = json(&imported);
    assert_eq!(imported["schema_version"], 1);
    assert_eq!(imported["imported"], 3, "{imported}");
    assert_eq!(imported["npis"], 2);
    assert_eq!(imported["duplicates"], 1);
    assert_eq!(imported["skipped_other_types"], 1);
    assert_eq!(imported["skipped_bad_npi"], 1);
    assert_eq!(imported["skipped_bad_address"], 1);

    // The local directory, by NPI and by part of a name.
    let found = json(
        &cli.run(&[
            "directory",
            "search",
            NPI_IN_FILE,
            "--source",
            "local",
            "--json",
        ])
        .await,
    );
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["results"][0]["address"], C);
    assert_eq!(found["results"][0]["name"], "Example Clinic, LLC");
    assert_eq!(found["results"][0]["source"], "nppes");
    let by_name = json(
        &cli.run(&[
            "directory",
            "search",
            "inboxes",
            "--source",
            "local",
            "--json",
        ])
        .await,
    );
    assert_eq!(by_name["results"].as_array().unwrap().len(), 2, "{by_name}");

    // The HISP's directory (LOOKUP through the real client, against the sandbox).
    let hisp = cli
        .run(&["directory", "search", NPI_AT_HISP, "--json"])
        .await;
    assert!(hisp.status.success(), "{}", text(&hisp));
    let hisp = json(&hisp);
    let results = hisp["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{hisp}");
    assert_eq!(results[0]["source"], "hisp");
    assert_eq!(results[0]["address"], B);
    assert_eq!(results[0]["name"], "Dr Bea Example");
    let by_cn = json(
        &cli.run(&["directory", "search", "Bea", "--source", "hisp", "--json"])
            .await,
    );
    assert_eq!(by_cn["results"][0]["npi"], NPI_AT_HISP, "{by_cn}");
    let table = text(&cli.run(&["directory", "search", NPI_AT_HISP]).await);
    assert!(
        table.contains("SOURCE") && table.contains("Dr Bea Example"),
        "{table}"
    );

    // send --to-npi: from the imported file, then from the HISP; each says which answered.
    for (npi, address, from_where) in [
        (NPI_IN_FILE, C, "imported directory"),
        (NPI_AT_HISP, B, "HISP directory"),
    ] {
        let sent = cli
            .run(&[
                "send",
                "--from",
                A,
                "--to-npi",
                npi,
                "--body",
                "results attached",
            ])
            .await;
        assert!(sent.status.success(), "{}", text(&sent));
        assert!(text(&sent).contains(address), "{}", text(&sent));
        let id = String::from_utf8_lossy(&sent.stdout).trim().to_string();
        let receipts = json(&cli.run(&["receipts", &id, "--json"]).await);
        let queued = &receipts["events"][0];
        assert_eq!(queued["state"], "queued", "{receipts}");
        assert_eq!(queued["recipient"], address);
        let detail = queued["detail"].as_str().unwrap();
        assert!(
            detail.contains(npi) && detail.contains(from_where),
            "{detail}"
        );
    }

    let refused = |o: &std::process::Output, why: &str| {
        assert_eq!(o.status.code(), Some(2), "{}", text(o));
        assert!(text(o).contains(why), "wanted {why:?} in {}", text(o));
    };
    refused(
        &cli.run(&["send", "--from", A, "--to-npi", NPI_TWICE, "--body", "x"]).await,
        "lists 2 Direct addresses (a@direct.example.org, b@direct.example.org); choose one with --to",
    );
    refused(
        &cli.run(&["send", "--from", A, "--to-npi", NPI_NOWHERE, "--body", "x"])
            .await,
        "no Direct address for this NPI in the imported directory or the HISP directory",
    );
    refused(
        &cli.run(&["send", "--from", A, "--to-npi", "1234567890", "--body", "x"])
            .await,
        "check digit",
    );
    refused(
        &cli.run(&[
            "send",
            "--from",
            A,
            "--to",
            C,
            "--to-npi",
            NPI_IN_FILE,
            "--body",
            "x",
        ])
        .await,
        "named twice",
    );

    // A second import replaces the first (the file is a full snapshot).
    let smaller = nppes_file().lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
    std::fs::write(&file, smaller).unwrap();
    let again = json(
        &cli.run(&["directory", "import", file.to_str().unwrap(), "--json"])
            .await,
    );
    assert_eq!(
        (again["imported"].as_i64(), again["replaced"].as_i64()),
        (Some(1), Some(3)),
        "{again}"
    );
    let gone = json(
        &cli.run(&[
            "directory",
            "search",
            NPI_TWICE,
            "--source",
            "local",
            "--json",
        ])
        .await,
    );
    assert_eq!(gone["results"], serde_json::json!([]));
    let audit = text(&cli.run(&["audit"]).await);
    assert_eq!(audit.matches("directory import").count(), 2, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_an_endpoint_file_is_refused_and_an_unreachable_hisp_is_reported() {
    let (env, cli) = env_with_directory().await;
    let file = env.dir.path().join("npidata_pfile.csv");
    std::fs::write(
        &file,
        "\"NPI\",\"Entity Type Code\"\n\"1234567893\",\"1\"\n",
    )
    .unwrap();
    let o = cli
        .run(&["directory", "import", file.to_str().unwrap()])
        .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not an NPPES endpoint file"),
        "{}",
        text(&o)
    );

    // Nothing imported yet (no store at all): the HISP alone answers.
    let o = cli
        .run(&["directory", "search", NPI_AT_HISP, "--json"])
        .await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["results"][0]["address"], B);

    // The HISP cannot be reached: the failure is named, with exit 1.
    let mut c = cli.command(&["directory", "search", "anything", "--json"]);
    let o = tokio::task::spawn_blocking(move || c.env("DIRECTD_HISP__PORT", "1").output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc = json(&o);
    assert!(
        doc["errors"][0]
            .as_str()
            .unwrap()
            .contains("HISP directory of"),
        "{doc}"
    );
}
