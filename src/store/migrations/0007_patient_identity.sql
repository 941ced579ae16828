
-- Identifiers belong to one document's patient record; the same (root, extension) on many records
-- is expected, so the old UNIQUE (root, extension), which made every later document join the first
-- row that carried it, goes.
DROP VIEW IF EXISTS v_patient_documents;
CREATE TABLE patient_identifiers_v5 (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    root TEXT NOT NULL, extension TEXT NOT NULL,
    UNIQUE (patient_id, root, extension)
);
INSERT INTO patient_identifiers_v5 (patient_id, root, extension)
    SELECT patient_id, root, extension FROM patient_identifiers;
DROP TABLE patient_identifiers;
ALTER TABLE patient_identifiers_v5 RENAME TO patient_identifiers;
CREATE INDEX patient_identifiers_lookup ON patient_identifiers(root, extension);

CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
-- linked_by: 'first' (the record that started the person), 'evidence' (identifier and
-- demographics agreed at ingestion), 'manual' (`directd patients link`).
CREATE TABLE person_members (
    patient_id INTEGER PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    linked_by TEXT NOT NULL,
    evidence TEXT,
    linked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE INDEX person_members_person ON person_members(person_id);
-- A shared identifier whose demographics disagree: kept for review, never merged.
-- state: 'open', 'linked' (someone linked them), 'dismissed'.
CREATE TABLE patient_link_candidates (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    other_patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    id_root TEXT NOT NULL, id_extension TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
    UNIQUE (patient_id, other_patient_id)
);
CREATE INDEX patient_link_candidates_other ON patient_link_candidates(other_patient_id);

CREATE VIEW v_patient_documents AS
SELECT p.id AS patient_id, m.person_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       p.birth_time, p.gender_code,
       (SELECT group_concat(root || '^' || extension, ' ')
          FROM patient_identifiers i WHERE i.patient_id = p.id) AS identifiers,
       count(d.id) AS document_count,
       group_concat(d.id, ',') AS document_ids,
       min(d.effective_time) AS first_document_time,
       max(d.effective_time) AS last_document_time
FROM patients p LEFT JOIN documents d ON d.patient_id = p.id
LEFT JOIN person_members m ON m.patient_id = p.id
GROUP BY p.id;

CREATE VIEW v_persons AS
SELECT m.person_id,
       group_concat(DISTINCT trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')))
           AS names,
       group_concat(DISTINCT p.birth_time) AS birth_times,
       count(DISTINCT p.id) AS record_count,
       (SELECT count(*) FROM documents d JOIN person_members m2 ON m2.patient_id = d.patient_id
         WHERE m2.person_id = m.person_id) AS document_count,
       (SELECT count(*) FROM patient_link_candidates c
          JOIN person_members m3 ON m3.patient_id IN (c.patient_id, c.other_patient_id)
         WHERE m3.person_id = m.person_id AND c.state = 'open') AS open_candidates
FROM person_members m JOIN patients p ON p.id = m.patient_id
GROUP BY m.person_id;
