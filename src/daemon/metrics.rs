//! An optional Prometheus text endpoint on loopback (off by default): counters the daemon bumps
//! as it works, rendered on `GET /metrics`. Hand-written because the format is a few lines and an
//! HTTP framework would dwarf the daemon.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Shutdown;

#[derive(Default)]
pub struct Metrics {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub statuses: AtomicU64,
    pub send_failures: AtomicU64,
    pub session_errors: AtomicU64,
    /// Turns that found the store busy, full or unavailable.
    pub store_errors: AtomicU64,
    /// Messages quarantined without being read (acknowledged to the HISP all the same).
    pub quarantined_unread: AtomicU64,
    /// The store's state at the last poll.
    health: Mutex<crate::store::Health>,
    pub queue_depth: AtomicU64,
    /// account → (last successful poll, unix seconds; its duration, seconds)
    polls: Mutex<BTreeMap<String, (f64, f64)>>,
    /// Trust bundles fetched by URL, as of their last refresh round.
    bundles: Mutex<Vec<crate::smime::BundleStatus>>,
    /// Our own certificates, read at start.
    certificates: Mutex<Vec<OwnCertificate>>,
}

/// One of our own certificates, for its expiry gauge: an expired S/MIME identity or TLS client
/// certificate stops every exchange of its account, so it is worth an alert weeks ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCertificate {
    /// `smime_identity` (signing and decryption) or `tls_client` (mutual TLS to the HISP).
    pub kind: &'static str,
    /// The S/MIME identity's domain or address, or the account the TLS certificate logs in.
    pub name: String,
    pub subject: String,
    pub not_after_unix: i64,
}

impl Metrics {
    pub fn record_health(&self, health: &crate::store::Health) {
        *self.health.lock().expect("metrics lock") = health.clone();
    }

    pub fn poll_succeeded(&self, account: &str, took: Duration) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.polls
            .lock()
            .expect("metrics lock")
            .insert(account.to_owned(), (now, took.as_secs_f64()));
    }

    pub fn set_certificates(&self, certificates: Vec<OwnCertificate>) {
        *self.certificates.lock().expect("metrics lock") = certificates;
    }

    pub fn set_bundles(&self, status: Vec<crate::smime::BundleStatus>) {
        *self.bundles.lock().expect("metrics lock") = status;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "directd_messages_sent_total",
                "Messages submitted to a HISP.",
                &self.sent,
            ),
            (
                "directd_messages_received_total",
                "Messages received and committed.",
                &self.received,
            ),
            (
                "directd_redeliveries_total",
                "Received messages that were already stored.",
                &self.duplicates,
            ),
            (
                "directd_status_notifications_total",
                "Delivery notifications recorded.",
                &self.statuses,
            ),
            (
                "directd_send_failures_total",
                "Failed send attempts.",
                &self.send_failures,
            ),
            (
                "directd_session_errors_total",
                "HISP sessions that failed.",
                &self.session_errors,
            ),
            (
                "directd_store_errors_total",
                "Daemon turns that found the store busy, full or unavailable (retried).",
                &self.store_errors,
            ),
            (
                "directd_quarantined_unread_total",
                "Messages that could never be read, quarantined unread and acknowledged.",
                &self.quarantined_unread,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP directd_queue_depth Outgoing messages waiting in the outbox.\n# TYPE directd_queue_depth gauge\ndirectd_queue_depth {}",
            self.queue_depth.load(Relaxed)
        );
        let health = self.health.lock().expect("metrics lock").clone();
        for (name, help, value) in [
            (
                "directd_recipients_failed",
                "Outgoing recipients whose delivery failed.",
                health.recipients_failed,
            ),
            (
                "directd_recipients_timed_out",
                "Outgoing recipients that timed out waiting for confirmation.",
                health.recipients_timed_out,
            ),
            (
                "directd_messages_quarantined",
                "Received messages in quarantine.",
                health.quarantined,
            ),
            (
                "directd_mdns_owed",
                "MDNs owed to senders and not sent yet.",
                health.mdns_owed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let polls = self.polls.lock().expect("metrics lock");
        let _ = writeln!(out, "# HELP directd_last_successful_poll_timestamp_seconds When each account was last polled successfully.\n# TYPE directd_last_successful_poll_timestamp_seconds gauge");
        for (account, (at, _)) in polls.iter() {
            let _ = writeln!(
                out,
                "directd_last_successful_poll_timestamp_seconds{{account=\"{account}\"}} {at:.3}"
            );
        }
        let _ = writeln!(out, "# HELP directd_poll_duration_seconds Duration of each account's last successful poll.\n# TYPE directd_poll_duration_seconds gauge");
        for (account, (_, took)) in polls.iter() {
            let _ = writeln!(
                out,
                "directd_poll_duration_seconds{{account=\"{account}\"}} {took:.6}"
            );
        }
        let bundles = self.bundles.lock().expect("metrics lock");
        let now = std::time::SystemTime::now();
        let _ = writeln!(out, "# HELP directd_trust_bundle_age_seconds Time since each trust bundle was last fetched successfully.\n# TYPE directd_trust_bundle_age_seconds gauge");
        for b in bundles.iter() {
            let age = now
                .duration_since(b.fetched_at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let _ = writeln!(
                out,
                "directd_trust_bundle_age_seconds{{url=\"{}\",domain=\"{}\"}} {age:.0}",
                label(&b.url),
                label(&b.domain)
            );
        }
        let _ = writeln!(out, "# HELP directd_trust_anchor_expiry_timestamp_seconds notAfter of each anchor from a trust bundle.\n# TYPE directd_trust_anchor_expiry_timestamp_seconds gauge");
        for b in bundles.iter() {
            for (subject, expiry) in &b.anchors {
                let _ = writeln!(
                    out,
                    "directd_trust_anchor_expiry_timestamp_seconds{{url=\"{}\",subject=\"{}\"}} {expiry}",
                    label(&b.url),
                    label(subject)
                );
            }
        }
        let _ = writeln!(out, "# HELP directd_certificate_expiry_timestamp_seconds notAfter of each of our own certificates: S/MIME identities and TLS client certificates.\n# TYPE directd_certificate_expiry_timestamp_seconds gauge");
        for c in self.certificates.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "directd_certificate_expiry_timestamp_seconds{{kind=\"{}\",name=\"{}\",subject=\"{}\"}} {}",
                c.kind,
                label(&c.name),
                label(&c.subject),
                c.not_after_unix
            );
        }
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` until shutdown. One short-lived connection at a time is plenty for a
/// scraper; a slow client is cut off after a few seconds.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: Shutdown) {
    loop {
        let (mut conn, _) = tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(_) => continue,
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = async {
                while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .is_err()
            {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..len]);
            let response = if request.starts_with("GET /metrics ") {
                let body = metrics.render();
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(5), conn.write_all(response.as_bytes()))
                    .await;
        });
    }
}
