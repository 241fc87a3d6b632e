//! The change feed's storage (contract 10, `GET /v1/changes`): per unit,
//! order and kind of view, where the last change of that view for that unit
//! stands (`unit_changes`: the writing transaction and a position). A change moves the row to the end of its
//! unit's feed, so the feed is compacted by construction, and a page is a
//! range scan of `unit_changes_feed` whatever the number of orders stored.
//! An order shared with 94 jobcentres that changes writes 94 rows, one per
//! unit told.

use std::collections::BTreeSet;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use uuid::Uuid;

use crate::domain::fanout::{Event, Notification};
use crate::domain::unit::Unit;

/// Which view of an order changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Order,
    Log,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Log => "log",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "order" => Some(Kind::Order),
            "log" => Some(Kind::Log),
            _ => None,
        }
    }

    /// The view a notification event is about.
    fn of(event: Event) -> Kind {
        match event {
            Event::JobOrderUpdated
            | Event::JobOrderRevoked
            | Event::JobOrderExpired
            | Event::JobOrderPromiseMissed => Kind::Order,
            Event::MediationLogUpdated => Kind::Log,
        }
    }
}

/// The views a transaction changed: every unit it tells something.
#[derive(Debug, Default)]
pub struct Changes(BTreeSet<(Unit, Uuid, Kind)>);

impl Changes {
    /// Adds the units `notifications` about order `id` go to.
    pub fn add(&mut self, id: Uuid, notifications: &[Notification]) {
        for n in notifications {
            for unit in &n.recipients {
                self.0.insert((unit.clone(), id, Kind::of(n.event)));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Moves each changed view to the end of its unit's feed: the row takes
/// this transaction's id and a new position. Takes no lock: a reader
/// returns a row only once every transaction older than it has finished
/// ([`page`]), so rows never appear behind a reader's cursor.
///
/// The statement, with its four parameters numbered from `$first` (it is
/// one part of the apply transaction's last statement).
pub(super) fn record_sql(first: usize) -> String {
    let [t, c, id, k] = [first, first + 1, first + 2, first + 3];
    format!(
        "INSERT INTO unit_changes (unit_type, unit_code, job_order_id, kind, xid, position) \
         SELECT t, c, id, k, pg_current_xact_id(), nextval('unit_changes_position') \
           FROM unnest(${t}::text[], ${c}::text[], ${id}::uuid[], ${k}::text[]) AS u(t, c, id, k) \
         ON CONFLICT (unit_type, unit_code, job_order_id, kind) \
         DO UPDATE SET xid = excluded.xid, position = excluded.position"
    )
}

/// [`record_sql`] as a statement of its own (expiry, the promise check).
pub(super) fn record(conn: &mut PgConnection, changes: &Changes) -> QueryResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    static RECORD: std::sync::LazyLock<super::prepared::Text> =
        std::sync::LazyLock::new(|| super::prepared::Text::new(&record_sql(1)));
    bind_record(changes, super::prepared::Prepared::new(&RECORD)).execute(conn)?;
    Ok(())
}

/// Binds the parameters of [`record_sql`] after those of `q`.
pub(super) fn bind_record<'a>(
    changes: &'a Changes,
    q: super::prepared::Prepared<'a>,
) -> super::prepared::Prepared<'a> {
    let (mut types, mut codes, mut ids, mut kinds) = (vec![], vec![], vec![], vec![]);
    for (unit, id, kind) in &changes.0 {
        types.push(unit.kind().as_str());
        codes.push(unit.code());
        ids.push(*id);
        kinds.push(kind.as_str());
    }
    q.bind::<Array<Text>, _>(types)
        .bind::<Array<Text>, _>(codes)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .bind::<Array<Text>, _>(kinds)
}

/// Where a feed reader stands: after the row of transaction `xid` at
/// `position` (both 0 at the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub xid: u64,
    pub position: i64,
}

/// One entry of a unit's feed.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Entry {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub job_order_id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt, column_name = "xid_number")]
    pub xid: i64,
    #[diesel(sql_type = BigInt)]
    pub position: i64,
}

impl Entry {
    /// The cursor just after this entry.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            xid: self.xid as u64,
            position: self.position,
        }
    }
}

/// A page of a unit's feed: a range of `unit_changes_feed`, in (writing
/// transaction, position) order, holding back the rows of transactions not
/// older than every transaction still running. Such a row waits for the
/// next read; any row written later belongs to a newer transaction, so it
/// comes after the cursor. For two changes of one order, that order is
/// commit order (the order's lock is taken before its transaction writes).
const PAGE: &str =
    "SELECT job_order_id, kind, xid::text::bigint AS xid_number, position FROM unit_changes \
     WHERE unit_type = $1 AND unit_code = $2 \
       AND (xid, position) > ($3::text::xid8, $4) \
       AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY xid, position LIMIT $5";

/// The first `limit` entries of `unit`'s feed after `after`.
pub fn page(
    conn: &mut PgConnection,
    unit: &Unit,
    after: Cursor,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    diesel::sql_query(PAGE)
        .bind::<Text, _>(unit.kind().as_str())
        .bind::<Text, _>(unit.code())
        .bind::<Text, _>(after.xid.to_string())
        .bind::<BigInt, _>(after.position)
        .bind::<BigInt, _>(limit)
        .load(conn)
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of [`page`], for tests and benchmarks
/// to show what a page reads.
pub fn explain_page(
    conn: &mut PgConnection,
    unit: &Unit,
    after: Cursor,
    limit: i64,
) -> QueryResult<serde_json::Value> {
    super::explained(
        conn,
        diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {PAGE}"))
            .into_boxed()
            .bind::<Text, _>(unit.kind().as_str())
            .bind::<Text, _>(unit.code())
            .bind::<Text, _>(after.xid.to_string())
            .bind::<BigInt, _>(after.position)
            .bind::<BigInt, _>(limit),
    )
}
