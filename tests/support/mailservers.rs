//! A private Postfix + Dovecot pair on 127.0.0.1 for tests: real servers, throwaway everything.
//!
//! Layout under the working directory (see [`MailServers::start`]):
//!
//! ```text
//! certs/          test CA + server certificate (SAN localhost, 127.0.0.1), generated fresh
//! postfix/etc/    main.cf, master.cf, vmailbox, senders      (postfix -c postfix/etc)
//! postfix/spool/  queue_directory (created and chowned by `postfix start`)
//! postfix/data/   data_directory (owned by the postfix user)
//! postfix/postfix.log
//! dovecot/dovecot.conf, dovecot/users (passwd-file), dovecot/run (base_dir), dovecot/dovecot.log
//! mail/<domain>/<user>/Maildir    owned by the `mail` user, which Dovecot delivers as
//! ```
//!
//! Postfix listens for submission with STARTTLS and for implicit-TLS submission, authenticates
//! through Dovecot's auth service (on a loopback TCP port, so Postfix needs no socket in its
//! queue directory) and hands mail for the virtual domains `a.test` and `b.test` to Dovecot's
//! LMTP (also loopback TCP). Dovecot serves IMAPS. All five ports are picked free at start.
//!
//! Needs root: Postfix's master and Dovecot's master start as root and drop privileges per
//! service (postfix, dovenull, dovecot, mail).

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use directd::hisp::edge::client::{AfterFetch, EdgeSettings, SmtpTls};
use directd::sandbox::pki::TestPki;

/// The mailboxes every harness has, with their passwords.
pub const MAILBOXES: [(&str, &str); 2] = [
    ("clinic@a.test", "clinic-a-password"),
    ("clinic@b.test", "clinic-b-password"),
];

const POSTFIX_CANDIDATES: [&str; 2] = ["/usr/sbin/postfix", "/usr/local/sbin/postfix"];
const DOVECOT_CANDIDATES: [&str; 2] = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"];
/// Dovecot's LMTP and IMAP service binaries (separate Debian packages from dovecot-core).
const DOVECOT_SERVICES: [&str; 2] = ["/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap"];

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}")]
    Missing(String),
    #[error("the mail server harness must run as root (Postfix's and Dovecot's masters do)")]
    NotRoot,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("test PKI: {0}")]
    Pki(#[from] openssl::error::ErrorStack),
    #[error("{command} failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("{error}\n{logs}")]
    StartFailed { error: String, logs: String },
    #[error("{what} did not come up within {after:?}\n{logs}")]
    NotReady {
        what: String,
        after: Duration,
        logs: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Paths of the installed binaries the harness runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub postfix: PathBuf,
    pub dovecot: PathBuf,
}

impl Binaries {
    /// Finds Postfix and Dovecot (with its IMAP and LMTP services), or says what is missing and
    /// how to get it.
    pub fn find() -> Result<Binaries, HarnessError> {
        Self::find_in(&POSTFIX_CANDIDATES, &DOVECOT_CANDIDATES, &DOVECOT_SERVICES)
    }

    pub fn find_in(
        postfix: &[&str],
        dovecot: &[&str],
        services: &[&str],
    ) -> Result<Binaries, HarnessError> {
        let first = |c: &[&str]| c.iter().map(PathBuf::from).find(|p| p.is_file());
        let mut missing = Vec::new();
        let postfix = first(postfix);
        if postfix.is_none() {
            missing.push("postfix".to_string());
        }
        let dovecot = first(dovecot);
        if dovecot.is_none() {
            missing.push("dovecot".to_string());
        }
        for service in services {
            if !Path::new(service).is_file() {
                missing.push(service.to_string());
            }
        }
        match (postfix, dovecot) {
            (Some(postfix), Some(dovecot)) if missing.is_empty() => {
                Ok(Binaries { postfix, dovecot })
            }
            _ => Err(HarnessError::Missing(format!(
                "missing {}: run scripts/install-mailservers.sh (as root)",
                missing.join(", ")
            ))),
        }
    }
}

/// A running Postfix + Dovecot pair. Stopped by [`stop`](Self::stop) or on drop.
#[derive(Debug)]
pub struct MailServers {
    dir: PathBuf,
    /// Holds the working directory when [`start_in_temp_dir`](Self::start_in_temp_dir) made it.
    _temp: Option<tempfile::TempDir>,
    bins: Binaries,
    /// Submission with STARTTLS (the "587" service).
    pub submission_port: u16,
    /// Submission with implicit TLS (the "465" service).
    pub submissions_port: u16,
    pub imaps_port: u16,
    /// The CA that issued both servers' certificate: what a client must trust.
    pub ca_file: PathBuf,
    postfix_conf: PathBuf,
    dovecot_conf: PathBuf,
    running: bool,
}

/// Ports bound at the same time so they are distinct, then released for the servers. Another
/// process could grab one in between; on a test machine that is rare enough.
pub fn free_ports<const N: usize>() -> Result<[u16; N], HarnessError> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("binding 127.0.0.1:0"))?;
    let mut ports = [0u16; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr().map_err(io_err("local_addr"))?.port();
    }
    Ok(ports)
}

/// uid and gid of a system user, read from /etc/passwd.
fn system_user(name: &str) -> Result<(u32, u32), HarnessError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io_err("/etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        })
        .flatten()
        .ok_or_else(|| HarnessError::Missing(format!("system user {name:?} (from the packages)")))
}

/// Runs a command to completion. Its output goes to a temporary file, not a pipe: the daemons
/// these commands start inherit stdout/stderr, and a pipe would stay open for their lifetime.
fn run(cmd: &mut Command) -> Result<String, HarnessError> {
    let shown = format!("{cmd:?}");
    let out = tempfile::tempfile().map_err(io_err("temp file for command output"))?;
    let err = out
        .try_clone()
        .map_err(io_err("temp file for command output"))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io_err("temp file"))?)
        .stderr(err)
        .status()
        .map_err(io_err(shown.clone()))?;
    let mut text = String::new();
    let mut out = out;
    let _ = out.seek(SeekFrom::Start(0));
    let _ = out.read_to_string(&mut text);
    if status.success() {
        Ok(text)
    } else {
        Err(HarnessError::Command {
            command: shown,
            status: status.to_string(),
            output: text,
        })
    }
}

fn chown(path: &Path, owner: &str) -> Result<(), HarnessError> {
    run(Command::new("chown").arg(owner).arg(path)).map(drop)
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(io_err(path.display().to_string()))
}

fn wait_for_port(port: u16, what: &str, deadline: Instant) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{what} (127.0.0.1:{port})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_root() -> bool {
    // /proc/self/status "Uid:\treal\teffective\t..." avoids a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl MailServers {
    /// Starts both servers in a fresh temporary directory, removed when this is dropped.
    ///
    /// Tries up to three times, each in a new directory with new ports: a port picked free can be
    /// taken by someone else (even by an outgoing connection's source port) before the server
    /// binds it.
    pub fn start_in_temp_dir() -> Result<MailServers, HarnessError> {
        let mut attempt = 1;
        loop {
            let temp = tempfile::Builder::new()
                .prefix("edge-mail-")
                .tempdir()
                .map_err(io_err("creating a temp dir"))?;
            match MailServers::start(temp.path()) {
                Ok(mut servers) => {
                    servers._temp = Some(temp);
                    return Ok(servers);
                }
                Err(e @ (HarnessError::StartFailed { .. } | HarnessError::NotReady { .. }))
                    if attempt < 3 =>
                {
                    tracing::warn!(attempt, error = %e, "mail servers did not start; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `doveadm` against this Dovecot (e.g. `["flags", "add", "-u", addr, "\\Deleted",
    /// "mailbox", "INBOX", "uid", "1"]`), returning its output.
    pub fn doveadm(&self, args: &[&str]) -> Result<String, HarnessError> {
        run(Command::new("doveadm")
            .arg("-c")
            .arg(&self.dovecot_conf)
            .args(args))
    }

    /// Writes configuration into `dir` (which should be empty) and starts Postfix and Dovecot,
    /// returning once all their ports accept connections.
    pub fn start(dir: &Path) -> Result<MailServers, HarnessError> {
        let bins = Binaries::find()?;
        if !is_root() {
            return Err(HarnessError::NotRoot);
        }
        let (mail_uid, mail_gid) = system_user("mail")?;
        system_user("postfix")?;
        system_user("dovenull")?;
        system_user("dovecot")?;

        let dir = dir
            .canonicalize()
            .map_err(io_err(dir.display().to_string()))?;
        // The unprivileged service users must be able to traverse down to their own directories.
        set_mode(&dir, 0o711)?;
        let [submission_port, submissions_port, imaps_port, lmtp_port, auth_port] =
            free_ports::<5>()?;

        let certs = dir.join("certs");
        let pf = dir.join("postfix");
        let dc = dir.join("dovecot");
        let mail = dir.join("mail");
        for d in [
            &certs,
            &pf.join("etc"),
            &pf.join("spool"),
            &pf.join("data"),
            &dc.join("run"),
            &dc.join("state"),
            &mail,
        ] {
            std::fs::create_dir_all(d).map_err(io_err(d.display().to_string()))?;
        }
        chown(&pf.join("data"), "postfix:postfix")?;
        chown(&mail, &format!("{mail_uid}:{mail_gid}"))?;

        let pki = TestPki::generate(&["localhost", "127.0.0.1"])?
            .write_to(&certs)
            .map_err(io_err("writing the test PKI"))?;

        let postfix_conf = pf.join("etc");
        write_postfix_config(
            &postfix_conf,
            &PostfixPorts {
                submission: submission_port,
                submissions: submissions_port,
                lmtp: lmtp_port,
                auth: auth_port,
            },
            &pki.server_cert,
            &pki.server_key,
        )?;
        let dovecot_conf = dc.join("dovecot.conf");
        write_dovecot_config(
            &dir,
            &dovecot_conf,
            &DovecotPorts {
                imaps: imaps_port,
                lmtp: lmtp_port,
                auth: auth_port,
            },
            (mail_uid, mail_gid),
            &pki.server_cert,
            &pki.server_key,
        )?;

        let mut servers = MailServers {
            dir,
            _temp: None,
            bins,
            submission_port,
            submissions_port,
            imaps_port,
            ca_file: pki.ca_cert,
            postfix_conf,
            dovecot_conf,
            running: true,
        };
        // From here on Drop cleans up whatever did start. Postfix reports start-up problems
        // only to its log (stderr is not a terminal), hence the logs in the error.
        let started = run(Command::new(&servers.bins.dovecot)
            .arg("-c")
            .arg(&servers.dovecot_conf))
        .and_then(|_| {
            run(Command::new(&servers.bins.postfix)
                .arg("-c")
                .arg(&servers.postfix_conf)
                .arg("start"))
        });
        if let Err(e) = started {
            return Err(HarnessError::StartFailed {
                error: e.to_string(),
                logs: servers.logs(),
            });
        }

        let after = Duration::from_secs(20);
        let deadline = Instant::now() + after;
        for (port, what) in [
            (imaps_port, "Dovecot IMAPS"),
            (lmtp_port, "Dovecot LMTP"),
            (auth_port, "Dovecot auth"),
            (submission_port, "Postfix submission"),
            (submissions_port, "Postfix submissions"),
        ] {
            if let Err(what) = wait_for_port(port, what, deadline) {
                let logs = servers.logs();
                servers.stop();
                return Err(HarnessError::NotReady { what, after, logs });
            }
        }
        tracing::debug!(dir = %servers.dir.display(), submission_port, submissions_port, imaps_port, "mail servers up");
        Ok(servers)
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Settings for one of [`MAILBOXES`] against these servers (password looked up there).
    pub fn settings_for(&self, address: &str, smtp_tls: SmtpTls) -> EdgeSettings {
        let password = MAILBOXES
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        EdgeSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: match smtp_tls {
                SmtpTls::StartTls => self.submission_port,
                SmtpTls::Implicit => self.submissions_port,
            },
            smtp_tls,
            imap_host: "127.0.0.1".into(),
            imap_port: self.imaps_port,
            user: address.to_owned(),
            password,
            ca_file: self.ca_file.clone(),
            mailbox: "INBOX".into(),
            after_fetch: AfterFetch::Delete,
            timeout: Duration::from_secs(15),
        }
    }

    /// Maildir of `address` (`folder` None for INBOX, else a Maildir++ subfolder).
    pub fn maildir(&self, address: &str, folder: Option<&str>) -> PathBuf {
        let (user, domain) = address.split_once('@').unwrap_or((address, ""));
        let base = self
            .dir
            .join("mail")
            .join(domain)
            .join(user)
            .join("Maildir");
        match folder {
            None => base,
            Some(f) => base.join(format!(".{f}")),
        }
    }

    /// Message files currently in a maildir's `new/` and `cur/`.
    pub fn maildir_messages(&self, address: &str, folder: Option<&str>) -> Vec<PathBuf> {
        let base = self.maildir(address, folder);
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(base.join(sub)) {
                files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
            }
        }
        files.sort();
        files
    }

    /// The last lines of both servers' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for log in [
            self.dir.join("postfix/postfix.log"),
            self.dir.join("dovecot/dovecot.log"),
        ] {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(out, "--- {} (last 40 lines)", log.display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    /// Stops both servers and waits until they are gone. Idempotent; errors are logged, not
    /// returned, because this also runs from `Drop`.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        // `postfix stop` waits for the master to exit (up to 5 s, then SIGKILLs it).
        if let Err(e) = run(Command::new(&self.bins.postfix)
            .arg("-c")
            .arg(&self.postfix_conf)
            .arg("stop"))
        {
            tracing::warn!(error = %e, "stopping postfix");
        }
        // Dovecot: SIGTERM the master (what `doveadm stop` does) and wait for it to exit.
        let pid_file = self.dir.join("dovecot/run/master.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            if let Err(e) = run(Command::new("kill").arg("-TERM").arg(pid.to_string())) {
                tracing::warn!(error = %e, "stopping dovecot");
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while process_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if process_alive(pid) {
                let _ = run(Command::new("kill").arg("-KILL").arg(pid.to_string()));
            }
        }
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Alive and not a zombie (a daemon's master reparents to PID 1, which may never reap it).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), HarnessError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path.display().to_string()))
}

struct PostfixPorts {
    submission: u16,
    submissions: u16,
    lmtp: u16,
    auth: u16,
}

fn write_postfix_config(
    etc: &Path,
    ports: &PostfixPorts,
    cert: &Path,
    key: &Path,
) -> Result<(), HarnessError> {
    let base = etc.parent().expect("postfix/etc has a parent");
    let root = base.parent().expect("postfix has a parent");
    let vmailbox = etc.join("vmailbox");
    let senders = etc.join("senders");
    // texthash: tables read straight from text, so no postmap step and no .db files.
    let mut vm = String::new();
    let mut sl = String::new();
    for (addr, _) in MAILBOXES {
        let _ = writeln!(vm, "{addr} {addr}");
        let _ = writeln!(sl, "{addr} {addr}");
    }
    write(&vmailbox, &vm)?;
    write(&senders, &sl)?;

    let main_cf = format!(
        "\
# Throwaway Postfix instance for directd's edge transport tests.
compatibility_level = 3.6
config_directory = {etc}
queue_directory = {base}/spool
data_directory = {base}/data
maillog_file = {base}/postfix.log
maillog_file_prefixes = {root}
myhostname = mx.test
mydomain = test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
# Both test domains are virtual mailbox domains delivered to Dovecot over LMTP; an address not
# in vmailbox is refused at RCPT time (550 5.1.1), which the mixed-recipient test relies on.
virtual_mailbox_domains = a.test, b.test
virtual_mailbox_maps = texthash:{vmailbox}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{auth}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtp_tls_security_level = none
# Nothing leaves this host.
default_transport = error:outbound mail disabled in the test harness
relay_transport = error:outbound mail disabled in the test harness
",
        etc = etc.display(),
        base = base.display(),
        root = root.display(),
        vmailbox = vmailbox.display(),
        lmtp = ports.lmtp,
        auth = ports.auth,
        cert = cert.display(),
        key = key.display(),
    );
    write(&etc.join("main.cf"), &main_cf)?;

    // Postfix's master.cf continues a service line with indented `-o` lines (so no `\`
    // continuations in these literals, which would eat the indentation).
    let submission_opts = [
        "  -o smtpd_sasl_auth_enable=yes".to_string(),
        "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject".to_string(),
        "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject".to_string(),
        format!(
            "  -o smtpd_sender_login_maps=texthash:{}",
            senders.display()
        ),
        "  -o smtpd_sender_restrictions=reject_sender_login_mismatch".to_string(),
    ]
    .join("\n");
    let services = [
        "pickup    unix  n - n 60 1 pickup",
        "cleanup   unix  n - n - 0 cleanup",
        "qmgr      unix  n - n 300 1 qmgr",
        "tlsmgr    unix  - - n 1000? 1 tlsmgr",
        "rewrite   unix  - - n - - trivial-rewrite",
        "bounce    unix  - - n - 0 bounce",
        "defer     unix  - - n - 0 bounce",
        "trace     unix  - - n - 0 bounce",
        "verify    unix  - - n - 1 verify",
        "flush     unix  n - n 1000? 0 flush",
        "proxymap  unix  - - n - - proxymap",
        "smtp      unix  - - n - - smtp",
        "relay     unix  - - n - - smtp",
        "showq     unix  n - n - - showq",
        "error     unix  - - n - - error",
        "retry     unix  - - n - - error",
        "discard   unix  - - n - - discard",
        "lmtp      unix  - - n - - lmtp",
        "anvil     unix  - - n - 1 anvil",
        "scache    unix  - - n - 1 scache",
        "postlog   unix-dgram n - n - 1 postlogd",
    ]
    .join("\n");
    // No chroot anywhere (fifth column "n"): the queue directory is not a prepared jail.
    let master_cf = format!(
        "127.0.0.1:{submission} inet n - n - - smtpd\n  \
         -o syslog_name=postfix/submission\n  \
         -o smtpd_tls_security_level=encrypt\n  \
         -o smtpd_tls_auth_only=yes\n\
         {submission_opts}\n\
         127.0.0.1:{submissions} inet n - n - - smtpd\n  \
         -o syslog_name=postfix/submissions\n  \
         -o smtpd_tls_wrappermode=yes\n\
         {submission_opts}\n\
         {services}\n",
        submission = ports.submission,
        submissions = ports.submissions,
    );
    write(&etc.join("master.cf"), &master_cf)
}

struct DovecotPorts {
    imaps: u16,
    lmtp: u16,
    auth: u16,
}

fn write_dovecot_config(
    root: &Path,
    conf: &Path,
    ports: &DovecotPorts,
    (mail_uid, mail_gid): (u32, u32),
    cert: &Path,
    key: &Path,
) -> Result<(), HarnessError> {
    let dc = conf.parent().expect("dovecot.conf has a parent");
    let users = dc.join("users");
    let mut passwd = String::new();
    for (addr, password) in MAILBOXES {
        let _ = writeln!(passwd, "{addr}:{{PLAIN}}{password}");
    }
    write(&users, &passwd)?;
    let instance = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "edge-test".into());

    let text = format!(
        "\
# Throwaway Dovecot instance for directd's edge transport tests.
base_dir = {dc}/run
state_dir = {dc}/state
instance_name = {instance}
protocols = imap lmtp
listen = 127.0.0.1
log_path = {dc}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
# The wrong-password tests should not wait the default 2 s.
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
# No growing per-IP delay after failed logins (Dovecot's auth penalty): every client here is
# 127.0.0.1, and the wrong-password test fails on purpose.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  inet_listener postfix-sasl {{
    address = 127.0.0.1
    port = {auth}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@a.test
}}
",
        dc = dc.display(),
        root = root.display(),
        users = users.display(),
        cert = cert.display(),
        key = key.display(),
        imaps = ports.imaps,
        lmtp = ports.lmtp,
        auth = ports.auth,
    );
    write(conf, &text)
}
