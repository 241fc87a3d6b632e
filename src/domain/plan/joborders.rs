//! Job order snapshots (section 4.1): per order, the decisions in version
//! order, who gains and loses it, what each unit is told and which
//! lifecycle events go out; the rows to write are the last applied version
//! of each order, its sharing and the units it lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{log_notifications, Cause, FormerUnit, Output};
use crate::contract::mediationlog::MediationLogData;
use crate::contract::outbound::Data;
use crate::domain::expiry::has_passed;
use crate::domain::fanout::{lifecycle, order_changes, revoked_view, Seen};
use crate::domain::joborder::{decide, Applied, Context, Decision, JobOrder, StoredOrder};
use crate::domain::mediationlog::FormerRole;
use crate::domain::message::{Inbound, Outcome, Payload};
use crate::domain::promises::{Durations, Promises};
use crate::domain::unit::Unit;
use crate::domain::views::{responsible_order_view, shared_order_view, OrderExtras};

/// What the store knows of a batch's orders before the batch.
#[derive(Debug, Default)]
pub struct State {
    /// The stored orders.
    pub orders: HashMap<Uuid, StoredOrder>,
    /// When each expired.
    pub expired: HashMap<Uuid, Option<DateTime<Utc>>>,
    /// What its units were last told: the hashes of the responsible and
    /// of the shared view.
    pub hashes: HashMap<Uuid, (Vec<u8>, Vec<u8>)>,
    /// Who each is shared with, and since when.
    pub sharing: HashMap<Uuid, BTreeMap<Unit, DateTime<Utc>>>,
    /// Its mediation log's counts: entries in all, undecided.
    pub log_counts: HashMap<Uuid, (i32, i32)>,
    /// The logs of the orders [`handed_over`] names, and what each of
    /// their units was last told of them.
    pub logs: HashMap<Uuid, MediationLogData>,
    pub log_hashes: HashMap<Uuid, BTreeMap<Unit, Vec<u8>>>,
    /// The service promises of those that have any.
    pub promises: HashMap<Uuid, Promises>,
}

/// The last version of an order a batch applied, with what its units were
/// told: what the upsert writes.
#[derive(Debug)]
pub struct Final<'a> {
    pub order: &'a JobOrder,
    pub applied: Applied,
    pub expired_at: Option<DateTime<Utc>>,
    pub responsible_view_hash: Vec<u8>,
    pub shared_view_hash: Vec<u8>,
}

/// What to write and publish for a batch's job order snapshots.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Per message index, what became of it.
    pub outcomes: Vec<(usize, Outcome)>,
    /// The last applied version of each order.
    pub finals: Vec<Final<'a>>,
    /// Orders whose sharing changed, with who they are shared with now
    /// (since when)…
    pub sharing: Vec<(Uuid, BTreeMap<Unit, DateTime<Utc>>)>,
    /// …and of those, the ones that had sharing rows to delete.
    pub unshared: Vec<Uuid>,
    /// Units that lost an order.
    pub former: Vec<FormerUnit>,
    /// What each unit was told now of the logs of handed-over orders.
    pub log_hashes: Vec<(Uuid, BTreeMap<Unit, Vec<u8>>)>,
    /// The orders whose service promises changed, with them as they are now.
    pub promises: Vec<(Uuid, Promises)>,
}

fn order(messages: &[Inbound], i: usize) -> &JobOrder {
    match &messages[i].payload {
        Payload::JobOrder(o) => o,
        Payload::MediationLog(_) => unreachable!("only job order snapshots are planned here"),
    }
}

/// The orders among `messages[i]` (`i` in `indices`) that some message hands
/// over to another unit: their logs' views change too, so the store loads
/// their logs into [`State::logs`].
pub fn handed_over(state: &State, messages: &[Inbound], indices: &[usize]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = indices
        .iter()
        .map(|&i| order(messages, i))
        .filter(|o| {
            state
                .orders
                .get(&o.id)
                .is_some_and(|s| s.responsible_unit != o.responsible_unit)
        })
        .map(|o| o.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Plans the job order snapshots `messages[i]` for `i` in `indices` (first
/// deliveries of new message ids) against `state`, at `now`, with the
/// service promises' `durations`. What goes out is handed to `out` as it is
/// decided, in order (so that a batch's views are not all held at once).
pub fn plan<'a>(
    mut state: State,
    messages: &'a [Inbound],
    indices: &[usize],
    now: DateTime<Utc>,
    durations: &Durations,
    out: &mut impl FnMut(Output),
) -> Plan<'a> {
    let mut plan = Plan::default();
    // Per order, the messages in version order (arrival order within a version).
    let mut by_order: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for &i in indices {
        by_order.entry(order(messages, i).id).or_default().push(i);
    }
    for (id, mut group) in by_order {
        group.sort_by_key(|&i| (order(messages, i).version, i));
        let mut current = state.orders.remove(&id);
        // Who the order is shared with, and since when.
        let before: BTreeMap<Unit, DateTime<Utc>> = state.sharing.remove(&id).unwrap_or_default();
        let mut sharing = before.clone();
        let (total, undecided) = state.log_counts.get(&id).copied().unwrap_or((0, 0));
        let context = Context {
            has_mediation_entries: total > 0,
        };
        // What the units were told; for an order stored without it (before
        // notifications existed), its units count as told something else,
        // so that they all get the view now and the lost ones are revoked.
        let mut seen: Option<Seen> = current.as_ref().map(|c| {
            let (responsible_hash, shared_hash) = state.hashes.remove(&id).unwrap_or_default();
            Seen {
                responsible: c.responsible_unit.clone(),
                shared: before.keys().cloned().collect(),
                responsible_hash,
                shared_hash,
            }
        });
        let mut expired_at = state.expired.get(&id).copied().flatten();
        let mut unit_log_hashes = state.log_hashes.remove(&id);
        let mut promises = state.promises.remove(&id);
        let mut promises_changed = false;
        let mut last_applied: Option<(&JobOrder, Applied, Option<DateTime<Utc>>)> = None;
        for i in group {
            let o = order(messages, i);
            let outcome = match decide(current.as_ref(), o, context) {
                Decision::Apply(applied) => {
                    // A deadline moved into the future (or dropped) undoes
                    // an expiry.
                    if o.mediation_deadline.is_none_or(|d| !has_passed(d, now)) {
                        expired_at = None;
                    }
                    // Who gains and who loses the order with this version,
                    // and when: a unit in the first version seen counts as
                    // shared with from the order's creation.
                    let units: BTreeSet<Unit> = o.sharing.units().iter().cloned().collect();
                    let gained_at = if current.is_some() {
                        o.updated_at
                    } else {
                        o.created_at
                    };
                    let next: BTreeMap<Unit, DateTime<Utc>> = units
                        .iter()
                        .map(|u| (u.clone(), sharing.get(u).copied().unwrap_or(gained_at)))
                        .collect();
                    for (unit, &since) in &sharing {
                        if !units.contains(unit) {
                            plan.former.push(FormerUnit {
                                job_order_id: id,
                                unit: unit.clone(),
                                role: FormerRole::Shared,
                                since,
                                until: o.updated_at,
                                version: o.version,
                            });
                        }
                    }
                    if let (Some(from), Some(c)) = (&applied.handed_over_from, &current) {
                        plan.former.push(FormerUnit {
                            job_order_id: id,
                            unit: from.clone(),
                            role: FormerRole::Responsible,
                            since: c.timeline.responsible_since,
                            until: o.updated_at,
                            version: o.version,
                        });
                    }
                    // The service promises: set up when the order is first
                    // seen, kept or met by each version.
                    if current.is_none() && promises.is_none() {
                        let first = Promises::first_seen(o, now, durations);
                        promises_changed |= !first.is_empty();
                        promises = Some(first);
                    }
                    if let Some(p) = promises.as_mut() {
                        promises_changed |= p.on_version(o);
                    }
                    // Who is told what.
                    let extras = OrderExtras {
                        coordinator_reassignment_needed: applied.coordinator_reassignment_needed,
                        expired_at,
                        undecided_candidates: undecided,
                        promises: promises.unwrap_or_default(),
                    };
                    let (notifications, told) = order_changes(
                        seen.as_ref(),
                        &o.responsible_unit,
                        &units,
                        responsible_order_view(&o.wire, extras),
                        shared_order_view(&o.wire, expired_at),
                        |reason| revoked_view(&o.wire.job_order_id, o.wire.version, reason),
                    );
                    out(Output::Notify {
                        cause: Cause::Message(i),
                        job_order_id: id,
                        order_version: o.version,
                        notifications,
                    });
                    let was = current.as_ref().map(|c| (c.status, &c.responsible_unit));
                    for (event, data) in lifecycle(was, &o.wire) {
                        out(Output::Lifecycle {
                            cause: Cause::Message(i),
                            job_order_id: id,
                            order_version: o.version,
                            event,
                            data: Box::new(Data::Lifecycle(data)),
                        });
                    }
                    if applied.handed_over_from.is_some() {
                        if let Some(log) = state.logs.get(&id) {
                            let (notifications, after) = log_notifications(
                                log,
                                &o.responsible_unit,
                                &unit_log_hashes.take().unwrap_or_default(),
                            );
                            out(Output::Notify {
                                cause: Cause::Message(i),
                                job_order_id: id,
                                order_version: o.version,
                                notifications,
                            });
                            unit_log_hashes = Some(after);
                        }
                    }
                    seen = Some(told);
                    sharing = next;
                    current = Some(StoredOrder::after(o, &applied));
                    last_applied = Some((o, applied, expired_at));
                    Outcome::Applied
                }
                Decision::Stale => Outcome::Stale,
                Decision::Duplicate => Outcome::Duplicate,
                Decision::Reject(r) => Outcome::Rejected(r),
            };
            plan.outcomes.push((i, outcome));
        }
        if let Some((order, applied, expired_at)) = last_applied {
            if sharing != before {
                if !before.is_empty() {
                    plan.unshared.push(id);
                }
                plan.sharing.push((id, sharing));
            }
            if let Some(h) = unit_log_hashes {
                plan.log_hashes.push((id, h));
            }
            if let (true, Some(p)) = (promises_changed, promises) {
                plan.promises.push((id, p));
            }
            let told = seen.expect("an applied version told its units");
            plan.finals.push(Final {
                order,
                applied,
                expired_at,
                responsible_view_hash: told.responsible_hash,
                shared_view_hash: told.shared_hash,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    //! The planner without a database: state in, plan out.

    use super::*;
    use crate::domain::fanout::Event;
    use crate::domain::joborder::{Applied, Decision};
    use crate::trace::TraceContext;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/joborder/valid/full-order-all-fields.json");

    /// The fixture's order (version 3, responsible jobcentre 15300, shared
    /// with 16700 and 18300) at `version`, with `edit` applied to its data.
    fn message(version: i64, edit: impl FnOnce(&mut serde_json::Value)) -> Inbound {
        let event: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let mut data = event["data"].clone();
        data["version"] = version.into();
        edit(&mut data);
        let order = crate::domain::joborder::parse(&data.to_string(), event["subject"].as_str())
            .expect("the fixture is valid");
        Inbound {
            message_id: format!("m{version}"),
            payload: Payload::JobOrder(Box::new(order)),
            trace: TraceContext::child_of(None),
            hub_time: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn events(outputs: &[Output]) -> Vec<(Event, Vec<String>)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Notify { notifications, .. } => Some(notifications),
                Output::Lifecycle { .. } => None,
            })
            .flatten()
            .map(|n| {
                (
                    n.event,
                    n.recipients.iter().map(ToString::to_string).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_order_tells_its_units_and_is_created() {
        let messages = [message(3, |_| {})];
        let mut outputs = Vec::new();
        let plan = plan(
            State::default(),
            &messages,
            &[0],
            now(),
            &Durations::default(),
            &mut |o| outputs.push(o),
        );
        assert_eq!(plan.outcomes, [(0, Outcome::Applied)]);
        assert_eq!(plan.finals.len(), 1);
        assert_eq!(
            events(&outputs),
            [
                (Event::JobOrderUpdated, vec!["jobcenter:15300".to_owned()]),
                (
                    Event::JobOrderUpdated,
                    vec!["jobcenter:16700".to_owned(), "jobcenter:18300".to_owned()]
                ),
            ]
        );
        assert!(outputs.iter().any(|o| matches!(
            o,
            Output::Lifecycle {
                event: crate::domain::fanout::Lifecycle::Created,
                ..
            }
        )));
        assert_eq!(plan.sharing.len(), 1, "its sharing rows are written");
        assert!(plan.unshared.is_empty() && plan.former.is_empty());
    }

    #[test]
    fn versions_in_one_batch_apply_in_order_and_an_unshared_unit_is_revoked() {
        // Version 4 made internal arrives before version 3.
        let messages = [
            message(4, |d| {
                d["sharing"] = serde_json::json!({"scope": "internal"})
            }),
            message(3, |_| {}),
        ];
        let mut outputs = Vec::new();
        let plan = plan(
            State::default(),
            &messages,
            &[0, 1],
            now(),
            &Durations::default(),
            &mut |o| outputs.push(o),
        );
        assert_eq!(
            plan.outcomes,
            [(1, Outcome::Applied), (0, Outcome::Applied)],
            "version order, not arrival order"
        );
        let told = events(&outputs);
        assert!(told.contains(&(Event::JobOrderRevoked, vec!["jobcenter:16700".to_owned()])));
        assert!(told.contains(&(Event::JobOrderRevoked, vec!["jobcenter:18300".to_owned()])));
        assert_eq!(plan.former.len(), 2);
        assert!(plan.former.iter().all(|f| f.role == FormerRole::Shared));
        assert_eq!(plan.finals.len(), 1);
        assert_eq!(
            plan.finals[0].order.version, 4,
            "the last version is written"
        );
    }

    #[test]
    fn an_older_version_than_the_stored_one_is_stale_and_tells_nobody() {
        let newer = message(5, |_| {});
        let Payload::JobOrder(o) = &newer.payload else {
            unreachable!()
        };
        let Decision::Apply(applied) = decide(None, o, Context::default()) else {
            panic!("a first version applies")
        };
        let applied: Applied = applied;
        let mut state = State::default();
        state.orders.insert(o.id, StoredOrder::after(o, &applied));
        let messages = [message(3, |_| {})];
        let mut outputs = Vec::new();
        let plan = plan(
            state,
            &messages,
            &[0],
            now(),
            &Durations::default(),
            &mut |o| outputs.push(o),
        );
        assert_eq!(plan.outcomes, [(0, Outcome::Stale)]);
        assert!(outputs.is_empty() && plan.finals.is_empty());
    }
}
