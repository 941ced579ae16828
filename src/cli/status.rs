//! `directd status ID [--wait [--timeout D]]` and `directd receipts [ID] [--follow]`.

use std::time::{Duration, Instant};

use clap::Args;

use super::output::{json, opt, table};
use super::schema::{versioned, EventView, OutgoingView, ReceiptsDoc, StatusDoc};
use super::{CliError, CliResult, Context, EXIT_FAILED, EXIT_PENDING};
use crate::store::{EventRow, OutgoingOverview, Store, StoreError};
use crate::tracking::Outcome;

/// How often a waiting or following command looks at the store again: a commit by the daemon
/// is seen within this, at the cost of one small read.
const RECHECK: Duration = Duration::from_millis(200);

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status:\n  0  no recipient failed (with --wait: and every recipient has its outcome)\n  3  some recipient failed or timed out (with --wait: once every recipient has its outcome)\n  4  with --wait: the --timeout ran out while some recipient was still pending\n  1  operational failure (no such message, store unavailable); 2  usage error\n\nRead receipts (outcome `read`) can only come over S/MIME (edge) accounts, and only if the\nrecipient's system sends one; phiMail's STATUS notifications carry only dispatched or failed.\n\nExamples:\n  directd status 12\n  directd status 12 --wait --timeout 10m && echo delivered"
)]
pub struct StatusArgs {
    /// Local id of an outgoing message (printed by `directd send`).
    id: i64,
    /// Wait until every recipient has an outcome (or the timeout passes); see the exit status.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits: 90s, 10m, 2h.
    #[arg(long, value_name = "D", default_value = "10m", value_parser = super::parse_duration, requires = "wait")]
    timeout: Duration,
    /// One JSON document (docs/json-output.md).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ReceiptsArgs {
    /// Only this outgoing message.
    id: Option<i64>,
    /// Keep running and print each new event as it is recorded (with --json: one JSON object a
    /// line). Ends on Ctrl-C or when the reader goes away.
    #[arg(long)]
    follow: bool,
    /// JSON (docs/json-output.md); with --follow, JSON Lines.
    #[arg(long)]
    json: bool,
}

fn load(
    store: &Store,
    id: i64,
    config: &crate::config::Config,
) -> Result<OutgoingOverview, StoreError> {
    let mut m = store
        .outgoing_overview(None, Some(id))?
        .pop()
        .ok_or(StoreError::NotFound(id))?;
    super::schema::settle_transport(&mut m, config);
    Ok(m)
}

pub fn status(ctx: &Context, args: StatusArgs) -> CliResult {
    let store = ctx.open_store(false)?;
    let config = ctx.listing_config()?;
    let mut message = load(&store, args.id, &config)?;
    let mut wait = "not_waited";
    if args.wait {
        if !message.outcome().complete && crate::daemon::lock_holder(store.path())?.is_none() {
            eprintln!(
                "directd: no daemon runs on {}; nothing will change until one does",
                store.path().display()
            );
        }
        let deadline = Instant::now() + args.timeout;
        wait = loop {
            if message.outcome().complete {
                break "complete";
            }
            if Instant::now() >= deadline {
                break "timeout_expired";
            }
            std::thread::sleep(RECHECK.min(deadline.saturating_duration_since(Instant::now())));
            message = load(&store, args.id, &config)?;
        };
    }
    let view = OutgoingView::new(&message);
    let any_failed = view.recipients.iter().any(|r| r.outcome == Outcome::Failed);
    if args.json {
        json(&versioned(StatusDoc {
            message: view,
            wait,
        }))?;
    } else {
        print_status(&view, wait, args.timeout);
    }
    if wait == "timeout_expired" {
        Err(CliError::Exit(EXIT_PENDING))
    } else if any_failed {
        Err(CliError::Exit(EXIT_FAILED))
    } else {
        Ok(())
    }
}

fn print_status(view: &OutgoingView, wait: &str, timeout: Duration) {
    let transport = if view.transport == "edge" {
        "S/MIME"
    } else {
        "phiMail"
    };
    outln!(
        "Message {}: {}  ({transport}, final delivery {})",
        view.outgoing_id,
        view.outcome,
        if view.final_delivery {
            "requested"
        } else {
            "not requested"
        }
    );
    if view.outbox.state == "queued" {
        match &view.outbox.last_error {
            Some(e) => outln!(
                "Not sent yet: attempt {} failed: {e}; the daemon retries",
                view.outbox.attempts
            ),
            None => outln!("Not sent yet: waiting for the daemon"),
        }
    }
    let rows: Vec<Vec<String>> = view
        .recipients
        .iter()
        .map(|r| {
            vec![
                r.address.clone(),
                r.kind.clone(),
                r.state.clone(),
                r.outcome.as_str().to_owned(),
                opt(&r.hisp_message_id),
                r.updated_at.clone(),
                opt(&r.reason),
            ]
        })
        .collect();
    table(
        &[
            "RECIPIENT",
            "KIND",
            "STATE",
            "OUTCOME",
            "HISP-ID",
            "UPDATED",
            "REASON",
        ],
        &rows,
    );
    outln!("{}", read_receipt_note(&view.transport));
    if wait == "timeout_expired" {
        outln!(
            "Still pending after waiting {}s.",
            timeout.as_secs_f64().round()
        );
    }
}

/// Says plainly whether a read receipt can ever arrive, so nobody waits for one that cannot.
fn read_receipt_note(transport: &str) -> &'static str {
    if crate::tracking::reports_read_receipts(transport) {
        "Read receipts: possible over S/MIME; a recipient's system may send one (it is optional), shown as `displayed`."
    } else {
        "Read receipts: not available over phiMail (its STATUS reports only dispatched or failed)."
    }
}

pub fn receipts(ctx: &Context, args: ReceiptsArgs) -> CliResult {
    let store = ctx.open_store(false)?;
    if args.follow {
        return follow(&store, args.id, args.json);
    }
    print_receipts(&store, args.id, args.json, Some(&ctx.listing_config()?))
}

/// `config`, when there is one, names the transport of a message not tried yet.
pub fn print_receipts(
    store: &Store,
    id: Option<i64>,
    as_json: bool,
    config: Option<&crate::config::Config>,
) -> CliResult {
    let events = store.events(id)?;
    if as_json {
        let events = events.iter().map(EventView::new).collect();
        return json(&versioned(ReceiptsDoc { events }));
    }
    table(
        &["MESSAGE", "RECIPIENT", "AT", "STATE", "SOURCE", "DETAIL"],
        &events.iter().map(event_row).collect::<Vec<_>>(),
    );
    if let Some(id) = id {
        let transport = match config {
            Some(config) => load(store, id, config)?.transport,
            None => store.outgoing_meta(id)?.1,
        };
        outln!("{}", read_receipt_note(&transport));
    } else {
        outln!("Read receipts (`displayed`) can only come over S/MIME accounts; phiMail reports only dispatched or failed.");
    }
    Ok(())
}

fn event_row(e: &EventRow) -> Vec<String> {
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
}

/// Prints the history so far, then every event as it is recorded. Text lines have the table's
/// columns separated by two spaces (widths cannot be known in advance); JSON is one event object
/// a line, each with `schema_version`, flushed as it is written so a pipe sees it at once.
fn follow(store: &Store, id: Option<i64>, as_json: bool) -> CliResult {
    if !as_json {
        outln!("MESSAGE  RECIPIENT  AT  STATE  SOURCE  DETAIL");
    }
    let mut last = 0;
    loop {
        for e in store.events_after(id, last)? {
            last = e.event_id;
            if as_json {
                outln!("{}", serde_json::to_string(&versioned(EventView::new(&e)))?);
            } else {
                let cells: Vec<String> = event_row(&e)
                    .into_iter()
                    .map(|c| c.replace(|c: char| c.is_control(), " "))
                    .collect();
                outln!("{}", cells.join("  "));
            }
        }
        std::thread::sleep(RECHECK);
    }
}
