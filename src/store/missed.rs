//! The check of the service promises (contract 11), run with expiry: the
//! open promises falling due are found by the partial index, marked missed
//! once, and what that tells goes to the outbox, in one transaction.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::outbox::{self, Effects};
use super::{feed, locks, promises, views};
use crate::domain::plan::promises as plan;
use crate::domain::promises::Promise;

/// What a check did.
#[derive(Debug, Default)]
pub struct Checked {
    /// Orders it took (0: nothing was due).
    pub orders: usize,
    /// Each promise it found missed.
    pub missed: Vec<Promise>,
}

/// Finds up to `limit` open promises due at `now`, marks them missed and
/// writes what goes out, in one transaction. Their orders are try-locked
/// (an order being applied, or taken by another instance's check, is left
/// to the next check) and read again under the lock, so with several
/// instances each promise is missed once.
pub fn check_due(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Checked> {
    use chrono::SubsecRound as _;
    // PostgreSQL keeps microseconds: what is stored and what the views say
    // must agree.
    let now = now.trunc_subsecs(6);
    conn.transaction(|conn| {
        let due = promises::due_orders(conn, now, limit)?;
        if due.is_empty() {
            return Ok(Checked::default());
        }
        let ids = locks::try_lock_orders(conn, &due)?;
        if ids.is_empty() {
            return Ok(Checked::default());
        }
        let state = plan::State {
            views: views::load_view_facts(conn, &ids)?,
            log_counts: views::log_counts(conn, &ids)?,
        };
        let mut effects = Effects::new(now);
        let checked = plan::plan(&state, now, &mut |o| effects.emit(&[], o));
        promises::write(conn, &checked.promises)?;
        views::save_order_hashes(conn, &checked.order_hashes)?;
        outbox::insert(conn, effects.outbox)?;
        feed::record(conn, &effects.changes)?;
        Ok(Checked {
            orders: ids.len(),
            missed: checked.missed,
        })
    })
}
