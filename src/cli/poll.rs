//! `directd poll [--timeout D]`: ask the running daemon to poll every account now ("check now").

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::output::json;
use super::schema::versioned;
use super::{CliError, CliResult, Context};
use crate::store::PollRecord;

#[derive(Args, Debug)]
#[command(
    after_help = "The daemon's pid is read from the lock file beside the store (STORE.lock); the daemon polls\nat SIGUSR1, ignoring any backoff, and records each pass in the store, which is how this\ncommand learns that a pass begun after its request has ended.\n\nExit status: 0 the pass completed without errors; 1 no daemon runs on the store, the pass had\nerrors (the daemon's log names them), or none completed within --timeout; 2 usage error.\n\nExample:\n  directd poll && directd messages --unread"
)]
pub struct PollArgs {
    /// How long to wait for the pass to complete: 30s, 2m.
    #[arg(long, value_name = "D", default_value = "60s", value_parser = super::parse_duration)]
    timeout: Duration,
    /// One JSON document (docs/json-output.md).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct PollDoc {
    daemon_pid: i32,
    poll: PollRecord,
}

pub fn run(ctx: &Context, args: PollArgs) -> CliResult {
    let store = ctx.open_store(false)?;
    let no_daemon = || {
        CliError::Failure(anyhow::anyhow!(
            "no daemon runs on {}",
            store.path().display()
        ))
    };
    let pid: i32 = match crate::daemon::lock_holder(store.path())? {
        Some(pid) => pid.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}: holds {pid:?}, not a daemon's pid",
                crate::daemon::lock_path(store.path()).display()
            )
        })?,
        None => return Err(no_daemon()),
    };
    // Taken before the signal, so that a pass already under way (begun earlier) does not count.
    let requested = crate::store::now_ms();
    // SAFETY: kill(2) with a pid read from the lock that process holds; no memory is involved.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ESRCH) => no_daemon(),
            _ => anyhow::anyhow!("signalling the daemon (pid {pid}): {e}").into(),
        });
    }
    let deadline = Instant::now() + args.timeout;
    let record = loop {
        if let Some(r) = store.poll_started_since(requested)? {
            break r;
        }
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "the daemon (pid {pid}) did not complete a poll within {}s",
                args.timeout.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let errors = record.errors;
    if args.json {
        json(&versioned(PollDoc {
            daemon_pid: pid,
            poll: record,
        }))?;
    } else {
        outln!(
            "polled {} account(s) in {:.1}s: {} received, {} sent, {} delivery notification(s), {} quarantined, {} error(s)",
            record.accounts_polled,
            (record.finished_ms - record.started_ms) as f64 / 1000.0,
            record.received,
            record.sent,
            record.statuses,
            record.quarantined,
            record.errors
        );
    }
    if errors > 0 {
        return Err(anyhow::anyhow!(
            "{errors} account(s) could not be polled; the daemon's log says why"
        )
        .into());
    }
    Ok(())
}
