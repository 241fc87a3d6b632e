//! The environment of one test: its database and broker names, its workers, and cleanup in `Drop`.

use super::*;

pub struct Worker {
    pub(super) stop: CancellationToken,
    pub(super) handle: JoinHandle<anyhow::Result<()>>,
}

pub struct TestEnv {
    pub settings: Settings,
    /// The command line of [`TestEnv::settings`] without its subcommand: a
    /// worker started as a process (`jobsync run <args>`) shares them.
    #[allow(dead_code)] // by the reliability suite's worker processes
    pub args: Vec<String>,
    pub(super) db_name: String,
    pub(super) server_url: String,
    pub(super) amqp: lapin::Connection,
    pub(super) publisher: jobsync::amqp::publisher::Publisher,
    pub(super) workers: Vec<Worker>,
}

/// A dead-lettered message as a person inspecting the queue sees it.
#[derive(Debug)]
pub struct DeadLetter {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub routing_key: String,
}

impl DeadLetter {
    pub fn code(&self) -> &str {
        self.headers
            .get("x-jobsync-error-code")
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn error(&self) -> &str {
        self.headers
            .get("x-jobsync-error")
            .map(String::as_str)
            .unwrap_or("")
    }
}

impl TestEnv {
    /// A fresh environment on the shared local PostgreSQL.
    pub async fn new() -> TestEnv {
        Self::with_server(PG_SERVER, &[]).await
    }

    /// A fresh environment with extra command-line settings.
    pub async fn with_args(args: &[&str]) -> TestEnv {
        Self::with_server(PG_SERVER, args).await
    }

    /// A fresh environment whose database lives on `server_url`.
    pub async fn with_server(server_url: &str, extra: &[&str]) -> TestEnv {
        jobsync::telemetry::init_for_test();
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..12]);
        let db_name = format!("jobsync_test_{}", &id[..16]);
        let db_url = format!("{server_url}/{db_name}");
        let names = [
            ("--hub-exchange", "dfdg.hub"),
            ("--joborders-queue", "jobsync.joborders"),
            ("--mediationlogs-queue", "jobsync.mediationlogs"),
            ("--retry-exchange", "jobsync.retry"),
            ("--dead-exchange", "jobsync.dead"),
            ("--dead-letters-queue", "jobsync.dead-letters"),
            ("--notifications-exchange", "jobsync.notifications"),
            ("--events-exchange", "jobsync.events"),
        ];
        let mut args: Vec<String> = vec!["--amqp-url".into(), AMQP_URL.into()];
        args.extend(["--database-url".into(), db_url]);
        args.extend(["--batch-wait-ms".into(), "20".into()]);
        args.extend(["--http-addr".into(), "127.0.0.1:0".into()]);
        // The read API off unless a test turns it on (on a port of its own).
        args.extend(["--api-addr".into(), String::new()]);
        for (flag, name) in names {
            args.extend([flag.to_owned(), format!("{prefix}.{name}")]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let settings = config::worker_settings(&args).expect("test settings parse");
        let worker_args = args;
        let amqp = jobsync::amqp::connect(AMQP_URL, "jobsync tests")
            .await
            .expect("RabbitMQ answers on 127.0.0.1:5672 (run scripts/services)");
        let channel = amqp.create_channel().await.unwrap();
        jobsync::amqp::topology::declare(&channel, &settings)
            .await
            .unwrap();
        let publisher = jobsync::amqp::publisher::Publisher::open(&amqp)
            .await
            .unwrap();
        TestEnv {
            settings,
            args: worker_args,
            db_name,
            server_url: server_url.to_owned(),
            amqp,
            publisher,
            workers: Vec::new(),
        }
    }

    pub fn db_url(&self) -> String {
        format!("{}/{}", self.server_url, self.db_name)
    }

    /// Starts a worker (in this process) on this environment.
    pub fn start_worker(&mut self) {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(jobsync::worker::run(self.settings.clone(), stop.clone()));
        self.workers.push(Worker { stop, handle });
    }

    /// Starts a worker whose clock the test sets.
    pub fn start_worker_with_clock(&mut self, clock: std::sync::Arc<TestClock>) {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(jobsync::worker::run_with_clock(
            self.settings.clone(),
            stop.clone(),
            clock,
        ));
        self.workers.push(Worker { stop, handle });
    }

    /// Stops every worker the way SIGTERM does and checks they exit cleanly.
    pub async fn stop_workers(&mut self) {
        for w in self.workers.drain(..) {
            w.stop.cancel();
            let result = tokio::time::timeout(Duration::from_secs(30), w.handle)
                .await
                .expect("a worker stops within 30 s");
            result
                .expect("the worker task did not panic")
                .expect("the worker exits cleanly");
        }
    }

    /// Publishes a raw body to the hub exchange with `routing_key`.
    pub async fn publish_raw(&self, routing_key: &str, message_id: &str, body: Vec<u8>) {
        let hub = self.settings.topology.hub_exchange.clone();
        self.publish_to(&hub, routing_key, message_id, body).await;
    }

    /// Publishes a raw body to `exchange` with `routing_key`, confirmed and
    /// routed to some queue.
    pub async fn publish_to(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        body: Vec<u8>,
    ) {
        let properties = BasicProperties::default()
            .with_content_type("application/cloudevents+json".into())
            .with_message_id(message_id.into())
            .with_delivery_mode(2);
        self.publisher
            .publish_all(&[jobsync::amqp::publisher::Outgoing {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
                properties,
                body,
                mandatory: true,
            }])
            .await
            .expect("published");
    }

    /// Messages ready in `queue` (0 when it does not exist).
    pub async fn ready_in(&self, queue: &str) -> u32 {
        ready_on(&self.amqp, queue).await.unwrap_or(0)
    }

    /// Deletes a queue of this test's topology, with its messages, as an
    /// operator's mistake would.
    pub async fn delete_queue(&self, name: &str) {
        let channel = self.amqp.create_channel().await.unwrap();
        channel
            .queue_delete(name.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
        let _ = channel.close(200, "deleted".into()).await;
    }

    /// Publishes one job order CloudEvent with a `traceparent` header.
    pub async fn publish_traced(&self, event: &Value, traceparent: &str) {
        let mut headers = lapin::types::FieldTable::default();
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString(traceparent.into()),
        );
        let properties = BasicProperties::default()
            .with_content_type("application/cloudevents+json".into())
            .with_message_id(event["id"].as_str().unwrap().into())
            .with_delivery_mode(2)
            .with_headers(headers);
        self.publisher
            .publish_all(&[jobsync::amqp::publisher::Outgoing {
                exchange: self.settings.topology.hub_exchange.clone(),
                routing_key: "joborder.snapshot".into(),
                properties,
                body: event.to_string().into_bytes(),
                mandatory: true,
            }])
            .await
            .expect("published");
    }

    /// Publishes CloudEvents (routing key from their type) under confirms.
    pub async fn publish(&self, events: &[Value]) {
        let text: String = events.iter().map(|e| format!("{e}\n")).collect();
        let outgoing =
            jobsync::commands::read_events(&text, &self.settings.topology.hub_exchange).unwrap();
        for chunk in outgoing.chunks(500) {
            self.publisher.publish_all(chunk).await.expect("published");
        }
    }

    /// A connection to this test's database.
    pub fn db(&self) -> PgConnection {
        PgConnection::establish(&self.db_url()).expect("the test database answers")
    }

    /// Waits until `check` holds on the database, failing after `timeout`.
    pub async fn wait_until<F: FnMut(&mut PgConnection) -> bool>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(mut conn) = PgConnection::establish(&self.db_url()) {
                if check(&mut conn) {
                    return;
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting until {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` inbound messages are recorded as processed.
    pub async fn wait_processed(&self, n: i64, timeout: Duration) {
        self.wait_until(timeout, &format!("{n} messages are processed"), |conn| {
            processed_count(conn) >= n
        })
        .await;
    }

    /// Takes exactly `n` messages from this test's dead-letter queue, waiting
    /// up to `timeout` for them; then checks no further one arrives briefly.
    /// A queue that does not exist (yet) counts as empty.
    pub async fn take_dead_letters(&self, n: usize, timeout: Duration) -> Vec<DeadLetter> {
        let out = self.take_dead_letters_up_to(n, timeout).await;
        assert_eq!(
            out.len(),
            n,
            "timed out waiting for {n} dead letters; got {}: {out:#?}",
            out.len()
        );
        let channel = self.amqp.create_channel().await.unwrap();
        let queue = self.settings.topology.dead_letters_queue.as_str();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(extra) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            panic!(
                "more dead letters than the {n} expected: {:#?}",
                dead_letter(&extra.delivery)
            );
        }
        out
    }

    /// Asserts the dead-letter queue stays empty.
    pub async fn assert_no_dead_letters(&self) {
        self.take_dead_letters(0, Duration::from_secs(1)).await;
    }
}

pub(super) fn dead_letter(delivery: &lapin::message::Delivery) -> DeadLetter {
    let mut headers = BTreeMap::new();
    if let Some(table) = delivery.properties.headers() {
        for (k, v) in table.inner() {
            let text = match v {
                AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                AMQPValue::ShortString(s) => s.as_str().to_owned(),
                AMQPValue::LongLongInt(n) => n.to_string(),
                AMQPValue::LongInt(n) => n.to_string(),
                other => format!("{other:?}"),
            };
            headers.insert(k.as_str().to_owned(), text);
        }
    }
    DeadLetter {
        headers,
        body: delivery.data.clone(),
        routing_key: delivery.routing_key.to_string(),
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for w in &self.workers {
            w.stop.cancel();
            w.handle.abort();
        }
        jobsync::commands::remove_environment(
            AMQP_URL,
            &self.settings.topology,
            &self.server_url,
            &self.db_name,
        );
    }
}

/// Messages ready in `queue`, counted on a channel of `conn`; `None` when
/// the queue does not exist.
pub async fn ready_on(conn: &lapin::Connection, queue: &str) -> Option<u32> {
    let channel = conn.create_channel().await.unwrap();
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let count = channel
        .queue_declare(queue.into(), passive, Default::default())
        .await
        .map(|q| q.message_count())
        .ok();
    let _ = channel.close(200, "counted".into()).await;
    count
}

impl TestEnv {
    /// Whether the workers started on this environment are all still
    /// running: none has returned (stopped or failed) or panicked.
    pub fn workers_running(&self) -> bool {
        !self.workers.is_empty() && self.workers.iter().all(|w| !w.handle.is_finished())
    }

    /// Takes messages from this test's dead-letter queue until `n` are taken
    /// or `timeout` passes, and returns them: unlike
    /// [`TestEnv::take_dead_letters`], the caller says what is missing.
    pub async fn take_dead_letters_up_to(&self, n: usize, timeout: Duration) -> Vec<DeadLetter> {
        let mut channel = self.amqp.create_channel().await.unwrap();
        let queue = self.settings.topology.dead_letters_queue.as_str();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n && tokio::time::Instant::now() < deadline {
            match channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
            {
                Ok(Some(msg)) => {
                    msg.delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .unwrap();
                    out.push(dead_letter(&msg.delivery));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                // NOT_FOUND closes the channel: take a new one, and wait as
                // for an empty queue (without the pause, a queue that is
                // gone had the loop open channels until the connection
                // broke).
                Err(_) => {
                    channel = self.amqp.create_channel().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        out
    }
}
