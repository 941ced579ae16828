//! Shared harness: a real sandbox HISP on 127.0.0.1:0 with a generated CA, a real SQLite store in
//! a temp dir, and the real daemon code.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use directd::config::Config;
use directd::daemon::{Daemon, DaemonError, Shutdown, ShutdownTrigger};
use directd::hisp::{OutPart, OutRecipient, PartKind, RecipientKind};
use directd::sandbox::lab::Lab;
use directd::sandbox::SandboxConfig;
use directd::store::{NewOutgoing, Store};

pub const A: &str = "clinic-a@sandbox.local";
pub const B: &str = "clinic-b@sandbox.local";
pub const C: &str = "clinic-c@sandbox.local";
pub const PW: &str = "pw";

pub const CCDA: &[u8] = include_bytes!("../../samples/demo-ccd.xml");

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub lab: Lab,
    pub store_path: PathBuf,
}

pub fn sandbox_config(accounts: &[&str]) -> SandboxConfig {
    SandboxConfig {
        accounts: accounts
            .iter()
            .map(|a| (a.to_string(), PW.to_string()))
            .collect(),
        ..Default::default()
    }
}

impl TestEnv {
    pub async fn start(config: SandboxConfig) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::start(dir.path(), config).await.unwrap();
        let store_path = dir.path().join("store.db");
        TestEnv {
            dir,
            lab,
            store_path,
        }
    }

    /// Daemon config polling `accounts` (all with password PW).
    pub fn config(&self, accounts: &[&str], extra_daemon: &str) -> Config {
        let accts: Vec<(&str, &str)> = accounts.iter().map(|a| (*a, PW)).collect();
        Config::from_toml(&self.lab.daemon_toml(&self.store_path, &accts, extra_daemon)).unwrap()
    }

    pub fn store(&self) -> Store {
        Store::open(&self.store_path, Duration::from_secs(5)).unwrap()
    }

    pub fn enqueue(&self, from: &str, to: &[&str], subject: &str, final_delivery: bool) -> i64 {
        let body = format!("body of {subject}");
        self.store()
            .enqueue(&referral(
                from,
                to,
                subject,
                final_delivery,
                body.as_bytes(),
                "ccd.xml",
            ))
            .unwrap()
    }

    pub fn states(&self, id: i64) -> Vec<(String, String)> {
        self.store()
            .recipients(id)
            .unwrap()
            .into_iter()
            .map(|r| (r.address, r.state))
            .collect()
    }
}

/// A message from `from` to each of `to` with a text part `body` and [`CCDA`] attached as
/// `cda_name`: what the tests send.
pub fn referral(
    from: &str,
    to: &[&str],
    subject: &str,
    final_delivery: bool,
    body: &[u8],
    cda_name: &str,
) -> NewOutgoing {
    NewOutgoing {
        account: Some(from.into()),
        sender: from.into(),
        recipients: to
            .iter()
            .map(|a| OutRecipient {
                address: a.to_string(),
                kind: RecipientKind::To,
            })
            .collect(),
        subject: Some(subject.into()),
        final_delivery,
        parts: vec![
            OutPart {
                kind: PartKind::Text,
                filename: None,
                data: body.to_vec(),
            },
            OutPart {
                kind: PartKind::Cda,
                filename: Some(cda_name.into()),
                data: CCDA.to_vec(),
            },
        ],
    }
}

pub struct RunningDaemon {
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

impl RunningDaemon {
    pub fn start(config: Config) -> RunningDaemon {
        let (trigger, shutdown) = Shutdown::new();
        let daemon = Daemon::new(config, shutdown).unwrap();
        let (wake, wake_rx) = tokio::sync::mpsc::channel(1);
        // Keep the sender alive for the daemon's lifetime so `recv` never spins on a closed channel.
        let task = tokio::spawn(async move {
            let _wake = wake;
            daemon.run(wake_rx).await
        });
        RunningDaemon { trigger, task }
    }

    pub async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("daemon stops")
            .unwrap()
            .unwrap();
    }
}

/// Polls `cond` every 20 ms until it holds or `secs` pass. Returns whether it held.
pub async fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Writes a configuration file 0600, as directd requires of one that holds a password.
pub fn write_private(
    path: impl AsRef<std::path::Path>,
    text: impl AsRef<[u8]>,
) -> std::io::Result<()> {
    directd::fsutil::write_private(path.as_ref(), text.as_ref())
}

/// Collects sd_notify datagrams until one contains `want` or 20 s pass. Returns whether it came.
pub async fn await_notify(
    sock: &tokio::net::UnixDatagram,
    seen: &mut Vec<String>,
    want: &str,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 4096];
    while !seen.iter().any(|m| m.contains(want)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => return false,
        }
    }
    true
}
