//! `directd send`: validate, write the outbox, print the local id. The daemon does the network work.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{usage, CliError, CliResult, Context};
use crate::message::{OutPart, OutRecipient, PartKind, RecipientKind};
use crate::store::NewOutgoing;

/// Largest file `send` will queue; HISPs refuse far smaller messages anyway.
const MAX_FILE: u64 = 64 * 1024 * 1024;

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

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
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
    std::fs::read(path).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// Refuses what ingestion would refuse (see [`crate::ingest::check_ccda`]), with its reason.
pub fn check_ccda(data: &[u8]) -> Result<(), String> {
    crate::ingest::check_ccda(data, &crate::ingest::Limits::default()).map_err(|e| e.to_string())
}

fn check_address(flag: &str, addr: &str) -> Result<String, CliError> {
    let a = crate::address::normalize(addr);
    if crate::address::is_valid(&a) {
        Ok(a)
    } else {
        Err(usage(format!(
            "{flag} {addr:?} is not a valid Direct address"
        )))
    }
}

pub fn run(ctx: &Context, args: SendArgs) -> CliResult {
    let from = check_address("--from", &args.from)?;
    let mut recipients = Vec::new();
    for (flag, list, kind) in [
        ("--to", &args.to, RecipientKind::To),
        ("--cc", &args.cc, RecipientKind::Cc),
    ] {
        for a in list {
            let address = check_address(flag, a)?;
            if recipients
                .iter()
                .any(|r: &OutRecipient| r.address == address)
            {
                return Err(usage(format!("{address} is named twice")));
            }
            recipients.push(OutRecipient { address, kind });
        }
    }
    if args.ccda.is_none() && args.attach.is_empty() && args.body.is_none() {
        return Err(usage(
            "nothing to send: give --ccda FILE, --attach FILE or --body TEXT",
        ));
    }
    if args
        .subject
        .as_deref()
        .is_some_and(|s| s.contains(['\r', '\n']))
    {
        return Err(usage("--subject must be one line"));
    }
    let filename = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    // The first part is the message body at the HISP, whatever its type. A document sent
    // first would reach many receivers as a body they cannot show (and some never look past
    // the body), so without --body a short text note goes first, as other phiMail clients do.
    let body = args.body.clone().unwrap_or_else(|| {
        let names: Vec<String> = args
            .ccda
            .iter()
            .chain(&args.attach)
            .filter_map(|p| filename(p))
            .collect();
        format!("Attached: {}.", names.join(", "))
    });
    let mut parts = vec![OutPart {
        kind: PartKind::Text,
        filename: None,
        data: body.into_bytes(),
    }];
    if let Some(path) = &args.ccda {
        let data = read_file(path)?;
        if data.starts_with(b"%PDF-") {
            return Err(usage(format!(
                "{}: is a PDF, not a C-CDA (XML); send it with --attach {}",
                path.display(),
                path.display()
            )));
        }
        check_ccda(&data).map_err(|why| usage(format!("{}: {why}", path.display())))?;
        parts.push(OutPart {
            kind: PartKind::Cda,
            filename: filename(path),
            data,
        });
    }
    for path in &args.attach {
        let data = read_file(path)?;
        parts.push(OutPart {
            kind: PartKind::Raw,
            filename: filename(path),
            data,
        });
    }

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

#[cfg(test)]
mod tests {
    use super::check_ccda;

    #[test]
    fn ccda_check() {
        assert!(check_ccda(br#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><id/></ClinicalDocument>"#).is_ok());
        let refused = |data: &[u8], why: &str| {
            let err = check_ccda(data).unwrap_err();
            assert!(err.contains(why), "{err}");
        };
        refused(
            b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><a></b></ClinicalDocument>",
            "malformed",
        );
        refused(b"%PDF-1.4 binary", "");
        refused(b"<!DOCTYPE x [<!ENTITY a 'b'>]><ClinicalDocument/>", "DTD");
        refused(b"<html></html>", "not a CDA");
        // The root name alone is not enough: ingestion also requires the HL7 v3 namespace.
        refused(b"<ClinicalDocument><id/></ClinicalDocument>", "not a CDA");
        refused(
            b"<ClinicalDocument xmlns=\"urn:example:other\"><id/></ClinicalDocument>",
            "not a CDA",
        );
        refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">", "");
        refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/><x/>", "");
    }
}
