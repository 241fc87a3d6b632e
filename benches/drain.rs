//! Drain benchmark: pre-loads N job order snapshots (default 20,000; set
//! `JOBSYNC_BENCH_MESSAGES`) into a queue of its own, then starts one
//! `jobsync run` (the real binary) and measures how fast it applies them.
//! Extra worker flags go in `JOBSYNC_BENCH_WORKER_ARGS`.
//!
//!     scripts/services && cargo bench --bench drain
//!
//! It uses its own database and broker names and removes them afterwards.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use jobsync::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use lapin::types::FieldTable;
use serde_json::json;
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn snapshot(id: Uuid, n: usize) -> serde_json::Value {
    json!({
        "job_order_id": id.to_string(),
        "version": 1,
        "request_id": format!("ANM-{n}"),
        "origin": "unit",
        "changed_by": {"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}},
        "title": format!("Lagermedarbejder {n}"),
        "occupation": {"name": "Lagermedarbejder", "alias": null, "code": "932920"},
        "employer": {"cvr": "10150817", "p_number": "1003456789", "name": "Brøndby Lager ApS"},
        "contact": {"name": "Søren Østergård", "email": "soeren@brondbylager.dk", "phone": "43212345"},
        "responsible_unit": {"type": "jobcenter", "code": "15300"},
        "coordinator": {"id": "c-17", "name": "Åse Nørgaard"},
        "coordinator_allowed": true,
        "descriptions": {
            "tasks": "Pluk og pak på nathold. ".repeat(20),
            "qualifications_and_pay": "Truckcertifikat. Løn efter overenskomst.",
            "working_hours": "37 timer, nat"
        },
        "continuous": false,
        "positions": 3,
        "expected_start": "2027-01-04",
        "mediation_deadline": "2026-12-18",
        "status": "open",
        "sharing": {"scope": "neighbours", "units": [{"type": "jobcenter", "code": "16700"}]},
        "created_at": "2026-11-20T08:00:00Z",
        "updated_at": "2026-11-22T09:00:00Z"
    })
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` builds and runs benches too; only
        // `cargo bench` passes --bench.
        println!("drain: run with `cargo bench --bench drain`");
        return;
    }
    let n: usize = std::env::var("JOBSYNC_BENCH_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let extra: Vec<String> = std::env::var("JOBSYNC_BENCH_WORKER_ARGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = Uuid::new_v4().simple().to_string();
    let prefix = format!("bench{}", &id[..8]);
    let db_url = format!("{PG_SERVER}/jobsync_bench_{}", &id[..12]);
    let mut args: Vec<String> = vec!["--database-url".into(), db_url.clone()];
    args.extend(["--http-addr".into(), "127.0.0.1:0".into()]);
    let mut settings = jobsync::config::parse_cli(["jobsync", "run"])
        .unwrap()
        .settings;
    settings.topology = settings.topology.with_prefix(&prefix);
    args.extend(settings.topology.as_args());

    // Pre-load the queue.
    let publish_rate = rt.block_on(async {
        let conn = jobsync::amqp::connect(AMQP_URL, "jobsync bench")
            .await
            .expect("RabbitMQ answers (scripts/services)");
        let ch = conn.create_channel().await.unwrap();
        jobsync::amqp::topology::declare(&ch, &settings.topology, settings.amqp.delivery_limit)
            .await
            .unwrap();
        let publisher = Publisher::open(&conn).await.unwrap();
        let messages: Vec<Outgoing> = (0..n)
            .map(|i| {
                let order = Uuid::new_v4();
                let message_id = Uuid::new_v4().to_string();
                let body = json!({
                    "specversion": "1.0", "id": message_id, "source": "/dfdg",
                    "type": "dk.dfdg.joborder.snapshot", "subject": order.to_string(),
                    "datacontenttype": "application/json", "data": snapshot(order, i)
                });
                Outgoing {
                    exchange: settings.topology.hub_exchange.clone(),
                    routing_key: "joborder.snapshot".into(),
                    properties: cloudevent_properties(&message_id, FieldTable::default()),
                    body: body.to_string().into_bytes(),
                    mandatory: true,
                }
            })
            .collect();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        println!(
            "pre-loading {n} snapshots of {} bytes on average",
            bytes / n
        );
        let started = Instant::now();
        for chunk in messages.chunks(1000) {
            publisher.publish_all(chunk).await.unwrap();
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        conn.close(200, "loaded".into()).await.unwrap();
        rate
    });
    println!("broker: persistent publishes with pipelined confirms: {publish_rate:.0} msg/s");

    // One `jobsync run`, as an operator would start it.
    let log = std::fs::File::create(std::env::temp_dir().join(format!("{prefix}.log"))).unwrap();
    let started = Instant::now();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_jobsync"))
        .args(&args)
        .args(&extra)
        .arg("run")
        .env("JOBSYNC_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the jobsync binary runs");
    let mut peak_kb = 0u64;
    let done = loop {
        std::thread::sleep(Duration::from_millis(100));
        peak_kb = peak_kb.max(vm_hwm_kb(worker.id()).unwrap_or(0));
        if let Ok(mut conn) = PgConnection::establish(&db_url) {
            use jobsync::store::schema::processed_messages::dsl::*;
            let count: i64 = processed_messages
                .count()
                .get_result(&mut conn)
                .unwrap_or(0);
            if count as usize >= n {
                break started.elapsed();
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!("the drain did not finish in 10 minutes");
        }
    };
    #[derive(QueryableByName)]
    struct Span {
        #[diesel(sql_type = diesel::sql_types::Double)]
        seconds: f64,
    }
    let mut conn = PgConnection::establish(&db_url).unwrap();
    let span: Span = diesel::sql_query(
        "SELECT extract(epoch FROM max(processed_at) - min(processed_at))::float8 AS seconds FROM processed_messages",
    )
    .get_result(&mut conn)
    .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let status = worker.wait().unwrap();

    println!("jobsync run drained {n} snapshots:");
    println!(
        "  applied (first to last commit): {:.0} msg/s over {:.2} s",
        n as f64 / span.seconds,
        span.seconds
    );
    println!(
        "  wall clock from process start:  {:.0} msg/s over {:.2} s",
        n as f64 / done.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "  worker peak resident memory:    {:.1} MB",
        peak_kb as f64 / 1024.0
    );
    println!("  worker exit after SIGTERM:      {status}");
    println!(
        "  worker flags: {}",
        if extra.is_empty() {
            "(defaults)".to_owned()
        } else {
            extra.join(" ")
        }
    );

    // Clean up.
    drop(conn);
    rt.block_on(async {
        let conn = jobsync::amqp::connect(AMQP_URL, "jobsync bench cleanup")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let _ = jobsync::amqp::topology::delete(&ch, &settings.topology).await;
        let _ = conn.close(200, "done".into()).await;
    });
    let mut admin = PgConnection::establish(&format!("{PG_SERVER}/postgres")).unwrap();
    let name = db_url.rsplit('/').next().unwrap();
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin);
}

/// Peak resident set size of process `pid`, in kB (Linux).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
