//! `directd run`: the daemon, with signal handling.

use tokio::signal::unix::{signal, SignalKind};

use super::{runtime, usage, CliResult, Context};
use crate::daemon::{Control, Daemon, Shutdown};

pub fn run(ctx: &Context) -> CliResult {
    let config = ctx.config()?;
    let reload = ctx.reloader();
    if config.accounts.is_empty() {
        return Err(usage(
            "no accounts configured: add an [[accounts]] section to the configuration",
        ));
    }
    runtime()?.block_on(async move {
        let (trigger, shutdown) = Shutdown::new();
        let (control_tx, control_rx) = tokio::sync::mpsc::channel(4);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = usr1.recv() => { let _ = control_tx.try_send(Control::Wake); }
                    _ = hup.recv() => match reload() {
                        Ok(config) => { let _ = control_tx.send(Control::Reload(Box::new(config))).await; }
                        // A broken edit must not take a working daemon down.
                        Err(e) => tracing::error!(error = %e, "configuration reload failed; keeping the running configuration"),
                    },
                }
            }
            tracing::info!("shutdown requested; finishing the item in hand");
            trigger.trigger();
        });
        if let Some(daemon) = Daemon::start(config, shutdown).await? {
            daemon.run(control_rx).await?;
        }
        Ok(())
    })
}
