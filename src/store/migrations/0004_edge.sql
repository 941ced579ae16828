-- Schema version 4: S/MIME edge transport.
-- Received messages keep their exact bytes and the security agent's verdict; those that failed
-- its checks carry quarantine_reason (already in v1) and are never ingested.
ALTER TABLE incoming ADD COLUMN raw BLOB;
ALTER TABLE incoming ADD COLUMN verdict_json TEXT;
-- The MDNs the sender asked of us: where they go and what they answer.
ALTER TABLE incoming ADD COLUMN mdn_to TEXT;
ALTER TABLE incoming ADD COLUMN mdn_original_id TEXT;
ALTER TABLE incoming ADD COLUMN mdn_final INTEGER NOT NULL DEFAULT 0;

-- Which transport carried an outgoing message (the delivery notifications it can expect differ).
ALTER TABLE outgoing ADD COLUMN transport TEXT NOT NULL DEFAULT 'phimail';

-- MDNs we owe, written in the same transaction as the event that owes them, so a crash cannot
-- lose one; sent by the daemon and marked sent afterwards.
CREATE TABLE mdn_outbox (
    id           INTEGER PRIMARY KEY,
    incoming_id  INTEGER NOT NULL REFERENCES incoming(id),
    account      TEXT NOT NULL,
    disposition  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    sent_at      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    UNIQUE (incoming_id, disposition)
);
CREATE INDEX mdn_outbox_unsent ON mdn_outbox(sent_at);
