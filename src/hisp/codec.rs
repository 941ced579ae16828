//! The phiMail wire format: LF-terminated UTF-8 lines and byte-counted payloads.
//!
//! Both the client (`hisp::phimail`) and the sandbox server speak through this type, so the framing
//! rules live in exactly one place. Every read is bounded: a peer that sends an endless line or
//! announces a huge payload gets a [`CodecError`], never an allocation of its choosing.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest command or reply line we accept (the protocol's lines are short; headers of SHOW 0 are
/// the longest legitimate ones).
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection closed by peer")]
    Closed,
    #[error("timed out after {0:?} waiting for the peer")]
    Timeout(Duration),
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("line contains a CR or LF and cannot be sent as one command")]
    EmbeddedNewline,
    #[error("payload of {announced} bytes exceeds the limit of {limit}")]
    PayloadTooLarge { announced: u64, limit: u64 },
    #[error("connection closed after {got} of {announced} payload bytes")]
    TruncatedPayload { got: usize, announced: usize },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A buffered connection that reads and writes protocol lines and counted payloads.
pub struct LineConn<S> {
    io: BufReader<S>,
    timeout: Duration,
    keep_cr: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineConn<S> {
    pub fn new(stream: S, timeout: Duration) -> Self {
        LineConn {
            io: BufReader::new(stream),
            timeout,
            keep_cr: false,
        }
    }

    /// Returns lines with a trailing CR kept, for a server that must refuse CRLF clients
    /// rather than quietly understand them.
    pub fn keep_cr(mut self) -> Self {
        self.keep_cr = true;
        self
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Reads one line without its terminator, decoding invalid UTF-8 lossily. A trailing CR is
    /// tolerated (and dropped) on input so a CRLF-speaking peer is still understood, though we
    /// never send CR ourselves.
    pub async fn read_line(&mut self) -> Result<String, CodecError> {
        let timeout = self.timeout;
        let mut buf = Vec::new();
        let read = async {
            loop {
                let available = self.io.fill_buf().await?;
                if available.is_empty() {
                    return Err(if buf.is_empty() {
                        CodecError::Closed
                    } else {
                        CodecError::Io(std::io::ErrorKind::UnexpectedEof.into())
                    });
                }
                let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (&available[..i], Some(i + 1)),
                    None => (available, None),
                };
                if buf.len() + chunk.len() > MAX_LINE {
                    return Err(CodecError::LineTooLong);
                }
                buf.extend_from_slice(chunk);
                match done {
                    Some(n) => {
                        self.io.consume(n);
                        return Ok(());
                    }
                    None => {
                        let n = chunk.len();
                        self.io.consume(n);
                    }
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| CodecError::Timeout(timeout))??;
        if !self.keep_cr && buf.last() == Some(&b'\r') {
            buf.pop();
        }
        // Lossy on purpose: a sender's Latin-1 subject must not make a message unreadable (and
        // block the queue behind it); protocol keywords are ASCII and unaffected.
        Ok(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads exactly `len` payload bytes, refusing announcements above `limit`.
    pub async fn read_payload(&mut self, len: u64, limit: u64) -> Result<Vec<u8>, CodecError> {
        if len > limit {
            return Err(CodecError::PayloadTooLarge {
                announced: len,
                limit,
            });
        }
        let len = len as usize;
        let timeout = self.timeout;
        // Grown as bytes arrive rather than allocated from the announcement, so a peer that
        // announces a huge part and sends little costs little.
        let mut buf = Vec::with_capacity(len.min(1 << 20));
        while buf.len() < len {
            let got = buf.len();
            if buf.capacity() == got {
                buf.reserve((len - got).min(got.max(1 << 20)));
            }
            // `take` keeps the read inside this payload; the bytes after it are the next line.
            let mut rest = (&mut self.io).take((len - got) as u64);
            let n = tokio::time::timeout(timeout, rest.read_buf(&mut buf))
                .await
                .map_err(|_| CodecError::Timeout(timeout))??;
            if n == 0 {
                return Err(CodecError::TruncatedPayload {
                    got,
                    announced: len,
                });
            }
        }
        Ok(buf)
    }

    /// Writes one line followed by a single LF.
    pub async fn write_line(&mut self, line: &str) -> Result<(), CodecError> {
        if line.contains(['\r', '\n']) {
            return Err(CodecError::EmbeddedNewline);
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.write_raw(&bytes).await
    }

    /// Writes bytes exactly as given (payloads, or the sandbox's deliberately broken replies).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let timeout = self.timeout;
        let write = async {
            let stream = self.io.get_mut();
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| CodecError::Timeout(timeout))??;
        Ok(())
    }

    /// The stream itself, for a caller that ends the connection some other way (a reset).
    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }

    /// Closes the write side so the peer sees a clean end of stream.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.timeout, self.io.get_mut().shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_and_payloads_round_trip() {
        let (a, b) = tokio::io::duplex(64);
        let mut a = LineConn::new(a, Duration::from_secs(5));
        let mut b = LineConn::new(b, Duration::from_secs(5));
        let writer = tokio::spawn(async move {
            a.write_line("ADD CDA 5 x.xml").await.unwrap();
            a.write_raw(b"\x00\n\r\nzNEXT\r\nSubject: caf\xe9\n")
                .await
                .unwrap();
            a
        });
        assert_eq!(b.read_line().await.unwrap(), "ADD CDA 5 x.xml");
        assert_eq!(b.read_payload(5, 10).await.unwrap(), b"\x00\n\r\nz");
        assert_eq!(b.read_line().await.unwrap(), "NEXT");
        assert_eq!(b.read_line().await.unwrap(), "Subject: caf\u{fffd}");
        let mut a = writer.await.unwrap();
        assert!(matches!(
            a.write_line("A\nB").await,
            Err(CodecError::EmbeddedNewline)
        ));
        drop(a);
        assert!(matches!(b.read_line().await, Err(CodecError::Closed)));
    }

    #[tokio::test]
    async fn bounds_are_enforced() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut a = LineConn::new(a, Duration::from_secs(5));
        let mut b = LineConn::new(b, Duration::from_millis(200));
        assert!(matches!(
            b.read_payload(11, 10).await,
            Err(CodecError::PayloadTooLarge {
                announced: 11,
                limit: 10
            })
        ));
        a.write_raw(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        assert!(matches!(b.read_line().await, Err(CodecError::LineTooLong)));
        let (_c, d) = tokio::io::duplex(64);
        let mut d = LineConn::new(d, Duration::from_millis(50));
        assert!(matches!(d.read_line().await, Err(CodecError::Timeout(_))));
        a.write_raw(b"abc").await.unwrap();
        drop(a);
        let mut fresh = b;
        // The over-long line poisoned the buffer position; a truncated payload is still detected.
        let r = fresh.read_payload(1 << 19, 1 << 20).await;
        assert!(
            matches!(r, Err(CodecError::TruncatedPayload { .. })),
            "{r:?}"
        );
    }
}
