//! Private dnsmasq and OpenLDAP slapd instances on loopback ports, for the LDAP discovery tests.
//! The dnsmasq one follows tests/smime_dnscert.rs (readiness proven by a per-instance token,
//! retry on a port race); slapd gets a generated slapd.conf, its data loaded with slapadd before
//! it starts, and runs in the foreground (`-d 0`) so killing the child stops it.

use std::collections::HashSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port free on UDP and TCP at 127.0.0.1 and never handed out twice in this process.
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

use directd::util::hex;

/// `--dns-rr` value for a CERT record of type PKIX at `name`.
pub fn cert_rr(name: &str, der: &[u8]) -> String {
    let mut rdata = vec![0, 1, 0, 0, 0];
    rdata.extend_from_slice(der);
    format!("--dns-rr={name},37,{}", hex(&rdata))
}

pub struct Dnsmasq {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Dnsmasq {
    /// dnsmasq answering for `*.test` only, with `extra` options (`--srv-host=...`, ...).
    pub fn start(extra: &[String]) -> Dnsmasq {
        for _ in 0..5 {
            let port = free_port();
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let token = format!(
                "ready-{}-{}-{port}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let mut rdata = vec![0, 3, 0, 0, 0];
            rdata.extend_from_slice(token.as_bytes());
            let child = Command::new("/usr/sbin/dnsmasq")
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--local=/test/",
                    "--cache-size=0",
                    &format!("--dns-rr=ready.test,37,{}", hex(&rdata)),
                ])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn dnsmasq (run scripts/install-dnsmasq.sh)");
            let mut d = Dnsmasq {
                child: Some(child),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            };
            if d.wait_ready(token.as_bytes()) {
                return d;
            }
        }
        panic!("dnsmasq did not come up");
    }

    fn wait_ready(&mut self, token: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                return false;
            }
            if let Some(answer) = cert_query(self.addr, "ready.test") {
                if answer.windows(token.len()).any(|w| w == token) {
                    return true;
                }
            }
        }
        false
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cert_query(server: SocketAddr, name: &str) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    sock.connect(server).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let mut q = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 37, 0, 1]);
    sock.send(&q).ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
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
