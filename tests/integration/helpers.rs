//! The test environment: a database and a set of broker names of its own per
//! test, workers run in-process, and cleanup in `Drop` (also after a panic),
//! so tests run in parallel and a failed run leaves nothing that matters.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use diesel::prelude::*;
use jobsync::config::{self, Settings};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::AMQPValue;
use lapin::BasicProperties;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub struct Worker {
    stop: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

pub struct TestEnv {
    pub settings: Settings,
    /// The command line of [`TestEnv::settings`] without its subcommand: a
    /// worker started as a process (`jobsync <args> run`) shares them.
    #[allow(dead_code)] // by the reliability suite's worker processes
    pub args: Vec<String>,
    db_name: String,
    server_url: String,
    amqp: lapin::Connection,
    publisher: jobsync::amqp::publisher::Publisher,
    workers: Vec<Worker>,
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
        jobsync::amqp::topology::declare(
            &channel,
            &settings.topology,
            settings.amqp.delivery_limit,
        )
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
        let properties = BasicProperties::default()
            .with_content_type("application/cloudevents+json".into())
            .with_message_id(message_id.into())
            .with_delivery_mode(2);
        self.publisher
            .publish_all(&[jobsync::amqp::publisher::Outgoing {
                exchange: self.settings.topology.hub_exchange.clone(),
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

fn dead_letter(delivery: &lapin::message::Delivery) -> DeadLetter {
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

/// Whether an error sentence starts by naming a field: the part before its
/// first ": " is a path such as `data.entries[0].status`.
pub fn names_a_field(error: &str) -> bool {
    match error.split_once(": ") {
        Some((field, rest)) => !field.is_empty() && !field.contains(' ') && !rest.is_empty(),
        None => false,
    }
}

pub fn processed_count(conn: &mut PgConnection) -> i64 {
    use jobsync::store::schema::processed_messages::dsl::*;
    processed_messages.count().get_result(conn).unwrap_or(0)
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

/// A CloudEvent around `data` with a fresh id.
pub fn event(data: &Value) -> Value {
    event_with_id(&Uuid::new_v4().to_string(), data)
}

/// A job order CloudEvent around `data` with message id `id`.
pub fn event_with_id(id: &str, data: &Value) -> Value {
    cloudevent("dk.dfdg.joborder.snapshot", id, data)
}

/// A mediation log CloudEvent around `data` with a fresh id.
pub fn log_event(data: &Value) -> Value {
    log_event_with_id(&Uuid::new_v4().to_string(), data)
}

/// A mediation log CloudEvent around `data` with message id `id`.
pub fn log_event_with_id(id: &str, data: &Value) -> Value {
    cloudevent("dk.dfdg.mediationlog.snapshot", id, data)
}

fn cloudevent(kind: &str, id: &str, data: &Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "/dfdg",
        "type": kind,
        "time": "2026-11-22T09:30:00Z",
        "subject": data["job_order_id"],
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// A valid job order snapshot: Brøndby's jobcentre, shared with two
/// neighbours, every optional field filled.
pub fn snapshot(id: Uuid, version: u64) -> Value {
    json!({
        "job_order_id": id.to_string(),
        "version": version,
        "request_id": "ANM-2026-0042",
        "origin": "unit",
        "changed_by": {"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}},
        "title": format!("Lagermedarbejder v{version}"),
        "occupation": {"name": "Lagermedarbejder", "alias": "Lagerarbejder", "code": "932920"},
        "employer": {"cvr": "10150817", "p_number": "1003456789", "name": "Brøndby Lager ApS", "conflict_affected": false},
        "contact": {"name": "Søren Østergård", "email": "soeren@brondbylager.dk", "phone": "+4543212345"},
        "responsible_unit": {"type": "jobcenter", "code": "15300"},
        "coordinator": {"id": "c-17", "name": "Åse Nørgaard"},
        "coordinator_allowed": true,
        "descriptions": {
            "tasks": "Pluk og pak på nathold.",
            "qualifications_and_pay": "Truckcertifikat. Løn efter overenskomst.",
            "working_hours": "37 timer, nat"
        },
        "continuous": false,
        "positions": 3,
        "expected_start": "2027-01-04",
        "mediation_deadline": "2026-12-18",
        "status": "open",
        "status_reason": null,
        "status_comment": null,
        "sharing": {"scope": "neighbours", "units": [
            {"type": "jobcenter", "code": "16700"},
            {"type": "jobcenter", "code": "18300"}
        ]},
        "created_at": "2026-11-20T08:00:00Z",
        "updated_at": format!("2026-11-22T09:{:02}:00Z", version % 60)
    })
}

/// A mediation log snapshot of order `order` at `version`.
pub fn mediation_log(order: Uuid, version: u64, entries: Vec<Value>) -> Value {
    json!({"job_order_id": order.to_string(), "version": version, "entries": entries})
}

/// The opaque person reference of candidate `id`: letters only, so that it
/// can never look like a CPR number.
pub fn person_ref(id: Uuid) -> String {
    let letters: String = id.simple().to_string()[..10]
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'g' + d as u8),
            None => c,
        })
        .collect();
    format!("P-{letters}")
}

/// `status_changed_by` naming a unit, e.g. `by_unit("jobcenter", "15300")`.
pub fn by_unit(kind: &str, code: &str) -> Value {
    json!({"kind": "unit", "unit": {"type": kind, "code": code}})
}

/// An entry of a mediation log: candidate `id` put forward by
/// `registered_by` (type, code), at `status` after a change by `changed_by`.
/// Put forward at 08:00 and changed at 08:30 on 2026-11-22, before every
/// version of [`snapshot`] (updated at 09:MM), so the rules judge it by the
/// stored order at once.
pub fn candidate(id: Uuid, registered_by: (&str, &str), status: &str, changed_by: Value) -> Value {
    json!({
        "mediation_id": id.to_string(),
        "person_ref": person_ref(id),
        "registered_by": {"type": registered_by.0, "code": registered_by.1},
        "registered_at": "2026-11-22T08:00:00Z",
        "status": status,
        "status_changed_at": "2026-11-22T08:30:00Z",
        "status_changed_by": changed_by,
        "searchable_cv": true,
        "cv_active": true,
        "protected_identity": false,
        "note": "Stærk på lager; taler dansk og polsk."
    })
}

/// The stored mediation log of order `id`: (version, total, awaiting
/// approval, undecided).
pub fn stored_log(conn: &mut PgConnection, id: Uuid) -> Option<(i64, i32, i32, i32)> {
    use jobsync::store::schema::mediation_logs::dsl as m;
    m::mediation_logs
        .select((m::version, m::total, m::awaiting_approval, m::undecided))
        .filter(m::job_order_id.eq(id))
        .first(conn)
        .optional()
        .unwrap()
}

/// The status history of the entries of order `id`, oldest first:
/// (mediation id, log version, from, to, who as `kind` or `type:code`).
pub fn history(
    conn: &mut PgConnection,
    id: Uuid,
) -> Vec<(Uuid, i64, Option<String>, String, String)> {
    use jobsync::store::schema::mediation_entry_history::dsl as h;
    type Row = (
        Uuid,
        i64,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = h::mediation_entry_history
        .select((
            h::mediation_id,
            h::log_version,
            h::from_status,
            h::to_status,
            h::changed_by_kind,
            h::changed_by_unit_type,
            h::changed_by_unit_code,
        ))
        .filter(h::job_order_id.eq(id))
        .order((h::log_version, h::mediation_id))
        .load(conn)
        .unwrap();
    rows.into_iter()
        .map(|(m, v, from, to, kind, t, c)| {
            let who = match (t, c) {
                (Some(t), Some(c)) => format!("{t}:{c}"),
                _ => kind,
            };
            (m, v, from, to, who)
        })
        .collect()
}

/// The stored version of order `id`, if any.
pub fn stored_version(conn: &mut PgConnection, id: Uuid) -> Option<i64> {
    use jobsync::store::schema::job_orders::dsl as j;
    j::job_orders
        .select(j::version)
        .filter(j::id.eq(id))
        .first(conn)
        .optional()
        .unwrap()
}

/// A PostgreSQL server of the test's own, in a temporary directory, that the
/// test may stop and start without disturbing any other test.
pub struct PrivatePostgres {
    dir: std::path::PathBuf,
    pub port: u16,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (run scripts/services)")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("postgres").exists())
            .max()
            .expect("a PostgreSQL server binary");
        let dir = std::env::temp_dir().join(format!("jobsync-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = PrivatePostgres { dir, port, bin };
        if is_root() {
            run(Command::new("chown").arg("postgres:postgres").arg(&pg.dir));
        }
        run(pg
            .as_owner(&pg.bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(pg.dir.join("data")));
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server at once, as a crash or an outage would.
    pub fn stop(&self) {
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-w", "stop", "-D"])
            .arg(self.dir.join("data")));
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("start"));
    }

    fn as_owner(&self, program: &std::path::Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "stop", "-D"])
            .arg(self.dir.join("data"))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// A queue of the test's own bound like a unit's (or an observer's), to see
/// what jobsync publishes.
pub struct Subscription {
    channel: lapin::Channel,
    queue: String,
    pub label: String,
}

/// A message received on a [`Subscription`], checked against its schema.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    /// AMQP headers, as text.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Received {
    /// What a delivery of jobsync's carries (its body must be JSON).
    pub fn of(delivery: &lapin::message::Delivery) -> Received {
        let raw = delivery.data.clone();
        Received {
            headers: dead_letter(delivery).headers,
            routing_key: delivery.routing_key.to_string(),
            body: serde_json::from_slice(&raw).expect("a JSON body"),
            raw,
        }
    }
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or("")
    }
    pub fn event(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("dk.jobsync."))
            .unwrap_or("")
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// The job order it is about (its `subject`).
    #[allow(dead_code)] // by the reliability suite's oracle
    pub fn order(&self) -> Uuid {
        self.body["subject"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    }
    /// The hub version of the order it reflects.
    #[allow(dead_code)] // by the reliability suite's oracle
    pub fn version(&self) -> i64 {
        self.body["joborderversion"].as_i64().unwrap_or(0)
    }
}

impl TestEnv {
    /// What unit `unit` (written `jobcenter:15300`) receives, as a jobcentre
    /// system would bind: `unit.<type>.<code>.#` on the notifications
    /// exchange.
    pub async fn subscribe(&self, unit: &str) -> Subscription {
        let (kind, code) = unit.split_once(':').expect("type:code");
        self.bind(
            &self.settings.topology.notifications_exchange,
            &format!("unit.{kind}.{code}.#"),
            unit,
        )
        .await
    }

    /// One queue bound for several units (`unit.<type>.<code>.#` each), as
    /// a system serving them all would bind; `label` names it in failures.
    pub async fn subscribe_many(&self, label: &str, units: &[&str]) -> Subscription {
        let exchange = &self.settings.topology.notifications_exchange;
        let sub = self.bind(exchange, "unit.none.0.#", label).await;
        for unit in units {
            let (kind, code) = unit.split_once(':').expect("type:code");
            sub.channel
                .queue_bind(
                    sub.queue.as_str().into(),
                    exchange.as_str().into(),
                    format!("unit.{kind}.{code}.#").as_str().into(),
                    Default::default(),
                    Default::default(),
                )
                .await
                .unwrap();
        }
        sub
    }

    /// Every lifecycle event.
    pub async fn subscribe_events(&self) -> Subscription {
        self.bind(&self.settings.topology.events_exchange, "#", "events")
            .await
    }

    async fn bind(&self, exchange: &str, key: &str, label: &str) -> Subscription {
        let channel = self.amqp.create_channel().await.unwrap();
        let queue = jobsync::amqp::topology::watch(&channel, "", exchange, key)
            .await
            .unwrap();
        Subscription {
            channel,
            queue,
            label: label.to_owned(),
        }
    }
}

impl Subscription {
    /// Takes exactly `n` messages, waiting up to `timeout` for them, each
    /// valid under its schema; then checks no further one arrives briefly.
    pub async fn take(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match self.next().await {
                Some(r) => out.push(r),
                None if tokio::time::Instant::now() > deadline => panic!(
                    "{}: timed out waiting for {n} messages; got {}: {:#?}",
                    self.label,
                    out.len(),
                    out.iter().map(|r| &r.body).collect::<Vec<_>>()
                ),
                None => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
        self.assert_quiet(Duration::from_millis(300)).await;
        out
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn assert_quiet(&self, wait: Duration) {
        tokio::time::sleep(wait).await;
        if let Some(extra) = self.next().await {
            panic!(
                "{}: an unexpected message: {} {:#}",
                self.label, extra.routing_key, extra.body
            );
        }
    }

    async fn next(&self) -> Option<Received> {
        let msg = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()?;
        let received = Received::of(&msg.delivery);
        check_outbound_schema(&received.body);
        Some(received)
    }
}

/// Checks an outbound message against its schema under `schemas/`.
pub fn check_outbound_schema(body: &Value) {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static VALIDATORS: OnceLock<std::sync::Mutex<HashMap<String, jsonschema::Validator>>> =
        OnceLock::new();
    let event = body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("dk.jobsync."))
        .unwrap_or_else(|| panic!("an outbound type: {body}"));
    let kind = if body.get("unit").is_some() {
        "notification"
    } else {
        "event"
    };
    let name = format!("{kind}-{}.schema.json", event.replace('.', "-"));
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().unwrap();
    let validator = validators.entry(name.clone()).or_insert_with(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(&name);
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{body:#}");
}

/// A clock the test sets.
pub struct TestClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl TestClock {
    pub fn at(rfc3339: &str) -> std::sync::Arc<TestClock> {
        std::sync::Arc::new(TestClock(std::sync::Mutex::new(utc(rfc3339))))
    }
    pub fn set(&self, rfc3339: &str) {
        *self.0.lock().unwrap() = utc(rfc3339);
    }
}

impl jobsync::domain::expiry::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

pub fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A TCP port free at this moment, for a worker's operations endpoints.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on 127.0.0.1:`port`: (status, body); `None` while nothing
/// answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
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
