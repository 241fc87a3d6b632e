//! Who is told what (section 5.1): each unit's view before and after a change
//! is compared, and only a unit whose view changed is notified. Units that
//! lose the order are told so. Units that get the same view are told with
//! one message. Pure: the caller stores what each unit last saw.

use std::collections::{BTreeMap, BTreeSet};

use super::status::StatusKind;
use super::unit::Unit;
use super::views::View;
use crate::contract::joborder::JobOrderData;
use crate::contract::outbound::{Data, LifecycleData, RevokedView, UnitRef};

/// The notification events of section 5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    JobOrderUpdated,
    JobOrderRevoked,
    JobOrderExpired,
    MediationLogUpdated,
    JobOrderPromiseMissed,
}

impl Event {
    pub const ALL: [Event; 5] = [
        Event::JobOrderUpdated,
        Event::JobOrderRevoked,
        Event::JobOrderExpired,
        Event::MediationLogUpdated,
        Event::JobOrderPromiseMissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::JobOrderUpdated => "joborder.updated",
            Event::JobOrderRevoked => "joborder.revoked",
            Event::JobOrderExpired => "joborder.expired",
            Event::MediationLogUpdated => "mediationlog.updated",
            Event::JobOrderPromiseMissed => "joborder.promise-missed",
        }
    }
}

/// One notification: the same `view` to every unit in `recipients`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: Event,
    pub recipients: Vec<Unit>,
    pub view: View,
}

/// What the units that can see an order were last told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub responsible: Unit,
    pub shared: BTreeSet<Unit>,
    /// Content hash of the responsible unit's last view.
    pub responsible_hash: Vec<u8>,
    /// Content hash of the last view every unit in `shared` got.
    pub shared_hash: Vec<u8>,
}

/// Why a unit lost an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Unshared,
    HandedOver,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Unshared => "unshared",
            RevokeReason::HandedOver => "handed_over",
        }
    }
}

/// The notifications of an order going from `before` (what its units were
/// last told; `None` for an order nobody was told of) to `responsible` and
/// `shared` with these views; and what the units have been told after them.
pub fn order_changes(
    before: Option<&Seen>,
    responsible: &Unit,
    shared: &BTreeSet<Unit>,
    responsible_view: View,
    shared_view: View,
    revoked: impl Fn(RevokeReason) -> View,
) -> (Vec<Notification>, Seen) {
    let mut out = Vec::new();
    let responsible_hash = responsible_view.content_hash();
    let shared_hash = shared_view.content_hash();
    let told_responsible = before
        .is_some_and(|b| &b.responsible == responsible && b.responsible_hash == responsible_hash);
    if !told_responsible {
        out.push(Notification {
            event: Event::JobOrderUpdated,
            recipients: vec![responsible.clone()],
            view: responsible_view,
        });
    }
    let newly: Vec<Unit> = shared
        .iter()
        .filter(|u| !before.is_some_and(|b| b.shared.contains(*u) && b.shared_hash == shared_hash))
        .cloned()
        .collect();
    if !newly.is_empty() {
        out.push(Notification {
            event: Event::JobOrderUpdated,
            recipients: newly,
            view: shared_view,
        });
    }
    if let Some(b) = before {
        if &b.responsible != responsible && !shared.contains(&b.responsible) {
            out.push(Notification {
                event: Event::JobOrderRevoked,
                recipients: vec![b.responsible.clone()],
                view: revoked(RevokeReason::HandedOver),
            });
        }
        // One revocation per unit, never one for several: a system serving
        // several units from one queue must see which of them lost access.
        for unit in b
            .shared
            .iter()
            .filter(|u| !shared.contains(*u) && *u != responsible)
        {
            out.push(Notification {
                event: Event::JobOrderRevoked,
                recipients: vec![unit.clone()],
                view: revoked(RevokeReason::Unshared),
            });
        }
    }
    let seen = Seen {
        responsible: responsible.clone(),
        shared: shared.clone(),
        responsible_hash,
        shared_hash,
    };
    (out, seen)
}

/// The data of `joborder.revoked`.
pub fn revoked_view(job_order_id: &str, version: u64, reason: RevokeReason) -> View {
    View {
        data: Data::Revoked(RevokedView {
            job_order_id: job_order_id.to_owned(),
            reason: reason.as_str(),
            version,
        }),
        redactions: 0,
    }
}

/// The notifications of a log whose viewers now get `views` (viewer → view),
/// given the content hash each unit last got (`before`); and the hashes
/// after them. A unit that no longer sees the log is dropped silently (it
/// lost the order, and was told so).
pub fn log_changes(
    before: &BTreeMap<Unit, Vec<u8>>,
    views: Vec<(Unit, View)>,
) -> (Vec<Notification>, BTreeMap<Unit, Vec<u8>>) {
    let mut out = Vec::new();
    let mut after = BTreeMap::new();
    for (unit, view) in views {
        let hash = view.content_hash();
        if before.get(&unit) != Some(&hash) {
            out.push(Notification {
                event: Event::MediationLogUpdated,
                recipients: vec![unit.clone()],
                view,
            });
        }
        after.insert(unit, hash);
    }
    (out, after)
}

/// The lifecycle events of section 5.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Created,
    Closed,
    Reopened,
    /// The status became `temporarily_inactive`.
    Inactivated,
    /// The status went from `temporarily_inactive` to `open`.
    Reactivated,
    HandedOver,
    Expired,
    /// A service promise passed unmet (section 11).
    PromiseMissed,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 8] = [
        Lifecycle::Created,
        Lifecycle::Closed,
        Lifecycle::Reopened,
        Lifecycle::Inactivated,
        Lifecycle::Reactivated,
        Lifecycle::HandedOver,
        Lifecycle::Expired,
        Lifecycle::PromiseMissed,
    ];

    /// The routing key on the events exchange (and the event name).
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "joborder.created",
            Lifecycle::Closed => "joborder.closed",
            Lifecycle::Reopened => "joborder.reopened",
            Lifecycle::Inactivated => "joborder.inactivated",
            Lifecycle::Reactivated => "joborder.reactivated",
            Lifecycle::HandedOver => "joborder.handed-over",
            Lifecycle::Expired => "joborder.expired",
            Lifecycle::PromiseMissed => "joborder.promise-missed",
        }
    }
}

/// The data of a lifecycle event about `order` (with `from` and `to` for a
/// handover): ids, version, status and units only.
pub fn lifecycle_data(order: &JobOrderData, handover: Option<(&Unit, &Unit)>) -> LifecycleData {
    let unit = |u: &Unit| UnitRef {
        code: u.code().to_owned(),
        kind: u.kind().as_str().to_owned(),
    };
    LifecycleData {
        from: handover.map(|(from, _)| unit(from)),
        job_order_id: order.job_order_id.clone(),
        responsible_unit: (&order.responsible_unit).into(),
        status: order.status.clone(),
        status_reason: order.status_reason.clone(),
        to: handover.map(|(_, to)| unit(to)),
        version: order.version,
    }
}

/// The lifecycle events of applying `after` on top of an order that had
/// `before` (status and responsible unit; `None` when first seen), each with
/// its data: no free text, no personal data.
pub fn lifecycle(
    before: Option<(StatusKind, &Unit)>,
    after: &JobOrderData,
) -> Vec<(Lifecycle, LifecycleData)> {
    let status = StatusKind::parse(&after.status).expect("a stored snapshot was validated");
    let responsible = super::views::responsible_unit(after);
    let data = |handover| lifecycle_data(after, handover);
    let mut out = Vec::new();
    match before {
        None => out.push((Lifecycle::Created, data(None))),
        Some((old_status, old_responsible)) => {
            if old_status != StatusKind::Closed && status == StatusKind::Closed {
                out.push((Lifecycle::Closed, data(None)));
            }
            if old_status == StatusKind::Closed && status != StatusKind::Closed {
                out.push((Lifecycle::Reopened, data(None)));
            }
            if old_status != StatusKind::TemporarilyInactive
                && status == StatusKind::TemporarilyInactive
            {
                out.push((Lifecycle::Inactivated, data(None)));
            }
            if old_status == StatusKind::TemporarilyInactive && status == StatusKind::Open {
                out.push((Lifecycle::Reactivated, data(None)));
            }
            if old_responsible != &responsible {
                out.push((
                    Lifecycle::HandedOver,
                    data(Some((old_responsible, &responsible))),
                ));
            }
        }
    }
    out
}
