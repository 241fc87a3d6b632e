//! Sections 2 and 7: the topology as the broker sees it, and the binary's
//! commands as an operator runs them.

use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use lapin::options::{BasicConsumeOptions, BasicNackOptions};
use lapin::types::FieldTable;
use uuid::Uuid;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_jobsync");

/// The binary with this test's database and broker names, given as an
/// operator gives them, in the environment: each command reads the ones it
/// uses.
pub fn jobsync(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("JOBSYNC_DATABASE_URL", env.db_url())
        .env("JOBSYNC_AMQP_URL", AMQP_URL)
        .env("JOBSYNC_HTTP_ADDR", "127.0.0.1:0")
        .env("JOBSYNC_API_ADDR", "")
        .envs(env.settings.topology.as_envs())
        .env("JOBSYNC_LOG_FORMAT", "json");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redelivered_past_its_delivery_limit_ends_in_the_dead_letters() {
    // No worker: this test plays a consumer that crashes on the message.
    let env = TestEnv::with_args(&["--delivery-limit", "2"]).await;
    env.publish_raw("joborder.snapshot", "poison-1", b"{}".to_vec())
        .await;
    let conn = jobsync::amqp::connect(AMQP_URL, "crashing consumer")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let mut deliveries = channel
        .basic_consume(
            env.settings.topology.joborders_queue.as_str().into(),
            "crasher".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    use futures_util::StreamExt;
    let mut returned = 0;
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_secs(2), deliveries.next()).await
    {
        d.acker
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
            .unwrap();
        returned += 1;
    }
    assert_eq!(
        returned, 3,
        "delivered once and redelivered up to the limit of 2"
    );
    // `dead-letters list` names the broker's reason and the source queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listed: serde_json::Value = loop {
        let out = jobsync(&env, &["dead-letters", "list", "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str(line).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed["id"], "poison-1");
    assert_eq!(listed["error_code"], "delivery_limit");
    assert_eq!(
        listed["source_queue"],
        env.settings.topology.joborders_queue.as_str()
    );
    assert_eq!(listed["routing_key"], "joborder.snapshot");
    let dead = env.take_dead_letters(1, Duration::from_secs(10)).await;
    assert_eq!(dead[0].body, b"{}");
    assert_eq!(dead[0].routing_key, "joborder.snapshot");
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_database_and_applies_the_migrations() {
    let env = TestEnv::new().await;
    let out = jobsync(&env, &["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables: Vec<String> = diesel::dsl::sql::<diesel::sql_types::Text>(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .load(&mut env.db())
    .unwrap();
    for table in [
        "job_order_sharing",
        "job_orders",
        "outbox",
        "processed_messages",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    // Again: nothing to do, still success.
    assert!(jobsync(&env, &["migrate"])
        .output()
        .unwrap()
        .status
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_sends_a_file_of_events_that_run_applies_and_sigterm_stops_run_cleanly() {
    let env = TestEnv::new().await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let lines: String = ids
        .iter()
        .map(|&id| format!("{}\n", event(&snapshot(id, 1))))
        .collect();
    let file = std::env::temp_dir().join(format!("jobsync-publish-{}.jsonl", Uuid::new_v4()));
    std::fs::write(&file, lines).unwrap();
    let out = jobsync(&env, &["publish", file.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "published 3 events"
    );

    let mut worker = jobsync(&env, &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_processed(3, Duration::from_secs(30)).await;
    for id in &ids {
        assert_eq!(stored_version(&mut env.db(), *id), Some(1));
    }
    Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobsync run stops within 20 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[test]
fn a_bad_setting_stops_start_up_naming_it_once() {
    let out = Command::new(BIN)
        .args(["run"])
        .env("JOBSYNC_BATCH_SIZE", "many")
        .env(
            "JOBSYNC_DATABASE_URL",
            "postgres://jobsync:hunter2@db/jobsync",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // clap's own message, once: the flag with its variable, the value and
    // what is wrong, then where to find help.
    let first = stderr.lines().next().unwrap();
    assert!(
        first
            .starts_with("error: invalid value 'many' for '--batch-size <N>' (JOBSYNC_BATCH_SIZE)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let out = Command::new(BIN)
        .args(["run"])
        .env("JOBSYNC_DATABASE_URL", "mysql://jobsync:hunter2@db/jobsync")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("JOBSYNC_DATABASE_URL"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "no password in errors: {stderr}"
    );
}

/// Stops a `jobsync run` started with its standard error piped, as SIGTERM
/// does, and returns what it logged.
pub(crate) async fn terminate_and_read_log(mut worker: std::process::Child) -> String {
    Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let _ = worker.wait();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut worker.stderr.take().unwrap(), &mut text).unwrap();
        text
    })
    .await
    .unwrap()
}

/// Starts `jobsync tail …` and waits until it logs `ready` (its queue
/// exists then).
fn start_tail(env: &TestEnv, args: &[&str], ready: &str) -> std::process::Child {
    let mut tail = jobsync(env, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = tail.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let wanted = ready.to_owned();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(&wanted) {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("tail starts and logs {ready:?}"));
    tail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_a_units_notifications_as_json_lines() {
    let mut env = TestEnv::new().await;
    let tail = start_tail(
        &env,
        &["tail", "jobcenter:16700", "--count", "2"],
        "tailing the notifications of jobcenter:16700 (Hvidovre)",
    );
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    let mut v2 = snapshot(id, 1);
    v2["version"] = 2.into();
    v2["sharing"] = serde_json::json!({"scope": "internal"});
    env.publish(&[event(&v2)]).await;
    let out = tokio::task::spawn_blocking(move || tail.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "dk.jobsync.joborder.updated");
    assert!(lines[0]["data"].get("contact").is_none(), "the shared view");
    assert_eq!(lines[1]["type"], "dk.jobsync.joborder.revoked");
    for l in &lines {
        check_outbound_schema(l);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_0_and_loses_nothing() {
    let env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let events: Vec<serde_json::Value> = (0..1000)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    env.publish(&events).await;
    let mut worker = jobsync(&env, &["run", "--batch-size", "50"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_until(Duration::from_secs(30), "some are applied", |conn| {
        processed_count(conn) >= 100
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop");
    let stopped_at = processed_count(&mut env.db());
    assert!(stopped_at < 1000, "stopped mid-stream ({stopped_at})");
    // What was committed was published before the exit.
    let pending: i64 = jobsync::store::schema::outbox::table
        .count()
        .get_result(&mut env.db())
        .unwrap();
    assert_eq!(pending, 0, "the relay published what was committed");

    let mut again = jobsync(&env, &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_processed(1000, Duration::from_secs(60)).await;
    let got = responsible.take(1000, Duration::from_secs(60)).await;
    let ids: std::collections::HashSet<&str> = got.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 1000, "one notification per order, none lost");
    let _ = again.kill();
    let _ = again.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_message_fields_and_no_password() {
    let env = TestEnv::new().await;
    let worker = jobsync(&env, &["run", "--retry-total-s", "1"])
        .env("JOBSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "jobsync=debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = Uuid::new_v4();
    let message_id = Uuid::new_v4().to_string();
    env.publish(&[event_with_id(&message_id, &snapshot(id, 1))])
        .await;
    // A rejected order, sent in a trace of the hub's; a log of an order that
    // never comes, retried and then rejected, sent with no trace.
    let mut bad = snapshot(Uuid::new_v4(), 1);
    bad["employer"]["cvr"] = "12345679".into();
    let bad_id = Uuid::new_v4().to_string();
    let hub_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    env.publish_traced(
        &event_with_id(&bad_id, &bad),
        &format!("00-{hub_trace}-00f067aa0ba902b7-01"),
    )
    .await;
    let orphan = Uuid::new_v4();
    let log_id = Uuid::new_v4().to_string();
    env.publish(&[log_event_with_id(
        &log_id,
        &mediation_log(orphan, 1, vec![]),
    )])
    .await;
    env.wait_processed(1, Duration::from_secs(30)).await;
    env.take_dead_letters(2, Duration::from_secs(30)).await;
    let out = terminate_and_read_log(worker).await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["message"].is_string(), "{l}");
        // A run that went well and a clean stop: no error logged.
        assert_ne!(l["level"], "ERROR", "{l}");
    }
    let handled = lines
        .iter()
        .find(|l| l["message"] == "message handled")
        .unwrap_or_else(|| panic!("a line per message at debug: {out}"));
    let span = &handled["span"];
    assert_eq!(span["message.id"], message_id.as_str(), "{handled}");
    assert_eq!(span["job_order.id"], id.to_string());
    assert_eq!(span["job_order.version"], 1);
    assert_eq!(span["outcome"], "applied");
    assert!(span["trace_id"].is_string());
    // The broker URL carries guest:guest; the password is never logged.
    assert!(
        out.contains("amqp://guest:***@"),
        "the URL is logged, redacted"
    );
    assert!(!out.contains("guest:guest"), "{out}");

    // Every rejection line names the message, its queue, its order and its
    // trace.
    let rejected: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "message rejected")
        .collect();
    assert_eq!(rejected.len(), 2, "{out}");
    let cvr = rejected
        .iter()
        .find(|l| l["span"]["message.id"] == bad_id.as_str())
        .unwrap();
    assert_eq!(cvr["error.code"], "cvr.checksum");
    assert_eq!(
        cvr["span"]["queue"],
        env.settings.topology.joborders_queue.as_str()
    );
    assert_eq!(cvr["span"]["job_order.id"], bad["job_order_id"]);
    assert_eq!(
        cvr["span"]["trace_id"], hub_trace,
        "the hub's trace goes on"
    );
    // The retried log keeps one trace through its retry and its rejection.
    let log_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["message.id"] == log_id.as_str())
        .collect();
    let retried = log_lines
        .iter()
        .find(|l| l["message"] == "cannot apply the log yet; retrying later")
        .unwrap_or_else(|| panic!("{out}"));
    let gave_up = log_lines
        .iter()
        .find(|l| l["message"] == "message rejected")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(gave_up["error.code"], "joborder.unknown");
    assert_eq!(gave_up["span"]["job_order.id"], orphan.to_string());
    assert_eq!(
        gave_up["span"]["queue"],
        env.settings.topology.mediationlogs_queue.as_str()
    );
    assert!(retried["span"]["trace_id"].is_string());
    assert_eq!(retried["span"]["trace_id"], gave_up["span"]["trace_id"]);

    // One start-up line with the version and the settings, the password
    // hidden; one final stopped line.
    let start = &lines[0];
    assert_eq!(start["message"], "jobsync starting", "{out}");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    let settings: serde_json::Value =
        serde_json::from_str(start["settings"].as_str().unwrap()).unwrap();
    assert_eq!(
        settings["amqp"]["url"],
        "amqp://guest:***@127.0.0.1:5672/%2f"
    );
    assert_eq!(settings["retry_total_s"], 1);
    assert_eq!(lines.last().unwrap()["message"], "jobsync stopped", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_logs_to_a_file_carry_no_colour_codes() {
    let env = TestEnv::new().await;
    let worker = jobsync(&env, &["run"])
        .env("JOBSYNC_LOG_FORMAT", "pretty")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(1, Duration::from_secs(30)).await;
    let out = terminate_and_read_log(worker).await;
    assert!(out.contains("jobsync starting"), "{out}");
    assert!(out.contains("jobsync stopped"), "{out}");
    assert!(!out.contains('\u{1b}'), "no ANSI escape: {out:?}");
}

#[test]
fn usage_errors_exit_2_with_clap_s_message() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["run", "--prefetch"],
        &["dead-letters"],
        &["dead-letters", "replay"],
        &["dead-letters", "list", "--prefetch", "5"],
        &["tail"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error:")
                || stderr.starts_with("Usage:")
                || stderr.contains("\nUsage:"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("invalid setting"), "{args:?}: {stderr}");
    }
}

#[test]
fn each_command_s_help_shows_its_own_flags() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let run = help(&["run", "--help"]);
    assert!(
        run.contains("--prefetch") && run.contains("--database-url"),
        "{run}"
    );
    let list = help(&["dead-letters", "list", "--help"]);
    for own in [
        "--code",
        "--summary",
        "--json",
        "--amqp-url",
        "--dead-letters-queue",
    ] {
        assert!(list.contains(own), "{list}");
    }
    for worker in [
        "--prefetch",
        "--database-url",
        "--batch-size",
        "--http-addr",
    ] {
        assert!(!list.contains(worker), "{worker} in {list}");
    }
    let tail = help(&["tail", "--help"]);
    assert!(
        tail.contains("--pretty") && !tail.contains("--prefetch"),
        "{tail}"
    );
    let publish = help(&["publish", "--help"]);
    assert!(
        publish.contains("--hub-exchange") && !publish.contains("--database-url"),
        "{publish}"
    );
}

#[test]
fn the_tools_ignore_the_worker_s_settings() {
    // A worker setting that is wrong does not stop a tool that does not use it
    // (here `tail` fails only on the broker it cannot reach).
    let out = Command::new(BIN)
        .args(["tail", "jobcenter:15300", "--count", "1"])
        .env("JOBSYNC_PREFETCH", "lots")
        .env("JOBSYNC_DATABASE_URL", "not a url")
        .env("JOBSYNC_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Once, as a line for a person (not also as a log line).
    assert_eq!(
        stderr.matches("cannot connect to RabbitMQ").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.starts_with("jobsync: cannot connect"), "{stderr}");
    assert!(!stderr.contains("PREFETCH"), "{stderr}");
}

#[test]
fn help_never_shows_a_password_from_the_environment() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["migrate", "--help"],
        &["dead-letters", "list", "--help"],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env("JOBSYNC_AMQP_URL", "amqp://svc:s3cr3t-amqp@broker:5672/%2f")
            .env(
                "JOBSYNC_DATABASE_URL",
                "postgres://svc:s3cr3t-pg@db:5432/jobsync",
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            args.len() == 1
                || text.contains("JOBSYNC_AMQP_URL")
                || text.contains("JOBSYNC_DATABASE_URL"),
            "{args:?}: {text}"
        );
        for secret in ["s3cr3t-amqp", "s3cr3t-pg", "svc:"] {
            assert!(!text.contains(secret), "{args:?} shows {secret}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reads_pretty_json_and_arrays_from_stdin_and_tail_pretty_prints_one_line_each() {
    let mut env = TestEnv::new().await;
    let tail = start_tail(
        &env,
        &["tail", "jobcenter:16700", "--count", "3", "--pretty"],
        "tailing the notifications",
    );
    env.start_worker();

    // One pretty-printed object, then a pretty-printed array of two.
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap();
    let input = format!(
        "{}\n{}\n",
        pretty(&event(&snapshot(ids[0], 1))),
        pretty(&serde_json::json!([
            event(&snapshot(ids[1], 1)),
            event(&snapshot(ids[2], 1))
        ]))
    );
    let out = run_with_stdin(
        jobsync(&env, &["publish", "-"]).stderr(Stdio::piped()),
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "published 3 events"
    );

    let out = tokio::task::spawn_blocking(move || tail.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for id in &ids {
        let line = lines
            .iter()
            .find(|l| l.contains(&id.to_string()))
            .unwrap_or_else(|| panic!("a line for {id}: {text}"));
        // time, event, order, version, unit
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(fields[0]).is_ok(),
            "{line}"
        );
        assert_eq!(
            fields[1..],
            ["joborder.updated", &id.to_string(), "v1", "jobcenter:16700"]
        );
    }
}
