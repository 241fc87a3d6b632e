//! `jobsync erase person` in the database (section 12): the orders whose
//! log holds the person are found by reading `mediation_entries` whole (no
//! index on `person_ref`: erasure is rare, about 0.3 s per million entries,
//! and such an index made entry writes a third slower), then taken 100 at
//! a time, each batch in one transaction under the orders'
//! advisory locks (waited for, as a batch of snapshots waits: an order being
//! applied is erased right after). Under the locks the stored logs are read
//! again and the planner ([`crate::domain::plan::erasure`]) decides; the
//! entries, the stored snapshots, the history, what each unit was told, the
//! outbox and the change feed are written together. The running worker's
//! relay publishes the outbox rows.
//!
//! The log's content hash stays: a redelivery of the same log version is
//! still a duplicate and does not bring the person back. A later version
//! does, since the hub is the source of truth.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use uuid::Uuid;

use super::outbox::{self, Effects};
use super::schema::{job_orders, mediation_logs};
use super::{feed, locks, views};
use crate::domain::plan::erasure::{self as plan, ERASED};
use crate::domain::plan::Output;
use crate::domain::unit::Unit;

/// Orders erased per transaction.
const ORDERS_PER_TRANSACTION: usize = 100;

/// What an erasure did, in counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Orders whose log held the person.
    pub orders: usize,
    /// Their entries (one per time they were put forward).
    pub entries: usize,
    /// History rows of those entries deleted.
    pub history: usize,
    /// Notifications written to the outbox (`mediationlog.updated`).
    pub notifications: usize,
    /// Distinct units told.
    pub units_told: usize,
}

/// Erases `person_ref` on every order at `now`. Erasing [`ERASED`] itself
/// is the caller's mistake to refuse.
pub fn erase_person(
    conn: &mut PgConnection,
    person_ref: &str,
    now: DateTime<Utc>,
) -> QueryResult<Erasure> {
    let now = now.trunc_subsecs(6);
    let erasure = Uuid::new_v4();
    let ids: Vec<Uuid> = {
        use super::schema::mediation_entries::dsl as e;
        e::mediation_entries
            .select(e::job_order_id)
            .filter(e::person_ref.eq(person_ref))
            .distinct()
            .order(e::job_order_id)
            .load(conn)?
    };
    let mut done = Erasure::default();
    let mut told = BTreeSet::new();
    for chunk in ids.chunks(ORDERS_PER_TRANSACTION) {
        conn.transaction(|conn| {
            erase_on(conn, chunk, person_ref, erasure, now, &mut done, &mut told)
        })?;
    }
    done.units_told = told.len();
    Ok(done)
}

/// Erases `person_ref` on the orders `ids`, in the caller's transaction;
/// adds what it did to `done` and the units it told to `told` (an error
/// fails the whole erasure, so nothing is counted that did not commit).
fn erase_on(
    conn: &mut PgConnection,
    ids: &[Uuid],
    person_ref: &str,
    erasure: Uuid,
    now: DateTime<Utc>,
    done: &mut Erasure,
    told: &mut BTreeSet<Unit>,
) -> QueryResult<()> {
    locks::lock_orders(conn, ids)?;
    let mut logs = views::load_log_snapshots(conn, ids)?;
    let mut hashes = views::load_log_hashes(conn, ids)?;
    let orders: Vec<(Uuid, String, String, i64)> = job_orders::table
        .select((
            job_orders::id,
            job_orders::responsible_unit_type,
            job_orders::responsible_unit_code,
            job_orders::version,
        ))
        .filter(job_orders::id.eq_any(ids))
        .load(conn)?;
    let state: HashMap<Uuid, plan::StoredLog> = orders
        .into_iter()
        .filter_map(|(id, t, c, version)| {
            let stored = plan::StoredLog {
                log: logs.remove(&id)?,
                responsible: Unit::from_stored(&t, &c)
                    .expect("the CHECK constraint keeps unit types valid"),
                order_version: version,
                told: hashes.remove(&id).unwrap_or_default(),
            };
            Some((id, stored))
        })
        .collect();
    let mut effects = Effects::new(now);
    let plan = plan::plan(state, person_ref, erasure, &mut |o| {
        if let Output::Notify { notifications, .. } = &o {
            done.notifications += notifications.len();
            told.extend(
                notifications
                    .iter()
                    .flat_map(|n| n.recipients.iter().cloned()),
            );
        }
        effects.emit(&[], o)
    });
    if plan.is_empty() {
        return Ok(());
    }
    let erased: Vec<Uuid> = plan.keys().copied().collect();
    done.orders += erased.len();
    done.entries += diesel::sql_query(
        "UPDATE mediation_entries SET person_ref = $3, note = NULL \
          WHERE job_order_id = ANY($1) AND person_ref = $2",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(&erased)
    .bind::<Text, _>(person_ref)
    .bind::<Text, _>(ERASED)
    .execute(conn)?;
    for (id, e) in &plan {
        diesel::update(mediation_logs::table.find(id))
            .set(mediation_logs::snapshot.eq(super::JsonText::of(&e.log)))
            .execute(conn)?;
    }
    let (orders, entries): (Vec<Uuid>, Vec<Uuid>) = plan
        .iter()
        .flat_map(|(id, e)| e.mediation_ids.iter().map(move |m| (*id, *m)))
        .unzip();
    done.history += diesel::sql_query(
        "DELETE FROM mediation_entry_history h USING unnest($1, $2) AS e(o, m) \
          WHERE h.job_order_id = e.o AND h.mediation_id = e.m",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(&orders)
    .bind::<Array<diesel::sql_types::Uuid>, _>(&entries)
    .execute(conn)?;
    let hashes: Vec<_> = plan.into_iter().map(|(id, e)| (id, e.told)).collect();
    views::save_log_hashes(conn, &hashes)?;
    outbox::insert(conn, effects.outbox)?;
    feed::record(conn, &effects.changes)?;
    Ok(())
}
