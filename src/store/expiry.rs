//! Expiry (section 6) and housekeeping in the database.
//!
//! One pass takes at most `limit` due orders: open or temporarily inactive,
//! not yet expired, deadline before today in Copenhagen. The partial index
//! `job_orders_due` holds exactly the orders that are not expired and not
//! closed, by deadline, so the cost is in proportion to the orders that are
//! due, not to all orders. Rows are taken `FOR NO KEY UPDATE SKIP LOCKED`
//! (the pass changes no key, so foreign-key checks are not blocked), and each
//! order's advisory lock (the one its snapshots take) is tried, never waited
//! for: several instances never expire the same order, and an order being
//! applied right now is left to the next pass.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use uuid::Uuid;

use super::feed;
use super::outbox::{self, Effects};
use super::schema::job_orders;
use super::views;
use crate::domain::expiry::passed_before;
use crate::domain::plan::expiry as plan;

/// What one expiry pass committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Orders expired.
    pub orders: usize,
    /// CPR numbers replaced in the views of their notifications.
    pub redactions: usize,
}

/// Expires up to `limit` due orders at `now`, in one transaction, with
/// `joborder.expired` to every unit that can see each and the lifecycle
/// event, through the outbox. Returns what it committed (nothing counts
/// until the transaction has).
pub fn expire_due(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Expired> {
    // PostgreSQL keeps microseconds: the views must say what is stored, or
    // the next comparison would see a change that is not there.
    let now = now.trunc_subsecs(6);
    conn.transaction(|conn| {
        let due = due_orders(conn, now, limit)?;
        if due.is_empty() {
            return Ok(Expired::default());
        }
        let ids = super::locks::try_lock_orders(conn, &due)?;
        if ids.is_empty() {
            return Ok(Expired::default());
        }
        let state = plan::State {
            views: views::load_view_facts(conn, &ids)?,
            log_counts: views::log_counts(conn, &ids)?,
        };
        let mut effects = Effects::new(now);
        let plan = plan::plan(&state, now, &mut |o| effects.emit(&[], o));
        diesel::update(job_orders::table.filter(job_orders::id.eq_any(&plan.expired)))
            .set(job_orders::expired_at.eq(now))
            .execute(conn)?;
        views::save_order_hashes(conn, &plan.order_hashes)?;
        // The relay finds these rows in the outbox.
        outbox::insert(conn, effects.outbox)?;
        feed::record(conn, &effects.changes)?;
        Ok(Expired {
            orders: plan.expired.len(),
            redactions: effects.redactions,
        })
    })
}

/// The orders that can expire (not expired, not closed) whose deadline is
/// before `$1`, oldest deadline first: the head of `job_orders_due`.
const DUE: &str = "SELECT id FROM job_orders \
     WHERE expired_at IS NULL AND status <> 'closed' AND mediation_deadline < $1 \
     ORDER BY mediation_deadline, id LIMIT $2";

/// The due orders, locked (skipping rows another transaction holds).
fn due_orders(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<Uuid>> {
    Ok(
        diesel::sql_query(format!("{DUE} FOR NO KEY UPDATE SKIP LOCKED"))
            .bind::<diesel::sql_types::Date, _>(passed_before(now))
            .bind::<BigInt, _>(limit)
            .load::<super::Id>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    )
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of the query that finds due orders, as
/// an expiry pass runs it: for tests and benchmarks to show what one pass
/// reads.
pub fn explain_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<serde_json::Value> {
    super::explained(
        conn,
        diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {DUE}"))
            .into_boxed()
            .bind::<diesel::sql_types::Date, _>(passed_before(now))
            .bind::<BigInt, _>(limit),
    )
}

/// Deletes up to `limit` inbox rows older than `before`; returns how many.
pub fn prune_inbox(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM processed_messages WHERE message_id IN \
         (SELECT message_id FROM processed_messages WHERE processed_at < $1 LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)
}
