//! `jobsync dead-letters list` and `replay`: the rejected messages kept in
//! `jobsync.dead-letters`, with their reasons, and putting them back on the
//! hub exchange once their cause is fixed.
//!
//! Both read exactly the messages that are in the queue when they start
//! (its message count then), holding each unacknowledged until the end, so
//! a message that arrives meanwhile is neither listed nor replayed. `list`
//! returns every message to the queue; `replay` removes a message only after
//! the broker confirmed its republication.

use anyhow::Context as _;
use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use serde::Serialize;

use crate::amqp::{self, publisher::Outgoing, publisher::Publisher};
use crate::config::Settings;

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
    /// For one the broker dead-lettered: how often it was delivered.
    pub delivery_count: Option<i64>,
}

/// Which dead letters `replay` takes.
#[derive(Debug, Clone)]
pub enum Selection {
    Id(String),
    Code(String),
    All,
}

impl Selection {
    fn matches(&self, d: &DeadLetter) -> bool {
        match self {
            Selection::Id(id) => d.id.as_deref() == Some(id.as_str()),
            Selection::Code(code) => d.error_code.as_deref() == Some(code.as_str()),
            Selection::All => true,
        }
    }
}

/// Lists the dead letters, leaving them in the queue.
pub async fn list(settings: &Settings) -> anyhow::Result<Vec<DeadLetter>> {
    let (connection, channel) =
        amqp::connect_declared(settings, "jobsync dead-letters list").await?;
    let held = take_present(&channel, &settings.topology.dead_letters_queue).await?;
    let listed = held.iter().map(describe).collect();
    if let Some(last) = held.last() {
        last.delivery
            .acker
            .nack(BasicNackOptions {
                multiple: true,
                requeue: true,
            })
            .await?;
    }
    let _ = connection.close(200, "listed".into()).await;
    Ok(listed)
}

/// Republishes the selected dead letters to the hub exchange with their
/// routing key, under confirms, and removes them; returns what was
/// replayed.
pub async fn replay(settings: &Settings, which: &Selection) -> anyhow::Result<Vec<DeadLetter>> {
    let (connection, channel) =
        amqp::connect_declared(settings, "jobsync dead-letters replay").await?;
    let publisher = Publisher::open(&connection).await?;
    let held = take_present(&channel, &settings.topology.dead_letters_queue).await?;
    let mut replayed = Vec::new();
    let mut outgoing = Vec::new();
    let mut chosen = Vec::new();
    let mut others = Vec::new();
    for message in &held {
        let d = describe(message);
        if !which.matches(&d) {
            others.push(message);
            continue;
        }
        outgoing.push(Outgoing {
            exchange: settings.topology.hub_exchange.clone(),
            routing_key: d.routing_key.clone(),
            properties: message
                .delivery
                .properties
                .clone()
                .with_headers(clean_headers(message.delivery.properties.headers())),
            body: message.delivery.data.clone(),
            mandatory: true,
        });
        chosen.push(message);
        replayed.push(d);
    }
    publisher
        .publish_all(&outgoing)
        .await
        .context("republishing to the hub exchange")?;
    for message in chosen {
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await?;
    }
    // The others go back.
    for message in others {
        message
            .delivery
            .acker
            .nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await?;
    }
    let _ = connection.close(200, "replayed".into()).await;
    Ok(replayed)
}

/// Takes (unacknowledged) exactly the messages in `queue` now.
async fn take_present(channel: &Channel, queue: &str) -> anyhow::Result<Vec<BasicGetMessage>> {
    let present = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    let mut held = Vec::with_capacity(present as usize);
    while held.len() < present as usize {
        match channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await?
        {
            Some(message) => held.push(message),
            None => break,
        }
    }
    Ok(held)
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
        error_code: text(&headers, "x-jobsync-error-code"),
        error: text(&headers, "x-jobsync-error"),
        rejected_at: text(&headers, "x-jobsync-rejected-at"),
        source_queue: text(&headers, "x-jobsync-source-queue"),
        routing_key: text(&headers, crate::worker::ROUTING_KEY_HEADER)
            .unwrap_or_else(|| delivery.routing_key.to_string()),
        delivery_count: None,
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
    if d.delivery_count.is_none() {
        d.delivery_count = headers
            .inner()
            .iter()
            .find(|(k, _)| k.as_str() == "x-delivery-count")
            .and_then(|(_, v)| integer(v));
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
            if name.starts_with("x-jobsync-")
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
