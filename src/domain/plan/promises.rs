//! Missed service promises (section 11): the open promises of the orders a
//! check took whose due time has passed are missed, once. The responsible
//! unit is told (`joborder.promise-missed`, and `joborder.updated` since its
//! view's `promises` changed) and the event goes out on `jobsync.events`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Cause, Output};
use crate::contract::outbound::{Data, PromiseMissedData};
use crate::domain::fanout::{Event, Lifecycle, Notification};
use crate::domain::fields::canonical_timestamp;
use crate::domain::promises::{Promise, Promises};
use crate::domain::views::{responsible_order_view, responsible_unit, OrderExtras, View};

/// What the store knows of the orders a check took: what an expiry pass
/// knows of its orders.
pub use super::expiry::State;

/// What to write and publish for a check.
#[derive(Debug, Default)]
pub struct Plan {
    /// The orders whose promises changed, with them as they are now.
    pub promises: Vec<(Uuid, Promises)>,
    /// What the responsible and the shared units were told now of each.
    pub order_hashes: Vec<(Uuid, Vec<u8>, Vec<u8>)>,
    /// Each promise found missed.
    pub missed: Vec<Promise>,
}

/// Plans the check of the orders in `state` at `now`; what goes out is
/// handed to `out`, in order.
pub fn plan(state: &State, now: DateTime<Utc>, out: &mut impl FnMut(Output)) -> Plan {
    let mut plan = Plan::default();
    let mut ids: Vec<&Uuid> = state.views.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let f = &state.views[id];
        let id = *id;
        let mut promises = f.promises;
        let missed = promises.miss_due(now);
        let Some(&first) = missed.first() else {
            continue;
        };
        let responsible = responsible_unit(&f.snapshot);
        for &p in &missed {
            let due_at = promises
                .get(p)
                .map(|t| t.due_at)
                .expect("a missed promise is tracked");
            let data = Data::PromiseMissed(PromiseMissedData {
                due_at: canonical_timestamp(due_at),
                job_order_id: f.snapshot.job_order_id.clone(),
                promise: p.as_str(),
                version: f.snapshot.version,
            });
            out(Output::Notify {
                cause: Cause::Promise(p),
                job_order_id: id,
                order_version: f.version,
                notifications: vec![Notification {
                    event: Event::JobOrderPromiseMissed,
                    recipients: vec![responsible.clone()],
                    view: View {
                        data: data.clone(),
                        redactions: 0,
                    },
                }],
            });
            out(Output::Lifecycle {
                cause: Cause::Promise(p),
                job_order_id: id,
                order_version: f.version,
                event: Lifecycle::PromiseMissed,
                data: Box::new(data),
            });
        }
        // The responsible unit's view shows the promise missed.
        let view = responsible_order_view(
            &f.snapshot,
            OrderExtras {
                coordinator_reassignment_needed: f.coordinator_reassignment_needed,
                expired_at: f.expired_at,
                undecided_candidates: state
                    .log_counts
                    .get(&id)
                    .map_or(0, |&(_, undecided)| undecided),
                promises,
            },
        );
        let hash = view.content_hash();
        if hash != f.told.0 {
            out(Output::Notify {
                cause: Cause::Promise(first),
                job_order_id: id,
                order_version: f.version,
                notifications: vec![Notification {
                    event: Event::JobOrderUpdated,
                    recipients: vec![responsible],
                    view,
                }],
            });
        }
        plan.order_hashes.push((id, hash, f.told.1.clone()));
        plan.promises.push((id, promises));
        plan.missed.extend(missed);
    }
    plan
}
