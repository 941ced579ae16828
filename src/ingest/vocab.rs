//! Display names for the handful of codes that C-CDA documents use everywhere and often send
//! without a `displayName`: clinical statuses, severities, problem and allergy types, genders,
//! encounter classes, routes, discharge dispositions and result interpretations. A reader shown a
//! bare `55561003` cannot act on it; one shown "active" can.
//!
//! Deliberately small: these are value sets fixed by the C-CDA templates, not a terminology
//! server. Codes not listed keep whatever name the document gave them.

use super::model::systems::SNOMED_CT;
use super::model::Code;

const ADMINISTRATIVE_GENDER: &str = "2.16.840.1.113883.5.1";
const ACT_CODE: &str = "2.16.840.1.113883.5.4";
const INTERPRETATION: &str = "2.16.840.1.113883.5.83";
const NCI_THESAURUS: &str = "2.16.840.1.113883.3.26.1.1";
const DISCHARGE_DISPOSITION: &str = "2.16.840.1.113883.12.112";

/// The display name of `code` in `system`, when it is one of the common codes listed here. A
/// missing system is looked up in each list, since documents often omit `codeSystem` on these.
pub fn display(system: Option<&str>, code: &str) -> Option<&'static str> {
    let lists: &[(&str, &[(&str, &str)])] = &[
        (SNOMED_CT, SNOMED),
        (ADMINISTRATIVE_GENDER, GENDER),
        (ACT_CODE, ACT),
        (INTERPRETATION, INTERPRETATIONS),
        (NCI_THESAURUS, ROUTES),
        (DISCHARGE_DISPOSITION, DISPOSITIONS),
    ];
    lists
        .iter()
        .filter(|(s, _)| system.is_none_or(|sys| sys == *s))
        .find_map(|(_, list)| list.iter().find(|(c, _)| *c == code).map(|(_, d)| *d))
}

/// A coded value's name for a reader: its own display name or text, else the listed display name
/// of its code, else `None` (the caller decides how to say "not coded").
pub fn name_of(c: &Code, preferred: &[&str]) -> Option<String> {
    c.name(preferred)
        .or_else(|| listed_name(c))
        .map(str::to_owned)
}

/// The listed display name of the first of `c`'s codings that has one.
pub fn listed_name(c: &Code) -> Option<&'static str> {
    c.codings()
        .into_iter()
        .find_map(|x| display(x.code_system.as_deref(), x.code.as_deref()?))
}

const SNOMED: &[(&str, &str)] = &[
    // Problem, allergy and medication clinical status.
    ("55561003", "active"),
    ("73425007", "inactive"),
    ("413322009", "resolved"),
    ("7087005", "intermittent"),
    ("255227004", "recurrent"),
    ("277022003", "remission"),
    // Severity.
    ("255604002", "mild"),
    ("371923003", "mild to moderate"),
    ("6736007", "moderate"),
    ("371924009", "moderate to severe"),
    ("24484000", "severe"),
    ("399166001", "fatal"),
    // Problem types.
    ("55607006", "problem"),
    ("404684003", "finding"),
    ("282291009", "diagnosis"),
    ("64572001", "condition"),
    ("409586006", "complaint"),
    ("418799008", "symptom"),
    ("248536006", "functional limitation"),
    // Allergy and intolerance types.
    ("419511003", "propensity to adverse reactions to drug"),
    ("416098002", "drug allergy"),
    ("414285001", "food allergy"),
    ("419199007", "allergy to substance"),
    ("420134006", "propensity to adverse reactions"),
    ("418038007", "propensity to adverse reactions to substance"),
    ("418471000", "propensity to adverse reactions to food"),
    ("235719002", "food intolerance"),
    ("59037007", "drug intolerance"),
    // Smoking status.
    ("449868002", "current every day smoker"),
    ("428041000124106", "current some day smoker"),
    ("8517006", "former smoker"),
    ("266919005", "never smoker"),
    ("77176002", "smoker, current status unknown"),
    ("266927001", "unknown if ever smoked"),
];

const GENDER: &[(&str, &str)] = &[("F", "female"), ("M", "male"), ("UN", "undifferentiated")];

const ACT: &[(&str, &str)] = &[
    ("AMB", "ambulatory"),
    ("IMP", "inpatient"),
    ("EMER", "emergency"),
    ("ACUTE", "inpatient acute"),
    ("NONAC", "inpatient non-acute"),
    ("OBSENC", "observation"),
    ("PRENC", "pre-admission"),
    ("SS", "short stay"),
    ("VR", "virtual"),
    ("HH", "home health"),
    ("FLD", "field"),
];

const INTERPRETATIONS: &[(&str, &str)] = &[
    ("N", "normal"),
    ("A", "abnormal"),
    ("AA", "critically abnormal"),
    ("H", "high"),
    ("HH", "critically high"),
    ("HU", "very high"),
    ("L", "low"),
    ("LL", "critically low"),
    ("LU", "very low"),
    ("POS", "positive"),
    ("NEG", "negative"),
    ("IND", "indeterminate"),
    ("R", "resistant"),
    ("S", "susceptible"),
    ("I", "intermediate"),
];

const ROUTES: &[(&str, &str)] = &[
    ("C38288", "by mouth"),
    ("C38276", "intravenous"),
    ("C28161", "intramuscular"),
    ("C38299", "subcutaneous"),
    ("C38216", "inhaled"),
    ("C38304", "topical"),
    ("C38305", "transdermal"),
    ("C38300", "sublingual"),
    ("C38295", "rectal"),
    ("C38284", "nasal"),
    ("C38287", "ophthalmic"),
    ("C38192", "auricular (otic)"),
    ("C38313", "vaginal"),
    ("C38238", "intradermal"),
];

/// HL7 table 0112 (as used in `dischargeDispositionCode`).
const DISPOSITIONS: &[(&str, &str)] = &[
    ("01", "discharged to home or self care"),
    ("02", "discharged to a short-term general hospital"),
    ("03", "discharged to a skilled nursing facility"),
    ("04", "discharged to an intermediate care facility"),
    ("05", "discharged to another type of institution"),
    (
        "06",
        "discharged to home under care of a home health service",
    ),
    ("07", "left against medical advice"),
    ("09", "admitted as an inpatient"),
    ("20", "expired"),
    ("21", "discharged to court or law enforcement"),
    ("43", "discharged to a federal health care facility"),
    ("50", "discharged to hospice (home)"),
    ("51", "discharged to hospice (medical facility)"),
    ("61", "discharged to a swing bed"),
    ("62", "discharged to an inpatient rehabilitation facility"),
    ("63", "discharged to a long-term care hospital"),
    ("65", "discharged to a psychiatric hospital"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_codes_have_names_and_unknown_ones_do_not() {
        assert_eq!(display(Some(SNOMED_CT), "55561003"), Some("active"));
        assert_eq!(display(None, "6736007"), Some("moderate"));
        assert_eq!(display(Some(NCI_THESAURUS), "C38288"), Some("by mouth"));
        assert_eq!(display(Some("1.2.3"), "55561003"), None);
        assert_eq!(display(Some(SNOMED_CT), "999999"), None);
        let bare = Code {
            code: Some("24484000".into()),
            code_system: Some(SNOMED_CT.into()),
            ..Code::default()
        };
        assert_eq!(name_of(&bare, &[]).as_deref(), Some("severe"));
    }
}
