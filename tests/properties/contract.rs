//! The contract, written out here so that the tests do not trust the library.

use super::*;

/// Every code of the table in contract 4.3.
pub(crate) const CONTRACT_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "cvr.checksum",
    "contact.email",
    "contact.phone",
    "contact.missing",
    "positions.continuous",
    "status.reason",
    "status.comment_required",
    "sharing.invalid",
    "sharing.akasse_to_jobcenter",
    "version.conflict",
    "employer.conflict_affected",
    "handover.by_employer",
    "handover.akasse_with_candidates",
    "joborder.unknown",
    "mediation.entry_removed",
    "mediation.unit_not_shared",
    "mediation.order_closed",
    "mediation.approval_not_by_responsible",
    "mediation.coordinator_not_allowed",
    "person_ref.cpr",
    "contact.cpr",
];

/// The codes a body can get before anything stored is looked at.
pub(crate) const BODY_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
];

/// The codes a job order snapshot can get on its own (no stored state).
pub(crate) const JOB_ORDER_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "cvr.checksum",
    "contact.email",
    "contact.phone",
    "contact.missing",
    "contact.cpr",
    "positions.continuous",
    "status.reason",
    "sharing.invalid",
    "sharing.akasse_to_jobcenter",
];

/// The codes a mediation log snapshot can get on its own.
pub(crate) const LOG_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "person_ref.cpr",
];

/// The fields of the view of a unit that is not responsible (5.2); a path
/// covers everything under it.
pub(crate) const SHARED_PATHS: &[&str] = &[
    "job_order_id",
    "version",
    "request_id",
    "title",
    "occupation",
    "employer.cvr",
    "employer.name",
    "responsible_unit",
    "coordinator",
    "coordinator_allowed",
    "descriptions.tasks",
    "continuous",
    "positions",
    "expected_start",
    "mediation_deadline",
    "status",
    "status_reason",
    "sharing.scope",
    "created_at",
    "updated_at",
    "expired_at",
];

/// What a unit that is not responsible never sees (5.2), as field names
/// anywhere in its view.
pub(crate) const RESTRICTED_KEYS: &[&str] = &[
    "contact",
    "qualifications_and_pay",
    "working_hours",
    "status_comment",
    "p_number",
    "units",
    "email",
    "phone",
];

/// The free-text fields (5.3), by path without array indices.
pub(crate) const FREE_TEXT: &[&str] = &[
    "title",
    "occupation.name",
    "occupation.alias",
    "employer.name",
    "contact.name",
    "coordinator.name",
    "descriptions.tasks",
    "descriptions.qualifications_and_pay",
    "descriptions.working_hours",
    "status_comment",
    "entries.person_ref",
    "entries.note",
];

/// The longest value of each free-text field of a job order (4.1).
pub(crate) const FREE_TEXT_MAX: &[(&str, usize)] = &[
    ("title", 100),
    ("occupation.name", 200),
    ("occupation.alias", 200),
    ("employer.name", 300),
    ("contact.name", 200),
    ("coordinator.name", 200),
    ("descriptions.tasks", 5000),
    ("descriptions.qualifications_and_pay", 5000),
    ("descriptions.working_hours", 5000),
    ("status_comment", 5000),
];

/// Identifiers, not free text (5.3): ids (a UUID, the request id, the
/// coordinator's id), codes (a unit's, the occupation's), a P-number, a
/// phone number and an e-mail address may hold digits that look like a CPR
/// number and are passed on as they are (an address or a number that holds
/// a real one is refused at intake); so are numbers (a version, a count of
/// positions).
pub(crate) const IDENTIFIERS: &[&str] = &[
    "job_order_id",
    "mediation_id",
    "request_id",
    "id",
    "code",
    "p_number",
    "phone",
    "email",
];

pub(crate) const TIMESTAMPS: &[&str] = &[
    "created_at",
    "updated_at",
    "registered_at",
    "status_changed_at",
];

/// What the responsible unit's view adds to the snapshot.
pub(crate) const EXTRAS: &[&str] = &[
    "coordinator_reassignment_needed",
    "expired_at",
    "undecided_candidates",
];

/// Put in front of every text only the responsible unit may see.
pub(crate) const MARK: char = '¤';
/// The value of every unknown field: never forwarded (section 3).
pub(crate) const UNKNOWN: &str = "¤X¤ unknown field";

pub(crate) const JOB_ORDER: InboundType = InboundType::JobOrderSnapshot;
pub(crate) const MEDIATION_LOG: InboundType = InboundType::MediationLogSnapshot;

pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files: this binary writes nothing into the tree.
        failure_persistence: None,
        // ChaCha costs most of the time of a debug build; these are tests.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}
