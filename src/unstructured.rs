//! Writes a C-CDA R2.1 Unstructured Document: a US Realm Header around a `nonXMLBody` holding a
//! file (a lab's or imaging centre's PDF result) as base64, hydrated with the patient's
//! demographics so a receiving EHR can match the patient. directd's own ingestion reads what this
//! writes (tested both ways).
//!
//! Written by hand on `quick_xml`'s escaping: the document is one fixed shape with a dozen
//! optional elements, which a template states more plainly than an XML writer API would.

use std::fmt::Write;

use quick_xml::escape::escape;
use thiserror::Error;

/// LOINC document types an Unstructured Document commonly carries, with their display names.
pub const DOCUMENT_TYPES: &[(&str, &str)] = &[
    ("11502-2", "Laboratory report"),
    ("18748-4", "Diagnostic imaging study"),
    ("11488-4", "Consult note"),
    ("18842-5", "Discharge summary"),
    ("34117-2", "History and physical note"),
    ("11506-3", "Progress note"),
    ("57133-1", "Referral note"),
    ("34133-9", "Summary of episode note"),
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UnstructuredError {
    #[error("patient name {0:?}: give it as \"Given Family\" or \"Family, Given\"")]
    Name(String),
    #[error("birth date {0:?}: give it as YYYY-MM-DD")]
    BirthDate(String),
    #[error("gender {0:?}: give F, M or UN (female, male, unknown)")]
    Gender(String),
    #[error("document type {0:?} is not one directd knows ({known}); give --title as well", known = known_types())]
    DocumentType(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

fn known_types() -> String {
    DOCUMENT_TYPES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The patient as the sender states them; everything past name, birth date and gender optional.
#[derive(Debug, Clone, Default)]
pub struct PatientDemographics {
    pub given: Vec<String>,
    pub family: String,
    /// HL7 TS date, `YYYYMMDD`.
    pub birth_date: String,
    /// HL7 AdministrativeGender: `F`, `M` or `UN`.
    pub gender: String,
    /// The patient's identifier (e.g. the MRN on the order) and its assigning authority OID.
    pub id: Option<(String, String)>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
    /// HL7 MaritalStatus code (`M`, `S`, `D`, `W`...).
    pub marital_status: Option<String>,
    /// CDC Race & Ethnicity codes (`2106-3`, `2135-2`...).
    pub race: Option<String>,
    pub ethnicity: Option<String>,
    /// BCP 47 language (`en`, `es`...).
    pub language: Option<String>,
}

impl PatientDemographics {
    /// Reads "Given Middle Family" or "Family, Given Middle", a birth date as YYYY-MM-DD (or
    /// YYYYMMDD) and a gender as F/M/UN (or female/male/unknown).
    pub fn new(name: &str, birth_date: &str, gender: &str) -> Result<Self, UnstructuredError> {
        let (given, family) = split_name(name)?;
        Ok(PatientDemographics {
            given,
            family,
            birth_date: hl7_date(birth_date)?,
            gender: hl7_gender(gender)?,
            ..PatientDemographics::default()
        })
    }
}

/// Who wrote and who keeps the document: the sending organisation.
#[derive(Debug, Clone, Default)]
pub struct Author {
    /// The organisation's name (lab, imaging centre, practice).
    pub organization: String,
    /// The sender's Direct address, written as the author's and custodian's `mailto:` telecom.
    pub direct_address: String,
    /// A clinician's name, when the result is signed by one.
    pub person: Option<String>,
    /// NPI of the author (person or organisation), when known.
    pub npi: Option<String>,
}

/// What to wrap: the file, its media type, the LOINC document type and title.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub data: &'a [u8],
    pub media_type: &'a str,
    pub loinc: &'a str,
    pub title: Option<&'a str>,
}

const HL7_GENDER: &str = "2.16.840.1.113883.5.1";
const HL7_MARITAL: &str = "2.16.840.1.113883.5.2";
const CDC_RACE: &str = "2.16.840.1.113883.6.238";
const LOINC: &str = "2.16.840.1.113883.6.1";
const NPI: &str = "2.16.840.1.113883.4.6";
const US_REALM_HEADER: &str = "2.16.840.1.113883.10.20.22.1.1";
const UNSTRUCTURED_DOCUMENT: &str = "2.16.840.1.113883.10.20.22.1.10";

fn split_name(name: &str) -> Result<(Vec<String>, String), UnstructuredError> {
    let bad = || UnstructuredError::Name(name.to_string());
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
    let (given, family) = match name.split_once(',') {
        Some((family, given)) => (words(given), family.trim().to_string()),
        None => {
            let mut all = words(name);
            let family = all.pop().ok_or_else(bad)?;
            (all, family)
        }
    };
    if given.is_empty() || family.is_empty() {
        return Err(bad());
    }
    Ok((given, family))
}

fn hl7_date(date: &str) -> Result<String, UnstructuredError> {
    let bad = || UnstructuredError::BirthDate(date.to_string());
    let digits: String = date.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (month, day) = (
        digits[4..6].parse::<u32>().map_err(|_| bad())?,
        digits[6..8].parse::<u32>().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(digits)
}

fn hl7_gender(gender: &str) -> Result<String, UnstructuredError> {
    match gender.trim().to_ascii_lowercase().as_str() {
        "f" | "female" => Ok("F".into()),
        "m" | "male" => Ok("M".into()),
        "un" | "u" | "unknown" | "undifferentiated" => Ok("UN".into()),
        _ => Err(UnstructuredError::Gender(gender.to_string())),
    }
}

fn gender_display(code: &str) -> &'static str {
    match code {
        "F" => "Female",
        "M" => "Male",
        _ => "Undifferentiated",
    }
}

/// A version 4 UUID from 16 random bytes, as CDA document ids commonly are.
fn uuid() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        // Uniqueness matters here, not secrecy: the clock and the pid are enough then.
        let h = openssl::sha::sha256(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        );
        b.copy_from_slice(&h[..16]);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::util::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `now` as an HL7 TS with its zone: `20261202014000+0000`.
fn hl7_now(now: std::time::SystemTime) -> String {
    let digits: String = crate::timefmt::rfc3339(now)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{digits}+0000")
}

fn x(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s)
}

/// The Unstructured Document as UTF-8 XML.
pub fn build(
    patient: &PatientDemographics,
    author: &Author,
    content: &Content<'_>,
    now: std::time::SystemTime,
) -> Result<Vec<u8>, UnstructuredError> {
    if patient.family.trim().is_empty() {
        return Err(UnstructuredError::Empty("the patient's family name"));
    }
    if author.organization.trim().is_empty() {
        return Err(UnstructuredError::Empty("the organisation"));
    }
    let display = DOCUMENT_TYPES
        .iter()
        .find(|(c, _)| *c == content.loinc)
        .map(|(_, d)| *d);
    let title = match (content.title, display) {
        (Some(t), _) if !t.trim().is_empty() => t.to_string(),
        (_, Some(d)) => d.to_string(),
        _ => return Err(UnstructuredError::DocumentType(content.loinc.to_string())),
    };
    let time = hl7_now(now);
    let doc_id = uuid();
    let mut s = String::with_capacity(content.data.len() * 4 / 3 + 4096);
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sdtc="urn:hl7-org:sdtc">
  <realmCode code="US"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="{US_REALM_HEADER}" extension="2015-08-01"/>
  <templateId root="{US_REALM_HEADER}"/>
  <templateId root="{UNSTRUCTURED_DOCUMENT}" extension="2015-08-01"/>
  <templateId root="{UNSTRUCTURED_DOCUMENT}"/>
  <id root="{doc_id}"/>
  <code code="{loinc}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{display}"/>
  <title>{title}</title>
  <effectiveTime value="{time}"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="en-US"/>
  <setId root="{doc_id}"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole>
"#,
        loinc = x(content.loinc),
        display = x(display.unwrap_or(&title)),
        title = x(&title),
    );
    match &patient.id {
        Some((ext, root)) => {
            let _ = writeln!(
                s,
                r#"      <id root="{}" extension="{}"/>"#,
                x(root),
                x(ext)
            );
        }
        None => s.push_str("      <id nullFlavor=\"NI\"/>\n"),
    }
    address(
        &mut s,
        "      ",
        Some("HP"),
        &patient.street,
        &patient.city,
        &patient.state,
        &patient.postal_code,
    );
    match &patient.phone {
        Some(p) => {
            let _ = writeln!(s, r#"      <telecom use="HP" value="tel:{}"/>"#, x(p));
        }
        None => s.push_str("      <telecom nullFlavor=\"UNK\"/>\n"),
    }
    s.push_str("      <patient>\n        <name use=\"L\">\n");
    for g in &patient.given {
        let _ = writeln!(s, "          <given>{}</given>", x(g));
    }
    let _ = write!(
        s,
        r#"          <family>{family}</family>
        </name>
        <administrativeGenderCode code="{g}" codeSystem="{HL7_GENDER}" displayName="{gd}"/>
        <birthTime value="{birth}"/>
"#,
        family = x(&patient.family),
        g = x(&patient.gender),
        gd = gender_display(&patient.gender),
        birth = x(&patient.birth_date),
    );
    match &patient.marital_status {
        Some(m) => {
            let _ = writeln!(
                s,
                r#"        <maritalStatusCode code="{}" codeSystem="{HL7_MARITAL}"/>"#,
                x(m)
            );
        }
        None => s.push_str("        <maritalStatusCode nullFlavor=\"UNK\"/>\n"),
    }
    for (element, value) in [
        ("raceCode", &patient.race),
        ("ethnicGroupCode", &patient.ethnicity),
    ] {
        match value {
            Some(c) => {
                let _ = writeln!(
                    s,
                    r#"        <{element} code="{}" codeSystem="{CDC_RACE}"/>"#,
                    x(c)
                );
            }
            None => {
                let _ = writeln!(s, r#"        <{element} nullFlavor="UNK"/>"#);
            }
        }
    }
    if let Some(lang) = &patient.language {
        let _ = writeln!(
            s,
            "        <languageCommunication>\n          <languageCode code=\"{}\"/>\n        </languageCommunication>",
            x(lang)
        );
    }
    s.push_str("      </patient>\n    </patientRole>\n  </recordTarget>\n");

    let _ = write!(
        s,
        "  <author>\n    <time value=\"{time}\"/>\n    <assignedAuthor>\n"
    );
    author_id(&mut s, "      ", author);
    address(&mut s, "      ", None, &None, &None, &None, &None);
    let _ = writeln!(
        s,
        r#"      <telecom use="WP" value="mailto:{}"/>"#,
        x(&author.direct_address)
    );
    if let Some(person) = &author.person {
        let _ = writeln!(
            s,
            "      <assignedPerson>\n        <name>{}</name>\n      </assignedPerson>",
            x(person)
        );
    }
    let _ = write!(
        s,
        "      <representedOrganization>\n        <name>{org}</name>\n      </representedOrganization>\n    </assignedAuthor>\n  </author>\n",
        org = x(&author.organization)
    );
    s.push_str(
        "  <custodian>\n    <assignedCustodian>\n      <representedCustodianOrganization>\n",
    );
    author_id(&mut s, "        ", author);
    let _ = writeln!(s, "        <name>{}</name>", x(&author.organization));
    let _ = writeln!(
        s,
        r#"        <telecom use="WP" value="mailto:{}"/>"#,
        x(&author.direct_address)
    );
    address(&mut s, "        ", None, &None, &None, &None, &None);
    s.push_str(
        "      </representedCustodianOrganization>\n    </assignedCustodian>\n  </custodian>\n",
    );
    let _ = write!(
        s,
        "  <component>\n    <nonXMLBody>\n      <text mediaType=\"{}\" representation=\"B64\">\n",
        x(content.media_type)
    );
    // Lines of 76, as MIME does; readers drop the whitespace before decoding.
    let b64 = crate::mime::base64_lines(content.data);
    s.push_str(&String::from_utf8_lossy(&b64).replace("\r\n", "\n"));
    s.push_str("      </text>\n    </nonXMLBody>\n  </component>\n</ClinicalDocument>\n");
    Ok(s.into_bytes())
}

fn author_id(s: &mut String, indent: &str, author: &Author) {
    match &author.npi {
        Some(npi) => {
            let _ = writeln!(s, r#"{indent}<id root="{NPI}" extension="{}"/>"#, x(npi));
        }
        None => {
            let _ = writeln!(s, r#"{indent}<id nullFlavor="UNK"/>"#);
        }
    }
}

/// An `<addr>`; the US Realm Header requires one, so an unknown one is `nullFlavor="UNK"`.
fn address(
    s: &mut String,
    indent: &str,
    used: Option<&str>,
    street: &Option<String>,
    city: &Option<String>,
    state: &Option<String>,
    postal: &Option<String>,
) {
    if street.is_none() && city.is_none() && state.is_none() && postal.is_none() {
        let _ = writeln!(s, r#"{indent}<addr nullFlavor="UNK"/>"#);
        return;
    }
    let _ = match used {
        Some(u) => writeln!(s, r#"{indent}<addr use="{u}">"#),
        None => writeln!(s, "{indent}<addr>"),
    };
    for (element, value) in [
        ("streetAddressLine", street),
        ("city", city),
        ("state", state),
        ("postalCode", postal),
    ] {
        if let Some(v) = value {
            let _ = writeln!(s, "{indent}  <{element}>{}</{element}>", x(v));
        }
    }
    let _ = writeln!(s, "{indent}  <country>US</country>\n{indent}</addr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dates_and_genders_are_read_or_refused_with_the_form_to_use() {
        let p = PatientDemographics::new("Ann Marie Example", "1970-04-03", "female").unwrap();
        assert_eq!(
            (p.given, p.family.as_str()),
            (vec!["Ann".to_string(), "Marie".into()], "Example")
        );
        assert_eq!(
            (p.birth_date.as_str(), p.gender.as_str()),
            ("19700403", "F")
        );
        let p = PatientDemographics::new("Example-Smith, Ann", "19700403", "M").unwrap();
        assert_eq!(
            (p.given, p.family.as_str()),
            (vec!["Ann".to_string()], "Example-Smith")
        );
        assert!(matches!(
            PatientDemographics::new("Cher", "1970-04-03", "F"),
            Err(UnstructuredError::Name(_))
        ));
        assert!(matches!(
            PatientDemographics::new("A B", "1970-13-03", "F"),
            Err(UnstructuredError::BirthDate(_))
        ));
        assert!(matches!(
            PatientDemographics::new("A B", "70-04-03", "F"),
            Err(UnstructuredError::BirthDate(_))
        ));
        assert!(matches!(
            PatientDemographics::new("A B", "1970-04-03", "X"),
            Err(UnstructuredError::Gender(_))
        ));
    }

    #[test]
    fn an_unknown_document_type_needs_a_title() {
        let p = PatientDemographics::new("Ann Example", "1970-04-03", "F").unwrap();
        let a = Author {
            organization: "Lab".into(),
            direct_address: "lab@d.example".into(),
            ..Author::default()
        };
        let c = |loinc, title| Content {
            data: b"%PDF-1.4",
            media_type: "application/pdf",
            loinc,
            title,
        };
        let now = std::time::SystemTime::now();
        assert!(matches!(
            build(&p, &a, &c("99999-9", None), now),
            Err(UnstructuredError::DocumentType(_))
        ));
        let xml =
            String::from_utf8(build(&p, &a, &c("99999-9", Some("Sleep study")), now).unwrap())
                .unwrap();
        assert!(xml.contains("<title>Sleep study</title>"), "{xml}");
    }

    #[test]
    fn markup_in_values_is_escaped() {
        let mut p = PatientDemographics::new("Ann <b>Example</b>", "1970-04-03", "F").unwrap();
        p.city = Some("A&B \"town\"".into());
        let a = Author {
            organization: "Lab & Co".into(),
            direct_address: "lab@d.example".into(),
            ..Author::default()
        };
        let c = Content {
            data: b"x",
            media_type: "application/pdf",
            loinc: "11502-2",
            title: None,
        };
        let xml =
            String::from_utf8(build(&p, &a, &c, std::time::SystemTime::now()).unwrap()).unwrap();
        assert!(
            !xml.contains("<b>") && xml.contains("&lt;b&gt;Example&lt;/b&gt;"),
            "{xml}"
        );
        assert!(xml.contains("A&amp;B &quot;town&quot;") && xml.contains("Lab &amp; Co"));
    }
}
