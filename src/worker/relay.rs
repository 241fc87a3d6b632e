//! The outbox relay: publishes committed notifications and events in id
//! order, pipelined under publisher confirms, and deletes each batch of rows
//! once the broker confirmed all of it.
//!
//! Only one instance publishes at a time: the one holding the relay's
//! session advisory lock on a connection kept for it. When it stops or its
//! connection drops, the lock is released and another instance takes over.
//! A row published but not yet deleted when an instance dies is published
//! again by the next: notifications are at least once, with the same id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::{Connection as _, PgConnection};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::Connection;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SessionError;
use crate::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use crate::config::{redact_url, Settings};
use crate::store::outbox::{self, Pending};
use crate::telemetry::events::{InternalEvent, OutboxBacklog, Published};

/// Rows published per round.
const ROWS_PER_ROUND: i64 = 1000;
/// How often an idle relay looks for rows other instances committed.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often a standby instance tries to become the relay.
const STANDBY_POLL: Duration = Duration::from_secs(1);

type Shared = Arc<Mutex<PgConnection>>;

/// What this instance's batches hand the relay once committed: the outbox
/// rows they wrote, with their ids. While this instance leads, the relay
/// publishes them without reading them back, after checking that no other
/// row up to the highest of them waits in the outbox (a row of another
/// instance, or one it was not handed); if one does, it reads the outbox in
/// id order as always. Either way rows go out in id order, and rows of one
/// order in the order they were committed (its lock orders them).
#[derive(Default)]
pub(super) struct Feed {
    rows: Mutex<Handed>,
    /// Whether this instance's relay leads: only then are rows kept.
    leading: AtomicBool,
    wake: Notify,
}

/// Rows the feed keeps at most; beyond, the relay reads them from the outbox.
const FEED_LIMIT: usize = 20_000;

/// The rows handed over since the relay last took them.
#[derive(Default)]
struct Handed {
    rows: Vec<Pending>,
    /// Whether some transaction among them found older rows of its orders
    /// in the outbox: then the relay checks for rows it was not handed.
    check: bool,
}

impl Feed {
    /// Hands over the rows of a committed transaction (in id order) and
    /// wakes the relay. `alone`: the outbox held no other row of their
    /// orders when the transaction wrote them (every older row of those
    /// orders was published and deleted), so they may go out before rows of
    /// other orders written earlier, without a look at the outbox.
    pub(super) fn committed(&self, rows: Vec<Pending>, alone: bool) {
        if rows.is_empty() {
            return;
        }
        if self.leading.load(Ordering::Acquire) {
            let mut kept = self.rows.lock().expect("the feed is not poisoned");
            if kept.rows.len() + rows.len() <= FEED_LIMIT {
                kept.rows.extend(rows);
                kept.check |= !alone;
            }
        }
        self.wake.notify_one();
    }

    /// The rows handed over since the last call, in id order, and whether
    /// the outbox must be checked for older rows before they go out.
    fn take(&self) -> (Vec<Pending>, bool) {
        let Handed { mut rows, check } =
            std::mem::take(&mut *self.rows.lock().expect("the feed is not poisoned"));
        // Transactions commit in any order; their rows are sorted by id.
        rows.sort_by_key(|r| r.id);
        (rows, check)
    }

    /// Starts or stops keeping rows.
    fn lead(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
        if !leading {
            *self.rows.lock().expect("the feed is not poisoned") = Handed::default();
        }
    }
}

/// Runs the relay until `done` (the consumers have stopped) and nothing is
/// left to publish, or the broker session is lost. `feed` brings the rows
/// of this instance's commits.
pub(super) async fn run(
    settings: &Settings,
    connection: &Connection,
    feed: Arc<Feed>,
    done: CancellationToken,
) -> Result<(), SessionError> {
    let publisher = Publisher::open(connection).await?;
    let result = relay(settings, &publisher, feed, done).await;
    if result.is_ok() {
        let _ = super::bounded(publisher.close()).await;
    }
    result
}

async fn relay(
    settings: &Settings,
    publisher: &Publisher,
    feed: Arc<Feed>,
    done: CancellationToken,
) -> Result<(), SessionError> {
    let wake = &feed.wake;
    let mut backoff = super::backoff::Backoff::new();
    loop {
        let conn = match lead(settings).await {
            Ok(Some(conn)) => conn,
            Ok(None) => {
                // Another instance publishes; stand by (commits here do not
                // wake a standby: the relay finds them by polling).
                tokio::select! {
                    _ = done.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(STANDBY_POLL) => {}
                }
                continue;
            }
            Err(e) => {
                let pause = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "the outbox relay cannot reach the database; retrying");
                if wait(&done, wake, pause).await {
                    return Ok(());
                }
                continue;
            }
        };
        tracing::info!("publishing the outbox (this instance is the relay)");
        feed.lead(true);
        let result = publish_while_leading(&conn, publisher, settings, &feed, &done).await;
        feed.lead(false);
        match result {
            Ok(()) => return Ok(()),
            Err(RelayError::Broker(e)) => return Err(e),
            Err(RelayError::Database(e)) => {
                let pause = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "the outbox relay lost the database; retrying");
                if wait(&done, wake, pause).await {
                    return Ok(());
                }
            }
        }
    }
}

enum RelayError {
    Broker(SessionError),
    Database(String),
}

/// Waits for `wake`, `pause` or `done`; true when done.
async fn wait(done: &CancellationToken, wake: &Notify, pause: Duration) -> bool {
    tokio::select! {
        _ = done.cancelled() => true,
        _ = wake.notified() => false,
        _ = tokio::time::sleep(pause) => false,
    }
}

/// A connection holding the relay lock, or `None` when another instance
/// holds it. The connection has TCP keepalives, a user timeout and a
/// statement timeout: a leader cut off from the database must notice (and
/// the server must drop its lock) in seconds, not hours.
async fn lead(settings: &Settings) -> Result<Option<Shared>, String> {
    let url = relay_url(&settings.database.url);
    tokio::task::spawn_blocking(move || {
        let mut conn =
            PgConnection::establish(&url).map_err(|e| format!("{} ({})", e, redact_url(&url)))?;
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SET statement_timeout = 30000"),
            &mut conn,
        )
        .map_err(|e| e.to_string())?;
        crate::store::db::prefer_custom_plans(&mut conn).map_err(|e| e.to_string())?;
        // The relay's only writes are deletes of published rows: one lost
        // in a crash of the database server is published again (with the
        // same event id, which notifications allow), so they need not wait
        // for the WAL flush that every round would otherwise wait for.
        diesel::RunQueryDsl::execute(diesel::sql_query("SET synchronous_commit = off"), &mut conn)
            .map_err(|e| e.to_string())?;
        match outbox::try_lead(&mut conn) {
            Ok(true) => Ok(Some(Arc::new(Mutex::new(conn)))),
            Ok(false) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn on_db<T: Send + 'static>(
    conn: &Shared,
    f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> Result<T, RelayError> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = conn.lock().expect("the relay connection is not poisoned");
        f(&mut guard)
    })
    .await
    .map_err(|e| RelayError::Database(e.to_string()))?
    .map_err(|e| RelayError::Database(e.to_string()))
}

/// The database URL with the relay connection's timeouts (libpq settings).
fn relay_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    parsed
        .query_pairs_mut()
        .append_pair("keepalives", "1")
        .append_pair("keepalives_idle", "10")
        .append_pair("keepalives_interval", "5")
        .append_pair("keepalives_count", "3")
        .append_pair("tcp_user_timeout", "30000")
        .append_pair("connect_timeout", "10");
    parsed.to_string()
}

/// Rounds of the relay published and waiting for their confirms, at most.
const ROUNDS_IN_FLIGHT: usize = 4;

async fn publish_while_leading(
    conn: &Shared,
    publisher: &Publisher,
    settings: &Settings,
    feed: &Feed,
    done: &CancellationToken,
) -> Result<(), RelayError> {
    let mut last_gauge = Instant::now() - Duration::from_secs(10);
    // Once the consumers have stopped, what was committed until then is
    // published, not what other instances keep committing.
    let mut drain_to: Option<i64> = None;
    // The highest id published from the outbox read: handed rows up to it
    // were published then, or stay in the outbox for the next read.
    let mut read_up_to = 0;
    // Rounds published whose confirms (and deletes) are still to come: the
    // next round goes out meanwhile. Before the outbox is read, or checked
    // for rows the relay was not handed, they are finished, so that every
    // row still there is one not yet published.
    let mut rounds = FuturesOrdered::new();
    loop {
        if drain_to.is_none() && done.is_cancelled() {
            finish_rounds(&mut rounds).await?;
            drain_to = Some(on_db(conn, outbox::last_id).await?);
        }
        let (mut handed, check) = feed.take();
        handed.retain(|r| r.id > read_up_to);
        if !handed.is_empty() && drain_to.is_none() {
            let others = check && {
                finish_rounds(&mut rounds).await?;
                let ids: Vec<i64> = handed.iter().map(|r| r.id).collect();
                on_db(conn, move |c| outbox::others_up_to(c, &ids)).await?
            };
            if !others {
                rounds.push_back(publish(conn, publisher, settings, handed).await?);
                while rounds.len() >= ROUNDS_IN_FLIGHT {
                    rounds.next().await.expect("rounds in flight")?;
                }
                continue;
            }
        }
        if !rounds.is_empty() {
            // Finish the rounds in flight, unless a commit brings rows first.
            tokio::select! {
                round = rounds.next() => round.expect("rounds in flight")?,
                _ = feed.wake.notified() => {}
            }
            continue;
        }
        let mut rows = on_db(conn, |c| outbox::oldest(c, ROWS_PER_ROUND)).await?;
        if let Some(last) = drain_to {
            rows.retain(|r| r.id <= last);
            if rows.is_empty() {
                return Ok(());
            }
        }
        let Some(last) = rows.last() else {
            if last_gauge.elapsed() >= Duration::from_secs(1) {
                let (pending, age) = on_db(conn, outbox::backlog).await?;
                OutboxBacklog {
                    pending,
                    oldest_age_s: age,
                }
                .emit();
                last_gauge = Instant::now();
            }
            let _ = wait(done, &feed.wake, IDLE_POLL).await;
            continue;
        };
        read_up_to = read_up_to.max(last.id);
        publish(conn, publisher, settings, rows).await?.await?;
    }
}

/// Waits for every round in flight to be confirmed and deleted.
async fn finish_rounds<F>(rounds: &mut FuturesOrdered<F>) -> Result<(), RelayError>
where
    F: std::future::Future<Output = Result<(), RelayError>>,
{
    while let Some(round) = rounds.next().await {
        round?;
    }
    Ok(())
}

/// Publishes `rows` (in id order) and returns the rest of their round: a
/// future that waits for their confirms, then deletes them. Rounds are
/// published one after another on one channel, so they reach the broker in
/// that order, while earlier rounds still wait for their confirms.
async fn publish<'a>(
    conn: &'a Shared,
    publisher: &Publisher,
    settings: &Settings,
    rows: Vec<Pending>,
) -> Result<impl std::future::Future<Output = Result<(), RelayError>> + 'a, RelayError> {
    let messages: Vec<Outgoing> = rows
        .iter()
        .map(|r| outgoing(r, &settings.topology))
        .collect();
    let lost = |e| {
        RelayError::Broker(SessionError::Lost(
            anyhow::Error::new(e).context("publishing the outbox"),
        ))
    };
    let confirmed = publisher.publish_pipelined(&messages).await.map_err(lost)?;
    Ok(async move {
        confirmed.await.map_err(lost)?;
        let now = chrono::Utc::now();
        for row in &rows {
            Published {
                routing_key: &row.routing_key,
                to_events: row.exchange == outbox::EVENTS,
                hub_time: row.hub_time,
                now,
            }
            .emit();
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        on_db(conn, move |c| outbox::delete(c, &ids)).await?;
        tracing::debug!(rows = rows.len(), "published from the outbox");
        Ok(())
    })
}

/// The AMQP message of an outbox row.
fn outgoing(row: &Pending, topology: &crate::config::Topology) -> Outgoing {
    Outgoing {
        exchange: outbox::resolve_exchange(&row.exchange, topology).to_owned(),
        routing_key: row.routing_key.clone(),
        properties: cloudevent_properties(&row.event_id, headers(&row.headers)),
        body: row.body.clone(),
        mandatory: false,
    }
}

/// AMQP headers from the JSON object stored with a row.
fn headers(value: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    if let Some(object) = value.as_object() {
        for (k, v) in object {
            let v = match v {
                Value::String(s) => text(s),
                Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(text)
                        .collect::<Vec<_>>(),
                )),
                Value::Bool(b) => AMQPValue::Boolean(*b),
                Value::Number(n) => AMQPValue::LongLongInt(n.as_i64().unwrap_or_default()),
                Value::Null | Value::Object(_) => continue,
            };
            table.insert(k.as_str().into(), v);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bcc_list_becomes_an_array_of_strings() {
        let t = headers(&serde_json::json!({"BCC": ["a", "b"]}));
        let (_, v) = t.inner().iter().next().unwrap();
        match v {
            AMQPValue::FieldArray(a) => assert_eq!(a.as_slice().len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
