//! `directd backup DEST` and `directd purge`: a copy of the store, and the retention policy.

use std::path::PathBuf;

use clap::Args;

use super::output::json;
use super::{usage, CliResult, Context};

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  directd backup /var/backups/directd/directd-$(date +%F).db")]
pub struct BackupArgs {
    /// Where to write the copy (created 0600; an existing file is never overwritten).
    pub dest: PathBuf,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The policy is the configuration's [retention] section (content_days, quarantine_days,\naudit_days); the daemon applies it daily. Delivery history, the audit trail (for at least six\nyears) and ingested clinical rows are kept.\n\nExample:\n  directd purge            # what the policy would remove now\n  directd purge --apply"
)]
pub struct PurgeArgs {
    /// Remove what the policy says (without it, only report what would go).
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,
    /// Only report what would be removed (the default).
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn backup(ctx: &Context, args: BackupArgs) -> CliResult {
    if args.dest.exists() {
        return Err(usage(format!(
            "{} exists; directd never overwrites a backup",
            args.dest.display()
        )));
    }
    let config = ctx.config_without_secrets()?;
    let store = ctx.open_store(false)?;
    let key = config.store.key.as_ref().map(|k| k.expose());
    store.backup_to(&args.dest, key, &crate::store::current_actor())?;
    outln!(
        "backup of {} written to {}{}",
        store.path().display(),
        args.dest.display(),
        if key.is_some() {
            " (encrypted with the store's key)"
        } else {
            ""
        }
    );
    Ok(())
}

pub fn purge(ctx: &Context, args: PurgeArgs) -> CliResult {
    let config = ctx.config_without_secrets()?;
    if config.retention.is_empty() {
        return Err(usage(
            "no [retention] policy is configured: nothing is ever purged",
        ));
    }
    let mut store = ctx.open_store(false)?;
    let report = store.purge(
        &config.retention,
        &crate::store::current_actor(),
        args.apply,
    )?;
    if args.json {
        return json(&serde_json::json!({ "applied": args.apply, "removed": report }));
    }
    let verb = if args.apply {
        "removed"
    } else {
        "would remove"
    };
    outln!(
        "{verb}: content of {} received message(s) ({} attachment(s)), {} sent message(s), {} quarantined message(s); {} audit record(s)",
        report.received_messages,
        report.attachments,
        report.sent_messages,
        report.quarantined_messages,
        report.audit_records
    );
    if !args.apply && !report.is_empty() {
        outln!("run `directd purge --apply` to remove it");
    }
    Ok(())
}
