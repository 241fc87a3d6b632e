//! Delayed retry of a message that cannot be applied yet (a mediation log
//! whose job order is not stored yet, or whose entries are newer than the
//! stored order version): it is republished through the retry exchange to a
//! delay queue whose TTL dead-letters it back to its source queue, with
//! growing delays, until a total wait has passed; then it is rejected with
//! the reason it waited for (`joborder.unknown`, or the log rule that
//! fails).
//!
//! Three headers travel with the message: how many times it was retried,
//! when it was first seen, and the routing key it was first published with
//! (the delay queue hands it back under the queue's name), so any worker
//! instance can take the next step and a dead letter keeps the hub's key.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString};

use crate::amqp::publisher::Outgoing;
use crate::amqp::topology::RETRY_DELAYS_S;
use crate::contract::rejection::{ErrorCode, Rejection};

use crate::contract::headers::{
    FIRST_SEEN_AT as FIRST_SEEN_HEADER, RETRIES as RETRIES_HEADER,
    ROUTING_KEY as ROUTING_KEY_HEADER,
};

/// The delay, in seconds, of the next retry after `retries` retries and
/// `elapsed` since the message was first seen; `None` once `total` has
/// passed. Delays grow along [`RETRY_DELAYS_S`] but never overshoot what is
/// left of `total` by more than the shortest delay.
pub fn next_delay(retries: u32, elapsed: Duration, total: Duration) -> Option<u64> {
    if elapsed >= total {
        return None;
    }
    let left = (total - elapsed).as_secs_f64();
    let wanted = RETRY_DELAYS_S[(retries as usize).min(RETRY_DELAYS_S.len() - 1)];
    Some(
        RETRY_DELAYS_S
            .iter()
            .rev()
            .copied()
            .find(|&d| d <= wanted && d as f64 <= left)
            .unwrap_or(RETRY_DELAYS_S[0]),
    )
}

/// What to do with a delivery whose job order is unknown.
pub enum Step {
    /// Publish this to the retry exchange, then acknowledge the delivery.
    Retry {
        message: Box<Outgoing>,
        delay_s: u64,
        /// Which retry this is (1 for the first).
        retry: u32,
    },
    /// The total wait is over.
    GiveUp(Rejection),
}

/// The next step for `delivery` (consumed from `queue`, handled in the
/// trace `trace`), which cannot be applied yet because of `why`, at `now`.
/// A retried message carries `trace` as its `traceparent` when the hub sent
/// none, so that every attempt at it is in one trace.
pub fn step(
    delivery: &Delivery,
    trace: &crate::trace::TraceContext,
    queue: &str,
    retry_exchange: &str,
    why: &Rejection,
    total: Duration,
    now: DateTime<Utc>,
) -> Step {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let retries = retries(&headers);
    let first_seen = first_seen(&headers).unwrap_or(now);
    let elapsed = (now - first_seen).to_std().unwrap_or_default();
    let Some(delay_s) = next_delay(retries, elapsed, total) else {
        let what = if why.code == ErrorCode::JobOrderUnknown {
            "its snapshot"
        } else {
            "a newer version of the job order"
        };
        return Step::GiveUp(Rejection {
            message: format!(
                "{}; waited {} s since {} ({retries} retries) for {what}",
                why.message,
                elapsed.as_secs(),
                first_seen.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            ..why.clone()
        });
    };
    let original_key = original_routing_key(delivery);
    let mut headers = headers;
    if crate::amqp::header_text(&headers, "traceparent").is_none() {
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString(LongString::from(trace.to_string())),
        );
    }
    headers.insert(
        ROUTING_KEY_HEADER.into(),
        AMQPValue::LongString(LongString::from(original_key)),
    );
    headers.insert(
        RETRIES_HEADER.into(),
        AMQPValue::LongLongInt(i64::from(retries) + 1),
    );
    headers.insert(
        FIRST_SEEN_HEADER.into(),
        AMQPValue::LongString(LongString::from(
            first_seen.to_rfc3339_opts(SecondsFormat::Millis, true),
        )),
    );
    Step::Retry {
        message: Box::new(Outgoing {
            exchange: retry_exchange.to_owned(),
            routing_key: format!("{queue}.{delay_s}s"),
            properties: delivery
                .properties
                .clone()
                .with_headers(headers)
                .with_delivery_mode(2),
            body: delivery.data.clone(),
            mandatory: true,
        }),
        delay_s,
        retry: retries + 1,
    }
}

/// The routing key `delivery` was first published with: its own, or the one
/// recorded before it went through a delay queue.
pub fn original_routing_key(delivery: &Delivery) -> String {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| text_header(h, ROUTING_KEY_HEADER))
        .unwrap_or_else(|| delivery.routing_key.to_string())
}

use crate::amqp::header_text as text_header;

fn retries(headers: &FieldTable) -> u32 {
    let value = headers
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == RETRIES_HEADER)
        .map(|(_, v)| v);
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => *n,
        _ => 0,
    }
}

fn first_seen(headers: &FieldTable) -> Option<DateTime<Utc>> {
    let text = text_header(headers, FIRST_SEEN_HEADER)?;
    DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(total_s: u64) -> Vec<u64> {
        let total = Duration::from_secs(total_s);
        let mut elapsed = Duration::ZERO;
        let mut out = Vec::new();
        while let Some(d) = next_delay(out.len() as u32, elapsed, total) {
            out.push(d);
            elapsed += Duration::from_secs(d);
        }
        out
    }

    #[test]
    fn delays_grow_and_stop_at_the_total() {
        assert_eq!(
            delays(600),
            vec![1, 5, 30, 120, 120, 120, 120, 30, 30, 5, 5, 5, 5, 1, 1, 1, 1]
        );
        assert_eq!(delays(600).iter().sum::<u64>(), 600);
    }

    #[test]
    fn a_short_total_takes_short_steps() {
        assert_eq!(delays(3), vec![1, 1, 1]);
        assert_eq!(delays(0), Vec::<u64>::new());
    }

    #[test]
    fn a_total_not_a_whole_number_of_steps_overshoots_by_the_shortest_delay_at_most() {
        let total = Duration::from_millis(2500);
        assert_eq!(next_delay(5, Duration::from_secs(2), total), Some(1));
    }
}
