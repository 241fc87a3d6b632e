//! Guarantees 1–3 of section 9 with the worker killed at random points.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::*;
use crate::helpers::*;

/// What a chaos round did.
#[derive(Debug, Default)]
pub struct Round {
    pub messages: usize,
    pub distinct: usize,
    pub kills: usize,
    pub discrepancies: Vec<String>,
}

/// Publishes `stream` to a worker process and kills it with SIGKILL
/// `kills` times at random points of the stream (each after some progress,
/// so every kill finds work in hand), restarting it after each; then waits
/// for everything to be applied and published, stops the worker with
/// SIGTERM and asks the oracle.
pub async fn chaos_round(stream: &Stream, kills: usize) -> Round {
    let env = TestEnv::new().await;
    let mut rng = StdRng::seed_from_u64(stream.seed ^ 0x6b69_6c6c);
    // Kill points: fractions of the distinct messages processed.
    let distinct = stream.distinct() as f64;
    let mut points: Vec<i64> = (0..kills)
        .map(|_| (distinct * rng.random_range(0.03..0.9)) as i64)
        .collect();
    points.sort_unstable();
    let mut killed = 0;
    let kill = async |worker: &mut Process, log: &PathBuf| {
        worker.kill();
        killed += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        *worker = Process::start(&env.args, &[], log);
    };
    let discrepancies = run_with_faults(&env, stream, "chaos", &points, false, kill).await;
    Round {
        messages: stream.messages.len(),
        distinct: stream.distinct(),
        kills: killed,
        discrepancies,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_six_times_in_a_stream_of_20000_the_worker_loses_nothing_and_repeats_nothing() {
    let stream = Stream::generate(seed(), &Mix::about(20_000));
    assert!(
        stream.messages.len() >= 20_000,
        "{} messages",
        stream.messages.len()
    );
    let started = Instant::now();
    let round = chaos_round(&stream, 6).await;
    eprintln!(
        "chaos: {} messages ({} distinct), {} kills, {:.0} s",
        round.messages,
        round.distinct,
        round.kills,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(round.kills, 6);
    assert_none(&stream, &round.discrepancies);
}

/// The soak: chaos rounds for `JOBSYNC_SOAK_MINUTES` (default 10), each a
/// new stream of `JOBSYNC_SOAK_MESSAGES` (default 20,000) and 6 kills. Run
/// it with `scripts/soak MINUTES`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with scripts/soak"]
async fn soak() {
    let minutes: f64 = env_number("JOBSYNC_SOAK_MINUTES", 10.0);
    let size = env_number("JOBSYNC_SOAK_MESSAGES", 20_000.0) as usize;
    let started = Instant::now();
    let (mut rounds, mut messages, mut kills, mut discrepancies) = (0, 0, 0, 0);
    while started.elapsed().as_secs_f64() < minutes * 60.0 {
        let stream = Stream::generate(seed(), &Mix::about(size));
        let round = chaos_round(&stream, 6).await;
        rounds += 1;
        messages += round.messages;
        kills += round.kills;
        discrepancies += round.discrepancies.len();
        for d in round.discrepancies.iter().take(20) {
            eprintln!("soak: seed {}: {d}", stream.seed);
        }
        println!(
            "soak: round {rounds} (seed {}): {} messages, {} kills, {} discrepancies; \
             total {messages} messages, {kills} kills survived, {discrepancies} discrepancies, {:.0} s",
            stream.seed,
            round.messages,
            round.kills,
            round.discrepancies.len(),
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "soak: {rounds} rounds in {:.1} min: {messages} messages processed, {kills} kills survived, {discrepancies} discrepancies",
        started.elapsed().as_secs_f64() / 60.0
    );
    assert_eq!(discrepancies, 0);
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: {v:?} is not a number"))
        })
        .unwrap_or(default)
}
