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

/// The dead letters ready once the broker has put back what the last tool
/// held: its connection is closed, but the broker returns the messages on
/// its own time (and a quorum queue counts only ready ones). Waits up to
/// 5 s for `n`.
async fn ready_after_tools(env: &TestEnv, n: u32) -> u32 {
    let queue = &env.settings.topology.dead_letters_queue;
    let mut ready = env.ready_in(queue).await;
    for _ in 0..50 {
        if ready == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = env.ready_in(queue).await;
    }
    ready
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

/// `jobsync <args>` with its exit status, standard output and error.
fn run_status(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let out = crate::cli::jobsync(env, args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `n` job orders with a bad CVR, published to a running worker, and waited
/// for in the dead letters; their message ids.
async fn bad_cvr_orders(env: &TestEnv, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| Uuid::new_v4().to_string()).collect();
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            let mut bad = snapshot(Uuid::new_v4(), 1);
            bad["employer"]["cvr"] = "12345679".into();
            event_with_id(id, &bad)
        })
        .collect();
    env.publish(&events).await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_300_dead_letters_into_a_running_worker_leaves_exactly_300() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let ids = bad_cvr_orders(&env, 300).await;
    wait_dead(&env, 300).await;
    let before: std::collections::HashMap<String, String> = listed(&env)
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["rejected_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(before.len(), 300);

    // The worker rejects each replayed one again while the replay runs.
    let out = run(&env, &["dead-letters", "replay", "--all"]);
    assert_eq!(out.trim(), "replayed 300 dead letters");
    let deadline = tokio::time::Instant::now() + T;
    let after = loop {
        let after = listed(&env);
        let again = after
            .iter()
            .filter(|d| {
                let id = d["id"].as_str().unwrap();
                d["rejected_at"].as_str().unwrap() > before[id].as_str()
            })
            .count();
        if again == 300 {
            break after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{again} of 300 rejected again; {} dead letters",
            after.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Exactly the 300, each once: no original was left behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.ready_in(&env.settings.topology.dead_letters_queue)
            .await,
        300
    );
    let mut listed_ids: Vec<&str> = after.iter().map(|d| d["id"].as_str().unwrap()).collect();
    listed_ids.sort_unstable();
    let mut sent: Vec<&str> = ids.iter().map(String::as_str).collect();
    sent.sort_unstable();
    assert_eq!(listed_ids, sent);
    assert!(after.iter().all(|d| d["error_code"] == "cvr.checksum"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_changes_nothing_and_a_closed_pipe_ends_it_quietly() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    bad_cvr_orders(&env, 3).await;
    env.publish_raw("joborder.snapshot", "not-json-1", b"not json".to_vec())
        .await;
    wait_dead(&env, 4).await;
    let first = run(&env, &["dead-letters", "list", "--json"]);
    let table = run(&env, &["dead-letters", "list"]);
    assert!(
        !table.contains("count"),
        "no delivery count is shown: {table}"
    );
    for _ in 0..25 {
        assert_eq!(run(&env, &["dead-letters", "list", "--json"]), first);
    }
    assert_eq!(run(&env, &["dead-letters", "list"]), table);
    assert_eq!(ready_after_tools(&env, 4).await, 4);

    // `list | head -1`: the reader is gone before anything is written.
    let mut child = crate::cli::jobsync(&env, &["dead-letters", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert_eq!(
        env.ready_in(&env.settings.topology.dead_letters_queue)
            .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_tools_filter_show_dry_run_limit_and_delete() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let cvr = bad_cvr_orders(&env, 3).await;
    for n in 0..2 {
        env.publish_raw(
            "joborder.snapshot",
            &format!("garbage-{n}"),
            b"{oops".to_vec(),
        )
        .await;
    }
    wait_dead(&env, 5).await;

    // --code filters; --summary counts per code.
    let only: Vec<Value> = run(
        &env,
        &["dead-letters", "list", "--code", "json.malformed", "--json"],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(only.len(), 2);
    assert!(only.iter().all(|d| d["error_code"] == "json.malformed"));
    let summary = run(&env, &["dead-letters", "list", "--summary"]);
    let count_of = |code: &str| {
        summary
            .lines()
            .find(|l| l.split_whitespace().next() == Some(code))
            .and_then(|l| l.split_whitespace().last())
            .map(|n| n.parse::<u32>().unwrap())
    };
    assert_eq!(count_of("cvr.checksum"), Some(3), "{summary}");
    assert_eq!(count_of("json.malformed"), Some(2), "{summary}");
    assert_eq!(count_of("total"), Some(5), "{summary}");

    // show: the headers and the body.
    let shown = run(&env, &["dead-letters", "show", &cvr[0]]);
    assert!(
        shown.contains(&format!("message_id: {}", cvr[0])),
        "{shown}"
    );
    assert!(
        shown.contains("x-jobsync-error-code: cvr.checksum"),
        "{shown}"
    );
    assert!(shown.contains("x-jobsync-source-queue: "), "{shown}");
    assert!(shown.contains("\"12345679\""), "the body: {shown}");
    assert!(
        !shown.contains("x-delivery-count"),
        "no peek count: {shown}"
    );

    // An id that is not there: exit 1, and nothing is taken.
    for args in [
        &["dead-letters", "show", "no-such-id"][..],
        &["dead-letters", "replay", "--id", "no-such-id"],
        &[
            "dead-letters",
            "replay",
            "--id",
            &cvr[0],
            "--id",
            "no-such-id",
        ],
        &["dead-letters", "delete", "--id", "no-such-id", "--yes"],
    ] {
        let (code, _, stderr) = run_status(&env, args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no dead letter with id no-such-id"),
            "{stderr}"
        );
    }
    assert_eq!(ready_after_tools(&env, 5).await, 5);

    // --dry-run says which and replays none; --limit takes the oldest N.
    let (code, out, err) = run_status(
        &env,
        &[
            "dead-letters",
            "replay",
            "--code",
            "cvr.checksum",
            "--dry-run",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(err.contains("would replay 3 dead letters"), "{err}");
    assert_eq!(ready_after_tools(&env, 5).await, 5);
    let out = run(
        &env,
        &[
            "dead-letters",
            "replay",
            "--code",
            "json.malformed",
            "--limit",
            "1",
        ],
    );
    assert_eq!(out.trim(), "replayed 1 dead letters");
    // It comes back, rejected once more; the other stays.
    wait_dead(&env, 5).await;

    // delete: without --yes only says; with it deletes exactly those.
    let out = run(
        &env,
        &["dead-letters", "delete", "--code", "json.malformed"],
    );
    assert!(out.starts_with("would delete 2 dead letters"), "{out}");
    assert_eq!(ready_after_tools(&env, 5).await, 5);
    let out = run(
        &env,
        &[
            "dead-letters",
            "delete",
            "--id",
            &cvr[1],
            "--id",
            &cvr[2],
            "--yes",
        ],
    );
    assert_eq!(out.trim(), "deleted 2 dead letters");
    let left: Vec<String> = listed(&env)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&cvr[0]) && !left.contains(&cvr[1]) && !left.contains(&cvr[2]));
}
