//! The service promises of orders (contract section 11): loaded with an
//! order's state, written with its plan, and the open ones falling due
//! found by the partial index `promises_open_due`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use uuid::Uuid;

use crate::domain::promises::{Promise, Promises, Tracked};

/// A stored promise.
#[derive(QueryableByName)]
pub(super) struct Row {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub(super) job_order_id: Uuid,
    #[diesel(sql_type = Text)]
    pub(super) promise: String,
    #[diesel(sql_type = Timestamptz)]
    pub(super) due_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(super) met_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(super) missed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(super) released_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    pub(super) first_named_coordinator: bool,
}

/// The promises of the orders among `ids` that have any.
pub fn load(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<HashMap<Uuid, Promises>> {
    static LOAD: std::sync::LazyLock<super::prepared::Text> = std::sync::LazyLock::new(|| {
        super::prepared::Text::new(
            "SELECT job_order_id, promise, due_at, met_at, missed_at, released_at, \
                    first_named_coordinator \
               FROM promises WHERE job_order_id = ANY($1)",
        )
    });
    let rows: Vec<Row> = super::prepared::Prepared::new(&LOAD)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .load(conn)?;
    Ok(gather(rows))
}

/// The promises of `rows`, per order.
pub(super) fn gather(rows: impl IntoIterator<Item = Row>) -> HashMap<Uuid, Promises> {
    let mut out: HashMap<Uuid, Promises> = HashMap::new();
    for r in rows {
        let Some(p) = Promise::parse(&r.promise) else {
            continue;
        };
        let entry = out.entry(r.job_order_id).or_default();
        let tracked = Tracked {
            due_at: r.due_at,
            met_at: r.met_at,
            missed_at: r.missed_at,
            released_at: r.released_at,
        };
        match p {
            Promise::Contact => {
                entry.contact = Some(tracked);
                entry.first_named_coordinator = r.first_named_coordinator;
            }
            Promise::Delivery => entry.delivery = Some(tracked),
            Promise::FollowUp => entry.follow_up = Some(tracked),
        }
    }
    out
}

/// Writes every tracked promise of each order in `changed`, as it is now.
pub fn write(conn: &mut PgConnection, changed: &[(Uuid, Promises)]) -> QueryResult<()> {
    let (mut ids, mut names, mut due, mut met, mut missed, mut released, mut first) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (id, promises) in changed {
        for (p, t) in promises.tracked() {
            ids.push(*id);
            names.push(p.as_str());
            due.push(t.due_at);
            met.push(t.met_at);
            missed.push(t.missed_at);
            released.push(t.released_at);
            first.push(promises.first_named_coordinator);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    static WRITE: std::sync::LazyLock<super::prepared::Text> = std::sync::LazyLock::new(|| {
        super::prepared::Text::new(
            "INSERT INTO promises (job_order_id, promise, due_at, met_at, missed_at, released_at, \
                                   first_named_coordinator) \
             SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (job_order_id, promise) DO UPDATE SET \
               met_at = excluded.met_at, missed_at = excluded.missed_at, \
               released_at = excluded.released_at",
        )
    });
    super::prepared::Prepared::new(&WRITE)
        .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Timestamptz>, _>(&due)
        .bind::<Array<Nullable<Timestamptz>>, _>(&met)
        .bind::<Array<Nullable<Timestamptz>>, _>(&missed)
        .bind::<Array<Nullable<Timestamptz>>, _>(&released)
        .bind::<Array<Bool>, _>(&first)
        .execute(conn)?;
    Ok(())
}

/// The open promises due before `$1`, oldest first: the head of
/// `promises_open_due`.
const DUE: &str = "SELECT job_order_id FROM promises \
     WHERE met_at IS NULL AND missed_at IS NULL AND released_at IS NULL AND due_at <= $1 \
     ORDER BY due_at, job_order_id LIMIT $2";

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    job_order_id: Uuid,
}

/// The orders with an open promise due at `now`, from at most `limit`
/// promises. No row is locked here: every change of an order's promises
/// happens under the order's advisory lock, which the caller tries next
/// (locking promise rows as well could deadlock two checks that each took
/// one promise of the other's order).
pub(super) fn due_orders(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = diesel::sql_query(DUE)
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit)
        .load::<Id>(conn)?
        .into_iter()
        .map(|r| r.job_order_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of the query that finds due promises.
pub fn explain_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<serde_json::Value> {
    super::explained(
        conn,
        diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {DUE}"))
            .into_boxed()
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(limit),
    )
}

/// Open promises per promise, for the gauge.
pub fn open_counts(conn: &mut PgConnection) -> QueryResult<Vec<(String, i64)>> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = Text)]
        promise: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(
        "SELECT promise, count(*) AS n FROM promises \
          WHERE met_at IS NULL AND missed_at IS NULL AND released_at IS NULL GROUP BY promise",
    )
    .load::<Count>(conn)?
    .into_iter()
    .map(|c| (c.promise, c.n))
    .collect())
}
