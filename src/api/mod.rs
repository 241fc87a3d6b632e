//! The read API (contract section 10): a unit's system searches job orders,
//! fetches one and its mediation log, and catches up with a change feed,
//! behind a token. It authenticates, loads what is stored, and asks the
//! domain for the very views the notifications carry (`domain::read`).
//!
//! It serves on its own address (`JOBSYNC_API_ADDR`) from its own small
//! connection pool, with every request bounded in time, in query length
//! and in number at once, so that a flood of requests cannot slow the
//! worker.

mod auth;
mod changes;
mod cursor;
mod joborders;
mod openapi;
mod problem;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use diesel::PgConnection;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use self::openapi::ApiDoc;
pub use self::problem::Problem;
use crate::store::PgPool;
use crate::telemetry::events::{ApiRequest, InternalEvent};

/// The longest query string answered (contract 10).
pub const MAX_QUERY_BYTES: usize = 2048;
/// Every request is answered within this, or gets `503`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; more get `503` at once (with `Retry-After`).
const MAX_IN_FLIGHT: usize = 64;
/// The API's own connections.
pub const POOL_SIZE: u32 = 4;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pool: PgPool,
    limits: Arc<auth::Limits>,
    in_flight: Arc<Semaphore>,
}

impl Api {
    pub fn new(pool: PgPool, rate_per_s: u32) -> Self {
        Api {
            pool,
            limits: auth::Limits::new(rate_per_s),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Runs `f` on a pooled connection, off the async threads. A database
    /// that is away gives `503`.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, Problem> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| {
                tracing::warn!(error = %e, "read API: no database connection");
                Problem::unavailable()
            })?;
            f(&mut conn).map_err(|e| {
                tracing::warn!(error = %e, "read API: a query failed");
                Problem::unavailable()
            })
        })
        .await
        .unwrap_or_else(|_| Err(Problem::unavailable()))
    }
}

/// Binds the API's address.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (JOBSYNC_API_ADDR): {e}"))?;
    tracing::info!(api.addr = %listener.local_addr()?, "read API listening");
    Ok(listener)
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = api.limits.clone();
    let done = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = done.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(60)) => limits.shrink(),
            }
        }
    });
    axum::serve(listener, router(api))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// The routes, with the bounds every request gets.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/joborders", get(joborders::search))
        .route("/v1/joborders/{id}", get(joborders::fetch))
        .route(
            "/v1/joborders/{id}/mediationlog",
            get(joborders::mediation_log),
        )
        .route("/v1/changes", get(changes::feed))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(|| async { Problem::route_not_found() })
        .layer(middleware::from_fn_with_state(api.clone(), bounded))
        .with_state(api)
}

/// Refuses a query string over [`MAX_QUERY_BYTES`] and more than
/// [`MAX_IN_FLIGHT`] requests at once, bounds the request in time, and
/// counts it by route and status.
async fn bounded(State(api): State<Api>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = if request
        .uri()
        .query()
        .is_some_and(|q| q.len() > MAX_QUERY_BYTES)
    {
        Problem::query_too_long(MAX_QUERY_BYTES).into_response()
    } else if let Ok(_permit) = api.in_flight.clone().try_acquire_owned() {
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => Problem::timeout().into_response(),
        }
    } else {
        Problem::busy().into_response()
    };
    ApiRequest {
        route: &route,
        status: response.status().as_u16(),
        elapsed: started.elapsed(),
    }
    .emit();
    response
}
