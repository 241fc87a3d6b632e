//! Section 9 with PostgreSQL restarted twice under a stream: the worker
//! waits the outages out; nothing is rejected, lost or repeated.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_twice_in_a_stream_changes_nothing_of_its_end() {
    let pg = PrivatePostgres::start();
    let env = TestEnv::with_server(&pg.url(), &[]).await;
    let stream = Stream::generate(seed(), &Mix::about(5_000));
    let distinct = stream.distinct() as i64;
    let outage = async |_: &mut Process, _: &PathBuf| {
        pg.stop();
        // Work in hand and arriving meets a dead database for a while.
        tokio::time::sleep(Duration::from_secs(3)).await;
        pg.start_again();
    };
    let points = [distinct / 4, distinct * 3 / 5];
    let found = run_with_faults(&env, &stream, "pg-outage", &points, true, outage).await;
    assert_none(&stream, &found);
}
