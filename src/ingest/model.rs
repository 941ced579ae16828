//! The extracted, serde-serialisable view of a C-CDA document. Field names follow the analyst
//! vocabulary (onset, resolution, dose) rather than the CDA XML paths, and every value is optional
//! because real documents null out nearly anything.
//!
//! Times are normalised from HL7 `TS` (`20240102143000-0500`) to ISO 8601 at the precision given
//! (`2024-01-02T14:30:00-05:00`, `2024-01`); a value that is not a valid `TS` is kept verbatim.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Carries only the US Realm Header (or nothing) and no recognisable LOINC type code.
    GenericCda,
    Ccd,
    HistoryAndPhysical,
    ConsultationNote,
    DiagnosticImagingReport,
    ProcedureNote,
    OperativeNote,
    DischargeSummary,
    ProgressNote,
    UnstructuredDocument,
    TransferSummary,
    ReferralNote,
    CarePlan,
}

/// How a document or section was recognised, so analysts can spot guesswork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    TemplateId,
    LoincCode,
    Body,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Medications,
    Immunizations,
    Results,
    VitalSigns,
    Problems,
    Allergies,
    Procedures,
    Assessment,
    AssessmentAndPlan,
    PlanOfTreatment,
    DischargeMedications,
    ReasonForVisit,
    ChiefComplaintAndReasonForVisit,
    FunctionalStatus,
    FamilyHistory,
    SocialHistory,
    Payers,
    PastMedicalHistory,
    AdvanceDirectives,
    Encounters,
    MedicalEquipment,
    DischargeDiagnosis,
    DischargeInstructions,
    AdmissionDiagnosis,
    Instructions,
    MentalStatus,
    Nutrition,
    HealthConcerns,
    Goals,
    Notes,
    CareTeams,
    ChiefComplaint,
    ReasonForReferral,
    HistoryOfPresentIllness,
    HospitalCourse,
    ReviewOfSystems,
    PhysicalExam,
    // Operative and procedure notes.
    PreoperativeDiagnosis,
    PostoperativeDiagnosis,
    PostprocedureDiagnosis,
    Anesthesia,
    Complications,
    ProcedureFindings,
    ProcedureDescription,
    ProcedureIndications,
    PlannedProcedure,
    ProcedureSpecimens,
    ProcedureImplants,
    EstimatedBloodLoss,
    SurgicalDrains,
    OperativeFluids,
    SurgicalProcedure,
    // Diagnostic imaging reports (sections coded in DICOM, `1.2.840.10008.2.16.4`).
    DicomObjectCatalog,
    ImagingFindings,
    ImagingImpression,
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateId {
    pub root: String,
    pub extension: Option<String>,
}

/// An `II`: `root` is the assigning authority OID (or a UUID when `extension` is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    pub root: Option<String>,
    pub extension: Option<String>,
    pub null_flavor: Option<String>,
}

/// A `CD`/`CE`/`CS` value. `original_text` is the literal text, when present inline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub code: Option<String>,
    pub code_system: Option<String>,
    pub code_system_name: Option<String>,
    pub display_name: Option<String>,
    pub original_text: Option<String>,
    pub null_flavor: Option<String>,
    #[serde(default)]
    pub translations: Vec<Code>,
}

/// Code system OIDs that decide which of a value's codings is *the* code.
pub mod systems {
    pub const LOINC: &str = "2.16.840.1.113883.6.1";
    pub const SNOMED_CT: &str = "2.16.840.1.113883.6.96";
    pub const ICD10_CM: &str = "2.16.840.1.113883.6.90";
    pub const ICD9_CM: &str = "2.16.840.1.113883.6.103";
    pub const RXNORM: &str = "2.16.840.1.113883.6.88";
    pub const UNII: &str = "2.16.840.1.113883.4.9";
    pub const CVX: &str = "2.16.840.1.113883.12.292";
    pub const CPT: &str = "2.16.840.1.113883.6.12";
    pub const ICD10_PCS: &str = "2.16.840.1.113883.6.4";

    /// In order of preference, per kind of coded thing.
    pub const PROBLEM: &[&str] = &[SNOMED_CT, ICD10_CM, ICD9_CM];
    pub const MEDICATION: &[&str] = &[RXNORM];
    pub const SUBSTANCE: &[&str] = &[RXNORM, UNII, SNOMED_CT];
    pub const RESULT: &[&str] = &[LOINC];
    pub const VACCINE: &[&str] = &[CVX];
    pub const PROCEDURE: &[&str] = &[SNOMED_CT, CPT, ICD10_PCS, LOINC];
    /// Anything else: take the primary coding, else the first translation that has a code.
    pub const ANY: &[&str] = &[];
}

impl Code {
    /// The primary coding then its translations (nested ones too), those that carry a code.
    pub fn codings(&self) -> Vec<&Code> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(c) = stack.pop() {
            if c.code.as_deref().is_some_and(|x| !x.trim().is_empty()) {
                out.push(c);
            }
            stack.extend(c.translations.iter().rev());
        }
        out
    }

    /// The coding that belongs in the main column: the first, by `preferred` system order, of
    /// the primary code and its translations; else the primary when it has a code; else the
    /// first translation that has one. Senders often put a local code (or a nullFlavor) first
    /// and the standard code only in a `<translation>`.
    pub fn standard(&self, preferred: &[&str]) -> Option<&Code> {
        let all = self.codings();
        preferred
            .iter()
            .find_map(|sys| {
                all.iter()
                    .find(|c| c.code_system.as_deref() == Some(*sys))
                    .copied()
            })
            .or_else(|| all.first().copied())
    }

    /// What to call it: the chosen coding's display name, else the primary's display name or
    /// original text, else any display name of a translation.
    pub fn name(&self, preferred: &[&str]) -> Option<&str> {
        fn non_empty(s: &Option<String>) -> Option<&str> {
            s.as_deref().filter(|s| !s.trim().is_empty())
        }
        self.standard(preferred)
            .and_then(|c| non_empty(&c.display_name))
            .or_else(|| non_empty(&self.display_name))
            .or_else(|| non_empty(&self.original_text))
            .or_else(|| {
                self.codings()
                    .into_iter()
                    .find_map(|c| non_empty(&c.display_name))
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    pub name_use: Option<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub given: Vec<String>,
    pub family: Option<String>,
    #[serde(default)]
    pub suffixes: Vec<String>,
    /// Unstructured name text (e.g. `<name>Dr Ann Example</name>`).
    pub text: Option<String>,
    pub null_flavor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub address_use: Option<String>,
    #[serde(default)]
    pub street: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub null_flavor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telecom {
    pub telecom_use: Option<String>,
    pub value: Option<String>,
    pub null_flavor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    #[serde(default)]
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    pub code: Option<String>,
    pub preferred: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    pub relationship: Option<Code>,
    #[serde(default)]
    pub names: Vec<PersonName>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    #[serde(default)]
    pub names: Vec<PersonName>,
    pub gender: Option<Code>,
    pub birth_time: Option<String>,
    pub marital_status: Option<Code>,
    /// `raceCode` first, then any `sdtc:raceCode` (the extra races of a multi-race patient).
    #[serde(default)]
    pub races: Vec<Code>,
    #[serde(default)]
    pub ethnicities: Vec<Code>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
    #[serde(default)]
    pub guardians: Vec<Guardian>,
    pub provider_organization: Option<Organization>,
}

/// Anyone acting on the document or encounter: author, authenticator, performer, recipient...
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// `typeCode` of the participation (e.g. `PRF`), when given.
    pub type_code: Option<String>,
    pub function_code: Option<Code>,
    pub time: Option<String>,
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    #[serde(default)]
    pub names: Vec<PersonName>,
    /// Set for authoring devices (EHR systems) instead of a person.
    pub device: Option<Device>,
    pub organization: Option<Organization>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub telecoms: Vec<Telecom>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub manufacturer_model: Option<String>,
    pub software: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedDocument {
    pub type_code: Option<String>,
    pub id: Option<Identifier>,
    pub set_id: Option<Identifier>,
    pub version_number: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub name: Option<String>,
    pub address: Option<Address>,
}

/// `componentOf/encompassingEncounter`: the episode of care the document belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncompassingEncounter {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub location: Option<Location>,
    pub responsible_party: Option<Participant>,
    #[serde(default)]
    pub participants: Vec<Participant>,
    pub discharge_disposition: Option<Code>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub code: Option<Code>,
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(default)]
    pub performers: Vec<Participant>,
}

/// A binary produced from the document itself (an inline base64 `nonXMLBody`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedBinary {
    pub media_type: Option<String>,
    pub size: u64,
    pub sha256: String,
    /// Serialised as base64 so the expected-JSON fixtures stay text.
    #[serde(with = "b64")]
    #[serde(default)]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonXmlBody {
    pub media_type: Option<String>,
    pub representation: Option<String>,
    /// `<reference value="..."/>`: name of a sibling attachment holding the content.
    pub reference: Option<String>,
    pub derived: Option<DerivedBinary>,
    /// Plain inline text (representation TXT).
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub kind: SectionKind,
    pub matched_by: MatchedBy,
    #[serde(default)]
    pub template_ids: Vec<TemplateId>,
    pub code: Option<Code>,
    pub title: Option<String>,
    pub null_flavor: Option<String>,
    /// Narrative `<text>` flattened: table cells tab-separated, rows and blocks on new lines.
    pub text: Option<String>,
    /// Index in `Document::sections` of the enclosing section, for nested subsections.
    pub parent: Option<usize>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// A quantity, code, or string value of an observation (`value xsi:type=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    pub value_type: Option<String>,
    pub value: Option<String>,
    pub unit: Option<String>,
    pub code: Option<Code>,
    pub text: Option<String>,
    pub null_flavor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRange {
    pub text: Option<String>,
    pub low: Option<String>,
    pub high: Option<String>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub status: Option<String>,
    pub time: Option<String>,
    pub value: Option<Value>,
    #[serde(default)]
    pub interpretations: Vec<Code>,
    pub reference_range: Option<ReferenceRange>,
}

/// A result or vital-signs organizer; a bare observation outside an organizer gets a panel with
/// no code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panel {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub status: Option<String>,
    pub time: Option<String>,
    #[serde(default)]
    pub observations: Vec<Observation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    /// statusCode of the concern act (active / completed / suspended / aborted).
    pub concern_status: Option<String>,
    /// The problem itself (observation `value`, e.g. SNOMED CT or ICD-10).
    pub code: Option<Code>,
    /// The observation `code`: problem, diagnosis, complaint, symptom...
    pub problem_type: Option<Code>,
    /// Clinical status: from a Problem Status observation (R1.1) when present.
    pub status: Option<String>,
    pub onset: Option<String>,
    pub resolution: Option<String>,
    pub negated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Medication {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub mood_code: Option<String>,
    pub status: Option<String>,
    pub negated: bool,
    pub drug: Option<Code>,
    pub drug_name: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// Human-readable frequency from a `PIVL_TS`/`EIVL_TS` (e.g. `every 12 h`).
    pub frequency: Option<String>,
    pub dose_value: Option<String>,
    pub dose_unit: Option<String>,
    pub route: Option<Code>,
    pub form: Option<Code>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub code: Option<Code>,
    pub severity: Option<Code>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allergy {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub concern_status: Option<String>,
    pub allergy_type: Option<Code>,
    pub substance: Option<Code>,
    pub status: Option<String>,
    pub onset: Option<String>,
    pub resolution: Option<String>,
    pub severity: Option<Code>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    pub negated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Immunization {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub status: Option<String>,
    /// `negationInd="true"`: the vaccine was not given.
    pub negated: bool,
    pub time: Option<String>,
    pub vaccine: Option<Code>,
    pub lot_number: Option<String>,
    pub manufacturer: Option<String>,
    pub route: Option<Code>,
    pub dose_value: Option<String>,
    pub dose_unit: Option<String>,
    pub refusal_reason: Option<Code>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    /// CDA class of the entry: procedure, observation or act.
    pub entry_type: String,
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub mood_code: Option<String>,
    pub code: Option<Code>,
    pub status: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub target_site: Option<Code>,
    #[serde(default)]
    pub performers: Vec<Participant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encounter {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub status: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub performers: Vec<Participant>,
    /// Encounter Diagnosis entries (the problem codes).
    #[serde(default)]
    pub diagnoses: Vec<Code>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialHistory {
    /// `smoking_status`, `tobacco_use` or `observation`.
    pub observation_type: String,
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub code: Option<Code>,
    pub status: Option<String>,
    pub value: Option<Value>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// CDA class of the planned entry: act, encounter, observation, procedure,
    /// substance_administration, supply.
    pub entry_type: String,
    pub mood_code: Option<String>,
    #[serde(default)]
    pub ids: Vec<Identifier>,
    /// What is planned: the act code, or the drug/vaccine for planned medications.
    pub code: Option<Code>,
    pub status: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCondition {
    pub code: Option<Code>,
    pub onset_age: Option<String>,
    pub onset_age_unit: Option<String>,
    /// A "cause of death" entry relationship is present.
    pub cause_of_death: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyHistory {
    #[serde(default)]
    pub ids: Vec<Identifier>,
    pub relation: Option<Code>,
    pub gender: Option<Code>,
    pub birth_time: Option<String>,
    #[serde(default)]
    pub conditions: Vec<FamilyCondition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Problem(Problem),
    Medication(Medication),
    Allergy(Allergy),
    Result(Panel),
    VitalSigns(Panel),
    Immunization(Immunization),
    Procedure(Procedure),
    Encounter(Encounter),
    SocialHistory(SocialHistory),
    PlanOfCare(PlannedItem),
    FamilyHistory(FamilyHistory),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Hex SHA-256 of the exact input bytes: the idempotency key in the store.
    pub sha256: String,
    pub kind: DocumentKind,
    pub classified_by: MatchedBy,
    #[serde(default)]
    pub template_ids: Vec<TemplateId>,
    pub id: Option<Identifier>,
    pub code: Option<Code>,
    pub title: Option<String>,
    pub effective_time: Option<String>,
    pub confidentiality: Option<String>,
    pub language: Option<String>,
    pub set_id: Option<Identifier>,
    pub version_number: Option<String>,
    #[serde(default)]
    pub related_documents: Vec<RelatedDocument>,
    pub patient: Option<Patient>,
    #[serde(default)]
    pub authors: Vec<Participant>,
    pub custodian: Option<Organization>,
    pub legal_authenticator: Option<Participant>,
    #[serde(default)]
    pub information_recipients: Vec<Participant>,
    pub encompassing_encounter: Option<EncompassingEncounter>,
    #[serde(default)]
    pub service_events: Vec<ServiceEvent>,
    #[serde(default)]
    pub sections: Vec<Section>,
    pub non_xml_body: Option<NonXmlBody>,
}

mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if bytes.is_empty() {
            return s.serialize_str("");
        }
        s.serialize_str(&openssl::base64::encode_block(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(Vec::new());
        }
        openssl::base64::decode_block(&text).map_err(serde::de::Error::custom)
    }
}
