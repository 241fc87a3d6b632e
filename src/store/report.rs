//! The figures of `jobsync report promises` (contract 11), per responsible
//! unit, for the orders created in a window: one aggregate statement over
//! the promises and their orders.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use crate::domain::unit::Unit;

/// One responsible unit's figures.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct PromiseFigures {
    #[diesel(sql_type = Text)]
    pub unit_type: String,
    #[diesel(sql_type = Text)]
    pub unit_code: String,
    /// Orders with at least one tracked promise.
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
    /// Per promise: tracked and not released, and of those met on time.
    #[diesel(sql_type = BigInt)]
    pub contact: i64,
    #[diesel(sql_type = BigInt)]
    pub contact_on_time: i64,
    #[diesel(sql_type = BigInt)]
    pub delivery: i64,
    #[diesel(sql_type = BigInt)]
    pub delivery_on_time: i64,
    #[diesel(sql_type = BigInt)]
    pub follow_up: i64,
    #[diesel(sql_type = BigInt)]
    pub follow_up_on_time: i64,
    /// Median seconds from the order's creation to contact, and to
    /// delivery, over those met.
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub median_contact_s: Option<f64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub median_delivery_s: Option<f64>,
    /// Promises missed, and promises still open (not yet due, or due and
    /// not yet checked).
    #[diesel(sql_type = BigInt)]
    pub missed: i64,
    #[diesel(sql_type = BigInt)]
    pub open: i64,
}

const PROMISES: &str = "\
SELECT o.responsible_unit_type AS unit_type, o.responsible_unit_code AS unit_code,
       count(DISTINCT p.job_order_id) AS orders,
       count(*) FILTER (WHERE p.promise = 'contact' AND p.released_at IS NULL) AS contact,
       count(*) FILTER (WHERE p.promise = 'contact' AND p.met_at <= p.due_at) AS contact_on_time,
       count(*) FILTER (WHERE p.promise = 'delivery' AND p.released_at IS NULL) AS delivery,
       count(*) FILTER (WHERE p.promise = 'delivery' AND p.met_at <= p.due_at) AS delivery_on_time,
       count(*) FILTER (WHERE p.promise = 'follow_up' AND p.released_at IS NULL) AS follow_up,
       count(*) FILTER (WHERE p.promise = 'follow_up' AND p.met_at <= p.due_at) AS follow_up_on_time,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.met_at - o.created_at)::float8)
         FILTER (WHERE p.promise = 'contact' AND p.met_at IS NOT NULL) AS median_contact_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.met_at - o.created_at)::float8)
         FILTER (WHERE p.promise = 'delivery' AND p.met_at IS NOT NULL) AS median_delivery_s,
       count(*) FILTER (WHERE p.missed_at IS NOT NULL) AS missed,
       count(*) FILTER (WHERE p.met_at IS NULL AND p.missed_at IS NULL AND p.released_at IS NULL) AS open
  FROM promises p JOIN job_orders o ON o.id = p.job_order_id
 WHERE o.created_at >= $1 AND o.created_at < $2
   AND ($3::text IS NULL OR (o.responsible_unit_type = $3 AND o.responsible_unit_code = $4))
 GROUP BY 1, 2
 ORDER BY 1, 2";

/// The figures of the orders created in `[from, to)`, per responsible
/// unit (only `unit`, if given), in unit order.
pub fn promises(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    unit: Option<&Unit>,
) -> QueryResult<Vec<PromiseFigures>> {
    diesel::sql_query(PROMISES)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Nullable<Text>, _>(unit.map(|u| u.kind().as_str()))
        .bind::<Nullable<Text>, _>(unit.map(|u| u.code()))
        .load(conn)
}
