//! Rejections: a message at fault, with the stable contract code (section 4.3)
//! and a sentence a person can act on.

use std::fmt;

/// The stable error codes of the contract, one per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    JsonMalformed,
    MessageTooLarge,
    TypeUnknown,
    SchemaInvalid,
    UnitUnknownMunicipality,
    CvrChecksum,
    ContactEmail,
    ContactPhone,
    ContactMissing,
    PositionsContinuous,
    StatusReason,
    StatusCommentRequired,
    SharingInvalid,
    SharingAkasseToJobcenter,
    VersionConflict,
    EmployerConflictAffected,
    HandoverByEmployer,
    HandoverAkasseWithCandidates,
    JobOrderUnknown,
    MediationEntryRemoved,
    MediationUnitNotShared,
    MediationOrderClosed,
    MediationApprovalNotByResponsible,
    MediationCoordinatorNotAllowed,
    PersonRefCpr,
    ContactCpr,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::JsonMalformed,
        ErrorCode::MessageTooLarge,
        ErrorCode::TypeUnknown,
        ErrorCode::SchemaInvalid,
        ErrorCode::UnitUnknownMunicipality,
        ErrorCode::CvrChecksum,
        ErrorCode::ContactEmail,
        ErrorCode::ContactPhone,
        ErrorCode::ContactMissing,
        ErrorCode::PositionsContinuous,
        ErrorCode::StatusReason,
        ErrorCode::StatusCommentRequired,
        ErrorCode::SharingInvalid,
        ErrorCode::SharingAkasseToJobcenter,
        ErrorCode::VersionConflict,
        ErrorCode::EmployerConflictAffected,
        ErrorCode::HandoverByEmployer,
        ErrorCode::HandoverAkasseWithCandidates,
        ErrorCode::JobOrderUnknown,
        ErrorCode::MediationEntryRemoved,
        ErrorCode::MediationUnitNotShared,
        ErrorCode::MediationOrderClosed,
        ErrorCode::MediationApprovalNotByResponsible,
        ErrorCode::MediationCoordinatorNotAllowed,
        ErrorCode::PersonRefCpr,
        ErrorCode::ContactCpr,
    ];

    /// The code as it appears in the `x-jobsync-error-code` header.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::JsonMalformed => "json.malformed",
            ErrorCode::MessageTooLarge => "message.too_large",
            ErrorCode::TypeUnknown => "type.unknown",
            ErrorCode::SchemaInvalid => "schema.invalid",
            ErrorCode::UnitUnknownMunicipality => "unit.unknown_municipality",
            ErrorCode::CvrChecksum => "cvr.checksum",
            ErrorCode::ContactEmail => "contact.email",
            ErrorCode::ContactPhone => "contact.phone",
            ErrorCode::ContactMissing => "contact.missing",
            ErrorCode::PositionsContinuous => "positions.continuous",
            ErrorCode::StatusReason => "status.reason",
            ErrorCode::StatusCommentRequired => "status.comment_required",
            ErrorCode::SharingInvalid => "sharing.invalid",
            ErrorCode::SharingAkasseToJobcenter => "sharing.akasse_to_jobcenter",
            ErrorCode::VersionConflict => "version.conflict",
            ErrorCode::EmployerConflictAffected => "employer.conflict_affected",
            ErrorCode::HandoverByEmployer => "handover.by_employer",
            ErrorCode::HandoverAkasseWithCandidates => "handover.akasse_with_candidates",
            ErrorCode::JobOrderUnknown => "joborder.unknown",
            ErrorCode::MediationEntryRemoved => "mediation.entry_removed",
            ErrorCode::MediationUnitNotShared => "mediation.unit_not_shared",
            ErrorCode::MediationOrderClosed => "mediation.order_closed",
            ErrorCode::MediationApprovalNotByResponsible => "mediation.approval_not_by_responsible",
            ErrorCode::MediationCoordinatorNotAllowed => "mediation.coordinator_not_allowed",
            ErrorCode::PersonRefCpr => "person_ref.cpr",
            ErrorCode::ContactCpr => "contact.cpr",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message is rejected: it is dead-lettered with these, never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    /// Names the field and what is wrong with it, e.g.
    /// `data.employer.cvr: 12345679 fails the CVR check digit`.
    pub message: String,
    /// True for the few rules the JSON Schemas under `schemas/` cannot express
    /// (a check digit, a comparison between two fields' values, stored state):
    /// a message rejected for such a rule is still valid under the schema.
    pub beyond_schema: bool,
}

impl Rejection {
    /// A rejection for a rule the JSON Schema also expresses.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            beyond_schema: false,
        }
    }

    /// A rejection for a rule the JSON Schema cannot express.
    pub fn beyond_schema(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            beyond_schema: true,
        }
    }

    /// `schema.invalid` for `field`.
    pub fn schema(field: &str, what: impl fmt::Display) -> Self {
        Rejection::new(ErrorCode::SchemaInvalid, format!("{field}: {what}"))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}
