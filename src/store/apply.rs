//! The apply transaction: one database transaction per batch of inbound
//! messages, job order snapshots and mediation log snapshots alike.
//!
//! Inside it: advisory locks on the batch's orders (sorted, so concurrent
//! instances never deadlock; the same lock for an order's snapshots and its
//! log, so the rules that look across them see a settled state), the inbox
//! check, then per stream the stored state, the pure decisions of the domain
//! in version order and the writes, and finally the inbox rows.

use crate::domain::promises::Durations;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use uuid::Uuid;

use super::feed;
use super::feed::Changes;
use super::locks::lock_orders;
use super::outbox::{self, Effects, OutboxRow, Pending};
use super::prepared::{self, Prepared};
use super::schema::processed_messages;
use super::unnest::{columns, insert_sql_at};
use super::{joborders, mediation};
use crate::domain::message::{Inbound, Outcome, Payload};

/// What a committed batch did.
#[derive(Debug)]
pub struct BatchResult {
    /// The outcome of each message, in the order given.
    pub outcomes: Vec<Outcome>,
    /// Rows written to the outbox (notifications and events to publish),
    /// with their ids, in id order: the relay of this instance is handed
    /// them once committed.
    pub outbox: Vec<Pending>,
    /// Whether the outbox held no row of their orders before: then they
    /// may go out before any row of another order written earlier.
    pub alone: bool,
    /// CPR numbers replaced in the views written.
    pub redactions: usize,
}

/// Applies `messages` (consumed from `queue`) in one transaction, with the
/// notifications and events they cause written to the outbox, and returns
/// the outcome of each, in the same order. An `Err` means nothing was
/// committed; the caller retries or splits the batch.
pub fn apply_batch(
    conn: &mut PgConnection,
    queue: &str,
    messages: &[Inbound],
    now: DateTime<Utc>,
    durations: &Durations,
) -> QueryResult<BatchResult> {
    let order_ids: Vec<Uuid> = {
        let set: HashSet<Uuid> = messages.iter().map(Inbound::job_order_id).collect();
        set.into_iter().collect()
    };
    conn.transaction(|conn| {
        lock_orders(conn, &order_ids)?;
        apply_in_transaction(conn, queue, messages, now, durations)
    })
}

fn apply_in_transaction(
    conn: &mut PgConnection,
    queue: &str,
    messages: &[Inbound],
    now: DateTime<Utc>,
    durations: &Durations,
) -> QueryResult<BatchResult> {
    let message_ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let processed: HashSet<String> = processed_messages::table
        .select(processed_messages::message_id)
        .filter(processed_messages::message_id.eq_any(&message_ids))
        .load(conn)?
        .into_iter()
        .collect();

    // The first delivery of each new message id is decided; a repeat of an
    // id within the batch is a duplicate of it (acknowledged with it, never
    // dead-lettered or retried a second time).
    let mut outcomes: Vec<Option<Outcome>> = vec![None; messages.len()];
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut orders: Vec<usize> = Vec::new();
    let mut logs: Vec<usize> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if processed.contains(&m.message_id) {
            outcomes[i] = Some(Outcome::Duplicate);
        } else if let Some(&f) = first.get(m.message_id.as_str()) {
            repeats.push((i, f));
        } else {
            first.insert(&m.message_id, i);
            match m.payload {
                Payload::JobOrder(_) => orders.push(i),
                Payload::MediationLog(_) => logs.push(i),
            }
        }
    }
    let mut effects = Effects::new(now);
    if !orders.is_empty() {
        joborders::apply(
            conn,
            messages,
            &orders,
            &mut outcomes,
            &mut effects,
            now,
            durations,
        )?;
    }
    if !logs.is_empty() {
        mediation::apply(
            conn,
            messages,
            &logs,
            &mut outcomes,
            &mut effects,
            durations,
        )?;
    }
    let redactions = effects.redactions;
    for (i, _) in repeats {
        outcomes[i] = Some(Outcome::Duplicate);
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.expect("every message has an outcome"))
        .collect();

    let mut inbox = InboxColumns::with_capacity(first.len());
    for &i in first.values().filter(|&&i| outcomes[i].is_final()) {
        let m = &messages[i];
        inbox.push(InboxRow {
            message_id: &m.message_id,
            queue,
            outcome: outcomes[i].label(),
            job_order_id: Some(m.job_order_id()),
            version: Some(m.version()),
        });
    }
    let (outbox, alone) = finish(conn, effects.outbox, inbox, &effects.changes)?;
    Ok(BatchResult {
        outcomes,
        outbox,
        alone,
        redactions,
    })
}

/// The last statement of the transaction, writing three tables at once:
/// the outbox rows (returned with their ids), the inbox rows and the
/// change feed's rows. With it, whether the outbox held no row of the
/// orders written for before this transaction (the caller holds their
/// locks, so every earlier row of theirs is committed and seen).
fn finish(
    conn: &mut PgConnection,
    rows: Vec<OutboxRow>,
    inbox: InboxColumns<'_>,
    changes: &Changes,
) -> QueryResult<(Vec<Pending>, bool)> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Bool)]
        alone: bool,
    }
    static FINISH: LazyLock<prepared::Text> = LazyLock::new(|| {
        let inbox_at = outbox::PARAMETERS + 1;
        let feed_at = inbox_at + InboxColumns::NAMES.len();
        let orders_at = feed_at + 4;
        prepared::Text::new(&format!(
            "WITH written AS ({}), inbox AS ({}), feed AS ({}) \
             SELECT id, NOT EXISTS (SELECT 1 FROM outbox WHERE job_order_id = ANY(${orders_at})) AS alone \
               FROM written",
            outbox::insert_sql_at(1),
            insert_sql_at(
                "processed_messages",
                InboxColumns::NAMES,
                inbox_at,
                "ON CONFLICT DO NOTHING"
            ),
            feed::record_sql(feed_at),
        ))
    });
    if rows.is_empty() && inbox.is_empty() && changes.is_empty() {
        return Ok((Vec::new(), true));
    }
    let orders: Vec<Uuid> = {
        let set: HashSet<Uuid> = rows.iter().filter_map(|r| r.job_order_id).collect();
        set.into_iter().collect()
    };
    let q = Prepared::new(&FINISH);
    let q = outbox::columns(&rows).bind_onto(q);
    let q = inbox.bind_onto(q);
    let q = feed::bind_record(changes, q).bind::<Array<diesel::sql_types::Uuid>, _>(&orders);
    let written: Vec<Written> = q.load(conn)?;
    let alone = written.iter().all(|w| w.alone);
    Ok((
        outbox::pending(rows, written.into_iter().map(|w| w.id)),
        alone,
    ))
}

columns! {
    /// A message id done with (the inbox).
    struct InboxRow<'a>, columns InboxColumns {
        message_id: &'a str => Text,
        queue: &'a str => Text,
        outcome: &'a str => Text,
        job_order_id: Option<Uuid> => Nullable<diesel::sql_types::Uuid>,
        version: Option<i64> => Nullable<BigInt>,
    }
}
