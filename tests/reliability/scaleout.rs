//! Guarantee 2 of section 9 with three instances consuming the same queues.

use std::time::Duration;

use crate::harness::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_shuffled_stream_end_in_the_highest_versions_and_agree() {
    let env = TestEnv::with_args(&["--batch-size", "50", "--prefetch", "100"]).await;
    let mut mix = Mix::about(6_000);
    // Shuffled much further than the chaos stream.
    mix.reorder_window = 4_000;
    let stream = Stream::generate(seed(), &mix);
    let watch = Watch::declare(&env).await;
    let log = log_path("scale-out");
    let workers: Vec<Process> = (0..3)
        .map(|_| Process::start(&env.args, &[], &log))
        .collect();
    publish_resiliently(&env.settings.topology.hub_exchange, &stream.messages).await;
    wait_done(&env, &stream, Duration::from_secs(300)).await;
    for w in workers {
        let status = w.terminate();
        assert!(status.success(), "exit 0 on SIGTERM: {status}; see {log:?}");
    }
    let mut found = discrepancies(&env, &stream, &watch).await;
    // Nothing went wrong here, the stops included: no error in the log.
    found.extend(log_discrepancies(&log, false));
    watch.delete().await;
    assert_none(&stream, &found);
}
