//! Private dnsmasq and OpenLDAP slapd instances on loopback ports, for the LDAP discovery tests.
//! dnsmasq's readiness is proven by a per-instance token, with a retry on a port race; slapd gets a generated slapd.conf, its data loaded with slapadd before
//! it starts, and runs in the foreground (`-d 0`) so killing the child stops it.

use std::collections::HashSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use directd::util::hex;

/// A port free on both UDP and TCP at 127.0.0.1, released before returning, and never handed
/// out twice in this process (tests run in parallel). Something else may still grab it before
/// dnsmasq binds it; [`Dnsmasq::start`] then sees dnsmasq exit and retries with another port.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && HANDED_OUT
                .lock()
                .unwrap()
                .get_or_insert_with(HashSet::new)
                .insert(port)
        {
            return port;
        }
    }
}

/// CERT RDATA in hex, as `--dns-rr` takes it: type, key tag 0, algorithm 0, data.
pub fn cert_rdata(cert_type: u16, data: &[u8]) -> String {
    let mut rdata = cert_type.to_be_bytes().to_vec();
    rdata.extend_from_slice(&[0, 0, 0]);
    rdata.extend_from_slice(data);
    hex(&rdata)
}

/// `--dns-rr` value for a CERT record of type PKIX at `name`.
pub fn cert_rr(name: &str, der: &[u8]) -> String {
    format!("--dns-rr={name},37,{}", cert_rdata(1, der))
}

/// A private dnsmasq; killed on drop.
pub struct Dnsmasq {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Dnsmasq {
    /// dnsmasq answering for `*.test` only, with `extra` options (`--srv-host=...`,
    /// `--dns-rr=...`, `--local-ttl=...`).
    pub fn start(extra: &[String]) -> Dnsmasq {
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            // A per-instance token at ready.test proves that the instance answering the readiness
            // probe is this one (not another test's dnsmasq that got the same port).
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let token = format!(
                "ready-{}-{}-{port}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let log = std::env::temp_dir().join(format!(
                "test-dnsmasq-{}-{port}-{attempt}.log",
                std::process::id()
            ));
            let child = Command::new(dnsmasq_binary())
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    // Answer for *.test locally (NXDOMAIN/NODATA) instead of trying upstreams.
                    "--local=/test/",
                    "--cache-size=0",
                    &format!("--dns-rr=ready.test,37,{}", cert_rdata(3, token.as_bytes())),
                ])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("spawn dnsmasq (run scripts/install-dnsmasq.sh)");
            let mut d = Dnsmasq {
                child: Some(child),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                log,
            };
            if d.wait_ready(token.as_bytes()) {
                return d;
            }
            last_log = std::fs::read_to_string(&d.log).unwrap_or_default();
            drop(d); // port taken by someone else in between, or similar: retry
        }
        panic!("dnsmasq did not come up; last log:\n{last_log}");
    }

    /// Polls with real queries until dnsmasq answers (no fixed sleeps).
    fn wait_ready(&mut self, token: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("dnsmasq exited early: {status}");
                return false;
            }
            if let Some(answer) = raw_udp_query(self.addr, "ready.test", Duration::from_millis(200))
            {
                if answer.windows(token.len()).any(|w| w == token) {
                    return true;
                }
            }
        }
        false
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dnsmasq_binary() -> PathBuf {
    for p in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "dnsmasq".into()
}

/// Sends one CERT query over UDP (no EDNS) and returns the raw response, if any arrives.
pub fn raw_udp_query(server: SocketAddr, name: &str, wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    sock.connect(server).ok()?;
    sock.set_read_timeout(Some(wait)).ok()?;
    let id: u16 = 0x4242;
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 37, 0, 1]);
    sock.send(&q).ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// One LDIF entry: `dn`, then `(attribute, value)` pairs; binary values are base64-encoded.
pub struct Entry {
    pub dn: String,
    pub text: Vec<(String, String)>,
    pub binary: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn new(dn: &str) -> Entry {
        Entry {
            dn: dn.into(),
            text: Vec::new(),
            binary: Vec::new(),
        }
    }

    pub fn attr(mut self, name: &str, value: &str) -> Entry {
        self.text.push((name.into(), value.into()));
        self
    }

    pub fn bin(mut self, name: &str, value: &[u8]) -> Entry {
        self.binary.push((name.into(), value.to_vec()));
        self
    }

    fn ldif(&self) -> String {
        use openssl::base64::encode_block;
        let mut out = format!("dn: {}\n", self.dn);
        for (k, v) in &self.text {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for (k, v) in &self.binary {
            out.push_str(&format!("{k}:: {}\n", encode_block(v)));
        }
        out.push('\n');
        out
    }
}

pub struct Slapd {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Slapd {
    /// A slapd serving `suffix` with `entries` (the suffix entry itself included by the caller).
    pub fn start(suffix: &str, entries: &[Entry]) -> Slapd {
        Slapd::start_ldif(suffix, &entries.iter().map(Entry::ldif).collect::<String>())
    }

    /// A slapd serving `suffix` with the entries of an LDIF text.
    pub fn start_ldif(suffix: &str, ldif_text: &str) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = d.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {pid}\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 suffix \"{suffix}\"\n\
                 rootdn \"cn=admin,{suffix}\"\n\
                 directory {db}\n\
                 maxsize 10485760\n",
                pid = d.join("slapd.pid").display(),
                db = d.join("db").display(),
            ),
        )
        .unwrap();
        let ldif = d.join("data.ldif");
        std::fs::write(&ldif, ldif_text).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-f", p(&conf), "-l", p(&ldif)])
            .output()
            .expect("run slapadd (scripts/install-slapd.sh)");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("/usr/sbin/slapd")
                .args([
                    "-f",
                    p(&conf),
                    "-h",
                    &format!("ldap://127.0.0.1:{port}/"),
                    "-d",
                    "0",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(d.join("slapd.log")).unwrap())
                .spawn()
                .expect("spawn slapd");
            let mut s = Slapd {
                child: Some(child),
                port,
                _dir: tempfile::tempdir().unwrap(),
            };
            if s.wait_ready() {
                s._dir = dir;
                return s;
            }
        }
        panic!(
            "slapd did not come up: {}",
            std::fs::read_to_string(d.join("slapd.log")).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                return false;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
