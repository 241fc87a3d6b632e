//! What each unit was last told (content hashes of its views), and the
//! stored snapshots views are rebuilt from.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{job_order_sharing, job_orders, mediation_log_views, mediation_logs};
use super::unnest::ROWS_PER_STATEMENT;
use crate::contract::mediationlog::MediationLogData;
use crate::domain::unit::Unit;

/// The content hashes of the last view of an order's responsible unit and
/// of the last view every unit it is shared with got.
pub type OrderHashes = (Vec<u8>, Vec<u8>);

/// The [`OrderHashes`] of an order's row (empty for an order no unit was
/// told of).
pub(super) fn told(
    responsible_view_hash: Option<Vec<u8>>,
    shared_view_hash: Option<Vec<u8>>,
) -> OrderHashes {
    (
        responsible_view_hash.unwrap_or_default(),
        shared_view_hash.unwrap_or_default(),
    )
}

/// Records the hashes of the views the units of each (stored) order last
/// got, in one statement.
pub fn save_order_hashes(
    conn: &mut PgConnection,
    rows: &[(Uuid, Vec<u8>, Vec<u8>)],
) -> QueryResult<()> {
    use diesel::sql_types::{Array, Bytea};
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    let responsible: Vec<&[u8]> = rows.iter().map(|(_, r, _)| r.as_slice()).collect();
    let shared: Vec<&[u8]> = rows.iter().map(|(_, _, s)| s.as_slice()).collect();
    diesel::sql_query(
        "UPDATE job_orders j SET responsible_view_hash = v.r, shared_view_hash = v.s \
           FROM unnest($1, $2, $3) AS v(id, r, s) WHERE j.id = v.id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
    .bind::<Array<Bytea>, _>(&responsible)
    .bind::<Array<Bytea>, _>(&shared)
    .execute(conn)?;
    Ok(())
}

/// Per order: each unit's last log view hash.
pub fn load_log_hashes(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, BTreeMap<Unit, Vec<u8>>>> {
    let rows: Vec<(Uuid, String, String, Vec<u8>)> = mediation_log_views::table
        .select((
            mediation_log_views::job_order_id,
            mediation_log_views::unit_type,
            mediation_log_views::unit_code,
            mediation_log_views::view_hash,
        ))
        .filter(mediation_log_views::job_order_id.eq_any(ids))
        .load(conn)?;
    let mut out: HashMap<Uuid, BTreeMap<Unit, Vec<u8>>> = HashMap::new();
    for (id, t, c, hash) in rows {
        let unit = Unit::from_stored(&t, &c).expect("the CHECK constraint keeps unit types valid");
        out.entry(id).or_default().insert(unit, hash);
    }
    Ok(out)
}

/// Replaces the log view hashes of each order.
pub fn save_log_hashes(
    conn: &mut PgConnection,
    per_order: &[(Uuid, BTreeMap<Unit, Vec<u8>>)],
) -> QueryResult<()> {
    if per_order.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = per_order.iter().map(|(id, _)| *id).collect();
    diesel::delete(
        mediation_log_views::table.filter(mediation_log_views::job_order_id.eq_any(&ids)),
    )
    .execute(conn)?;
    let rows: Vec<_> = per_order
        .iter()
        .flat_map(|(id, hashes)| {
            hashes.iter().map(move |(unit, hash)| {
                (
                    mediation_log_views::job_order_id.eq(*id),
                    mediation_log_views::unit_type.eq(unit.kind().as_str()),
                    mediation_log_views::unit_code.eq(unit.code()),
                    mediation_log_views::view_hash.eq(hash.as_slice()),
                )
            })
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        diesel::insert_into(mediation_log_views::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

/// The stored log snapshots of `ids` that have one.
pub fn load_log_snapshots(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, MediationLogData>> {
    let rows: Vec<(Uuid, serde_json::Value)> = mediation_logs::table
        .select((mediation_logs::job_order_id, mediation_logs::snapshot))
        .filter(mediation_logs::job_order_id.eq_any(ids))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, snapshot)| {
            let log = serde_json::from_value(snapshot).expect("stored snapshots are canonical");
            (id, log)
        })
        .collect())
}

pub(super) use crate::domain::plan::ViewFacts;

/// The [`ViewFacts`] of the stored orders among `ids`.
pub(super) fn load_view_facts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, ViewFacts>> {
    type Row = (
        Uuid,
        serde_json::Value,
        i64,
        bool,
        Option<DateTime<Utc>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = job_orders::table
        .select((
            job_orders::id,
            job_orders::snapshot,
            job_orders::version,
            job_orders::coordinator_reassignment_needed,
            job_orders::expired_at,
            job_orders::responsible_view_hash,
            job_orders::shared_view_hash,
        ))
        .filter(job_orders::id.eq_any(ids))
        .load(conn)?;
    let mut promises = if rows.is_empty() {
        HashMap::new()
    } else {
        super::promises::load(conn, ids)?
    };
    Ok(rows
        .into_iter()
        .map(|(id, snapshot, version, needed, expired_at, r, s)| {
            let facts = ViewFacts {
                snapshot: serde_json::from_value(snapshot).expect("stored snapshots are canonical"),
                version,
                coordinator_reassignment_needed: needed,
                expired_at,
                promises: promises.remove(&id).unwrap_or_default(),
                told: told(r, s),
            };
            (id, facts)
        })
        .collect())
}

/// The units each of `ids` is shared with, as stored, each with when it
/// gained access.
pub(super) fn load_sharing(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, BTreeMap<Unit, DateTime<Utc>>>> {
    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> = job_order_sharing::table
        .select((
            job_order_sharing::job_order_id,
            job_order_sharing::unit_type,
            job_order_sharing::unit_code,
            job_order_sharing::since,
        ))
        .filter(job_order_sharing::job_order_id.eq_any(ids))
        .load(conn)?;
    let mut out: HashMap<Uuid, BTreeMap<Unit, DateTime<Utc>>> = HashMap::new();
    for (id, unit_type, unit_code, since) in rows {
        out.entry(id).or_default().insert(
            Unit::from_stored(&unit_type, &unit_code)
                .expect("the CHECK constraint keeps unit types valid"),
            since,
        );
    }
    Ok(out)
}

/// Per order among `ids` with a log: its entries in all, and the undecided.
pub(super) fn log_counts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, (i32, i32)>> {
    let rows: Vec<(Uuid, i32, i32)> = mediation_logs::table
        .select((
            mediation_logs::job_order_id,
            mediation_logs::total,
            mediation_logs::undecided,
        ))
        .filter(mediation_logs::job_order_id.eq_any(ids))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, t, u)| (id, (t, u))).collect())
}
