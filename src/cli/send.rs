//! `directd send`: validate, write the outbox, print the local id. The daemon does the network work.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{usage, CliError, CliResult, Context};
use crate::compose::{compose, Composed, Draft, GivenFile, MAX_FILE};
use crate::store::NewOutgoing;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  directd send --from clinic@direct.example.org --to dr.lee@direct.other.org --final --ccda summary.xml\n  directd send --from clinic@direct.example.org --to a@x.org --cc b@y.org --subject Referral --attach scan.pdf --body 'See attached'"
)]
pub struct SendArgs {
    /// Sending Direct address (must belong to a configured account).
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// Recipient Direct address (repeatable).
    #[arg(long, value_name = "ADDR", required = true)]
    to: Vec<String>,
    /// Copy recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    cc: Vec<String>,
    /// Subject line (one line; the HISP uses its default without it).
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Ask for final-delivery confirmation (dispatched).
    #[arg(long = "final")]
    final_delivery: bool,
    /// A C-CDA document (checked to be well-formed XML with a ClinicalDocument root).
    #[arg(long, value_name = "FILE", conflicts_with = "attach")]
    ccda: Option<PathBuf>,
    /// Any file to attach (repeatable).
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// Message body text (without it, a short note naming the attached files is sent as the
    /// body, so every receiver shows something readable).
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
}

/// Reads a file given on the command line, refusing what is not a regular file or too large to
/// queue before reading it.
fn read_file(path: &Path) -> Result<GivenFile, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(usage(format!("{}: not a regular file", path.display())));
    }
    if meta.len() > MAX_FILE {
        return Err(usage(format!(
            "{}: {} bytes is over the {MAX_FILE}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    let data = std::fs::read(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Ok(GivenFile {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        data,
    })
}

pub fn run(ctx: &Context, args: SendArgs) -> CliResult {
    let ccda = match &args.ccda {
        Some(path) => Some(read_file(path)?),
        None => None,
    };
    let attach = args
        .attach
        .iter()
        .map(|p| read_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let Composed {
        from,
        recipients,
        parts,
    } = compose(
        Draft {
            from: args.from.clone(),
            to: args.to.clone(),
            cc: args.cc.clone(),
            subject: args.subject.clone(),
            body: args.body.clone(),
            ccda,
            attach,
        },
        ["--from", "--to", "--cc", "--attach", "--subject"],
    )
    .map_err(usage)?;

    let config = ctx.config_without_secrets()?;
    let account = config.account_for(&from).ok_or_else(|| {
        usage(format!(
            "no configured account sends for {from} (accounts: {})",
            config
                .accounts
                .iter()
                .map(|a| a.address.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let mut store =
        crate::store::Store::open_config(&config.store, true).map_err(anyhow::Error::from)?;
    let id = store.enqueue(&NewOutgoing {
        account: Some(account.address.clone()),
        sender: from.clone(),
        recipients,
        subject: args.subject,
        final_delivery: args.final_delivery,
        parts,
    })?;
    store.audit(
        &crate::store::current_actor(),
        "send",
        Some(&format!("out:{id}")),
        None,
    )?;
    // The id alone on stdout, for scripts; the sentence for people on stderr.
    outln!("{id}");
    eprintln!(
        "queued outgoing message {id} from {from} to {}; the daemon sends it",
        args.to
            .iter()
            .chain(&args.cc)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
