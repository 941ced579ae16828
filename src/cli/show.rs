//! `directd show ID [--save DIR]`: one received message and its attachments.

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::{json, opt, table};
use super::schema::{versioned, IncomingDetailView, MarkReadView, ShowDoc};
use super::{CliResult, Context};
use crate::store::Store;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Local id of a received message (see `directd messages --in`).
    pub id: i64,
    /// Write the attachments into this directory (created if needed; files are 0600 and never
    /// overwrite existing ones).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Send the sender a read receipt (a `displayed` MDN; S/MIME edge accounts).
    #[arg(long)]
    pub mark_read: bool,
    /// Write the message exactly as received (S/MIME, for `directd inspect`) to this file.
    #[arg(long, value_name = "FILE")]
    pub raw: Option<PathBuf>,
}

/// A filename from a remote party made safe to create inside a directory of ours: no path
/// separators, no leading dots, no control characters, bounded length.
pub fn safe_filename(name: &str, fallback: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').trim();
    let mut out: String = cleaned.chars().take(120).collect();
    if out.is_empty() {
        out = fallback.to_owned();
    }
    out
}

/// Creates `dir/name`, or `dir/name-1`, `-2`... if taken.
pub(super) fn save_unique(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        match crate::fsutil::create_new_private(&candidate, data) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("too many files named {name}"),
    ))
}

pub fn run(ctx: &Context, args: ShowArgs) -> CliResult {
    print_message(&ctx.open_store(false)?, args)
}

pub fn print_message(store: &Store, args: ShowArgs) -> CliResult {
    let msg = store.incoming(args.id)?;
    let actor = crate::store::current_actor();
    let msg_ref = format!("in:{}", msg.id);
    store.audit(&actor, "show", Some(&msg_ref), None)?;
    let mark_read = if args.mark_read {
        if msg.quarantine_reason.is_some() {
            return Err(super::usage(format!(
                "message {} is quarantined; no read receipt is sent for it",
                msg.id
            )));
        }
        let view = mark_read(store, &msg)?;
        if view.result == "queued" {
            store.audit(&actor, "mark-read", Some(&msg_ref), view.to.as_deref())?;
        }
        Some(view)
    } else {
        None
    };
    if let Some(path) = &args.raw {
        let raw = store.incoming_raw(msg.id)?.ok_or_else(|| {
            super::usage(format!(
                "message {} was not kept in raw form (phiMail delivers parts, not a message)",
                msg.id
            ))
        })?;
        crate::fsutil::create_new_private(path, &raw)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        store.audit(
            &actor,
            "export-raw",
            Some(&msg_ref),
            Some(&path.display().to_string()),
        )?;
    }
    let mut saved = Vec::new();
    if let Some(dir) = &args.save {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        for a in &msg.attachments {
            let data = store.attachment_data(a.id)?;
            let name = safe_filename(&a.filename, &format!("attachment-{}", a.seq));
            let path = save_unique(dir, &name, &data)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(&name).display()))?;
            store.audit(
                &actor,
                "save",
                Some(&msg_ref),
                Some(&format!("attachment {} to {}", a.seq, path.display())),
            )?;
            saved.push(path);
        }
    }
    let mdns = store.mdns_for(msg.id)?;
    if args.json {
        return json(&versioned(ShowDoc {
            message: IncomingDetailView::new(&msg, mdns),
            saved,
            mark_read,
        }));
    }
    if let Some(m) = &mark_read {
        outln!("{}\n", m.explanation);
    }
    outln!(
        "Message {}  (HISP id {}, account {})",
        msg.id,
        msg.hisp_message_id,
        msg.account
    );
    outln!("From:     {}", msg.sender);
    outln!("To:       {}", msg.recipient);
    outln!("Subject:  {}", opt(&msg.subject));
    outln!("Date:     {}", opt(&msg.date));
    outln!("Received: {}", msg.received_at);
    if let Some(q) = &msg.quarantine_reason {
        outln!("QUARANTINED: {q}");
    }
    if let Some(v) = msg
        .verdict
        .as_deref()
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
    {
        for s in v["signers"].as_array().into_iter().flatten() {
            outln!(
                "Signed:   {} ({}), trusted by {}",
                s["subject"].as_str().unwrap_or("?"),
                s["digest"].as_str().unwrap_or("?"),
                s["trusted_by"].as_str().unwrap_or("?")
            );
        }
    }
    for (disposition, sent) in mdns {
        outln!(
            "MDN:      {disposition} {}",
            sent.map(|t| format!("sent {t}"))
                .unwrap_or_else(|| "owed".into())
        );
    }
    outln!();
    match &msg.body_text {
        Some(t) if !t.is_empty() => outln!(
            "{}\n",
            t.chars()
                .map(|c| if c.is_control() && c != '\n' && c != '\t' {
                    ' '
                } else {
                    c
                })
                .collect::<String>()
        ),
        Some(_) => outln!("(empty body)\n"),
        None => outln!("(body is {} bytes of {})\n", msg.body.len(), msg.body_type),
    }
    let rows: Vec<Vec<String>> = msg
        .attachments
        .iter()
        .map(|a| {
            vec![
                a.seq.to_string(),
                a.filename.clone(),
                a.declared_type.clone(),
                a.size.to_string(),
                a.sha256[..16].to_owned(),
                a.ingest_state.clone(),
            ]
        })
        .collect();
    table(
        &["#", "FILENAME", "TYPE", "BYTES", "SHA256", "INGEST"],
        &rows,
    );
    // Why a document did not become clinical rows: a reason only --json showed before.
    for a in &msg.attachments {
        if let Some(e) = &a.ingest_error {
            outln!("#{} {}: {e}", a.seq, a.ingest_state);
        }
    }
    for p in saved {
        outln!("saved {}", p.display());
    }
    Ok(())
}

/// Owes the sender a read receipt if one can be sent, and says plainly what happened: sent to
/// whom, or why not.
fn mark_read(
    store: &Store,
    msg: &crate::store::IncomingDetail,
) -> Result<MarkReadView, crate::store::StoreError> {
    let to = msg.mdn_to.clone();
    let view = |result, explanation: String| MarkReadView {
        result,
        to: to.clone(),
        explanation,
    };
    if store.owe_mdn(msg.id, crate::mdn::Disposition::Displayed)? {
        return Ok(view(
            "queued",
            format!(
                "read receipt (a displayed MDN) queued for {}; the daemon sends it at its next poll (`directd poll` sends it now)",
                to.as_deref().unwrap_or("the sender")
            ),
        ));
    }
    let displayed = store
        .mdns_for(msg.id)?
        .into_iter()
        .find(|(d, _)| d == "displayed");
    Ok(match displayed {
        Some((_, Some(at))) => view(
            "already_sent",
            format!(
                "a read receipt was already sent to {} at {at}; not sent again",
                to.as_deref().unwrap_or("the sender")
            ),
        ),
        Some((_, None)) => view(
            "already_queued",
            format!(
                "a read receipt to {} is already queued; the daemon sends it at its next poll",
                to.as_deref().unwrap_or("the sender")
            ),
        ),
        // Only S/MIME messages are kept raw; phiMail delivers parts and answers for itself.
        None if store.incoming_raw(msg.id)?.is_none() => view(
            "not_possible",
            format!(
                "no read receipt sent: message {} came over phiMail, which carries no read receipts (its HISP reports only dispatched or failed to the sender)",
                msg.id
            ),
        ),
        None => view(
            "not_requested",
            format!(
                "no read receipt sent: {} asked for no receipts (the message has no Disposition-Notification-To)",
                msg.sender
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::safe_filename;

    #[test]
    fn hostile_names_are_neutralised() {
        assert_eq!(safe_filename("../../etc/passwd", "x"), "passwd");
        assert_eq!(safe_filename("C:\\Windows\\evil.dll", "x"), "evil.dll");
        assert_eq!(safe_filename("..", "x"), "x");
        assert_eq!(safe_filename(".bashrc", "x"), "bashrc");
        assert_eq!(safe_filename("a\nb\u{0}.xml", "x"), "a_b_.xml");
        assert_eq!(safe_filename("", "attachment-1"), "attachment-1");
        assert_eq!(safe_filename(&"y".repeat(500), "x").len(), 120);
    }
}
