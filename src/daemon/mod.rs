//! The run loop: drains the outbox, polls every account, records what arrives, and acknowledges
//! to the HISP only after the store has committed.

mod accounts;
pub mod ingest;
mod lock;
pub mod metrics;
mod notify;
mod poison;
mod session;
mod shutdown;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

pub use accounts::PassSummary;
pub use lock::{holder as lock_holder, lock_path, LockError};
pub use shutdown::{Shutdown, ShutdownTrigger};

/// How long one loop turn may spend ingesting before it polls and sends again.
const INGEST_BUDGET: Duration = Duration::from_millis(500);

/// Requests to a running daemon.
pub enum Control {
    /// Poll every account now, ignoring backoff.
    Wake,
    /// Use this configuration from now on.
    Reload(Box<Config>),
}

use accounts::{backoff, store_backoff, AccountState};
use poison::Unreadable;

use crate::config::Config;
use crate::smime::Agent;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("edge accounts need the [smime] security agent, which is not configured")]
    NoAgent,
    #[error("loading the S/MIME certificates and trust anchors: {0}")]
    Agent(#[from] crate::smime::SmimeError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("refusing to start: store {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    StoreExposed { path: std::path::PathBuf, mode: u32 },
    #[error("refusing to start: {0}")]
    Lock(#[from] LockError),
}

impl DaemonError {
    /// A store that is busy, full, read-only or unreachable for now; see
    /// [`StoreError::is_transient`]. Everything else ends the daemon.
    pub fn is_transient(&self) -> bool {
        match self {
            DaemonError::Store(e) => e.is_transient(),
            DaemonError::Lock(LockError::Io { .. }) => true,
            _ => false,
        }
    }
}

pub struct Daemon {
    config: Config,
    store: Store,
    accounts: Vec<AccountState>,
    shutdown: Shutdown,
    metrics: Arc<metrics::Metrics>,
    limits: crate::ingest::Limits,
    /// The S/MIME security agent, loaded once when configured (edge accounts use it).
    agent: Option<Arc<Agent>>,
    /// (account, HISP id) → the failures to read that message so far.
    unreadable: std::collections::HashMap<(String, String), Unreadable>,
    watchdog: notify::Watchdog,
    /// Consecutive turns that found the store unavailable (for backoff and the "back" log line).
    store_failures: u32,
    /// What the polls did since the last summary line, and when that was.
    since_summary: (PassSummary, u64, Instant),
    /// When the retention policy was last applied.
    last_purge: Option<Instant>,
    _lock: lock::DaemonLock,
}

pub(super) fn rfc3339_in(d: Duration) -> String {
    crate::timefmt::rfc3339(SystemTime::now() + d)
}

impl Daemon {
    pub fn new(config: Config, shutdown: Shutdown) -> Result<Daemon, DaemonError> {
        // The store holds PHI; a mode that lets others read it is a misconfiguration to stop on.
        if let Ok(Some(mode)) = crate::fsutil::group_or_world_readable(&config.store.path) {
            return Err(DaemonError::StoreExposed {
                path: config.store.path.clone(),
                mode,
            });
        }
        let store = Store::open_config(&config.store, true)?;
        let lock = lock::acquire(&config.store.path)?;
        let agent = config
            .smime
            .as_ref()
            .map(Agent::load)
            .transpose()?
            .map(Arc::new);
        let now = Instant::now();
        let accounts = config
            .accounts
            .iter()
            .map(|a| AccountState {
                account: a.clone(),
                failures: 0,
                not_before: now,
            })
            .collect();
        let metrics = Arc::new(metrics::Metrics::default());
        metrics.set_certificates(own_certificates(&config, agent.as_deref()));
        Ok(Daemon {
            config,
            store,
            accounts,
            shutdown,
            metrics,
            limits: crate::ingest::Limits::default(),
            agent,
            unreadable: Default::default(),
            watchdog: notify::Watchdog::from_env(),
            store_failures: 0,
            since_summary: (PassSummary::default(), 0, Instant::now()),
            last_purge: None,
            _lock: lock,
        })
    }

    /// [`Daemon::new`], waiting out a store that cannot be opened yet (read-only, full, held by
    /// another writer) with backoff instead of exiting, which under systemd would be a restart
    /// every few seconds. systemd is told the service is up and, in its status line, why it
    /// waits. `None` when shutdown was requested while waiting.
    pub async fn start(config: Config, shutdown: Shutdown) -> Result<Option<Daemon>, DaemonError> {
        let mut failures = 0;
        let mut watchdog = notify::Watchdog::from_env();
        let mut stop = shutdown.clone();
        loop {
            match Daemon::new(config.clone(), shutdown.clone()) {
                Ok(daemon) => return Ok(Some(daemon)),
                Err(e) if e.is_transient() => {
                    failures += 1;
                    let delay = store_backoff(&config.daemon, failures);
                    if failures == 1 {
                        notify::ready();
                    }
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot open the store; retrying");
                    notify::status(&format!(
                        "store unavailable, retrying in {:.1}s: {e}",
                        delay.as_secs_f64()
                    ));
                    watchdog.tick();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait() => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until shutdown, taking [`Control`] requests (SIGUSR1 and SIGHUP in the binary).
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) -> Result<(), DaemonError> {
        if let Some(addr) = self.config.daemon.metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Metrics { addr, source })?;
            tracing::info!(%addr, "serving metrics");
            tokio::spawn(metrics::serve(
                listener,
                self.metrics.clone(),
                self.shutdown.clone(),
            ));
        }
        if let Some(agent) = self.agent.clone().filter(|a| a.bundles.is_some()) {
            let metrics = self.metrics.clone();
            let mut stop = self.shutdown.clone();
            tokio::spawn(crate::smime::bundles::run(
                agent,
                async move { stop.wait().await },
                move |status| metrics.set_bundles(status),
            ));
        }
        notify::ready();
        tracing::info!(accounts = self.accounts.len(), store = %self.store.path().display(), "directd started");
        let mut next_poll = Instant::now();
        let mut shutdown = self.shutdown.clone();
        while !self.shutdown.requested() {
            self.watchdog.tick();
            let wait = match self.turn(&mut next_poll).await {
                Ok(wait) => {
                    if self.store_failures > 0 {
                        tracing::info!(failures = self.store_failures, "store available again");
                        self.store_failures = 0;
                    }
                    wait
                }
                Err(e) if e.is_transient() => self.store_unavailable(&e),
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => {}
                Some(request) = control.recv() => {
                    if let Control::Reload(config) = request {
                        self.reload(*config);
                    }
                    for a in &mut self.accounts { a.not_before = Instant::now(); }
                    next_poll = Instant::now();
                }
            }
        }
        notify::stopping();
        tracing::info!("directd stopped");
        Ok(())
    }

    /// One turn of the loop: poll every account when the poll is due, otherwise only send what
    /// the outbox holds; then expire timeouts and ingest. Returns how long to wait.
    async fn turn(&mut self, next_poll: &mut Instant) -> Result<Duration, DaemonError> {
        self.store.check_in_place()?;
        if Instant::now() >= *next_poll {
            let started_ms = crate::store::now_ms();
            let summary = self.pass(true).await?;
            *next_poll = if summary.more_waiting {
                Instant::now()
            } else {
                Instant::now() + self.config.daemon.poll_interval
            };
            self.summarize(summary);
            let depth = self.store.queue_depth()?;
            self.metrics.queue_depth.store(depth.max(0) as u64, Relaxed);
            let health = self.store.health()?;
            self.metrics.record_health(&health);
            notify::status(&format!(
                "polled {} accounts, {} queued, {} received, {} sent",
                summary.accounts_polled, depth, summary.received, summary.sent
            ));
            // What `directd poll` waits for: a pass that began after its request, and its counts.
            self.store.record_poll(started_ms, &summary.counts())?;
        } else if !self.store.due_outgoing()?.is_empty() {
            // Between polls, only the outbox: act as soon as `directd send` commits a row.
            self.pass(false).await?;
        }
        self.expire_timeouts()?;
        self.apply_retention()?;
        Ok(if self.ingest_backlog()? {
            Duration::ZERO
        } else {
            self.config
                .daemon
                .outbox_check
                .min(next_poll.saturating_duration_since(Instant::now()))
        })
    }

    /// Applies `[retention]` at start and then daily (the policy is in days).
    fn apply_retention(&mut self) -> Result<(), StoreError> {
        const EVERY: Duration = Duration::from_secs(86_400);
        if self.config.retention.is_empty() || self.last_purge.is_some_and(|t| t.elapsed() < EVERY)
        {
            return Ok(());
        }
        let report =
            self.store
                .purge(&self.config.retention, "directd (retention policy)", true)?;
        self.last_purge = Some(Instant::now());
        if !report.is_empty() {
            tracing::info!(
                received = report.received_messages,
                attachments = report.attachments,
                sent = report.sent_messages,
                quarantined = report.quarantined_messages,
                audit_records = report.audit_records,
                "retention policy applied"
            );
        }
        Ok(())
    }

    /// Adds one pass to the running totals and, once per `daemon.summary_interval_secs`, logs
    /// them at info.
    fn summarize(&mut self, pass: PassSummary) {
        let (total, passes, since) = &mut self.since_summary;
        total.add(pass);
        *passes += 1;
        if since.elapsed() >= self.config.daemon.summary_interval {
            tracing::info!(
                passes = *passes,
                sent = total.sent,
                received = total.received,
                statuses = total.statuses,
                quarantined = total.quarantined,
                errors = total.errors,
                minutes = since.elapsed().as_secs() / 60,
                "summary"
            );
            self.since_summary = (PassSummary::default(), 0, Instant::now());
        }
    }

    /// Logs and reports a turn that found the store unavailable; returns the wait before the
    /// next try. Nothing was acknowledged for the work that failed, so the HISP keeps it.
    fn store_unavailable(&mut self, e: &DaemonError) -> Duration {
        self.store_failures += 1;
        self.metrics.store_errors.fetch_add(1, Relaxed);
        let delay = store_backoff(&self.config.daemon, self.store_failures);
        tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "store unavailable; retrying (nothing is acknowledged meanwhile)");
        notify::status(&format!(
            "store unavailable, retrying in {:.1}s: {e}",
            delay.as_secs_f64()
        ));
        delay
    }

    /// Commits the record of something the HISP has already done (accepted a submission, taken
    /// an MDN). Losing that record would repeat the action on the next attempt, so a busy or
    /// unavailable store is waited out here instead of abandoning it; only a permanent store
    /// error, or a store still unavailable a minute into shutdown, gives up.
    async fn must_commit<T>(
        &mut self,
        what: &'static str,
        mut write: impl FnMut(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut failures = 0;
        let mut shutdown_since: Option<Instant> = None;
        loop {
            match write(&mut self.store) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_transient() => {
                    failures += 1;
                    if self.shutdown.requested()
                        && shutdown_since.get_or_insert_with(Instant::now).elapsed()
                            > Duration::from_secs(60)
                    {
                        return Err(e);
                    }
                    self.metrics.store_errors.fetch_add(1, Relaxed);
                    let delay =
                        backoff(Duration::from_millis(50), Duration::from_secs(5), failures);
                    tracing::error!(error = %e, what, retry_in_ms = delay.as_millis() as u64, "store unavailable while recording what the HISP already did; retrying");
                    notify::status(&format!("store unavailable while recording {what}: {e}"));
                    self.watchdog.tick();
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes a new configuration between work items. The store path cannot change under a
    /// running daemon; accounts and timings can. Backoff state survives for unchanged accounts.
    fn reload(&mut self, config: Config) {
        if config.store.path != self.config.store.path {
            tracing::warn!(
                "store.path changed; restart directd to use the new store (other changes applied)"
            );
        }
        let now = Instant::now();
        self.accounts = config
            .accounts
            .iter()
            .map(|a| {
                let old = self
                    .accounts
                    .iter()
                    .find(|s| s.account.address == a.address);
                AccountState {
                    account: a.clone(),
                    failures: old.map_or(0, |s| s.failures),
                    not_before: old.map_or(now, |s| s.not_before),
                }
            })
            .collect();
        let store = self.config.store.clone();
        self.config = Config { store, ..config };
        tracing::info!(accounts = self.accounts.len(), "configuration reloaded");
    }

    /// The ingestion backlog, batch after batch, for up to [`INGEST_BUDGET`] per loop turn: new
    /// attachments are processed right after their message is committed and acknowledged, a
    /// poll pass's worth of messages is ingested before the next pass (one batch per turn let
    /// ingestion fall behind reception: 1,600 of 10,000 ingested when the last one arrived),
    /// and a large backlog (or one left by a crash) drains without starving polls or the
    /// watchdog. Returns whether attachments are still waiting (the loop then does not sleep).
    fn ingest_backlog(&mut self) -> Result<bool, StoreError> {
        let started = Instant::now();
        let mut tally = crate::store::IngestTally::default();
        let mut attachments = 0;
        let more = loop {
            let (n, t) = ingest::ingest_pending(&mut self.store, &self.limits)?;
            attachments += n;
            tally.documents += t.documents;
            tally.already_stored += t.already_stored;
            tally.failures.extend(t.failures);
            // A batch cut short by its byte budget is not the end of the backlog: only an
            // empty one is.
            if n == 0 {
                break false;
            }
            if started.elapsed() >= INGEST_BUDGET {
                break true;
            }
        };
        if attachments > 0 {
            tracing::info!(
                attachments,
                documents = tally.documents,
                already_stored = tally.already_stored,
                failures = tally.failures.len(),
                "ingested"
            );
        }
        Ok(more)
    }

    fn expire_timeouts(&mut self) -> Result<(), StoreError> {
        let d = &self.config.daemon;
        let expiries =
            crate::tracking::expiries(SystemTime::now(), d.processed_timeout, d.dispatched_timeout);
        let n = self.store.expire_unconfirmed(&expiries)?;
        if n > 0 {
            tracing::info!(
                recipients = n,
                "recipients timed out waiting for final delivery"
            );
        }
        Ok(())
    }
}

/// Our S/MIME identities and TLS client certificates with their expiry, for the metrics; one
/// due within 30 days is also worth a warning at every start.
fn own_certificates(config: &Config, agent: Option<&Agent>) -> Vec<metrics::OwnCertificate> {
    use crate::smime::certs::{not_after_unix, subject_string};
    let mut out = Vec::new();
    for identity in agent.map(|a| a.keys.identities()).unwrap_or_default() {
        out.push(metrics::OwnCertificate {
            kind: "smime_identity",
            name: identity.domain().unwrap_or_default(),
            subject: subject_string(&identity.cert),
            not_after_unix: not_after_unix(&identity.cert),
        });
    }
    for a in &config.accounts {
        let Some((cert, _)) = &a.connect.client_cert else {
            continue;
        };
        // Already loaded and checked by the TLS setup; a file that fails here has no gauge.
        let Some(first) = std::fs::read(cert)
            .ok()
            .and_then(|pem| openssl::x509::X509::from_pem(&pem).ok())
        else {
            continue;
        };
        out.push(metrics::OwnCertificate {
            kind: "tls_client",
            name: a.address.clone(),
            subject: subject_string(&first),
            not_after_unix: not_after_unix(&first),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for c in &out {
        let days = (c.not_after_unix - now) / 86_400;
        if days < 30 {
            tracing::warn!(
                kind = c.kind,
                name = %c.name,
                subject = %c.subject,
                days_left = days,
                "certificate expires soon"
            );
        }
    }
    out
}
