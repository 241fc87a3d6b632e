//! The reliability harness: a generated stream of valid snapshots with
//! duplicates, reorderings and stale resends; workers run as processes that
//! can be killed; a publisher and queue readers that outlive a broker
//! restart; and an oracle, computed from the stream alone, that the end
//! state and every notification are checked against.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::StreamExt;
use jobsync::amqp::publisher::{Outgoing, Publisher};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// The jobcentres orders are given to, and the ones they are shared with
/// (Brøndby, Hvidovre, Ishøj, København; Gladsaxe, Glostrup, Herlev,
/// Albertslund, Lyngby-Taarbæk, Tårnby).
const RESPONSIBLE: [&str; 4] = ["15300", "16700", "18300", "10100"];
const SHARED: [&str; 6] = ["15900", "16100", "16300", "16500", "17300", "18500"];

/// Every unit a stream may involve.
pub fn units() -> Vec<&'static str> {
    RESPONSIBLE.iter().chain(SHARED.iter()).copied().collect()
}

/// One version of an order in the stream.
#[derive(Debug, Clone)]
pub struct OrderVersion {
    pub title: String,
    pub responsible: &'static str,
    pub shared: BTreeSet<&'static str>,
}

impl OrderVersion {
    /// The units that may see this version.
    pub fn audience(&self) -> BTreeSet<&'static str> {
        let mut all = self.shared.clone();
        all.insert(self.responsible);
        all
    }
}

/// One version of an order's mediation log.
#[derive(Debug, Clone)]
pub struct LogVersion {
    pub total: usize,
    pub awaiting: usize,
    /// Entries available to the employer (every CV is active).
    pub undecided: usize,
}

#[derive(Debug, Clone)]
pub struct OrderPlan {
    pub id: Uuid,
    /// Version `v` at index `v - 1`.
    pub versions: Vec<OrderVersion>,
    pub logs: Vec<LogVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Order,
    Log,
}

/// A message of the stream, ready to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub kind: Kind,
    pub order: Uuid,
    pub version: i64,
    pub body: Vec<u8>,
}

impl Message {
    fn routing_key(&self) -> &'static str {
        match self.kind {
            Kind::Order => "joborder.snapshot",
            Kind::Log => "mediationlog.snapshot",
        }
    }
}

/// A stream and the plan it was made from.
pub struct Stream {
    pub seed: u64,
    pub orders: Vec<OrderPlan>,
    /// In publishing order, repeats and stale resends included.
    pub messages: Vec<Message>,
}

/// How a stream is mixed.
pub struct Mix {
    pub orders: usize,
    /// Versions per order (uniform, inclusive).
    pub order_versions: (usize, usize),
    /// Log versions per order (uniform, inclusive; 0 = no log).
    pub log_versions: (usize, usize),
    /// The share of messages published twice (same id).
    pub duplicates: f64,
    /// The share of order versions above 1 resent later under a new id.
    pub stale_resends: f64,
    /// How far (in messages) one may move from its place.
    pub reorder_window: usize,
}

impl Mix {
    /// About `n` messages: the chaos mix.
    pub fn about(n: usize) -> Mix {
        // Per order: 5 versions and 2 log versions on average, 15 % of
        // them repeated, and 8 % of the 4 versions above 1 resent: about
        // 8.4 messages; a little more than `n` comes out.
        let orders = (n as f64 / 8.0).ceil() as usize;
        Mix {
            orders,
            order_versions: (3, 7),
            log_versions: (0, 4),
            duplicates: 0.15,
            stale_resends: 0.08,
            reorder_window: 1_500,
        }
    }
}

/// The seed of a run: `JOBSYNC_CHAOS_SEED` repeats a run, otherwise random.
pub fn seed() -> u64 {
    std::env::var("JOBSYNC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

impl Stream {
    pub fn generate(seed: u64, mix: &Mix) -> Stream {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut orders = Vec::with_capacity(mix.orders);
        // (when, message): each order's messages in version order, spread
        // over the stream; a log version follows the order's first version.
        let mut timed: Vec<(f64, Message)> = Vec::new();
        for n in 0..mix.orders {
            let id = Uuid::from_u128(rng.random());
            let responsible = RESPONSIBLE[rng.random_range(0..RESPONSIBLE.len())];
            let count = rng.random_range(mix.order_versions.0..=mix.order_versions.1);
            let mut versions = Vec::with_capacity(count);
            let start: f64 = rng.random();
            let mut when = start;
            for v in 1..=count {
                let shared: BTreeSet<&'static str> = SHARED
                    .iter()
                    .filter(|_| rng.random_bool(0.3))
                    .copied()
                    .collect();
                let version = OrderVersion {
                    title: format!("Chaos {n} v{v} · Lagermedarbejder i Brøndby"),
                    responsible,
                    shared,
                };
                let body = order_event(id, v as i64, &version);
                timed.push((when, message(&mut rng, Kind::Order, id, v as i64, body)));
                when += rng.random::<f64>() * 0.01;
                versions.push(version);
            }
            let log_count = rng.random_range(mix.log_versions.0..=mix.log_versions.1);
            let mut logs = Vec::with_capacity(log_count);
            // Candidates: (id, available to the employer).
            let mut entries: Vec<(Uuid, bool)> = Vec::new();
            let mut when = start + rng.random::<f64>() * 0.005;
            for v in 1..=log_count {
                let awaiting: Vec<usize> = (0..entries.len()).filter(|&i| !entries[i].1).collect();
                if !awaiting.is_empty() && rng.random_bool(0.5) {
                    entries[awaiting[rng.random_range(0..awaiting.len())]].1 = true;
                } else {
                    entries.push((Uuid::from_u128(rng.random()), false));
                }
                let undecided = entries.iter().filter(|e| e.1).count();
                logs.push(LogVersion {
                    total: entries.len(),
                    awaiting: entries.len() - undecided,
                    undecided,
                });
                let body = log_event(id, v as i64, responsible, &entries);
                timed.push((when, message(&mut rng, Kind::Log, id, v as i64, body)));
                when += rng.random::<f64>() * 0.01;
            }
            orders.push(OrderPlan { id, versions, logs });
        }
        timed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut messages: Vec<Message> = timed.into_iter().map(|(_, m)| m).collect();

        // Reordering: each message moves up to the window from its place.
        let w = mix.reorder_window as f64;
        let mut keyed: Vec<(f64, Message)> = messages
            .drain(..)
            .enumerate()
            .map(|(i, m)| (i as f64 + rng.random::<f64>() * w, m))
            .collect();
        // Repeats (the same id, as a redelivery or a resend brings it) and
        // stale resends (an older version under a new id, later).
        let mut extra = Vec::new();
        for (at, m) in &keyed {
            if rng.random_bool(mix.duplicates) {
                extra.push((at + rng.random::<f64>() * w * 2.0, m.clone()));
            }
            if m.kind == Kind::Order && m.version > 1 && rng.random_bool(mix.stale_resends) {
                let plan = orders.iter().find(|o| o.id == m.order).expect("planned");
                let older = rng.random_range(1..m.version);
                let body = order_event(m.order, older, &plan.versions[older as usize - 1]);
                let resend = message(&mut rng, Kind::Order, m.order, older, body);
                extra.push((at + rng.random::<f64>() * w, resend));
            }
        }
        keyed.extend(extra);
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        Stream {
            seed,
            orders,
            messages: keyed.into_iter().map(|(_, m)| m).collect(),
        }
    }

    /// The distinct message ids.
    pub fn distinct(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

fn message(rng: &mut StdRng, kind: Kind, order: Uuid, version: i64, data: Value) -> Message {
    let id = Uuid::from_u128(rng.random()).to_string();
    let event = match kind {
        Kind::Order => event_with_id(&id, &data),
        Kind::Log => log_event_with_id(&id, &data),
    };
    Message {
        id,
        kind,
        order,
        version,
        body: serde_json::to_vec(&event).expect("serializes"),
    }
}

/// The snapshot of `version` of order `id`: every version changes the title
/// (so every unit that sees it has a new view) and the sharing.
fn order_event(id: Uuid, version: i64, v: &OrderVersion) -> Value {
    let mut data = snapshot(id, version as u64);
    data["title"] = v.title.clone().into();
    data["responsible_unit"] = json!({"type": "jobcenter", "code": v.responsible});
    data["changed_by"] = by_unit("jobcenter", v.responsible);
    // No deadline: expiry is not what this stream is about.
    data["mediation_deadline"] = Value::Null;
    let units: Vec<Value> = v
        .shared
        .iter()
        .map(|c| json!({"type": "jobcenter", "code": c}))
        .collect();
    data["sharing"] = if units.is_empty() {
        json!({"scope": "internal", "units": []})
    } else {
        json!({"scope": "selected", "units": units})
    };
    data
}

/// A log whose candidates the responsible unit put forward and approved.
fn log_event(id: Uuid, version: i64, responsible: &str, entries: &[(Uuid, bool)]) -> Value {
    let entries = entries
        .iter()
        .map(|&(candidate_id, available)| {
            let status = if available {
                "available_to_company"
            } else {
                "awaiting_approval"
            };
            candidate(
                candidate_id,
                ("jobcenter", responsible),
                status,
                by_unit("jobcenter", responsible),
            )
        })
        .collect();
    mediation_log(id, version as u64, entries)
}

/// Publishes `messages` to the hub exchange under confirms, in chunks; a
/// chunk that fails (the broker went away) is published again on a new
/// connection once the broker answers, so some messages may go twice, as
/// they would from the hub.
pub async fn publish_resiliently(exchange: &str, messages: &[Message]) {
    let mut publisher: Option<(lapin::Connection, Publisher)> = None;
    for chunk in messages.chunks(250) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|m| Outgoing {
                exchange: exchange.to_owned(),
                routing_key: m.routing_key().to_owned(),
                properties: BasicProperties::default()
                    .with_content_type("application/cloudevents+json".into())
                    .with_message_id(m.id.as_str().into())
                    .with_delivery_mode(2),
                body: m.body.clone(),
                mandatory: true,
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if publisher.is_none() {
                if let Ok(conn) = jobsync::amqp::connect(AMQP_URL, "chaos publisher").await {
                    if let Ok(p) = Publisher::open(&conn).await {
                        publisher = Some((conn, p));
                    }
                }
            }
            if let Some((_, p)) = &publisher {
                if p.publish_all(&outgoing).await.is_ok() {
                    break;
                }
                publisher = None;
            }
            assert!(
                Instant::now() < deadline,
                "the broker came back within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    if let Some((conn, _)) = publisher {
        let _ = conn.close(200, "published".into()).await;
    }
}

/// A worker run as a process of its own (the test binary's `jobsync`), so
/// that it can be killed with SIGKILL.
pub struct Process {
    child: Child,
}

impl Process {
    /// Starts `jobsync <args> <extra> run`, logging (warnings and up) to
    /// `log`, appended.
    pub fn start(args: &[String], extra: &[&str], log: &PathBuf) -> Process {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the log file opens");
        let child = Command::new(env!("CARGO_BIN_EXE_jobsync"))
            .arg("run")
            .args(args)
            .args(extra)
            .env("JOBSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .expect("the jobsync binary starts");
        Process { child }
    }

    /// Kills it with SIGKILL, as the kernel's OOM killer or a pulled plug
    /// would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running (it exits only when it is told to).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it as SIGTERM does and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the worker stopped within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A log file for a test's worker processes, under the target directory.
pub fn log_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}-{}.log", Uuid::new_v4().simple()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Publishes `stream` to one worker process and, each time the processed
/// messages reach the next of `points`, calls `fault` with the worker and
/// its log (an outage to wait out, or a kill and a restart); then waits for
/// everything to be applied and published, checks the worker still runs and
/// exits 0 on SIGTERM, and returns what the oracle and the log say is
/// wrong (nothing, when the run kept every guarantee). `errors_expected`:
/// whether the faults are ones the worker logs at ERROR (an outage).
pub async fn run_with_faults(
    env: &TestEnv,
    stream: &Stream,
    name: &str,
    points: &[i64],
    errors_expected: bool,
    mut fault: impl AsyncFnMut(&mut Process, &PathBuf),
) -> Vec<String> {
    let watch = Watch::declare(env).await;
    let log = log_path(name);
    let mut worker = Process::start(&env.args, &[], &log);
    let exchange = env.settings.topology.hub_exchange.clone();
    let messages = stream.messages.clone();
    let publishing = tokio::spawn(async move { publish_resiliently(&exchange, &messages).await });
    for (n, &point) in points.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let processed = progress(env).map_or(0, |p| p.processed);
            if processed >= point {
                break;
            }
            assert!(worker.running(), "the worker exited by itself; see {log:?}");
            assert!(
                Instant::now() < deadline,
                "seed {}: stuck at {processed} processed before fault {}; see {log:?}",
                stream.seed,
                n + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fault(&mut worker, &log).await;
        assert!(
            worker.running(),
            "the worker outlived fault {}; see {log:?}",
            n + 1
        );
    }
    publishing.await.expect("the stream is published");
    wait_done(env, stream, Duration::from_secs(600)).await;
    assert!(
        worker.running(),
        "the worker outlived every fault; see {log:?}"
    );
    let status = worker.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; see {log:?}");
    let mut found = discrepancies(env, stream, &watch).await;
    found.extend(log_discrepancies(&log, errors_expected));
    watch.delete().await;
    if found.is_empty() {
        let _ = std::fs::remove_file(&log);
    }
    found
}

/// What the workers' log says went wrong that the end state cannot show:
/// a batch of these valid messages that failed on a healthy database and
/// was applied message by message (slow, and a sign of a write the batch
/// cannot take), or a panic; and, unless the run's faults make some
/// expected (an outage), any line logged at ERROR.
pub fn log_discrepancies(log: &PathBuf, errors_expected: bool) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.contains("applying its messages one by one")
                || l.contains("panicked")
                || (!errors_expected && l.contains(r#""level":"ERROR""#))
        })
        .take(10)
        .map(|l| format!("worker log: {}", l.chars().take(400).collect::<String>()))
        .collect()
}

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

/// The oracle: checks the database and the watched queues against what the
/// stream alone says must be, and returns every discrepancy found (none
/// means the run kept every guarantee of section 9).
pub async fn discrepancies(env: &TestEnv, stream: &Stream, watch: &Watch) -> Vec<String> {
    let mut found = Vec::new();
    let mut conn = env.db();
    let plans: HashMap<Uuid, &OrderPlan> = stream.orders.iter().map(|o| (o.id, o)).collect();

    // The stored orders, sharing and logs: the highest version of each.
    let stored: HashMap<Uuid, (i64, String)> = {
        use jobsync::store::schema::job_orders::dsl as j;
        j::job_orders
            .select((j::id, j::version, j::title))
            .load::<(Uuid, i64, String)>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|(id, v, t)| (id, (v, t)))
            .collect()
    };
    let sharing: HashMap<Uuid, BTreeSet<String>> = {
        use jobsync::store::schema::job_order_sharing::dsl as s;
        let mut map: HashMap<Uuid, BTreeSet<String>> = HashMap::new();
        for (id, code) in s::job_order_sharing
            .select((s::job_order_id, s::unit_code))
            .load::<(Uuid, String)>(&mut conn)
            .unwrap()
        {
            map.entry(id).or_default().insert(code);
        }
        map
    };
    let logs: HashMap<Uuid, (i64, i32, i32, i32)> = {
        use jobsync::store::schema::mediation_logs::dsl as m;
        m::mediation_logs
            .select((
                m::job_order_id,
                m::version,
                m::total,
                m::awaiting_approval,
                m::undecided,
            ))
            .load::<(Uuid, i64, i32, i32, i32)>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|(id, v, t, a, u)| (id, (v, t, a, u)))
            .collect()
    };
    if stored.len() != plans.len() {
        found.push(format!(
            "{} orders stored, {} in the stream",
            stored.len(),
            plans.len()
        ));
    }
    for plan in &stream.orders {
        let last = plan.versions.len() as i64;
        let want = &plan.versions[last as usize - 1];
        match stored.get(&plan.id) {
            Some((v, title)) if *v == last && *title == want.title => {}
            other => found.push(format!(
                "order {}: stored {other:?}, expected version {last} titled {:?}",
                plan.id, want.title
            )),
        }
        let shared: BTreeSet<String> = want.shared.iter().map(|s| s.to_string()).collect();
        let have = sharing.get(&plan.id).cloned().unwrap_or_default();
        if have != shared {
            found.push(format!(
                "order {}: shared with {have:?}, expected {shared:?}",
                plan.id
            ));
        }
        match (plan.logs.last(), logs.get(&plan.id)) {
            (None, None) => {}
            (Some(l), Some(&(v, total, awaiting, undecided)))
                if v == plan.logs.len() as i64
                    && total as usize == l.total
                    && awaiting as usize == l.awaiting
                    && undecided as usize == l.undecided => {}
            (want, have) => found.push(format!(
                "log of {}: stored {have:?}, expected version {} {want:?}",
                plan.id,
                plan.logs.len()
            )),
        }
    }

    // The inbox: every distinct message id, each final.
    // (message id, queue, outcome, order, version)
    type InboxRow = (String, String, String, Option<Uuid>, Option<i64>);
    let inbox: Vec<InboxRow> = {
        use jobsync::store::schema::processed_messages::dsl as p;
        p::processed_messages
            .select((
                p::message_id,
                p::queue,
                p::outcome,
                p::job_order_id,
                p::version,
            ))
            .load(&mut conn)
            .unwrap()
    };
    let ids: HashSet<&str> = stream.messages.iter().map(|m| m.id.as_str()).collect();
    let recorded: HashSet<&str> = inbox.iter().map(|r| r.0.as_str()).collect();
    let missing = ids.difference(&recorded).count();
    let unknown = recorded.difference(&ids).count();
    if missing + unknown > 0 {
        found.push(format!(
            "inbox: {missing} message ids of the stream missing, {unknown} ids not in it"
        ));
    }
    let outbox: i64 = {
        use jobsync::store::schema::outbox::dsl as o;
        o::outbox.count().get_result(&mut conn).unwrap()
    };
    if outbox != 0 {
        found.push(format!("{outbox} outbox rows never published"));
    }
    let dead = ready(&env.settings.topology.dead_letters_queue).await;
    if dead != 0 {
        found.push(format!(
            "{dead} messages dead-lettered; every one was valid"
        ));
    }

    // The order versions applied, in version order, and the log versions.
    let joborders_queue = env.settings.topology.joborders_queue.as_str();
    let mut applied: HashMap<Uuid, BTreeSet<i64>> = HashMap::new();
    let mut applied_logs: HashMap<Uuid, BTreeSet<i64>> = HashMap::new();
    for (_, queue, outcome, order, version) in &inbox {
        if outcome != "applied" {
            continue;
        }
        let (Some(order), Some(version)) = (order, version) else {
            found.push("an applied message without its order and version".into());
            continue;
        };
        let into = if queue == joborders_queue {
            &mut applied
        } else {
            &mut applied_logs
        };
        if !into.entry(*order).or_default().insert(*version) {
            found.push(format!(
                "order {order}: version {version} applied twice ({queue})"
            ));
        }
    }

    // The notifications each unit must have had: for every applied version
    // the view of every unit that may see it, and the revocation for every
    // unit that lost it; for every applied log version the responsible
    // unit's view of the log. Nothing else about an order, in version order,
    // the same content whenever the same event id comes again.
    let seen = watch.read_all().await;
    let mut expected: BTreeSet<(String, Uuid, &'static str, i64)> = BTreeSet::new();
    for plan in &stream.orders {
        let mut before: Option<&OrderVersion> = None;
        for &v in applied.get(&plan.id).into_iter().flatten() {
            let now = &plan.versions[v as usize - 1];
            for unit in now.audience() {
                expected.insert((unit.to_owned(), plan.id, "joborder.updated", v));
            }
            if let Some(b) = before {
                for unit in b.audience().difference(&now.audience()) {
                    expected.insert((unit.to_string(), plan.id, "joborder.revoked", v));
                }
            }
            before = Some(now);
        }
    }
    let mut received: BTreeSet<(String, Uuid, &'static str, i64)> = BTreeSet::new();
    let mut notifications = 0usize;
    let mut repeats = 0usize;
    for unit in units() {
        let mut by_id: HashMap<&str, &Received> = HashMap::new();
        let mut last: HashMap<Uuid, &Received> = HashMap::new();
        let mut last_log: HashMap<Uuid, &Received> = HashMap::new();
        for s in seen.get(unit).into_iter().flatten() {
            notifications += 1;
            if let Some(first) = by_id.get(s.id()) {
                repeats += 1;
                if first.raw != s.raw {
                    found.push(format!(
                        "{unit}: event {} came twice with different content",
                        s.id()
                    ));
                }
                continue;
            }
            by_id.insert(s.id(), s);
            let order = s.order();
            let Some(plan) = plans.get(&order) else {
                found.push(format!(
                    "{unit}: a notification about an unknown order {order}"
                ));
                continue;
            };
            let event = match s.event() {
                "joborder.updated" => "joborder.updated",
                "joborder.revoked" => "joborder.revoked",
                "mediationlog.updated" => "mediationlog.updated",
                other => {
                    found.push(format!("{unit}: an unexpected {other} about {order}"));
                    continue;
                }
            };
            let v = s.version();
            let responsible = plan.versions[0].responsible == unit;
            if event == "mediationlog.updated" {
                let log_version = s.body["data"]["version"].as_i64().unwrap_or(0);
                if !responsible {
                    found.push(format!("{unit}: a log of {order} it has no entry on"));
                } else if !applied_logs
                    .get(&order)
                    .is_some_and(|a| a.contains(&log_version))
                {
                    found.push(format!(
                        "{unit}: log version {log_version} of {order}, never applied"
                    ));
                }
                if let Some(prev) = last_log.insert(order, s) {
                    if prev.body["data"]["version"].as_i64() >= Some(log_version) {
                        found.push(format!("{unit}: logs of {order} out of version order"));
                    }
                }
                continue;
            }
            let key = (unit.to_owned(), order, event, v);
            let expected_here = expected.contains(&key);
            let again = !received.insert(key);
            // The responsible unit's view also changes with its undecided
            // count: a log may tell it the same version again.
            let retold_by_a_log = responsible && event == "joborder.updated";
            if !expected_here {
                found.push(format!(
                    "{unit}: {event} of {order} at version {v}, not expected"
                ));
            } else if again && !retold_by_a_log {
                found.push(format!("{unit}: {event} of {order} at version {v} twice"));
            }
            if let Some(prev) = last.insert(order, s) {
                if prev.version() > v {
                    found.push(format!(
                        "{unit}: {order} version {v} after version {}",
                        prev.version()
                    ));
                }
            }
            if !responsible {
                let data = s.body["data"].as_object();
                for restricted in ["contact", "status_comment"] {
                    if data.is_some_and(|d| d.contains_key(restricted)) {
                        found.push(format!("{unit}: {restricted} of {order} shown"));
                    }
                }
                let text = String::from_utf8_lossy(&s.raw);
                for restricted in [
                    "qualifications_and_pay",
                    "working_hours",
                    "p_number",
                    "\"units\"",
                ] {
                    if text.contains(restricted) {
                        found.push(format!("{unit}: {restricted} of {order} shown"));
                    }
                }
            }
        }
        // Where each order ends for this unit: its view of the last version,
        // with the final undecided count for the responsible unit; or the
        // revocation; and the last log version.
        for plan in &stream.orders {
            let final_version = plan.versions.len();
            let f = &plan.versions[final_version - 1];
            let ended = last.get(&plan.id);
            if f.audience().contains(unit) {
                match ended {
                    Some(s)
                        if s.event() == "joborder.updated"
                            && s.version() == final_version as i64
                            && s.body["data"]["title"] == f.title.as_str() => {}
                    other => found.push(format!(
                        "{unit}: order {} ends at {:?}, not its view of version {final_version}",
                        plan.id,
                        other.map(|s| (s.event(), s.version()))
                    )),
                }
                if f.responsible == unit {
                    let undecided = plan.logs.last().map_or(0, |l| l.undecided);
                    if let Some(s) = ended {
                        if s.body["data"]["undecided_candidates"].as_u64() != Some(undecided as u64)
                        {
                            found.push(format!(
                                "{unit}: order {} ends with undecided_candidates {}, expected {undecided}",
                                plan.id, s.body["data"]["undecided_candidates"]
                            ));
                        }
                    }
                    let log = last_log.get(&plan.id);
                    match (plan.logs.last(), log) {
                        (None, None) => {}
                        (Some(l), Some(s))
                            if s.body["data"]["version"].as_u64()
                                == Some(plan.logs.len() as u64)
                                && s.body["data"]["total"].as_u64() == Some(l.total as u64) => {}
                        (_, other) => found.push(format!(
                            "{unit}: the log of {} ends at {:?}, expected version {}",
                            plan.id,
                            other.map(|s| &s.body["data"]["version"]),
                            plan.logs.len()
                        )),
                    }
                }
            } else if let Some(s) = ended {
                if s.event() != "joborder.revoked" {
                    found.push(format!(
                        "{unit}: order {} not revoked at the end ({} at {})",
                        plan.id,
                        s.event(),
                        s.version()
                    ));
                }
            }
        }
    }
    let missing: Vec<_> = expected.difference(&received).collect();
    if !missing.is_empty() {
        found.push(format!(
            "{} expected notifications never published, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }

    // Lifecycle events: each order created once (by event id), nothing else.
    let mut created: HashMap<Uuid, HashSet<&str>> = HashMap::new();
    for s in seen.get(EVENTS).into_iter().flatten() {
        if s.event() == "joborder.created" {
            created.entry(s.order()).or_default().insert(s.id());
        } else {
            found.push(format!(
                "an unexpected {} event about {}",
                s.event(),
                s.order()
            ));
        }
    }
    for plan in &stream.orders {
        let n = created.get(&plan.id).map_or(0, HashSet::len);
        if n != 1 {
            found.push(format!(
                "order {}: {n} distinct joborder.created events",
                plan.id
            ));
        }
    }
    eprintln!(
        "oracle (seed {}): {} orders, {} messages ({} distinct), {} notifications read ({} repeats), {} discrepancies",
        stream.seed,
        stream.orders.len(),
        stream.messages.len(),
        stream.distinct(),
        notifications,
        repeats,
        found.len()
    );
    found
}

/// Fails with the discrepancies, a few of each kind, and the seed.
pub fn assert_none(stream: &Stream, found: &[String]) {
    if found.is_empty() {
        return;
    }
    let mut text = String::new();
    for f in found.iter().take(40) {
        let _ = writeln!(text, "  {f}");
    }
    panic!(
        "seed {} (repeat with JOBSYNC_CHAOS_SEED={}): {} discrepancies:\n{text}",
        stream.seed,
        stream.seed,
        found.len()
    );
}
