//! Workers as processes that can be killed, a publisher that outlives a broker restart, and the faults of a run.

use super::*;

/// Publishes `messages` to the hub exchange under confirms, in chunks; a
/// chunk that fails (the broker went away) is published again on a new
/// connection once the broker answers, so some messages may go twice, as
/// they would from the hub.
pub async fn publish_resiliently(exchange: &str, messages: &[Message]) {
    let mut publisher: Option<(lapin::Connection, Publisher)> = None;
    for chunk in messages.chunks(250) {
        let outgoing: Vec<Outgoing> = chunk
            .iter()
            .map(|m| Outgoing {
                exchange: exchange.to_owned(),
                routing_key: m.routing_key().to_owned(),
                properties: BasicProperties::default()
                    .with_content_type("application/cloudevents+json".into())
                    .with_message_id(m.id.as_str().into())
                    .with_delivery_mode(2),
                body: m.body.clone(),
                mandatory: true,
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if publisher.is_none() {
                if let Ok(conn) = jobsync::amqp::connect(AMQP_URL, "chaos publisher").await {
                    if let Ok(p) = Publisher::open(&conn).await {
                        publisher = Some((conn, p));
                    }
                }
            }
            if let Some((_, p)) = &publisher {
                if p.publish_all(&outgoing).await.is_ok() {
                    break;
                }
                publisher = None;
            }
            assert!(
                Instant::now() < deadline,
                "the broker came back within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    if let Some((conn, _)) = publisher {
        let _ = conn.close(200, "published".into()).await;
    }
}

/// A worker run as a process of its own (the test binary's `jobsync`), so
/// that it can be killed with SIGKILL.
pub struct Process {
    pub(super) child: Child,
}

impl Process {
    /// Starts `jobsync <args> <extra> run`, logging (warnings and up) to
    /// `log`, appended.
    pub fn start(args: &[String], extra: &[&str], log: &PathBuf) -> Process {
        Process::start_logging(args, extra, log, "warn")
    }

    /// [`Process::start`] with `RUST_LOG` set to `filter`.
    pub fn start_logging(args: &[String], extra: &[&str], log: &PathBuf, filter: &str) -> Process {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the log file opens");
        let child = Command::new(env!("CARGO_BIN_EXE_jobsync"))
            .arg("run")
            .args(args)
            .args(extra)
            .env("JOBSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .expect("the jobsync binary starts");
        Process { child }
    }

    /// Kills it with SIGKILL, as the kernel's OOM killer or a pulled plug
    /// would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running (it exits only when it is told to).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it as SIGTERM does and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the worker stopped within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A log file for a test's worker processes, under the target directory.
pub fn log_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}-{}.log", Uuid::new_v4().simple()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Publishes `stream` to one worker process and, each time the processed
/// messages reach the next of `points`, calls `fault` with the worker and
/// its log (an outage to wait out, or a kill and a restart); then waits for
/// everything to be applied and published, checks the worker still runs and
/// exits 0 on SIGTERM, and returns what the oracle and the log say is
/// wrong (nothing, when the run kept every guarantee). `errors_expected`:
/// whether the faults are ones the worker logs at ERROR (an outage).
pub async fn run_with_faults(
    env: &TestEnv,
    stream: &Stream,
    name: &str,
    points: &[i64],
    errors_expected: bool,
    mut fault: impl AsyncFnMut(&mut Process, &PathBuf),
) -> Vec<String> {
    let watch = Watch::declare(env).await;
    let log = log_path(name);
    let mut worker = Process::start(&env.args, &[], &log);
    let exchange = env.settings.topology.hub_exchange.clone();
    let messages = stream.messages.clone();
    let publishing = tokio::spawn(async move { publish_resiliently(&exchange, &messages).await });
    for (n, &point) in points.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let processed = progress(env).map_or(0, |p| p.processed);
            if processed >= point {
                break;
            }
            assert!(worker.running(), "the worker exited by itself; see {log:?}");
            assert!(
                Instant::now() < deadline,
                "seed {}: stuck at {processed} processed before fault {}; see {log:?}",
                stream.seed,
                n + 1
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        fault(&mut worker, &log).await;
        assert!(
            worker.running(),
            "the worker outlived fault {}; see {log:?}",
            n + 1
        );
    }
    publishing.await.expect("the stream is published");
    wait_done(env, stream, Duration::from_secs(600)).await;
    assert!(
        worker.running(),
        "the worker outlived every fault; see {log:?}"
    );
    let status = worker.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; see {log:?}");
    let mut found = discrepancies(env, stream, &watch).await;
    found.extend(log_discrepancies(&log, errors_expected));
    watch.delete().await;
    if found.is_empty() {
        let _ = std::fs::remove_file(&log);
    }
    found
}

/// What the workers' log says went wrong that the end state cannot show:
/// a batch of these valid messages that failed on a healthy database and
/// was applied message by message (slow, and a sign of a write the batch
/// cannot take), or a panic; and, unless the run's faults make some
/// expected (an outage), any line logged at ERROR.
pub fn log_discrepancies(log: &PathBuf, errors_expected: bool) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.contains("applying its messages one by one")
                || l.contains("panicked")
                || (!errors_expected && l.contains(r#""level":"ERROR""#))
        })
        .take(10)
        .map(|l| format!("worker log: {}", l.chars().take(400).collect::<String>()))
        .collect()
}
