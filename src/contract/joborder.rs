//! The job order snapshot (section 4.1) as it is on the wire. Unknown fields
//! are ignored (tolerant reader) and never kept: the content hash and anything
//! forwarded are built from these structs only.

use serde::{Deserialize, Serialize};

/// `data` of a `dk.dfdg.joborder.snapshot` event: the whole order at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct JobOrderData {
    pub job_order_id: String,
    #[serde(deserialize_with = "super::de::unsigned")]
    pub version: u64,
    #[serde(default)]
    pub request_id: Option<String>,
    pub origin: String,
    pub changed_by: ChangedBy,
    pub title: String,
    pub occupation: Occupation,
    pub employer: Employer,
    #[serde(default)]
    pub contact: Option<Contact>,
    pub responsible_unit: Unit,
    #[serde(default)]
    pub coordinator: Option<Coordinator>,
    pub coordinator_allowed: bool,
    pub descriptions: Descriptions,
    pub continuous: bool,
    #[serde(default, deserialize_with = "super::de::optional_signed")]
    pub positions: Option<i64>,
    #[serde(default)]
    pub expected_start: Option<String>,
    #[serde(default)]
    pub mediation_deadline: Option<String>,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub status_comment: Option<String>,
    pub sharing: Sharing,
    pub created_at: String,
    pub updated_at: String,
}

/// `{"type": "jobcenter" | "akasse" | "workindenmark", "code": "15300"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Unit {
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
}

/// Who made this version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChangedBy {
    Employer,
    Unit { unit: Unit },
    System,
}

/// Stillingsbetegnelse, with its alias.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Occupation {
    pub name: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Employer {
    pub cvr: String,
    #[serde(default)]
    pub p_number: Option<String>,
    pub name: String,
    #[serde(default)]
    pub conflict_affected: bool,
}

/// The employer's contact person. Every field is optional on the wire so that
/// a missing name gets its own code (`contact.missing`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Contact {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Tovholder: the person in the responsible unit who screens candidates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Coordinator {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Descriptions {
    pub tasks: String,
    #[serde(default)]
    pub qualifications_and_pay: Option<String>,
    #[serde(default)]
    pub working_hours: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Sharing {
    pub scope: String,
    #[serde(default)]
    pub units: Vec<Unit>,
}
