//! The advisory locks that serialize work on one order across instances:
//! the apply transaction waits for them, an expiry or promise check only
//! tries them.

use std::collections::BTreeSet;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use uuid::Uuid;

/// Transaction-scoped advisory locks on the orders, taken in ascending key
/// order so that two instances locking overlapping batches cannot deadlock.
/// They also serialize the first insert of an order, which a row lock cannot.
pub(super) fn lock_orders(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<()> {
    static LOCK: std::sync::LazyLock<super::prepared::Text> = std::sync::LazyLock::new(|| {
        super::prepared::Text::new(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1) WITH ORDINALITY AS t(k, n) ORDER BY n",
        )
    });
    let mut keys: Vec<i64> = ids.iter().map(|id| lock_key(*id)).collect();
    keys.sort_unstable();
    keys.dedup();
    super::prepared::Prepared::new(&LOCK)
        .bind::<Array<BigInt>, _>(&keys)
        .execute(conn)?;
    Ok(())
}

/// The advisory lock key of an order: its first 8 bytes. A collision only
/// serializes two orders more than needed.
pub fn lock_key(id: Uuid) -> i64 {
    let bytes = id.as_bytes();
    i64::from_be_bytes(bytes[..8].try_into().expect("16 bytes"))
}

/// The orders among `ids` whose advisory lock this transaction got (the
/// others are being applied; the next pass takes them).
pub(super) fn try_lock_orders(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = BigInt)]
        k: i64,
    }
    let mut keys: Vec<i64> = ids.iter().map(|id| lock_key(*id)).collect();
    keys.sort_unstable();
    keys.dedup();
    let locked: BTreeSet<i64> =
        diesel::sql_query("SELECT k FROM unnest($1) AS t(k) WHERE pg_try_advisory_xact_lock(k)")
            .bind::<Array<BigInt>, _>(&keys)
            .load::<Key>(conn)?
            .into_iter()
            .map(|r| r.k)
            .collect();
    Ok(ids
        .iter()
        .copied()
        .filter(|id| locked.contains(&lock_key(*id)))
        .collect())
}
