//! directd: a Direct Secure Messaging daemon and command line.
//!
//! See `docs/ARCHITECTURE.md` for the data flow, the delivery states and the reliability rules.
//!
//! # Layout
//!
//! One module per thing, and dependencies point down this list (each uses only modules below
//! it, with the two exceptions named):
//!
//! - `cli` — argument parsing, one file per subcommand, text and `--json` output; uses everything.
//! - `web` — the web console (`directd web`): another client of the store beside the CLI, with
//!   its own users, sessions and pages; uses `store`, `compose`, `config`, `tls`, and the
//!   document rendering of `cli::ccda` (shared, not copied).
//! - `compose` — a message to send checked from what a person gave (CLI flags or the Send
//!   form); uses `message`, `address`, `ingest` (the C-CDA check).
//! - `daemon` — the run loop (`mod.rs`), per-account passes and backoff (`accounts`), one
//!   session's work (`session`), the unreadable-message policy (`poison`), ingestion of received
//!   attachments (`ingest`), the per-store lock, systemd notify, metrics.
//! - `sandbox` — a phiMail-compatible HISP for tests and demos; uses `hisp::codec`, `tls`.
//! - `config` — the TOML file and `DIRECTD_*` overrides (`load`), read into serde structs (`raw`)
//!   and validated per section (`account`, `smime`, `secret`); it builds the settings types of
//!   `hisp`, `smime` and `store`, so it names them.
//! - `hisp` — the `Transport` trait and its errors, `phimail` (the line protocol) and `edge`
//!   (SMTP/IMAP with the S/MIME agent); uses `smime`, `mdn`, `message`.
//! - `store` — every SQL statement, schema migrations (`migrations/*.sql`), transactions, the
//!   clinical tables (`clinical/`), the append-only delivery history (`events`); uses `tracking`
//!   (the state machine and timeout policy it applies), `ingest` (the typed documents it
//!   stores), `mdn`, `message`. Exception: `Store::open_config` takes `config::StoreConfig`.
//! - `ingest` — C-CDA and XDM extraction into typed documents: bytes in, no I/O, no SQL. Its
//!   runners live with their callers: `daemon::ingest` (received attachments), `cli/ingest.rs`
//!   (files from disk) and `cli/ccda/reextract.rs`.
//! - `unstructured` — writes an Unstructured Document (a PDF in a US Realm Header) for `send --pdf`.
//! - `directory` — NPI check digits and the NPPES endpoint file (Direct addresses by NPI).
//! - `smime` — the security agent: seal, open, certificates, trust, discovery (`discovery/`:
//!   resolver and DNS wire format); uses `mime`.
//! - `tracking` — the per-recipient delivery state machine and the timeout policy (which states
//!   expire after which window, per transport); uses `message`.
//! - `message` — the shared vocabulary: outgoing messages, recipients, notices, received mail;
//!   uses `mdn` (dispositions).
//! - `mdn` — MDN/DSN building and parsing; uses `mime`.
//! - `mime`, `util`, `address`, `fsutil`, `timefmt`, `tls` — the bottom layer.

pub mod address;
pub mod cli;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod directory;
pub mod fsutil;
pub mod hisp;
pub mod ingest;
pub mod mdn;
pub mod message;
pub mod mime;
pub mod sandbox;
pub mod smime;
pub mod store;
pub mod timefmt;
pub mod tls;
pub mod tracking;
pub mod unstructured;
pub mod util;
pub mod web;
