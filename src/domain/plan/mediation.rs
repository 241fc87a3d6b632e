//! Mediation log snapshots (section 4.2): per order, the decisions in
//! version order against the order as it stood, the entries' status
//! changes for the history, and what each unit is told: the log views that
//! changed, and the responsible unit's order view when its count of
//! undecided candidates changed.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{log_notifications, Cause, Output, ViewFacts};
use crate::contract::rejection::{ErrorCode, Rejection};
use crate::domain::fanout::{Event, Notification};
use crate::domain::mediationlog::{
    decide, EntryStatus, LogDecision, MediationLog, OrderFacts, StatusChange, StoredLog,
};
use crate::domain::message::{Inbound, Outcome, Payload};
use crate::domain::promises::{Durations, Promises};
use crate::domain::unit::Unit;
use crate::domain::views::{responsible_order_view, OrderExtras};

/// What the store knows of a batch's logs and their orders before the
/// batch.
#[derive(Debug, Default)]
pub struct State {
    /// The stored orders, with what the log rules need of them.
    pub orders: HashMap<Uuid, OrderFacts>,
    /// The stored logs.
    pub logs: HashMap<Uuid, StoredLog>,
    /// What the responsible unit's order view of each stored order is made
    /// of.
    pub views: HashMap<Uuid, ViewFacts>,
    /// What each unit was last told of each log.
    pub log_hashes: HashMap<Uuid, BTreeMap<Unit, Vec<u8>>>,
}

/// What to write and publish for a batch's mediation log snapshots.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Per message index, what became of it.
    pub outcomes: Vec<(usize, Outcome)>,
    /// The last applied version of each log.
    pub finals: Vec<&'a MediationLog>,
    /// The entries' status changes, with the log and the message id that
    /// brought them.
    pub history: Vec<(&'a MediationLog, &'a str, StatusChange)>,
    /// What the responsible and the shared units were told now of each
    /// order.
    pub order_hashes: Vec<(Uuid, Vec<u8>, Vec<u8>)>,
    /// What each unit was told now of each log.
    pub log_hashes: Vec<(Uuid, BTreeMap<Unit, Vec<u8>>)>,
    /// The orders whose service promises changed (delivery met), with them
    /// as they are now.
    pub promises: Vec<(Uuid, Promises)>,
}

fn log(messages: &[Inbound], i: usize) -> &MediationLog {
    match &messages[i].payload {
        Payload::MediationLog(l) => l,
        Payload::JobOrder(_) => unreachable!("only mediation log snapshots are planned here"),
    }
}

/// Plans the mediation log snapshots `messages[i]` for `i` in `indices`
/// (first deliveries of new message ids) against `state`, with the service
/// promises' `durations`. What goes out is handed to `out` as it is
/// decided, in order.
pub fn plan<'a>(
    mut state: State,
    messages: &'a [Inbound],
    indices: &[usize],
    durations: &Durations,
    out: &mut impl FnMut(Output),
) -> Plan<'a> {
    let mut plan = Plan::default();
    let mut by_order: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for &i in indices {
        by_order
            .entry(log(messages, i).job_order_id)
            .or_default()
            .push(i);
    }
    for (id, mut group) in by_order {
        let Some(order) = state.orders.get(&id) else {
            for i in group {
                plan.outcomes.push((
                    i,
                    Outcome::NotYet(Rejection::beyond_schema(
                        ErrorCode::JobOrderUnknown,
                        format!("data.job_order_id: job order {id} is not known"),
                    )),
                ));
            }
            continue;
        };
        group.sort_by_key(|&i| (log(messages, i).version, i));
        let mut current = state.logs.remove(&id);
        let mut last_applied = None;
        let view_of = state
            .views
            .get(&id)
            .expect("a known order has its snapshot");
        let mut unit_hashes = state.log_hashes.remove(&id).unwrap_or_default();
        let (mut responsible_hash, shared_hash) = view_of.told.clone();
        let mut promises = view_of.promises;
        let mut promises_changed = false;
        for i in group {
            let l = log(messages, i);
            let outcome = match decide(current.as_ref(), order, l) {
                LogDecision::Apply(changes) => {
                    // A candidate made available to the employer delivers.
                    let delivered = changes
                        .iter()
                        .filter(|c| c.to == EntryStatus::AvailableToCompany)
                        .map(|c| c.at)
                        .min();
                    if let Some(at) = delivered {
                        promises_changed |= promises.on_delivery(at, durations);
                    }
                    let message_id = messages[i].message_id.as_str();
                    plan.history
                        .extend(changes.into_iter().map(|c| (l, message_id, c)));
                    // Who is told what: each viewer's log view, and the
                    // responsible unit's order view (its undecided count).
                    let responsible = &order.responsible_unit;
                    let (mut notifications, after) =
                        log_notifications(&l.wire, responsible, &unit_hashes);
                    unit_hashes = after;
                    let order_view = responsible_order_view(
                        &view_of.snapshot,
                        OrderExtras {
                            coordinator_reassignment_needed: view_of
                                .coordinator_reassignment_needed,
                            expired_at: view_of.expired_at,
                            undecided_candidates: l.counts().undecided,
                            promises,
                        },
                    );
                    let hash = order_view.content_hash();
                    if hash != responsible_hash {
                        responsible_hash = hash;
                        notifications.push(Notification {
                            event: Event::JobOrderUpdated,
                            recipients: vec![responsible.clone()],
                            view: order_view,
                        });
                    }
                    out(Output::Notify {
                        cause: Cause::Message(i),
                        job_order_id: id,
                        order_version: view_of.version,
                        notifications,
                    });
                    current = Some(StoredLog::after(l));
                    last_applied = Some(l);
                    Outcome::Applied
                }
                LogDecision::Stale => Outcome::Stale,
                LogDecision::Duplicate => Outcome::Duplicate,
                LogDecision::Reject(r) => Outcome::Rejected(r),
                LogDecision::Wait(r) => Outcome::NotYet(r),
            };
            plan.outcomes.push((i, outcome));
        }
        if last_applied.is_some() {
            plan.order_hashes.push((id, responsible_hash, shared_hash));
            plan.log_hashes.push((id, unit_hashes));
        }
        if promises_changed {
            plan.promises.push((id, promises));
        }
        plan.finals.extend(last_applied);
    }
    plan
}
