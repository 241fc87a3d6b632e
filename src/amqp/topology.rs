//! Declares every exchange and queue of section 2, idempotently.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::config::{Settings, Topology};

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

/// The arguments of the dead-letter queue: quorum; a message TTL of the
/// personal-data retention, so that a rejected message (which may carry
/// personal data) leaves it after as many days as the orders' personal
/// data (quorum queues expire messages from RabbitMQ 3.10); and no delivery
/// limit, so that inspecting it (which returns messages to it) can never
/// drop a dead letter. RabbitMQ 4 gives quorum queues a delivery limit of
/// 20 unless `x-delivery-limit` is -1; RabbitMQ 3 has no limit without the
/// argument and reads -1 as "drop at the first return", so the broker is
/// asked which it is (see [`minus_one_is_unlimited`]).
pub async fn dead_letters_queue_arguments(
    channel: &Channel,
    retention_days: u32,
) -> Result<FieldTable, lapin::Error> {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(dead_letter_ttl_ms(retention_days)),
    );
    if minus_one_is_unlimited(channel).await? {
        args.insert("x-delivery-limit".into(), AMQPValue::LongInt(-1));
    }
    Ok(args)
}

/// The dead-letter queue's message TTL in milliseconds: `retention_days`
/// days.
fn dead_letter_ttl_ms(retention_days: u32) -> i64 {
    i64::from(retention_days) * 86_400_000
}

/// Whether this broker reads `x-delivery-limit: -1` on a quorum queue as
/// "no limit" (RabbitMQ 4) rather than as "dead-letter at the first return"
/// (RabbitMQ 3). Found out once per process by trying: a message in a probe
/// queue with that limit is returned once, and it is then either back in the
/// probe queue or dead-lettered to a second one. Both probe queues are
/// deleted, and expire on their own if the process dies meanwhile.
async fn minus_one_is_unlimited(channel: &Channel) -> Result<bool, lapin::Error> {
    static ANSWER: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    ANSWER
        .get_or_try_init(|| async {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            let (probe, dropped) = (
                format!("jobsync.probe.{tag}"),
                format!("jobsync.probe.{tag}.dropped"),
            );
            let mut args = FieldTable::default();
            args.insert("x-queue-type".into(), text("quorum"));
            args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
            let options = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .queue_declare(dropped.as_str().into(), options, args.clone())
                .await?;
            args.insert("x-delivery-limit".into(), AMQPValue::LongInt(-1));
            args.insert("x-dead-letter-exchange".into(), text(""));
            args.insert("x-dead-letter-routing-key".into(), text(&dropped));
            channel
                .queue_declare(probe.as_str().into(), options, args)
                .await?;
            channel
                .basic_publish(
                    "".into(),
                    probe.as_str().into(),
                    Default::default(),
                    b"probe",
                    Default::default(),
                )
                .await?;
            let get = |queue: &str| {
                channel.basic_get(
                    queue.to_owned().into(),
                    lapin::options::BasicGetOptions { no_ack: false },
                )
            };
            let mut returned = false;
            // Seconds at most; no answer by then reads as RabbitMQ 3 (no
            // argument), the default of every broker before 4.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            let answer = loop {
                if let Some(message) = get(&probe).await? {
                    if returned {
                        message.delivery.acker.ack(Default::default()).await?;
                        break true;
                    }
                    message
                        .delivery
                        .acker
                        .nack(lapin::options::BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        })
                        .await?;
                    returned = true;
                    continue;
                }
                if returned {
                    if let Some(message) = get(&dropped).await? {
                        message.delivery.acker.ack(Default::default()).await?;
                        break false;
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    break false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            };
            for queue in [&probe, &dropped] {
                channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await?;
            }
            Ok(answer)
        })
        .await
        .copied()
}

/// Declares the whole topology of `settings` on `channel`. Re-declaring with
/// the same arguments is a no-op; a queue that exists with other arguments
/// (another delivery limit or retention) closes the channel with
/// PRECONDITION_FAILED, which the caller reports.
pub async fn declare(channel: &Channel, settings: &Settings) -> Result<(), lapin::Error> {
    let t = &settings.topology;
    let delivery_limit = settings.amqp.delivery_limit;
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
    channel
        .queue_declare(
            t.dead_letters_queue.as_str().into(),
            durable_queue,
            dead_letters_queue_arguments(channel, settings.personal_data_retention_days).await?,
        )
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

/// Declares the durable topic exchange `name` (the hub's or the
/// notifications'), as the worker does: for the commands that publish to or
/// watch only that.
pub async fn declare_topic_exchange(channel: &Channel, name: &str) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
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
