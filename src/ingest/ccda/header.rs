//! The header blocks before the body: patient, authors, custodian, recipients, encounter.

use super::datatypes::{
    address, code, identifier, organization, period, person_name, point_time, telecom, template_id,
    ts,
};
use crate::ingest::model::*;
use crate::ingest::xml::Node;
pub(super) fn read_header_node(doc: &mut Document, node: Node) {
    match node.name() {
        "templateId" => {
            if let Some(t) = template_id(node) {
                doc.template_ids.push(t);
            }
        }
        "id" => doc.id = Some(identifier(node)),
        "code" => doc.code = Some(code(node)),
        "title" => doc.title = node.all_text(),
        "effectiveTime" => doc.effective_time = node.attr("value").map(ts),
        "confidentialityCode" => doc.confidentiality = node.attr_string("code"),
        "languageCode" => doc.language = node.attr_string("code"),
        "setId" => doc.set_id = Some(identifier(node)),
        "versionNumber" => doc.version_number = node.attr_string("value"),
        // Multiple recordTargets are legal but unheard of in practice; the first one wins.
        "recordTarget" if doc.patient.is_none() => {
            doc.patient = node.child("patientRole").map(patient);
        }
        "author" => doc.authors.push(participant(node)),
        "custodian" => {
            doc.custodian = node
                .find(&["assignedCustodian", "representedCustodianOrganization"])
                .map(organization)
        }
        "legalAuthenticator" => doc.legal_authenticator = Some(participant(node)),
        "informationRecipient" => doc.information_recipients.push(participant(node)),
        "documentationOf" => {
            if let Some(se) = node.child("serviceEvent") {
                doc.service_events.push(service_event(se));
            }
        }
        "componentOf" => {
            doc.encompassing_encounter = node.child("encompassingEncounter").map(encompassing)
        }
        "relatedDocument" => {
            let parent = node.child("parentDocument");
            doc.related_documents.push(RelatedDocument {
                type_code: node.attr_string("typeCode"),
                id: parent.and_then(|p| p.child("id")).map(identifier),
                set_id: parent.and_then(|p| p.child("setId")).map(identifier),
                version_number: parent
                    .and_then(|p| p.child("versionNumber"))
                    .and_then(|v| v.attr_string("value")),
            });
        }
        _ => {}
    }
}

fn patient(role: Node) -> Patient {
    let mut p = Patient {
        ids: role.children("id").map(identifier).collect(),
        addresses: role.children("addr").map(address).collect(),
        telecoms: role.children("telecom").map(telecom).collect(),
        provider_organization: role.child("providerOrganization").map(organization),
        ..Patient::default()
    };
    let Some(person) = role.child("patient") else {
        return p;
    };
    p.names = person.children("name").map(person_name).collect();
    p.gender = person.child("administrativeGenderCode").map(code);
    p.birth_time = person
        .child("birthTime")
        .and_then(|b| b.attr("value"))
        .map(ts);
    p.marital_status = person.child("maritalStatusCode").map(code);
    p.races = person.children("raceCode").map(code).collect();
    p.ethnicities = person.children("ethnicGroupCode").map(code).collect();
    p.languages = person
        .children("languageCommunication")
        .map(|l| Language {
            code: l.child("languageCode").and_then(|c| c.attr_string("code")),
            preferred: l
                .child("preferenceInd")
                .and_then(|v| v.attr("value"))
                .map(|v| v.trim() == "true"),
        })
        .collect();
    p.guardians = person
        .children("guardian")
        .map(|g| Guardian {
            relationship: g.child("code").map(code),
            names: g
                .find(&["guardianPerson"])
                .map(|gp| gp.children("name").map(person_name).collect())
                .unwrap_or_default(),
            addresses: g.children("addr").map(address).collect(),
            telecoms: g.children("telecom").map(telecom).collect(),
        })
        .collect();
    p
}

/// Reads any participation (author, performer, legalAuthenticator, informationRecipient,
/// responsibleParty, encounterParticipant): they share one shape with different element names.
pub(super) fn participant(node: Node) -> Participant {
    const ROLES: [&str; 4] = [
        "assignedAuthor",
        "assignedEntity",
        "intendedRecipient",
        "participantRole",
    ];
    let role = ROLES.iter().find_map(|r| node.child(r));
    let mut p = Participant {
        type_code: node.attr_string("typeCode"),
        function_code: node.child("functionCode").map(code),
        time: node.child("time").and_then(point_time),
        ..Participant::default()
    };
    let Some(role) = role else { return p };
    p.ids = role.children("id").map(identifier).collect();
    p.code = role.child("code").map(code);
    p.addresses = role.children("addr").map(address).collect();
    p.telecoms = role.children("telecom").map(telecom).collect();
    for person in ["assignedPerson", "informationRecipient", "playingEntity"] {
        if let Some(n) = role.child(person) {
            p.names.extend(n.children("name").map(person_name));
        }
    }
    p.device = role.child("assignedAuthoringDevice").map(|d| Device {
        manufacturer_model: d.child("manufacturerModelName").and_then(Node::all_text),
        software: d.child("softwareName").and_then(Node::all_text),
    });
    p.organization = [
        "representedOrganization",
        "receivedOrganization",
        "scopingOrganization",
    ]
    .iter()
    .find_map(|o| role.child(o))
    .map(organization);
    p
}

fn service_event(se: Node) -> ServiceEvent {
    let (start, end) = period(se.child("effectiveTime"));
    ServiceEvent {
        code: se.child("code").map(code),
        start,
        end,
        performers: se.children("performer").map(participant).collect(),
    }
}

fn encompassing(enc: Node) -> EncompassingEncounter {
    let (start, end) = period(enc.child("effectiveTime"));
    EncompassingEncounter {
        ids: enc.children("id").map(identifier).collect(),
        code: enc.child("code").map(code),
        start,
        end,
        location: enc
            .find(&["location", "healthCareFacility"])
            .map(|f| Location {
                ids: f.children("id").map(identifier).collect(),
                code: f.child("code").map(code),
                name: f
                    .find(&["location", "name"])
                    .or_else(|| f.find(&["serviceProviderOrganization", "name"]))
                    .and_then(Node::all_text),
                address: f.find(&["location", "addr"]).map(address),
            }),
        responsible_party: enc.child("responsibleParty").map(participant),
        participants: enc
            .children("encounterParticipant")
            .map(participant)
            .collect(),
        discharge_disposition: enc.child("dischargeDispositionCode").map(code),
    }
}
