//! The message model the worker, the planner and the store share: an inbound
//! message parsed and ready to apply, and what became of it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contract::rejection::Rejection;
use crate::domain::joborder::JobOrder;
use crate::domain::mediationlog::MediationLog;
use crate::trace::TraceContext;

/// A parsed inbound message, ready to apply.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The CloudEvents `id`: the same id is the same message.
    pub message_id: String,
    pub payload: Payload,
    /// The worker's span for it: what it causes carries this `traceparent`.
    pub trace: TraceContext,
    /// The envelope's `time`: the end-to-end lag of what it causes is
    /// measured from it.
    pub hub_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub enum Payload {
    JobOrder(Box<JobOrder>),
    MediationLog(MediationLog),
}

impl Inbound {
    /// The job order the message is about.
    pub fn job_order_id(&self) -> Uuid {
        match &self.payload {
            Payload::JobOrder(o) => o.id,
            Payload::MediationLog(l) => l.job_order_id,
        }
    }

    /// The hub version it carries (of the order, or of its log).
    pub fn version(&self) -> i64 {
        match &self.payload {
            Payload::JobOrder(o) => o.version,
            Payload::MediationLog(l) => l.version,
        }
    }

    /// Roughly how many rows applying it writes and how many units it
    /// reaches: one, plus one per unit its order is shared with by name
    /// (each has a change-feed row, and a routing key in a notification).
    pub fn weight(&self) -> usize {
        match &self.payload {
            Payload::JobOrder(o) => 1 + o.sharing.units().len(),
            Payload::MediationLog(_) => 1,
        }
    }
}

/// Splits `items` into runs weighing at most `limit` by `weight` (an item
/// weighing more is a run of its own), in order.
pub fn runs<T>(items: Vec<T>, limit: usize, weight_of: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut weight = 0;
    for m in items {
        let w = weight_of(&m);
        match runs.last_mut() {
            Some(run) if weight + w <= limit => run.push(m),
            _ => {
                weight = 0;
                runs.push(vec![m]);
            }
        }
        weight += w;
    }
    runs
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Older than the stored version.
    Stale,
    /// A message id already processed, or the stored version again with the
    /// same content.
    Duplicate,
    Rejected(Rejection),
    /// A mediation log that cannot be applied yet (its job order is not
    /// stored, or a rule fails against an order version older than an
    /// entry): nothing was applied; the caller retries it later, or rejects
    /// it with this rejection once it waited long enough.
    NotYet(Rejection),
}

impl Outcome {
    /// The `outcome` label of `jobsync_messages_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected(_) => "rejected",
            Outcome::NotYet(_) => "retried",
        }
    }

    /// Whether the message is done with, so its id goes into the inbox.
    pub fn is_final(&self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Stale | Outcome::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_keep_the_order_and_stay_within_the_limit() {
        let weights = vec![3, 3, 3, 1, 9, 2];
        let split = runs(weights, 7, |w| *w);
        assert_eq!(split, vec![vec![3, 3], vec![3, 1], vec![9], vec![2]]);
        assert_eq!(
            runs(Vec::<usize>::new(), 7, |w| *w),
            Vec::<Vec<usize>>::new()
        );
    }
}
