-- Schema version 3: files that belong to an ingested document but are not C-CDA rows.
-- An unstructured document's inline base64 body (role 'inline', bytes here) or the sibling
-- attachment its <reference> names (role 'reference', attachment_id set when it was found).
CREATE TABLE document_files (
    id             INTEGER PRIMARY KEY,
    document_id    INTEGER NOT NULL REFERENCES documents(id),
    role           TEXT NOT NULL CHECK (role IN ('inline', 'reference')),
    name           TEXT,
    media_type     TEXT,
    attachment_id  INTEGER REFERENCES attachments(id),
    data           BLOB,
    size           INTEGER,
    sha256         TEXT,
    UNIQUE (document_id, role)
);
CREATE INDEX attachments_ingest_state ON attachments(ingest_state);
