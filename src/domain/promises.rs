//! The service promises of section 11: for an order the employer made
//! (`origin` `jobag`), the coordinating jobcentre contacts the employer
//! within 24 hours, delivers candidates within 72 hours, and follows up
//! after one to two weeks. Pure rules over an order's versions and its log;
//! the store keeps [`Promises`] per order, the checker marks the missed.

use chrono::{DateTime, Duration, Utc};

use super::joborder::{ChangedBy, JobOrder, Origin};
use super::status::{StatusKind, StatusReason};
use crate::contract::outbound::PromiseView;

/// The three promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Promise {
    Contact,
    Delivery,
    FollowUp,
}

impl Promise {
    pub const ALL: [Promise; 3] = [Promise::Contact, Promise::Delivery, Promise::FollowUp];

    pub fn as_str(self) -> &'static str {
        match self {
            Promise::Contact => "contact",
            Promise::Delivery => "delivery",
            Promise::FollowUp => "follow_up",
        }
    }

    pub fn parse(s: &str) -> Option<Promise> {
        Promise::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How long each promise gives (`JOBSYNC_PROMISE_*_S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    pub contact: Duration,
    pub delivery: Duration,
    pub follow_up: Duration,
}

impl Default for Durations {
    /// 24 hours, 72 hours, two weeks.
    fn default() -> Self {
        Durations {
            contact: Duration::hours(24),
            delivery: Duration::hours(72),
            follow_up: Duration::days(14),
        }
    }
}

/// One tracked promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    pub due_at: DateTime<Utc>,
    /// When it was met, on time or late.
    pub met_at: Option<DateTime<Utc>>,
    /// When jobsync found it missed (its due time passed unmet).
    pub missed_at: Option<DateTime<Utc>>,
    /// When the order closed before it was due.
    pub released_at: Option<DateTime<Utc>>,
}

impl Tracked {
    fn due(due_at: DateTime<Utc>) -> Self {
        Tracked {
            due_at,
            met_at: None,
            missed_at: None,
            released_at: None,
        }
    }

    /// Neither met, missed nor released.
    pub fn is_open(&self) -> bool {
        self.met_at.is_none() && self.missed_at.is_none() && self.released_at.is_none()
    }

    /// Met at `at` (also after it was found missed: late); the first time
    /// only.
    fn meet(&mut self, at: DateTime<Utc>) -> bool {
        if self.met_at.is_some() || self.released_at.is_some() {
            return false;
        }
        self.met_at = Some(at);
        true
    }
}

/// An order's promises, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Promises {
    pub contact: Option<Tracked>,
    pub delivery: Option<Tracked>,
    pub follow_up: Option<Tracked>,
    /// Whether the first version seen named a coordinator (then naming one
    /// later does not count as contact).
    pub first_named_coordinator: bool,
}

impl Promises {
    pub fn get(&self, p: Promise) -> Option<&Tracked> {
        match p {
            Promise::Contact => self.contact.as_ref(),
            Promise::Delivery => self.delivery.as_ref(),
            Promise::FollowUp => self.follow_up.as_ref(),
        }
    }

    pub fn get_mut(&mut self, p: Promise) -> Option<&mut Tracked> {
        match p {
            Promise::Contact => self.contact.as_mut(),
            Promise::Delivery => self.delivery.as_mut(),
            Promise::FollowUp => self.follow_up.as_mut(),
        }
    }

    fn set(&mut self, p: Promise, t: Tracked) {
        match p {
            Promise::Contact => self.contact = Some(t),
            Promise::Delivery => self.delivery = Some(t),
            Promise::FollowUp => self.follow_up = Some(t),
        }
    }

    /// The tracked promises, in the order of [`Promise::ALL`].
    pub fn tracked(&self) -> impl Iterator<Item = (Promise, &Tracked)> {
        Promise::ALL
            .into_iter()
            .filter_map(|p| self.get(p).map(|t| (p, t)))
    }

    pub fn is_empty(&self) -> bool {
        self.tracked().next().is_none()
    }

    /// The promises of an order first seen at `now` in version `first`:
    /// contact and delivery for an order the employer made, each only if it
    /// is not already past due (no alarms for old orders loaded in bulk).
    pub fn first_seen(first: &JobOrder, now: DateTime<Utc>, d: &Durations) -> Promises {
        let mut p = Promises {
            first_named_coordinator: first.coordinator.is_some(),
            ..Promises::default()
        };
        if first.origin != Origin::JobAg {
            return p;
        }
        for (promise, after) in [
            (Promise::Contact, d.contact),
            (Promise::Delivery, d.delivery),
        ] {
            let due_at = first.created_at + after;
            if due_at > now {
                p.set(promise, Tracked::due(due_at));
            }
        }
        p
    }

    /// Applies version `o` (applied, in version order): contact is met by
    /// the first version the responsible unit made, or with the status
    /// reason `under_processing`, or naming a coordinator when the first
    /// did not; follow-up by the first version the responsible unit made
    /// after delivery was met; a version that closes the order releases
    /// what was not yet due. Whether anything changed.
    pub fn on_version(&mut self, o: &JobOrder) -> bool {
        let mut changed = false;
        let by_responsible =
            matches!(&o.changed_by, ChangedBy::Unit(u) if *u == o.responsible_unit);
        if let Some(c) = self.contact.as_mut() {
            let contact = by_responsible
                || o.status.reason() == Some(StatusReason::UnderProcessing)
                || (o.coordinator.is_some() && !self.first_named_coordinator);
            if contact {
                changed |= c.meet(o.updated_at);
            }
        }
        let delivered = self.delivery.and_then(|d| d.met_at);
        if let (Some(f), Some(delivered)) = (self.follow_up.as_mut(), delivered) {
            if by_responsible && o.updated_at > delivered {
                changed |= f.meet(o.updated_at);
            }
        }
        if o.status.kind() == StatusKind::Closed {
            for p in Promise::ALL {
                if let Some(t) = self.get_mut(p) {
                    if t.is_open() && t.due_at > o.updated_at {
                        t.released_at = Some(o.updated_at);
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// A candidate became `available_to_company` at `at`: delivery is met
    /// (the first time), and the follow-up is due `follow_up` after it.
    pub fn on_delivery(&mut self, at: DateTime<Utc>, d: &Durations) -> bool {
        let Some(delivery) = self.delivery.as_mut() else {
            return false;
        };
        if !delivery.meet(at) {
            return false;
        }
        if self.follow_up.is_none() {
            self.follow_up = Some(Tracked::due(at + d.follow_up));
        }
        true
    }

    /// The `promises` of the responsible unit's view: none for an order
    /// without tracked promises.
    pub fn view(&self) -> Option<std::collections::BTreeMap<String, PromiseView>> {
        use super::fields::canonical_timestamp;
        if self.is_empty() {
            return None;
        }
        Some(
            self.tracked()
                .map(|(p, t)| {
                    let view = PromiseView {
                        due_at: canonical_timestamp(t.due_at),
                        met_at: t.met_at.map(canonical_timestamp),
                        missed: t.missed_at.is_some(),
                    };
                    (p.as_str().to_owned(), view)
                })
                .collect(),
        )
    }

    /// Marks every open promise whose due time is before `now` missed at
    /// `now`; which ones.
    pub fn miss_due(&mut self, now: DateTime<Utc>) -> Vec<Promise> {
        let mut missed = Vec::new();
        for p in Promise::ALL {
            if let Some(t) = self.get_mut(p) {
                if t.is_open() && t.due_at <= now {
                    t.missed_at = Some(now);
                    missed.push(p);
                }
            }
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Version `v` of an order the employer made on 2026-12-01 at 08:00,
    /// changed by `by` at `updated_at`.
    fn version(
        v: i64,
        by: serde_json::Value,
        updated_at: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> JobOrder {
        let mut data = json!({
            "job_order_id": "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00", "version": v,
            "request_id": null, "origin": "jobag", "changed_by": by,
            "title": "Svejser", "occupation": {"name": "Svejser", "alias": null, "code": null},
            "employer": {"cvr": "10150817", "p_number": null, "name": "Brøndby Stål", "conflict_affected": false},
            "contact": {"name": "Søren", "email": null, "phone": "+4543212345"},
            "responsible_unit": {"type": "jobcenter", "code": "15300"},
            "coordinator": null, "coordinator_allowed": false,
            "descriptions": {"tasks": "Svejsning", "qualifications_and_pay": null, "working_hours": null},
            "continuous": false, "positions": 1, "expected_start": null, "mediation_deadline": null,
            "status": "open", "status_reason": null, "status_comment": null,
            "sharing": {"scope": "internal", "units": []},
            "created_at": "2026-12-01T08:00:00Z", "updated_at": updated_at
        });
        edit(&mut data);
        crate::domain::joborder::parse(
            &data.to_string(),
            Some("9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00"),
        )
        .unwrap()
    }

    fn employer() -> serde_json::Value {
        json!({"kind": "employer"})
    }

    fn unit(code: &str) -> serde_json::Value {
        json!({"kind": "unit", "unit": {"type": "jobcenter", "code": code}})
    }

    #[test]
    fn an_employer_s_order_is_tracked_unless_already_past_due_and_a_unit_s_never() {
        let d = Durations::default();
        let v1 = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
        let p = Promises::first_seen(&v1, at("2026-12-01T09:00:00Z"), &d);
        assert_eq!(p.contact.unwrap().due_at, at("2026-12-02T08:00:00Z"));
        assert_eq!(p.delivery.unwrap().due_at, at("2026-12-04T08:00:00Z"));
        assert!(p.follow_up.is_none());
        // Seen first two days later: contact is past due, not tracked.
        let p = Promises::first_seen(&v1, at("2026-12-03T08:00:00Z"), &d);
        assert!(p.contact.is_none());
        assert!(p.delivery.is_some());
        let own = version(1, unit("15300"), "2026-12-01T08:00:00Z", |o| {
            o["origin"] = json!("unit")
        });
        assert!(Promises::first_seen(&own, at("2026-12-01T09:00:00Z"), &d).is_empty());
    }

    #[test]
    fn contact_is_met_by_the_responsible_unit_under_processing_or_a_first_coordinator() {
        let d = Durations::default();
        let now = at("2026-12-01T08:00:00Z");
        let first = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, serde_json::Value, Edit, bool); 5] = [
            ("the responsible unit", unit("15300"), |_| {}, true),
            ("another unit", unit("16700"), |_| {}, false),
            ("the employer again", employer(), |_| {}, false),
            (
                "under processing",
                employer(),
                |o| o["status_reason"] = json!("under_processing"),
                true,
            ),
            (
                "a coordinator",
                employer(),
                |o| o["coordinator"] = json!({"id": "c-1", "name": "Åse"}),
                true,
            ),
        ];
        for (what, by, edit, met) in cases {
            let mut p = Promises::first_seen(&first, now, &d);
            let v2 = version(2, by, "2026-12-01T10:00:00Z", edit);
            assert_eq!(p.on_version(&v2), met, "{what}");
            assert_eq!(p.contact.unwrap().met_at.is_some(), met, "{what}");
        }
        // A coordinator already in the first version is no contact.
        let with = version(1, employer(), "2026-12-01T08:00:00Z", |o| {
            o["coordinator"] = json!({"id": "c-1", "name": "Åse"})
        });
        let mut p = Promises::first_seen(&with, now, &d);
        let v2 = version(2, employer(), "2026-12-01T10:00:00Z", |o| {
            o["coordinator"] = json!({"id": "c-2", "name": "Bo"})
        });
        assert!(!p.on_version(&v2));
    }

    #[test]
    fn a_late_meeting_is_recorded_and_a_met_promise_stays_met() {
        let d = Durations::default();
        let first = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
        let mut p = Promises::first_seen(&first, at("2026-12-01T08:00:00Z"), &d);
        assert_eq!(
            p.miss_due(at("2026-12-02T09:00:00Z")),
            vec![Promise::Contact]
        );
        assert!(p.miss_due(at("2026-12-02T10:00:00Z")).is_empty(), "once");
        p.on_version(&version(2, unit("15300"), "2026-12-02T12:00:00Z", |_| {}));
        let c = p.contact.unwrap();
        assert_eq!(c.met_at, Some(at("2026-12-02T12:00:00Z")));
        assert!(c.missed_at.is_some());
        assert!(!p.on_version(&version(3, unit("15300"), "2026-12-02T13:00:00Z", |_| {})));
        assert_eq!(p.contact.unwrap().met_at, Some(at("2026-12-02T12:00:00Z")));
    }

    #[test]
    fn delivery_starts_the_follow_up_which_the_responsible_unit_meets_later() {
        let d = Durations::default();
        let first = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
        let mut p = Promises::first_seen(&first, at("2026-12-01T08:00:00Z"), &d);
        assert!(p.on_delivery(at("2026-12-02T08:00:00Z"), &d));
        assert!(
            !p.on_delivery(at("2026-12-03T08:00:00Z"), &d),
            "the first delivery only"
        );
        let f = p.follow_up.unwrap();
        assert_eq!(f.due_at, at("2026-12-16T08:00:00Z"));
        // A version before the delivery does not follow up; one after does.
        assert!(p.on_version(&version(2, unit("15300"), "2026-12-01T20:00:00Z", |_| {})));
        assert!(p.follow_up.unwrap().met_at.is_none());
        p.on_version(&version(3, unit("15300"), "2026-12-09T08:00:00Z", |_| {}));
        assert_eq!(
            p.follow_up.unwrap().met_at,
            Some(at("2026-12-09T08:00:00Z"))
        );
    }

    #[test]
    fn closing_releases_what_is_not_yet_due_and_nothing_is_missed_after() {
        let d = Durations::default();
        let first = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
        let mut p = Promises::first_seen(&first, at("2026-12-01T08:00:00Z"), &d);
        p.on_version(&version(2, employer(), "2026-12-02T09:00:00Z", |o| {
            o["status"] = json!("closed");
            o["status_reason"] = json!("need_fulfilled");
            o["status_comment"] = json!("Besat");
        }));
        // Contact was due at 2026-12-02T08:00, before the close: still open
        // (the checker finds it missed); delivery was not due: released.
        assert!(p.contact.unwrap().is_open());
        assert!(p.delivery.unwrap().released_at.is_some());
        assert_eq!(
            p.miss_due(at("2026-12-10T00:00:00Z")),
            vec![Promise::Contact]
        );
    }

    proptest::proptest! {
        /// No promise is missed for an order closed before it was due,
        /// whenever the close comes and whenever the check runs.
        #[test]
        fn nothing_due_after_a_close_is_ever_missed(
            close_after_min in 0i64..(6 * 24 * 60),
            check_after_min in 0i64..(30 * 24 * 60),
            delivered_after_min in proptest::option::of(0i64..(3 * 24 * 60)),
        ) {
            let d = Durations::default();
            let created = at("2026-12-01T08:00:00Z");
            let first = version(1, employer(), "2026-12-01T08:00:00Z", |_| {});
            let mut p = Promises::first_seen(&first, created, &d);
            let close_at = created + Duration::minutes(close_after_min);
            if let Some(m) = delivered_after_min {
                let at = created + Duration::minutes(m);
                if at < close_at {
                    p.on_delivery(at, &d);
                }
            }
            let close = version(2, employer(), &close_at.to_rfc3339(), |o| {
                o["status"] = json!("closed");
                o["status_reason"] = json!("need_fulfilled");
                o["status_comment"] = json!("Besat");
            });
            p.on_version(&close);
            let missed = p.miss_due(created + Duration::minutes(check_after_min));
            for promise in missed {
                let t = p.get(promise).unwrap();
                proptest::prop_assert!(t.due_at <= close_at, "{:?} due {} after the close at {}", promise, t.due_at, close_at);
            }
        }
    }
}
