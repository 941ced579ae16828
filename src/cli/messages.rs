//! `directd messages [--in|--out] [--since WHEN] [--state OUTCOME] [--unread]`.

use clap::Args;

use super::output::{json, opt, table};
use super::schema::{versioned, IncomingView, MessageView, MessagesDoc, OutgoingView};
use super::{parse_since, CliResult, Context};
use crate::store::{IncomingOverview, OutgoingOverview};
use crate::tracking::Outcome;

#[derive(Args, Debug)]
#[command(
    after_help = "OUTCOME (outgoing messages) is the most pressing of their recipients' outcomes, with how many recipients have it:\n  pending 1/2     a confirmation is still expected for 1 of 2 recipients\n  failed 1/2      1 of 2 failed or timed out (the others have outcomes too; see `directd status ID`)\n  accepted 2/2    the HISP took it and, final delivery not being requested, nothing more comes\n  dispatched 2/2  final delivery confirmed for every recipient\n  read 1/1        and a read receipt came back (S/MIME accounts only; phiMail reports none)\n\nExamples:\n  directd messages --state failed --since 7d\n  directd messages --unread\n  directd messages --out --json | jq '.messages[] | select(.outcome.state == \"pending\")'"
)]
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
    /// Only sent messages with this outcome: pending, failed, accepted, dispatched or read.
    #[arg(long, value_name = "OUTCOME", value_parser = parse_outcome, conflicts_with_all = ["incoming", "unread"])]
    state: Option<Outcome>,
    /// Only received messages nobody has opened with `directd show` yet.
    #[arg(long, conflicts_with = "outgoing")]
    unread: bool,
    /// One JSON document (docs/json-output.md).
    #[arg(long)]
    json: bool,
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    Outcome::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

pub fn run(ctx: &Context, args: MessagesArgs) -> CliResult {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = ctx.open_store(false)?;
    let (out, inc) = match (args.outgoing, args.incoming) {
        _ if args.state.is_some() => (true, false),
        _ if args.unread => (false, true),
        (false, false) => (true, true),
        (o, i) => (o, i),
    };
    let mut outgoing = if out {
        store.outgoing_overview(since.as_deref(), None)?
    } else {
        Vec::new()
    };
    let config = ctx.listing_config()?;
    for m in &mut outgoing {
        super::schema::settle_transport(m, &config);
    }
    if let Some(wanted) = args.state {
        outgoing.retain(|m| m.outcome().state == wanted);
    }
    let incoming = if inc {
        store.incoming_overview(since.as_deref(), args.unread)?
    } else {
        Vec::new()
    };
    let listing = merge(outgoing, incoming);
    if args.json {
        let messages = listing
            .iter()
            .map(|e| match e {
                Entry::Out(m) => MessageView::Out(OutgoingView::new(m)),
                Entry::In(m) => MessageView::In(IncomingView::new(m)),
            })
            .collect();
        return json(&versioned(MessagesDoc { messages }));
    }
    let rows: Vec<Vec<String>> = listing.iter().map(text_row).collect();
    table(
        &["ID", "DIR", "AT", "FROM", "TO", "OUTCOME", "SUBJECT"],
        &rows,
    );
    Ok(())
}

enum Entry {
    Out(OutgoingOverview),
    In(IncomingOverview),
}

impl Entry {
    fn at(&self) -> &str {
        match self {
            Entry::Out(m) => &m.created_at,
            Entry::In(m) => &m.received_at,
        }
    }
}

/// Newest first, except that a message quarantined unreadable leads: it was acknowledged to a
/// HISP that may tell its sender it was delivered, so it stays on top until someone deals with it.
fn merge(outgoing: Vec<OutgoingOverview>, incoming: Vec<IncomingOverview>) -> Vec<Entry> {
    let mut all: Vec<Entry> = outgoing
        .into_iter()
        .map(Entry::Out)
        .chain(incoming.into_iter().map(Entry::In))
        .collect();
    let unreadable =
        |e: &Entry| matches!(e, Entry::In(m) if m.quarantine_reason.is_some() && m.unreadable);
    all.sort_by(|a, b| unreadable(b).cmp(&unreadable(a)).then(b.at().cmp(a.at())));
    all
}

fn text_row(e: &Entry) -> Vec<String> {
    match e {
        Entry::Out(m) => {
            let to = m
                .recipients
                .iter()
                .map(|r| {
                    if r.kind == "cc" {
                        format!("cc:{}", r.address)
                    } else {
                        r.address.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut outcome = m.outcome().to_string();
            // Not sent yet and already retried: say why, or a queue that never drains is a mystery.
            if m.outbox_state == "queued" {
                if let Some(err) = &m.last_error {
                    outcome.push_str(&format!(" (not sent yet, attempt {}: {err})", m.attempts));
                }
            }
            vec![
                m.id.to_string(),
                "out".into(),
                m.created_at.clone(),
                m.sender.clone(),
                to,
                outcome,
                opt(&m.subject),
            ]
        }
        Entry::In(m) => {
            let mut state = match super::schema::incoming_state(m) {
                "received" => "received".to_owned(),
                "quarantined" => "quarantined".to_owned(),
                // Never read at all, yet acknowledged: shouted, as it leads the list.
                _ => "QUARANTINED-UNREADABLE".to_owned(),
            };
            if !m.viewed {
                state.push_str(", unread");
            }
            if m.ingest_failures > 0 {
                state.push_str(&format!(", {} not ingested", m.ingest_failures));
            }
            vec![
                m.id.to_string(),
                "in".into(),
                m.received_at.clone(),
                m.sender.clone(),
                m.recipient.clone(),
                state,
                opt(&m.subject),
            ]
        }
    }
}
