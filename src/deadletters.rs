//! `jobsync dead-letters list|show|replay|delete`: the rejected messages kept
//! in `jobsync.dead-letters`, with their reasons; putting them back on the
//! hub exchange once their cause is fixed, or deleting them.
//!
//! Every command reads exactly the messages that are in the queue when it
//! starts (its message count then), holding each unacknowledged until the
//! end, so a message that arrives meanwhile (a replayed one rejected again,
//! say) is neither listed nor taken. What is not taken goes back to the
//! queue. Returning a message raises the broker's delivery count of it, so
//! the queue is declared with no delivery limit (see
//! [`crate::amqp::topology::dead_letters_queue_arguments`]) and no count is
//! shown.
//!
//! Removing is the delicate part. Closing a connection right after its acks
//! loses acks that were still unsent, so every command closes its channel
//! first. That is not enough for a quorum queue: RabbitMQ may apply a closed
//! channel's return of what it held before the acks it sent just before
//! (rabbitmq-server#10327), and an acknowledged dead letter comes back. So
//! a command that removed messages waits a moment before closing, then
//! sweeps: it reads the queue again and removes any message that is exactly
//! one it removed (same id, same rejection time, same body), until a sweep
//! finds none. A replay therefore never leaves a copy behind.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context as _};
use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use serde::Serialize;

use crate::amqp::{self, publisher::Outgoing, publisher::Publisher};
use crate::config::DeadLetterQueue;
use crate::contract::headers;

/// A dead-lettered message as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The CloudEvents id (AMQP `message_id`).
    pub id: Option<String>,
    /// The CloudEvents type, when the body is JSON with one.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `x-jobsync-error-code`; `delivery_limit` for one the broker
    /// dead-lettered after too many deliveries.
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub rejected_at: Option<String>,
    pub source_queue: Option<String>,
    /// The routing key it is replayed with (the hub's).
    pub routing_key: String,
}

/// A dead letter in full, as `show` prints it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub letter: DeadLetter,
    /// Every header, by name, as text, but the broker's delivery count
    /// (which reading the queue raises).
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Which dead letters a command takes.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Those with these message ids; each must be there.
    Ids(Vec<String>),
    /// Those with this error code.
    Code(String),
    All,
}

impl Selection {
    fn matches(&self, d: &DeadLetter) -> bool {
        match self {
            Selection::Ids(ids) => d.id.as_ref().is_some_and(|id| ids.contains(id)),
            Selection::Code(code) => d.error_code.as_deref() == Some(code.as_str()),
            Selection::All => true,
        }
    }
}

/// What `replay` or `delete` did, or with `dry_run` would do.
#[derive(Debug, Clone)]
pub struct Taken {
    pub letters: Vec<DeadLetter>,
    pub dry_run: bool,
}

/// The messages in the dead-letter queue when a command started, held
/// unacknowledged on `channel`.
struct Held {
    connection: Connection,
    channel: Channel,
    messages: Vec<(BasicGetMessage, DeadLetter)>,
}

impl Held {
    /// Connects and takes exactly the messages in the queue now, oldest
    /// first.
    async fn take(broker: &DeadLetterQueue, command: &str) -> anyhow::Result<Held> {
        let connection = amqp::connect_named(
            &broker.broker.amqp_url,
            &format!("jobsync dead-letters {command}"),
        )
        .await?;
        let channel = connection.create_channel().await?;
        let queue = broker.dead_letters_queue.as_str();
        let present = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| {
                format!("no dead-letter queue {queue:?} on this broker (has the worker run here?)")
            })?
            .message_count();
        let mut messages = Vec::with_capacity(present as usize);
        while messages.len() < present as usize {
            match channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await?
            {
                Some(message) => {
                    let d = describe(&message);
                    messages.push((message, d));
                }
                None => break,
            }
        }
        Ok(Held {
            connection,
            channel,
            messages,
        })
    }

    /// The indices of the messages `which` takes, at most `limit`. Every id
    /// of [`Selection::Ids`] must be there; if one is not, nothing is taken.
    fn select(&self, which: &Selection, limit: Option<usize>) -> anyhow::Result<Vec<usize>> {
        if let Selection::Ids(ids) = which {
            let missing: Vec<&str> = ids
                .iter()
                .filter(|id| !self.messages.iter().any(|(_, d)| d.id.as_ref() == Some(id)))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                bail!("no dead letter with id {}", missing.join(", "));
            }
        }
        Ok(self
            .messages
            .iter()
            .enumerate()
            .filter(|(_, (_, d))| which.matches(d))
            .map(|(i, _)| i)
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    }

    /// [`Held::select`], returning everything to the queue when it fails.
    async fn chosen(
        self,
        which: &Selection,
        limit: Option<usize>,
    ) -> anyhow::Result<(Held, Vec<usize>)> {
        match self.select(which, limit) {
            Ok(chosen) => Ok((self, chosen)),
            Err(e) => {
                self.finish(&[]).await?;
                Err(e)
            }
        }
    }

    /// Removes the messages at `taken` for good ([`Held::finish`]), then
    /// sweeps away any the broker put back after their acknowledgement.
    async fn remove(self, broker: &DeadLetterQueue, taken: &[usize]) -> anyhow::Result<()> {
        let removed = taken
            .iter()
            .map(|&i| identity(&self.messages[i].0, &self.messages[i].1))
            .collect();
        self.finish(taken).await?;
        sweep(broker, removed).await
    }

    /// Acknowledges (removes) the messages at `taken`, returns every other
    /// to the queue, and closes the channel and the connection: the broker
    /// answers the channel's close only after it has handled everything sent
    /// on it before.
    async fn finish(self, taken: &[usize]) -> anyhow::Result<()> {
        for &i in taken {
            self.messages[i]
                .0
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await?;
        }
        for (i, (message, _)) in self.messages.iter().enumerate() {
            if !taken.contains(&i) {
                message
                    .delivery
                    .acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await?;
            }
        }
        if !taken.is_empty() {
            // Time for the broker to apply the acks before the close returns
            // what the channel holds (see the module's documentation).
            tokio::time::sleep(SETTLE_GRACE).await;
        }
        self.channel.close(200, "done".into()).await.context(
            "closing the channel (the broker's confirmation that it has the acknowledgements)",
        )?;
        let _ = self.connection.close(200, "done".into()).await;
        Ok(())
    }
}

/// How long a command that acknowledged messages waits before closing its
/// channel.
const SETTLE_GRACE: Duration = Duration::from_millis(200);

/// Sweeps after removing: the broker may have returned a removed message
/// to the queue (see the module's documentation).
const SWEEPS: usize = 5;

/// What makes a dead letter this one and no other: a message rejected again
/// has another rejection time.
type Identity = (Option<String>, Option<String>, Vec<u8>);

fn identity(message: &BasicGetMessage, d: &DeadLetter) -> Identity {
    (
        d.id.clone(),
        d.rejected_at.clone(),
        message.delivery.data.clone(),
    )
}

/// Removes whatever of `removed` the broker put back after it was
/// acknowledged, until a sweep finds none.
async fn sweep(broker: &DeadLetterQueue, removed: HashSet<Identity>) -> anyhow::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    for _ in 0..SWEEPS {
        let held = Held::take(broker, "sweep").await?;
        let back: Vec<usize> = held
            .messages
            .iter()
            .enumerate()
            .filter(|(_, (m, d))| removed.contains(&identity(m, d)))
            .map(|(i, _)| i)
            .collect();
        let found = back.len();
        held.finish(&back).await?;
        if found == 0 {
            return Ok(());
        }
        tracing::debug!(
            found,
            "removed dead letters the broker had put back after their acknowledgement"
        );
    }
    anyhow::bail!("dead letters keep coming back after their removal; list them and check")
}

/// Lists the dead letters (those with error code `code`, if given), oldest
/// first, leaving them in the queue.
pub async fn list(broker: &DeadLetterQueue, code: Option<&str>) -> anyhow::Result<Vec<DeadLetter>> {
    let held = Held::take(broker, "list").await?;
    let listed = held
        .messages
        .iter()
        .map(|(_, d)| d)
        .filter(|d| code.is_none_or(|c| d.error_code.as_deref() == Some(c)))
        .cloned()
        .collect();
    held.finish(&[]).await?;
    Ok(listed)
}

/// The dead letters with these ids in full, leaving them in the queue; an
/// error if one of them is not there.
pub async fn show(broker: &DeadLetterQueue, ids: &[String]) -> anyhow::Result<Vec<Shown>> {
    let (held, chosen) = Held::take(broker, "show")
        .await?
        .chosen(&Selection::Ids(ids.to_vec()), None)
        .await?;
    let shown = chosen
        .iter()
        .map(|&i| {
            let (message, letter) = &held.messages[i];
            let headers = message
                .delivery
                .properties
                .headers()
                .as_ref()
                .map(|h| {
                    h.inner()
                        .iter()
                        .filter(|(k, _)| k.as_str() != "x-delivery-count")
                        .map(|(k, v)| (k.to_string(), value_text(v)))
                        .collect()
                })
                .unwrap_or_default();
            Shown {
                letter: letter.clone(),
                headers,
                body: message.delivery.data.clone(),
            }
        })
        .collect();
    held.finish(&[]).await?;
    Ok(shown)
}

/// Republishes the selected dead letters (at most `limit`) to the hub
/// exchange with their routing key, under publisher confirms, in chunks, and
/// removes each chunk's originals once the broker confirmed it. `progress`
/// is told how many are done. With `dry_run`, only says which.
pub async fn replay(
    broker: &DeadLetterQueue,
    which: &Selection,
    limit: Option<usize>,
    dry_run: bool,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Taken> {
    const CHUNK: usize = 200;
    let (held, chosen) = Held::take(broker, "replay")
        .await?
        .chosen(which, limit)
        .await?;
    let letters: Vec<DeadLetter> = chosen.iter().map(|&i| held.messages[i].1.clone()).collect();
    if dry_run {
        held.finish(&[]).await?;
        return Ok(Taken {
            letters,
            dry_run: true,
        });
    }
    let publisher = Publisher::open(&held.connection).await?;
    let mut confirmed = 0;
    let mut failure = None;
    for chunk in chosen.chunks(CHUNK) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|&i| {
                let (message, d) = &held.messages[i];
                Outgoing {
                    exchange: broker.hub_exchange.clone(),
                    routing_key: d.routing_key.clone(),
                    properties: message
                        .delivery
                        .properties
                        .clone()
                        .with_headers(clean_headers(message.delivery.properties.headers())),
                    body: message.delivery.data.clone(),
                    mandatory: true,
                }
            })
            .collect();
        if let Err(e) = publisher.publish_all(&outgoing).await {
            failure = Some(e);
            break;
        }
        confirmed += chunk.len();
        progress(confirmed, chosen.len());
    }
    let _ = publisher.close().await;
    // Only the confirmed ones are removed: a chunk that failed stays, whole,
    // in the dead letters (some of it may have reached the hub: replaying
    // it again is safe, the worker knows a message by its id).
    held.remove(broker, &chosen[..confirmed]).await?;
    if let Some(e) = failure {
        return Err(anyhow::Error::new(e).context(format!(
            "republishing to the hub exchange after {confirmed} of {} (those stay in the dead letters)",
            chosen.len()
        )));
    }
    Ok(Taken {
        letters,
        dry_run: false,
    })
}

/// Deletes the selected dead letters for good; with `dry_run`, only says
/// which.
pub async fn delete(
    broker: &DeadLetterQueue,
    which: &Selection,
    dry_run: bool,
) -> anyhow::Result<Taken> {
    let (held, chosen) = Held::take(broker, "delete")
        .await?
        .chosen(which, None)
        .await?;
    let letters = chosen.iter().map(|&i| held.messages[i].1.clone()).collect();
    if dry_run {
        held.finish(&[]).await?;
    } else {
        held.remove(broker, &chosen).await?;
    }
    Ok(Taken { letters, dry_run })
}

use amqp::header_text as text;

fn integer(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

/// A header's value as text: strings as they are, numbers in decimal,
/// tables and arrays as JSON.
fn value_text(value: &AMQPValue) -> String {
    fn json(value: &AMQPValue) -> serde_json::Value {
        match value {
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
            AMQPValue::ShortString(s) => s.as_str().into(),
            AMQPValue::Boolean(b) => (*b).into(),
            AMQPValue::FieldArray(a) => a.as_slice().iter().map(json).collect(),
            AMQPValue::FieldTable(t) => t
                .inner()
                .iter()
                .map(|(k, v)| (k.to_string(), json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => match integer(other) {
                Some(n) => n.into(),
                None => format!("{other:?}").into(),
            },
        }
    }
    match json(value) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// What a dead letter says of itself: the `x-jobsync-*` headers jobsync
/// set, or the `x-death` record of a broker dead-lettering.
fn describe(message: &BasicGetMessage) -> DeadLetter {
    let delivery = &message.delivery;
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let kind = serde_json::from_slice::<serde_json::Value>(&delivery.data)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned));
    let mut d = DeadLetter {
        id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string()),
        kind,
        error_code: text(&headers, headers::ERROR_CODE),
        error: text(&headers, headers::ERROR),
        rejected_at: text(&headers, headers::REJECTED_AT),
        source_queue: text(&headers, headers::SOURCE_QUEUE),
        routing_key: text(&headers, headers::ROUTING_KEY)
            .unwrap_or_else(|| delivery.routing_key.to_string()),
    };
    // Dead-lettered by the broker (its delivery limit): x-death.
    if let Some((_, AMQPValue::FieldArray(deaths))) = headers
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == "x-death")
    {
        if let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() {
            let get = |name: &str| {
                death
                    .inner()
                    .iter()
                    .find(|(k, _)| k.as_str() == name)
                    .map(|(_, v)| v)
            };
            if d.error_code.is_none() {
                d.error_code = text(death, "reason");
                d.source_queue = text(death, "queue");
                d.error = Some(format!(
                    "dead-lettered by the broker ({}): the worker could not finish it within the queue's delivery limit",
                    d.error_code.as_deref().unwrap_or("unknown reason")
                ));
                if let Some(AMQPValue::FieldArray(keys)) = get("routing-keys") {
                    if let Some(AMQPValue::LongString(k)) = keys.as_slice().first() {
                        d.routing_key = String::from_utf8_lossy(k.as_bytes()).into_owned();
                    }
                }
                d.rejected_at = get("time").and_then(integer).and_then(|t| {
                    chrono::DateTime::from_timestamp(t, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                });
            }
        }
    }
    d
}

/// The headers a replayed message is published with: the original ones
/// without jobsync's rejection and retry headers and the broker's death
/// record, so it is a fresh delivery.
fn clean_headers(headers: &Option<FieldTable>) -> FieldTable {
    let mut out = FieldTable::default();
    if let Some(h) = headers {
        for (k, v) in h.inner() {
            let name = k.as_str();
            if name.starts_with(headers::JOBSYNC_PREFIX)
                || name == "x-death"
                || name.starts_with("x-first-death")
                || name.starts_with("x-last-death")
                || name == "x-delivery-count"
            {
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
    }
    out
}
