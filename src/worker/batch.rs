//! One batch: parse every delivery, apply the valid ones in one transaction
//! (retrying faults of the database, never rejecting for them), dead-letter
//! the rejected ones under confirms, then acknowledge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, LongString};
use tokio_util::sync::CancellationToken;
use tracing::{field::Empty, Instrument, Span};

use super::retry::{self, Step};
use super::{Consumer, SessionError};
use crate::amqp::publisher::Outgoing;
use crate::contract::envelope::{self, InboundType};
use crate::contract::rejection::{ErrorCode, Rejection};
use crate::domain::message::{self, Inbound, Outcome, Payload};
use crate::domain::{joborder, mediationlog};
use crate::store;
use crate::telemetry::events::{
    BatchApplied, BatchGathered, InternalEvent, MessageDelayed, MessageHandled, MessageRejected,
    MessageRequeued,
};
use crate::trace::TraceContext;

/// Whether a handled batch was acknowledged: a later batch of the channel
/// may be acknowledged (with `multiple`) only after it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acked {
    Yes,
    No,
}

/// The error a [`DbFault`] keeps as its source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A fault of the database, not of the messages, with the error behind it.
#[derive(Debug, thiserror::Error)]
pub enum DbFault {
    /// No connection: wait and retry for as long as it takes.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// A statement failed on a live connection (deadlock, serialization
    /// failure, or a bug): retried a few times, then the batch is split to
    /// find the message that fails on its own.
    #[error("database error: {0}")]
    Failed(#[source] BoxError),
}

/// Sorts a diesel error into [`DbFault`].
pub fn classify(e: diesel::result::Error) -> DbFault {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match &e {
        E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _)
        | E::BrokenTransactionManager => DbFault::Unavailable(e.into()),
        _ => DbFault::Failed(e.into()),
    }
}

/// The most [`Inbound::weight`] applied in one transaction: a batch of
/// 500 new orders shared with a few units is one run; 500 updates of orders
/// shared with 94 jobcentres are six.
const MAX_RUN_WEIGHT: usize = 8_000;

/// Attempts at a batch that fails on a live connection before it is split.
const FAILED_ATTEMPTS_BEFORE_SPLIT: u32 = 3;

/// Handles one batch. Batches of a channel may be applied concurrently, but
/// are acknowledged in order: `previous` resolves once the batch before is
/// acknowledged (a `multiple` ack covers everything before its tag).
pub(super) async fn handle(
    consumer: &Consumer,
    deliveries: Vec<Delivery>,
    shutdown: &CancellationToken,
    previous: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<Acked, SessionError> {
    let span = tracing::info_span!("batch", queue = %consumer.queue, batch.size = deliveries.len());
    handle_inner(consumer, deliveries, shutdown, previous)
        .instrument(span)
        .await
}

/// One delivery of a batch and what becomes of it.
struct Handled {
    delivery: Delivery,
    /// Its `message` span: every line about it is logged inside.
    span: Span,
    /// Its place in the hub's trace (a child of the hub's span, if sent).
    trace: TraceContext,
    fate: Fate,
}

/// Where a delivery stands.
enum Fate {
    /// Parsed; waiting for the batch's transaction.
    Parsed,
    /// Applied, stale, a duplicate, or rejected (never [`Outcome::NotYet`]).
    Done(Outcome),
    /// A log that cannot be applied yet, published to a delay queue.
    Delayed {
        retry: u32,
        delay_s: u64,
        reason: Rejection,
    },
    /// Fails on its own on a healthy database: returned to its queue.
    Requeued,
}

impl Handled {
    fn new(delivery: Delivery, queue: &str) -> Self {
        let span = tracing::info_span!(
            "message",
            queue = %queue,
            message.id = Empty,
            job_order.id = Empty,
            job_order.version = Empty,
            outcome = Empty,
            trace_id = Empty,
            span_id = Empty,
            delivery.tag = delivery.delivery_tag,
            delivery.redelivered = delivery.redelivered
        );
        // Every delivery continues the hub's trace, if it sent one, also
        // one that is rejected.
        let parent = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(traceparent)
            .and_then(|t| TraceContext::parse(&t));
        let trace = TraceContext::child_of(parent.as_ref());
        span.record("trace_id", trace.trace_id_hex().as_str());
        span.record("span_id", trace.span_id_hex().as_str());
        Handled {
            delivery,
            span,
            trace,
            fate: Fate::Parsed,
        }
    }

    /// Parses the body: a valid message to apply, or the delivery is done
    /// with as rejected (a rejection here never reaches the database).
    fn parse(&mut self, consumer: &Consumer) -> Option<Inbound> {
        match parse(&self.delivery.data, consumer.expects, &consumer.queue) {
            Ok(mut message) => {
                message.trace = self.trace;
                self.span.record("message.id", message.message_id.as_str());
                self.span.record(
                    "job_order.id",
                    tracing::field::display(message.job_order_id()),
                );
                self.span.record("job_order.version", message.version());
                Some(message)
            }
            Err(rejection) => {
                // Known by its AMQP message id, and its order where the
                // body names one.
                if let Some(id) = self.delivery.properties.message_id() {
                    self.span.record("message.id", id.as_str());
                }
                if let Some(id) = order_id_of_rejected(&self.delivery.data) {
                    self.span
                        .record("job_order.id", tracing::field::display(id));
                }
                self.fate = Fate::Done(Outcome::Rejected(rejection));
                None
            }
        }
    }

    /// Records the outcome of applying it (`None`: it fails on its own). A
    /// log that cannot be applied yet gets its delay message, or, once it
    /// waited long enough, is rejected.
    fn settle(
        &mut self,
        outcome: Option<Outcome>,
        consumer: &Consumer,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Outgoing> {
        let why = match outcome {
            None => {
                self.fate = Fate::Requeued;
                return None;
            }
            Some(Outcome::NotYet(why)) => why,
            Some(outcome) => {
                self.fate = Fate::Done(outcome);
                return None;
            }
        };
        let settings = &consumer.settings;
        match retry::step(
            &self.delivery,
            &self.trace,
            &consumer.queue,
            &settings.topology.retry_exchange,
            &why,
            Duration::from_secs(settings.retry_total_s),
            now,
        ) {
            Step::Retry {
                message,
                delay_s,
                retry,
            } => {
                self.fate = Fate::Delayed {
                    retry,
                    delay_s,
                    reason: why,
                };
                Some(*message)
            }
            Step::GiveUp(rejection) => {
                self.fate = Fate::Done(Outcome::Rejected(rejection));
                None
            }
        }
    }

    /// Logs and counts what became of it, inside its span (which names
    /// the outcome first, so that every line carries it).
    fn emit(&self, queue: &str) {
        let _entered = self.span.enter();
        self.span.record("outcome", self.fate.label());
        match &self.fate {
            Fate::Done(Outcome::Rejected(rejection)) => {
                MessageRejected { queue, rejection }.emit();
            }
            Fate::Done(outcome) => MessageHandled { queue, outcome }.emit(),
            Fate::Delayed {
                retry,
                delay_s,
                reason,
            } => MessageDelayed {
                queue,
                retry: *retry,
                delay_s: *delay_s,
                reason,
            }
            .emit(),
            Fate::Requeued | Fate::Parsed => MessageRequeued { queue }.emit(),
        }
    }
}

impl Fate {
    /// The `outcome` of the message's span.
    fn label(&self) -> &'static str {
        match self {
            Fate::Done(outcome) => outcome.label(),
            Fate::Delayed { .. } => "delayed",
            Fate::Requeued | Fate::Parsed => "requeued",
        }
    }
}

async fn handle_inner(
    consumer: &Consumer,
    deliveries: Vec<Delivery>,
    shutdown: &CancellationToken,
    previous: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<Acked, SessionError> {
    BatchGathered {
        size: deliveries.len(),
    }
    .emit();
    let mut handled: Vec<Handled> = deliveries
        .into_iter()
        .map(|d| Handled::new(d, &consumer.queue))
        .collect();
    let valid: Vec<Inbound> = handled
        .iter_mut()
        .filter_map(|h| h.parse(consumer))
        .collect();

    let mut outgoing: Vec<Outgoing> = Vec::new();
    // A batch of orders shared with many units is applied in runs, one
    // transaction each: what one statement binds stays bounded. The outcomes
    // come in the order of the parsed deliveries.
    let mut parsed = handled
        .iter_mut()
        .filter(|h| matches!(h.fate, Fate::Parsed));
    for run in message::runs(valid, MAX_RUN_WEIGHT, Inbound::weight) {
        let started = Instant::now();
        let Some(applied) = apply(consumer, Arc::from(run), shutdown).await else {
            // Stopped while the database was away: nothing is acknowledged,
            // the broker redelivers it all.
            return Ok(Acked::No);
        };
        BatchApplied {
            elapsed: started.elapsed(),
            redactions: applied.redactions,
        }
        .emit();
        consumer.relay.committed(applied.outbox, applied.alone);
        let now = chrono::Utc::now();
        for outcome in applied.outcomes {
            let h = parsed.next().expect("an outcome per parsed delivery");
            outgoing.extend(h.settle(outcome, consumer, now));
        }
    }

    // The rejected go to the dead letters, under confirms with the delayed.
    outgoing.extend(handled.iter().filter_map(|h| match &h.fate {
        Fate::Done(Outcome::Rejected(r)) => Some(dead_letter(consumer, &h.delivery, r)),
        _ => None,
    }));
    if !outgoing.is_empty() {
        consumer
            .publisher
            .publish_all(&outgoing)
            .await
            .map_err(|e| {
                SessionError::Lost(
                    anyhow::Error::new(e).context("dead-lettering or delaying messages"),
                )
            })?;
    }
    for h in &handled {
        h.emit(&consumer.queue);
    }

    if let Some(previous) = previous {
        // The batch before failed (its session is lost) when this errs: then
        // nothing more is acknowledged on this channel.
        previous.await.map_err(|_| {
            SessionError::Lost(anyhow::anyhow!("an earlier batch of this channel failed"))
        })?;
    }
    acknowledge(&handled).await?;
    Ok(Acked::Yes)
}

/// Acknowledges the batch: one `multiple` ack on the last tag when every
/// delivery is done (earlier batches of this channel are acknowledged
/// already, so it covers exactly this batch); one by one otherwise, the
/// requeued ones returned.
async fn acknowledge(handled: &[Handled]) -> Result<(), SessionError> {
    let lost = |e: lapin::Error| SessionError::Lost(anyhow::Error::new(e).context("acknowledging"));
    let requeued = |h: &Handled| matches!(h.fate, Fate::Requeued);
    if !handled.iter().any(requeued) {
        if let Some(last) = handled.last() {
            last.delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map_err(lost)?;
        }
        return Ok(());
    }
    for h in handled {
        if requeued(h) {
            h.delivery
                .acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
                .map_err(lost)?;
        } else {
            h.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(lost)?;
        }
    }
    Ok(())
}

/// The job order a rejected body names, where it can be read at all: its
/// `subject`, if that is a UUID. Only for the log line of the rejection.
fn order_id_of_rejected(body: &[u8]) -> Option<uuid::Uuid> {
    #[derive(serde::Deserialize)]
    struct Subject<'a> {
        #[serde(borrow)]
        subject: Option<std::borrow::Cow<'a, str>>,
    }
    let subject = serde_json::from_slice::<Subject>(body).ok()?.subject?;
    uuid::Uuid::parse_str(&subject).ok()
}

/// The `traceparent` AMQP header, if any.
fn traceparent(headers: &lapin::types::FieldTable) -> Option<String> {
    crate::amqp::header_text(headers, "traceparent")
}

/// Parses a delivery body into a message for `expects`.
pub fn parse(body: &[u8], expects: InboundType, queue: &str) -> Result<Inbound, Rejection> {
    let env = envelope::parse(body)?;
    if env.kind != expects {
        return Err(Rejection::new(
            ErrorCode::TypeUnknown,
            format!(
                "type: {} is not consumed from queue {queue}",
                env.kind.as_str()
            ),
        ));
    }
    let (data, subject) = (env.data.get(), env.subject.as_deref());
    let payload = match env.kind {
        InboundType::JobOrderSnapshot => {
            Payload::JobOrder(Box::new(joborder::parse(data, subject)?))
        }
        InboundType::MediationLogSnapshot => {
            Payload::MediationLog(mediationlog::parse(data, subject)?)
        }
    };
    Ok(Inbound {
        message_id: env.id,
        payload,
        trace: TraceContext::child_of(None),
        hub_time: env.time,
    })
}

/// What applying a batch gave: per message its outcome (`None` for one
/// that fails on its own on a healthy database), and what was written for
/// the relay.
#[derive(Default)]
struct Applied {
    outcomes: Vec<Option<Outcome>>,
    outbox: Vec<store::outbox::Pending>,
    /// The outbox held no older row of the orders written for.
    alone: bool,
    redactions: usize,
}

/// Applies `messages`, waiting out database faults. `None` when stopped
/// before the database came back.
async fn apply(
    consumer: &Consumer,
    messages: Arc<[Inbound]>,
    shutdown: &CancellationToken,
) -> Option<Applied> {
    let mut backoff = super::backoff::Backoff::new();
    let mut failed_attempts = 0;
    loop {
        let result = {
            let pool = consumer.pool.clone();
            let queue = consumer.queue.clone();
            let messages = messages.clone();
            let now = consumer.clock.now();
            let durations = consumer.settings.promises.durations();
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| DbFault::Unavailable(e.into()))?;
                store::apply_batch(&mut conn, &queue, &messages, now, &durations).map_err(classify)
            })
            .await
            .unwrap_or_else(|e| {
                Err(DbFault::Failed(
                    format!("the apply task panicked: {e}").into(),
                ))
            })
        };
        let fault = match result {
            Ok(r) => {
                return Some(Applied {
                    outcomes: r.outcomes.into_iter().map(Some).collect(),
                    outbox: r.outbox,
                    alone: r.alone,
                    redactions: r.redactions,
                })
            }
            Err(fault) => fault,
        };
        if let DbFault::Failed(_) = fault {
            failed_attempts += 1;
            if failed_attempts >= FAILED_ATTEMPTS_BEFORE_SPLIT {
                if messages.len() == 1 {
                    tracing::error!(error = %fault, message.id = %messages[0].message_id, "a message fails to apply on its own");
                    return Some(Applied {
                        outcomes: vec![None],
                        ..Applied::default()
                    });
                }
                tracing::warn!(error = %fault, "a batch keeps failing; applying its messages one by one");
                let mut all = Applied {
                    alone: true,
                    ..Applied::default()
                };
                for m in messages.iter() {
                    let single: Arc<[Inbound]> = Arc::from(vec![m.clone()]);
                    let one = Box::pin(apply(consumer, single, shutdown)).await?;
                    all.outcomes.extend(one.outcomes);
                    all.outbox.extend(one.outbox);
                    all.alone &= one.alone;
                    all.redactions += one.redactions;
                }
                return Some(all);
            }
        }
        let again = backoff.retry_after(shutdown, |wait| {
            tracing::warn!(error = %fault, retry_in_ms = wait.as_millis() as u64, "cannot apply the batch yet; retrying");
        });
        if !again.await {
            return None;
        }
    }
}

/// The rejected delivery, body unchanged, with the error headers of 4.3.
fn dead_letter(consumer: &Consumer, delivery: &Delivery, rejection: &Rejection) -> Outgoing {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    use crate::contract::headers;
    headers.insert(headers::ERROR_CODE.into(), text(rejection.code.as_str()));
    headers.insert(headers::ERROR.into(), text(&rejection.message));
    headers.insert(headers::SOURCE_QUEUE.into(), text(&consumer.queue));
    headers.insert(
        headers::REJECTED_AT.into(),
        text(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    Outgoing {
        exchange: consumer.settings.topology.dead_exchange.clone(),
        routing_key: retry::original_routing_key(delivery),
        properties: delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2),
        body: delivery.data.clone(),
        mandatory: true,
    }
}
