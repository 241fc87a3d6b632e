//! The worker: a supervisor that (re)connects to the broker, and per consumed
//! queue a loop that gathers deliveries into batches, applies each batch in
//! one transaction, dead-letters the rejected messages and acknowledges.

mod backoff;
mod batch;
mod deliveries;
mod relay;
mod retry;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt as _, StreamExt};
use lapin::options::BasicCancelOptions;
use lapin::types::FieldTable;
use lapin::Connection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::backoff::Backoff;
use self::deliveries::Deliveries;
use crate::amqp::publisher::Publisher;
use crate::amqp::{self, topology};
use crate::config::{redact_url, Settings};
use crate::contract::envelope::InboundType;
use crate::domain::expiry::{Clock, SystemClock};
use crate::ops::{self, Health};
use crate::store::{self, PgPool};
use crate::telemetry::events::{self, BrokerSessionLost, DeadLettersCounted, InternalEvent};

pub use batch::{classify, parse, DbFault};

/// Runs the worker until `shutdown` is cancelled: prepares the database,
/// then keeps a broker session alive, reconnecting with backoff when it drops.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_clock(settings, shutdown, Arc::new(SystemClock)).await
}

/// [`run`] with a time source of the caller's (tests set the clock).
pub async fn run_with_clock(
    settings: Settings,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let t = &settings.topology;
    let health = Health::new(&[&t.joborders_queue, &t.mediationlogs_queue]);
    ops::metrics_handle();
    events::register_queue(&t.joborders_queue);
    events::register_queue(&t.mediationlogs_queue);
    let listener = ops::listen(settings.http_addr).await?;
    let ops_pool = store::db::pool(&settings.database.url, 1)?;
    let endpoints = tokio::spawn(ops::serve(
        listener,
        health.clone(),
        ops_pool,
        shutdown.clone(),
    ));
    let pool = prepare_database(&settings, &shutdown).await?;
    let Some(pool) = pool else { return Ok(()) };
    // The read API, once the tables are there; it has a pool of its own.
    let api = match settings.api.addr.0 {
        Some(addr) => {
            let listener = crate::api::listen(addr).await?;
            let api_pool = store::db::pool(&settings.database.url, crate::api::POOL_SIZE)?;
            let api = crate::api::Api::new(api_pool, settings.api.rate_per_s);
            Some(tokio::spawn(crate::api::serve(
                listener,
                api,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let scheduler = tokio::spawn(scheduler::run(
        settings.clone(),
        pool.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    let result = supervise(&settings, &pool, &clock, &health, &shutdown).await;
    shutdown.cancel();
    let _ = scheduler.await;
    let _ = endpoints.await;
    if let Some(api) = api {
        let _ = api.await;
    }
    result
}

/// Keeps a broker session alive until `shutdown`, reconnecting with backoff.
async fn supervise(
    settings: &Settings,
    pool: &PgPool,
    clock: &Arc<dyn Clock>,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        let result = session(settings, pool, clock, health, shutdown).await;
        health.set_broker(false);
        match result {
            Ok(()) => return Ok(()),
            Err(SessionError::Fatal(e)) => return Err(e),
            Err(SessionError::Lost(e)) => {
                BrokerSessionLost.emit();
                if started.elapsed() > Duration::from_secs(30) {
                    backoff.reset();
                }
                let error = format!("{e:#}");
                let again = backoff.retry_after(shutdown, |wait| {
                    tracing::warn!(error = %error, retry_in_ms = wait.as_millis() as u64, "broker session lost; reconnecting");
                });
                if !again.await {
                    return Ok(());
                }
            }
        }
    }
}

/// How long a polite close (cancel, channel or connection close) may take
/// before the worker stops waiting for the broker's answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a close step, giving up on the broker's answer after
/// [`CLOSE_TIMEOUT`]: stopping must not hang on a slow or gone broker.
async fn bounded<T>(step: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CLOSE_TIMEOUT, step).await.ok()
}

/// Creates and migrates the database, waiting with backoff while PostgreSQL
/// does not answer. `None` when stopped before it was ready.
async fn prepare_database(
    settings: &Settings,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<PgPool>> {
    let mut backoff = Backoff::new();
    loop {
        let url = settings.database.url.clone();
        let size = settings.database.pool_size;
        let result = tokio::task::spawn_blocking(move || store::db::prepare(&url, size)).await?;
        match result {
            Ok(pool) => return Ok(Some(pool)),
            Err(e) => {
                let again = backoff.retry_after(shutdown, |wait| {
                    tracing::warn!(
                        database.url = %redact_url(&settings.database.url),
                        error = %format!("{e:#}"),
                        retry_in_ms = wait.as_millis() as u64,
                        "database not ready; retrying"
                    );
                });
                if !again.await {
                    return Ok(None);
                }
            }
        }
    }
}

#[derive(Debug)]
enum SessionError {
    /// The connection or a channel dropped: reconnect.
    Lost(anyhow::Error),
    /// Retrying cannot help (e.g. a queue declared with other arguments).
    Fatal(anyhow::Error),
}

impl From<lapin::Error> for SessionError {
    fn from(e: lapin::Error) -> Self {
        SessionError::Lost(e.into())
    }
}

/// One broker connection: declare, consume until stopped or lost.
async fn session(
    settings: &Settings,
    pool: &PgPool,
    clock: &Arc<dyn Clock>,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let connecting = amqp::connect_named(&settings.amqp.url, "jobsync");
    let connected = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        c = connecting => c,
    };
    let connection = connected.map_err(SessionError::Lost)?;
    health.set_broker(true);
    let result = consume_on(&connection, settings, pool, clock, health, shutdown).await;
    let _ = bounded(connection.close(200, "jobsync stopping".into())).await;
    result
}

async fn consume_on(
    connection: &Connection,
    settings: &Settings,
    pool: &PgPool,
    clock: &Arc<dyn Clock>,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let declare_channel = connection.create_channel().await?;
    if let Err(e) = topology::declare(&declare_channel, settings).await {
        let precondition = matches!(
            e.kind(),
            lapin::ErrorKind::ProtocolError(amqp_error)
                if matches!(amqp_error.kind(), lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::PRECONDITIONFAILED))
        );
        let e = anyhow::Error::new(e).context("declaring the topology");
        return Err(if precondition {
            SessionError::Fatal(e.context(
                "a queue exists with other arguments: JOBSYNC_DELIVERY_LIMIT or \
                 JOBSYNC_PERSONAL_DATA_RETENTION_DAYS (the dead letters' TTL) changed since \
                 it was declared, or the broker's version did; see Troubleshooting in the README",
            ))
        } else {
            SessionError::Lost(e)
        });
    }
    let _ = bounded(declare_channel.close(200, "declared".into())).await;
    tracing::info!(amqp.url = %redact_url(&settings.amqp.url), "connected to the broker; topology declared");

    let feed = Arc::new(relay::Feed::default());
    let mut consumers = Vec::new();
    for (queue, expects) in [
        (
            &settings.topology.joborders_queue,
            InboundType::JobOrderSnapshot,
        ),
        (
            &settings.topology.mediationlogs_queue,
            InboundType::MediationLogSnapshot,
        ),
    ] {
        consumers.push(Consumer {
            queue: queue.clone(),
            expects,
            settings: settings.clone(),
            pool: pool.clone(),
            publisher: Publisher::open(connection).await?,
            relay: feed.clone(),
            clock: clock.clone(),
            health: health.clone(),
        });
    }
    // Both queues on one connection, each on channels of its own; the first
    // to lose its channel ends the session, and the supervisor reconnects.
    // The relay publishes what they commit, and when they have stopped,
    // what is left.
    let done = CancellationToken::new();
    let consuming = async {
        let result = futures_util::future::try_join_all(
            consumers.iter().map(|c| c.run(connection, shutdown)),
        )
        .await;
        done.cancel();
        result.map(drop)
    };
    let working = async {
        let result = if settings.relay {
            let relaying = relay::run(settings, connection, feed.clone(), done.clone());
            tokio::try_join!(consuming, relaying).map(drop)
        } else {
            consuming.await
        };
        // Also when the relay failed first, and `consuming` was dropped.
        done.cancel();
        result
    };
    let watching = watch_dead_letters(connection, &settings.topology.dead_letters_queue, &done);
    let (result, ()) = tokio::join!(working, watching);
    if result.is_ok() {
        for c in &consumers {
            let _ = bounded(c.publisher.close()).await;
        }
    }
    result
}

/// How often the depth of the dead-letter queue is read for
/// `jobsync_dead_letters`.
const DEAD_LETTERS_EVERY: Duration = Duration::from_secs(5);

/// Keeps `jobsync_dead_letters` at the depth of `queue` until `done`: a
/// passive declare on a channel of its own every [`DEAD_LETTERS_EVERY`]. A
/// failure (the queue deleted, say) only skips a reading.
async fn watch_dead_letters(connection: &Connection, queue: &str, done: &CancellationToken) {
    let mut channel: Option<lapin::Channel> = None;
    loop {
        if channel.as_ref().is_none_or(|c| !c.status().connected()) {
            channel = connection.create_channel().await.ok();
        }
        if let Some(c) = &channel {
            let depth = c
                .queue_declare(
                    queue.into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            match depth {
                Ok(q) => DeadLettersCounted {
                    depth: q.message_count(),
                }
                .emit(),
                Err(e) => tracing::debug!(error = %e, "cannot read the depth of the dead letters"),
            }
        }
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tokio::time::sleep(DEAD_LETTERS_EVERY) => {}
        }
    }
    if let Some(c) = channel.filter(|c| c.status().connected()) {
        let _ = bounded(c.close(200, "stopping".into())).await;
    }
}

/// What the consumer's wait ended with.
enum Next {
    Stop,
    Finished(Result<Result<(), SessionError>, tokio::task::JoinError>),
    Delivery(Box<Option<Result<lapin::message::Delivery, lapin::Error>>>),
}

/// Batches of one consumer applied at once, at most.
const MAX_IN_FLIGHT: usize = 2;

/// The outcome of a batch task; its failure ends the session.
fn finished(
    done: Result<Result<(), SessionError>, tokio::task::JoinError>,
) -> Result<(), SessionError> {
    done.map_err(|e| SessionError::Lost(anyhow::anyhow!("a batch task failed: {e}")))?
}

/// One consumed queue.
#[derive(Clone)]
struct Consumer {
    queue: String,
    expects: InboundType,
    settings: Settings,
    pool: PgPool,
    publisher: Publisher,
    /// Woken after a commit that wrote outbox rows.
    relay: Arc<relay::Feed>,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
}

impl Consumer {
    async fn run(
        &self,
        connection: &Connection,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let channel = connection.create_channel().await?;
        let amqp = &self.settings.amqp;
        let mut deliveries =
            Deliveries::consume(channel, &self.queue, amqp.prefetch, amqp.prefetch_bytes).await?;
        tracing::info!(queue = %self.queue, "consuming");
        self.health.set_consuming(&self.queue, true);
        let result = self.consume(&mut deliveries, shutdown).await;
        self.health.set_consuming(&self.queue, false);
        if result.is_ok() {
            // Stopping: no new deliveries; what was in hand is handled.
            let channel = deliveries.channel();
            let tag = deliveries.tag().into();
            let _ = bounded(channel.basic_cancel(tag, BasicCancelOptions::default())).await;
            let _ = bounded(channel.close(200, "jobsync stopping".into())).await;
            tracing::info!(queue = %self.queue, "stopped consuming");
        }
        result
    }

    /// Gathers batches and handles them until stopped or lost.
    async fn consume(
        &self,
        deliveries: &mut Deliveries,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let size = self.settings.batching.size as usize;
        let wait = self.settings.batching.wait();
        // Batch tasks, in the order they were gathered, which is the order
        // they finish in here (and are acknowledged in: see `previous`).
        let mut in_flight: FuturesOrdered<tokio::task::JoinHandle<Result<(), SessionError>>> =
            FuturesOrdered::new();
        let mut previous: Option<tokio::sync::oneshot::Receiver<()>> = None;
        loop {
            // Waiting for the next delivery, notice a batch that failed (its
            // session is lost: end it now, so that the supervisor
            // reconnects).
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Next::Stop,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => Next::Finished(done),
                next = deliveries.next() => Next::Delivery(Box::new(next)),
            };
            let first = match next {
                Next::Stop => break,
                Next::Finished(done) => {
                    finished(done)?;
                    continue;
                }
                Next::Delivery(next) => *next,
            };
            let mut batch = match first {
                Some(Ok(delivery)) => vec![delivery],
                Some(Err(e)) => {
                    return Err(SessionError::Lost(
                        anyhow::Error::new(e).context("consuming"),
                    ))
                }
                None => {
                    return Err(SessionError::Lost(anyhow::anyhow!(
                        "the broker cancelled the consumer of {}",
                        self.queue
                    )))
                }
            };
            // What else is already buffered joins the batch. When nothing
            // is, the batch closes at once if the database is idle (a lone
            // message never waits); while a batch before it is still being
            // applied, it grows until that one is done or it is full (it
            // could not start sooner anyway). Only a configured wait holds
            // a batch open longer.
            let deadline = (!wait.is_zero()).then(|| Instant::now() + wait);
            let mut lost = None;
            let mut before_done = in_flight.is_empty();
            while batch.len() < size && !shutdown.is_cancelled() {
                let next = match deadline {
                    None => match deliveries.next().now_or_never() {
                        Some(next) => next,
                        None if before_done => break,
                        None => tokio::select! {
                            biased;
                            Some(done) = in_flight.next() => {
                                finished(done)?;
                                before_done = true;
                                continue;
                            }
                            next = deliveries.next() => next,
                        },
                    },
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, deliveries.next()).await {
                            Ok(next) => next,
                            Err(_) => break,
                        }
                    }
                };
                match next {
                    Some(Ok(delivery)) => batch.push(delivery),
                    Some(Err(e)) => {
                        lost = Some(anyhow::Error::new(e).context("consuming"));
                        break;
                    }
                    None => {
                        lost = Some(anyhow::anyhow!(
                            "the broker cancelled the consumer of {}",
                            self.queue
                        ));
                        break;
                    }
                }
            }
            if let Some(e) = lost {
                // Deliveries of a dead channel cannot be acknowledged; the
                // broker redelivers them and the inbox makes them duplicates.
                return Err(SessionError::Lost(e));
            }
            // The prefetch follows the sizes received so far: bytes in
            // flight stay within the budget.
            deliveries
                .fit()
                .await
                .map_err(|e| SessionError::Lost(anyhow::Error::new(e).context("re-consuming")))?;
            // Up to MAX_IN_FLIGHT batches are applied at once (the next one
            // is gathered and parsed while the database works on this one);
            // they are acknowledged in order.
            let (done, this_done) = tokio::sync::oneshot::channel();
            let before = previous.replace(this_done);
            let consumer = self.clone();
            let stop = shutdown.clone();
            in_flight.push_back(tokio::spawn(async move {
                let acked = batch::handle(&consumer, batch, &stop, before).await?;
                if acked == batch::Acked::Yes {
                    let _ = done.send(());
                }
                Ok::<(), SessionError>(())
            }));
            while in_flight.len() >= MAX_IN_FLIGHT {
                if let Some(done) = in_flight.next().await {
                    finished(done)?;
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            finished(done)?;
        }
        Ok(())
    }
}
