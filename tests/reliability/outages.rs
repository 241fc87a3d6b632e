//! Section 9 with PostgreSQL restarted twice under a stream: the worker
//! waits the outages out; nothing is rejected, lost or repeated.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_twice_in_a_stream_changes_nothing_of_its_end() {
    let pg = PrivatePostgres::start();
    let env = TestEnv::with_server(&pg.url(), &[]).await;
    let stream = Stream::generate(seed(), &Mix::about(5_000));
    let watch = Watch::declare(&env).await;
    let log = log_path("pg-outage");
    let mut worker = Process::start(&env.args, &[], &log);
    let exchange = env.settings.topology.hub_exchange.clone();
    let messages = stream.messages.clone();
    let publishing = tokio::spawn(async move { publish_resiliently(&exchange, &messages).await });

    let distinct = stream.distinct() as i64;
    for (n, point) in [distinct / 4, distinct * 3 / 5].into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        while progress(&env).map_or(0, |p| p.processed) < point {
            assert!(
                Instant::now() < deadline,
                "stuck before outage {}; see {log:?}",
                n + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pg.stop();
        // Work in hand and arriving meets a dead database for a while.
        tokio::time::sleep(Duration::from_secs(3)).await;
        pg.start_again();
        assert!(
            worker.running(),
            "the worker outlives the outage; see {log:?}"
        );
    }
    publishing.await.expect("the stream is published");
    wait_done(&env, &stream, Duration::from_secs(300)).await;
    assert!(
        worker.running(),
        "the worker outlived both outages; see {log:?}"
    );
    let status = worker.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}");
    let mut found = discrepancies(&env, &stream, &watch).await;
    found.extend(log_discrepancies(&log));
    watch.delete().await;
    assert_none(&stream, &found);
}
