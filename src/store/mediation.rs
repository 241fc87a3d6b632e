//! The mediation log part of the apply transaction (section 4.2): the stored
//! logs and orders, the decisions in version order, the upserts of the logs
//! and their entries (guarded by version), and the history rows.

use crate::domain::promises::Durations;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::pg::upsert::excluded;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use super::outbox::Effects;
use super::schema::{
    job_order_former_units, job_orders, mediation_entries, mediation_entry_history, mediation_logs,
};
use super::unnest::ROWS_PER_STATEMENT;
use super::views;
use crate::domain::joborder::{ChangedBy, Timeline};
use crate::domain::mediationlog::{
    Entry, EntryStatus, FormerRole, MediationLog, OrderFacts, Spell, StatusChange, StoredEntry,
    StoredLog,
};
use crate::domain::message::{Inbound, Outcome, Payload};
use crate::domain::plan::mediation as plan;
use crate::domain::status::StatusKind;
use crate::domain::unit::Unit;

/// Applies the mediation log snapshots `messages[i]` for `i` in `indices`
/// (first deliveries of new message ids): loads their logs' and orders'
/// state, has the domain plan them, writes the plan, fills `outcomes` and
/// adds what goes out to `effects`. The caller holds the orders' advisory
/// locks.
pub(super) fn apply(
    conn: &mut PgConnection,
    messages: &[Inbound],
    indices: &[usize],
    outcomes: &mut [Option<Outcome>],
    effects: &mut Effects,
    durations: &Durations,
) -> QueryResult<()> {
    let ids: Vec<Uuid> = {
        let set: HashSet<Uuid> = indices
            .iter()
            .filter_map(|&i| match &messages[i].payload {
                Payload::MediationLog(l) => Some(l.job_order_id),
                Payload::JobOrder(_) => None,
            })
            .collect();
        set.into_iter().collect()
    };
    let (state, emptied) = load(conn, &ids)?;
    let plan = plan::plan(state, messages, indices, durations, &mut |o| {
        effects.emit(messages, o)
    });
    write(conn, &plan, &emptied)?;
    for (i, outcome) in plan.outcomes {
        outcomes[i] = Some(outcome);
    }
    Ok(())
}

/// The state of the logs of orders `ids` and of those orders: the stored
/// orders with what the log rules need, the stored logs, what the
/// responsible unit's order view is made of and what each unit was told.
/// Reads only; the caller holds the advisory locks. With it, the orders
/// whose personal data was deleted (see store/personal.rs).
fn load(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<(plan::State, HashSet<Uuid>)> {
    let (orders, emptied) = load_order_facts(conn, ids)?;
    let logs = load_stored_logs(conn, ids)?;
    let known: Vec<Uuid> = orders.keys().copied().collect();
    let state = plan::State {
        views: views::load_view_facts(conn, &known)?,
        log_hashes: views::load_log_hashes(conn, &known)?,
        orders,
        logs,
    };
    Ok((state, emptied))
}

/// Writes `plan`: the last applied version of each log and its entries
/// (guarded by version), what each unit was told, and the history rows.
/// `emptied`: the orders whose personal data was deleted.
fn write(
    conn: &mut PgConnection,
    plan: &plan::Plan<'_>,
    emptied: &HashSet<Uuid>,
) -> QueryResult<()> {
    upsert_logs(conn, &plan.finals)?;
    // A new log version brings personal data anew: its order's is no
    // longer all deleted (see store/personal.rs). Rarely any: no statement
    // then.
    let refilled: Vec<Uuid> = plan
        .finals
        .iter()
        .map(|l| l.job_order_id)
        .filter(|id| emptied.contains(id))
        .collect();
    if !refilled.is_empty() {
        diesel::update(job_orders::table.filter(job_orders::id.eq_any(&refilled)))
            .set(job_orders::personal_data_deleted_at.eq(None::<DateTime<Utc>>))
            .execute(conn)?;
    }
    views::save_order_hashes(conn, &plan.order_hashes)?;
    views::save_log_hashes(conn, &plan.log_hashes)?;
    super::promises::write(conn, &plan.promises)?;
    upsert_entries(conn, &plan.finals)?;
    let history: Vec<HistoryRow<'_>> = plan
        .history
        .iter()
        .map(|(l, message_id, c)| HistoryRow::new(l, message_id, c))
        .collect();
    for chunk in history.chunks(ROWS_PER_STATEMENT) {
        // No ON CONFLICT: the inbox and the version guard make each change
        // reach this once; the unique key turns a second one into an error.
        diesel::insert_into(mediation_entry_history::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Queryable)]
struct OrderRow {
    id: Uuid,
    unit_type: String,
    unit_code: String,
    status: String,
    coordinator_allowed: bool,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    coordinator_allowed_since: DateTime<Utc>,
    responsible_since: DateTime<Utc>,
    personal_data_deleted_at: Option<DateTime<Utc>>,
}

/// The stored orders among `ids`, with what the log rules need of them,
/// and those of them whose personal data was deleted.
fn load_order_facts(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<(HashMap<Uuid, OrderFacts>, HashSet<Uuid>)> {
    let rows: Vec<OrderRow> = job_orders::table
        .select((
            job_orders::id,
            job_orders::responsible_unit_type,
            job_orders::responsible_unit_code,
            job_orders::status,
            job_orders::coordinator_allowed,
            job_orders::updated_at,
            job_orders::closed_at,
            job_orders::coordinator_allowed_since,
            job_orders::responsible_since,
            job_orders::personal_data_deleted_at,
        ))
        .filter(job_orders::id.eq_any(ids))
        .load(conn)?;
    let emptied: HashSet<Uuid> = rows
        .iter()
        .filter(|r| r.personal_data_deleted_at.is_some())
        .map(|r| r.id)
        .collect();
    let unit = |t: &str, c: &str| {
        Unit::from_stored(t, c).expect("the CHECK constraint keeps unit types valid")
    };
    let mut facts: HashMap<Uuid, OrderFacts> = rows
        .into_iter()
        .map(|r| {
            let facts = OrderFacts {
                responsible_unit: unit(&r.unit_type, &r.unit_code),
                shared_with: Default::default(),
                status: StatusKind::parse(&r.status)
                    .expect("the CHECK constraint keeps statuses valid"),
                coordinator_allowed: r.coordinator_allowed,
                updated_at: r.updated_at,
                timeline: Timeline {
                    closed_at: r.closed_at,
                    coordinator_allowed_since: r.coordinator_allowed_since,
                    responsible_since: r.responsible_since,
                },
                former: HashMap::new(),
            };
            (r.id, facts)
        })
        .collect();
    for (id, units) in views::load_sharing(conn, ids)? {
        if let Some(f) = facts.get_mut(&id) {
            f.shared_with = units;
        }
    }
    type FormerRow = (Uuid, String, String, String, DateTime<Utc>, DateTime<Utc>);
    let former: Vec<FormerRow> = job_order_former_units::table
        .select((
            job_order_former_units::job_order_id,
            job_order_former_units::unit_type,
            job_order_former_units::unit_code,
            job_order_former_units::role,
            job_order_former_units::since,
            job_order_former_units::until,
        ))
        .filter(job_order_former_units::job_order_id.eq_any(ids))
        .load(conn)?;
    for (id, t, c, role, since, until) in former {
        let role = FormerRole::parse(&role).expect("roles are written by FormerRole::as_str");
        if let Some(f) = facts.get_mut(&id) {
            f.former
                .insert((unit(&t, &c), role), Spell { since, until });
        }
    }
    Ok((facts, emptied))
}

fn load_stored_logs(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, StoredLog>> {
    let logs: Vec<(Uuid, i64, Vec<u8>)> = mediation_logs::table
        .select((
            mediation_logs::job_order_id,
            mediation_logs::version,
            mediation_logs::content_hash,
        ))
        .filter(mediation_logs::job_order_id.eq_any(ids))
        .load(conn)?;
    let mut stored: HashMap<Uuid, StoredLog> = logs
        .into_iter()
        .map(|(id, version, content_hash)| {
            let log = StoredLog {
                version,
                content_hash,
                entries: HashMap::new(),
            };
            (id, log)
        })
        .collect();
    let entries: Vec<(Uuid, Uuid, String)> = mediation_entries::table
        .select((
            mediation_entries::job_order_id,
            mediation_entries::mediation_id,
            mediation_entries::status,
        ))
        .filter(mediation_entries::job_order_id.eq_any(ids))
        .load(conn)?;
    for (id, mediation_id, status) in entries {
        if let Some(log) = stored.get_mut(&id) {
            let status =
                EntryStatus::parse(&status).expect("the CHECK constraint keeps statuses valid");
            log.entries.insert(mediation_id, StoredEntry { status });
        }
    }
    Ok(stored)
}

/// One upsert per chunk of logs, guarded by version like the orders'.
fn upsert_logs(conn: &mut PgConnection, finals: &[&MediationLog]) -> QueryResult<()> {
    use mediation_logs::dsl as m;
    let rows: Vec<_> = finals
        .iter()
        .map(|l| {
            let c = l.counts();
            (
                m::job_order_id.eq(l.job_order_id),
                m::version.eq(l.version),
                m::content_hash.eq(l.content_hash.as_slice()),
                m::total.eq(c.total),
                m::awaiting_approval.eq(c.awaiting_approval),
                m::undecided.eq(c.undecided),
                m::snapshot.eq(super::JsonText::of(&l.wire)),
            )
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let upsert = diesel::insert_into(mediation_logs::table)
            .values(chunk)
            .on_conflict(m::job_order_id)
            .do_update()
            .set((
                m::version.eq(excluded(m::version)),
                m::content_hash.eq(excluded(m::content_hash)),
                m::total.eq(excluded(m::total)),
                m::awaiting_approval.eq(excluded(m::awaiting_approval)),
                m::undecided.eq(excluded(m::undecided)),
                m::snapshot.eq(excluded(m::snapshot)),
                m::applied_at.eq(diesel::dsl::now),
            ));
        diesel::query_dsl::methods::FilterDsl::filter(upsert, m::version.lt(excluded(m::version)))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = mediation_entries)]
struct EntryRow<'a> {
    job_order_id: Uuid,
    mediation_id: Uuid,
    log_version: i64,
    person_ref: &'a str,
    registered_by_type: &'a str,
    registered_by_code: &'a str,
    registered_at: chrono::DateTime<chrono::Utc>,
    status: &'a str,
    status_changed_at: chrono::DateTime<chrono::Utc>,
    status_changed_by_kind: &'a str,
    status_changed_by_unit_type: Option<&'a str>,
    status_changed_by_unit_code: Option<&'a str>,
    searchable_cv: bool,
    cv_active: bool,
    protected_identity: bool,
    note: Option<&'a str>,
}

impl<'a> EntryRow<'a> {
    fn new(log: &MediationLog, e: &'a Entry) -> Self {
        let by = e.status_changed_by.unit();
        EntryRow {
            job_order_id: log.job_order_id,
            mediation_id: e.mediation_id,
            log_version: log.version,
            person_ref: &e.person_ref,
            registered_by_type: e.registered_by.kind().as_str(),
            registered_by_code: e.registered_by.code(),
            registered_at: e.registered_at,
            status: e.status.as_str(),
            status_changed_at: e.status_changed_at,
            status_changed_by_kind: e.status_changed_by.kind_str(),
            status_changed_by_unit_type: by.map(|u| u.kind().as_str()),
            status_changed_by_unit_code: by.map(|u| u.code()),
            searchable_cv: e.searchable_cv,
            cv_active: e.cv_active,
            protected_identity: e.protected_identity,
            note: e.note.as_deref(),
        }
    }
}

/// Writes every entry of each log (entries never disappear, so an upsert
/// leaves no stale row), guarded by the log version.
fn upsert_entries(conn: &mut PgConnection, finals: &[&MediationLog]) -> QueryResult<()> {
    use mediation_entries::dsl as e;
    let rows: Vec<EntryRow<'_>> = finals
        .iter()
        .flat_map(|l| l.entries.iter().map(move |entry| EntryRow::new(l, entry)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let upsert = diesel::insert_into(mediation_entries::table)
            .values(chunk)
            .on_conflict((e::job_order_id, e::mediation_id))
            .do_update()
            .set((
                e::log_version.eq(excluded(e::log_version)),
                e::person_ref.eq(excluded(e::person_ref)),
                e::registered_by_type.eq(excluded(e::registered_by_type)),
                e::registered_by_code.eq(excluded(e::registered_by_code)),
                e::registered_at.eq(excluded(e::registered_at)),
                e::status.eq(excluded(e::status)),
                e::status_changed_at.eq(excluded(e::status_changed_at)),
                e::status_changed_by_kind.eq(excluded(e::status_changed_by_kind)),
                e::status_changed_by_unit_type.eq(excluded(e::status_changed_by_unit_type)),
                e::status_changed_by_unit_code.eq(excluded(e::status_changed_by_unit_code)),
                e::searchable_cv.eq(excluded(e::searchable_cv)),
                e::cv_active.eq(excluded(e::cv_active)),
                e::protected_identity.eq(excluded(e::protected_identity)),
                e::note.eq(excluded(e::note)),
            ));
        diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            e::log_version.lt(excluded(e::log_version)),
        )
        .execute(conn)?;
    }
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = mediation_entry_history)]
struct HistoryRow<'a> {
    job_order_id: Uuid,
    mediation_id: Uuid,
    log_version: i64,
    from_status: Option<&'static str>,
    to_status: &'static str,
    changed_at: chrono::DateTime<chrono::Utc>,
    changed_by_kind: &'static str,
    changed_by_unit_type: Option<&'static str>,
    changed_by_unit_code: Option<String>,
    message_id: &'a str,
}

impl<'a> HistoryRow<'a> {
    fn new(log: &MediationLog, message_id: &'a str, c: &StatusChange) -> Self {
        let (unit_type, unit_code) = match &c.by {
            ChangedBy::Unit(u) => (Some(u.kind().as_str()), Some(u.code().to_owned())),
            _ => (None, None),
        };
        HistoryRow {
            job_order_id: log.job_order_id,
            mediation_id: c.mediation_id,
            log_version: log.version,
            from_status: c.from.map(EntryStatus::as_str),
            to_status: c.to.as_str(),
            changed_at: c.at,
            changed_by_kind: c.by.kind_str(),
            changed_by_unit_type: unit_type,
            changed_by_unit_code: unit_code,
            message_id,
        }
    }
}
