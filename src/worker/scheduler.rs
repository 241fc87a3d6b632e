//! The periodic work of `jobsync run` beside consuming: every
//! `JOBSYNC_EXPIRY_INTERVAL_S`, expire the orders whose mediation deadline
//! has passed (in bounded batches, until none is due), then delete inbox
//! rows older than `JOBSYNC_INBOX_RETENTION_DAYS`. It needs the database
//! only; what it writes to the outbox the relay publishes.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::expiry::Clock;
use crate::store;
use crate::store::{expiry, PgPool};
use crate::telemetry::events::{
    InternalEvent, OrdersExpired, PersonalDataDeleted, PromisesChecked,
};

/// Orders expired per transaction, at most.
pub const EXPIRY_BATCH: i64 = 500;
/// Promises checked in one transaction, at most.
const PROMISE_BATCH: i64 = 500;
/// Orders whose personal data one transaction deletes, at most.
const PERSONAL_DATA_BATCH: i64 = 500;
/// Batches of 1,000 orders given their search text per pass, at most.
const SEARCH_BACKFILL_BATCHES: usize = 5;
/// Inbox rows deleted per statement, at most.
const PRUNE_BATCH: i64 = 10_000;

pub(super) async fn run(
    settings: Settings,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let interval = Duration::from_secs(settings.expiry_interval_s);
    loop {
        if let Err(e) = pass(&settings, &pool, clock.as_ref(), &shutdown).await {
            tracing::warn!(error = %e, "expiry or housekeeping pass failed; trying again next interval");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One expiry pass and one housekeeping pass.
async fn pass(
    settings: &Settings,
    pool: &PgPool,
    clock: &dyn Clock,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let now = clock.now();
    let mut expired = 0;
    loop {
        let pass = on_db(pool, move |c| expiry::expire_due(c, now, EXPIRY_BATCH)).await?;
        let n = pass.orders;
        expired += n;
        OrdersExpired {
            count: n,
            redactions: pass.redactions,
        }
        .emit();
        if (n as i64) < EXPIRY_BATCH || shutdown.is_cancelled() {
            break;
        }
    }
    if expired > 0 {
        tracing::info!(
            orders = expired,
            "expired orders whose mediation deadline passed"
        );
    }
    // Personal data past its retention.
    let days = settings.personal_data_retention_days;
    let mut deleted = 0;
    loop {
        let pass = on_db(pool, move |c| {
            store::personal::delete_due(c, now, days, PERSONAL_DATA_BATCH)
        })
        .await?;
        deleted += pass.orders;
        if (pass.due as i64) < PERSONAL_DATA_BATCH || pass.orders == 0 || shutdown.is_cancelled() {
            break;
        }
    }
    PersonalDataDeleted {
        orders: deleted,
        retention_days: days,
    }
    .emit();
    // Service promises falling due.
    let mut missed = Vec::new();
    loop {
        let checked = on_db(pool, move |c| {
            store::missed::check_due(c, now, PROMISE_BATCH)
        })
        .await?;
        let n = checked.missed.len();
        missed.extend(checked.missed);
        if checked.orders == 0 || (n as i64) < PROMISE_BATCH || shutdown.is_cancelled() {
            break;
        }
    }
    let open = on_db(pool, store::promises::open_counts).await?;
    PromisesChecked {
        missed: &missed,
        open: &open,
    }
    .emit();
    // Orders stored before full-text search get their search text, a few
    // thousand a pass, in the background (several instances may do this at
    // once: each row is written the same).
    let filled = on_db(pool, |c| {
        let mut filled = 0;
        for _ in 0..SEARCH_BACKFILL_BATCHES {
            let n = store::read::backfill_search(c, 1_000)?;
            filled += n;
            if n < 1_000 {
                break;
            }
        }
        Ok(filled)
    })
    .await?;
    if filled > 0 {
        tracing::info!(
            orders = filled,
            "filled the search text of orders stored before search existed"
        );
    }
    let before = now - chrono::Duration::days(i64::from(settings.inbox_retention_days));
    let mut pruned = 0;
    loop {
        let n = on_db(pool, move |c| expiry::prune_inbox(c, before, PRUNE_BATCH)).await?;
        pruned += n;
        if (n as i64) < PRUNE_BATCH || shutdown.is_cancelled() {
            break;
        }
    }
    if pruned > 0 {
        tracing::info!(rows = pruned, "deleted inbox rows past their retention");
    }
    Ok(())
}

/// Runs `f` on a connection of `pool`, on the blocking pool.
async fn on_db<T: Send + 'static>(
    pool: &PgPool,
    f: impl FnOnce(&mut diesel::PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        anyhow::Ok(f(&mut conn)?)
    })
    .await?
}
