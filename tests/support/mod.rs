//! What the integration tests share, one module for all of them (each test file says `mod
//! support;` and uses the parts it needs):
//! - `sandbox`: a real sandbox HISP with a generated CA, a real store and the real daemon code;
//!   `process` runs the built binary against it, `raw` speaks the phiMail protocol byte by byte;
//! - `pki`: a throw-away S/MIME PKI (openssl crate and command line); `http` a tiny HTTP server
//!   for CRLs, issuers and bundles; `servers` dnsmasq and slapd for certificate discovery;
//! - `mailservers`: Postfix and Dovecot on loopback for the edge transport;
//! - `ingest`: C-CDA and XDM fixtures; `expected`: the fixture + expected-JSON harness
//!   (`UPDATE_EXPECTED=1` rewrites); `json_schema`: docs/json-output.md's tables and a checker.
#![allow(dead_code)]

pub mod expected;
pub mod http;
pub mod ingest;
pub mod json_schema;
pub mod mailservers;
pub mod pki;
pub mod process;
pub mod raw;
pub mod sandbox;
pub mod servers;
