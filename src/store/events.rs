//! A recipient's delivery history: one append-only `delivery_events` row for everything that
//! happened to it (a local decision, the HISP's answer, a notice, a timeout), whether or not it
//! moved the recipient's state (`applied`). Written only here, so every writer records the same
//! columns.

use rusqlite::{named_params, Connection};

pub(super) struct Event<'a> {
    /// `None` for a notice that matched no recipient (kept so it can be looked into).
    pub recipient_id: Option<i64>,
    /// The HISP's id for the message, when the event came with one.
    pub hisp_message_id: Option<&'a str>,
    pub at: &'a str,
    /// The state reported or decided (a known `DeliveryState`, or the code as received).
    pub state: &'a str,
    /// `local`, `hisp`, `timeout`, or the notice's source (`phimail`, `mdn`, `dsn`).
    pub source: &'a str,
    pub detail: Option<&'a str>,
    /// Whether the event moved the recipient's state.
    pub applied: bool,
}

pub(super) fn append_event(conn: &Connection, e: &Event<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO delivery_events (recipient_id, hisp_message_id, at, state, source, detail,
            applied)
         VALUES (:recipient_id, :hisp_message_id, :at, :state, :source, :detail, :applied)",
        named_params! {
            ":recipient_id": e.recipient_id,
            ":hisp_message_id": e.hisp_message_id,
            ":at": e.at,
            ":state": e.state,
            ":source": e.source,
            ":detail": e.detail,
            ":applied": e.applied,
        },
    )
    .map(|_| ())
}
