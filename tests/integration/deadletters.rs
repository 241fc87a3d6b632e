//! Sections 4.3 and 7: `jobsync dead-letters list` shows the rejected
//! messages with their reasons and leaves them; `replay` republishes the
//! chosen ones once their cause is fixed, and they are applied.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

fn run(env: &TestEnv, args: &[&str]) -> String {
    let out: std::process::Output = {
        let mut cmd: Command = crate::cli::jobsync(env, args);
        cmd.output().unwrap()
    };
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn listed(env: &TestEnv) -> Vec<Value> {
    run(env, &["dead-letters", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn wait_dead(env: &TestEnv, n: u32) {
    let queue = env.settings.topology.dead_letters_queue.clone();
    let deadline = tokio::time::Instant::now() + T;
    while env.ready_in(&queue).await < n {
        assert!(tokio::time::Instant::now() < deadline, "{n} dead letters");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_with_their_reasons_and_replayed_once_fixed() {
    let mut env = TestEnv::with_args(&["--retry-total-s", "1"]).await;
    env.start_worker();
    // A log whose order is not there yet (dead-lettered after 1 s), and an
    // order with a bad CVR.
    let order = Uuid::new_v4();
    let log_id = Uuid::new_v4().to_string();
    env.publish(&[log_event_with_id(&log_id, &mediation_log(order, 1, vec![]))])
        .await;
    let mut bad = snapshot(Uuid::new_v4(), 1);
    bad["employer"]["cvr"] = "12345679".into();
    let bad_id = Uuid::new_v4().to_string();
    env.publish(&[event_with_id(&bad_id, &bad)]).await;
    wait_dead(&env, 2).await;

    let list = listed(&env);
    assert_eq!(list.len(), 2, "{list:#?}");
    let log = list.iter().find(|d| d["id"] == log_id.as_str()).unwrap();
    assert_eq!(log["error_code"], "joborder.unknown");
    assert_eq!(log["type"], "dk.dfdg.mediationlog.snapshot");
    assert_eq!(log["routing_key"], "mediationlog.snapshot");
    assert_eq!(
        log["source_queue"],
        env.settings.topology.mediationlogs_queue.as_str()
    );
    assert!(log["rejected_at"].is_string());
    let cvr = list.iter().find(|d| d["id"] == bad_id.as_str()).unwrap();
    assert_eq!(cvr["error_code"], "cvr.checksum");
    assert!(cvr["error"]
        .as_str()
        .unwrap()
        .starts_with("data.employer.cvr"));
    // Listing leaves them where they are; the table form shows them too.
    assert_eq!(listed(&env).len(), 2);
    let table = run(&env, &["dead-letters", "list"]);
    assert!(
        table.contains("cvr.checksum") && table.contains("joborder.unknown"),
        "{table}"
    );

    // The cause of one is fixed: its order arrives. Replay it by code.
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.wait_processed(1, T).await;
    let out = run(
        &env,
        &["dead-letters", "replay", "--code", "joborder.unknown"],
    );
    assert_eq!(out.trim(), "replayed 1 dead letters");
    env.wait_until(T, "the replayed log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
    let left = listed(&env);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], bad_id.as_str());

    // Replaying one whose cause is not fixed brings it back, rejected again.
    run(&env, &["dead-letters", "replay", "--id", &bad_id]);
    let again = env.take_dead_letters(1, T).await;
    assert_eq!(again[0].code(), "cvr.checksum");
    assert_eq!(again[0].routing_key, "joborder.snapshot");
}
