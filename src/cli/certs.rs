//! `directd certs check`: the S/MIME identities, anchors and recipient certificates the
//! configuration names, and what is wrong with them.

use clap::{Args, Subcommand};

use super::{usage, CliError, CliResult, Context};
use crate::smime::{certs, Agent, Direction};

#[derive(Args, Debug)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand, Debug)]
enum CertsCommand {
    /// Validate the configured certificates, keys and trust anchors.
    Check,
}

pub fn run(ctx: &Context, args: CertsArgs) -> CliResult {
    let CertsCommand::Check = args.command;
    let config = ctx.config()?;
    let settings = config
        .smime
        .ok_or_else(|| usage("no [smime] section in the configuration"))?;
    let agent = match Agent::load(&settings) {
        Ok(a) => a,
        Err(e) => {
            outln!("FAIL {e}");
            return Err(CliError::Failure(anyhow::anyhow!(
                "certificates could not be loaded"
            )));
        }
    };
    let mut problems = 0;
    let mut report = |ok: bool, what: String| {
        outln!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            problems += 1;
        }
    };
    if agent.keys.identities().is_empty() {
        report(
            false,
            "smime.keys_dir: no certificate/key pairs found".into(),
        );
    }
    for id in agent.keys.identities() {
        let name = certs::subject_string(&id.cert);
        let bound = certs::san_emails(&id.cert)
            .into_iter()
            .chain(certs::san_dns(&id.cert))
            .collect::<Vec<_>>()
            .join(", ");
        report(
            true,
            format!(
                "identity {name} bound to {}",
                if bound.is_empty() {
                    "(nothing: legacy subject e-mail?)".into()
                } else {
                    bound
                }
            ),
        );
        if let Err(e) = certs::check_time(&id.cert) {
            report(false, format!("identity {name}: {e}"));
        }
        if let Err(e) = certs::check_key_strength(&id.cert) {
            report(false, format!("identity {name}: {e}"));
        }
        if !certs::usage_allows(&id.cert, certs::Usage::Sign) {
            report(
                false,
                format!("identity {name}: key usage does not allow signing"),
            );
        }
        if !certs::usage_allows(&id.cert, certs::Usage::Encrypt) {
            report(
                false,
                format!(
                    "identity {name}: key usage does not allow key encipherment (cannot receive)"
                ),
            );
        }
        match id.domain() {
            Some(domain) => {
                let n = agent.trust.anchors(&domain, Direction::Incoming).len();
                report(
                    n > 0,
                    format!("domain {domain}: {n} incoming trust anchor(s)"),
                );
                let chain =
                    agent
                        .trust
                        .verify_chain(&domain, Direction::Outgoing, &id.cert, &id.chain);
                report(
                    chain.is_ok(),
                    format!(
                        "identity {name}: chains to an outgoing anchor of {domain}{}",
                        chain.err().map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                );
            }
            None => report(
                false,
                format!("identity {name}: no domain could be derived from the certificate"),
            ),
        }
    }
    if problems == 0 {
        Ok(())
    } else {
        Err(CliError::Failure(anyhow::anyhow!(
            "{problems} problem(s) found"
        )))
    }
}
