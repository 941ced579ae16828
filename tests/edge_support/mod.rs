//! Test support for the edge transport: private Postfix + Dovecot instances on loopback.
#![allow(dead_code)]

pub mod mailservers;
