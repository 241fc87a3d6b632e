//! Sections 8 and 9: RabbitMQ restarted under a running worker. The worker
//! notices, says so on `/readyz`, reconnects by itself with backoff,
//! declares its topology again and goes on: every message applied once,
//! every notification published.
//!
//! A test binary of its own: cargo runs test binaries one after another, so
//! restarting the shared broker here disturbs no other test.

#[path = "reliability/harness/mod.rs"]
#[allow(dead_code)]
mod harness;
#[path = "integration/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use helpers::*;
use jobsync::amqp::publisher::Publisher;
use uuid::Uuid;

const T: Duration = Duration::from_secs(60);

/// The broker is the machine's: one test at a time restarts it.
static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rabbitmqctl(args: &[&str]) {
    // As scripts/services runs it: directly as root, through sudo otherwise.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let mut cmd = if root {
        Command::new("rabbitmqctl")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "rabbitmqctl"]);
        c
    };
    let out = cmd
        .args(args)
        .output()
        .expect("rabbitmqctl (run scripts/services)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn readyz(port: u16) -> Option<(u16, String)> {
    http_get(port, "/readyz").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_recovers_by_itself_from_a_broker_restart() {
    let _broker = BROKER.lock().await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut env = TestEnv::with_args(&["--http-addr", &addr]).await;
    env.start_worker();
    let before: Vec<_> = (0..100)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    env.publish(&before).await;
    env.wait_processed(100, T).await;

    rabbitmqctl(&["stop_app"]);
    let deadline = Instant::now() + T;
    loop {
        if let Some((503, body)) = readyz(port).await {
            assert!(body.contains("broker"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz says the broker is down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rabbitmqctl(&["start_app"]);
    let started = Instant::now();
    rabbitmqctl(&["await_startup"]);
    loop {
        if let Some((200, _)) = readyz(port).await {
            break;
        }
        assert!(started.elapsed() < T, "the worker reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back = started.elapsed();
    println!("broker started again; the worker consumed again after {back:?}");
    // The reconnection is counted (this binary runs one worker).
    let metrics = http_get(port, "/metrics").await.unwrap().1;
    let reconnects: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("jobsync_broker_reconnects_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(reconnects >= 1.0, "{metrics}");

    // A new connection of the test's own (the old one died with the app).
    let amqp = jobsync::amqp::connect(AMQP_URL, "after the restart")
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let watched = jobsync::amqp::topology::watch(
        &channel,
        "",
        &env.settings.topology.notifications_exchange,
        "unit.jobcenter.15300.#",
    )
    .await
    .unwrap();
    let publisher = Publisher::open(&amqp).await.unwrap();
    let after: Vec<_> = (0..100)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    let text: String = after.iter().map(|e| format!("{e}\n")).collect();
    let outgoing =
        jobsync::commands::read_events(&text, &env.settings.topology.hub_exchange).unwrap();
    publisher.publish_all(&outgoing).await.unwrap();
    env.wait_processed(200, T).await;
    env.wait_until(T, "every notification is published", |conn| {
        jobsync::store::schema::outbox::table
            .count()
            .get_result::<i64>(conn)
            .unwrap()
            == 0
    })
    .await;
    // The 100 published after the restart reached the responsible unit.
    let deadline = Instant::now() + T;
    let mut received = 0;
    while received < 100 {
        match channel
            .basic_get(
                watched.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            Some(_) => received += 1,
            None => {
                assert!(Instant::now() < deadline, "got {received} of 100");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Nothing was rejected for the outage.
    let dead = channel
        .queue_declare(
            env.settings.topology.dead_letters_queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(dead.message_count(), 0);
    let processed: i64 = jobsync::store::schema::processed_messages::table
        .count()
        .get_result(&mut env.db())
        .unwrap();
    assert_eq!(processed, 200, "each message applied once");
    let _ = amqp.close(200, "done".into()).await;
}

/// Restarts the broker's application, as an upgrade or a crash of the node
/// would: every connection drops; durable queues and persistent messages
/// come back.
fn restart_broker(down: Duration) {
    rabbitmqctl(&["stop_app"]);
    std::thread::sleep(down);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restarted_twice_in_a_stream_changes_nothing_of_its_end() {
    use harness::*;
    let _broker = BROKER.lock().await;
    let env = TestEnv::new().await;
    let stream = Stream::generate(seed(), &Mix::about(5_000));
    let distinct = stream.distinct() as i64;
    let restart = async |_: &mut Process, _: &std::path::PathBuf| {
        tokio::task::spawn_blocking(|| restart_broker(Duration::from_secs(2)))
            .await
            .unwrap();
    };
    let points = [distinct / 4, distinct * 3 / 5];
    let found = run_with_faults(&env, &stream, "broker-outage", &points, true, restart).await;
    assert_none(&stream, &found);
}
