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

mod common;

use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{snapshot, BenchEnv, RESPONSIBLE};
use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use uuid::Uuid;

/// How long a scenario may take once its worker runs.
const TIMEOUT: Duration = Duration::from_secs(600);

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

fn main() {
    if !common::invoked_as_bench("fanout") {
        return;
    }
    let n = common::env_count("JOBSYNC_BENCH_MESSAGES", 10_000);
    let m = common::env_count("JOBSYNC_BENCH_FANOUT_MESSAGES", 2_000);
    let extra = common::worker_args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("worker flags: {}", common::describe_flags(&extra));
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
    print_applied(&o, n);
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
    let codes = common::ninety_four_jobcentres();
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
    print_applied(&o, m);
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

/// When the `n` orders were applied.
fn print_applied(o: &Outcome, n: usize) {
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
    let mut env = BenchEnv::new(extra);
    let epoch = Instant::now();

    // Pre-load the queue, bind the watches and start consuming them.
    let (amqp, publish_rate) = rt.block_on(async {
        let conn = env.connect("jobsync fanout bench").await;
        let rate = env.preload(&conn, n, data, "  ").await;
        let topology = env.topology();
        for (i, w) in watches.iter().enumerate() {
            let ch = conn.create_channel().await.unwrap();
            let queue = format!("{}.bench.watch{i}", env.prefix);
            let exchange = match w.exchange {
                Exchange::Notifications => &topology.notifications_exchange,
                Exchange::Events => &topology.events_exchange,
            };
            common::bind_queue(&ch, &queue, exchange, &w.pattern).await;
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
    let worker_start = epoch.elapsed();
    let mut worker = env.start_worker();
    let waited = worker.wait_applied(&mut env, n, Duration::from_millis(50), TIMEOUT, || {
        watches.iter().all(|w| w.count() >= w.expected)
    });
    let status = worker.stop();
    // Anything the relay still published on its way out.
    std::thread::sleep(Duration::from_millis(300));
    if waited.timed_out {
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
    let applied_span_s = env.commit_span_s().unwrap_or(f64::NAN);
    println!("  worker log: {}", env.log_path().display());

    // Clean up: the watched queues are exclusive and go with the connection;
    // dropping `env` removes the database and broker names.
    rt.block_on(async {
        let _ = amqp.close(200, "done".into()).await;
    });
    drop(env);
    assert!(
        !waited.timed_out,
        "the scenario did not finish in {} s",
        TIMEOUT.as_secs()
    );
    Outcome {
        worker_start,
        applied_at: waited.applied_at.unwrap_or_default(),
        applied_span_s,
        peak_kb: worker.peak_kb(),
        status,
        watches,
    }
}
