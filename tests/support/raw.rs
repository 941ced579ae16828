//! A phiMail client written from the protocol notes, not from directd's `PhiMailClient`: raw LF
//! lines and counted bytes, so the sandbox and directd's client cannot share a misreading.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub struct Raw {
    pub io: BufReader<TlsStream<TcpStream>>,
}

impl Raw {
    pub async fn connect(addr: &str, tls: Arc<rustls::ClientConfig>) -> Raw {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .unwrap();
        Raw {
            io: BufReader::new(tls),
        }
    }

    /// Connects, says INFO and logs in; panics unless both answer OK.
    pub async fn login(addr: &str, tls: Arc<rustls::ClientConfig>, user: &str, pw: &str) -> Raw {
        let mut raw = Raw::connect(addr, tls).await;
        assert_eq!(raw.ask("INFO VER raw-test").await, "OK");
        assert_eq!(raw.ask(&format!("AUTH {user} {pw}")).await, "OK");
        raw
    }

    /// Writes `bytes` exactly as given.
    pub async fn write(&mut self, bytes: &[u8]) {
        let stream = self.io.get_mut();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// Writes one command line, LF-terminated.
    pub async fn say(&mut self, line: &str) {
        self.write(format!("{line}\n").as_bytes()).await;
    }

    /// Reads one reply line without its LF (a CR, if the server sent one, is kept).
    pub async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.io.read_line(&mut s))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(s.ends_with('\n'), "reply not LF-terminated: {s:?}");
        s.pop();
        s
    }

    pub async fn ask(&mut self, line: &str) -> String {
        self.say(line).await;
        self.line().await
    }

    pub async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.io.read_exact(&mut buf).await.unwrap();
        buf
    }

    /// Sends `ADD <kind> <len>[ <name>]`, then the bytes; panics unless BEGIN and OK come back.
    pub async fn add(&mut self, kind: &str, name: Option<&str>, data: &[u8]) {
        let line = match name {
            Some(n) => format!("ADD {kind} {} {n}", data.len()),
            None => format!("ADD {kind} {}", data.len()),
        };
        assert_eq!(self.ask(&line).await, "BEGIN");
        self.write(data).await;
        assert_eq!(self.line().await, "OK");
    }

    /// Aborts the connection: SO_LINGER 0, no close_notify, so the peer gets a TCP RST.
    pub fn reset(self) {
        let (tcp, _) = self.io.into_inner().into_inner();
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    }
}
