//! Encryption at rest: with `store.key_file` the store is an SQLCipher database. Without the
//! `sqlcipher` feature a configured key is refused, never silently ignored.

use directd::config::Config;
use directd::store::{Store, StoreError};

fn config(dir: &std::path::Path, key: Option<&str>) -> Config {
    let mut toml = format!("[store]\npath = {:?}\n", dir.join("store.db"));
    if let Some(k) = key {
        let f = dir.join(format!("key-{}", k.len()));
        directd::fsutil::write_private(&f, k.as_bytes()).unwrap();
        toml.push_str(&format!("key_file = {f:?}\n"));
    }
    Config::from_toml(&toml).unwrap()
}

#[cfg(not(feature = "sqlcipher"))]
#[test]
fn a_key_without_sqlcipher_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_config(
        &config(dir.path(), Some("correct horse battery staple")).store,
        true,
    )
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::NoCipher { .. }), "{err}");
    assert!(err.to_string().contains("--features sqlcipher"));
    assert_eq!(
        std::fs::metadata(dir.path().join("store.db"))
            .unwrap()
            .len(),
        0,
        "nothing was written in the clear"
    );
}

#[cfg(feature = "sqlcipher")]
#[test]
fn encrypted_store_round_trip() {
    use directd::hisp::{OutPart, OutRecipient, PartKind, RecipientKind};
    let dir = tempfile::tempdir().unwrap();
    let keyed = config(dir.path(), Some("correct horse battery staple"));
    let mut store = Store::open_config(&keyed.store, true).unwrap();
    let id = store
        .enqueue(&directd::store::NewOutgoing {
            account: None,
            sender: "a@x.example".into(),
            recipients: vec![OutRecipient {
                address: "b@y.example".into(),
                kind: RecipientKind::To,
            }],
            subject: Some("PLAINTEXT-SUBJECT-MARKER".into()),
            final_delivery: false,
            parts: vec![OutPart {
                kind: PartKind::Text,
                filename: None,
                data: b"PLAINTEXT-BODY-MARKER".to_vec(),
            }],
        })
        .unwrap();
    drop(store);
    let bytes = std::fs::read(dir.path().join("store.db")).unwrap();
    assert!(
        !bytes.starts_with(b"SQLite format 3\0"),
        "the file must not be a plain SQLite database"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("PLAINTEXT-SUBJECT-MARKER") && !text.contains("PLAINTEXT-BODY-MARKER"));

    let store = Store::open_config(&keyed.store, false).unwrap();
    assert_eq!(store.recipients(id).unwrap().len(), 1);
    drop(store);
    let wrong = config(dir.path(), Some("wrong key"));
    assert!(matches!(
        Store::open_config(&wrong.store, false),
        Err(StoreError::WrongKey { .. })
    ));
    let no_key = Store::open_existing(
        &dir.path().join("store.db"),
        std::time::Duration::from_secs(1),
    );
    assert!(no_key.is_err(), "no key, no data");

    // A backup is as encrypted as the store: it opens with the key and only with it.
    let store = Store::open_config(&keyed.store, false).unwrap();
    let dest = dir.path().join("backup.db");
    let key = keyed.store.key.as_ref().map(|k| k.expose());
    store.backup_to(&dest, key, "test").unwrap();
    let bytes = std::fs::read(&dest).unwrap();
    assert!(!bytes.starts_with(b"SQLite format 3\0"));
    assert!(!String::from_utf8_lossy(&bytes).contains("PLAINTEXT-SUBJECT-MARKER"));
    let copy = Store::open_keyed(&dest, std::time::Duration::from_secs(1), key).unwrap();
    assert_eq!(copy.recipients(id).unwrap().len(), 1);
    assert!(Store::open_existing(&dest, std::time::Duration::from_secs(1)).is_err());
}
