//! The read side (contract section 10): what a unit is shown of a stored
//! order and of its log now. The views are the very ones the notifications
//! carry (`views`), from the same stored facts, so a system that fetches
//! and one that listens see the same thing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::fanout::{revoked_view, Event, RevokeReason};
use super::mediationlog::FormerRole;
use super::plan::ViewFacts;
use super::unit::Unit;
use super::views::{
    log_view, log_viewers, responsible_order_view, responsible_unit, shared_order_view,
    shared_units, OrderExtras, View,
};
use crate::contract::mediationlog::MediationLogData;

/// What the store holds of an order, for the read side.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub facts: ViewFacts,
    /// Its log's undecided candidates (0 without a log).
    pub undecided_candidates: i32,
    /// Units that could see it and no longer can.
    pub former: Vec<Lost>,
}

/// How a unit lost an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub unit: Unit,
    pub role: FormerRole,
    /// The `updated_at` of the version that took it away…
    pub until: DateTime<Utc>,
    /// …and that version (unknown for losses recorded before it was kept).
    pub version: Option<i64>,
}

/// What a unit is shown of an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Its view (`joborder.updated`).
    View(View),
    /// It could see the order and no longer can (`joborder.revoked`).
    Revoked(View),
    /// Nothing: the order is none of its business.
    Hidden,
}

impl Shown {
    /// The view, if the unit may see the order.
    pub fn view(self) -> Option<View> {
        match self {
            Shown::View(v) => Some(v),
            Shown::Revoked(_) | Shown::Hidden => None,
        }
    }

    /// The event of the notification the unit would get now.
    pub fn event(&self) -> Option<Event> {
        match self {
            Shown::View(_) => Some(Event::JobOrderUpdated),
            Shown::Revoked(_) => Some(Event::JobOrderRevoked),
            Shown::Hidden => None,
        }
    }
}

/// What `unit` is shown of `order`: the responsible unit's view, the shared
/// view, the revocation of a unit that lost it (for the change feed), or
/// nothing.
pub fn order_for(unit: &Unit, order: &StoredOrder) -> Shown {
    let f = &order.facts;
    let snapshot = &f.snapshot;
    if &responsible_unit(snapshot) == unit {
        let extras = OrderExtras {
            coordinator_reassignment_needed: f.coordinator_reassignment_needed,
            expired_at: f.expired_at,
            undecided_candidates: order.undecided_candidates,
            promises: f.promises,
        };
        return Shown::View(responsible_order_view(snapshot, extras));
    }
    if shared_units(snapshot).contains(unit) {
        return Shown::View(shared_order_view(snapshot, f.expired_at));
    }
    // The latest way it lost the order, with the version that took it:
    // what came after is none of its business.
    let lost = order
        .former
        .iter()
        .filter(|l| &l.unit == unit)
        .max_by_key(|l| (l.until, l.version));
    match lost {
        Some(l) => {
            let reason = match l.role {
                FormerRole::Responsible => RevokeReason::HandedOver,
                FormerRole::Shared => RevokeReason::Unshared,
            };
            let version = l.version.map_or(snapshot.version, |v| v as u64);
            Shown::Revoked(revoked_view(&snapshot.job_order_id, version, reason))
        }
        None => Shown::Hidden,
    }
}

/// `unit`'s view of `log` (of an order whose responsible unit is
/// `responsible`), if it sees the log: the responsible unit, and each unit
/// with entries on it, exactly as `mediationlog.updated` goes.
pub fn log_for(unit: &Unit, log: &MediationLogData, responsible: &Unit) -> Option<View> {
    log_viewers(log, responsible)
        .contains(unit)
        .then(|| log_view(log, unit, responsible))
}

/// The units that see `order` now: the responsible one and those it is
/// shared with.
pub fn viewers(order: &StoredOrder) -> BTreeSet<Unit> {
    let mut units: BTreeSet<Unit> = shared_units(&order.facts.snapshot).into_iter().collect();
    units.insert(responsible_unit(&order.facts.snapshot));
    units
}

/// The text a search matches an order by (contract 10: title, occupation
/// name and alias, employer name, tasks), CPR numbers replaced as in every
/// view: all of it is in the view of every unit that sees the order, so no
/// search matches text its caller cannot see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    pub title: String,
    /// Occupation name and alias.
    pub occupation: String,
    pub employer: String,
    pub tasks: String,
}

/// The [`SearchText`] of `snapshot`: texts of the shared view (which every
/// unit that sees the order may see), with CPR numbers replaced as there.
/// Built on every upsert of an order, so from the four texts alone.
pub fn search_text(snapshot: &crate::contract::joborder::JobOrderData) -> SearchText {
    let text = |t: &str| super::cpr::redact(t).0.into_owned();
    let o = &snapshot.occupation;
    let occupation = match &o.alias {
        Some(alias) => format!("{} {}", text(&o.name), text(alias)),
        None => text(&o.name),
    };
    SearchText {
        title: text(&snapshot.title),
        occupation,
        employer: text(&snapshot.employer.name),
        tasks: text(&snapshot.descriptions.tasks),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(shared: &[&str], former: &[(&str, FormerRole, i64)]) -> StoredOrder {
        let units: Vec<_> = shared
            .iter()
            .map(|c| json!({"type": "jobcenter", "code": c}))
            .collect();
        let snapshot = serde_json::from_value(json!({
            "job_order_id": "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00", "version": 4,
            "request_id": null, "origin": "unit",
            "changed_by": {"kind": "system"},
            "title": "Svejser 010190-1234", "occupation": {"name": "Svejser", "alias": "Klejnsmed", "code": null},
            "employer": {"cvr": "10150817", "p_number": null, "name": "Brøndby Stål", "conflict_affected": false},
            "contact": {"name": "Søren", "email": null, "phone": null},
            "responsible_unit": {"type": "jobcenter", "code": "15300"},
            "coordinator": null, "coordinator_allowed": false,
            "descriptions": {"tasks": "Svejsning", "qualifications_and_pay": "Løn 200 kr", "working_hours": null},
            "continuous": false, "positions": 1, "expected_start": null, "mediation_deadline": null,
            "status": "open", "status_reason": null, "status_comment": null,
            "sharing": {"scope": "selected", "units": units},
            "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-21T08:00:00Z"
        }))
        .unwrap();
        StoredOrder {
            facts: ViewFacts {
                snapshot,
                version: 4,
                coordinator_reassignment_needed: false,
                expired_at: None,
                promises: Default::default(),
                told: (vec![], vec![]),
            },
            undecided_candidates: 2,
            former: former
                .iter()
                .map(|(code, role, day)| Lost {
                    unit: Unit::from_stored("jobcenter", code).unwrap(),
                    role: *role,
                    until: DateTime::from_timestamp(day * 86_400, 0).unwrap(),
                    version: Some(*day),
                })
                .collect(),
        }
    }

    fn jobcenter(code: &str) -> Unit {
        Unit::from_stored("jobcenter", code).unwrap()
    }

    #[test]
    fn each_unit_is_shown_what_its_notification_carries() {
        let order = stored(&["16700"], &[("18300", FormerRole::Shared, 1)]);
        let Shown::View(r) = order_for(&jobcenter("15300"), &order) else {
            panic!("the responsible unit sees its view")
        };
        assert_eq!(r.to_json()["undecided_candidates"], 2);
        assert_eq!(r.to_json()["contact"]["name"], "Søren");
        let Shown::View(s) = order_for(&jobcenter("16700"), &order) else {
            panic!("a shared unit sees the shared view")
        };
        assert!(s.to_json().get("contact").is_none());
        assert_eq!(s, shared_order_view(&order.facts.snapshot, None));
        let Shown::Revoked(v) = order_for(&jobcenter("18300"), &order) else {
            panic!("a unit that lost the order is told so")
        };
        assert_eq!(v.to_json()["reason"], "unshared");
        assert_eq!(v.to_json()["version"], 1, "the version that took it away");
        assert_eq!(order_for(&jobcenter("10100"), &order), Shown::Hidden);
    }

    #[test]
    fn the_latest_loss_gives_the_reason() {
        let order = stored(
            &[],
            &[
                ("16700", FormerRole::Responsible, 1),
                ("16700", FormerRole::Shared, 2),
            ],
        );
        let Shown::Revoked(v) = order_for(&jobcenter("16700"), &order) else {
            panic!("revoked")
        };
        assert_eq!(v.to_json()["reason"], "unshared");
    }

    #[test]
    fn a_unit_that_sees_the_order_again_is_shown_its_view() {
        let order = stored(&["16700"], &[("16700", FormerRole::Shared, 1)]);
        assert!(matches!(
            order_for(&jobcenter("16700"), &order),
            Shown::View(_)
        ));
    }

    #[test]
    fn the_search_text_is_the_shared_view_s_text_with_cpr_numbers_replaced() {
        let order = stored(&[], &[]);
        let t = search_text(&order.facts.snapshot);
        let view = shared_order_view(&order.facts.snapshot, None).to_json();
        assert_eq!(t.title, view["title"]);
        assert_eq!(t.employer, view["employer"]["name"]);
        assert_eq!(t.tasks, view["descriptions"]["tasks"]);
        assert_eq!(t.title, "Svejser [CPR]");
        assert_eq!(t.occupation, "Svejser Klejnsmed");
        assert_eq!(t.employer, "Brøndby Stål");
        assert_eq!(t.tasks, "Svejsning");
    }
}
