//! Section 8: the operations endpoints as an operator and an orchestrator
//! use them.

use std::time::Duration;

use diesel::RunQueryDsl;
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

/// Waits until `path` answers with `status`; returns the body.
async fn wait_for(port: u16, path: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some((s, body)) = http_get(port, path).await {
            if s == status {
                return body;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} did not answer {status} within {T:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_naming_the_database_while_postgresql_is_stopped() {
    let pg = PrivatePostgres::start();
    let port = free_port();
    let port_arg = format!("127.0.0.1:{port}");
    let mut env = TestEnv::with_server(&pg.url(), &["--http-addr", &port_arg]).await;
    env.start_worker();
    let ready = wait_for(port, "/readyz", 200).await;
    assert!(ready.contains("\"ready\""), "{ready}");
    assert!(wait_for(port, "/healthz", 200).await.contains("ok"));

    pg.stop();
    let down = wait_for(port, "/readyz", 503).await;
    let body: serde_json::Value = serde_json::from_str(&down).unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["down"], serde_json::json!(["database"]), "{body}");
    assert_eq!(http_get(port, "/healthz").await.map(|r| r.0), Some(200));

    pg.start_again();
    wait_for(port, "/readyz", 200).await;
    // And the worker applies again.
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(1, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_worker_does() {
    let env = TestEnv::new().await;
    let (mut worker, port) = worker_binary(&env);
    wait_for(port, "/readyz", 200).await;
    let before = wait_for(port, "/metrics", 200).await;
    // Every family from start-up (the list the alerts and dashboard use).
    for name in crate::deploy::KNOWN {
        assert!(
            before.contains(&format!("# TYPE {name}")),
            "{name} is exported:\n{before}"
        );
    }
    assert_eq!(
        value(
            &before,
            &format!(
                "jobsync_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&before, "jobsync_rejections_total{code=\"cvr.checksum\"}"),
        Some(0.0),
        "every code from start-up:\n{before}"
    );
    assert!(value(&before, "process_resident_memory_bytes") > Some(1e6));
    let queue = &env.settings.topology.joborders_queue;
    let applied = |text: &str| {
        value(
            text,
            &format!("jobsync_messages_total{{queue=\"{queue}\",outcome=\"applied\"}}"),
        )
    };
    let rejected = |text: &str| {
        value(
            text,
            &format!("jobsync_messages_total{{queue=\"{queue}\",outcome=\"rejected\"}}"),
        )
    };
    assert_eq!(applied(&before), Some(0.0), "{before}");

    let mut order = snapshot(Uuid::new_v4(), 1);
    order["descriptions"]["tasks"] = "Ring 010190-1234".into();
    let mut bad = snapshot(Uuid::new_v4(), 1);
    bad["employer"]["cvr"] = "12345679".into();
    env.publish(&[event(&order), event(&bad)]).await;
    env.wait_processed(1, T).await;
    let deadline = tokio::time::Instant::now() + T;
    let after = loop {
        let text = wait_for(port, "/metrics", 200).await;
        let published = value(
            &text,
            "jobsync_notifications_published_total{event=\"joborder.updated\"}",
        );
        if published >= Some(2.0)
            && rejected(&text) == Some(1.0)
            && value(&text, "jobsync_dead_letters") == Some(1.0)
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics did not move:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(applied(&after), Some(1.0));
    // Lifecycle events have their own counter, and are no notification.
    assert_eq!(
        value(
            &after,
            "jobsync_events_published_total{event=\"joborder.created\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert!(
        !after.contains("jobsync_notifications_published_total{event=\"joborder.created\"}"),
        "{after}"
    );
    assert!(
        value(&after, "jobsync_cpr_redactions_total") >= Some(2.0),
        "one CPR number in the responsible and the shared view:\n{after}"
    );
    assert!(
        after.contains("jobsync_apply_duration_seconds_bucket"),
        "{after}"
    );
    assert!(after.contains("jobsync_batch_size_bucket"), "{after}");
    assert_eq!(
        value(&after, "jobsync_rejections_total{code=\"cvr.checksum\"}"),
        Some(1.0),
        "{after}"
    );
    // The hub's `time` of the snapshot is minutes before publication in the
    // fixture or now: each confirmed notification and event is one sample.
    assert!(
        value(&after, "jobsync_end_to_end_lag_seconds_count") >= Some(3.0),
        "two notifications and a lifecycle event:\n{after}"
    );
    let _ = worker.kill();
    let _ = worker.wait();
}

/// `jobsync run` (the binary, so that the counters are this worker's
/// alone) on `env`, and the port of its operations endpoints.
fn worker_binary(env: &TestEnv) -> (std::process::Child, u16) {
    let port = free_port();
    let worker = crate::cli::jobsync(env, &["run", "--http-addr", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (worker, port)
}

/// The value of the series `series` (name and labels, as printed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpr_redactions_are_counted_only_for_what_was_committed() {
    use std::process::Stdio;
    let env = TestEnv::new().await;
    let port = free_port();
    let mut worker = crate::cli::jobsync(
        &env,
        &[
            "run",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--expiry-interval-s",
            "1",
        ],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for(port, "/readyz", 200).await;
    // Every expiry transaction fails at COMMIT (a deferred trigger on its
    // outbox rows), after its views were built.
    diesel::sql_query(
        "CREATE FUNCTION pg_temp_fail_expiry() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.routing_key LIKE '%expired' THEN \
           RAISE EXCEPTION 'test: the expiry may not commit'; END IF; RETURN NULL; END $$",
    )
    .execute(&mut env.db())
    .unwrap();
    diesel::sql_query(
        "CREATE CONSTRAINT TRIGGER fail_expiry AFTER INSERT ON outbox \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp_fail_expiry()",
    )
    .execute(&mut env.db())
    .unwrap();
    // One CPR number in the title: one in the responsible and one in the
    // shared view; the deadline has passed, so the order is due at once.
    let mut order = snapshot(Uuid::new_v4(), 1);
    order["title"] = "Lager 010190-1234".into();
    order["mediation_deadline"] = "2026-11-02".into();
    env.publish(&[event(&order)]).await;
    env.wait_processed(1, T).await;
    let metric = |text: &str, series: &str| value(text, series).unwrap_or(0.0);
    let deadline = tokio::time::Instant::now() + T;
    while metric(
        &wait_for(port, "/metrics", 200).await,
        "jobsync_cpr_redactions_total",
    ) < 2.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the apply was not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several expiry passes fail at commit: nothing more is counted.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let text = wait_for(port, "/metrics", 200).await;
    assert_eq!(metric(&text, "jobsync_expired_total"), 0.0, "{text}");
    assert_eq!(
        metric(&text, "jobsync_cpr_redactions_total"),
        2.0,
        "rolled-back expiry passes counted redactions:\n{text}"
    );
    // Once the expiry can commit, its two views count.
    diesel::sql_query("DROP TRIGGER fail_expiry ON outbox")
        .execute(&mut env.db())
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let text = loop {
        let text = wait_for(port, "/metrics", 200).await;
        if metric(&text, "jobsync_expired_total") == 1.0 {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never expired:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(metric(&text, "jobsync_cpr_redactions_total"), 4.0, "{text}");
    let _ = worker.kill();
    let _ = worker.wait();
}

/// A batch takes what is already buffered and waits for nothing more (the
/// default wait is none): a backlog is applied in batches of many, and a
/// message that comes alone is applied alone, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_takes_what_is_buffered_and_waits_for_nothing() {
    let env = TestEnv::new().await;
    // 300 snapshots wait in the queue before the worker starts.
    let backlog: Vec<_> = (0..300)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    env.publish(&backlog).await;
    let (mut worker, port) = worker_binary(&env);
    env.wait_processed(300, T).await;
    let batches = |text: &str| value(text, "jobsync_batch_size_count").unwrap_or(0.0);
    let sizes = |text: &str| value(text, "jobsync_batch_size_sum").unwrap_or(0.0);
    let drained = wait_for(port, "/metrics", 200).await;
    assert_eq!(sizes(&drained), 300.0, "{drained}");
    assert!(
        batches(&drained) <= 30.0,
        "300 buffered deliveries in batches of 10 or more on average, not one by one: {} batches",
        batches(&drained)
    );
    // One more, alone: its own batch of one.
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(301, T).await;
    let after = wait_for(port, "/metrics", 200).await;
    assert_eq!(sizes(&after), 301.0, "{after}");
    assert_eq!(batches(&after), batches(&drained) + 1.0, "{after}");
    let _ = worker.kill();
    let _ = worker.wait();
}

/// The consumer of `queue` as the broker sees it: its prefetch count.
fn broker_prefetch(queue: &str) -> Option<u32> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_consumers", "-q", "--no-table-headers"])
        .args(["queue_name", "prefetch_count"])
        .output()
        .expect("rabbitmqctl (run scripts/services)");
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (name, count) = l.split_once('\t')?;
        (name == queue).then(|| count.trim().parse().ok())?
    })
}

/// A new order of about `bytes` bytes: valid, padded by a field jobsync
/// ignores (tolerant reading).
fn padded(bytes: usize) -> serde_json::Value {
    let mut e = event(&snapshot(Uuid::new_v4(), 1));
    let pad = bytes.saturating_sub(e.to_string().len());
    e["data"]["bilag"] = "x".repeat(pad).into();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefetch_shrinks_for_large_messages_and_grows_back_for_small_ones() {
    // 4 MiB of bodies in flight: at 200 KB a message, at most 20.
    let env = TestEnv::new().await;
    let queue = env.settings.topology.joborders_queue.clone();
    let large: Vec<_> = (0..150).map(|_| padded(200_000)).collect();
    env.publish(&large).await;
    let mut worker = crate::cli::jobsync(&env, &["run", "--prefetch-bytes", "4194304"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_processed(150, T).await;
    let prefetch = wait_until_some(|| broker_prefetch(&queue)).await;
    assert!(
        prefetch <= 4_194_304 / 200_000,
        "the broker may push at most 20 bodies of 200 KB, not {prefetch}"
    );
    // Ordinary messages again: the configured prefetch comes back.
    for round in 1..=3 {
        let small: Vec<_> = (0..200)
            .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
            .collect();
        env.publish(&small).await;
        env.wait_processed(150 + 200 * round, T).await;
    }
    let deadline = std::time::Instant::now() + T;
    while broker_prefetch(&queue) != Some(1000) {
        assert!(
            std::time::Instant::now() < deadline,
            "after 600 small messages the prefetch is the configured 1,000, not {:?}",
            broker_prefetch(&queue)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();
}

/// The first `Some` of `f`, polled for up to [`T`].
async fn wait_until_some<V>(f: impl Fn() -> Option<V>) -> V {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "nothing within {T:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_widely_shared_orders_is_applied_in_several_transactions() {
    let env = TestEnv::new().await;
    let jobcentres = ninety_four_jobcentres();
    // 200 orders shared with 94 jobcentres wait before the worker starts:
    // one batch, but 19,000 units reached, more than one transaction takes.
    let orders: Vec<_> = (0..200)
        .map(|_| {
            let data = JobOrder::new(Uuid::new_v4())
                .shared("selected", &jobcentres)
                .build();
            event(&data)
        })
        .collect();
    env.publish(&orders).await;
    // A batch that waits for all of them (and a byte budget that lets the
    // broker send them at once).
    let port = free_port();
    let mut worker =
        crate::cli::jobsync(&env, &["run", "--http-addr", &format!("127.0.0.1:{port}")])
            .args(["--batch-wait-ms", "2000", "--prefetch-bytes", "1073741824"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    env.wait_processed(200, T).await;
    let metrics = wait_for(port, "/metrics", 200).await;
    let gathered = value(&metrics, "jobsync_batch_size_count").unwrap_or(0.0);
    let transactions = value(&metrics, "jobsync_apply_duration_seconds_count").unwrap_or(0.0);
    assert!(
        transactions >= gathered + 2.0,
        "200 orders shared with 94 jobcentres take at least three transactions \
         however they were gathered: {transactions} transactions for {gathered} batches"
    );
    let _ = worker.kill();
    let _ = worker.wait();
}
