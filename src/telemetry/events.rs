//! What happens inside the worker, one type per thing: each event's
//! [`InternalEvent::emit`] writes its log line (where it has one) and counts
//! it, so a log line and its metric cannot drift apart. The label values of
//! every series come from here and from the domain's own names
//! ([`Outcome::label`], [`Event::as_str`], [`Lifecycle::as_str`],
//! [`ErrorCode::as_str`]), and [`describe`] starts each series at zero.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::contract::rejection::{ErrorCode, Rejection};
use crate::domain::fanout::{Event, Lifecycle};
use crate::domain::message::Outcome;
use crate::domain::promises::Promise;

/// Something that happened, to be logged and counted.
pub trait InternalEvent {
    fn emit(self);
}

/// The `outcome` labels of `jobsync_messages_total`.
const OUTCOMES: [&str; 5] = ["applied", "stale", "duplicate", "rejected", "retried"];

/// A batch of deliveries gathered from a queue.
pub struct BatchGathered {
    pub size: usize,
}

impl InternalEvent for BatchGathered {
    fn emit(self) {
        metrics::histogram!("jobsync_batch_size").record(self.size as f64);
    }
}

/// A batch applied in one transaction (or given up on at shutdown), after
/// `elapsed`, database retries included.
pub struct BatchApplied {
    pub elapsed: Duration,
    /// CPR numbers replaced in the views it caused.
    pub redactions: usize,
}

impl InternalEvent for BatchApplied {
    fn emit(self) {
        metrics::histogram!("jobsync_apply_duration_seconds").record(self.elapsed.as_secs_f64());
        CprRedacted {
            count: self.redactions,
        }
        .emit();
    }
}

/// CPR numbers replaced by `[CPR]` in committed views.
pub struct CprRedacted {
    pub count: usize,
}

impl InternalEvent for CprRedacted {
    fn emit(self) {
        metrics::counter!("jobsync_cpr_redactions_total").increment(self.count as u64);
    }
}

/// A message applied, found stale, or found a duplicate. Logged inside the
/// message's span.
pub struct MessageHandled<'a> {
    pub queue: &'a str,
    pub outcome: &'a Outcome,
}

impl InternalEvent for MessageHandled<'_> {
    fn emit(self) {
        tracing::debug!("message handled");
        count_message(self.queue, self.outcome.label());
    }
}

/// A message sent to the dead letters.
pub struct MessageRejected<'a> {
    pub queue: &'a str,
    pub rejection: &'a Rejection,
}

impl InternalEvent for MessageRejected<'_> {
    fn emit(self) {
        let r = self.rejection;
        tracing::warn!(error.code = r.code.as_str(), error.message = %r.message, "message rejected");
        metrics::counter!("jobsync_rejections_total", "code" => r.code.as_str()).increment(1);
        count_message(self.queue, "rejected");
    }
}

/// A mediation log that cannot be applied yet, sent to a delay queue.
pub struct MessageDelayed<'a> {
    pub queue: &'a str,
    /// How many times it was delayed before, this one included.
    pub retry: u32,
    pub delay_s: u64,
    pub reason: &'a Rejection,
}

impl InternalEvent for MessageDelayed<'_> {
    fn emit(self) {
        tracing::info!(
            retry = self.retry,
            retry_in_s = self.delay_s,
            reason = %self.reason,
            "cannot apply the log yet; retrying later"
        );
        count_message(self.queue, "retried");
    }
}

/// A message that fails to apply on its own on a healthy database, returned
/// to its queue.
pub struct MessageRequeued<'a> {
    pub queue: &'a str,
}

impl InternalEvent for MessageRequeued<'_> {
    fn emit(self) {
        tracing::error!("message fails to apply on its own; returned to the queue (its delivery limit ends it in the dead letters)");
        count_message(self.queue, "retried");
    }
}

fn count_message(queue: &str, outcome: &'static str) {
    metrics::counter!("jobsync_messages_total", "queue" => queue.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// An outbox row the broker confirmed: a notification to units, or a
/// lifecycle event.
pub struct Published<'a> {
    pub routing_key: &'a str,
    pub to_events: bool,
    /// The hub's `time` of the message that caused it, if any.
    pub hub_time: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl InternalEvent for Published<'_> {
    fn emit(self) {
        if let Some(hub_time) = self.hub_time {
            let lag = (self.now - hub_time).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            metrics::histogram!("jobsync_end_to_end_lag_seconds").record(lag.max(0.0));
        }
        let event = event_name(self.routing_key);
        if self.to_events {
            metrics::counter!("jobsync_events_published_total", "event" => event).increment(1);
        } else {
            metrics::counter!("jobsync_notifications_published_total", "event" => event)
                .increment(1);
        }
    }
}

/// The event a routing key ends with (`unit.jobcenter.15300.joborder.updated`
/// is `joborder.updated`); the key itself when it names none.
fn event_name(routing_key: &str) -> std::borrow::Cow<'static, str> {
    Event::ALL
        .iter()
        .map(|e| e.as_str())
        .chain(Lifecycle::ALL.iter().map(|e| e.as_str()))
        .find(|name| {
            routing_key
                .strip_suffix(name)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        })
        .map_or_else(|| routing_key.to_owned().into(), Into::into)
}

/// The outbox's backlog, read.
pub struct OutboxBacklog {
    pub pending: i64,
    pub oldest_age_s: f64,
}

impl InternalEvent for OutboxBacklog {
    fn emit(self) {
        metrics::gauge!("jobsync_outbox_pending").set(self.pending as f64);
        metrics::gauge!("jobsync_outbox_oldest_age_seconds").set(self.oldest_age_s);
    }
}

/// Orders whose personal data a retention pass deleted.
pub struct PersonalDataDeleted {
    pub orders: usize,
    pub retention_days: u32,
}

impl InternalEvent for PersonalDataDeleted {
    fn emit(self) {
        metrics::counter!("jobsync_personal_data_deleted_total").increment(self.orders as u64);
        if self.orders > 0 {
            tracing::info!(
                orders = self.orders,
                retention_days = self.retention_days,
                "deleted the personal data of orders that closed or expired longer ago than the retention"
            );
        }
    }
}

/// Orders expired by one expiry round.
pub struct OrdersExpired {
    pub count: usize,
    pub redactions: usize,
}

impl InternalEvent for OrdersExpired {
    fn emit(self) {
        metrics::counter!("jobsync_expired_total").increment(self.count as u64);
        CprRedacted {
            count: self.redactions,
        }
        .emit();
    }
}

/// A check of the service promises: those it found missed, and how many
/// are open now, by promise.
pub struct PromisesChecked<'a> {
    pub missed: &'a [Promise],
    pub open: &'a [(String, i64)],
}

impl InternalEvent for PromisesChecked<'_> {
    fn emit(self) {
        for p in self.missed {
            metrics::counter!("jobsync_promises_missed_total", "promise" => p.as_str())
                .increment(1);
        }
        if !self.missed.is_empty() {
            tracing::info!(
                promises = self.missed.len(),
                "service promises passed unmet; the responsible units are told"
            );
        }
        for p in Promise::ALL {
            let n = self
                .open
                .iter()
                .find(|(name, _)| name == p.as_str())
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("jobsync_promises_open", "promise" => p.as_str()).set(n as f64);
        }
    }
}

/// A consumer's prefetch, set to what fits its byte budget when bodies are
/// as large as `largest`.
pub struct PrefetchChanged<'a> {
    pub queue: &'a str,
    pub prefetch: u16,
    pub largest: usize,
}

impl InternalEvent for PrefetchChanged<'_> {
    fn emit(self) {
        metrics::gauge!("jobsync_prefetch", "queue" => self.queue.to_owned())
            .set(f64::from(self.prefetch));
        tracing::debug!(
            queue = %self.queue,
            prefetch = self.prefetch,
            largest_body_bytes = self.largest,
            "prefetch set by the size of recent messages"
        );
    }
}

/// The broker session was lost; the supervisor reconnects.
pub struct BrokerSessionLost;

impl InternalEvent for BrokerSessionLost {
    fn emit(self) {
        metrics::counter!("jobsync_broker_reconnects_total").increment(1);
    }
}

/// The depth of the dead-letter queue, read.
pub struct DeadLettersCounted {
    pub depth: u32,
}

impl InternalEvent for DeadLettersCounted {
    fn emit(self) {
        metrics::gauge!("jobsync_dead_letters").set(f64::from(self.depth));
    }
}

/// A request to the read API, answered.
pub struct ApiRequest<'a> {
    /// The route's template (`/v1/joborders/{id}`), or `unmatched`.
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
}

impl InternalEvent for ApiRequest<'_> {
    fn emit(self) {
        // Never the query string or a header: they may hold a token or
        // what someone searched for.
        tracing::debug!(
            http.route = self.route,
            http.status = self.status,
            elapsed_ms = self.elapsed.as_secs_f64() * 1e3,
            "read API request"
        );
        metrics::counter!(
            "jobsync_api_requests_total",
            "route" => self.route.to_owned(),
            "status" => self.status.to_string()
        )
        .increment(1);
        metrics::histogram!("jobsync_api_request_duration_seconds", "route" => self.route.to_owned())
            .record(self.elapsed.as_secs_f64());
    }
}

/// HELP texts, and every series at zero so that dashboards and alerts see
/// them before the first event. Runs once, when the recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "jobsync_messages_total",
        "Inbound messages by queue and outcome (applied, stale, duplicate, rejected, retried)."
    );
    describe_histogram!(
        "jobsync_apply_duration_seconds",
        Unit::Seconds,
        "Time to apply one batch in one transaction, database retries included."
    );
    describe_histogram!("jobsync_batch_size", Unit::Count, "Deliveries per batch.");
    describe_gauge!(
        "jobsync_outbox_pending",
        "Notifications and events committed and not yet published."
    );
    describe_gauge!(
        "jobsync_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest unpublished outbox row (0 when empty)."
    );
    describe_counter!(
        "jobsync_notifications_published_total",
        "Notifications to units the relay published and the broker confirmed, by event."
    );
    describe_counter!(
        "jobsync_events_published_total",
        "Lifecycle events the relay published to the events exchange and the broker confirmed, by event."
    );
    describe_counter!(
        "jobsync_expired_total",
        "Orders expired because their mediation deadline passed."
    );
    describe_counter!(
        "jobsync_personal_data_deleted_total",
        "Orders whose personal data was deleted because they closed or expired longer ago than JOBSYNC_PERSONAL_DATA_RETENTION_DAYS."
    );
    describe_counter!(
        "jobsync_cpr_redactions_total",
        "CPR numbers replaced by [CPR] in outbound views, counted once committed."
    );
    describe_gauge!(
        "jobsync_prefetch",
        "Unacknowledged deliveries the broker may send the consumer of a queue: the configured prefetch, or less when recent messages are so large that it would exceed the byte budget."
    );
    describe_counter!(
        "jobsync_broker_reconnects_total",
        "Broker sessions lost and reconnected."
    );
    describe_gauge!(
        "jobsync_build_info",
        "Always 1; the version of the running jobsync in the label."
    );
    describe_counter!(
        "jobsync_rejections_total",
        "Inbound messages rejected to the dead letters, by error code."
    );
    describe_gauge!(
        "jobsync_dead_letters",
        "Messages in the dead-letter queue (read every 5 s)."
    );
    describe_histogram!(
        "jobsync_end_to_end_lag_seconds",
        Unit::Seconds,
        "From the hub's `time` of a message to the broker's confirm of a notification or event it caused."
    );

    describe_counter!(
        "jobsync_promises_missed_total",
        "Service promises (contact, delivery, follow_up) found passed unmet, once each."
    );
    describe_gauge!(
        "jobsync_promises_open",
        "Service promises tracked and neither met, missed nor released, by promise."
    );
    for p in Promise::ALL {
        metrics::counter!("jobsync_promises_missed_total", "promise" => p.as_str()).increment(0);
        metrics::gauge!("jobsync_promises_open", "promise" => p.as_str()).set(0.0);
    }
    describe_counter!(
        "jobsync_api_requests_total",
        "Read API requests answered, by route and status."
    );
    describe_histogram!(
        "jobsync_api_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a read API request, by route."
    );

    metrics::gauge!("jobsync_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for event in Event::ALL {
        metrics::counter!("jobsync_notifications_published_total", "event" => event.as_str())
            .increment(0);
    }
    for event in Lifecycle::ALL {
        metrics::counter!("jobsync_events_published_total", "event" => event.as_str()).increment(0);
    }
    for code in ErrorCode::ALL {
        metrics::counter!("jobsync_rejections_total", "code" => code.as_str()).increment(0);
    }
    // Histograms show from start-up with empty buckets.
    for name in [
        "jobsync_apply_duration_seconds",
        "jobsync_batch_size",
        "jobsync_end_to_end_lag_seconds",
    ] {
        drop(metrics::histogram!(name));
    }
    metrics::counter!("jobsync_expired_total").increment(0);
    metrics::counter!("jobsync_cpr_redactions_total").increment(0);
    metrics::counter!("jobsync_broker_reconnects_total").increment(0);
    metrics::gauge!("jobsync_dead_letters").set(0.0);
    OutboxBacklog {
        pending: 0,
        oldest_age_s: 0.0,
    }
    .emit();
}

/// Every `jobsync_messages_total` series of `queue` at zero.
pub fn register_queue(queue: &str) {
    for outcome in OUTCOMES {
        metrics::counter!("jobsync_messages_total", "queue" => queue.to_owned(), "outcome" => outcome)
            .increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_the_end_of_the_routing_key() {
        assert_eq!(
            event_name("unit.jobcenter.15300.joborder.updated"),
            "joborder.updated"
        );
        assert_eq!(
            event_name("unit.shared.mediationlog.updated"),
            "mediationlog.updated"
        );
        assert_eq!(event_name("joborder.handed-over"), "joborder.handed-over");
        assert_eq!(event_name("joborder.expired"), "joborder.expired");
        assert_eq!(event_name("something.else"), "something.else");
    }

    #[test]
    fn every_outcome_label_is_registered() {
        let rejection = Rejection::new(ErrorCode::TypeUnknown, "x");
        for outcome in [
            Outcome::Applied,
            Outcome::Stale,
            Outcome::Duplicate,
            Outcome::Rejected(rejection.clone()),
            Outcome::NotYet(rejection),
        ] {
            assert!(OUTCOMES.contains(&outcome.label()), "{outcome:?}");
        }
    }
}
