//! The throughput benchmark (issue 7): in one run, on this machine, the
//! broker's own ceiling and what one `jobsync run` (the real binary, default
//! settings unless `JOBSYNC_BENCH_WORKER_ARGS` says otherwise) makes of it.
//!
//! 1. **Broker ceiling**: N persistent messages of a snapshot's size
//!    published to a quorum queue under pipelined confirms (1,000 in flight),
//!    then consumed with the worker's prefetch and `multiple` acks per batch.
//! 2. **Drain**: N new job order snapshots (default 20,000;
//!    `JOBSYNC_BENCH_MESSAGES`) pre-loaded, each giving one notification (to
//!    the responsible jobcentre) and one `joborder.created` event; the worker
//!    starts and the rate is taken from the first to the last notification
//!    arriving on the unit's queue, beside the ceiling.
//! 3. **Latency**: first at light load, new orders published at a steady
//!    50 per second (`JOBSYNC_BENCH_LIGHT_RATE`) for 20 seconds
//!    (`JOBSYNC_BENCH_LIGHT_SECONDS`), then at a steady R per second (default
//!    1,000; `JOBSYNC_BENCH_RATE`) for S seconds (default 20;
//!    `JOBSYNC_BENCH_RATE_SECONDS`); for each order, the time from its
//!    publish to its notification arriving on the unit's queue, as
//!    percentiles.
//! 4. **94 jobcentres**: M orders (default 2,000;
//!    `JOBSYNC_BENCH_FANOUT_MESSAGES`) shared with 94 jobcentres are stored,
//!    then a new version of each is published at once; the rate is updates
//!    from the first publish until every update's shared view reached three
//!    watched jobcentres' queues.
//! 5. **Baseline** (`JOBSYNC_BENCH_BASELINE=0` skips it): 2. and both runs
//!    of 3. again with a plain per-message worker in place of jobsync (one
//!    transaction per message, the same tables, publish after commit; see
//!    `common/baseline.rs` for what it leaves out), run in the bench process
//!    in an environment of its own.
//! 6. **1,000,000 orders stored** (`JOBSYNC_BENCH_STORED`): the drain of 2.
//!    again, in a database that already holds that many orders (with their
//!    sharing rows and inbox rows), against the rate of 2.
//!
//! 7. **Large messages** (`JOBSYNC_BENCH_LARGE`, default 3,000): the drain
//!    of 2. with snapshots padded by a field jobsync ignores to about 249 KB
//!    each (valid: the limit is 256 KiB), with a worker of its own, for its
//!    peak resident memory.
//!
//! Last, jobsync and the baseline side by side: p50 and p99 at light load and
//! at R per second, and the drain rate, with the ratio of jobsync's figure to
//! the baseline's.
//!
//! Peak resident memory is the worker's high-water mark (VmHWM) over 2–4,
//! and over 6. CPU per message is the worker's and the whole machine's
//! during a drain. A count of 0 skips its part.
//!
//!     scripts/services && cargo bench --bench throughput
//!
//! Each part runs in a RabbitMQ virtual host and a database of its own,
//! deleted afterwards.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::baseline::Baseline;
use common::{hub_snapshot, snapshot, BenchEnv, Worker, RESPONSIBLE};
use diesel::prelude::*;
use futures_util::StreamExt;
use jobsync::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::Value;
use tokio::runtime::Runtime;
use uuid::Uuid;

/// How long any wait of the bench may take.
const TIMEOUT: Duration = Duration::from_secs(600);

fn main() {
    if !common::invoked_as_bench("throughput") {
        return;
    }
    let n = common::env_count("JOBSYNC_BENCH_MESSAGES", 20_000);
    let rate = common::env_count("JOBSYNC_BENCH_RATE", 1_000);
    let seconds = common::env_count("JOBSYNC_BENCH_RATE_SECONDS", 20);
    let fanout = common::env_count("JOBSYNC_BENCH_FANOUT_MESSAGES", 2_000);
    let stored = common::env_count("JOBSYNC_BENCH_STORED", 1_000_000);
    let large = common::env_count("JOBSYNC_BENCH_LARGE", 3_000);
    let light_rate = common::env_count("JOBSYNC_BENCH_LIGHT_RATE", 50);
    let light_seconds = common::env_count("JOBSYNC_BENCH_LIGHT_SECONDS", 20);
    let with_baseline = std::env::var("JOBSYNC_BENCH_BASELINE")
        .ok()
        .is_none_or(|v| v.trim() != "0");
    let light = (light_rate > 0 && light_seconds > 0).then_some((light_rate, light_seconds));
    let loaded = (rate > 0 && seconds > 0).then_some((rate, seconds));
    let extra = common::worker_args();
    let rt = Runtime::new().unwrap();
    print_machine();
    println!("worker flags: {}", common::describe_flags(&extra));

    let env = BenchEnv::with_vhost(&extra);
    let body_size = new_order(env.topology(), 0).1.body.len();
    let ceiling = (n > 0).then(|| {
        let c = rt.block_on(broker_ceiling(&env, n, body_size));
        println!("\n== broker ceiling: {n} persistent messages of {body_size} bytes, quorum queue ==");
        println!("  publish, confirms pipelined (1,000 in flight): {:>7.0} msg/s", c.publish);
        println!("  consume, prefetch {}, multiple acks:         {:>7.0} msg/s", env.settings.amqp.prefetch, c.consume);
        println!(
            "  jobsync's broker work per snapshot: 1 consume + 2 publishes (notification, event)\n  \
             ceiling for it: {:.0} msg/s",
            c.per_snapshot()
        );
        if rate > 0 && seconds > 0 {
            let l = rt.block_on(broker_latency(&env, rate, seconds, body_size));
            println!("  publish to delivery at {rate} msg/s for {seconds} s: {l}");
        }
        c
    });

    // One worker for the drain, the latency runs and the 94 jobcentres.
    let (conn, responsible) = preloaded(&rt, &env, n);
    let t = env.topology().clone();
    let busy_before = common::machine_busy_s();
    let mut worker = env.start_worker();
    let mut drained = None;
    let mut figures = Figures::default();
    if n > 0 {
        let d = drain(&responsible, &worker, n, busy_before, &env);
        d.print("drain", n, ceiling.as_ref());
        figures.drain = Some(d.rate);
        drained = Some(d);
    }
    env.wait_ready(Duration::from_secs(60));
    if let Some((rate, seconds)) = light {
        figures.light = latency(&rt, &conn, &t, &responsible, rate, seconds, &LIGHT);
    }
    if let Some((rate, seconds)) = loaded {
        figures.loaded = latency(&rt, &conn, &t, &responsible, rate, seconds, &LOADED);
        println!(
            "  worker peak resident memory so far: {:.1} MB",
            mb(worker.high_water_kb())
        );
    }
    if fanout > 0 {
        ninety_four(&rt, &conn, &t, &responsible, fanout, ceiling.as_ref());
        println!(
            "  worker peak resident memory so far: {:.1} MB",
            mb(worker.high_water_kb())
        );
    }
    let peak = worker.high_water_kb();
    let status = worker.stop();
    println!("\nworker peak resident memory (drain, latency, 94 jobcentres): {:.1} MB; exit after SIGTERM: {status}", mb(peak));
    drop(rt.block_on(conn.close(200, "done".into())));
    drop(env);

    let baseline = with_baseline.then(|| run_baseline(&rt, n, light, loaded));

    if stored > 0 && n > 0 {
        let base = drained.as_ref().map(|d| d.rate);
        stored_drain(&rt, stored, n, &extra, base, ceiling.as_ref());
    }

    if large > 0 {
        large_drain(&rt, large, &extra);
    }

    if let Some(baseline) = baseline {
        side_by_side(&figures, &baseline, light, loaded);
    }
}

/// Prints what the figures were taken on.
fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let pg = PgConnection::establish(&format!("{}/postgres", common::PG_SERVER))
        .ok()
        .and_then(|mut c| {
            #[derive(QueryableByName)]
            struct V {
                #[diesel(sql_type = diesel::sql_types::Text)]
                server_version: String,
            }
            diesel::sql_query("SHOW server_version")
                .get_result::<V>(&mut c)
                .ok()
        })
        .map(|v| v.server_version)
        .unwrap_or_default();
    println!("machine: {cores} cores ({model}); PostgreSQL {pg}; RabbitMQ on 127.0.0.1");
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A new order of [`RESPONSIBLE`], shared with nobody: one notification.
fn new_order(topology: &jobsync::config::Topology, i: usize) -> (Uuid, Outgoing) {
    let id = Uuid::new_v4();
    let data = snapshot(id, i, "internal", &[] as &[&str]);
    (id, hub_snapshot(topology, data))
}

/// The broker's own figures.
struct Ceiling {
    publish: f64,
    consume: f64,
}

impl Ceiling {
    /// What the broker can do of jobsync's work per snapshot (one consume,
    /// two persistent publishes), each at the rate measured alone.
    fn per_snapshot(&self) -> f64 {
        1.0 / (1.0 / self.consume + 2.0 / self.publish)
    }
}

/// A channel, with durable quorum queue `queue` declared on it (as the
/// worker's consumed queues are).
async fn quorum_queue(conn: &lapin::Connection, queue: &str) -> lapin::Channel {
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), durable, args).await.unwrap();
    ch
}

/// A consumer of `queue` with `prefetch` unacknowledged deliveries.
async fn consume(ch: &lapin::Channel, queue: &str, prefetch: u16) -> lapin::Consumer {
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    ch.basic_consume(
        queue.into(),
        "bench".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap()
}

async fn broker_ceiling(env: &BenchEnv, n: usize, body_size: usize) -> Ceiling {
    let conn = env.connect("jobsync bench: ceiling").await;
    let queue = "bench.ceiling";
    let ch = quorum_queue(&conn, queue).await;
    let body = vec![b'x'; body_size];
    let messages: Vec<Outgoing> = (0..n)
        .map(|i| Outgoing {
            exchange: String::new(),
            routing_key: queue.into(),
            properties: cloudevent_properties(&i.to_string(), FieldTable::default()),
            body: body.clone(),
            mandatory: false,
        })
        .collect();
    let publisher = Publisher::open(&conn).await.unwrap();
    let started = Instant::now();
    common::publish_confirmed(&publisher, &messages).await;
    let publish = n as f64 / started.elapsed().as_secs_f64();

    let mut consumer = consume(&ch, queue, env.settings.amqp.prefetch).await;
    let batch = env.settings.batching.size as usize;
    let started = Instant::now();
    for got in 1..=n {
        let delivery = consumer.next().await.unwrap().unwrap();
        if got % batch == 0 || got == n {
            delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
    }
    let consume = n as f64 / started.elapsed().as_secs_f64();
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = conn.close(200, "measured".into()).await;
    Ceiling { publish, consume }
}

/// Publishes `messages` on a channel of their own, under pipelined confirms.
async fn publish_all(conn: &lapin::Connection, messages: Vec<Outgoing>) {
    let publisher = Publisher::open(conn).await.unwrap();
    common::publish_confirmed(&publisher, &messages).await;
}

/// A connection with the topology of `env` declared, a watched queue of the
/// responsible jobcentre's notifications, and `n` new orders pre-loaded.
fn preloaded(rt: &Runtime, env: &BenchEnv, n: usize) -> (lapin::Connection, Arrivals) {
    let conn = rt.block_on(env.connect("jobsync bench"));
    let t = env.topology();
    let responsible = rt.block_on(watch(
        &conn,
        "bench.responsible",
        &t.notifications_exchange,
        &format!("unit.jobcenter.{RESPONSIBLE}.#"),
    ));
    let preload: Vec<Outgoing> = (0..n).map(|i| new_order(t, i).1).collect();
    rt.block_on(publish_all(&conn, preload));
    (conn, responsible)
}

/// When each message arrived on a queue of the bench's own, and the job
/// order it is about.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Arrival>>>);

/// When a message arrived, and the job order it is about.
type Arrival = (Instant, Option<Uuid>);

impl Arrivals {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Arrivals `from..to` (indices in arrival order).
    fn slice(&self, from: usize, to: usize) -> Vec<Arrival> {
        let all = self.0.lock().unwrap();
        all[from.min(all.len())..to.min(all.len())].to_vec()
    }

    /// Waits until `n` messages arrived in all; false after [`TIMEOUT`].
    fn wait_for(&self, n: usize) -> bool {
        let started = Instant::now();
        while self.count() < n {
            if started.elapsed() > TIMEOUT {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// An exclusive queue bound to `exchange` with `pattern`, consumed without
/// acknowledgements into [`Arrivals`].
async fn watch(conn: &lapin::Connection, queue: &str, exchange: &str, pattern: &str) -> Arrivals {
    let ch = conn.create_channel().await.unwrap();
    common::bind_queue(&ch, queue, exchange, pattern).await;
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let arrivals = Arrivals::default();
    let into = arrivals.clone();
    tokio::spawn(async move {
        let _channel = ch;
        while let Some(Ok(delivery)) = consumer.next().await {
            let at = Instant::now();
            let subject = subject_of(&delivery.data);
            into.0.lock().unwrap().push((at, subject));
        }
    });
    arrivals
}

/// The `subject` (job order id) of a notification, found in its compact
/// JSON without parsing all of it.
fn subject_of(body: &[u8]) -> Option<Uuid> {
    let key = b"\"subject\":\"";
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    std::str::from_utf8(body.get(at..at + 36)?)
        .ok()?
        .parse()
        .ok()
}

/// What a drain measured.
struct Drained {
    /// Notifications per second, first to last arrival.
    rate: f64,
    span_s: f64,
    /// From the worker's start to the last notification.
    wall_s: f64,
    worker_cpu_us: f64,
    machine_cpu_us: f64,
    peak_kb: u64,
}

impl Drained {
    fn print(&self, what: &str, n: usize, ceiling: Option<&Ceiling>) {
        println!("\n== {what}: {n} new orders, one notification and one event each ==");
        println!(
            "  applied, acknowledged and notified: {:.0} msg/s (first to last notification, {:.2} s)",
            self.rate, self.span_s
        );
        println!(
            "  from the worker's start:            {:.0} msg/s ({:.2} s, start-up included)",
            n as f64 / self.wall_s,
            self.wall_s
        );
        if let Some(c) = ceiling {
            println!(
                "  ratio to the broker's ceiling for jobsync's traffic ({:.0} msg/s): {:.2}",
                c.per_snapshot(),
                self.rate / c.per_snapshot()
            );
        }
        println!(
            "  CPU per message: worker {:.0} µs, whole machine {:.0} µs",
            self.worker_cpu_us, self.machine_cpu_us
        );
        println!("  worker peak resident memory: {:.1} MB", mb(self.peak_kb));
    }
}

/// Waits for the notifications of `n` pre-loaded orders.
fn drain(
    arrivals: &Arrivals,
    worker: &Worker,
    n: usize,
    busy_before: f64,
    env: &BenchEnv,
) -> Drained {
    let started = Instant::now() - worker.elapsed();
    assert!(
        arrivals.wait_for(n),
        "the drain did not finish in {TIMEOUT:?}; see {}",
        env.log_path().display()
    );
    let cpu = worker.cpu_s();
    let busy = common::machine_busy_s() - busy_before;
    let got = arrivals.slice(0, n);
    let (first, last) = (got[0].0, got[n - 1].0);
    let span_s = (last - first).as_secs_f64();
    Drained {
        rate: (n - 1) as f64 / span_s,
        span_s,
        wall_s: (last - started).as_secs_f64(),
        worker_cpu_us: cpu * 1e6 / n as f64,
        machine_cpu_us: busy * 1e6 / n as f64,
        peak_kb: worker.high_water_kb(),
    }
}

/// How a latency run is printed: its heading, and the label of its
/// percentiles. Only jobsync's run at the full rate prints "publish to
/// notification" (which other tooling looks for).
struct Phase {
    heading: &'static str,
    label: &'static str,
}

/// jobsync at the full rate.
const LOADED: Phase = Phase {
    heading: "latency",
    label: "publish to notification",
};
/// jobsync at light load.
const LIGHT: Phase = Phase {
    heading: "light load",
    label: "from publish to the unit's queue",
};
const BASELINE_LIGHT: Phase = Phase {
    heading: "baseline, light load",
    label: "baseline, from publish to the unit's queue",
};
const BASELINE_LOADED: Phase = Phase {
    heading: "baseline, latency",
    label: "baseline, from publish to the unit's queue",
};

/// Publishes new orders at a steady `rate` for `seconds`, prints the latency
/// from each publish to its notification as `phase` says and returns its
/// p50 and p99.
fn latency(
    rt: &Runtime,
    conn: &lapin::Connection,
    t: &jobsync::config::Topology,
    arrivals: &Arrivals,
    rate: usize,
    seconds: usize,
    phase: &Phase,
) -> Option<Latency> {
    let total = rate * seconds;
    println!(
        "\n== {}: {total} new orders at {rate} msg/s for {seconds} s ==",
        phase.heading
    );
    let before = arrivals.count();
    // Ticks of 10 ms (longer below 100 msg/s), each publishing its share;
    // confirms are awaited in tasks of their own, so that a slow confirm
    // never delays a tick.
    let per_tick = (rate / 100).max(1);
    let ticks = total.div_ceil(per_tick);
    let period = Duration::from_secs_f64(per_tick as f64 / rate as f64);
    let published: Vec<(Uuid, Instant)> = rt.block_on(async {
        let publisher = Publisher::open(conn).await.unwrap();
        let mut interval = tokio::time::interval(period);
        let mut published = Vec::with_capacity(total);
        let mut confirms = Vec::new();
        let mut i = 0;
        for _ in 0..ticks {
            interval.tick().await;
            let chunk: Vec<(Uuid, Outgoing)> = (i..(i + per_tick).min(total))
                .map(|k| new_order(t, k))
                .collect();
            i += chunk.len();
            let at = Instant::now();
            published.extend(chunk.iter().map(|(id, _)| (*id, at)));
            let messages: Vec<Outgoing> = chunk.into_iter().map(|(_, m)| m).collect();
            let publisher = publisher.clone();
            confirms.push(tokio::spawn(async move {
                publisher.publish_all(&messages).await.unwrap();
            }));
        }
        for c in confirms {
            c.await.unwrap();
        }
        published
    });
    let publish_s = published
        .last()
        .map_or(0.0, |(_, at)| (*at - published[0].1).as_secs_f64());
    assert!(
        arrivals.wait_for(before + total),
        "not every notification arrived in {TIMEOUT:?}"
    );
    let arrived: HashMap<Uuid, Instant> = arrivals
        .slice(before, before + total)
        .into_iter()
        .filter_map(|(at, id)| Some((id?, at)))
        .collect();
    let mut ms: Vec<f64> = published
        .iter()
        .filter_map(|(id, at)| Some((*arrived.get(id)? - *at).as_secs_f64() * 1e3))
        .collect();
    println!(
        "  published at {:.0} msg/s; {} of {total} notifications matched",
        total as f64 / publish_s.max(1e-9),
        ms.len()
    );
    println!("  {}: {}", phase.label, percentiles(&mut ms));
    (!ms.is_empty()).then(|| Latency {
        p50: quantile(&ms, 0.50),
        p99: quantile(&ms, 0.99),
    })
}

/// Quantile `p` of `sorted` (nearest rank).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// p50, p90, p99, p99.9 and the maximum of `ms` (sorted here), as printed.
fn percentiles(ms: &mut [f64]) -> String {
    if ms.is_empty() {
        return "nothing measured".to_owned();
    }
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| quantile(ms, p);
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        ms[ms.len() - 1]
    )
}

/// The broker alone at a steady `rate` for `seconds`: messages of
/// `body_size` bytes published (confirms awaited per tick, in tasks of
/// their own) to a quorum queue and consumed with `multiple` acks; the time
/// from each publish to its delivery.
async fn broker_latency(env: &BenchEnv, rate: usize, seconds: usize, body_size: usize) -> String {
    let conn = env.connect("jobsync bench: broker latency").await;
    let queue = "bench.latency";
    let ch = quorum_queue(&conn, queue).await;
    let mut consumer = consume(&ch, queue, env.settings.amqp.prefetch).await;
    let total = rate * seconds;
    let received = tokio::spawn(async move {
        let mut at: Vec<(usize, Instant)> = Vec::with_capacity(total);
        while at.len() < total {
            let delivery = consumer.next().await.unwrap().unwrap();
            let i: usize = delivery
                .properties
                .message_id()
                .as_ref()
                .and_then(|id| id.as_str().parse().ok())
                .unwrap();
            at.push((i, Instant::now()));
            delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
        at
    });
    let publisher = Publisher::open(&conn).await.unwrap();
    let per_tick = (rate / 100).max(1);
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let mut sent = vec![Instant::now(); total];
    let mut confirms = Vec::new();
    let body = vec![b'x'; body_size];
    let mut i = 0;
    while i < total {
        interval.tick().await;
        let to = (i + per_tick).min(total);
        let messages: Vec<Outgoing> = (i..to)
            .map(|k| Outgoing {
                exchange: String::new(),
                routing_key: queue.into(),
                properties: cloudevent_properties(&k.to_string(), FieldTable::default()),
                body: body.clone(),
                mandatory: false,
            })
            .collect();
        let now = Instant::now();
        sent[i..to].fill(now);
        i = to;
        let publisher = publisher.clone();
        confirms.push(tokio::spawn(async move {
            publisher.publish_all(&messages).await.unwrap();
        }));
    }
    for c in confirms {
        c.await.unwrap();
    }
    let mut ms: Vec<f64> = received
        .await
        .unwrap()
        .into_iter()
        .map(|(i, at)| (at - sent[i]).as_secs_f64() * 1e3)
        .collect();
    ch.queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = conn.close(200, "measured".into()).await;
    percentiles(&mut ms)
}

/// 94 jobcentres: stores `m` orders shared with them, then publishes a new
/// version of each at once and measures until three watched jobcentres got
/// every update.
fn ninety_four(
    rt: &Runtime,
    conn: &lapin::Connection,
    t: &jobsync::config::Topology,
    responsible: &Arrivals,
    m: usize,
    ceiling: Option<&Ceiling>,
) {
    let codes = common::ninety_four_jobcentres();
    let picked = [&codes[0], &codes[47], &codes[93]];
    println!(
        "\n== 94 jobcentres: {m} updates of orders shared with {}..{} (watching {}, {}, {}) ==",
        codes[0], codes[93], picked[0], picked[1], picked[2]
    );
    let watched: Vec<Arrivals> = picked
        .iter()
        .map(|code| {
            rt.block_on(watch(
                conn,
                &format!("bench.jobcenter.{code}"),
                &t.notifications_exchange,
                &format!("unit.jobcenter.{code}.#"),
            ))
        })
        .collect();
    let versions = |version: i64| -> Vec<Outgoing> {
        (0..m)
            .map(|i| {
                let id = order_id(i);
                let mut data = snapshot(id, i, "national", &codes);
                if version > 1 {
                    data["version"] = Value::from(version);
                    data["title"] = Value::from(format!("Lagermedarbejder {i}, version {version}"));
                    data["updated_at"] = Value::from("2026-11-22T10:00:00Z");
                }
                hub_snapshot(t, data)
            })
            .collect()
    };
    let before = responsible.count();
    rt.block_on(publish_all(conn, versions(1)));
    let stored_ok = responsible.wait_for(before + m) && watched.iter().all(|w| w.wait_for(m));
    assert!(
        stored_ok,
        "the orders shared with 94 were not stored in {TIMEOUT:?}"
    );

    let updates = versions(2);
    let started = Instant::now();
    rt.block_on(publish_all(conn, updates));
    let published_s = started.elapsed().as_secs_f64();
    assert!(
        watched.iter().all(|w| w.wait_for(2 * m)),
        "not every update reached the watched jobcentres in {TIMEOUT:?}"
    );
    let last = watched
        .iter()
        .map(|w| w.slice(2 * m - 1, 2 * m)[0].0)
        .max()
        .unwrap();
    let span = (last - started).as_secs_f64();
    println!("  published in {published_s:.2} s (confirmed)");
    println!(
        "  updates applied and notified to all 94: {:.0} /s ({m} in {span:.2} s from the first publish)",
        m as f64 / span
    );
    println!(
        "  unit deliveries equivalent: {:.0} /s (each update: one BCC message routed to 94 jobcentres, one to {RESPONSIBLE})",
        (m * 95) as f64 / span
    );
    if let Some(c) = ceiling {
        println!(
            "  ratio to the broker's ceiling for jobsync's traffic: {:.2}",
            (m as f64 / span) / c.per_snapshot()
        );
    }
}

/// The id of the `i`th order of the 94-jobcentre part (the same for each
/// version).
fn order_id(i: usize) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("jobsync-bench-94-{i}").as_bytes(),
    )
}

/// The drain again, with `stored` orders already in the database.
fn stored_drain(
    rt: &Runtime,
    stored: usize,
    n: usize,
    extra: &[String],
    base: Option<f64>,
    ceiling: Option<&Ceiling>,
) {
    let env = BenchEnv::with_vhost(extra);
    jobsync::store::db::prepare(&env.db_url, 1).expect("PostgreSQL answers (scripts/services)");
    let mut db = PgConnection::establish(&env.db_url).unwrap();
    let started = Instant::now();
    common::store_orders(&mut db, stored, 0);
    for sql in [
        "INSERT INTO job_order_sharing (job_order_id, unit_type, unit_code, since) \
           SELECT id, 'jobcenter', '16700', created_at FROM job_orders",
        "INSERT INTO processed_messages (message_id, queue, outcome, job_order_id, version) \
           SELECT gen_random_uuid()::text, 'jobsync.joborders', 'applied', id, 1 FROM job_orders",
        "VACUUM ANALYZE",
    ] {
        diesel::sql_query(sql).execute(&mut db).unwrap();
    }
    drop(db);
    println!(
        "\nstored {stored} orders (with their sharing and inbox rows) in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let (conn, responsible) = preloaded(rt, &env, n);
    let busy_before = common::machine_busy_s();
    let mut worker = env.start_worker();
    let d = drain(&responsible, &worker, n, busy_before, &env);
    d.print(&format!("drain with {stored} orders stored"), n, ceiling);
    if let Some(base) = base {
        println!(
            "  against the drain of an empty database: {:.2} (target: within 0.80–1.20)",
            d.rate / base
        );
    }
    worker.stop();
    drop(rt.block_on(conn.close(200, "done".into())));
}

/// The size, in bytes, large snapshots are padded to.
const LARGE_BODY: usize = 249_000;

/// The drain of `n` snapshots of [`LARGE_BODY`] bytes (valid, padded with a
/// field jobsync ignores), with a worker of its own: its peak resident
/// memory is what matters.
fn large_drain(rt: &Runtime, n: usize, extra: &[String]) {
    let env = BenchEnv::with_vhost(extra);
    let (conn, responsible) = preloaded(rt, &env, 0);
    let t = env.topology();
    let padded = |i: usize| {
        let (_, mut m) = new_order(t, i);
        let pad = LARGE_BODY.saturating_sub(m.body.len() + 16);
        let mut event: Value = serde_json::from_slice(&m.body).unwrap();
        event["data"]["bilag"] = Value::String("x".repeat(pad));
        m.body = event.to_string().into_bytes();
        m
    };
    println!(
        "\n== large messages: {n} new orders of {} bytes each (an ignored field pads them) ==",
        padded(0).body.len()
    );
    rt.block_on(async {
        let publisher = Publisher::open(&conn).await.unwrap();
        for from in (0..n).step_by(200) {
            let chunk: Vec<Outgoing> = (from..n.min(from + 200)).map(padded).collect();
            common::publish_confirmed(&publisher, &chunk).await;
        }
    });
    let busy_before = common::machine_busy_s();
    let mut worker = env.start_worker();
    let d = drain(&responsible, &worker, n, busy_before, &env);
    println!(
        "  applied, acknowledged and notified: {:.0} msg/s ({:.1} MB/s of snapshots)",
        d.rate,
        d.rate * LARGE_BODY as f64 / 1e6
    );
    println!(
        "  worker peak resident memory: {:.1} MB (target: at most 150 MB)",
        mb(d.peak_kb)
    );
    worker.stop();
    drop(rt.block_on(conn.close(200, "done".into())));
}

/// p50 and p99 of a latency run, in ms.
#[derive(Clone, Copy)]
struct Latency {
    p50: f64,
    p99: f64,
}

/// What goes into the side-by-side table, of jobsync or of the baseline.
#[derive(Default)]
struct Figures {
    light: Option<Latency>,
    loaded: Option<Latency>,
    /// Drain rate, msg/s.
    drain: Option<f64>,
}

/// The baseline (`common/baseline.rs`) in an environment of its own: the
/// drain of `n` pre-loaded orders, then the `light` and the `loaded` latency
/// runs (rate, seconds), as jobsync had them.
fn run_baseline(
    rt: &Runtime,
    n: usize,
    light: Option<(usize, usize)>,
    loaded: Option<(usize, usize)>,
) -> Figures {
    println!(
        "\n== baseline: a plain per-message worker in the bench process (one transaction per \
         message, publish after commit, prefetch 50; benches/common/baseline.rs) =="
    );
    let env = BenchEnv::with_vhost(&[]);
    let (conn, responsible) = preloaded(rt, &env, n);
    let t = env.topology().clone();
    let busy_before = common::machine_busy_s();
    let cpu_before = common::cpu_s(std::process::id()).unwrap_or(0.0);
    let worker = Baseline::start(rt, &env);
    let mut figures = Figures::default();
    if n > 0 {
        assert!(
            responsible.wait_for(n),
            "the baseline's drain did not finish in {TIMEOUT:?}"
        );
        let cpu = common::cpu_s(std::process::id()).unwrap_or(0.0) - cpu_before;
        let busy = common::machine_busy_s() - busy_before;
        let got = responsible.slice(0, n);
        let (first, last) = (got[0].0, got[n - 1].0);
        let span_s = (last - first).as_secs_f64();
        let rate = (n - 1) as f64 / span_s;
        let wall_s = (last - worker.started).as_secs_f64();
        println!("\n== baseline drain: {n} new orders, one notification and one event each ==");
        println!("  baseline, first to last notification: {rate:.0} msg/s ({span_s:.2} s)");
        println!(
            "  baseline, from its start:             {:.0} msg/s ({wall_s:.2} s, database creation included)",
            n as f64 / wall_s
        );
        println!(
            "  per message, CPU of the bench process (the baseline, the bench's consumer): {:.0} µs; \
             of the whole machine: {:.0} µs",
            cpu * 1e6 / n as f64,
            busy * 1e6 / n as f64
        );
        figures.drain = Some(rate);
    }
    if let Some((rate, seconds)) = light {
        figures.light = latency(rt, &conn, &t, &responsible, rate, seconds, &BASELINE_LIGHT);
    }
    if let Some((rate, seconds)) = loaded {
        figures.loaded = latency(rt, &conn, &t, &responsible, rate, seconds, &BASELINE_LOADED);
    }
    worker.stop(rt);
    drop(rt.block_on(conn.close(200, "done".into())));
    figures
}

/// The table of jobsync's figures beside the baseline's.
fn side_by_side(
    jobsync: &Figures,
    baseline: &Figures,
    light: Option<(usize, usize)>,
    loaded: Option<(usize, usize)>,
) {
    println!("\n== side by side: jobsync and the plain per-message baseline ==");
    println!(
        "  {:<28} {:>10} {:>10} {:>8}",
        "", "jobsync", "baseline", "ratio"
    );
    let row = |what: String, j: Option<f64>, b: Option<f64>| {
        let figure = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.1}"));
        let ratio = match (j, b) {
            (Some(j), Some(b)) if b > 0.0 => format!("{:.3}", j / b),
            _ => "—".to_owned(),
        };
        println!(
            "  {what:<28} {:>10} {:>10} {ratio:>8}",
            figure(j),
            figure(b)
        );
    };
    let p = |f: &Figures, light: bool, p99: bool| {
        let l = if light { f.light } else { f.loaded };
        l.map(|l| if p99 { l.p99 } else { l.p50 })
    };
    for (run, is_light) in [(light, true), (loaded, false)] {
        if let Some((rate, _)) = run {
            let what = if is_light { "light load" } else { "load" };
            for (name, p99) in [("p50", false), ("p99", true)] {
                row(
                    format!("{what} {rate} msg/s, {name} ms"),
                    p(jobsync, is_light, p99),
                    p(baseline, is_light, p99),
                );
            }
        }
    }
    row("drain, msg/s".to_owned(), jobsync.drain, baseline.drain);
    println!("  ratio: jobsync's figure over the baseline's (latency: below 1 is jobsync faster; drain: above 1)");
}
