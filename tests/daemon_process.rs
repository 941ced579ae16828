//! The `directd run` process itself: systemd notifications, SIGHUP reload, SIGTERM shutdown, and
//! logs free of message content.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

fn kill(pid: u32, signal: &str) {
    assert!(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
}

#[tokio::test]
async fn run_notifies_systemd_reloads_on_hup_and_stops_on_term() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let config_path = env.dir.path().join("directd.toml");
    write_private(
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
    if !await_notify(&sock, &mut seen, "READY=1").await {
        let _ = child.kill();
        let mut logs = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
        panic!("no READY=1 (got {seen:?}); daemon said:\n{logs}");
    }
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

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test]
async fn a_hisp_that_keeps_failing_does_not_make_the_daemon_spin() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    // Every connection is accepted and dropped at once, for the whole test.
    env.lab.sandbox.inject_fault(
        directd::sandbox::Fault::new("CONNECT", directd::sandbox::FaultAction::Drop)
            .times(1_000_000),
    );
    let config_path = env.dir.path().join("directd.toml");
    write_private(
        &config_path,
        env.lab.daemon_toml(&env.store_path, &[(A, PW)], ""),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", config_path.to_str().unwrap(), "run"])
        .env("RUST_LOG", "error")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Watch it fail for a few seconds of wall time (backoff 0.1 s doubling to 1 s).
    while started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_seconds(child.id());
    let wall = started.elapsed().as_secs_f64();
    kill(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    assert!(
        1_000_000 - env.lab.sandbox.pending_faults() >= 3,
        "the daemon kept retrying"
    );
    assert!(
        cpu / wall < 0.25,
        "the daemon used {cpu:.2} s of CPU in {wall:.1} s against a failing HISP"
    );
    env.lab.sandbox.shutdown().await;
}

/// Logs fit where they go: no colour codes into a pipe, sd-daemon priority prefixes (and no
/// timestamps) into the journal stream systemd names in JOURNAL_STREAM, and an idle daemon says
/// nothing per poll at info, only its periodic summary.
#[tokio::test]
async fn logs_are_plain_in_a_pipe_prefixed_for_the_journal_and_quiet_when_idle() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let config_path = env.dir.path().join("directd.toml");
    write_private(
        &config_path,
        env.lab
            .daemon_toml(&env.store_path, &[(A, PW)], "summary_interval_secs = 1"),
    )
    .unwrap();
    let run = |journal: bool| {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let meta = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&writer)
        ))
        .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["--config", config_path.to_str().unwrap(), "run"])
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        if !journal {
            cmd.env_remove("JOURNAL_STREAM");
        }
        let child = cmd.stderr(writer).spawn().unwrap();
        (
            child,
            std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut reader, &mut s).unwrap();
                s
            }),
        )
    };
    for journal in [false, true] {
        let (child, logs) = run(journal);
        // Polls every 0.2 s for 2.5 s: about a dozen idle polls.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        kill(child.id(), "TERM");
        let mut child = child;
        assert!(child.wait().unwrap().success());
        let logs = logs.join().unwrap();
        assert!(!logs.contains('\u{1b}'), "colour codes in a pipe:\n{logs}");
        assert!(
            !logs.contains("poll complete"),
            "idle polls at info:\n{logs}"
        );
        assert!(logs.contains("summary"), "{logs}");
        if journal {
            // Every line carries an sd-daemon priority (<3> error ... <7> debug).
            for line in logs.lines() {
                let b = line.as_bytes();
                assert!(
                    b.len() > 3 && b[0] == b'<' && (b'3'..=b'7').contains(&b[1]) && b[2] == b'>',
                    "{line:?}"
                );
            }
            assert!(logs.contains("<6>"), "{logs}");
            assert!(
                !logs.contains("Z  INFO"),
                "timestamps in the journal:\n{logs}"
            );
        } else {
            assert!(logs.lines().all(|l| !l.starts_with('<')), "{logs}");
        }
    }
    env.lab.sandbox.shutdown().await;
}
