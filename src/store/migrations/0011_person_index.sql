-- What linking a new patient record reads, kept per person instead of per record: which persons
-- carry an identifier, and the distinct demographics of each person's records. Linking read every
-- record of a person twice for each new document of that person, so storing one patient's n-th
-- document cost O(n) and a patient's documents O(n²) (the 10,000-document soak of one patient:
-- 107 messages/s, ingestion 47 s behind reception).
--
-- Kept by triggers on the tables they summarise, so no code path (ingestion, `patients link`,
-- `unlink`, retention, the identity migration) can leave them stale. Additions are counted in
-- place; removals recompute the person's rows from the tables, since a cascade may already have
-- removed the rows a decrement would need. `first_patient_id` is the lowest record id holding the
-- value, which orders persons and demographics as the queries they replace did.
-- Idempotent (IF NOT EXISTS, then a full rebuild), so `clinical::init` can run it again.

CREATE TABLE IF NOT EXISTS person_identifiers (
    root TEXT NOT NULL,
    extension TEXT NOT NULL,
    person_id INTEGER NOT NULL,
    records INTEGER NOT NULL,
    first_patient_id INTEGER NOT NULL,
    PRIMARY KEY (root, extension, person_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS person_identifiers_person ON person_identifiers(person_id);

-- No UNIQUE key: demographics may be NULL, and NULLs are distinct in a key but equal (IS) here.
CREATE TABLE IF NOT EXISTS person_demographics (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL,
    family TEXT, given TEXT, birth_time TEXT, gender_code TEXT,
    records INTEGER NOT NULL,
    first_patient_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS person_demographics_person ON person_demographics(person_id);

-- A record joins a person: count its identifiers and its demographics in.
CREATE TRIGGER IF NOT EXISTS person_index_member_added AFTER INSERT ON person_members BEGIN
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT root, extension, NEW.person_id, 1, NEW.patient_id
        FROM patient_identifiers WHERE patient_id = NEW.patient_id
        ON CONFLICT (root, extension, person_id) DO UPDATE
        SET records = records + 1, first_patient_id = min(first_patient_id, excluded.first_patient_id);
    UPDATE person_demographics
        SET records = records + 1, first_patient_id = min(first_patient_id, NEW.patient_id)
        WHERE person_id = NEW.person_id AND EXISTS (
            SELECT 1 FROM patients p WHERE p.id = NEW.patient_id
              AND p.family IS person_demographics.family AND p.given IS person_demographics.given
              AND p.birth_time IS person_demographics.birth_time
              AND p.gender_code IS person_demographics.gender_code);
    INSERT INTO person_demographics
            (person_id, family, given, birth_time, gender_code, records, first_patient_id)
        SELECT NEW.person_id, p.family, p.given, p.birth_time, p.gender_code, 1, NEW.patient_id
        FROM patients p WHERE p.id = NEW.patient_id AND NOT EXISTS (
            SELECT 1 FROM person_demographics d WHERE d.person_id = NEW.person_id
              AND d.family IS p.family AND d.given IS p.given AND d.birth_time IS p.birth_time
              AND d.gender_code IS p.gender_code);
END;

-- A record moves to another person (`patients link` moves every record of one person): counted
-- out of the old person (its rows are all still there during an UPDATE), into the new one.
CREATE TRIGGER IF NOT EXISTS person_index_member_moved
AFTER UPDATE OF person_id, patient_id ON person_members BEGIN
    UPDATE person_identifiers SET records = records - 1
        WHERE person_id = OLD.person_id AND EXISTS (
            SELECT 1 FROM patient_identifiers i WHERE i.patient_id = OLD.patient_id
              AND i.root = person_identifiers.root AND i.extension = person_identifiers.extension);
    UPDATE person_demographics SET records = records - 1
        WHERE person_id = OLD.person_id AND EXISTS (
            SELECT 1 FROM patients p WHERE p.id = OLD.patient_id
              AND p.family IS person_demographics.family AND p.given IS person_demographics.given
              AND p.birth_time IS person_demographics.birth_time
              AND p.gender_code IS person_demographics.gender_code);
    DELETE FROM person_identifiers WHERE person_id = OLD.person_id AND records <= 0;
    DELETE FROM person_demographics WHERE person_id = OLD.person_id AND records <= 0;
    UPDATE person_identifiers SET first_patient_id = (
            SELECT min(i.patient_id) FROM patient_identifiers i
            JOIN person_members m ON m.patient_id = i.patient_id
            WHERE m.person_id = OLD.person_id AND i.root = person_identifiers.root
              AND i.extension = person_identifiers.extension)
        WHERE person_id = OLD.person_id AND first_patient_id = OLD.patient_id;
    UPDATE person_demographics SET first_patient_id = (
            SELECT min(p.id) FROM patients p JOIN person_members m ON m.patient_id = p.id
            WHERE m.person_id = OLD.person_id
              AND p.family IS person_demographics.family AND p.given IS person_demographics.given
              AND p.birth_time IS person_demographics.birth_time
              AND p.gender_code IS person_demographics.gender_code)
        WHERE person_id = OLD.person_id AND first_patient_id = OLD.patient_id;
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT root, extension, NEW.person_id, 1, NEW.patient_id
        FROM patient_identifiers WHERE patient_id = NEW.patient_id
        ON CONFLICT (root, extension, person_id) DO UPDATE
        SET records = records + 1, first_patient_id = min(first_patient_id, excluded.first_patient_id);
    UPDATE person_demographics
        SET records = records + 1, first_patient_id = min(first_patient_id, NEW.patient_id)
        WHERE person_id = NEW.person_id AND EXISTS (
            SELECT 1 FROM patients p WHERE p.id = NEW.patient_id
              AND p.family IS person_demographics.family AND p.given IS person_demographics.given
              AND p.birth_time IS person_demographics.birth_time
              AND p.gender_code IS person_demographics.gender_code);
    INSERT INTO person_demographics
            (person_id, family, given, birth_time, gender_code, records, first_patient_id)
        SELECT NEW.person_id, p.family, p.given, p.birth_time, p.gender_code, 1, NEW.patient_id
        FROM patients p WHERE p.id = NEW.patient_id AND NOT EXISTS (
            SELECT 1 FROM person_demographics d WHERE d.person_id = NEW.person_id
              AND d.family IS p.family AND d.given IS p.given AND d.birth_time IS p.birth_time
              AND d.gender_code IS p.gender_code);
END;

-- A record leaves its person (`patients unlink`, or its patient deleted by retention): the
-- person's rows are recomputed from what is left.
CREATE TRIGGER IF NOT EXISTS person_index_member_removed AFTER DELETE ON person_members BEGIN
    DELETE FROM person_identifiers WHERE person_id = OLD.person_id;
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT i.root, i.extension, m.person_id, count(*), min(i.patient_id)
        FROM person_members m JOIN patient_identifiers i ON i.patient_id = m.patient_id
        WHERE m.person_id = OLD.person_id GROUP BY i.root, i.extension;
    DELETE FROM person_demographics WHERE person_id = OLD.person_id;
    INSERT INTO person_demographics
            (person_id, family, given, birth_time, gender_code, records, first_patient_id)
        SELECT m.person_id, p.family, p.given, p.birth_time, p.gender_code, count(*), min(p.id)
        FROM person_members m JOIN patients p ON p.id = m.patient_id
        WHERE m.person_id = OLD.person_id
        GROUP BY p.family, p.given, p.birth_time, p.gender_code;
END;

-- A member's identifiers or demographics change: the person's rows are recomputed.
CREATE TRIGGER IF NOT EXISTS person_index_identifier_added AFTER INSERT ON patient_identifiers
WHEN EXISTS (SELECT 1 FROM person_members WHERE patient_id = NEW.patient_id) BEGIN
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT NEW.root, NEW.extension, person_id, 1, NEW.patient_id
        FROM person_members WHERE patient_id = NEW.patient_id
        ON CONFLICT (root, extension, person_id) DO UPDATE
        SET records = records + 1, first_patient_id = min(first_patient_id, excluded.first_patient_id);
END;

CREATE TRIGGER IF NOT EXISTS person_index_identifier_removed AFTER DELETE ON patient_identifiers
WHEN EXISTS (SELECT 1 FROM person_members WHERE patient_id = OLD.patient_id) BEGIN
    DELETE FROM person_identifiers WHERE (root, extension) = (OLD.root, OLD.extension)
        AND person_id = (SELECT person_id FROM person_members WHERE patient_id = OLD.patient_id);
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT i.root, i.extension, m.person_id, count(*), min(i.patient_id)
        FROM person_members m JOIN patient_identifiers i ON i.patient_id = m.patient_id
        WHERE m.person_id = (SELECT person_id FROM person_members WHERE patient_id = OLD.patient_id)
          AND i.root = OLD.root AND i.extension = OLD.extension
        GROUP BY i.root, i.extension;
END;

CREATE TRIGGER IF NOT EXISTS person_index_identifier_changed
AFTER UPDATE OF patient_id, root, extension ON patient_identifiers BEGIN
    DELETE FROM person_identifiers WHERE person_id IN (
        SELECT person_id FROM person_members WHERE patient_id IN (OLD.patient_id, NEW.patient_id));
    INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
        SELECT i.root, i.extension, m.person_id, count(*), min(i.patient_id)
        FROM person_members m JOIN patient_identifiers i ON i.patient_id = m.patient_id
        WHERE m.person_id IN (
            SELECT person_id FROM person_members WHERE patient_id IN (OLD.patient_id, NEW.patient_id))
        GROUP BY m.person_id, i.root, i.extension;
END;

CREATE TRIGGER IF NOT EXISTS person_index_demographics_changed
AFTER UPDATE OF family, given, birth_time, gender_code ON patients
WHEN EXISTS (SELECT 1 FROM person_members WHERE patient_id = NEW.id) BEGIN
    DELETE FROM person_demographics
        WHERE person_id = (SELECT person_id FROM person_members WHERE patient_id = NEW.id);
    INSERT INTO person_demographics
            (person_id, family, given, birth_time, gender_code, records, first_patient_id)
        SELECT m.person_id, p.family, p.given, p.birth_time, p.gender_code, count(*), min(p.id)
        FROM person_members m JOIN patients p ON p.id = m.patient_id
        WHERE m.person_id = (SELECT person_id FROM person_members WHERE patient_id = NEW.id)
        GROUP BY p.family, p.given, p.birth_time, p.gender_code;
END;

-- Rebuilt from the tables: what the triggers keep from here on.
DELETE FROM person_identifiers;
INSERT INTO person_identifiers (root, extension, person_id, records, first_patient_id)
    SELECT i.root, i.extension, m.person_id, count(*), min(i.patient_id)
    FROM person_members m JOIN patient_identifiers i ON i.patient_id = m.patient_id
    GROUP BY m.person_id, i.root, i.extension;
DELETE FROM person_demographics;
INSERT INTO person_demographics
        (person_id, family, given, birth_time, gender_code, records, first_patient_id)
    SELECT m.person_id, p.family, p.given, p.birth_time, p.gender_code, count(*), min(p.id)
    FROM person_members m JOIN patients p ON p.id = m.patient_id
    GROUP BY m.person_id, p.family, p.given, p.birth_time, p.gender_code;
