//! `directd web`: the web console, in the foreground (what systemd's directd-web.service starts).

use tokio::signal::unix::{signal, SignalKind};

use super::{runtime, CliResult, Context};

pub fn run(ctx: &Context) -> CliResult {
    // No HISP passwords: the console only queues, as `directd send` does.
    let config = ctx.config_without_secrets()?;
    let web = crate::web::config::load(&ctx.config_file(), ctx.config_required())
        .map_err(anyhow::Error::from)?;
    let store = ctx.open_store(true)?;
    let app = crate::web::App::new(store, web, config);
    runtime()?.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("web console stopping");
        };
        crate::web::serve(app, shutdown, |addr, tls| {
            if tls {
                outln!("directd web console on https://{addr}/");
            } else {
                outln!("directd web console on http://{addr}/ (plain HTTP: loopback only; set web.cert_file and web.key_file for HTTPS)");
            }
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(())
    })
}
