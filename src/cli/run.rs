//! `directd run`: the daemon, with signal handling.

use tokio::signal::unix::{signal, SignalKind};

use super::{runtime, usage, CliResult, Context};
use crate::daemon::{Daemon, Shutdown};

pub fn run(ctx: &Context) -> CliResult {
    let config = ctx.config()?;
    if config.accounts.is_empty() {
        return Err(usage("no accounts configured: add an [[accounts]] section to the configuration"));
    }
    runtime()?.block_on(async move {
        let (trigger, shutdown) = Shutdown::new();
        let daemon = Daemon::new(config, shutdown)?;
        let (wake_tx, wake_rx) = tokio::sync::mpsc::channel(1);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = usr1.recv() => { let _ = wake_tx.try_send(()); }
                }
            }
            tracing::info!("shutdown requested; finishing the item in hand");
            trigger.trigger();
        });
        daemon.run(wake_rx).await?;
        Ok(())
    })
}
