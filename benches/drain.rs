//! Drain benchmark: pre-loads N job order snapshots (default 20,000; set
//! `JOBSYNC_BENCH_MESSAGES`) into a queue of its own, then starts one
//! `jobsync run` (the real binary) and measures how fast it applies them.
//! Extra worker flags go in `JOBSYNC_BENCH_WORKER_ARGS`.
//!
//!     scripts/services && cargo bench --bench drain
//!
//! It uses its own database and broker names and removes them afterwards.

mod common;

use std::time::Duration;

use common::BenchEnv;

fn main() {
    if !common::invoked_as_bench("drain") {
        return;
    }
    let n = common::env_count("JOBSYNC_BENCH_MESSAGES", 20_000);
    let extra = common::worker_args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut env = BenchEnv::new(&extra);

    // Pre-load the queue: orders of 15300 shared with one neighbour.
    let publish_rate = rt.block_on(async {
        let conn = env.connect("jobsync bench").await;
        let data = |id, i| common::snapshot(id, i, "neighbours", &["16700"]);
        let rate = env.preload(&conn, n, data, "").await;
        let _ = conn.close(200, "loaded".into()).await;
        rate
    });
    println!("broker: persistent publishes with pipelined confirms: {publish_rate:.0} msg/s");

    // One `jobsync run`, as an operator would start it.
    let mut worker = env.start_worker();
    let waited = worker.wait_applied(
        &mut env,
        n,
        Duration::from_millis(100),
        Duration::from_secs(600),
        || true,
    );
    let done = match waited.applied_at {
        Some(at) if !waited.timed_out => at,
        _ => panic!("the drain did not finish in 10 minutes"),
    };
    let span_s = env
        .commit_span_s()
        .expect("processed_messages has commit times");
    let status = worker.stop();

    println!("jobsync run drained {n} snapshots:");
    println!(
        "  applied (first to last commit): {:.0} msg/s over {:.2} s",
        n as f64 / span_s,
        span_s
    );
    println!(
        "  wall clock from process start:  {:.0} msg/s over {:.2} s",
        n as f64 / done.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "  worker peak resident memory:    {:.1} MB",
        worker.peak_kb() as f64 / 1024.0
    );
    println!("  worker exit after SIGTERM:      {status}");
    println!("  worker flags: {}", common::describe_flags(&extra));
    // Dropping `env` removes the database and broker names.
}
