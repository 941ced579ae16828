//! `directd status ID` and `directd receipts [ID]`.

use clap::Args;
use serde::Serialize;

use super::output::{json, opt, table};
use super::{CliResult, Context};
use crate::store::{RecipientRow, Store};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Local message id (printed by `directd send`).
    id: i64,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ReceiptsArgs {
    /// Only this outgoing message.
    id: Option<i64>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StatusView {
    id: i64,
    /// Final when every recipient has reached a final state.
    complete: bool,
    recipients: Vec<RecipientRow>,
}

pub fn status(ctx: &Context, args: StatusArgs) -> CliResult {
    let store = ctx.open_store(false)?;
    let recipients = store.recipients(args.id)?;
    let (final_requested, transport) = store.outgoing_meta(args.id)?;
    let complete = recipients.iter().all(|r| {
        crate::tracking::DeliveryState::parse(&r.state)
            .is_some_and(|s| crate::tracking::is_complete(s, final_requested, &transport))
    });
    let view = StatusView {
        id: args.id,
        complete,
        recipients,
    };
    if args.json {
        return json(&view);
    }
    let rows: Vec<Vec<String>> = view
        .recipients
        .iter()
        .map(|r| {
            vec![
                r.address.clone(),
                r.kind.clone(),
                r.state.clone(),
                opt(&r.hisp_message_id),
                r.updated_at.clone(),
                opt(&r.reason),
            ]
        })
        .collect();
    table(
        &["RECIPIENT", "KIND", "STATE", "HISP-ID", "UPDATED", "REASON"],
        &rows,
    );
    Ok(())
}

pub fn receipts(ctx: &Context, args: ReceiptsArgs) -> CliResult {
    print_receipts(&ctx.open_store(false)?, args.id, args.json)
}

pub fn print_receipts(store: &Store, id: Option<i64>, as_json: bool) -> CliResult {
    let events = store.events(id)?;
    if as_json {
        return json(&events);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.message_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "?".into()),
                e.recipient
                    .clone()
                    .unwrap_or_else(|| opt(&e.hisp_message_id)),
                e.at.clone(),
                if e.applied {
                    e.state.clone()
                } else {
                    format!("({})", e.state)
                },
                e.source.clone(),
                opt(&e.detail),
            ]
        })
        .collect();
    table(
        &["MESSAGE", "RECIPIENT", "AT", "STATE", "SOURCE", "DETAIL"],
        &rows,
    );
    Ok(())
}
