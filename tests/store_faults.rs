//! The store under contention and faults, against the spawned daemon: concurrent writers, a
//! store that cannot be written, a store deleted under the daemon, a second daemon, and new
//! stores created at once by several processes. Nothing may be lost or acknowledged falsely.

mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use directd::sandbox::InjectMail;
use support::sandbox::*;

const BIN: &str = env!("CARGO_BIN_EXE_directd");

fn write_config(env: &TestEnv, accounts: &[(&str, &str)], store_extra: &str) -> PathBuf {
    let path = env.dir.path().join("directd.toml");
    let toml = env.lab.daemon_toml(&env.store_path, accounts, "").replacen(
        "[store]\n",
        &format!("[store]\n{store_extra}\n"),
        1,
    );
    directd::fsutil::write_private(&path, toml.as_bytes()).unwrap();
    path
}

fn daemon(config: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn stop(mut child: Child) -> (std::process::ExitStatus, String) {
    if child.try_wait().unwrap().is_none() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let status = child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    (status, logs)
}

async fn wait_exit(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn mail(env: &TestEnv, subject: &str) {
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@elsewhere.example".into(),
        subject: subject.into(),
        body: b"result attached".to_vec(),
        attachments: vec![("ccd.xml".into(), "application/xml".into(), CCDA.to_vec())],
    });
}

fn received_subjects(env: &TestEnv) -> Vec<String> {
    let store = env.store();
    let mut s: Vec<String> = store
        .list_messages(false, true, None)
        .unwrap()
        .iter()
        .map(|m| store.incoming(m.id).unwrap().subject.unwrap_or_default())
        .collect();
    s.sort();
    s
}

/// 60 `directd send` processes at once while the daemon sends and receives: the daemon never
/// exits, and each message goes to the HISP exactly once.
#[tokio::test]
async fn concurrent_sends_neither_stop_the_daemon_nor_send_twice() {
    let env = TestEnv::start(sandbox_config(&[A, B])).await;
    let config = write_config(&env, &[(A, PW), (B, PW)], "");
    let mut child = daemon(&config).spawn().unwrap();
    let ccda = env.dir.path().join("ccd.xml");
    std::fs::write(&ccda, CCDA).unwrap();
    const N: usize = 60;
    let senders: Vec<_> = (0..N)
        .map(|i| {
            let (config, ccda) = (config.clone(), ccda.clone());
            std::thread::spawn(move || {
                Command::new(BIN)
                    .args(["--config", config.to_str().unwrap(), "send"])
                    .args([
                        "--from",
                        A,
                        "--to",
                        B,
                        "--subject",
                        &format!("parallel {i:02}"),
                    ])
                    .arg("--ccda")
                    .arg(&ccda)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for s in senders {
        let out = s.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all_in = wait_until(60, || received_subjects(&env).len() >= N).await;
    let alive = child.try_wait().unwrap().is_none();
    let (_, logs) = stop(child);
    assert!(alive, "the daemon exited under contention:\n{logs}");
    assert!(all_in, "{} of {N} arrived", received_subjects(&env).len());
    let want: Vec<String> = (0..N).map(|i| format!("parallel {i:02}")).collect();
    assert_eq!(received_subjects(&env), want);
    assert_eq!(env.lab.sandbox.sent().len(), N, "a message was sent twice");
    env.lab.sandbox.shutdown().await;
}

/// Several processes' worth of connections creating one new store at once, 30 times over: every
/// open succeeds and the schema is complete.
#[test]
fn a_new_store_opened_at_once_by_many_migrates_once() {
    for trial in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    directd::store::Store::open(&path, Duration::from_secs(5)).map(|_| ())
                })
            })
            .collect();
        for o in openers {
            o.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        }
        let store = directd::store::Store::open_existing(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            directd::store::SCHEMA_VERSION,
            "trial {trial}"
        );
    }
}

/// The store is deleted while the daemon runs: it must stop before acknowledging anything
/// more, with an error that says so, and the HISP keeps every message the store never held.
#[tokio::test]
async fn a_store_deleted_under_the_daemon_stops_it_before_it_acknowledges() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let config = write_config(&env, &[(B, PW)], "");
    let mut child = daemon(&config).spawn().unwrap();
    mail(&env, "before");
    assert!(wait_until(15, || env.lab.sandbox.queue_len(B) == 0).await);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = env.store_path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    for i in 0..3 {
        mail(&env, &format!("after {i}"));
    }
    let status = wait_exit(&mut child, 15).await;
    let (_, logs) = stop(child);
    let status = status.unwrap_or_else(|| panic!("the daemon kept running:\n{logs}"));
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(logs.contains("deleted or replaced"), "{logs}");
    assert_eq!(
        env.lab.sandbox.queue_len(B),
        3,
        "messages were acknowledged into a deleted store"
    );
    env.lab.sandbox.shutdown().await;
}

/// A second `directd run` on the same store is refused and names the first one's pid; the lock
/// goes with its holder.
#[tokio::test]
async fn a_second_daemon_on_the_same_store_is_refused() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let config = write_config(&env, &[(B, PW)], "");
    let first = daemon(&config).spawn().unwrap();
    let lock = directd::daemon::lock_path(&env.store_path);
    let pid = first.id().to_string();
    assert!(
        wait_until(15, || std::fs::read_to_string(&lock)
            .is_ok_and(|s| s.trim() == pid))
        .await
    );
    let second = daemon(&config).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "another daemon (pid {pid}) already runs on {}",
            env.store_path.display()
        )),
        "{err}"
    );
    // SIGKILL leaves no stale lock behind.
    let mut first = first;
    first.kill().unwrap();
    first.wait().unwrap();
    let third = daemon(&config).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut third = third;
    assert!(third.try_wait().unwrap().is_none());
    let (status, logs) = stop(third);
    assert!(status.success(), "{logs}");
    env.lab.sandbox.shutdown().await;
}

/// The folders of a new store are 0700 and the store 0600 even under umask 000.
#[tokio::test]
async fn a_new_store_and_its_folders_are_private_whatever_the_umask() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let nested = env.dir.path().join("state/directd/store.db");
    let toml = env.lab.daemon_toml(&nested, &[(B, PW)], "").to_string();
    let config = env.dir.path().join("directd.toml");
    directd::fsutil::write_private(&config, toml.as_bytes()).unwrap();
    let mut cmd = daemon(&config);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    assert!(wait_until(15, || nested.exists()).await);
    let (_, logs) = stop(child);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.dir.path().join("state")), 0o700, "{logs}");
    assert_eq!(mode(&env.dir.path().join("state/directd")), 0o700);
    assert_eq!(mode(&nested), 0o600);
    env.lab.sandbox.shutdown().await;
}

/// Another process holds the store's write lock far longer than the busy timeout: the daemon
/// reports it, waits, and takes the mail once the lock is gone.
#[tokio::test]
async fn a_store_locked_by_another_writer_is_waited_out() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let config = write_config(&env, &[(B, PW)], "busy_timeout_ms = 100");
    drop(env.store()); // create it
    let sock_path = env.dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let mut child = daemon(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(await_notify(&sock, &mut seen, "READY=1").await);
    let holder = rusqlite::Connection::open(&env.store_path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    mail(&env, "while locked");
    let reported = await_notify(&sock, &mut seen, "store unavailable").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alive = child.try_wait().unwrap().is_none();
    let still_queued = env.lab.sandbox.queue_len(B);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    let stored = wait_until(20, || env.lab.sandbox.queue_len(B) == 0).await;
    let (_, logs) = stop(child);
    assert!(alive, "the daemon exited on a locked store:\n{logs}");
    assert!(reported, "{seen:?}");
    assert_eq!(still_queued, 1, "acknowledged while the store was locked");
    assert!(stored, "{logs}");
    assert!(logs.contains("store unavailable"), "{logs}");
    assert!(logs.contains("store available again"), "{logs}");
    assert_eq!(received_subjects(&env), ["while locked"]);
    env.lab.sandbox.shutdown().await;
}

fn set_fsize(pid: u32, soft: u64) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid struct.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The store cannot be written, first from the start (nothing can be created) and then in the
/// middle of a run (a large message does not fit), as on a full disk: the daemon stays up, says
/// why in its log and status line, acknowledges nothing, and takes everything once there is room.
#[tokio::test]
async fn a_store_that_cannot_be_written_is_waited_out() {
    let env = TestEnv::start(sandbox_config(&[B])).await;
    let config = write_config(&env, &[(B, PW)], "");
    let sock_path = env.dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let mut cmd = daemon(&config);
    cmd.env("NOTIFY_SOCKET", &sock_path);
    // SAFETY: signal and setrlimit are async-signal-safe. With SIGXFSZ ignored, a write past the
    // limit fails with EFBIG, which SQLite reports as an I/O error, as it would a full disk.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    mail(&env, "first");
    let mut seen = Vec::new();
    let reported = await_notify(&sock, &mut seen, "store unavailable").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alive = child.try_wait().unwrap().is_none();
    let queued = env.lab.sandbox.queue_len(B);
    set_fsize(child.id(), libc::RLIM_INFINITY);
    let first_in = wait_until(20, || env.lab.sandbox.queue_len(B) == 0).await;

    // Room for small writes, not for a message with a 4 MB attachment.
    let size = std::fs::metadata(&env.store_path).unwrap().len();
    set_fsize(child.id(), size + (1 << 20));
    env.lab.sandbox.inject_mail(InjectMail {
        to: B.into(),
        from: "lab@elsewhere.example".into(),
        subject: "large".into(),
        body: b"scan attached".to_vec(),
        attachments: vec![(
            "scan.pdf".into(),
            "application/pdf".into(),
            vec![7u8; 4 << 20],
        )],
    });
    seen.clear();
    let reported_again = await_notify(&sock, &mut seen, "store unavailable").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alive_again = child.try_wait().unwrap().is_none();
    let queued_again = env.lab.sandbox.queue_len(B);
    set_fsize(child.id(), libc::RLIM_INFINITY);
    let large_in = wait_until(20, || env.lab.sandbox.queue_len(B) == 0).await;
    let (_, logs) = stop(child);

    assert!(alive && alive_again, "the daemon exited:\n{logs}");
    assert!(reported && reported_again, "{seen:?}\n{logs}");
    assert_eq!(
        (queued, queued_again),
        (1, 1),
        "acknowledged what was not stored"
    );
    assert!(first_in && large_in, "{logs}");
    assert_eq!(received_subjects(&env), ["first", "large"]);
    env.lab.sandbox.shutdown().await;
}
