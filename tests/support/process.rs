//! The binary as users run it beside a real sandbox: `directd` commands and a `directd run`
//! daemon process, against the TestEnv's store.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::sandbox::{wait_until, write_private, TestEnv, PW};

const BIN: &str = env!("CARGO_BIN_EXE_directd");

pub struct Cli {
    pub config: PathBuf,
}

impl Cli {
    pub fn new(env: &TestEnv, accounts: &[&str]) -> Cli {
        let config = env.dir.path().join("directd.toml");
        let accts: Vec<(&str, &str)> = accounts.iter().map(|a| (*a, PW)).collect();
        write_private(&config, env.lab.daemon_toml(&env.store_path, &accts, "")).unwrap();
        Cli { config }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("RUST_LOG");
        c
    }

    /// Runs a command off the runtime's threads: the sandbox HISP lives on them.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }

    /// `directd run` as systemd starts it, polling only when asked: the interval is an hour,
    /// so anything that arrives after the first pass waits for `directd poll`.
    pub async fn daemon(&self, env: &TestEnv) -> Daemon {
        let child = self
            .command(&["run"])
            .env("DIRECTD_DAEMON__POLL_INTERVAL_SECS", "3600")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let store = env.store_path.clone();
        assert!(
            wait_until(15, || directd::daemon::lock_holder(&store)
                .unwrap()
                .is_some())
            .await,
            "the daemon never took its lock"
        );
        // Its first pass polls at once; what comes later waits for the next.
        assert!(
            wait_until(15, || env.store().poll_started_since(0).unwrap().is_some()).await,
            "the daemon never completed its first pass"
        );
        Daemon(child)
    }
}

pub struct Daemon(pub Child);

impl Daemon {
    pub fn stop(mut self) {
        tokio::task::block_in_place(|| self.terminate());
    }

    fn terminate(&mut self) {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}
