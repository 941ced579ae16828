//! `directd audit [--since WHEN]`: the HIPAA audit trail.

use clap::Args;

use super::output::{json, opt, table};
use super::{parse_since, CliResult, Context};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries since a date (2026-11-25), a time or an age (2h, 7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: AuditArgs) -> CliResult {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = ctx.open_store(false)?;
    let rows = store.audit_rows(since.as_deref())?;
    if args.json {
        return json(&rows);
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.at.clone(),
                r.actor.clone(),
                r.action.clone(),
                opt(&r.message_ref),
                opt(&r.detail),
            ]
        })
        .collect();
    table(&["AT", "WHO", "ACTION", "MESSAGE", "DETAIL"], &rows);
    Ok(())
}
