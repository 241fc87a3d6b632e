//! The lifetime of personal data (contract section 12): a number of days
//! after an order closed or expired, its candidates' references (replaced by
//! `erased`) and notes, their history, its contact person and the audit of
//! its log reads are deleted. The counts of its log stay.
//!
//! An order is due when `personal_data_deleted_at` is unset and the later of
//! `closed_at` and `expired_at` is older than the retention: the head of the
//! partial index `job_orders_personal_data_due`, so a pass costs what falls
//! due. A new version of the order clears the mark (what it brought is kept
//! anew; a reopened order has neither time set, so its clock starts again
//! when it ends again), and so does a new version of its log.
//!
//! Each order's advisory lock (the one its snapshots take) is tried, never
//! waited for, and the order is read again under it: several instances never
//! work on the same order, and an order being applied right now is left to
//! the next pass.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use uuid::Uuid;

use super::locks;

pub use crate::domain::plan::erasure::ERASED;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Orders whose personal data was deleted.
    pub orders: usize,
    /// Orders found due (some may have been left to the next pass, locked
    /// by a batch applying them).
    pub due: usize,
}

/// Orders that ended before this are due at `now`.
fn ended_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// Deletes the personal data of up to `limit` orders that ended before
/// `now` minus `days`, in one transaction.
pub fn delete_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    days: u32,
    limit: i64,
) -> QueryResult<Deleted> {
    let now = now.trunc_subsecs(6);
    let before = ended_before(now, days);
    conn.transaction(|conn| {
        let due = due_orders(conn, before, limit)?;
        if due.is_empty() {
            return Ok(Deleted::default());
        }
        let locked = locks::try_lock_orders(conn, &due)?;
        // Under their locks: still due (not reopened meanwhile)?
        let ids = still_due(conn, &locked, before)?;
        Ok(Deleted {
            orders: delete(conn, &ids, now)?,
            due: due.len(),
        })
    })
}

/// The condition of `job_orders_personal_data_due`, and its key.
const ENDED: &str = "personal_data_deleted_at IS NULL \
     AND (closed_at IS NOT NULL OR expired_at IS NOT NULL) \
     AND GREATEST(closed_at, expired_at) < $1";

/// The due orders, those that ended longest ago first: the head of
/// `job_orders_personal_data_due`.
fn due_sql() -> String {
    format!(
        "SELECT id FROM job_orders WHERE {ENDED} \
         ORDER BY GREATEST(closed_at, expired_at), id LIMIT $2"
    )
}

/// The plan of the due query (EXPLAIN ANALYZE, JSON) for orders that ended
/// before `now` minus `days`: to check that it reads only what is due.
pub fn explain_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    days: u32,
    limit: i64,
) -> QueryResult<serde_json::Value> {
    let before = ended_before(now, days);
    super::explained(
        conn,
        diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", due_sql()))
            .into_boxed()
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(limit),
    )
}

fn due_orders(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    let rows: Vec<super::Id> = diesel::sql_query(due_sql())
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

fn still_due(
    conn: &mut PgConnection,
    ids: &[Uuid],
    before: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT id FROM job_orders WHERE {ENDED} AND id = ANY($2)");
    let rows: Vec<super::Id> = diesel::sql_query(sql)
        .bind::<Timestamptz, _>(before)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Deletes the personal data of `ids` (locked by the caller) and marks them
/// done at `now`; how many orders.
fn delete(conn: &mut PgConnection, ids: &[Uuid], now: DateTime<Utc>) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let run = |conn: &mut PgConnection, sql: &str| {
        diesel::sql_query(sql)
            .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
            .bind::<Text, _>(ERASED)
            .execute(conn)
    };
    run(
        conn,
        "UPDATE mediation_entries SET person_ref = $2, note = NULL \
          WHERE job_order_id = ANY($1) AND (person_ref <> $2 OR note IS NOT NULL)",
    )?;
    // The stored snapshot of the log, which its views are made from.
    run(
        conn,
        "UPDATE mediation_logs SET snapshot = jsonb_set(snapshot::jsonb, '{entries}', \
           COALESCE((SELECT jsonb_agg(e || jsonb_build_object('person_ref', $2::text, 'note', NULL) ORDER BY n) \
                       FROM jsonb_array_elements(snapshot::jsonb -> 'entries') WITH ORDINALITY AS t(e, n)), \
                    '[]'::jsonb))::json \
          WHERE job_order_id = ANY($1)",
    )?;
    for sql in [
        "DELETE FROM mediation_entry_history WHERE job_order_id = ANY($1)",
        "DELETE FROM api_log_reads WHERE job_order_id = ANY($1)",
    ] {
        diesel::sql_query(sql)
            .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
            .execute(conn)?;
    }
    diesel::sql_query(
        "UPDATE job_orders SET contact_name = NULL, contact_email = NULL, contact_phone = NULL, \
                snapshot = jsonb_set(snapshot::jsonb, '{contact}', 'null')::json, \
                personal_data_deleted_at = $2 \
          WHERE id = ANY($1)",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
}
