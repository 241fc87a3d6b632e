//! The planner: from the stored state of a batch's orders and the batch's
//! messages to what to write and whom to tell, with no I/O. The store loads
//! the state (`load`), the planner decides (`plan`), the store writes the
//! plan (`write`): a new rule goes here, a new query into `store/`.
//!
//! What goes out ([`Output`]) is handed to a sink as it is decided rather
//! than kept in the plan: the views of a whole batch held at once (JSON
//! trees, 94 recipients each for an order shared nationally) took the
//! worker's peak memory in the 94-jobcentre benchmark from 122–138 MB to
//! 238–263 MB.

pub mod erasure;
pub mod expiry;
pub mod joborders;
pub mod mediation;
pub mod promises;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::fanout::{Lifecycle, Notification};

/// What causes an output: an inbound message, or the expiry of an order
/// version (no message's doing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `messages[i]` of the batch.
    Message(usize),
    Expiry,
    /// A service promise of the order passed unmet.
    Promise(crate::domain::promises::Promise),
    /// The erasure of a person on request, with its id.
    Erasure(Uuid),
}

/// What is to be published, in the order it is to go out.
#[derive(Debug)]
pub enum Output {
    /// Notifications to units about order `job_order_id` at hub version
    /// `order_version`.
    Notify {
        cause: Cause,
        job_order_id: Uuid,
        order_version: i64,
        notifications: Vec<Notification>,
    },
    /// A lifecycle event with `data`.
    Lifecycle {
        cause: Cause,
        job_order_id: Uuid,
        order_version: i64,
        event: Lifecycle,
        /// Its data: `Data::Lifecycle`, or `Data::PromiseMissed`.
        data: Box<crate::contract::outbound::Data>,
    },
}

/// When a unit that lost an order (its responsibility or its share of it)
/// had gained it and lost it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormerUnit {
    pub job_order_id: Uuid,
    pub unit: crate::domain::unit::Unit,
    pub role: crate::domain::mediationlog::FormerRole,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The version that took it away.
    pub version: i64,
}

/// What the responsible unit's order view is made of, for an order whose
/// log changes.
#[derive(Debug, Clone)]
pub struct ViewFacts {
    pub snapshot: crate::contract::joborder::JobOrderData,
    pub version: i64,
    pub coordinator_reassignment_needed: bool,
    pub expired_at: Option<DateTime<Utc>>,
    /// Its service promises.
    pub promises: crate::domain::promises::Promises,
    /// What the order's units were last told: the hashes of the
    /// responsible and of the shared view.
    pub told: (Vec<u8>, Vec<u8>),
}

/// The log views of `log` whose content changed since `told` (each viewing
/// unit's last view's hash), as notifications, with what each unit is told
/// now. One place for both streams: a new log and a handover both change
/// who sees which entries.
pub fn log_notifications(
    log: &crate::contract::mediationlog::MediationLogData,
    responsible: &crate::domain::unit::Unit,
    told: &std::collections::BTreeMap<crate::domain::unit::Unit, Vec<u8>>,
) -> (
    Vec<Notification>,
    std::collections::BTreeMap<crate::domain::unit::Unit, Vec<u8>>,
) {
    use crate::domain::views::{log_view, log_viewers};
    let viewers = log_viewers(log, responsible)
        .into_iter()
        .map(|u| {
            let v = log_view(log, &u, responsible);
            (u, v)
        })
        .collect();
    crate::domain::fanout::log_changes(told, viewers)
}
