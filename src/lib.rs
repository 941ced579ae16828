//! directd: a Direct Secure Messaging daemon and command line.
//!
//! See `docs/architecture.md` for the data flow. Dependencies point down this list: `cli` uses
//! everything; `daemon` uses `store`, `hisp` and `tracking`; `store` owns every SQL statement.

pub mod address;
pub mod cli;
pub mod config;
pub mod daemon;
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
