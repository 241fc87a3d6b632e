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
