//! systemd integration: readiness, status text and watchdog pings. All calls are no-ops when the
//! daemon is not started by systemd (no NOTIFY_SOCKET).

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

pub fn ready() {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

pub fn status(text: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(text)]);
}

/// Pings the watchdog at half its period. The pings come from the main loop, so a poller stuck
/// past the deadline stops them and systemd restarts the service.
pub struct Watchdog {
    period: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    pub fn from_env() -> Self {
        let mut usec = 0u64;
        let enabled = sd_notify::watchdog_enabled(false, &mut usec);
        Watchdog {
            period: (enabled && usec > 0).then(|| Duration::from_micros(usec / 2)),
            last: Instant::now(),
        }
    }

    pub fn tick(&mut self) {
        if let Some(period) = self.period {
            if self.last.elapsed() >= period {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                self.last = Instant::now();
            }
        }
    }
}
