//! The `directd run` process itself: systemd notifications, SIGHUP reload, SIGTERM shutdown, and
//! logs free of message content.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

fn kill(pid: u32, signal: &str) {
    assert!(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
}

/// Collects sd_notify datagrams until one contains `want` or the deadline passes.
async fn await_notify(sock: &tokio::net::UnixDatagram, seen: &mut Vec<String>, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
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

#[tokio::test]
async fn run_notifies_systemd_reloads_on_hup_and_stops_on_term() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let config_path = env.dir.path().join("directd.toml");
    std::fs::write(
        &config_path,
        env.lab.daemon_toml(&env.store_path, &[(A, PW)], ""),
    )
    .unwrap();
    let sock_path = env.dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();

    let mut child = Command::new(BIN)
        .args(["--config", config_path.to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(await_notify(&sock, &mut seen, "READY=1").await, "{seen:?}");
    assert!(
        await_notify(&sock, &mut seen, "STATUS=polled 1 accounts").await,
        "{seen:?}"
    );

    let ccda = env.dir.path().join("summary.xml");
    std::fs::write(&ccda, CCDA).unwrap();
    let out = Command::new(BIN)
        .args([
            "--config",
            config_path.to_str().unwrap(),
            "send",
            "--from",
            A,
            "--to",
            B,
            "--final",
        ])
        .args([
            "--subject",
            "Confidential subject line",
            "--body",
            "Patient body text",
            "--ccda",
        ])
        .arg(&ccda)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        wait_until(10, || env.states(id)[0].1 == "submitted").await,
        "{:?}",
        env.states(id)
    );

    // B is not configured yet, so nothing confirms delivery; add it and reload.
    std::fs::write(
        &config_path,
        env.lab
            .daemon_toml(&env.store_path, &[(A, PW), (B, PW)], ""),
    )
    .unwrap();
    kill(child.id(), "HUP");
    assert!(
        wait_until(15, || env.states(id)[0].1 == "dispatched").await,
        "{:?}",
        env.states(id)
    );
    assert_eq!(env.store().incoming_count().unwrap(), 1);

    // A broken configuration on reload is refused and the daemon keeps running.
    std::fs::write(&config_path, "this is = = not toml").unwrap();
    kill(child.id(), "HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "a bad reload must not stop the daemon"
    );

    kill(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(
        await_notify(&sock, &mut seen, "STOPPING=1").await,
        "{seen:?}"
    );

    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(logs.contains("configuration reload failed"), "{logs}");
    for secret in [
        "Confidential subject line",
        "Patient body text",
        "Demopatient",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
    env.lab.sandbox.shutdown().await;
}
