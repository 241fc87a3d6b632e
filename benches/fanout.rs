//! Fan-out benchmark: how fast one `jobsync run` (the real binary) turns
//! applied snapshots into notifications that reach the units' queues, through
//! the transactional outbox and its relay. Two scenarios, each with its own
//! database, broker names and worker process:
//!
//! 1. Relay throughput: N new orders (default 10,000; set
//!    `JOBSYNC_BENCH_MESSAGES`) of jobcentre 15300 shared with 16700, so 2N
//!    notifications (one per unit) and N `joborder.created` events. Queues of
//!    the bench's own, bound `unit.jobcenter.15300.#`,
//!    `unit.jobcenter.16700.#` and `#` on the events exchange, count them.
//! 2. 94 jobcentres: M new orders (default 2,000; set
//!    `JOBSYNC_BENCH_FANOUT_MESSAGES`) of 15300, each shared (`national` or
//!    `selected`) with the main jobcentre of 94 other municipalities: one
//!    notification to 15300 and one `unit.shared.*` message with a `BCC`
//!    header of 94 routing keys per order. One queue bound `unit.jobcenter.#`
//!    counts them (the broker puts a message in a queue at most once) and
//!    three queues of single jobcentres check that each gets all M.
//!
//! A count of 0 skips its scenario. Extra worker flags go in
//! `JOBSYNC_BENCH_WORKER_ARGS`.
//!
//!     scripts/services && cargo bench --bench fanout
//!
//! It removes its databases, broker names and queues afterwards.

use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::StreamExt;
use jobsync::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::json;
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// The responsible jobcentre of every order (Brøndby).
const RESPONSIBLE: &str = "15300";
/// How long a scenario may take once its worker runs.
const TIMEOUT: Duration = Duration::from_secs(600);

/// A new order of [`RESPONSIBLE`] shared under `scope` with the jobcentres
/// `shared`.
fn snapshot(id: Uuid, n: usize, scope: &str, shared: &[String]) -> serde_json::Value {
    let units: Vec<serde_json::Value> = shared
        .iter()
        .map(|code| json!({"type": "jobcenter", "code": code}))
        .collect();
    json!({
        "job_order_id": id.to_string(),
        "version": 1,
        "request_id": format!("ANM-{n}"),
        "origin": "unit",
        "changed_by": {"kind": "unit", "unit": {"type": "jobcenter", "code": RESPONSIBLE}},
        "title": format!("Lagermedarbejder {n}"),
        "occupation": {"name": "Lagermedarbejder", "alias": null, "code": "932920"},
        "employer": {"cvr": "10150817", "p_number": "1003456789", "name": "Brøndby Lager ApS"},
        "contact": {"name": "Søren Østergård", "email": "soeren@brondbylager.dk", "phone": "43212345"},
        "responsible_unit": {"type": "jobcenter", "code": RESPONSIBLE},
        "coordinator": {"id": "c-17", "name": "Åse Nørgaard"},
        "coordinator_allowed": true,
        "descriptions": {
            "tasks": "Pluk og pak på nathold. ".repeat(20),
            "qualifications_and_pay": "Truckcertifikat. Løn efter overenskomst.",
            "working_hours": "37 timer, nat"
        },
        "continuous": false,
        "positions": 3,
        "expected_start": "2027-01-04",
        "mediation_deadline": "2026-12-18",
        "status": "open",
        "sharing": {"scope": scope, "units": units},
        "created_at": "2026-11-20T08:00:00Z",
        "updated_at": "2026-11-22T09:00:00Z"
    })
}

/// Which of the worker's exchanges a watched queue is bound to.
#[derive(Clone, Copy)]
enum Exchange {
    Notifications,
    Events,
}

/// What arrived on a watched queue; times in ns since the scenario's epoch.
struct Stats {
    count: AtomicU64,
    /// Deliveries routed as `unit.shared.*` (through their `BCC` header).
    shared: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

/// A queue of the bench's own (exclusive: it goes with the bench's
/// connection), bound with `pattern`, that should receive `expected`.
struct Watch {
    label: String,
    exchange: Exchange,
    pattern: String,
    expected: u64,
    stats: Arc<Stats>,
}

impl Watch {
    fn new(label: impl Into<String>, exchange: Exchange, pattern: &str, expected: u64) -> Watch {
        Watch {
            label: label.into(),
            exchange,
            pattern: pattern.to_owned(),
            expected,
            stats: Arc::new(Stats {
                count: AtomicU64::new(0),
                shared: AtomicU64::new(0),
                first_ns: AtomicU64::new(u64::MAX),
                last_ns: AtomicU64::new(0),
            }),
        }
    }

    fn count(&self) -> u64 {
        self.stats.count.load(Ordering::Relaxed)
    }

    fn shared(&self) -> u64 {
        self.stats.shared.load(Ordering::Relaxed)
    }

    /// First and last delivery, since the worker started.
    fn span(&self, worker_start: Duration) -> (Duration, Duration) {
        let at = |ns: u64| Duration::from_nanos(ns).saturating_sub(worker_start);
        (
            at(self.stats.first_ns.load(Ordering::Relaxed)),
            at(self.stats.last_ns.load(Ordering::Relaxed)),
        )
    }

    /// Deliveries per second from the first to the last.
    fn rate(&self, worker_start: Duration) -> f64 {
        let (first, last) = self.span(worker_start);
        self.count() as f64 / (last - first).as_secs_f64()
    }
}

/// What one scenario measured.
struct Outcome {
    /// When the worker started, since the scenario's epoch.
    worker_start: Duration,
    /// Since the worker started, when every snapshot was applied (polled).
    applied_at: Duration,
    /// From the first to the last commit of `processed_messages`.
    applied_span_s: f64,
    peak_kb: u64,
    status: ExitStatus,
    watches: Vec<Watch>,
}

impl Outcome {
    /// The last delivery on any of `watches`, since the worker started.
    fn last(&self, watches: &[&Watch]) -> Duration {
        watches
            .iter()
            .map(|w| w.span(self.worker_start).1)
            .max()
            .unwrap_or_default()
    }

    fn watch(&self, label: &str) -> &Watch {
        self.watches.iter().find(|w| w.label == label).unwrap()
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` builds and runs benches too; only
        // `cargo bench` passes --bench.
        println!("fanout: run with `cargo bench --bench fanout`");
        return;
    }
    let n = env_count("JOBSYNC_BENCH_MESSAGES", 10_000);
    let m = env_count("JOBSYNC_BENCH_FANOUT_MESSAGES", 2_000);
    let extra: Vec<String> = std::env::var("JOBSYNC_BENCH_WORKER_ARGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "worker flags: {}",
        if extra.is_empty() {
            "(defaults)".to_owned()
        } else {
            extra.join(" ")
        }
    );
    if n > 0 {
        relay_throughput(&rt, n, &extra);
    }
    if m > 0 {
        ninety_four_jobcentres(&rt, m, &extra);
    }
}

/// Scenario 1: one notification to each of two units and one event per order.
fn relay_throughput(rt: &tokio::runtime::Runtime, n: usize, extra: &[String]) {
    println!("\n== relay throughput: {n} orders of {RESPONSIBLE} shared with 16700 ==");
    let shared = vec!["16700".to_owned()];
    let watches = vec![
        Watch::new(
            "jobcenter:15300",
            Exchange::Notifications,
            "unit.jobcenter.15300.#",
            n as u64,
        ),
        Watch::new(
            "jobcenter:16700",
            Exchange::Notifications,
            "unit.jobcenter.16700.#",
            n as u64,
        ),
        Watch::new("events", Exchange::Events, "#", n as u64),
    ];
    let o = run(
        rt,
        n,
        |id, i| snapshot(id, i, "neighbours", &shared),
        watches,
        extra,
    );
    let units = [o.watch("jobcenter:15300"), o.watch("jobcenter:16700")];
    let events = o.watch("events");
    let first = units
        .iter()
        .map(|w| w.span(o.worker_start).0)
        .min()
        .unwrap();
    let last = o.last(&units);
    let notifications: u64 = units.iter().map(|w| w.count()).sum();
    let (ev_first, ev_last) = events.span(o.worker_start);
    println!(
        "  applied (first to last commit):      {:.0} msg/s over {:.2} s",
        n as f64 / o.applied_span_s,
        o.applied_span_s
    );
    println!(
        "  all applied, from worker start:      {:.2} s ({:.0} msg/s)",
        o.applied_at.as_secs_f64(),
        n as f64 / o.applied_at.as_secs_f64()
    );
    println!(
        "  notifications delivered (first to last): {:.0} msg/s, {notifications} over {:.2} s (first at {:.2} s)",
        notifications as f64 / (last - first).as_secs_f64(),
        (last - first).as_secs_f64(),
        first.as_secs_f64()
    );
    println!(
        "  events delivered (first to last):    {:.0} msg/s, {} over {:.2} s",
        events.rate(o.worker_start),
        events.count(),
        (ev_last - ev_first).as_secs_f64()
    );
    println!(
        "  worker start to last notification:   {:.2} s ({:.2} s after the last order was applied)",
        last.as_secs_f64(),
        last.saturating_sub(o.applied_at).as_secs_f64()
    );
    print_tail(&o);
}

/// Scenario 2: every order shared with 94 jobcentres.
fn ninety_four_jobcentres(rt: &tokio::runtime::Runtime, m: usize, extra: &[String]) {
    let codes: Vec<String> = jobsync::domain::municipality::codes()
        .into_iter()
        .filter(|&c| c != 153)
        .take(94)
        .map(|c| format!("{c}00"))
        .collect();
    assert_eq!(codes.len(), 94, "reference/municipalities.csv has 98 codes");
    let picked = [&codes[0], &codes[47], &codes[93]];
    println!(
        "\n== 94 jobcentres: {m} orders of {RESPONSIBLE} shared with {}..{} (watching {}) ==",
        codes[0],
        codes[93],
        picked
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The responsible unit's own notification and the one BCC message.
    let mut watches = vec![Watch::new(
        "unit.jobcenter.#",
        Exchange::Notifications,
        "unit.jobcenter.#",
        2 * m as u64,
    )];
    for code in picked {
        watches.push(Watch::new(
            format!("jobcenter:{code}"),
            Exchange::Notifications,
            &format!("unit.jobcenter.{code}.#"),
            m as u64,
        ));
    }
    let o = run(
        rt,
        m,
        |id, i| {
            let scope = if i % 2 == 0 { "national" } else { "selected" };
            snapshot(id, i, scope, &codes)
        },
        watches,
        extra,
    );
    let all = o.watch("unit.jobcenter.#");
    let specific: Vec<&Watch> = o.watches[1..].iter().collect();
    let last = o.last(&specific);
    let (all_first, all_last) = all.span(o.worker_start);
    println!(
        "  applied (first to last commit):      {:.0} msg/s over {:.2} s",
        m as f64 / o.applied_span_s,
        o.applied_span_s
    );
    println!(
        "  all applied, from worker start:      {:.2} s ({:.0} msg/s)",
        o.applied_at.as_secs_f64(),
        m as f64 / o.applied_at.as_secs_f64()
    );
    println!(
        "  unit.jobcenter.# queue:               {} messages ({} BCC to 94, {} to {RESPONSIBLE}), {:.0} msg/s over {:.2} s (first at {:.2} s)",
        all.count(),
        all.shared(),
        all.count() - all.shared(),
        all.rate(o.worker_start),
        (all_last - all_first).as_secs_f64(),
        all_first.as_secs_f64()
    );
    for w in &specific {
        let (first, last) = w.span(o.worker_start);
        println!(
            "  {:<36} {} of {m}, first at {:.2} s, last at {:.2} s",
            format!("{}:", w.label),
            w.count(),
            first.as_secs_f64(),
            last.as_secs_f64()
        );
    }
    println!(
        "  orders applied+notified:             {:.0} orders/s ({m} in {:.2} s from worker start)",
        m as f64 / last.as_secs_f64(),
        last.as_secs_f64()
    );
    println!(
        "  unit notifications equivalent:       {:.0} /s ({} x 94 in {:.2} s)",
        (m * 94) as f64 / last.as_secs_f64(),
        m,
        last.as_secs_f64()
    );
    print_tail(&o);
}

fn print_tail(o: &Outcome) {
    println!(
        "  worker peak resident memory:         {:.1} MB",
        o.peak_kb as f64 / 1024.0
    );
    println!("  worker exit after SIGTERM:           {}", o.status);
    for w in &o.watches {
        if w.count() != w.expected {
            println!(
                "  NOTE: {} received {} messages, {} expected",
                w.label,
                w.count(),
                w.expected
            );
        }
    }
}

/// Pre-loads `n` snapshots made by `data`, binds `watches`, starts one
/// `jobsync run`, and waits until every snapshot is applied and every watch
/// has what it expects; then stops the worker and removes what it made.
fn run(
    rt: &tokio::runtime::Runtime,
    n: usize,
    data: impl Fn(Uuid, usize) -> serde_json::Value,
    watches: Vec<Watch>,
    extra: &[String],
) -> Outcome {
    let id = Uuid::new_v4().simple().to_string();
    let prefix = format!("bench{}", &id[..8]);
    let db_url = format!("{PG_SERVER}/jobsync_bench_{}", &id[..12]);
    let mut args: Vec<String> = vec!["--database-url".into(), db_url.clone()];
    args.extend(["--http-addr".into(), "127.0.0.1:0".into()]);
    let mut settings = jobsync::config::parse_cli(["jobsync", "run"])
        .unwrap()
        .settings;
    settings.topology = settings.topology.with_prefix(&prefix);
    args.extend(settings.topology.as_args());
    let topology = settings.topology.clone();
    let epoch = Instant::now();

    // Pre-load the queue, bind the watches and start consuming them.
    let (amqp, publish_rate) = rt.block_on(async {
        let conn = jobsync::amqp::connect(AMQP_URL, "jobsync fanout bench")
            .await
            .expect("RabbitMQ answers (scripts/services)");
        let ch = conn.create_channel().await.unwrap();
        jobsync::amqp::topology::declare(&ch, &topology, settings.amqp.delivery_limit)
            .await
            .unwrap();
        let publisher = Publisher::open(&conn).await.unwrap();
        let messages: Vec<Outgoing> = (0..n)
            .map(|i| {
                let order = Uuid::new_v4();
                let message_id = Uuid::new_v4().to_string();
                let body = json!({
                    "specversion": "1.0", "id": message_id, "source": "/dfdg",
                    "type": "dk.dfdg.joborder.snapshot", "subject": order.to_string(),
                    "datacontenttype": "application/json", "data": data(order, i)
                });
                Outgoing {
                    exchange: topology.hub_exchange.clone(),
                    routing_key: "joborder.snapshot".into(),
                    properties: cloudevent_properties(&message_id, FieldTable::default()),
                    body: body.to_string().into_bytes(),
                    mandatory: true,
                }
            })
            .collect();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        println!(
            "  pre-loading {n} snapshots of {} bytes on average",
            bytes / n
        );
        let started = Instant::now();
        for chunk in messages.chunks(1000) {
            publisher.publish_all(chunk).await.unwrap();
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        for (i, w) in watches.iter().enumerate() {
            let ch = conn.create_channel().await.unwrap();
            let queue = format!("{prefix}.bench.watch{i}");
            ch.queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
            let exchange = match w.exchange {
                Exchange::Notifications => &topology.notifications_exchange,
                Exchange::Events => &topology.events_exchange,
            };
            ch.queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                w.pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
            let mut deliveries = ch
                .basic_consume(
                    queue.as_str().into(),
                    "jobsync-fanout-bench".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let stats = w.stats.clone();
            tokio::spawn(async move {
                // The channel lives as long as its consumer.
                let _ch = ch;
                while let Some(Ok(delivery)) = deliveries.next().await {
                    let t = epoch.elapsed().as_nanos() as u64;
                    stats.first_ns.fetch_min(t, Ordering::Relaxed);
                    stats.last_ns.fetch_max(t, Ordering::Relaxed);
                    if delivery.routing_key.as_str().starts_with("unit.shared.") {
                        stats.shared.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        (conn, rate)
    });
    println!("  broker: persistent publishes with pipelined confirms: {publish_rate:.0} msg/s");

    // One `jobsync run`, as an operator would start it.
    let log_path = std::env::temp_dir().join(format!("{prefix}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let worker_start = epoch.elapsed();
    let started = Instant::now();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_jobsync"))
        .args(&args)
        .args(extra)
        .arg("run")
        .env("JOBSYNC_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the jobsync binary runs");
    let mut peak_kb = 0u64;
    let mut db: Option<PgConnection> = None;
    let mut applied_at: Option<Duration> = None;
    let mut timed_out = false;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        peak_kb = peak_kb.max(vm_hwm_kb(worker.id()).unwrap_or(0));
        if applied_at.is_none() {
            if db.is_none() {
                db = PgConnection::establish(&db_url).ok();
            }
            if let Some(conn) = db.as_mut() {
                use jobsync::store::schema::processed_messages::dsl::*;
                let count: i64 = processed_messages.count().get_result(conn).unwrap_or(0);
                if count as usize >= n {
                    applied_at = Some(started.elapsed());
                }
            }
        }
        if applied_at.is_some() && watches.iter().all(|w| w.count() >= w.expected) {
            break;
        }
        if started.elapsed() > TIMEOUT {
            timed_out = true;
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let status = worker.wait().unwrap();
    // Anything the relay still published on its way out.
    std::thread::sleep(Duration::from_millis(300));
    if timed_out {
        for w in &watches {
            println!(
                "  {}: {} of {} after {} s",
                w.label,
                w.count(),
                w.expected,
                TIMEOUT.as_secs()
            );
        }
    }

    #[derive(QueryableByName)]
    struct Span {
        #[diesel(sql_type = diesel::sql_types::Double)]
        seconds: f64,
    }
    let applied_span_s = db
        .as_mut()
        .and_then(|conn| {
            diesel::sql_query(
                "SELECT extract(epoch FROM max(processed_at) - min(processed_at))::float8 AS seconds FROM processed_messages",
            )
            .get_result::<Span>(conn)
            .ok()
        })
        .map_or(f64::NAN, |s| s.seconds);
    println!("  worker log: {}", log_path.display());

    // Clean up: the watched queues are exclusive and go with the connection.
    drop(db);
    rt.block_on(async {
        let ch = amqp.create_channel().await.unwrap();
        let _ = jobsync::amqp::topology::delete(&ch, &topology).await;
        let _ = amqp.close(200, "done".into()).await;
    });
    let mut admin = PgConnection::establish(&format!("{PG_SERVER}/postgres")).unwrap();
    let name = db_url.rsplit('/').next().unwrap();
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin);
    assert!(
        !timed_out,
        "the scenario did not finish in {} s",
        TIMEOUT.as_secs()
    );
    Outcome {
        worker_start,
        applied_at: applied_at.unwrap_or_default(),
        applied_span_s,
        peak_kb,
        status,
        watches,
    }
}

/// Peak resident set size of process `pid`, in kB (Linux).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
