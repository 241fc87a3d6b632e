//! Expiry (section 6): the due orders a pass took expire at `now`; every
//! unit that can see one is told (`joborder.expired`), whatever it was told
//! before, and the lifecycle event goes out.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Cause, Output, ViewFacts};
use crate::contract::outbound::Data;
use crate::domain::fanout::{lifecycle_data, order_changes, Event, Lifecycle};
use crate::domain::views::{
    responsible_order_view, responsible_unit, shared_order_view, shared_units, OrderExtras,
};

/// What the store knows of the due orders a pass took.
#[derive(Debug, Default)]
pub struct State {
    pub views: HashMap<Uuid, ViewFacts>,
    /// Their mediation logs' counts: entries in all, undecided.
    pub log_counts: HashMap<Uuid, (i32, i32)>,
}

/// What to write and publish for an expiry pass.
#[derive(Debug, Default)]
pub struct Plan {
    /// The orders that expire.
    pub expired: Vec<Uuid>,
    /// What the responsible and the shared units were told now of each.
    pub order_hashes: Vec<(Uuid, Vec<u8>, Vec<u8>)>,
}

/// Plans the expiry of every order in `state` at `now`; what goes out is
/// handed to `out`, in order.
pub fn plan(state: &State, now: DateTime<Utc>, out: &mut impl FnMut(Output)) -> Plan {
    let mut plan = Plan::default();
    let mut ids: Vec<&Uuid> = state.views.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let f = &state.views[id];
        let (id, snapshot, version) = (*id, &f.snapshot, f.version);
        let responsible = responsible_unit(snapshot);
        let shared: BTreeSet<_> = shared_units(snapshot).into_iter().collect();
        let extras = OrderExtras {
            coordinator_reassignment_needed: f.coordinator_reassignment_needed,
            expired_at: Some(now),
            undecided_candidates: state
                .log_counts
                .get(&id)
                .map_or(0, |&(_, undecided)| undecided),
            promises: f.promises,
        };
        // Every unit that can see the order is told, whatever it was told
        // before: nobody counts as having seen the expired view.
        let (mut notifications, told) = order_changes(
            None,
            &responsible,
            &shared,
            responsible_order_view(snapshot, extras),
            shared_order_view(snapshot, Some(now)),
            |_| unreachable!("nobody loses the order by expiry"),
        );
        for n in &mut notifications {
            n.event = Event::JobOrderExpired;
        }
        out(Output::Notify {
            cause: Cause::Expiry,
            job_order_id: id,
            order_version: version,
            notifications,
        });
        out(Output::Lifecycle {
            cause: Cause::Expiry,
            job_order_id: id,
            order_version: version,
            event: Lifecycle::Expired,
            data: Box::new(Data::Lifecycle(lifecycle_data(snapshot, None))),
        });
        plan.expired.push(id);
        plan.order_hashes
            .push((id, told.responsible_hash, told.shared_hash));
    }
    plan
}
