//! C-CDA R2.1 template identifiers. Entry templates are compared by their last arc (the `x` of
//! `2.16.840.1.113883.10.20.22.4.x`), so each constant is that number, named as the
//! implementation guide names the template.

pub(super) const DOC_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.1.";
pub(super) const SECTION_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.2.";
pub(super) const ENTRY_TEMPLATE_PREFIX: &str = "2.16.840.1.113883.10.20.22.4.";
/// The Smoking Status template's OID as it was published, with a typo (".10.22.4.78", missing
/// ".20"); real documents, NIST's samples among them, carry it.
pub(super) const SMOKING_STATUS_TYPO_OID: &str = "2.16.840.1.113883.10.22.4.78";

pub(super) const RESULT_ORGANIZER: u32 = 1;
pub(super) const RESULT_OBSERVATION: u32 = 2;
pub(super) const PROBLEM_CONCERN_ACT: u32 = 3;
pub(super) const PROBLEM_OBSERVATION: u32 = 4;
pub(super) const PROBLEM_STATUS: u32 = 6;
pub(super) const ALLERGY_INTOLERANCE_OBSERVATION: u32 = 7;
pub(super) const SEVERITY_OBSERVATION: u32 = 8;
pub(super) const REACTION_OBSERVATION: u32 = 9;
pub(super) const PROCEDURE_ACTIVITY_ACT: u32 = 12;
pub(super) const PROCEDURE_ACTIVITY_OBSERVATION: u32 = 13;
pub(super) const PROCEDURE_ACTIVITY_PROCEDURE: u32 = 14;
pub(super) const MEDICATION_ACTIVITY: u32 = 16;
pub(super) const VITAL_SIGNS_ORGANIZER: u32 = 26;
pub(super) const VITAL_SIGN_OBSERVATION: u32 = 27;
pub(super) const ALLERGY_STATUS_OBSERVATION: u32 = 28;
pub(super) const ALLERGY_CONCERN_ACT: u32 = 30;
pub(super) const AGE_OBSERVATION: u32 = 31;
pub(super) const DISCHARGE_MEDICATION: u32 = 35;
pub(super) const SOCIAL_HISTORY_OBSERVATION: u32 = 38;
pub(super) const FAMILY_HISTORY_ORGANIZER: u32 = 45;
pub(super) const FAMILY_HISTORY_DEATH_OBSERVATION: u32 = 47;
pub(super) const ENCOUNTER_ACTIVITY: u32 = 49;
pub(super) const IMMUNIZATION_ACTIVITY: u32 = 52;
pub(super) const IMMUNIZATION_REFUSAL_REASON: u32 = 53;
pub(super) const SMOKING_STATUS: u32 = 78;
pub(super) const ENCOUNTER_DIAGNOSIS: u32 = 80;
pub(super) const TOBACCO_USE: u32 = 85;
/// Planned Act, Encounter, Procedure, Medication Activity, Supply, Observation (39-44) and
/// Planned Immunization Activity (120): the plan-of-care entries.
pub(super) const PLANNED: [u32; 7] = [39, 40, 41, 42, 43, 44, 120];
