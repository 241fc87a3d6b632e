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

use crate::domain::fanout::Lifecycle;
use crate::store::PgPool;

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
            describe();
            handle
        })
        .clone()
}

/// HELP texts, and every series at zero so that dashboards and alerts see
/// them before the first event.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "jobsync_messages_total",
        "Inbound messages by queue and outcome (applied, stale, duplicate, rejected, retried)."
    );
    describe_histogram!(
        "jobsync_apply_duration_seconds",
        Unit::Seconds,
        "Time to apply one batch in one transaction, database retries included."
    );
    describe_histogram!("jobsync_batch_size", Unit::Count, "Deliveries per batch.");
    describe_gauge!(
        "jobsync_outbox_pending",
        "Notifications and events committed and not yet published."
    );
    describe_gauge!(
        "jobsync_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest unpublished outbox row (0 when empty)."
    );
    describe_counter!(
        "jobsync_notifications_published_total",
        "Notifications to units the relay published and the broker confirmed, by event."
    );
    describe_counter!(
        "jobsync_events_published_total",
        "Lifecycle events the relay published to the events exchange and the broker confirmed, by event."
    );
    describe_counter!(
        "jobsync_expired_total",
        "Orders expired because their mediation deadline passed."
    );
    describe_counter!(
        "jobsync_cpr_redactions_total",
        "CPR numbers replaced by [CPR] in outbound views, counted once committed."
    );
    describe_counter!(
        "jobsync_broker_reconnects_total",
        "Broker sessions lost and reconnected."
    );
    for event in [
        "joborder.updated",
        "joborder.revoked",
        "joborder.expired",
        "mediationlog.updated",
    ] {
        metrics::counter!("jobsync_notifications_published_total", "event" => event).increment(0);
    }
    for event in Lifecycle::ALL {
        metrics::counter!("jobsync_events_published_total", "event" => event.as_str()).increment(0);
    }
    describe_gauge!(
        "jobsync_build_info",
        "Always 1; the version of the running jobsync in the label."
    );
    describe_counter!(
        "jobsync_rejections_total",
        "Inbound messages rejected to the dead letters, by error code."
    );
    describe_gauge!(
        "jobsync_dead_letters",
        "Messages in the dead-letter queue (read every 5 s)."
    );
    describe_histogram!(
        "jobsync_end_to_end_lag_seconds",
        Unit::Seconds,
        "From the hub's `time` of a message to the broker's confirm of a notification or event it caused."
    );
    metrics::gauge!("jobsync_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for code in crate::contract::rejection::ErrorCode::ALL {
        metrics::counter!("jobsync_rejections_total", "code" => code.as_str()).increment(0);
    }
    metrics::gauge!("jobsync_dead_letters").set(0.0);
    // Histograms show from start-up with empty buckets.
    for name in [
        "jobsync_apply_duration_seconds",
        "jobsync_batch_size",
        "jobsync_end_to_end_lag_seconds",
    ] {
        drop(metrics::histogram!(name));
    }
    process_collector().describe();
    metrics::counter!("jobsync_expired_total").increment(0);
    metrics::counter!("jobsync_cpr_redactions_total").increment(0);
    metrics::counter!("jobsync_broker_reconnects_total").increment(0);
    metrics::gauge!("jobsync_outbox_pending").set(0.0);
    metrics::gauge!("jobsync_outbox_oldest_age_seconds").set(0.0);
}

/// Every `jobsync_messages_total` series of `queue` at zero.
pub fn register_queue(queue: &str) {
    for outcome in ["applied", "stale", "duplicate", "rejected", "retried"] {
        metrics::counter!("jobsync_messages_total", "queue" => queue.to_owned(), "outcome" => outcome)
            .increment(0);
    }
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
        metrics::gauge!("jobsync_outbox_pending").set(pending as f64);
        metrics::gauge!("jobsync_outbox_oldest_age_seconds").set(age);
    }
    process_collector().collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
        .into_response()
}
