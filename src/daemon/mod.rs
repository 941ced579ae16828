//! The run loop: drains the outbox, polls every account, records what arrives, and acknowledges
//! to the HISP only after the store has committed.

mod lock;
pub mod metrics;
mod notify;
mod shutdown;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

pub use lock::{lock_path, LockError};
pub use shutdown::{Shutdown, ShutdownTrigger};

/// Requests to a running daemon.
pub enum Control {
    /// Poll every account now, ignoring backoff.
    Wake,
    /// Use this configuration from now on.
    Reload(Box<Config>),
}

use crate::config::{Account, Config};
use crate::hisp::edge::client::EdgeClient;
use crate::hisp::edge::EdgeTransport;
use crate::hisp::phimail::PhiMailClient;
use crate::hisp::{HispError, Inbound, Transport};
use crate::smime::Agent;
use crate::store::{SendAttempt, Store, StoreError, StoreOutcome};

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

/// What one pass over the accounts did (for logs, the systemd status line and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub accounts_polled: usize,
    pub sent: usize,
    pub received: usize,
    pub duplicates: usize,
    pub statuses: usize,
    pub quarantined: usize,
    pub mdns_sent: usize,
    pub errors: usize,
    /// An account still had items waiting when its session hit its bounds.
    pub more_waiting: bool,
}

impl PassSummary {
    fn add(&mut self, o: PassSummary) {
        self.accounts_polled += o.accounts_polled;
        self.sent += o.sent;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.statuses += o.statuses;
        self.quarantined += o.quarantined;
        self.mdns_sent += o.mdns_sent;
        self.more_waiting |= o.more_waiting;
        self.errors += o.errors;
    }
}

struct AccountState {
    account: Account,
    failures: u32,
    not_before: Instant,
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
    _lock: lock::DaemonLock,
}

/// Failed reads of one message: it is quarantined unread once there were enough of them over a
/// long enough time (`daemon.unreadable_retries`, `daemon.unreadable_giveup_secs`).
struct Unreadable {
    failures: u32,
    first: Instant,
    reason: String,
}

impl Unreadable {
    fn given_up(&self, d: &crate::config::DaemonConfig) -> bool {
        self.failures >= d.unreadable_retries && self.first.elapsed() >= d.unreadable_giveup
    }
}

/// Bounds on one session's inbound drain; what is left is taken at the next turn, right away.
const MAX_ITEMS_PER_SESSION: usize = 200;
const SESSION_BUDGET: Duration = Duration::from_secs(30);

fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// Backoff for an unavailable store: the account backoff's start, but capped low, since nothing
/// moves while the store is away and an operator's fix should take effect soon.
fn store_backoff(d: &crate::config::DaemonConfig, failures: u32) -> Duration {
    backoff(
        d.backoff_initial,
        d.backoff_max.min(Duration::from_secs(30)),
        failures,
    )
}

fn rfc3339_in(d: Duration) -> String {
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
        Ok(Daemon {
            config,
            store,
            accounts,
            shutdown,
            metrics: Arc::default(),
            limits: crate::ingest::Limits::default(),
            agent,
            unreadable: Default::default(),
            watchdog: notify::Watchdog::from_env(),
            store_failures: 0,
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
            let summary = self.pass(true).await?;
            *next_poll = if summary.more_waiting {
                Instant::now()
            } else {
                Instant::now() + self.config.daemon.poll_interval
            };
            let depth = self.store.queue_depth()?;
            self.metrics.queue_depth.store(depth.max(0) as u64, Relaxed);
            notify::status(&format!(
                "polled {} accounts, {} queued, {} received, {} sent",
                summary.accounts_polled, depth, summary.received, summary.sent
            ));
        } else if !self.store.due_outgoing()?.is_empty() {
            // Between polls, only the outbox: act as soon as `directd send` commits a row.
            self.pass(false).await?;
        }
        self.expire_timeouts()?;
        Ok(if self.ingest_backlog()? {
            Duration::ZERO
        } else {
            self.config
                .daemon
                .outbox_check
                .min(next_poll.saturating_duration_since(Instant::now()))
        })
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

    /// Outbox rows whose sender no configured account covers can never be sent.
    fn give_up_orphans(&mut self) -> Result<(), DaemonError> {
        for id in self.store.due_outgoing()? {
            let msg = self.store.load_outgoing(id)?;
            if self.config.account_for(&msg.sender).is_none() {
                let reason = format!("no configured account sends for {}", msg.sender);
                tracing::warn!(msg_id = id, "{reason}");
                self.store.record_send_failure(id, &reason, "", true)?;
            }
        }
        Ok(())
    }

    /// One pass over every account whose backoff allows it. With `inbound` false only accounts
    /// with due outbox messages are contacted, and only to send.
    pub async fn pass(&mut self, inbound: bool) -> Result<PassSummary, DaemonError> {
        self.give_up_orphans()?;
        let mut total = PassSummary::default();
        for i in 0..self.accounts.len() {
            if self.shutdown.requested() {
                break;
            }
            if Instant::now() < self.accounts[i].not_before {
                continue;
            }
            let due = self.due_for(&self.accounts[i].account)?;
            if !inbound && due.is_empty() {
                continue;
            }
            let started = Instant::now();
            let account = self.accounts[i].account.clone();
            let result = self.session(&account, &due, inbound).await;
            let state = &mut self.accounts[i];
            match result {
                Ok(summary) => {
                    state.failures = 0;
                    let m = &self.metrics;
                    m.poll_succeeded(&account.address, started.elapsed());
                    m.sent.fetch_add(summary.sent as u64, Relaxed);
                    m.received.fetch_add(summary.received as u64, Relaxed);
                    m.duplicates.fetch_add(summary.duplicates as u64, Relaxed);
                    m.statuses.fetch_add(summary.statuses as u64, Relaxed);
                    tracing::info!(
                        account = %account.address,
                        sent = summary.sent,
                        received = summary.received,
                        duplicates = summary.duplicates,
                        statuses = summary.statuses,
                        ms = started.elapsed().as_millis() as u64,
                        "poll complete"
                    );
                    total.add(summary);
                }
                Err(SessionError::Store(e)) => return Err(e.into()),
                Err(SessionError::NoAgent) => return Err(DaemonError::NoAgent),
                Err(SessionError::Hisp(e)) => {
                    if let HispError::MailUnreadable { hisp_id, source } = &e {
                        // Connection trouble in the middle of one message counts too: a part
                        // that is always cut off is as unreadable as a malformed one.
                        let entry = self
                            .unreadable
                            .entry((account.address.clone(), hisp_id.clone()))
                            .or_insert_with(|| Unreadable {
                                failures: 0,
                                first: Instant::now(),
                                reason: String::new(),
                            });
                        entry.failures += 1;
                        entry.reason = source.to_string();
                        if entry.given_up(&self.config.daemon) {
                            tracing::error!(account = %account.address, hisp_id = %hisp_id, failures = entry.failures, "message cannot be read; it will be quarantined UNREAD and acknowledged, and the HISP may then report it delivered to its sender");
                        }
                    }
                    state.failures += 1;
                    self.metrics.session_errors.fetch_add(1, Relaxed);
                    let d = &self.config.daemon;
                    let delay = if e.is_permanent() {
                        d.backoff_max
                    } else {
                        backoff(d.backoff_initial, d.backoff_max, state.failures)
                    };
                    state.not_before = Instant::now() + delay;
                    tracing::error!(account = %account.address, error = %e, retry_in_ms = delay.as_millis() as u64, "HISP session failed");
                    total.errors += 1;
                }
            }
            total.accounts_polled += 1;
        }
        Ok(total)
    }

    fn due_for(&self, account: &Account) -> Result<Vec<i64>, StoreError> {
        let mut due = Vec::new();
        for id in self.store.due_outgoing()? {
            let msg = self.store.load_outgoing(id)?;
            if self
                .config
                .account_for(&msg.sender)
                .is_some_and(|a| a.address == account.address)
            {
                due.push(id);
            }
        }
        Ok(due)
    }

    async fn session(
        &mut self,
        account: &Account,
        due: &[i64],
        inbound: bool,
    ) -> Result<PassSummary, SessionError> {
        if let Some(edge) = &account.edge {
            let agent = self.agent.clone().ok_or(SessionError::NoAgent)?;
            let client = EdgeClient::new(edge.clone()).map_err(HispError::from)?;
            let mut transport = EdgeTransport::new(client, agent, &account.address);
            let outcome = self.work(&mut transport, account, due, inbound).await;
            transport.close().await;
            outcome
        } else {
            let mut client = PhiMailClient::connect(&account.connect).await?;
            client.skip = self
                .unreadable
                .iter()
                .filter(|((a, _), u)| *a == account.address && u.given_up(&self.config.daemon))
                .map(|((_, id), u)| (id.clone(), u.reason.clone()))
                .collect();
            let outcome = self.work(&mut client, account, due, inbound).await;
            client.close().await;
            outcome
        }
    }

    /// One session's work on an open transport: send what is due, take in what waits, answer
    /// the MDNs owed.
    async fn work<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        due: &[i64],
        inbound: bool,
    ) -> Result<PassSummary, SessionError> {
        let mut summary = PassSummary::default();
        self.send_due(transport, account, due, &mut summary).await?;
        if inbound {
            self.drain_inbound(transport, account, &mut summary).await?;
        }
        self.send_mdns(transport, account, &mut summary).await?;
        Ok(summary)
    }

    async fn send_due<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        due: &[i64],
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        for &id in due {
            if self.shutdown.requested() {
                break;
            }
            let msg = self.store.load_outgoing(id)?;
            if msg.recipients.is_empty() {
                continue;
            }
            let attempts =
                self.store
                    .begin_attempt(id, &account.address, account.transport_name())?;
            match transport.send(&msg).await {
                Ok(report) => {
                    let d = &self.config.daemon;
                    let retry_at = rfc3339_in(backoff(d.backoff_initial, d.backoff_max, attempts));
                    let give_up = attempts >= d.max_send_attempts;
                    let deferred = self
                        .must_commit("a submission", |s| {
                            s.record_send_report(id, &report, &retry_at)
                        })
                        .await?;
                    if deferred > 0 && give_up {
                        self.must_commit("a submission", |s| {
                            s.record_send_failure(
                                id,
                                "recipients kept being deferred",
                                &retry_at,
                                true,
                            )
                        })
                        .await?;
                    }
                    summary.sent += 1;
                    tracing::info!(msg_id = id, account = %account.address, recipients = report.recipients.len(), deferred, "message submitted");
                }
                Err(e) => {
                    self.metrics.send_failures.fetch_add(1, Relaxed);
                    let d = &self.config.daemon;
                    let give_up = attempts >= d.max_send_attempts;
                    let retry_at = rfc3339_in(backoff(d.backoff_initial, d.backoff_max, attempts));
                    let reason = e.to_string();
                    let outcome = self
                        .store
                        .record_send_failure(id, &reason, &retry_at, give_up)?;
                    tracing::warn!(msg_id = id, attempts, gave_up = (outcome == SendAttempt::GaveUp), error = %e, "send failed");
                    // A refusal leaves the connection usable; anything else ends the session.
                    if !matches!(e, HispError::Refused { .. }) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }

    async fn drain_inbound<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        let started = Instant::now();
        let mut taken = 0;
        while !self.shutdown.requested() {
            // A HISP that keeps receiving mail would otherwise hold this session forever: the
            // outbox, other accounts, ingestion, signals and the watchdog would all wait.
            if taken >= MAX_ITEMS_PER_SESSION || started.elapsed() >= SESSION_BUDGET {
                summary.more_waiting = true;
                break;
            }
            let Some(item) = transport.next_inbound().await? else {
                break;
            };
            taken += 1;
            match &item {
                Inbound::Status(notices) => {
                    for n in notices {
                        let outcome = self.store.record_status(&account.address, n)?;
                        if !outcome.matched {
                            tracing::warn!(account = %account.address, hisp_id = %n.hisp_id, source = n.source, "notification for a message we do not know; recorded and acknowledged");
                        }
                        summary.statuses += 1;
                    }
                }
                Inbound::Mail(m) => {
                    if !account.covers(&m.recipient) {
                        tracing::warn!(account = %account.address, hisp_id = %m.hisp_id, "mail for an address this account does not list; stored anyway");
                    }
                    match self.store.store_incoming(&account.address, m)? {
                        StoreOutcome::New(id) => {
                            summary.received += 1;
                            tracing::info!(msg_id = id, account = %account.address, hisp_id = %m.hisp_id, attachments = m.attachments.len(), "message received");
                        }
                        StoreOutcome::Duplicate(id) => {
                            summary.duplicates += 1;
                            tracing::info!(msg_id = id, hisp_id = %m.hisp_id, "redelivery of a stored message");
                        }
                    }
                }
                Inbound::Rejected(r) => {
                    let id = self.store.store_rejected(&account.address, r)?.id();
                    if self
                        .unreadable
                        .remove(&(account.address.clone(), r.hisp_id.clone()))
                        .is_some()
                    {
                        self.metrics.quarantined_unread.fetch_add(1, Relaxed);
                        tracing::error!(msg_id = id, account = %account.address, hisp_id = %r.hisp_id, "message quarantined UNREAD; directd shows it first in `directd messages`");
                    }
                    summary.quarantined += 1;
                    // The reason names algorithms and certificates, never content.
                    tracing::warn!(msg_id = id, account = %account.address, reason = %r.reason, "message quarantined");
                }
            }
            // Committed above, into the file the next start will open; only now may the HISP
            // forget the item.
            self.store.check_in_place()?;
            transport.acknowledge(&item).await?;
        }
        Ok(())
    }

    /// Sends the MDNs this account owes. A failure is recorded on the MDN and retried at the
    /// next session; it does not end this one unless the connection is gone.
    async fn send_mdns<T: Transport>(
        &mut self,
        transport: &mut T,
        account: &Account,
        summary: &mut PassSummary,
    ) -> Result<(), SessionError> {
        self.store.owe_dispatched_mdns()?;
        for job in self.store.unsent_mdns(&account.address)? {
            if self.shutdown.requested() {
                break;
            }
            match transport.send_mdn(&job).await {
                Ok(()) => {
                    self.must_commit("an MDN sent", |s| s.mdn_sent(job.id))
                        .await?;
                    summary.mdns_sent += 1;
                }
                Err(e) => {
                    self.store.mdn_failed(job.id, &e.to_string())?;
                    tracing::warn!(account = %account.address, error = %e, "MDN not sent; will retry");
                    if !matches!(e, HispError::Refused { .. }) {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }

    /// One batch of the ingestion backlog per loop turn: new attachments are processed right
    /// after their message is committed and acknowledged, and a large backlog (or one left by a
    /// crash) drains without starving polls or the watchdog.
    /// Returns whether attachments are still waiting (the loop then does not sleep).
    fn ingest_backlog(&mut self) -> Result<bool, StoreError> {
        let (attachments, tally) =
            crate::ingest::pipeline::ingest_pending(&mut self.store, &self.limits)?;
        if attachments > 0 {
            tracing::info!(
                attachments,
                documents = tally.documents,
                already_stored = tally.already_stored,
                failures = tally.failures.len(),
                "ingested"
            );
        }
        Ok(attachments == crate::ingest::pipeline::BATCH)
    }

    fn expire_timeouts(&mut self) -> Result<(), StoreError> {
        let d = &self.config.daemon;
        let processed = crate::timefmt::rfc3339(SystemTime::now() - d.processed_timeout);
        let dispatched = crate::timefmt::rfc3339(SystemTime::now() - d.dispatched_timeout);
        let n = self.store.expire_unconfirmed(&processed, &dispatched)?;
        if n > 0 {
            tracing::info!(
                recipients = n,
                "recipients timed out waiting for final delivery"
            );
        }
        Ok(())
    }
}

enum SessionError {
    Hisp(HispError),
    Store(StoreError),
    /// An edge account without a loaded security agent (prevented by config validation).
    NoAgent,
}

impl From<HispError> for SessionError {
    fn from(e: HispError) -> Self {
        SessionError::Hisp(e)
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let (i, m) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 1), Duration::from_secs(1));
        assert_eq!(backoff(i, m, 2), Duration::from_secs(2));
        assert_eq!(backoff(i, m, 4), Duration::from_secs(8));
        assert_eq!(backoff(i, m, 7), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 1000), Duration::from_secs(60));
    }
}
