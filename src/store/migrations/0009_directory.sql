-- Direct addresses by NPI, from an imported NPPES endpoint file (`directd directory import`), so
-- that `send --to-npi` can find the address on a lab order without asking the HISP. Each import
-- replaces the rows of the previous one (the file is a full monthly snapshot).
CREATE TABLE directory_entries (
    id           INTEGER PRIMARY KEY,
    npi          TEXT NOT NULL,
    address      TEXT NOT NULL,
    name         TEXT,
    source       TEXT NOT NULL,
    imported_at  TEXT NOT NULL,
    UNIQUE (npi, address)
);
CREATE INDEX directory_entries_address ON directory_entries(address);
