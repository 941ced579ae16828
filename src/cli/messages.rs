//! `directd messages [--in|--out] [--since WHEN]`.

use clap::Args;

use super::output::{json, opt, table};
use super::{parse_since, CliResult, Context};

#[derive(Args, Debug)]
pub struct MessagesArgs {
    /// Only received messages.
    #[arg(long = "in", conflicts_with = "outgoing")]
    incoming: bool,
    /// Only sent messages.
    #[arg(long = "out")]
    outgoing: bool,
    /// Only messages since a date (2026-11-25), a time (2026-11-25T10:00:00Z) or an age (2h, 7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: MessagesArgs) -> CliResult {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = ctx.open_store(false)?;
    let (out, inc) = match (args.outgoing, args.incoming) {
        (false, false) => (true, true),
        (o, i) => (o, i),
    };
    let rows = store.list_messages(out, inc, since.as_deref())?;
    if args.json {
        return json(&rows);
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.direction.into(),
                m.at.clone(),
                m.from.clone(),
                m.to.clone(),
                m.state.clone(),
                opt(&m.subject),
            ]
        })
        .collect();
    table(
        &["ID", "DIR", "AT", "FROM", "TO", "STATE", "SUBJECT"],
        &table_rows,
    );
    Ok(())
}
