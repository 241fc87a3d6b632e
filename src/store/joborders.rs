//! The job order part of the apply transaction (section 4.1): the stored
//! orders, the decisions in version order, one multi-row upsert guarded by
//! version, and the sharing rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Date, Integer, Json, Nullable, Text, Timestamptz};
use uuid::Uuid;

use super::apply::{Effects, Inbound, Outcome, Payload, ROWS_PER_STATEMENT};
use super::schema::{job_order_former_units, job_order_sharing, job_orders};
use super::unnest::{columns, insert_sql, set_excluded};
use super::views;
use super::JsonText;
use crate::domain::expiry::has_passed;
use crate::domain::fanout::{lifecycle, log_changes, order_changes, revoked_view, Seen};
use crate::domain::joborder::{
    decide, Applied, Context, Decision, JobOrder, StoredOrder, Timeline,
};
use crate::domain::status::StatusKind;
use crate::domain::unit::Unit;
use crate::domain::views::{
    log_view, log_viewers, responsible_order_view, shared_order_view, OrderExtras,
};

/// Decides and writes the job order snapshots `messages[i]` for `i` in
/// `indices` (first deliveries of new message ids), filling `outcomes`, and
/// adds the notifications and lifecycle events of each applied version to
/// `effects`.
pub(super) fn apply(
    conn: &mut PgConnection,
    messages: &[Inbound],
    indices: &[usize],
    outcomes: &mut [Option<Outcome>],
    effects: &mut Effects,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let order = |i: usize| match &messages[i].payload {
        Payload::JobOrder(o) => o,
        Payload::MediationLog(_) => unreachable!("only job order snapshots are passed"),
    };
    let ids: Vec<Uuid> = {
        let set: HashSet<Uuid> = indices.iter().map(|&i| order(i).id).collect();
        set.into_iter().collect()
    };
    let Stored {
        orders: mut stored,
        expired,
        mut hashes,
    } = load_stored(conn, &ids)?;
    let mut stored_sharing = views::load_sharing(conn, &ids)?;
    let logs = views::log_counts(conn, &ids)?;
    // Orders some message hands over: their logs' views change too.
    let handed: Vec<Uuid> = indices
        .iter()
        .map(|&i| order(i))
        .filter(|o| {
            stored
                .get(&o.id)
                .is_some_and(|s| s.responsible_unit != o.responsible_unit)
        })
        .map(|o| o.id)
        .collect();
    let (log_snapshots, mut log_hashes) = if handed.is_empty() {
        Default::default()
    } else {
        (
            views::load_log_snapshots(conn, &handed)?,
            views::load_log_hashes(conn, &handed)?,
        )
    };

    // Per order, the messages in version order (arrival order within a version).
    let mut by_order: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for &i in indices {
        by_order.entry(order(i).id).or_default().push(i);
    }
    let mut finals: Vec<Final<'_>> = Vec::new();
    // The orders whose sharing changed, and of those the ones that had
    // sharing rows to delete.
    let mut sharing_changed: Vec<(Uuid, BTreeMap<Unit, DateTime<Utc>>)> = Vec::new();
    let mut unshared: Vec<Uuid> = Vec::new();
    let mut former: Vec<FormerUnit<'_>> = Vec::new();
    let mut log_hashes_after: Vec<(Uuid, BTreeMap<Unit, Vec<u8>>)> = Vec::new();
    for (id, mut group) in by_order {
        group.sort_by_key(|&i| (order(i).version, i));
        let mut current = stored.remove(&id);
        // Who the order is shared with, and since when.
        let before: BTreeMap<Unit, DateTime<Utc>> = stored_sharing.remove(&id).unwrap_or_default();
        let mut sharing = before.clone();
        let (total, undecided) = logs.get(&id).copied().unwrap_or((0, 0));
        let context = Context {
            has_mediation_entries: total > 0,
        };
        // What the units were told; for an order stored without it (before
        // notifications existed), its units count as told something else,
        // so that they all get the view now and the lost ones are revoked.
        let mut seen: Option<Seen> = current.as_ref().map(|c| {
            let (responsible_hash, shared_hash) = hashes.remove(&id).unwrap_or_default();
            Seen {
                responsible: c.responsible_unit.clone(),
                shared: before.keys().cloned().collect(),
                responsible_hash,
                shared_hash,
            }
        });
        let mut expired_at = expired.get(&id).copied().flatten();
        let mut unit_log_hashes = log_hashes.remove(&id);
        let mut last_applied: Option<(&JobOrder, Applied, Option<DateTime<Utc>>)> = None;
        for i in group {
            let o = order(i);
            outcomes[i] = Some(match decide(current.as_ref(), o, context) {
                Decision::Apply(applied) => {
                    // A deadline moved into the future (or dropped) undoes
                    // an expiry.
                    if o.mediation_deadline.is_none_or(|d| !has_passed(d, now)) {
                        expired_at = None;
                    }
                    // Who gains and who loses the order with this version,
                    // and when: a unit in the first version seen counts as
                    // shared with from the order's creation.
                    let now: BTreeSet<Unit> = o.sharing.units().iter().cloned().collect();
                    let gained_at = if current.is_some() {
                        o.updated_at
                    } else {
                        o.created_at
                    };
                    let next: BTreeMap<Unit, DateTime<Utc>> = now
                        .iter()
                        .map(|u| (u.clone(), sharing.get(u).copied().unwrap_or(gained_at)))
                        .collect();
                    for (unit, &since) in &sharing {
                        if !now.contains(unit) {
                            former.push(FormerUnit::new(
                                id,
                                unit.clone(),
                                "shared",
                                since,
                                o.updated_at,
                            ));
                        }
                    }
                    if let (Some(from), Some(c)) = (&applied.handed_over_from, &current) {
                        former.push(FormerUnit::new(
                            id,
                            from.clone(),
                            "responsible",
                            c.timeline.responsible_since,
                            o.updated_at,
                        ));
                    }
                    // Who is told what.
                    let inbound = messages[i].message_id.as_str();
                    let trace = &messages[i].trace;
                    let extras = OrderExtras {
                        coordinator_reassignment_needed: applied.coordinator_reassignment_needed,
                        expired_at,
                        undecided_candidates: undecided,
                    };
                    let (notifications, told) = order_changes(
                        seen.as_ref(),
                        &o.responsible_unit,
                        &now,
                        responsible_order_view(&o.wire, extras),
                        shared_order_view(&o.wire, expired_at),
                        |reason| revoked_view(&o.wire.job_order_id, o.wire.version, reason),
                    );
                    effects.notify(
                        inbound,
                        trace,
                        messages[i].hub_time,
                        id,
                        o.version,
                        &notifications,
                    );
                    let before = current.as_ref().map(|c| (c.status, &c.responsible_unit));
                    for (event, data) in lifecycle(before, &o.wire) {
                        let mut row = effects
                            .composer
                            .lifecycle(inbound, trace, id, o.version, event, &data);
                        row.hub_time = messages[i].hub_time;
                        effects.outbox.push(row);
                    }
                    if applied.handed_over_from.is_some() {
                        if let Some(log) = log_snapshots.get(&id) {
                            let responsible = &o.responsible_unit;
                            let viewers = log_viewers(log, responsible)
                                .into_iter()
                                .map(|u| {
                                    let v = log_view(log, &u, responsible);
                                    (u, v)
                                })
                                .collect();
                            let (notifications, after) =
                                log_changes(&unit_log_hashes.take().unwrap_or_default(), viewers);
                            effects.notify(
                                inbound,
                                trace,
                                messages[i].hub_time,
                                id,
                                o.version,
                                &notifications,
                            );
                            unit_log_hashes = Some(after);
                        }
                    }
                    seen = Some(told);
                    sharing = next;
                    current = Some(StoredOrder::after(o, &applied));
                    last_applied = Some((o, applied, expired_at));
                    Outcome::Applied
                }
                Decision::Stale => Outcome::Stale,
                Decision::Duplicate => Outcome::Duplicate,
                Decision::Reject(r) => Outcome::Rejected(r),
            });
        }
        if let Some((order, applied, expired_at)) = last_applied {
            if sharing != before {
                if !before.is_empty() {
                    unshared.push(id);
                }
                sharing_changed.push((id, sharing));
            }
            if let Some(h) = unit_log_hashes {
                log_hashes_after.push((id, h));
            }
            let told = seen.expect("an applied version told its units");
            finals.push(Final {
                order,
                applied,
                expired_at,
                responsible_view_hash: told.responsible_hash,
                shared_view_hash: told.shared_hash,
            });
        }
    }
    upsert_orders(conn, &finals)?;
    replace_sharing(conn, &unshared, &sharing_changed)?;
    record_former_units(conn, former)?;
    views::save_log_hashes(conn, &log_hashes_after)?;
    Ok(())
}

/// The last version of an order a batch applied, with what its units were
/// told: what the upsert writes.
struct Final<'a> {
    order: &'a JobOrder,
    applied: Applied,
    expired_at: Option<DateTime<Utc>>,
    responsible_view_hash: Vec<u8>,
    shared_view_hash: Vec<u8>,
}

/// A unit that lost an order (its responsibility or its share of it), with
/// when it had gained it.
#[derive(Insertable)]
#[diesel(table_name = job_order_former_units)]
struct FormerUnit<'a> {
    job_order_id: Uuid,
    unit_type: &'static str,
    unit_code: String,
    role: &'a str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl<'a> FormerUnit<'a> {
    fn new(
        job_order_id: Uuid,
        unit: Unit,
        role: &'a str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Self {
        FormerUnit {
            job_order_id,
            unit_type: unit.kind().as_str(),
            unit_code: unit.code().to_owned(),
            role,
            since,
            until,
        }
    }
}

/// Records former units, keeping the first time each gained and the latest
/// time each lost the order. A batch with several versions of an order can
/// lose the same unit twice (unshared, shared again, unshared): one row per
/// unit goes to the upsert, which may not touch a row twice.
fn record_former_units(conn: &mut PgConnection, rows: Vec<FormerUnit<'_>>) -> QueryResult<()> {
    use job_order_former_units::dsl as f;
    let mut latest: HashMap<(Uuid, &str, String, &str), FormerUnit<'_>> = HashMap::new();
    for r in rows {
        let key = (r.job_order_id, r.unit_type, r.unit_code.clone(), r.role);
        match latest.get_mut(&key) {
            Some(kept) => {
                kept.since = kept.since.min(r.since);
                kept.until = kept.until.max(r.until);
            }
            None => {
                latest.insert(key, r);
            }
        }
    }
    let rows: Vec<FormerUnit<'_>> = latest.into_values().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        diesel::insert_into(job_order_former_units::table)
            .values(chunk)
            .on_conflict((f::job_order_id, f::unit_type, f::unit_code, f::role))
            .do_update()
            .set((
                f::since.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                    "LEAST(job_order_former_units.since, excluded.since)",
                )),
                f::until.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                    "GREATEST(job_order_former_units.until, excluded.until)",
                )),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Queryable)]
struct StoredRow {
    id: Uuid,
    version: i64,
    content_hash: Vec<u8>,
    unit_type: String,
    unit_code: String,
    status: String,
    coordinator_reassignment_needed: bool,
    handover_coordinator_id: Option<String>,
    coordinator_allowed: bool,
    closed_at: Option<DateTime<Utc>>,
    coordinator_allowed_since: DateTime<Utc>,
    responsible_since: DateTime<Utc>,
    expired_at: Option<DateTime<Utc>>,
    responsible_view_hash: Option<Vec<u8>>,
    shared_view_hash: Option<Vec<u8>>,
}

/// The stored orders among a batch's.
struct Stored {
    orders: HashMap<Uuid, StoredOrder>,
    /// When each expired.
    expired: HashMap<Uuid, Option<DateTime<Utc>>>,
    /// What its units were last told.
    hashes: HashMap<Uuid, views::OrderHashes>,
}

fn load_stored(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<Stored> {
    let rows: Vec<StoredRow> = job_orders::table
        .select((
            job_orders::id,
            job_orders::version,
            job_orders::content_hash,
            job_orders::responsible_unit_type,
            job_orders::responsible_unit_code,
            job_orders::status,
            job_orders::coordinator_reassignment_needed,
            job_orders::handover_coordinator_id,
            job_orders::coordinator_allowed,
            job_orders::closed_at,
            job_orders::coordinator_allowed_since,
            job_orders::responsible_since,
            job_orders::expired_at,
            job_orders::responsible_view_hash,
            job_orders::shared_view_hash,
        ))
        .filter(job_orders::id.eq_any(ids))
        .load(conn)?;
    let mut stored = Stored {
        orders: HashMap::with_capacity(rows.len()),
        expired: HashMap::with_capacity(rows.len()),
        hashes: HashMap::with_capacity(rows.len()),
    };
    for r in rows {
        stored.expired.insert(r.id, r.expired_at);
        stored.hashes.insert(
            r.id,
            views::told(r.responsible_view_hash, r.shared_view_hash),
        );
        let order = StoredOrder {
            version: r.version,
            content_hash: r.content_hash,
            responsible_unit: Unit::from_stored(&r.unit_type, &r.unit_code)
                .expect("the CHECK constraint keeps unit types valid"),
            status: StatusKind::parse(&r.status)
                .expect("the CHECK constraint keeps statuses valid"),
            coordinator_reassignment_needed: r.coordinator_reassignment_needed,
            handover_coordinator_id: r.handover_coordinator_id,
            coordinator_allowed: r.coordinator_allowed,
            timeline: Timeline {
                closed_at: r.closed_at,
                coordinator_allowed_since: r.coordinator_allowed_since,
                responsible_since: r.responsible_since,
            },
        };
        stored.orders.insert(r.id, order);
    }
    Ok(stored)
}

columns! {
    /// A job order row as the upsert writes it.
    struct JobOrderRow<'a>, columns JobOrderColumns {
        id: Uuid => diesel::sql_types::Uuid,
        version: i64 => BigInt,
        content_hash: &'a [u8] => Bytea,
        request_id: Option<&'a str> => Nullable<Text>,
        origin: &'a str => Text,
        changed_by_kind: &'a str => Text,
        changed_by_unit_type: Option<&'a str> => Nullable<Text>,
        changed_by_unit_code: Option<&'a str> => Nullable<Text>,
        title: &'a str => Text,
        occupation_name: &'a str => Text,
        occupation_alias: Option<&'a str> => Nullable<Text>,
        occupation_code: Option<&'a str> => Nullable<Text>,
        employer_cvr: &'a str => Text,
        employer_p_number: Option<&'a str> => Nullable<Text>,
        employer_name: &'a str => Text,
        employer_conflict_affected: bool => Bool,
        contact_name: Option<&'a str> => Nullable<Text>,
        contact_email: Option<&'a str> => Nullable<Text>,
        contact_phone: Option<&'a str> => Nullable<Text>,
        responsible_unit_type: &'a str => Text,
        responsible_unit_code: &'a str => Text,
        coordinator_id: Option<&'a str> => Nullable<Text>,
        coordinator_name: Option<&'a str> => Nullable<Text>,
        coordinator_allowed: bool => Bool,
        tasks: &'a str => Text,
        qualifications_and_pay: Option<&'a str> => Nullable<Text>,
        working_hours: Option<&'a str> => Nullable<Text>,
        continuous: bool => Bool,
        positions: Option<i32> => Nullable<Integer>,
        expected_start: Option<chrono::NaiveDate> => Nullable<Date>,
        mediation_deadline: Option<chrono::NaiveDate> => Nullable<Date>,
        status: &'a str => Text,
        status_reason: Option<&'a str> => Nullable<Text>,
        status_comment: Option<&'a str> => Nullable<Text>,
        sharing_scope: &'a str => Text,
        created_at: chrono::DateTime<chrono::Utc> => Timestamptz,
        updated_at: chrono::DateTime<chrono::Utc> => Timestamptz,
        coordinator_reassignment_needed: bool => Bool,
        handover_coordinator_id: Option<&'a str> => Nullable<Text>,
        closed_at: Option<DateTime<Utc>> => Nullable<Timestamptz>,
        coordinator_allowed_since: DateTime<Utc> => Timestamptz,
        snapshot: JsonText => Json,
        expired_at: Option<DateTime<Utc>> => Nullable<Timestamptz>,
        responsible_view_hash: &'a [u8] => Bytea,
        shared_view_hash: &'a [u8] => Bytea,
        responsible_since: DateTime<Utc> => Timestamptz,
    }
}

impl<'a> JobOrderRow<'a> {
    fn new(f: &'a Final<'a>) -> Self {
        let (o, applied) = (f.order, &f.applied);
        let changed_by_unit = match &o.changed_by {
            crate::domain::joborder::ChangedBy::Unit(u) => Some(u),
            _ => None,
        };
        let contact = o.contact.as_ref();
        JobOrderRow {
            id: o.id,
            version: o.version,
            content_hash: &o.content_hash,
            request_id: o.request_id.as_deref(),
            origin: o.origin.as_str(),
            changed_by_kind: o.changed_by.kind_str(),
            changed_by_unit_type: changed_by_unit.map(|u| u.kind().as_str()),
            changed_by_unit_code: changed_by_unit.map(|u| u.code()),
            title: &o.title,
            occupation_name: &o.occupation.name,
            occupation_alias: o.occupation.alias.as_deref(),
            occupation_code: o.occupation.code.as_deref(),
            employer_cvr: o.employer.cvr.as_str(),
            employer_p_number: o.employer.p_number.as_deref(),
            employer_name: &o.employer.name,
            employer_conflict_affected: o.employer.conflict_affected,
            contact_name: contact.map(|c| c.name.as_str()),
            contact_email: contact.and_then(|c| c.email.as_ref()).map(|e| e.as_str()),
            contact_phone: contact.and_then(|c| c.phone.as_ref()).map(|p| p.as_str()),
            responsible_unit_type: o.responsible_unit.kind().as_str(),
            responsible_unit_code: o.responsible_unit.code(),
            coordinator_id: o.coordinator.as_ref().map(|c| c.id.as_str()),
            coordinator_name: o.coordinator.as_ref().map(|c| c.name.as_str()),
            coordinator_allowed: o.coordinator_allowed,
            tasks: &o.descriptions.tasks,
            qualifications_and_pay: o.descriptions.qualifications_and_pay.as_deref(),
            working_hours: o.descriptions.working_hours.as_deref(),
            continuous: o.continuous,
            positions: o.positions,
            expected_start: o.expected_start,
            mediation_deadline: o.mediation_deadline,
            status: o.status.kind().as_str(),
            status_reason: o.status.reason().map(|r| r.as_str()),
            status_comment: o.status_comment.as_deref(),
            sharing_scope: o.sharing.scope().as_str(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            coordinator_reassignment_needed: applied.coordinator_reassignment_needed,
            handover_coordinator_id: applied.handover_coordinator_id.as_deref(),
            closed_at: applied.timeline.closed_at,
            coordinator_allowed_since: applied.timeline.coordinator_allowed_since,
            snapshot: JsonText::of(&o.wire),
            expired_at: f.expired_at,
            responsible_view_hash: &f.responsible_view_hash,
            shared_view_hash: &f.shared_view_hash,
            responsible_since: applied.timeline.responsible_since,
        }
    }
}

/// The upsert of `JobOrderColumns`: the `WHERE` on the update is the
/// version guard, so an older version can never overwrite a newer one even
/// outside the lock.
static UPSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let names = JobOrderColumns::NAMES;
    insert_sql(
        "job_orders",
        names,
        &format!(
            "ON CONFLICT (id) DO UPDATE SET {}, applied_at = now() \
             WHERE job_orders.version < excluded.version",
            set_excluded(names, "id")
        ),
    )
});

/// One upsert for the whole batch (its parameters are arrays, however many
/// orders it holds).
fn upsert_orders(conn: &mut PgConnection, finals: &[Final<'_>]) -> QueryResult<()> {
    if finals.is_empty() {
        return Ok(());
    }
    let mut columns = JobOrderColumns::with_capacity(finals.len());
    for f in finals {
        columns.push(JobOrderRow::new(f));
    }
    columns.query(&UPSERT_SQL).execute(conn)?;
    Ok(())
}

/// Replaces the sharing rows of `finals` (the orders whose sharing changed),
/// deleting those of `stored` (the ones of them that had any).
fn replace_sharing(
    conn: &mut PgConnection,
    stored: &[Uuid],
    finals: &[(Uuid, BTreeMap<Unit, DateTime<Utc>>)],
) -> QueryResult<()> {
    if !stored.is_empty() {
        diesel::delete(
            job_order_sharing::table.filter(job_order_sharing::job_order_id.eq_any(stored)),
        )
        .execute(conn)?;
    }
    let mut columns = SharingColumns::with_capacity(finals.len());
    for (id, units) in finals {
        for (u, &since) in units {
            columns.push(SharingRow {
                job_order_id: *id,
                unit_type: u.kind().as_str(),
                unit_code: u.code(),
                since,
            });
        }
    }
    if !columns.is_empty() {
        static INSERT: LazyLock<String> =
            LazyLock::new(|| insert_sql("job_order_sharing", SharingColumns::NAMES, ""));
        columns.query(&INSERT).execute(conn)?;
    }
    Ok(())
}

columns! {
    /// A unit an order is shared with.
    struct SharingRow<'a>, columns SharingColumns {
        job_order_id: Uuid => diesel::sql_types::Uuid,
        unit_type: &'a str => Text,
        unit_code: &'a str => Text,
        since: DateTime<Utc> => Timestamptz,
    }
}
