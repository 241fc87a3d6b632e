//! The operations endpoints (section 8) on `JOBSYNC_HTTP_ADDR`: `/healthz`,
//! `/readyz` and `/metrics` (Prometheus text format), and what they report:
//! the state the worker keeps as it runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use diesel::RunQueryDsl;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::store::PgPool;
use crate::telemetry::events::{InternalEvent, OutboxBacklog};

/// What `/readyz` reports on, kept up to date by the worker.
#[derive(Debug, Default)]
pub struct Health {
    broker: Mutex<bool>,
    /// Consumed queue → consuming now.
    consumers: Mutex<BTreeMap<String, bool>>,
}

impl Health {
    /// A health record expecting consumers on `queues`.
    pub fn new(queues: &[&str]) -> Arc<Health> {
        Arc::new(Health {
            broker: Mutex::new(false),
            consumers: Mutex::new(queues.iter().map(|q| (q.to_string(), false)).collect()),
        })
    }

    pub fn set_broker(&self, up: bool) {
        *self.broker.lock().expect("health lock") = up;
    }

    pub fn set_consuming(&self, queue: &str, up: bool) {
        self.consumers
            .lock()
            .expect("health lock")
            .insert(queue.to_owned(), up);
    }

    /// What is down besides the database, by name.
    fn down(&self) -> Vec<String> {
        let mut down = Vec::new();
        if !*self.broker.lock().expect("health lock") {
            down.push("broker".to_owned());
        }
        for (queue, up) in self.consumers.lock().expect("health lock").iter() {
            if !up {
                down.push(format!("consumer {queue}"));
            }
        }
        down
    }
}

/// The process's Prometheus recorder, installed once (tests run several
/// workers in one process; they share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let sizes = [
                1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("jobsync_apply_duration_seconds".into()),
                    &seconds,
                )
                .expect("buckets are not empty")
                .set_buckets_for_metric(Matcher::Full("jobsync_batch_size".into()), &sizes)
                .expect("buckets are not empty")
                .set_buckets_for_metric(
                    Matcher::Full("jobsync_end_to_end_lag_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        300.0, 900.0, 3600.0,
                    ],
                )
                .expect("buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            crate::telemetry::events::describe();
            process_collector().describe();
            handle
        })
        .clone()
}

/// The process metrics (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`,
/// `process_start_time_seconds`, …), read at each scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

#[derive(Clone)]
struct Ops {
    health: Arc<Health>,
    pool: PgPool,
    metrics: PrometheusHandle,
}

/// Listens on `addr` (`JOBSYNC_HTTP_ADDR`): at start-up, so that a taken
/// address stops the worker at once.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (JOBSYNC_HTTP_ADDR): {e}"))?;
    tracing::info!(http.addr = %listener.local_addr()?, "operations endpoints listening");
    Ok(listener)
}

/// Serves the endpoints on `listener` until `shutdown`. `pool` is the
/// endpoints' own (one connection), so that a busy worker does not make
/// `/readyz` wait.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    pool: PgPool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = Ops {
        health,
        pool,
        metrics: metrics_handle(),
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let mut down = Vec::new();
    if !database_answers(&ops.pool).await {
        down.push("database".to_owned());
    }
    down.extend(ops.health.down());
    if down.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "down": down})),
        )
            .into_response()
    }
}

/// `SELECT 1` within a second.
async fn database_answers(pool: &PgPool) -> bool {
    let pool = pool.clone();
    let check = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).ok()
    });
    matches!(
        tokio::time::timeout(Duration::from_secs(1), check).await,
        Ok(Ok(Some(_)))
    )
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    // The outbox gauges, fresh: any instance can answer, relay or not.
    let pool = ops.pool.clone();
    let backlog = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().ok()?;
        crate::store::outbox::backlog(&mut conn).ok()
    });
    if let Ok(Ok(Some((pending, age)))) =
        tokio::time::timeout(Duration::from_secs(1), backlog).await
    {
        OutboxBacklog {
            pending,
            oldest_age_s: age,
        }
        .emit();
    }
    process_collector().collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
        .into_response()
}
