//! `directd config check [--connect]`: everything the daemon would refuse, reported at once.

use clap::{Args, Subcommand};

use super::{runtime, CliError, CliResult, Context};
use crate::hisp::phimail::PhiMailClient;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration, the files it names, and optionally each account's login.
    Check {
        /// Also connect and log in to every account's HISP.
        #[arg(long)]
        connect: bool,
    },
}

pub fn run(ctx: &Context, args: ConfigArgs) -> CliResult {
    let ConfigCommand::Check { connect } = args.command;
    let config = match ctx.check_config() {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                outln!("FAIL {p}");
            }
            if connect {
                outln!("skip --connect: no login was tried, because of the problems above");
            }
            return Err(CliError::Failure(anyhow::anyhow!(
                "configuration is invalid: {} problem(s)",
                problems.len()
            )));
        }
    };
    let mut problems = Vec::new();
    let ok = |what: String| outln!("ok   {what}");

    let store = &config.store.path;
    match crate::fsutil::group_or_world_readable(store) {
        Ok(Some(mode)) => problems.push(format!(
            "store.path: {} is readable by group or others (mode {mode:o})",
            store.display()
        )),
        Ok(None) => ok(format!("store.path: {} is private", store.display())),
        // `run` and `send` create the store, and any missing folders 0700, as they need it.
        Err(_) => ok(format!(
            "store.path: {} will be created (0600, missing folders 0700)",
            store.display()
        )),
    }
    if config.accounts.is_empty() {
        problems.push("accounts: none configured; the daemon has nothing to do".into());
    }
    for a in &config.accounts {
        match crate::tls::client_config(
            &a.connect.ca_file,
            a.connect
                .client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        ) {
            Ok(_) => ok(format!(
                "{}: {} parses as a CA file",
                a.ca_file_key,
                a.connect.ca_file.display()
            )),
            Err(e) => problems.push(format!("{}: {e}", a.ca_file_key)),
        }
    }
    if connect && problems.is_empty() {
        runtime()?.block_on(async {
            for (i, a) in config.accounts.iter().enumerate() {
                match PhiMailClient::connect(&a.connect).await {
                    Ok(client) => {
                        client.close().await;
                        outln!(
                            "ok   accounts[{i}]: logged in to {}:{} as {}",
                            a.connect.host,
                            a.connect.port,
                            a.connect.user
                        );
                    }
                    Err(e) => problems.push(format!("accounts[{i}]: {e}")),
                }
            }
        });
    }
    for p in &problems {
        outln!("FAIL {p}");
    }
    if connect && !problems.is_empty() {
        outln!("skip --connect: no login was tried, because of the problems above");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failure(anyhow::anyhow!(
            "{} problem(s) found",
            problems.len()
        )))
    }
}
