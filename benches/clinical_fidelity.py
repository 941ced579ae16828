#!/usr/bin/env python3
"""Patient identity and coded-data figures for issue 14, measured from outside directd.

Usage: benches/clinical_fidelity.py STORE.db

For every document `directd ingest` stored from a file, reads the file again with Python's own
XML parser (not directd's) and compares the patient it names in recordTarget (first name with
use L, else the first: given names and family; birth date) with the patient row the store links
that document to. Then counts entries without a code in the main clinical tables. Prints one
markdown table on stdout.
"""
import sqlite3
import sys
import xml.etree.ElementTree as ET

V3 = "{urn:hl7-org:v3}"


def stated_patient(path):
    """(given names, family, birth date YYYYMMDD) as the document states them, or None."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    patient = root.find(f"{V3}recordTarget/{V3}patientRole/{V3}patient")
    if patient is None:
        return None
    names = patient.findall(f"{V3}name")
    name = next((n for n in names if "L" in (n.get("use") or "").split()), names[0] if names else None)
    given = [] if name is None else [(g.text or "").strip() for g in name.findall(f"{V3}given")]
    family = None if name is None else name.find(f"{V3}family")
    birth = patient.find(f"{V3}birthTime")
    return (
        [g for g in given if g],
        (family.text or "").strip() if family is not None and family.text else "",
        (birth.get("value") or "")[:8] if birth is not None else "",
    )


def norm(s):
    return " ".join((s or "").split()).casefold()


def main(db):
    conn = sqlite3.connect(db)
    rows = conn.execute(
        """SELECT d.id, d.source_path, p.given, p.family, p.birth_time
           FROM documents d LEFT JOIN patients p ON p.id = d.patient_id
           WHERE d.source_path IS NOT NULL"""
    ).fetchall()
    own = other = unstated = 0
    mismatches = []
    for doc_id, path, given, family, birth in rows:
        stated = stated_patient(path)
        if stated is None or (not stated[0] and not stated[1]):
            unstated += 1
            continue
        s_given, s_family, s_birth = stated
        birth_digits = "".join(c for c in (birth or "") if c.isdigit())[:8]
        same = (
            norm(" ".join(s_given)) == norm(given)
            and norm(s_family) == norm(family)
            and (not s_birth or s_birth == birth_digits)
        )
        if same:
            own += 1
        else:
            other += 1
            mismatches.append((doc_id, path, stated, (given, family, birth)))
    tables = [
        ("problems", "code"),
        ("medications", "drug_code"),
        ("allergies", "substance_code"),
        ("results", "code"),
        ("vital_signs", "code"),
        ("immunizations", "vaccine_code"),
        ("procedures", "code"),
    ]
    print(f"| documents from files | {len(rows)} |")
    print("|---|---|")
    print(f"| shown with the patient the document names | {own} |")
    print(f"| shown with another patient | {other} |")
    print(f"| naming no patient (no recordTarget name) | {unstated} |")
    for table, column in tables:
        total, uncoded = conn.execute(
            f"SELECT count(*), sum({column} IS NULL) FROM {table}"
        ).fetchone()
        print(f"| {table}: entries without a code | {uncoded or 0} of {total} |")
    for m in mismatches[:10]:
        print(f"mismatch: {m}", file=sys.stderr)
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
