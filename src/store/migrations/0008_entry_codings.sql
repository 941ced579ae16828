
CREATE TABLE IF NOT EXISTS entry_codings (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    -- problems, medications, allergies, results, immunizations or procedures
    entry_table TEXT NOT NULL,
    entry_id INTEGER NOT NULL,
    -- 0 for the first coding that has a code (the primary unless it is a nullFlavor)
    ordinal INTEGER NOT NULL,
    code TEXT, code_system TEXT, code_system_name TEXT, display TEXT,
    -- 1 for the coding the entry's code column holds
    chosen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entry_codings_entry ON entry_codings(entry_table, entry_id);
CREATE INDEX IF NOT EXISTS entry_codings_code ON entry_codings(code_system, code);
