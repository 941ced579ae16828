//! `directd reject ID --reason TEXT`: an operator refuses a received message.

use clap::Args;

use super::{usage, CliResult, Context};
use crate::store::RejectOutcome;

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  directd reject 7 --reason 'not our patient; sent to the wrong clinic'"
)]
pub struct RejectArgs {
    /// Local id of a received message (see `directd messages --in`).
    pub id: i64,
    /// Why it is refused: kept with the message and in the audit trail (not sent to the sender).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

pub fn run(ctx: &Context, args: RejectArgs) -> CliResult {
    let reason = args.reason.trim();
    if reason.is_empty() || reason.contains(['\r', '\n']) {
        return Err(usage("--reason must be one non-empty line"));
    }
    let mut store = ctx.open_store(false)?;
    let actor = crate::store::current_actor();
    match store.reject_incoming(args.id, &actor, reason)? {
        RejectOutcome::FailedMdnOwed => {
            let sender = store.incoming(args.id)?.sender;
            outln!(
                "message {} refused and quarantined; a failed MDN to {sender} is queued (the daemon sends it)",
                args.id
            );
        }
        RejectOutcome::NoMdnRequested => outln!(
            "message {} refused and quarantined; its sender asked for no MDN, so nothing is sent (on phiMail accounts the HISP reports delivery itself)",
            args.id
        ),
        RejectOutcome::AlreadyQuarantined(why) => {
            return Err(usage(format!(
                "message {} is already quarantined: {why}",
                args.id
            )))
        }
        RejectOutcome::AlreadyDispatched => {
            return Err(usage(format!(
                "message {} was already reported delivered (dispatched) to its sender; a sender gets one final outcome",
                args.id
            )))
        }
        RejectOutcome::NotFound => return Err(crate::store::StoreError::NotFound(args.id).into()),
    }
    Ok(())
}
