//! The yardstick of the throughput benchmark: a plain per-message worker,
//! as one would write it without jobsync's design, on the same crates
//! (tokio, lapin, diesel) and the same tables. It runs as a task of the bench
//! process, against a database and a RabbitMQ virtual host of its own
//! (a [`BenchEnv`]), consuming the job order queue of that topology.
//!
//! Each delivery, one at a time (prefetch 50): parsed with jobsync's parser
//! (`jobsync::worker::parse`); then ONE transaction: the order's advisory
//! lock, its stored row (version, status, responsible unit), the inbox row
//! (`processed_messages`, `ON CONFLICT DO NOTHING`: a message id seen before
//! changes nothing) and the `job_orders` upsert guarded by version; after
//! the commit, the notification to the responsible unit
//! (`unit.<type>.<code>.joborder.updated`) and the lifecycle events
//! (`joborder.created`, …, to the events exchange) published under publisher
//! confirms; then the ack.
//!
//! What it keeps of jobsync's work: the parser, the same `job_orders` row
//! (every column, the snapshot as `json`, the search vector), the inbox, the
//! advisory lock, the event ids and routing keys, publish after commit.
//!
//! It is a yardstick, not a second implementation. Left out on purpose:
//! - batching, the outbox and its relay: a crash between the commit and the
//!   publish loses that message's notification (the redelivery is a
//!   duplicate and publishes nothing);
//! - views: the responsible unit is sent the snapshot itself (no per-unit
//!   views, no CPR redaction, no hashes of what a unit was told, so every
//!   applied version notifies);
//! - sharing: no `job_order_sharing` or former-unit rows, no notifications
//!   to shared units, no revocations (the bench's orders are shared with
//!   nobody);
//! - mediation logs, service promises, expiry, the read API's change feed
//!   (`unit_changes`), the handover rules (coordinator reassignment; the
//!   timeline columns are only set when an order is first stored), version
//!   conflicts (the stored version again is a duplicate, whatever its
//!   content), retries and dead letters (a message that does not parse is
//!   dropped), reconnection.

use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Date, Integer, Nullable, Text, Timestamptz};
use futures_util::StreamExt;
use jobsync::amqp::publisher::{cloudevent_properties, Outgoing, Publisher};
use jobsync::config::Topology;
use jobsync::contract::envelope::InboundType;
use jobsync::contract::outbound::CloudEvent;
use jobsync::domain::fanout::lifecycle;
use jobsync::domain::joborder::{ChangedBy, JobOrder};
use jobsync::domain::message::{Inbound, Payload};
use jobsync::domain::status::StatusKind;
use jobsync::domain::unit::Unit;
use jobsync::store::outbox::{event_id, unit_routing_key};
use jobsync::store::schema::{job_orders, processed_messages};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::BenchEnv;

/// Unacknowledged deliveries the broker hands the baseline ahead.
const PREFETCH: u16 = 50;

/// The baseline worker, running on the bench's runtime.
pub struct Baseline {
    /// When it was started (before its database was created).
    pub started: Instant,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Baseline {
    /// Creates and migrates the database of `env` (as `jobsync run` does at
    /// its start), then consumes the job order queue of `env` on `rt`.
    pub fn start(rt: &Runtime, env: &BenchEnv) -> Baseline {
        let started = Instant::now();
        jobsync::store::db::prepare(&env.db_url, 1).expect("PostgreSQL answers (scripts/services)");
        let db = PgConnection::establish(&env.db_url).expect("the baseline's database");
        let topology = env.topology().clone();
        // Consuming before `start` returns.
        let (amqp, ch, deliveries, publisher) = rt
            .block_on(async {
                let amqp = jobsync::amqp::connect(&env.amqp_url, "jobsync bench: baseline").await?;
                let ch = amqp.create_channel().await?;
                ch.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
                let deliveries = ch
                    .basic_consume(
                        topology.joborders_queue.as_str().into(),
                        "baseline".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                let publisher = Publisher::open(&amqp).await?;
                Ok::<_, lapin::Error>((amqp, ch, deliveries, publisher))
            })
            .expect("RabbitMQ answers (scripts/services)");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = rt.spawn(async move {
            if let Err(e) = run(deliveries, &publisher, db, &topology, &token).await {
                eprintln!("the baseline worker stopped: {e:#}");
            }
            let _ = publisher.close().await;
            let _ = ch.close(200, "baseline done".into()).await;
            let _ = amqp.close(200, "baseline done".into()).await;
        });
        Baseline {
            started,
            stop,
            task,
        }
    }

    /// Stops it after the message in hand (the deliveries it holds go back
    /// to the queue).
    pub fn stop(self, rt: &Runtime) {
        self.stop.cancel();
        rt.block_on(self.task)
            .expect("the baseline worker does not panic");
    }
}

/// The consume loop: one delivery at a time, applied, published, acked.
async fn run(
    mut deliveries: lapin::Consumer,
    publisher: &Publisher,
    mut db: PgConnection,
    t: &Topology,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let queue = t.joborders_queue.as_str();
    loop {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break,
            next = deliveries.next() => match next {
                Some(delivery) => delivery?,
                None => break,
            },
        };
        let message =
            match jobsync::worker::parse(&delivery.data, InboundType::JobOrderSnapshot, queue) {
                Ok(message) => message,
                Err(rejection) => {
                    eprintln!("the baseline dropped a message: {rejection}");
                    delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await?;
                    continue;
                }
            };
        // diesel is blocking: the transaction runs on the blocking pool.
        let inbox = queue.to_owned();
        let (back, message, done) = tokio::task::spawn_blocking(move || {
            let done = apply(&mut db, &inbox, &message);
            (db, message, done)
        })
        .await?;
        db = back;
        // Committed: now tell.
        if let Done::Applied(before) = done.context("applying a snapshot")? {
            let out = outgoing(&message, before.as_ref(), t);
            publisher.publish_all(&out).await?;
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

/// What a message's transaction did.
enum Done {
    /// Nothing: a message id seen before, or a version not newer than the
    /// stored one.
    Skipped,
    /// Stored the version; what the order was before (`None`: it is new).
    Applied(Option<Stored>),
}

/// The stored order, as the lifecycle events need it.
struct Stored {
    status: StatusKind,
    responsible: Unit,
}

fn order(m: &Inbound) -> &JobOrder {
    match &m.payload {
        Payload::JobOrder(o) => o,
        Payload::MediationLog(_) => unreachable!("parsed as a job order snapshot"),
    }
}

/// The transaction of message `m`, consumed from `queue`.
fn apply(conn: &mut PgConnection, queue: &str, m: &Inbound) -> QueryResult<Done> {
    let o = order(m);
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(jobsync::store::lock_key(o.id))
            .execute(conn)?;
        let stored: Option<(i64, String, String, String)> = job_orders::table
            .find(o.id)
            .select((
                job_orders::version,
                job_orders::status,
                job_orders::responsible_unit_type,
                job_orders::responsible_unit_code,
            ))
            .first(conn)
            .optional()?;
        let outcome = match &stored {
            Some((v, ..)) if *v > o.version => "stale",
            Some((v, ..)) if *v == o.version => "duplicate",
            _ => "applied",
        };
        let first_time = diesel::insert_into(processed_messages::table)
            .values((
                processed_messages::message_id.eq(&m.message_id),
                processed_messages::queue.eq(queue),
                processed_messages::outcome.eq(outcome),
                processed_messages::job_order_id.eq(Some(o.id)),
                processed_messages::version.eq(Some(o.version)),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?
            == 1;
        if !first_time || outcome != "applied" {
            return Ok(Done::Skipped);
        }
        upsert(conn, o)?;
        Ok(Done::Applied(stored.map(|(_, status, kind, code)| {
            Stored {
                status: StatusKind::parse(&status).expect("a CHECK keeps statuses valid"),
                responsible: Unit::from_stored(&kind, &code).expect("a CHECK keeps units valid"),
            }
        })))
    })
}

/// The order's row, as jobsync stores it, guarded by version. The
/// timeline columns (`coordinator_allowed_since`, `responsible_since`) are
/// set to `created_at` when the order is first stored and left alone after.
const UPSERT: &str = "\
INSERT INTO job_orders (id, version, content_hash, request_id, origin, changed_by_kind, \
  changed_by_unit_type, changed_by_unit_code, title, occupation_name, occupation_alias, \
  occupation_code, employer_cvr, employer_p_number, employer_name, employer_conflict_affected, \
  contact_name, contact_email, contact_phone, responsible_unit_type, responsible_unit_code, \
  coordinator_id, coordinator_name, coordinator_allowed, tasks, qualifications_and_pay, \
  working_hours, continuous, positions, expected_start, mediation_deadline, status, \
  status_reason, status_comment, sharing_scope, created_at, updated_at, closed_at, snapshot, \
  coordinator_allowed_since, responsible_since, search) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
  $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, \
  $39::json, $36, $36, \
  setweight(to_tsvector('danish', $40), 'A') || setweight(to_tsvector('danish', $41), 'B') \
  || setweight(to_tsvector('danish', $42), 'C') || setweight(to_tsvector('danish', $43), 'D')) \
ON CONFLICT (id) DO UPDATE SET version = excluded.version, content_hash = excluded.content_hash, \
  request_id = excluded.request_id, origin = excluded.origin, \
  changed_by_kind = excluded.changed_by_kind, changed_by_unit_type = excluded.changed_by_unit_type, \
  changed_by_unit_code = excluded.changed_by_unit_code, title = excluded.title, \
  occupation_name = excluded.occupation_name, occupation_alias = excluded.occupation_alias, \
  occupation_code = excluded.occupation_code, employer_cvr = excluded.employer_cvr, \
  employer_p_number = excluded.employer_p_number, employer_name = excluded.employer_name, \
  employer_conflict_affected = excluded.employer_conflict_affected, \
  contact_name = excluded.contact_name, contact_email = excluded.contact_email, \
  contact_phone = excluded.contact_phone, responsible_unit_type = excluded.responsible_unit_type, \
  responsible_unit_code = excluded.responsible_unit_code, coordinator_id = excluded.coordinator_id, \
  coordinator_name = excluded.coordinator_name, coordinator_allowed = excluded.coordinator_allowed, \
  tasks = excluded.tasks, qualifications_and_pay = excluded.qualifications_and_pay, \
  working_hours = excluded.working_hours, continuous = excluded.continuous, \
  positions = excluded.positions, expected_start = excluded.expected_start, \
  mediation_deadline = excluded.mediation_deadline, status = excluded.status, \
  status_reason = excluded.status_reason, status_comment = excluded.status_comment, \
  sharing_scope = excluded.sharing_scope, created_at = excluded.created_at, \
  updated_at = excluded.updated_at, closed_at = excluded.closed_at, snapshot = excluded.snapshot, \
  search = excluded.search, applied_at = now() \
WHERE job_orders.version < excluded.version";

fn upsert(conn: &mut PgConnection, o: &JobOrder) -> QueryResult<()> {
    let by_unit = match &o.changed_by {
        ChangedBy::Unit(u) => Some(u),
        _ => None,
    };
    let contact = o.contact.as_ref();
    let closed = o.status.kind() == StatusKind::Closed;
    let search = jobsync::domain::read::search_text(&o.wire);
    diesel::sql_query(UPSERT)
        .into_boxed::<Pg>()
        .bind::<diesel::sql_types::Uuid, _>(o.id)
        .bind::<BigInt, _>(o.version)
        .bind::<Bytea, _>(&o.content_hash[..])
        .bind::<Nullable<Text>, _>(o.request_id.as_deref())
        .bind::<Text, _>(o.origin.as_str())
        .bind::<Text, _>(o.changed_by.kind_str())
        .bind::<Nullable<Text>, _>(by_unit.map(|u| u.kind().as_str()))
        .bind::<Nullable<Text>, _>(by_unit.map(|u| u.code()))
        .bind::<Text, _>(&o.title)
        .bind::<Text, _>(&o.occupation.name)
        .bind::<Nullable<Text>, _>(o.occupation.alias.as_deref())
        .bind::<Nullable<Text>, _>(o.occupation.code.as_deref())
        .bind::<Text, _>(o.employer.cvr.as_str())
        .bind::<Nullable<Text>, _>(o.employer.p_number.as_deref())
        .bind::<Text, _>(&o.employer.name)
        .bind::<Bool, _>(o.employer.conflict_affected)
        .bind::<Nullable<Text>, _>(contact.map(|c| c.name.as_str()))
        .bind::<Nullable<Text>, _>(contact.and_then(|c| c.email.as_ref()).map(|e| e.as_str()))
        .bind::<Nullable<Text>, _>(contact.and_then(|c| c.phone.as_ref()).map(|p| p.as_str()))
        .bind::<Text, _>(o.responsible_unit.kind().as_str())
        .bind::<Text, _>(o.responsible_unit.code())
        .bind::<Nullable<Text>, _>(o.coordinator.as_ref().map(|c| c.id.as_str()))
        .bind::<Nullable<Text>, _>(o.coordinator.as_ref().map(|c| c.name.as_str()))
        .bind::<Bool, _>(o.coordinator_allowed)
        .bind::<Text, _>(&o.descriptions.tasks)
        .bind::<Nullable<Text>, _>(o.descriptions.qualifications_and_pay.as_deref())
        .bind::<Nullable<Text>, _>(o.descriptions.working_hours.as_deref())
        .bind::<Bool, _>(o.continuous)
        .bind::<Nullable<Integer>, _>(o.positions)
        .bind::<Nullable<Date>, _>(o.expected_start)
        .bind::<Nullable<Date>, _>(o.mediation_deadline)
        .bind::<Text, _>(o.status.kind().as_str())
        .bind::<Nullable<Text>, _>(o.status.reason().map(|r| r.as_str()))
        .bind::<Nullable<Text>, _>(o.status_comment.as_deref())
        .bind::<Text, _>(o.sharing.scope().as_str())
        .bind::<Timestamptz, _>(o.created_at)
        .bind::<Timestamptz, _>(o.updated_at)
        .bind::<Nullable<Timestamptz>, _>(closed.then_some(o.updated_at))
        .bind::<Text, _>(serde_json::to_string(&o.wire).expect("snapshots serialize"))
        .bind::<Text, _>(search.title)
        .bind::<Text, _>(search.occupation)
        .bind::<Text, _>(search.employer)
        .bind::<Text, _>(search.tasks)
        .execute(conn)?;
    Ok(())
}

/// What message `m` publishes once committed: the notification to the
/// responsible unit (the snapshot itself) and its lifecycle events against
/// `before`, with jobsync's event ids and routing keys.
fn outgoing(m: &Inbound, before: Option<&Stored>, t: &Topology) -> Vec<Outgoing> {
    let o = order(m);
    let time = jobsync::domain::fields::canonical_timestamp(Utc::now());
    let message = |exchange: &str, routing_key: String, id: &str, body: Vec<u8>| Outgoing {
        exchange: exchange.to_owned(),
        routing_key,
        properties: cloudevent_properties(id, FieldTable::default()),
        body,
        mandatory: false,
    };
    let event = "joborder.updated";
    let audience = o.responsible_unit.to_string();
    let id = event_id(&m.message_id, &audience, event);
    let body = CloudEvent::new(
        event,
        &id,
        &time,
        o.id.to_string(),
        Some(&audience),
        o.version,
        &o.wire,
    );
    let mut out = vec![message(
        &t.notifications_exchange,
        unit_routing_key(&o.responsible_unit, event),
        &id,
        body.to_vec(),
    )];
    let was = before.map(|s| (s.status, &s.responsible));
    for (event, data) in lifecycle(was, &o.wire) {
        let name = event.as_str();
        let id = event_id(&m.message_id, "events", name);
        let body = CloudEvent::new(name, &id, &time, o.id.to_string(), None, o.version, &data);
        out.push(message(
            &t.events_exchange,
            name.to_owned(),
            &id,
            body.to_vec(),
        ));
    }
    out
}
