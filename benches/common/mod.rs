//! What the benchmarks share (`mod common;` in each): the `--bench` guard,
//! settings from the environment, an environment of a bench's own (broker
//! names and database, removed in `Drop`, also after a panic), pre-loading
//! hub snapshots, the `jobsync run` subprocess with what is measured of it,
//! and the plain per-message worker that `throughput` measures jobsync
//! against ([`baseline`]).

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use jobsync::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use jobsync::config::{Settings, Topology};
use lapin::types::FieldTable;
use lapin::Channel;
use serde_json::Value;
use uuid::Uuid;

pub mod baseline;

#[path = "../../tests/common/joborder.rs"]
mod common_joborder;
#[allow(unused_imports)] // not every bench shares orders widely
pub use common_joborder::ninety_four_jobcentres;
use common_joborder::{cloudevent, JobOrder};

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// The responsible jobcentre of every order (Brøndby).
pub const RESPONSIBLE: &str = "15300";

/// Whether `cargo bench` runs bench `name`; if not, says how to.
pub fn invoked_as_bench(name: &str) -> bool {
    if std::env::args().any(|a| a == "--bench") {
        return true;
    }
    // `cargo test --all-targets` builds and runs benches too; only
    // `cargo bench` passes --bench.
    println!("{name}: run with `cargo bench --bench {name}`");
    false
}

/// The count in environment variable `name`, or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Extra worker flags from `JOBSYNC_BENCH_WORKER_ARGS`.
pub fn worker_args() -> Vec<String> {
    std::env::var("JOBSYNC_BENCH_WORKER_ARGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Extra worker flags as printed: `(defaults)` when there are none.
pub fn describe_flags(extra: &[String]) -> String {
    if extra.is_empty() {
        "(defaults)".to_owned()
    } else {
        extra.join(" ")
    }
}

/// A new order of [`RESPONSIBLE`] shared under `scope` with the jobcentres
/// `shared`. With one jobcentre its event is about 1.7 KB, as in earlier
/// runs; the task text is the largest part.
pub fn snapshot(id: Uuid, n: usize, scope: &str, shared: &[impl AsRef<str>]) -> Value {
    JobOrder::new(id)
        .request_id(format!("ANM-{n}"))
        .title(format!("Lagermedarbejder {n}"))
        .responsible(RESPONSIBLE)
        .task_text("Pluk og pak på nathold. ".repeat(16))
        .shared(scope, shared)
        .build()
}

/// The hub's CloudEvent of snapshot `data`, with a fresh id, as a message to
/// the hub exchange of `topology`.
pub fn hub_snapshot(topology: &Topology, data: Value) -> Outgoing {
    let message_id = Uuid::new_v4().to_string();
    let body = cloudevent("dk.dfdg.joborder.snapshot", &message_id, &data);
    Outgoing {
        exchange: topology.hub_exchange.clone(),
        routing_key: "joborder.snapshot".into(),
        properties: cloudevent_properties(&message_id, FieldTable::default()),
        body: body.to_string().into_bytes(),
        mandatory: true,
    }
}

/// Publishes `messages` under pipelined confirms, 1,000 in flight at most.
pub async fn publish_confirmed(publisher: &Publisher, messages: &[Outgoing]) {
    for chunk in messages.chunks(1000) {
        publisher.publish_all(chunk).await.unwrap();
    }
}

/// Declares queue `queue` of the bench's own (exclusive: it goes with the
/// channel's connection) and binds it to `exchange` with `pattern`.
pub async fn bind_queue(ch: &Channel, queue: &str, exchange: &str, pattern: &str) {
    jobsync::amqp::topology::watch(ch, queue, exchange, pattern)
        .await
        .unwrap();
}

/// Stores `n` open orders of [`RESPONSIBLE`] straight into the database of
/// `conn` (migrated), as the worker would have: a real snapshot, canonical as
/// the worker stores it, copied into every row with the row's own id. The
/// first `due` have a mediation deadline in early 2026, the rest in 2027 and
/// 2028, and a tenth of the rest are closed.
pub fn store_orders(conn: &mut PgConnection, n: usize, due: usize) {
    let template = Uuid::new_v4();
    let data = snapshot(template, 0, "neighbours", &["16700"]);
    let order = jobsync::domain::joborder::parse(&data.to_string(), Some(&template.to_string()))
        .expect("the bench's snapshot is valid");
    let wire = serde_json::to_value(&order.wire).unwrap();
    diesel::sql_query(
        "INSERT INTO job_orders (id, version, content_hash, origin, changed_by_kind, title, \
           occupation_name, employer_cvr, employer_name, employer_conflict_affected, \
           responsible_unit_type, responsible_unit_code, coordinator_allowed, tasks, continuous, \
           positions, mediation_deadline, status, sharing_scope, created_at, updated_at, \
           coordinator_allowed_since, responsible_since, snapshot) \
         SELECT id, 1, '\\x00', 'unit', 'system', 'T', 'O', '10150817', 'E', false, 'jobcenter', \
           '15300', true, 'tasks', false, 1, \
           CASE WHEN g <= $2 THEN date '2026-01-01' + (g % 28)::int \
                ELSE date '2027-01-01' + (g % 700)::int END, \
           CASE WHEN g % 10 = 0 AND g > $2 THEN 'closed' ELSE 'open' END, 'neighbours', \
           now(), now(), now(), now(), jsonb_set($3, '{job_order_id}', to_jsonb(id::text))::json \
         FROM (SELECT gen_random_uuid() AS id, g FROM generate_series(1, $1) g) s",
    )
    .bind::<diesel::sql_types::BigInt, _>(n as i64)
    .bind::<diesel::sql_types::BigInt, _>(due as i64)
    .bind::<diesel::sql_types::Jsonb, _>(wire)
    .execute(conn)
    .unwrap();
}

/// A database and broker names of the bench's own, and the flags that point
/// a worker at them. Dropping it removes both.
pub struct BenchEnv {
    /// The prefix of the broker names, also the worker log's name.
    pub prefix: String,
    pub db_url: String,
    /// The broker, in a virtual host of the bench's own when it has one.
    pub amqp_url: String,
    /// That virtual host, deleted with the environment.
    vhost: Option<String>,
    /// The worker's operations endpoints.
    pub http_port: u16,
    pub settings: Settings,
    /// The worker's global flags: database, HTTP address, topology, then
    /// the extra flags.
    pub args: Vec<String>,
    /// Kept from the first time the database answers.
    db: Option<PgConnection>,
}

impl BenchEnv {
    pub fn new(extra: &[String]) -> BenchEnv {
        BenchEnv::build(extra, None)
    }

    /// An environment in a RabbitMQ virtual host of its own (made with
    /// `rabbitmqctl`, as scripts/services runs it), with the default names.
    pub fn with_vhost(extra: &[String]) -> BenchEnv {
        let vhost = format!(
            "jobsync-bench-{}",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        BenchEnv::build(extra, Some(vhost))
    }

    fn build(extra: &[String], vhost: Option<String>) -> BenchEnv {
        let id = Uuid::new_v4().simple().to_string();
        let prefix = format!("bench{}", &id[..8]);
        let db_url = format!("{PG_SERVER}/jobsync_bench_{}", &id[..12]);
        let amqp_url = match &vhost {
            Some(v) => format!("amqp://guest:guest@127.0.0.1:5672/{v}"),
            None => AMQP_URL.to_owned(),
        };
        let http_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut settings = jobsync::config::worker_settings::<_, &str>([]).unwrap();
        if vhost.is_none() {
            settings.topology = settings.topology.with_prefix(&prefix);
        }
        let mut args: Vec<String> = vec!["--database-url".into(), db_url.clone()];
        args.extend(["--amqp-url".into(), amqp_url.clone()]);
        args.extend(["--http-addr".into(), format!("127.0.0.1:{http_port}")]);
        args.extend(settings.topology.as_args());
        args.extend_from_slice(extra);
        BenchEnv {
            prefix,
            db_url,
            amqp_url,
            vhost,
            http_port,
            settings,
            args,
            db: None,
        }
    }

    /// Whether the worker answers `/readyz` with 200.
    pub fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    }

    /// Waits until the worker is ready (consuming), at most `timeout`.
    pub fn wait_ready(&self, timeout: Duration) {
        let started = Instant::now();
        while !self.ready() {
            assert!(
                started.elapsed() < timeout,
                "the worker was not ready in {timeout:?}; see {}",
                self.log_path().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.settings.topology
    }

    /// A connection to RabbitMQ named `name`, with the topology declared.
    pub async fn connect(&self, name: &str) -> lapin::Connection {
        let conn = jobsync::amqp::connect(&self.amqp_url, name)
            .await
            .expect("RabbitMQ answers (scripts/services)");
        let ch = conn.create_channel().await.unwrap();
        jobsync::amqp::topology::declare(&ch, &self.settings)
            .await
            .unwrap();
        conn
    }

    /// Publishes `n` snapshots made by `data` to the hub exchange, under
    /// pipelined confirms in groups of 1,000; says their average size on a
    /// line starting with `indent`. Returns the publish rate in msg/s.
    pub async fn preload(
        &self,
        conn: &lapin::Connection,
        n: usize,
        data: impl Fn(Uuid, usize) -> Value,
        indent: &str,
    ) -> f64 {
        let publisher = Publisher::open(conn).await.unwrap();
        let messages: Vec<Outgoing> = (0..n)
            .map(|i| hub_snapshot(self.topology(), data(Uuid::new_v4(), i)))
            .collect();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        println!(
            "{indent}pre-loading {n} snapshots of {} bytes on average",
            bytes / n
        );
        let started = Instant::now();
        publish_confirmed(&publisher, &messages).await;
        n as f64 / started.elapsed().as_secs_f64()
    }

    /// Where the worker logs (JSON lines).
    pub fn log_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}.log", self.prefix))
    }

    /// Starts one `jobsync run` (the release binary, or the one
    /// `JOBSYNC_BENCH_BINARY` names, such as the previous release to compare
    /// with in the same run), as an operator would.
    pub fn start_worker(&self) -> Worker {
        let log = std::fs::File::create(self.log_path()).unwrap();
        let started = Instant::now();
        let binary = std::env::var_os("JOBSYNC_BENCH_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_jobsync").into());
        let child = Command::new(binary)
            .arg("run")
            .args(&self.args)
            .env("JOBSYNC_LOG_FORMAT", "json")
            // No read API (an older binary ignores the variable).
            .env("JOBSYNC_API_ADDR", "")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the jobsync binary runs");
        Worker {
            child,
            started,
            peak_kb: 0,
            status: None,
        }
    }

    fn db(&mut self) -> Option<&mut PgConnection> {
        if self.db.is_none() {
            self.db = PgConnection::establish(&self.db_url).ok();
        }
        self.db.as_mut()
    }

    /// How many hub messages the worker has committed (0 while its database
    /// is not there yet).
    pub fn processed(&mut self) -> usize {
        use jobsync::store::schema::processed_messages::dsl::processed_messages;
        self.db().map_or(0, |conn| {
            let count: i64 = processed_messages.count().get_result(conn).unwrap_or(0);
            count as usize
        })
    }

    /// Seconds from the first to the last commit of `processed_messages`.
    pub fn commit_span_s(&mut self) -> Option<f64> {
        #[derive(QueryableByName)]
        struct Span {
            #[diesel(sql_type = diesel::sql_types::Double)]
            seconds: f64,
        }
        let span: Span = diesel::sql_query(
            "SELECT extract(epoch FROM max(processed_at) - min(processed_at))::float8 AS seconds FROM processed_messages",
        )
        .get_result(self.db()?)
        .ok()?;
        Some(span.seconds)
    }
}

impl Drop for BenchEnv {
    fn drop(&mut self) {
        self.db = None;
        let name = self.db_url.rsplit('/').next().unwrap().to_owned();
        jobsync::commands::remove_environment(
            &self.amqp_url,
            &self.settings.topology,
            PG_SERVER,
            &name,
        );
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
        }
    }
}

/// A running `jobsync run`; dropping it stops it with SIGTERM.
pub struct Worker {
    child: Child,
    started: Instant,
    peak_kb: u64,
    status: Option<ExitStatus>,
}

/// What [`Worker::wait_applied`] saw.
pub struct Waited {
    /// When every message was applied, since the worker started.
    pub applied_at: Option<Duration>,
    /// Whether the timeout passed first.
    pub timed_out: bool,
}

impl Worker {
    /// Time since the worker started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// CPU time the worker has used so far, in seconds.
    pub fn cpu_s(&self) -> f64 {
        cpu_s(self.child.id()).unwrap_or(0.0)
    }

    /// The worker's peak resident memory in kB, as far as sampled.
    pub fn peak_kb(&self) -> u64 {
        self.peak_kb
    }

    /// The worker's peak resident memory since it started, in kB (the
    /// kernel's high-water mark).
    pub fn high_water_kb(&self) -> u64 {
        vm_hwm_kb(self.child.id()).unwrap_or(0)
    }

    /// Polls every `every`, sampling the peak resident memory, until the
    /// worker has applied `n` messages of `env` and `also()` holds, or
    /// `timeout` has passed since the worker started.
    pub fn wait_applied(
        &mut self,
        env: &mut BenchEnv,
        n: usize,
        every: Duration,
        timeout: Duration,
        also: impl Fn() -> bool,
    ) -> Waited {
        let mut applied_at = None;
        loop {
            std::thread::sleep(every);
            self.peak_kb = self.peak_kb.max(vm_hwm_kb(self.child.id()).unwrap_or(0));
            if applied_at.is_none() && env.processed() >= n {
                applied_at = Some(self.elapsed());
            }
            if applied_at.is_some() && also() {
                return Waited {
                    applied_at,
                    timed_out: false,
                };
            }
            if self.elapsed() > timeout {
                return Waited {
                    applied_at,
                    timed_out: true,
                };
            }
        }
    }

    /// Sends SIGTERM and waits for the worker to exit.
    pub fn stop(&mut self) -> ExitStatus {
        if self.status.is_none() {
            self.status = Some(self.terminate().unwrap());
        }
        self.status.unwrap()
    }

    fn terminate(&mut self) -> std::io::Result<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Also on a panic, so without a second one.
        if self.status.is_none() {
            let _ = self.terminate();
        }
    }
}

/// Runs `rabbitmqctl` as scripts/services does: directly as root, through
/// `sudo -n` otherwise.
pub fn rabbitmqctl(args: &[&str]) {
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
        .arg("--quiet")
        .output()
        .expect("rabbitmqctl runs (scripts/services installs RabbitMQ)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CPU time (user and system) process `pid` has used, in seconds (Linux).
pub fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14,
    // stime 15 (clock ticks, 100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU time all processes of the machine have used (every state but idle
/// and iowait), in seconds (Linux).
pub fn machine_busy_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy as f64 / 100.0
}

/// Peak resident set size of process `pid`, in kB (Linux).
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
