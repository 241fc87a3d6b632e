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
use crate::domain::message::{Inbound, Outcome, Payload};
use crate::domain::{joborder, mediationlog};
use crate::store;
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

async fn handle_inner(
    consumer: &Consumer,
    deliveries: Vec<Delivery>,
    shutdown: &CancellationToken,
    previous: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<Acked, SessionError> {
    metrics::histogram!("jobsync_batch_size").record(deliveries.len() as f64);
    let spans: Vec<Span> = deliveries
        .iter()
        .map(|d| {
            tracing::info_span!(
                "message",
                queue = %consumer.queue,
                message.id = Empty,
                job_order.id = Empty,
                job_order.version = Empty,
                outcome = Empty,
                trace_id = Empty,
                span_id = Empty,
                delivery.tag = d.delivery_tag,
                delivery.redelivered = d.redelivered
            )
        })
        .collect();

    // Every delivery continues the hub's trace, if it sent one, also one
    // that is rejected.
    let traces: Vec<TraceContext> = deliveries
        .iter()
        .map(|d| {
            let parent = d
                .properties
                .headers()
                .as_ref()
                .and_then(traceparent)
                .and_then(|t| TraceContext::parse(&t));
            TraceContext::child_of(parent.as_ref())
        })
        .collect();
    for (span, trace) in spans.iter().zip(&traces) {
        span.record("trace_id", trace.trace_id_hex().as_str());
        span.record("span_id", trace.span_id_hex().as_str());
    }

    // Parse: a rejection here never reaches the database.
    let mut outcomes: Vec<Option<Outcome>> = vec![None; deliveries.len()];
    let mut valid = Vec::with_capacity(deliveries.len());
    let mut valid_index = Vec::with_capacity(deliveries.len());
    for (i, delivery) in deliveries.iter().enumerate() {
        match parse(&delivery.data, consumer.expects, &consumer.queue) {
            Ok(mut message) => {
                message.trace = traces[i];
                spans[i].record("message.id", message.message_id.as_str());
                spans[i].record(
                    "job_order.id",
                    tracing::field::display(message.job_order_id()),
                );
                spans[i].record("job_order.version", message.version());
                valid_index.push(i);
                valid.push(message);
            }
            Err(rejection) => {
                // Known by its AMQP message id, and its order where the
                // body names one.
                if let Some(id) = delivery.properties.message_id() {
                    spans[i].record("message.id", id.as_str());
                }
                if let Some(id) = order_id_of_rejected(&delivery.data) {
                    spans[i].record("job_order.id", tracing::field::display(id));
                }
                outcomes[i] = Some(Outcome::Rejected(rejection));
            }
        }
    }

    let mut poisoned = vec![false; deliveries.len()];
    if !valid.is_empty() {
        let started = Instant::now();
        let applied = apply(consumer, Arc::from(valid), shutdown).await;
        metrics::histogram!("jobsync_apply_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let Some(applied) = applied else {
            // Stopped while the database was away: nothing is acknowledged,
            // the broker redelivers it all.
            return Ok(Acked::No);
        };
        consumer.relay.committed(applied.outbox);
        metrics::counter!("jobsync_cpr_redactions_total").increment(applied.redactions as u64);
        for (j, outcome) in applied.outcomes.into_iter().enumerate() {
            let i = valid_index[j];
            match outcome {
                Some(o) => outcomes[i] = Some(o),
                None => poisoned[i] = true,
            }
        }
    }

    // A log that cannot be applied yet goes to a delay queue, or, once it
    // waited long enough, to the dead letters.
    let mut retries: Vec<Outgoing> = Vec::new();
    let now = chrono::Utc::now();
    let total = Duration::from_secs(consumer.settings.retry_total_s);
    for (i, d) in deliveries.iter().enumerate() {
        let Some(Outcome::NotYet(why)) = &outcomes[i] else {
            continue;
        };
        let topology = &consumer.settings.topology;
        match retry::step(
            d,
            &traces[i],
            &consumer.queue,
            &topology.retry_exchange,
            why,
            total,
            now,
        ) {
            Step::Retry {
                message,
                delay_s,
                retry,
            } => {
                let _entered = spans[i].enter();
                tracing::info!(
                    retry,
                    retry_in_s = delay_s,
                    reason = %why,
                    "cannot apply the log yet; retrying later"
                );
                retries.push(*message);
            }
            Step::GiveUp(rejection) => outcomes[i] = Some(Outcome::Rejected(rejection)),
        }
    }

    let mut outgoing: Vec<Outgoing> = deliveries
        .iter()
        .zip(&outcomes)
        .filter_map(|(d, o)| match o {
            Some(Outcome::Rejected(r)) => Some(dead_letter(consumer, d, r)),
            _ => None,
        })
        .collect();
    outgoing.extend(retries);
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

    for (i, outcome) in outcomes.iter().enumerate() {
        let _entered = spans[i].enter();
        match outcome {
            Some(Outcome::Rejected(r)) => {
                spans[i].record("outcome", "rejected");
                tracing::warn!(error.code = r.code.as_str(), error.message = %r.message, "message rejected");
                metrics::counter!("jobsync_rejections_total", "code" => r.code.as_str())
                    .increment(1);
            }
            Some(Outcome::NotYet(_)) => {
                spans[i].record("outcome", "delayed");
            }
            Some(o) => {
                spans[i].record("outcome", o.label());
                tracing::debug!("message handled");
            }
            None => {
                spans[i].record("outcome", "requeued");
                tracing::error!("message fails to apply on its own; returned to the queue (its delivery limit ends it in the dead letters)");
            }
        }
        let label = outcome.as_ref().map_or("retried", Outcome::label);
        metrics::counter!("jobsync_messages_total", "queue" => consumer.queue.clone(), "outcome" => label).increment(1);
    }

    if let Some(previous) = previous {
        // The batch before failed (its session is lost) when this errs: then
        // nothing more is acknowledged on this channel.
        previous.await.map_err(|_| {
            SessionError::Lost(anyhow::anyhow!("an earlier batch of this channel failed"))
        })?;
    }
    acknowledge(&deliveries, &poisoned).await?;
    Ok(Acked::Yes)
}

/// Acknowledges the batch: one `multiple` ack on the last tag when every
/// delivery is done (earlier batches of this channel are acknowledged
/// already, so it covers exactly this batch); one by one otherwise.
async fn acknowledge(deliveries: &[Delivery], poisoned: &[bool]) -> Result<(), SessionError> {
    let lost = |e: lapin::Error| SessionError::Lost(anyhow::Error::new(e).context("acknowledging"));
    if !poisoned.contains(&true) {
        if let Some(last) = deliveries.last() {
            last.acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map_err(lost)?;
        }
        return Ok(());
    }
    for (d, &p) in deliveries.iter().zip(poisoned) {
        if p {
            d.acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
                .map_err(lost)?;
        } else {
            d.acker
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
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|e| DbFault::Unavailable(e.into()))?;
                store::apply_batch(&mut conn, &queue, &messages, now).map_err(classify)
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
                let mut all = Applied::default();
                for m in messages.iter() {
                    let single: Arc<[Inbound]> = Arc::from(vec![m.clone()]);
                    let one = Box::pin(apply(consumer, single, shutdown)).await?;
                    all.outcomes.extend(one.outcomes);
                    all.outbox.extend(one.outbox);
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
