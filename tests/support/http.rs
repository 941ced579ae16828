//! A small HTTP/1.1 server on a loopback port for CRLs, AIA issuers and bundles, with the faults
//! real CA servers show: 404, slow answers, oversize and endless bodies, redirects. It is a real
//! TCP server that directd's HTTP client (reqwest) talks to; it speaks just enough HTTP: one
//! GET per connection, `Connection: close`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub enum Reply {
    Body(Vec<u8>),
    Status(u16),
    /// Waits this long before sending the body.
    Slow(Duration, Vec<u8>),
    /// A 200 without Content-Length followed by bytes until the client hangs up.
    Endless,
    /// A 302 to this location.
    Redirect(String),
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve(conn, &state));
            }
        });
        HttpServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), reply);
    }

    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().routes.remove(path);
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let reply = {
        let mut s = state.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        s.routes.get(&path).cloned().unwrap_or(Reply::Status(404))
    };
    let ok = |body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let out = match reply {
        Reply::Body(body) => ok(&body),
        Reply::Slow(delay, body) => {
            std::thread::sleep(delay);
            ok(&body)
        }
        Reply::Status(code) => format!(
            "HTTP/1.1 {code} Status {code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        Reply::Redirect(to) => format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        Reply::Endless => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nConnection: close\r\n\r\n";
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = [0x30u8; 64 * 1024];
            while conn.write_all(&chunk).is_ok() {}
            return;
        }
    };
    let _ = conn.write_all(&out);
}
