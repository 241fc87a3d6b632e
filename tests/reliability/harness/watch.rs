//! Queue readers that outlive a broker restart, and the progress of a run.

use super::*;

/// Durable queues of the test's own, bound like each unit's (and one for
/// the lifecycle events), read at the end: they keep what was published
/// across a broker restart.
pub struct Watch {
    pub queues: BTreeMap<String, String>,
}

pub const EVENTS: &str = "events";

impl Watch {
    pub async fn declare(env: &TestEnv) -> Watch {
        let conn = jobsync::amqp::connect(AMQP_URL, "chaos watch")
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let prefix = &env.settings.topology.joborders_queue;
        let mut queues = BTreeMap::new();
        let mut bind = |label: String, exchange: String, key: String| {
            queues.insert(
                label.clone(),
                (format!("{prefix}.watch.{label}"), exchange, key),
            );
        };
        for unit in units() {
            bind(
                unit.to_owned(),
                env.settings.topology.notifications_exchange.clone(),
                format!("unit.jobcenter.{unit}.#"),
            );
        }
        bind(
            EVENTS.to_owned(),
            env.settings.topology.events_exchange.clone(),
            "#".to_owned(),
        );
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut names = BTreeMap::new();
        for (label, (queue, exchange, key)) in queues {
            channel
                .queue_declare(queue.as_str().into(), durable, FieldTable::default())
                .await
                .unwrap();
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            names.insert(label, queue);
        }
        let _ = conn.close(200, "declared".into()).await;
        Watch { queues: names }
    }

    /// Everything in each queue, by label.
    pub async fn read_all(&self) -> BTreeMap<String, Vec<Received>> {
        let conn = jobsync::amqp::connect(AMQP_URL, "chaos watch")
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        for (label, queue) in &self.queues {
            let channel = conn.create_channel().await.unwrap();
            let count = ready_on(&conn, queue)
                .await
                .expect("the watch queue exists") as usize;
            channel
                .basic_qos(1_000, BasicQosOptions::default())
                .await
                .unwrap();
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let mut seen = Vec::with_capacity(count);
            while seen.len() < count {
                let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
                    .await
                    .expect("the watch queue hands over what it counted")
                    .expect("the consumer is open")
                    .expect("a delivery");
                seen.push(Received::of(&delivery));
            }
            let _ = channel.close(200, "read".into()).await;
            out.insert(label.clone(), seen);
        }
        let _ = conn.close(200, "read".into()).await;
        out
    }

    pub async fn delete(&self) {
        if let Ok(conn) = jobsync::amqp::connect(AMQP_URL, "chaos watch").await {
            if let Ok(channel) = conn.create_channel().await {
                for queue in self.queues.values() {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), Default::default())
                        .await;
                }
            }
            let _ = conn.close(200, "deleted".into()).await;
        }
    }
}

/// Messages ready in `queue`, on a connection of its own (the test's may
/// have died with a broker restart).
pub async fn ready(queue: &str) -> u32 {
    let conn = jobsync::amqp::connect(AMQP_URL, "chaos count")
        .await
        .unwrap();
    let count = ready_on(&conn, queue).await.unwrap_or(0);
    let _ = conn.close(200, "counted".into()).await;
    count
}

/// What the database says of the run.
#[derive(Debug, Default)]
pub struct Progress {
    pub processed: i64,
    pub outbox: i64,
}

pub fn progress(env: &TestEnv) -> Option<Progress> {
    let mut conn = PgConnection::establish(&env.db_url()).ok()?;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        processed: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        outbox: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT (SELECT count(*) FROM processed_messages) AS processed, \
                (SELECT count(*) FROM outbox) AS outbox",
    )
    .get_result(&mut conn)
    .ok()?;
    Some(Progress {
        processed: row.processed,
        outbox: row.outbox,
    })
}

/// Waits until every distinct message of `stream` is processed and the
/// outbox is empty (every committed notification published).
pub async fn wait_done(env: &TestEnv, stream: &Stream, timeout: Duration) {
    let expected = stream.distinct() as i64;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(p) = progress(env) {
            if p.processed >= expected && p.outbox == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: after {timeout:?}, {} of {expected} messages processed, {} outbox rows",
                stream.seed,
                p.processed,
                p.outbox
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
