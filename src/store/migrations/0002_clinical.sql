
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY,
    given TEXT, family TEXT, prefix TEXT, suffix TEXT,
    birth_time TEXT,
    gender_code TEXT, gender_display TEXT,
    marital_status_code TEXT, marital_status_display TEXT,
    race_code TEXT, race_display TEXT,
    ethnicity_code TEXT, ethnicity_display TEXT,
    language TEXT,
    street TEXT, city TEXT, state TEXT, postal_code TEXT, country TEXT,
    phone TEXT, email TEXT,
    provider_organization TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE TABLE IF NOT EXISTS patient_identifiers (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    root TEXT NOT NULL, extension TEXT NOT NULL,
    UNIQUE (root, extension)
);
CREATE TABLE IF NOT EXISTS patient_races (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    code TEXT, code_system TEXT, display TEXT,
    UNIQUE (patient_id, code, code_system)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE NOT NULL,
    attachment_id INTEGER NULL,
    source_path TEXT NULL,
    xdm_uri TEXT NULL,
    patient_id INTEGER NULL REFERENCES patients(id),
    kind TEXT NOT NULL, classified_by TEXT NOT NULL,
    template_ids TEXT NOT NULL,
    doc_id_root TEXT, doc_id_extension TEXT,
    loinc_code TEXT, code_display TEXT,
    title TEXT, effective_time TEXT,
    confidentiality TEXT, language TEXT,
    set_id_root TEXT, set_id_extension TEXT, version_number TEXT,
    custodian TEXT,
    body_media_type TEXT, body_reference TEXT, derived_sha256 TEXT, derived_size INTEGER,
    document_json TEXT NOT NULL,
    ingested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
);
CREATE INDEX IF NOT EXISTS documents_patient ON documents(patient_id);
CREATE INDEX IF NOT EXISTS documents_attachment ON documents(attachment_id);
CREATE TABLE IF NOT EXISTS document_participants (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    name TEXT, organization TEXT, id_root TEXT, id_extension TEXT,
    code TEXT, code_display TEXT, time TEXT,
    device_model TEXT, device_software TEXT
);
CREATE INDEX IF NOT EXISTS document_participants_document ON document_participants(document_id);
CREATE TABLE IF NOT EXISTS service_events (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    code TEXT, code_system TEXT, display TEXT, start_time TEXT, end_time TEXT
);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    parent_ordinal INTEGER,
    kind TEXT NOT NULL, matched_by TEXT NOT NULL,
    template_id TEXT, code TEXT, code_system TEXT, title TEXT, null_flavor TEXT,
    narrative TEXT
);
CREATE INDEX IF NOT EXISTS sections_document ON sections(document_id);
CREATE TABLE IF NOT EXISTS encounters (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    is_episode INTEGER NOT NULL,
    id_root TEXT, id_extension TEXT,
    code TEXT, code_system TEXT, display TEXT,
    start_time TEXT, end_time TEXT,
    location TEXT, responsible_party TEXT,
    discharge_disposition_code TEXT, discharge_disposition_display TEXT
);
CREATE INDEX IF NOT EXISTS encounters_patient ON encounters(patient_id);
CREATE TABLE IF NOT EXISTS encounter_diagnoses (
    id INTEGER PRIMARY KEY,
    encounter_id INTEGER NOT NULL REFERENCES encounters(id) ON DELETE CASCADE,
    code TEXT, code_system TEXT, display TEXT
);
CREATE TABLE IF NOT EXISTS problems (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    code TEXT, code_system TEXT, display TEXT,
    problem_type TEXT, concern_status TEXT, status TEXT,
    onset TEXT, resolution TEXT, negated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS problems_patient ON problems(patient_id);
CREATE TABLE IF NOT EXISTS medications (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    drug_code TEXT, drug_system TEXT, drug_display TEXT, drug_name TEXT,
    status TEXT, mood_code TEXT, start_time TEXT, end_time TEXT, frequency TEXT,
    dose_value TEXT, dose_unit TEXT, route_code TEXT, route_display TEXT,
    negated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS medications_patient ON medications(patient_id);
CREATE TABLE IF NOT EXISTS allergies (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    substance_code TEXT, substance_system TEXT, substance_display TEXT,
    allergy_type_code TEXT, allergy_type_display TEXT,
    concern_status TEXT, status TEXT,
    severity_code TEXT, severity_display TEXT,
    onset TEXT, resolution TEXT, negated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS allergies_patient ON allergies(patient_id);
CREATE TABLE IF NOT EXISTS allergy_reactions (
    id INTEGER PRIMARY KEY,
    allergy_id INTEGER NOT NULL REFERENCES allergies(id) ON DELETE CASCADE,
    code TEXT, code_system TEXT, display TEXT,
    severity_code TEXT, severity_display TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    panel_code TEXT, panel_system TEXT, panel_display TEXT, panel_time TEXT,
    code TEXT, code_system TEXT, display TEXT,
    time TEXT, status TEXT,
    value_type TEXT, value TEXT, value_num REAL, unit TEXT,
    value_code TEXT, value_display TEXT,
    ref_range_text TEXT, ref_low TEXT, ref_high TEXT, ref_unit TEXT,
    interpretation_code TEXT, interpretation_display TEXT
);
CREATE INDEX IF NOT EXISTS results_patient ON results(patient_id);
CREATE INDEX IF NOT EXISTS results_code ON results(code);
CREATE TABLE IF NOT EXISTS vital_signs (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    panel_time TEXT,
    code TEXT, code_system TEXT, display TEXT,
    time TEXT, status TEXT,
    value_type TEXT, value TEXT, value_num REAL, unit TEXT,
    interpretation_code TEXT
);
CREATE INDEX IF NOT EXISTS vital_signs_patient ON vital_signs(patient_id);
CREATE TABLE IF NOT EXISTS immunizations (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    vaccine_code TEXT, vaccine_system TEXT, vaccine_display TEXT,
    status TEXT, time TEXT, negated INTEGER NOT NULL,
    lot_number TEXT, manufacturer TEXT,
    route_code TEXT, route_display TEXT, dose_value TEXT, dose_unit TEXT,
    refusal_reason_code TEXT, refusal_reason_display TEXT
);
CREATE TABLE IF NOT EXISTS procedures (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    entry_type TEXT, mood_code TEXT,
    code TEXT, code_system TEXT, display TEXT,
    status TEXT, start_time TEXT, end_time TEXT,
    target_site_code TEXT, target_site_display TEXT,
    performer TEXT
);
CREATE TABLE IF NOT EXISTS social_history (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    observation_type TEXT NOT NULL,
    code TEXT, code_system TEXT, display TEXT,
    value TEXT, unit TEXT, value_code TEXT, value_display TEXT,
    status TEXT, start_time TEXT, end_time TEXT
);
CREATE TABLE IF NOT EXISTS plan_of_care (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    entry_type TEXT, mood_code TEXT,
    code TEXT, code_system TEXT, display TEXT,
    status TEXT, start_time TEXT, end_time TEXT
);
CREATE TABLE IF NOT EXISTS family_history (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    patient_id INTEGER REFERENCES patients(id),
    section_id INTEGER REFERENCES sections(id),
    relation_code TEXT, relation_display TEXT,
    relative_gender TEXT, relative_birth_time TEXT,
    condition_code TEXT, condition_system TEXT, condition_display TEXT,
    onset_age TEXT, onset_age_unit TEXT, cause_of_death INTEGER NOT NULL
);

CREATE VIEW IF NOT EXISTS v_patient_documents AS
SELECT p.id AS patient_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       p.birth_time,
       (SELECT group_concat(root || '^' || extension, ' ')
          FROM patient_identifiers i WHERE i.patient_id = p.id) AS identifiers,
       count(d.id) AS document_count,
       group_concat(d.id, ',') AS document_ids,
       min(d.effective_time) AS first_document_time,
       max(d.effective_time) AS last_document_time
FROM patients p LEFT JOIN documents d ON d.patient_id = p.id
GROUP BY p.id;

CREATE VIEW IF NOT EXISTS v_problems AS
SELECT pr.id AS problem_id, pr.patient_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       pr.code, pr.code_system, pr.display, pr.status, pr.concern_status,
       pr.onset, pr.resolution, pr.negated,
       pr.document_id, d.effective_time AS document_time, d.title AS document_title
FROM problems pr
JOIN documents d ON d.id = pr.document_id
LEFT JOIN patients p ON p.id = pr.patient_id;

CREATE VIEW IF NOT EXISTS v_medications AS
SELECT m.id AS medication_id, m.patient_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       coalesce(m.drug_name, m.drug_display) AS drug, m.drug_code, m.drug_system,
       m.status, m.start_time, m.end_time, m.dose_value, m.dose_unit, m.frequency, m.route_display,
       m.negated, m.document_id, d.effective_time AS document_time
FROM medications m
JOIN documents d ON d.id = m.document_id
LEFT JOIN patients p ON p.id = m.patient_id;

CREATE VIEW IF NOT EXISTS v_allergies AS
SELECT a.id AS allergy_id, a.patient_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       a.substance_code, a.substance_display, a.status, a.severity_display,
       (SELECT group_concat(coalesce(r.display, r.code), '; ')
          FROM allergy_reactions r WHERE r.allergy_id = a.id) AS reactions,
       a.onset, a.negated, a.document_id
FROM allergies a
LEFT JOIN patients p ON p.id = a.patient_id;

CREATE VIEW IF NOT EXISTS v_results AS
SELECT r.id AS result_id, r.patient_id,
       trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')) AS patient_name,
       r.panel_display, r.code, r.display,
       coalesce(r.time, r.panel_time) AS time,
       r.value, r.value_num, r.unit, r.value_display,
       r.ref_low, r.ref_high, r.ref_range_text, r.interpretation_code,
       r.document_id
FROM results r
LEFT JOIN patients p ON p.id = r.patient_id;
