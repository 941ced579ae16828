//! `directd certs check`: the S/MIME identities, anchors and recipient certificates the
//! configuration names, and what is wrong with them. `directd certs publish`: the DNS CERT
//! records and LDIF entries that let others discover our certificates.

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
    /// Print the DNS CERT records (zone-file lines) and LDIF entries that publish each
    /// configured identity's certificate (never a key).
    Publish(PublishArgs),
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// Only the DNS CERT zone-file lines.
    #[arg(long, conflicts_with = "ldif")]
    zone: bool,
    /// Only the LDIF entries.
    #[arg(long)]
    ldif: bool,
    /// TTL of the CERT records, in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
    /// Base DN for the LDIF entries (default: the domain as dc= components).
    #[arg(long, value_name = "DN")]
    ldap_base: Option<String>,
}

pub fn run(ctx: &Context, args: CertsArgs) -> CliResult {
    match args.command {
        CertsCommand::Check => check(ctx),
        CertsCommand::Publish(p) => publish(ctx, p),
    }
}

fn check(ctx: &Context) -> CliResult {
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
                // Through the agent, so CRLs and AIA issuers are fetched as when sending.
                let chain = super::runtime()?.block_on(agent.verify_chain(
                    &domain,
                    Direction::Outgoing,
                    &id.cert,
                    &id.chain,
                ));
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

fn publish(ctx: &Context, args: PublishArgs) -> CliResult {
    use crate::smime::publish::{cert_record, ldif_entry, Published};
    let settings = ctx
        .config()?
        .smime
        .ok_or_else(|| usage("no [smime] section in the configuration"))?;
    let keys_dir = settings
        .keys_dir
        .as_ref()
        .ok_or_else(|| usage("smime.keys_dir is not set: there is nothing to publish"))?;
    let keys = crate::smime::KeyStore::load_dir(keys_dir)?;
    if keys.identities().is_empty() {
        return Err(usage(format!(
            "{}: no certificate/key pairs found",
            keys_dir.display()
        )));
    }
    let mut names = Vec::new();
    for id in keys.identities() {
        let published = Published::of(&id.cert);
        if published.is_empty() {
            eprintln!(
                "warning: {} has no rfc822Name or dNSName: not discoverable, skipped",
                certs::subject_string(&id.cert)
            );
        }
        for p in published {
            names.push((p, &id.cert));
        }
    }
    let crypto = |e: openssl::error::ErrorStack| CliError::Failure(e.into());
    if !args.ldif {
        outln!(
            "; DNS CERT records (RFC 4398). Most exceed 512 bytes: the zone must answer over TCP."
        );
        for (p, cert) in &names {
            outln!("{}", cert_record(p, cert, args.ttl).map_err(crypto)?);
        }
    }
    if !args.zone {
        if !args.ldif {
            outln!();
        }
        outln!("# LDIF entries for the domain's LDAP directory (found through _ldap._tcp SRV records).");
        for (p, cert) in &names {
            outln!();
            outln!(
                "{}",
                ldif_entry(p, cert, args.ldap_base.as_deref())
                    .map_err(crypto)?
                    .trim_end()
            );
        }
    }
    Ok(())
}
