//! The mediation log snapshot (formidlingslog, section 4.2) as it is on the
//! wire. Unknown fields are ignored and never kept.

use serde::{Deserialize, Serialize};

use super::joborder::{ChangedBy, Unit};

/// `data` of a `dk.dfdg.mediationlog.snapshot` event: the whole log of one
/// job order at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediationLogData {
    pub job_order_id: String,
    #[serde(deserialize_with = "super::de::unsigned")]
    pub version: u64,
    pub entries: Vec<Entry>,
}

/// One candidate put forward for the order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Entry {
    pub mediation_id: String,
    /// An opaque reference to the person; never a CPR number.
    pub person_ref: String,
    pub registered_by: Unit,
    pub registered_at: String,
    pub status: String,
    pub status_changed_at: String,
    pub status_changed_by: ChangedBy,
    pub searchable_cv: bool,
    pub cv_active: bool,
    pub protected_identity: bool,
    #[serde(default)]
    pub note: Option<String>,
}
