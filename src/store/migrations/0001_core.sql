-- directd store, schema version 1. Times are UTC RFC 3339 text ("2026-11-25T22:50:00Z").

-- Messages we send. `state` is the outbox state of the message as a whole:
-- queued (waiting for the daemon), submitted (the HISP answered for every recipient),
-- failed (gave up: no account for the sender, or too many attempts).
CREATE TABLE outgoing (
    id               INTEGER PRIMARY KEY,
    account          TEXT,
    sender           TEXT NOT NULL,
    subject          TEXT,
    final_delivery   INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  TEXT NOT NULL,
    submitted_at     TEXT
);
CREATE INDEX outgoing_due ON outgoing(state, next_attempt_at);

-- The body (first part) and attachments of an outgoing message, exact bytes.
CREATE TABLE outgoing_parts (
    id           INTEGER PRIMARY KEY,
    outgoing_id  INTEGER NOT NULL REFERENCES outgoing(id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('cda', 'text', 'raw')),
    filename     TEXT,
    data         BLOB NOT NULL,
    sha256       TEXT NOT NULL,
    UNIQUE (outgoing_id, seq)
);

-- One row per recipient of an outgoing message: its current delivery state.
CREATE TABLE recipients (
    id               INTEGER PRIMARY KEY,
    outgoing_id      INTEGER NOT NULL REFERENCES outgoing(id),
    address          TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('to', 'cc')),
    state            TEXT NOT NULL DEFAULT 'queued',
    hisp_message_id  TEXT,
    reason           TEXT,
    submitted_at     TEXT,
    updated_at       TEXT NOT NULL,
    UNIQUE (outgoing_id, address)
);
CREATE INDEX recipients_hisp_id ON recipients(hisp_message_id);
CREATE INDEX recipients_state ON recipients(state);

-- Append-only history: every notification about a recipient, whether it moved the state or not.
CREATE TABLE delivery_events (
    id               INTEGER PRIMARY KEY,
    recipient_id     INTEGER REFERENCES recipients(id),
    hisp_message_id  TEXT,
    at               TEXT NOT NULL,
    state            TEXT NOT NULL,
    source           TEXT NOT NULL,
    detail           TEXT,
    applied          INTEGER NOT NULL
);
CREATE INDEX delivery_events_recipient ON delivery_events(recipient_id);
CREATE TRIGGER delivery_events_append_only_u BEFORE UPDATE ON delivery_events
BEGIN SELECT RAISE(ABORT, 'delivery_events is append-only'); END;
CREATE TRIGGER delivery_events_append_only_d BEFORE DELETE ON delivery_events
BEGIN SELECT RAISE(ABORT, 'delivery_events is append-only'); END;

-- Messages received. (account, hisp_message_id) de-duplicates redeliveries.
CREATE TABLE incoming (
    id                INTEGER PRIMARY KEY,
    account           TEXT NOT NULL,
    hisp_message_id   TEXT NOT NULL,
    recipient         TEXT NOT NULL,
    sender            TEXT NOT NULL,
    subject           TEXT,
    date              TEXT,
    header_message_id TEXT,
    headers_json      TEXT NOT NULL,
    body_type         TEXT NOT NULL,
    body              BLOB NOT NULL,
    received_at       TEXT NOT NULL,
    quarantine_reason TEXT,
    UNIQUE (account, hisp_message_id)
);
CREATE INDEX incoming_received ON incoming(received_at);

CREATE TABLE attachments (
    id             INTEGER PRIMARY KEY,
    incoming_id    INTEGER NOT NULL REFERENCES incoming(id),
    seq            INTEGER NOT NULL,
    filename       TEXT NOT NULL,
    declared_type  TEXT NOT NULL,
    description    TEXT,
    data           BLOB NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    ingest_state   TEXT NOT NULL DEFAULT 'pending',
    ingest_error   TEXT,
    UNIQUE (incoming_id, seq)
);

-- Who did what to which message, when (HIPAA audit trail). Append-only.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    message_ref TEXT,
    detail      TEXT
);
CREATE TRIGGER audit_log_append_only_u BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_append_only_d BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
