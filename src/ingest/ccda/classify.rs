//! Document and section kinds: template ids first, then LOINC (or DICOM) codes.

use super::templates::{DOC_TEMPLATE_PREFIX, SECTION_TEMPLATE_PREFIX};
use super::LOINC;
use crate::ingest::model::*;
pub(super) fn classify_document(doc: &mut Document) {
    let by_template = doc.template_ids.iter().find_map(|t| {
        if t.root == "2.16.840.1.113883.10.20.1" {
            return Some(DocumentKind::Ccd);
        }
        let n = t.root.strip_prefix(DOC_TEMPLATE_PREFIX)?;
        Some(match n {
            "2" => DocumentKind::Ccd,
            "3" => DocumentKind::HistoryAndPhysical,
            "4" => DocumentKind::ConsultationNote,
            "5" => DocumentKind::DiagnosticImagingReport,
            "6" => DocumentKind::ProcedureNote,
            "7" => DocumentKind::OperativeNote,
            "8" => DocumentKind::DischargeSummary,
            "9" => DocumentKind::ProgressNote,
            "10" => DocumentKind::UnstructuredDocument,
            "13" => DocumentKind::TransferSummary,
            "14" => DocumentKind::ReferralNote,
            "15" => DocumentKind::CarePlan,
            _ => return None,
        })
    });
    if let Some(kind) = by_template {
        doc.kind = kind;
        doc.classified_by = MatchedBy::TemplateId;
        return;
    }
    let by_code = doc
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref().is_none_or(|s| s == LOINC))
        .and_then(|c| c.code.as_deref())
        .and_then(|c| {
            Some(match c {
                "34133-9" => DocumentKind::Ccd,
                "34117-2" => DocumentKind::HistoryAndPhysical,
                "11488-4" => DocumentKind::ConsultationNote,
                "18748-4" => DocumentKind::DiagnosticImagingReport,
                "28570-0" => DocumentKind::ProcedureNote,
                "11504-8" => DocumentKind::OperativeNote,
                "18842-5" | "11490-0" => DocumentKind::DischargeSummary,
                "11506-3" => DocumentKind::ProgressNote,
                "18761-7" => DocumentKind::TransferSummary,
                "57133-1" => DocumentKind::ReferralNote,
                "52521-2" => DocumentKind::CarePlan,
                _ => return None,
            })
        });
    if let Some(kind) = by_code {
        doc.kind = kind;
        doc.classified_by = MatchedBy::LoincCode;
    } else if doc.non_xml_body.is_some() {
        doc.kind = DocumentKind::UnstructuredDocument;
        doc.classified_by = MatchedBy::Body;
    }
}

fn section_kind_by_template(root: &str) -> Option<SectionKind> {
    use SectionKind as K;
    if let Some(rest) = root.strip_prefix(SECTION_TEMPLATE_PREFIX) {
        // "N.1" is the entries-required variant of section N.
        let n = rest.strip_suffix(".1").unwrap_or(rest);
        return Some(match n {
            "1" => K::Medications,
            "2" => K::Immunizations,
            "3" => K::Results,
            "4" => K::VitalSigns,
            "5" => K::Problems,
            "6" => K::Allergies,
            "7" => K::Procedures,
            "8" => K::Assessment,
            "9" => K::AssessmentAndPlan,
            "10" => K::PlanOfTreatment,
            "11" => K::DischargeMedications,
            "12" => K::ReasonForVisit,
            "13" => K::ChiefComplaintAndReasonForVisit,
            "14" => K::FunctionalStatus,
            "15" => K::FamilyHistory,
            "17" => K::SocialHistory,
            "18" => K::Payers,
            "20" => K::PastMedicalHistory,
            "21" => K::AdvanceDirectives,
            "22" => K::Encounters,
            "23" => K::MedicalEquipment,
            "24" => K::DischargeDiagnosis,
            "41" => K::DischargeInstructions,
            "43" => K::AdmissionDiagnosis,
            "45" => K::Instructions,
            "56" => K::MentalStatus,
            "57" => K::Nutrition,
            "58" => K::HealthConcerns,
            "60" => K::Goals,
            "65" => K::Notes,
            "500" => K::CareTeams,
            "25" => K::Anesthesia,
            "27" => K::ProcedureDescription,
            "28" => K::ProcedureFindings,
            "29" => K::ProcedureIndications,
            "30" => K::PlannedProcedure,
            "31" => K::ProcedureSpecimens,
            "34" => K::PreoperativeDiagnosis,
            "35" => K::PostoperativeDiagnosis,
            "36" => K::PostprocedureDiagnosis,
            "37" => K::Complications,
            "40" => K::ProcedureImplants,
            _ => return None,
        });
    }
    Some(match root {
        "1.3.6.1.4.1.19376.1.5.3.1.1.13.2.1" => K::ChiefComplaint,
        "1.3.6.1.4.1.19376.1.5.3.1.3.1" => K::ReasonForReferral,
        "1.3.6.1.4.1.19376.1.5.3.1.3.4" => K::HistoryOfPresentIllness,
        "1.3.6.1.4.1.19376.1.5.3.1.3.5" => K::HospitalCourse,
        "1.3.6.1.4.1.19376.1.5.3.1.3.18" => K::ReviewOfSystems,
        "2.16.840.1.113883.10.20.2.10" => K::PhysicalExam,
        "2.16.840.1.113883.10.20.18.2.9" => K::EstimatedBloodLoss,
        "2.16.840.1.113883.10.20.7.12" => K::OperativeFluids,
        "2.16.840.1.113883.10.20.7.13" => K::SurgicalDrains,
        "2.16.840.1.113883.10.20.7.14" => K::SurgicalProcedure,
        "2.16.840.1.113883.10.20.6.1.1" => K::DicomObjectCatalog,
        "2.16.840.1.113883.10.20.6.1.2" => K::ImagingFindings,
        _ => return None,
    })
}

fn section_kind_by_loinc(code: &str) -> Option<SectionKind> {
    use SectionKind as K;
    Some(match code {
        "10160-0" => K::Medications,
        "11369-6" => K::Immunizations,
        "30954-2" => K::Results,
        "8716-3" => K::VitalSigns,
        "11450-4" => K::Problems,
        "48765-2" => K::Allergies,
        "47519-4" => K::Procedures,
        "51848-0" => K::Assessment,
        "51847-2" => K::AssessmentAndPlan,
        "18776-5" => K::PlanOfTreatment,
        "10183-2" => K::DischargeMedications,
        "29299-5" => K::ReasonForVisit,
        "46239-0" => K::ChiefComplaintAndReasonForVisit,
        "47420-5" => K::FunctionalStatus,
        "10157-6" => K::FamilyHistory,
        "29762-2" => K::SocialHistory,
        "48768-6" => K::Payers,
        "11348-0" => K::PastMedicalHistory,
        "42348-3" => K::AdvanceDirectives,
        "46240-8" => K::Encounters,
        "46264-8" => K::MedicalEquipment,
        "11535-2" => K::DischargeDiagnosis,
        "8653-8" => K::DischargeInstructions,
        "46241-6" => K::AdmissionDiagnosis,
        "69730-0" => K::Instructions,
        "10190-7" => K::MentalStatus,
        "61144-2" => K::Nutrition,
        "75310-3" => K::HealthConcerns,
        "61146-7" => K::Goals,
        "85847-2" => K::CareTeams,
        "10154-3" => K::ChiefComplaint,
        "42349-1" => K::ReasonForReferral,
        "10164-2" => K::HistoryOfPresentIllness,
        "8648-8" => K::HospitalCourse,
        "10187-3" => K::ReviewOfSystems,
        "29545-1" => K::PhysicalExam,
        "10219-4" => K::PreoperativeDiagnosis,
        "10218-6" => K::PostoperativeDiagnosis,
        "59769-0" => K::PostprocedureDiagnosis,
        "59774-0" => K::Anesthesia,
        "55109-3" => K::Complications,
        "59776-5" => K::ProcedureFindings,
        "29554-3" => K::ProcedureDescription,
        "59768-2" => K::ProcedureIndications,
        "59772-4" => K::PlannedProcedure,
        "59773-2" => K::ProcedureSpecimens,
        "55122-6" => K::ProcedureImplants,
        "59770-8" => K::EstimatedBloodLoss,
        "11537-8" => K::SurgicalDrains,
        "10216-0" => K::OperativeFluids,
        "10223-6" => K::SurgicalProcedure,
        "18782-3" => K::ImagingFindings,
        "19005-8" => K::ImagingImpression,
        _ => return None,
    })
}

const DICOM: &str = "1.2.840.10008.2.16.4";

/// Sections of a Diagnostic Imaging Report carry DICOM codes (PS3.16) rather than LOINC.
fn section_kind_by_dicom(code: &str) -> Option<SectionKind> {
    use SectionKind as K;
    Some(match code {
        "121181" => K::DicomObjectCatalog,
        "121070" => K::ImagingFindings,
        "121072" | "121073" | "121076" => K::ImagingImpression,
        "121060" => K::HistoryOfPresentIllness,
        "121064" => K::ProcedureDescription,
        "121109" => K::ProcedureIndications,
        _ => return None,
    })
}

pub(super) fn classify_section(section: &mut Section) {
    if let Some(kind) = section
        .template_ids
        .iter()
        .find_map(|t| section_kind_by_template(&t.root))
    {
        section.kind = kind;
        section.matched_by = MatchedBy::TemplateId;
        return;
    }
    let by_code = section
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref().is_none_or(|s| s == LOINC))
        .and_then(|c| c.code.as_deref())
        .and_then(section_kind_by_loinc);
    if let Some(kind) = by_code {
        section.kind = kind;
        section.matched_by = MatchedBy::LoincCode;
        return;
    }
    // MatchedBy::LoincCode stands for "by its section code"; DICOM codes are the imaging report's.
    let by_dicom = section
        .code
        .as_ref()
        .filter(|c| c.code_system.as_deref() == Some(DICOM))
        .and_then(|c| c.code.as_deref())
        .and_then(section_kind_by_dicom);
    if let Some(kind) = by_dicom {
        section.kind = kind;
        section.matched_by = MatchedBy::LoincCode;
    }
}
