//! The edge transport: directd as the Direct security agent over standard mail protocols.
//! Outgoing messages are built, signed and encrypted here and submitted over SMTP; incoming ones
//! are fetched over IMAP, decrypted and verified, and MDNs are answered.

pub mod message;
