//! The transactional outbox: notifications and lifecycle events are written
//! as rows in the transaction that causes them, and a relay publishes them
//! in id order under publisher confirms and deletes them once confirmed.
//!
//! Each row is a whole AMQP message: exchange, routing key, headers (the
//! `BCC` list when one message goes to several units) and the CloudEvent
//! body, with a deterministic id.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Jsonb, Nullable, Text};
use serde_json::{json, Value};
use uuid::Uuid;

use super::schema::outbox;
use super::unnest::{columns, insert_sql};
use crate::config::Topology;
use crate::contract::outbound::{CloudEvent, Data};
use crate::domain::fanout::{Lifecycle, Notification};
use crate::domain::fields::canonical_timestamp;
use crate::domain::message::Inbound;
use crate::domain::plan::{Cause, Output};
use crate::domain::unit::Unit;
use crate::trace::TraceContext;

/// The namespace of jobsync's event ids (UUID version 5).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a6f_6273_796e_4311_8000_6576_656e_7473);

/// The id of the event `event` for `audience` caused by the inbound message
/// `inbound_id`: the same inputs always give the same id, so a redelivered
/// inbound message yields the same ids.
pub fn event_id(inbound_id: &str, audience: &str, event: &str) -> String {
    let name = format!("{inbound_id}\n{audience}\n{event}");
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// The audience of a message that goes to several units (in `unit`, the
/// event id and the routing key): the view they get is the same, and who
/// else gets it is none of their business.
pub const SHARED_AUDIENCE: &str = "shared";

/// The routing key of `event` for `unit`: `unit.<type>.<code>.<event>`.
pub fn unit_routing_key(unit: &Unit, event: &str) -> String {
    format!("unit.{}.{}.{event}", unit.kind().as_str(), unit.code())
}

/// The `exchange` of a notification row: resolved to the configured
/// notifications exchange when published, so that a renamed exchange does
/// not strand the rows written before.
pub const NOTIFICATIONS: &str = "notifications";
/// The `exchange` of a lifecycle event row (the events exchange).
pub const EVENTS: &str = "events";

/// The exchange to publish a row with `exchange` to, under `topology`.
pub fn resolve_exchange<'a>(exchange: &'a str, topology: &'a Topology) -> &'a str {
    match exchange {
        NOTIFICATIONS => &topology.notifications_exchange,
        EVENTS => &topology.events_exchange,
        other => other,
    }
}

/// A row of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub event_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub headers: Value,
    pub body: Vec<u8>,
    pub job_order_id: Option<Uuid>,
    /// The hub's `time` of the message that caused it.
    pub hub_time: Option<DateTime<Utc>>,
}

/// Builds outbox rows for the changes of one transaction.
pub struct Composer {
    time: String,
}

impl Composer {
    pub fn new(now: DateTime<Utc>) -> Self {
        Composer {
            time: canonical_timestamp(now),
        }
    }

    /// The row of notification `n`, caused by inbound message `inbound_id`,
    /// about order `job_order_id` at hub version `order_version`.
    pub fn notification(
        &self,
        inbound_id: &str,
        trace: &TraceContext,
        job_order_id: Uuid,
        order_version: i64,
        n: &Notification,
    ) -> OutboxRow {
        let event = n.event.as_str();
        let traceparent = trace.to_string();
        let (audience, routing_key, headers) = match n.recipients.as_slice() {
            [one] => (
                one.to_string(),
                unit_routing_key(one, event),
                json!({ "traceparent": traceparent }),
            ),
            many => {
                let bcc: Vec<String> = many.iter().map(|u| unit_routing_key(u, event)).collect();
                (
                    SHARED_AUDIENCE.to_owned(),
                    format!("unit.{SHARED_AUDIENCE}.{event}"),
                    json!({ "BCC": bcc, "traceparent": traceparent }),
                )
            }
        };
        let id = event_id(inbound_id, &audience, event);
        let body = CloudEvent::new(
            event,
            &id,
            &self.time,
            job_order_id.to_string(),
            Some(&audience),
            order_version,
            &n.view.data,
        );
        OutboxRow {
            body: body.to_vec(),
            event_id: id,
            exchange: NOTIFICATIONS.to_owned(),
            routing_key,
            headers,
            job_order_id: Some(job_order_id),
            hub_time: None,
        }
    }

    /// The row of lifecycle event `event` with `data`.
    pub fn lifecycle(
        &self,
        inbound_id: &str,
        trace: &TraceContext,
        job_order_id: Uuid,
        order_version: i64,
        event: Lifecycle,
        data: &Data,
    ) -> OutboxRow {
        let name = event.as_str();
        let id = event_id(inbound_id, "events", name);
        let body = CloudEvent::new(
            name,
            &id,
            &self.time,
            job_order_id.to_string(),
            None,
            order_version,
            data,
        );
        OutboxRow {
            body: body.to_vec(),
            event_id: id,
            exchange: EVENTS.to_owned(),
            routing_key: name.to_owned(),
            headers: json!({ "traceparent": trace.to_string() }),
            job_order_id: Some(job_order_id),
            hub_time: None,
        }
    }
}

columns! {
    /// An outbox row as `insert` writes it.
    struct OutboxRef<'a>, columns OutboxColumns {
        event_id: &'a str => Text,
        exchange: &'a str => Text,
        routing_key: &'a str => Text,
        headers: &'a Value => Jsonb,
        body: &'a [u8] => Bytea,
        job_order_id: Option<Uuid> => Nullable<diesel::sql_types::Uuid>,
        hub_time: Option<DateTime<Utc>> => Nullable<diesel::sql_types::Timestamptz>,
    }
}

/// The id the outbox gave a row.
#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Writes `rows` to the outbox, in order, and returns them with their ids
/// (ascending, in the same order).
pub fn insert(conn: &mut PgConnection, rows: Vec<OutboxRow>) -> QueryResult<Vec<Pending>> {
    static INSERT: LazyLock<super::prepared::Text> = LazyLock::new(|| {
        super::prepared::Text::new(&insert_sql("outbox", OutboxColumns::NAMES, "RETURNING id"))
    });
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let written: Vec<Written> = columns(&rows).query(&INSERT).load(conn)?;
    Ok(pending(rows, written.into_iter().map(|w| w.id)))
}

/// The `INSERT` of [`columns`], its parameters numbered from `$first`,
/// returning the ids.
pub(super) fn insert_sql_at(first: usize) -> String {
    super::unnest::insert_sql_at("outbox", OutboxColumns::NAMES, first, "RETURNING id")
}

/// How many parameters [`insert_sql_at`] takes.
pub(super) const PARAMETERS: usize = OutboxColumns::NAMES.len();

/// `rows`, column by column, to bind.
pub(super) fn columns(rows: &[OutboxRow]) -> OutboxColumns<'_> {
    let mut columns = OutboxColumns::with_capacity(rows.len());
    for r in rows {
        columns.push(OutboxRef {
            event_id: &r.event_id,
            exchange: &r.exchange,
            routing_key: &r.routing_key,
            headers: &r.headers,
            body: &r.body,
            job_order_id: r.job_order_id,
            hub_time: r.hub_time,
        });
    }
    columns
}

/// The written `rows` with the ids the outbox gave them: the rows of one
/// `INSERT … SELECT` take ids, and come back, in the order selected.
pub(super) fn pending(rows: Vec<OutboxRow>, ids: impl IntoIterator<Item = i64>) -> Vec<Pending> {
    let mut pending: Vec<Pending> = rows
        .into_iter()
        .zip(ids)
        .map(|(row, id)| Pending {
            id,
            event_id: row.event_id,
            exchange: row.exchange,
            routing_key: row.routing_key,
            headers: row.headers,
            body: row.body,
            hub_time: row.hub_time,
        })
        .collect();
    // Sorted all the same, since the relay relies on it.
    pending.sort_by_key(|p| p.id);
    pending
}

/// A row waiting to be published.
#[derive(Debug, Clone, Queryable)]
pub struct Pending {
    pub id: i64,
    pub event_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub headers: Value,
    pub body: Vec<u8>,
    /// The hub's `time` of the message that caused it.
    pub hub_time: Option<DateTime<Utc>>,
}

/// The oldest `limit` rows, in id order.
pub fn oldest(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<Pending>> {
    outbox::table
        .select((
            outbox::id,
            outbox::event_id,
            outbox::exchange,
            outbox::routing_key,
            outbox::headers,
            outbox::body,
            outbox::hub_time,
        ))
        .order(outbox::id)
        .limit(limit)
        .load(conn)
}

/// Whether the outbox holds a row with an id up to the highest of `ids`
/// (ascending) other than `ids`: a row the relay was not handed (written by
/// another instance, or before this one led), which must go out first. An
/// index scan in id order that stops after `ids.len() + 1` rows.
pub fn others_up_to(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<bool> {
    let Some(&max) = ids.last() else {
        return Ok(false);
    };
    let found: Vec<i64> = outbox::table
        .select(outbox::id)
        .filter(outbox::id.le(max))
        .order(outbox::id)
        .limit(ids.len() as i64 + 1)
        .load(conn)?;
    Ok(found != ids)
}

/// The id of the newest row (0 when none).
pub fn last_id(conn: &mut PgConnection) -> QueryResult<i64> {
    use diesel::dsl::max;
    Ok(outbox::table
        .select(max(outbox::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Removes published rows.
pub fn delete(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<usize> {
    diesel::delete(outbox::table.filter(outbox::id.eq_any(ids))).execute(conn)
}

/// How many rows wait, and the age of the oldest in seconds.
pub fn backlog(conn: &mut PgConnection) -> QueryResult<(i64, f64)> {
    #[derive(QueryableByName)]
    struct Backlog {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pending: i64,
        #[diesel(sql_type = diesel::sql_types::Double)]
        oldest_age_s: f64,
    }
    let b: Backlog = diesel::sql_query(
        "SELECT count(*) AS pending, \
         COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) AS oldest_age_s \
         FROM outbox",
    )
    .get_result(conn)?;
    Ok((b.pending, b.oldest_age_s))
}

/// The session-level advisory lock that makes one instance the relay: only
/// its holder publishes, so rows go out once and in order even with several
/// instances running. It is released when the connection closes.
const RELAY_LOCK: i64 = 0x6a6f_6273_796e_6301;

/// Tries to become the relay on `conn` (a connection kept for it).
pub fn try_lead(conn: &mut PgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let l: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(RELAY_LOCK)
        .get_result(conn)?;
    Ok(l.locked)
}

/// What the stream parts of a batch write beside their own tables.
pub(super) struct Effects {
    pub composer: Composer,
    pub outbox: Vec<OutboxRow>,
    pub redactions: usize,
    /// The views changed, for the change feed.
    pub changes: super::feed::Changes,
    /// The trace of each order's expiry, missed promises or erasure: its
    /// notifications and its events are one trace.
    expiry_traces: HashMap<Uuid, TraceContext>,
}

impl Effects {
    pub fn new(now: DateTime<Utc>) -> Effects {
        Effects {
            composer: Composer::new(now),
            outbox: Vec::new(),
            redactions: 0,
            changes: super::feed::Changes::default(),
            expiry_traces: HashMap::new(),
        }
    }

    /// Adds the rows of `output`, planned for `messages`. An expiry, a
    /// missed promise or an erasure is caused by no message: its id is made
    /// of the order and what happened to it (an order expires at most once
    /// per version), and it starts a trace of its own, one per order.
    pub fn emit(&mut self, messages: &[Inbound], output: Output) {
        let mut cause_of = |cause: Cause, id: Uuid, version: i64| {
            let own = match cause {
                Cause::Message(i) => {
                    let m = &messages[i];
                    return (Cow::Borrowed(m.message_id.as_str()), m.trace, m.hub_time);
                }
                Cause::Expiry => format!("expiry:{id}:{version}"),
                // Once per order and promise: the id is made of both.
                Cause::Promise(p) => format!("promise:{id}:{}", p.as_str()),
                // Once per erasure and order.
                Cause::Erasure(erasure) => format!("erasure:{erasure}:{id}"),
            };
            // Caused by no message: a trace of its own, one per order.
            let trace = *self
                .expiry_traces
                .entry(id)
                .or_insert_with(|| TraceContext::child_of(None));
            (Cow::Owned(own), trace, None)
        };
        match output {
            Output::Notify {
                cause,
                job_order_id,
                order_version,
                notifications,
            } => {
                let (inbound, trace, hub_time) = cause_of(cause, job_order_id, order_version);
                self.notify(
                    &inbound,
                    &trace,
                    hub_time,
                    job_order_id,
                    order_version,
                    &notifications,
                );
            }
            Output::Lifecycle {
                cause,
                job_order_id,
                order_version,
                event,
                data,
            } => {
                let (inbound, trace, hub_time) = cause_of(cause, job_order_id, order_version);
                let mut row = self.composer.lifecycle(
                    &inbound,
                    &trace,
                    job_order_id,
                    order_version,
                    event,
                    &data,
                );
                row.hub_time = hub_time;
                self.outbox.push(row);
            }
        }
    }

    /// Adds the rows of `notifications`, caused by inbound message
    /// `inbound_id` (in `trace`, sent by the hub at `hub_time`) or by expiry.
    pub fn notify(
        &mut self,
        inbound_id: &str,
        trace: &TraceContext,
        hub_time: Option<DateTime<Utc>>,
        job_order_id: Uuid,
        order_version: i64,
        notifications: &[Notification],
    ) {
        self.changes.add(job_order_id, notifications);
        for n in notifications {
            self.redactions += n.view.redactions;
            let mut row =
                self.composer
                    .notification(inbound_id, trace, job_order_id, order_version, n);
            row.hub_time = hub_time;
            self.outbox.push(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_and_distinct() {
        let a = event_id("m-1", "jobcenter:15300", "joborder.updated");
        assert_eq!(a, event_id("m-1", "jobcenter:15300", "joborder.updated"));
        assert_ne!(a, event_id("m-2", "jobcenter:15300", "joborder.updated"));
        assert_ne!(a, event_id("m-1", "jobcenter:16700", "joborder.updated"));
        assert_ne!(a, event_id("m-1", "jobcenter:15300", "joborder.revoked"));
        assert_eq!(Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }
}
