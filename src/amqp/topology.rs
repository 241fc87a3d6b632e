//! Declares every exchange and queue of section 2, idempotently.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::config::Topology;

/// Delays of the retry queues, in seconds: a message that cannot be applied
/// yet waits in the next one each time.
pub const RETRY_DELAYS_S: &[u64] = &[1, 5, 30, 120];

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// The arguments of a consumed queue: quorum, a delivery limit, and
/// dead-lettering to the dead exchange at least once (quorum queues
/// dead-letter at most once by default, which may drop a message on the way).
pub fn consumed_queue_arguments(t: &Topology, delivery_limit: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(delivery_limit as i32),
    );
    args.insert("x-dead-letter-exchange".into(), text(&t.dead_exchange));
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}

/// Declares the whole topology on `channel`. Re-declaring with the same
/// arguments is a no-op; a queue that exists with other arguments closes the
/// channel with PRECONDITION_FAILED, which the caller reports.
pub async fn declare(
    channel: &Channel,
    t: &Topology,
    delivery_limit: u32,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for (name, kind) in [
        (&t.hub_exchange, ExchangeKind::Topic),
        (&t.dead_exchange, ExchangeKind::Fanout),
        (&t.retry_exchange, ExchangeKind::Direct),
        (&t.notifications_exchange, ExchangeKind::Topic),
        (&t.events_exchange, ExchangeKind::Topic),
    ] {
        channel
            .exchange_declare(name.as_str().into(), kind, durable, FieldTable::default())
            .await?;
    }
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(t.dead_letters_queue.as_str().into(), durable_queue, quorum)
        .await?;
    channel
        .queue_bind(
            t.dead_letters_queue.as_str().into(),
            t.dead_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for (queue, pattern) in [
        (&t.joborders_queue, "joborder.#"),
        (&t.mediationlogs_queue, "mediationlog.#"),
    ] {
        channel
            .queue_declare(
                queue.as_str().into(),
                durable_queue,
                consumed_queue_arguments(t, delivery_limit),
            )
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                t.hub_exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for &seconds in RETRY_DELAYS_S {
            let name = t.retry_queue(queue, seconds);
            // Quorum, dead-lettering at least once: a message whose delay
            // ends while its source queue cannot take it stays here until it
            // can, instead of being dropped.
            let mut args = FieldTable::default();
            args.insert("x-queue-type".into(), text("quorum"));
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongInt((seconds * 1000) as i32),
            );
            args.insert("x-dead-letter-exchange".into(), text(""));
            args.insert("x-dead-letter-routing-key".into(), text(queue));
            args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
            args.insert("x-overflow".into(), text("reject-publish"));
            channel
                .queue_declare(name.as_str().into(), durable_queue, args)
                .await?;
            channel
                .queue_bind(
                    name.as_str().into(),
                    t.retry_exchange.as_str().into(),
                    format!("{queue}.{seconds}s").into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Declares an exclusive, self-deleting queue (named `name`, or by the
/// broker when empty) bound to `exchange` with `pattern`, and returns its
/// name: for watching what is published (`jobsync tail`, tests, benchmarks).
pub async fn watch(
    channel: &Channel,
    name: &str,
    exchange: &str,
    pattern: &str,
) -> Result<String, lapin::Error> {
    let queue = channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().as_str().into(),
            exchange.into(),
            pattern.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(queue.name().to_string())
}

/// Deletes every queue and exchange of `t`, with the messages in them: for
/// tests and benchmarks that made a topology of their own.
pub async fn delete(channel: &Channel, t: &Topology) -> Result<(), lapin::Error> {
    let mut queues = vec![
        t.joborders_queue.clone(),
        t.mediationlogs_queue.clone(),
        t.dead_letters_queue.clone(),
    ];
    for queue in [&t.joborders_queue, &t.mediationlogs_queue] {
        queues.extend(RETRY_DELAYS_S.iter().map(|&s| t.retry_queue(queue, s)));
    }
    for queue in queues {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    for exchange in [
        &t.hub_exchange,
        &t.dead_exchange,
        &t.retry_exchange,
        &t.notifications_exchange,
        &t.events_exchange,
    ] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    Ok(())
}
