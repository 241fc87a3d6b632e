//! What jobsync publishes (section 5): every notification and lifecycle
//! event is a CloudEvent of this shape around its `data` (the views and
//! event data of 5.2 and 5.4).

use serde::Serialize;

/// The CloudEvent around a notification or a lifecycle event. Serialized in
/// this field order.
#[derive(Debug, Serialize)]
pub struct CloudEvent<'a, D: Serialize> {
    pub specversion: &'static str,
    /// Deterministic: the same cause gives the same id (5.1).
    pub id: &'a str,
    pub source: &'static str,
    /// `dk.jobsync.<event>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub time: &'a str,
    /// The job order id.
    pub subject: String,
    pub datacontenttype: &'static str,
    /// The audience of a notification (`jobcenter:15300`, or `shared` for
    /// one sent to several units); none on a lifecycle event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a str>,
    /// The hub version of the order it is about.
    pub joborderversion: i64,
    pub data: &'a D,
}

impl<'a, D: Serialize> CloudEvent<'a, D> {
    /// jobsync's event `event` (`joborder.updated`, …) about order
    /// `subject` at hub version `joborderversion`.
    pub fn new(
        event: &str,
        id: &'a str,
        time: &'a str,
        subject: String,
        unit: Option<&'a str>,
        joborderversion: i64,
        data: &'a D,
    ) -> Self {
        CloudEvent {
            specversion: "1.0",
            id,
            source: "/jobsync",
            kind: format!("dk.jobsync.{event}"),
            time,
            subject,
            datacontenttype: "application/json",
            unit,
            joborderversion,
            data,
        }
    }

    /// The body as published.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialize")
    }
}

/// The `data` of a notification or a lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Data {
    Order(Box<OrderView>),
    SharedOrder(Box<SharedOrderView>),
    Log(LogView),
    Revoked(RevokedView),
    Lifecycle(LifecycleData),
    PromiseMissed(PromiseMissedData),
}

// Every struct below declares its fields in alphabetical order, so that it
// serializes exactly as a JSON object with sorted keys: the content hashes
// stored of what each unit was told were computed over that form, and the
// bytes published stay the same from one release to the next.

thread_local! {
    /// Set while [`write_content`] serializes.
    static CONTENT_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `skip_serializing_if` of the fields that change with every version.
fn volatile<T>(_: &T) -> bool {
    CONTENT_ONLY.with(std::cell::Cell::get)
}

/// Serializes `data` into `writer` without the fields that change with
/// every version (`version`, `updated_at`): what a view's content hash is
/// over, so that equal content means the unit sees nothing new (5.1).
pub fn write_content(writer: impl std::io::Write, data: &Data) -> serde_json::Result<()> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CONTENT_ONLY.with(|c| c.set(false));
        }
    }
    CONTENT_ONLY.with(|c| c.set(true));
    let _reset = Reset;
    serde_json::to_writer(writer, data)
}

/// `{"code": "15300", "type": "jobcenter"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnitRef {
    pub code: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Who made a version, or changed an entry's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChangedBy {
    Employer,
    Unit { unit: UnitRef },
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Occupation {
    pub alias: Option<String>,
    pub code: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Employer {
    pub conflict_affected: bool,
    pub cvr: String,
    pub name: String,
    pub p_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Coordinator {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Descriptions {
    pub qualifications_and_pay: Option<String>,
    pub tasks: String,
    pub working_hours: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sharing {
    pub scope: String,
    pub units: Vec<UnitRef>,
}

/// 5.2: the responsible unit's view of an order: the whole snapshot, and
/// what jobsync adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub changed_by: ChangedBy,
    pub contact: Option<Contact>,
    pub continuous: bool,
    pub coordinator: Option<Coordinator>,
    pub coordinator_allowed: bool,
    pub coordinator_reassignment_needed: bool,
    pub created_at: String,
    pub descriptions: Descriptions,
    pub employer: Employer,
    pub expected_start: Option<String>,
    pub expired_at: Option<String>,
    pub job_order_id: String,
    pub mediation_deadline: Option<String>,
    pub occupation: Occupation,
    pub origin: String,
    pub positions: Option<i64>,
    /// Section 11: the service promises tracked for an order the employer
    /// made, by name (`contact`, `delivery`, `follow_up`); absent for other
    /// orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promises: Option<std::collections::BTreeMap<String, PromiseView>>,
    pub request_id: Option<String>,
    pub responsible_unit: UnitRef,
    pub sharing: Sharing,
    pub status: String,
    pub status_comment: Option<String>,
    pub status_reason: Option<String>,
    pub title: String,
    pub undecided_candidates: i32,
    #[serde(skip_serializing_if = "volatile")]
    pub updated_at: String,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// The employer as a unit other than the responsible one sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SharedEmployer {
    pub cvr: String,
    pub name: String,
}

/// The descriptions a unit other than the responsible one sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SharedDescriptions {
    pub tasks: String,
}

/// The sharing a unit other than the responsible one sees: not with whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SharedSharing {
    pub scope: String,
}

/// 5.2: the view of any other unit that can see the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SharedOrderView {
    pub continuous: bool,
    pub coordinator: Option<Coordinator>,
    pub coordinator_allowed: bool,
    pub created_at: String,
    pub descriptions: SharedDescriptions,
    pub employer: SharedEmployer,
    pub expected_start: Option<String>,
    pub expired_at: Option<String>,
    pub job_order_id: String,
    pub mediation_deadline: Option<String>,
    pub occupation: Occupation,
    pub positions: Option<i64>,
    pub request_id: Option<String>,
    pub responsible_unit: UnitRef,
    pub sharing: SharedSharing,
    pub status: String,
    pub status_reason: Option<String>,
    pub title: String,
    #[serde(skip_serializing_if = "volatile")]
    pub updated_at: String,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// One entry of a log view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogEntry {
    pub cv_active: bool,
    pub mediation_id: String,
    /// `None`: withheld (the field is left out); `Some(None)`: `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Option<String>>,
    pub person_ref: String,
    pub protected_identity: bool,
    pub registered_at: String,
    pub registered_by: UnitRef,
    pub searchable_cv: bool,
    pub status: String,
    pub status_changed_at: String,
    pub status_changed_by: ChangedBy,
}

/// 5.2: a unit's view of a mediation log, with the counts over the entries
/// it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogView {
    pub awaiting_approval: i32,
    pub entries: Vec<LogEntry>,
    pub job_order_id: String,
    pub total: i32,
    pub undecided: i32,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// 5.1: the data of `joborder.revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevokedView {
    pub job_order_id: String,
    /// `unshared` or `handed_over`.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// Section 11: one tracked promise in the responsible unit's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PromiseView {
    pub due_at: String,
    /// When it was met (after `due_at`: late), or null.
    pub met_at: Option<String>,
    /// Whether its due time passed unmet.
    pub missed: bool,
}

/// 5.1 and 5.4: the data of `joborder.promise-missed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PromiseMissedData {
    pub due_at: String,
    pub job_order_id: String,
    /// `contact`, `delivery` or `follow_up`.
    pub promise: &'static str,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// 5.4: the data of a lifecycle event: ids, version, status and units only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LifecycleData {
    /// The unit that handed the order over (`joborder.handed-over` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<UnitRef>,
    pub job_order_id: String,
    pub responsible_unit: UnitRef,
    pub status: String,
    pub status_reason: Option<String>,
    /// The unit it was handed over to (`joborder.handed-over` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<UnitRef>,
    #[serde(skip_serializing_if = "volatile")]
    pub version: u64,
}

/// One item of the change feed (contract 10): shaped as the notification
/// the unit would get now.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeedItem {
    /// `dk.jobsync.joborder.updated`, `dk.jobsync.joborder.revoked` or
    /// `dk.jobsync.mediationlog.updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The job order id.
    pub subject: String,
    /// The unit, as `jobcenter:15300`.
    pub unit: String,
    /// The hub version the view reflects.
    pub joborderversion: u64,
    pub data: Data,
}

impl Data {
    /// The hub version it reflects (of the order, or of its log).
    pub fn version(&self) -> u64 {
        match self {
            Data::Order(v) => v.version,
            Data::SharedOrder(v) => v.version,
            Data::Log(v) => v.version,
            Data::Revoked(v) => v.version,
            Data::Lifecycle(v) => v.version,
            Data::PromiseMissed(v) => v.version,
        }
    }
}

impl FeedItem {
    pub fn new(event: &str, job_order_id: uuid::Uuid, unit: &str, data: Data) -> Self {
        let joborderversion = data.version();
        FeedItem {
            kind: format!("dk.jobsync.{event}"),
            subject: job_order_id.to_string(),
            unit: unit.to_owned(),
            joborderversion,
            data,
        }
    }
}

mod from_wire {
    //! The outbound form of the inbound snapshot's parts.

    use super::*;
    use crate::contract::joborder as wire;

    impl From<&wire::Unit> for UnitRef {
        fn from(u: &wire::Unit) -> Self {
            UnitRef {
                code: u.code.clone(),
                kind: u.kind.clone(),
            }
        }
    }

    impl From<&wire::ChangedBy> for ChangedBy {
        fn from(c: &wire::ChangedBy) -> Self {
            match c {
                wire::ChangedBy::Employer => ChangedBy::Employer,
                wire::ChangedBy::Unit { unit } => ChangedBy::Unit { unit: unit.into() },
                wire::ChangedBy::System => ChangedBy::System,
            }
        }
    }

    impl From<&wire::Occupation> for Occupation {
        fn from(o: &wire::Occupation) -> Self {
            Occupation {
                alias: o.alias.clone(),
                code: o.code.clone(),
                name: o.name.clone(),
            }
        }
    }

    impl From<&wire::Employer> for Employer {
        fn from(e: &wire::Employer) -> Self {
            Employer {
                conflict_affected: e.conflict_affected,
                cvr: e.cvr.clone(),
                name: e.name.clone(),
                p_number: e.p_number.clone(),
            }
        }
    }

    impl From<&wire::Contact> for Contact {
        fn from(c: &wire::Contact) -> Self {
            Contact {
                email: c.email.clone(),
                name: c.name.clone(),
                phone: c.phone.clone(),
            }
        }
    }

    impl From<&wire::Coordinator> for Coordinator {
        fn from(c: &wire::Coordinator) -> Self {
            Coordinator {
                id: c.id.clone(),
                name: c.name.clone(),
            }
        }
    }

    impl From<&wire::Descriptions> for Descriptions {
        fn from(d: &wire::Descriptions) -> Self {
            Descriptions {
                qualifications_and_pay: d.qualifications_and_pay.clone(),
                tasks: d.tasks.clone(),
                working_hours: d.working_hours.clone(),
            }
        }
    }

    impl From<&wire::Sharing> for Sharing {
        fn from(s: &wire::Sharing) -> Self {
            Sharing {
                scope: s.scope.clone(),
                units: s.units.iter().map(UnitRef::from).collect(),
            }
        }
    }
}
