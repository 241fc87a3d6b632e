//! The job order part of the apply transaction (section 4.1): the stored
//! orders, the decisions in version order, one multi-row upsert guarded by
//! version, and the sharing rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Date, Integer, Json, Nullable, Text, Timestamptz,
};
use uuid::Uuid;

use super::outbox::Effects;
use super::schema::{job_order_former_units, job_order_sharing, job_orders};
use super::unnest::ROWS_PER_STATEMENT;
use super::unnest::{columns, insert_sql, set_excluded};
use super::views;
use super::JsonText;
use crate::domain::joborder::{StoredOrder, Timeline};
use crate::domain::message::{Inbound, Outcome, Payload};
use crate::domain::plan::joborders::{self as plan, Final};
use crate::domain::plan::FormerUnit;
use crate::domain::promises::Durations;
use crate::domain::status::StatusKind;
use crate::domain::unit::Unit;

/// Applies the job order snapshots `messages[i]` for `i` in `indices` (first
/// deliveries of new message ids): loads their orders' state, has the
/// domain plan them, writes the plan, fills `outcomes` and adds what goes
/// out to `effects`. The caller holds the orders' advisory locks.
pub(super) fn apply(
    conn: &mut PgConnection,
    messages: &[Inbound],
    indices: &[usize],
    outcomes: &mut [Option<Outcome>],
    effects: &mut Effects,
    now: DateTime<Utc>,
    durations: &Durations,
) -> QueryResult<()> {
    let ids: Vec<Uuid> = {
        let set: HashSet<Uuid> = indices
            .iter()
            .filter_map(|&i| match &messages[i].payload {
                Payload::JobOrder(o) => Some(o.id),
                Payload::MediationLog(_) => None,
            })
            .collect();
        set.into_iter().collect()
    };
    let state = load(conn, messages, indices, &ids)?;
    let plan = plan::plan(state, messages, indices, now, durations, &mut |o| {
        effects.emit(messages, o)
    });
    write(conn, &plan)?;
    for (i, outcome) in plan.outcomes {
        outcomes[i] = Some(outcome);
    }
    Ok(())
}

/// The state of the orders `ids` (the stored rows, their sharing, their
/// logs' counts) and, for those some message among `messages[indices]`
/// hands over, their logs and what each unit was told of them. Reads only;
/// the caller holds the advisory locks.
fn load(
    conn: &mut PgConnection,
    messages: &[Inbound],
    indices: &[usize],
    ids: &[Uuid],
) -> QueryResult<plan::State> {
    let Stored {
        orders,
        expired,
        hashes,
    } = load_stored(conn, ids)?;
    let mut state = plan::State {
        orders,
        expired,
        hashes,
        ..Default::default()
    };
    if !state.orders.is_empty() {
        // Only a stored order has sharing rows, a log or promises.
        let stored: Vec<Uuid> = state.orders.keys().copied().collect();
        let around = load_around(conn, &stored)?;
        (state.sharing, state.log_counts, state.promises) =
            (around.sharing, around.log_counts, around.promises);
    }
    let handed = plan::handed_over(&state, messages, indices);
    if !handed.is_empty() {
        state.logs = views::load_log_snapshots(conn, &handed)?;
        state.log_hashes = views::load_log_hashes(conn, &handed)?;
    }
    Ok(state)
}

/// What is stored beside some orders: their sharing, their logs' counts and
/// their promises.
struct Around {
    sharing: HashMap<Uuid, BTreeMap<Unit, DateTime<Utc>>>,
    log_counts: HashMap<Uuid, (i32, i32)>,
    promises: HashMap<Uuid, crate::domain::promises::Promises>,
}

/// [`Around`] of the orders `ids`, in one statement (one round trip, where
/// three reads took three): a row per sharing unit, log and promise,
/// told apart by `part`.
fn load_around(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<Around> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        part: String,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        job_order_id: Uuid,
        /// The unit's type, or the promise.
        #[diesel(sql_type = Nullable<Text>)]
        a: Option<String>,
        /// The unit's code.
        #[diesel(sql_type = Nullable<Text>)]
        b: Option<String>,
        /// Shared since, or the promise's due time.
        #[diesel(sql_type = Nullable<Timestamptz>)]
        t1: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        met_at: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        missed_at: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        released_at: Option<DateTime<Utc>>,
        #[diesel(sql_type = Nullable<Integer>)]
        total: Option<i32>,
        #[diesel(sql_type = Nullable<Integer>)]
        undecided: Option<i32>,
        #[diesel(sql_type = Nullable<Bool>)]
        first_named_coordinator: Option<bool>,
    }
    static AROUND: LazyLock<super::prepared::Text> = LazyLock::new(|| {
        super::prepared::Text::new(
            "SELECT 'sharing' AS part, job_order_id, unit_type AS a, unit_code AS b, since AS t1, \
                    NULL::timestamptz AS met_at, NULL::timestamptz AS missed_at, \
                    NULL::timestamptz AS released_at, NULL::int AS total, NULL::int AS undecided, \
                    NULL::bool AS first_named_coordinator \
               FROM job_order_sharing WHERE job_order_id = ANY($1) \
             UNION ALL \
             SELECT 'log', job_order_id, NULL, NULL, NULL, NULL, NULL, NULL, total, undecided, NULL \
               FROM mediation_logs WHERE job_order_id = ANY($2) \
             UNION ALL \
             SELECT 'promise', job_order_id, promise, NULL, due_at, met_at, missed_at, released_at, \
                    NULL, NULL, first_named_coordinator \
               FROM promises WHERE job_order_id = ANY($3)",
        )
    });
    let rows: Vec<Row> = super::prepared::Prepared::new(&AROUND)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .load(conn)?;
    let mut around = Around {
        sharing: HashMap::new(),
        log_counts: HashMap::new(),
        promises: HashMap::new(),
    };
    let mut promises = Vec::new();
    for r in rows {
        match (r.part.as_str(), r.a, r.b, r.t1) {
            ("sharing", Some(kind), Some(code), Some(since)) => {
                let unit = Unit::from_stored(&kind, &code)
                    .expect("the CHECK constraint keeps unit types valid");
                around
                    .sharing
                    .entry(r.job_order_id)
                    .or_default()
                    .insert(unit, since);
            }
            ("log", ..) => {
                around.log_counts.insert(
                    r.job_order_id,
                    (r.total.unwrap_or(0), r.undecided.unwrap_or(0)),
                );
            }
            ("promise", Some(promise), _, Some(due_at)) => promises.push(super::promises::Row {
                job_order_id: r.job_order_id,
                promise,
                due_at,
                met_at: r.met_at,
                missed_at: r.missed_at,
                released_at: r.released_at,
                first_named_coordinator: r.first_named_coordinator.unwrap_or(false),
            }),
            _ => {}
        }
    }
    around.promises = super::promises::gather(promises);
    Ok(around)
}

/// Writes `plan`: the last applied version of each order (one upsert
/// guarded by version), the sharing rows of the orders whose sharing
/// changed, the units that lost an order and what each unit was told of
/// the logs of handed-over orders.
fn write(conn: &mut PgConnection, plan: &plan::Plan<'_>) -> QueryResult<()> {
    upsert_orders(conn, &plan.finals)?;
    replace_sharing(conn, &plan.unshared, &plan.sharing)?;
    record_former_units(conn, &plan.former)?;
    views::save_log_hashes(conn, &plan.log_hashes)?;
    super::promises::write(conn, &plan.promises)?;
    Ok(())
}

/// A unit that lost an order, as `job_order_former_units` keeps it.
#[derive(Insertable)]
#[diesel(table_name = job_order_former_units)]
struct FormerUnitRow<'a> {
    job_order_id: Uuid,
    unit_type: &'static str,
    unit_code: &'a str,
    role: &'static str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    version: Option<i64>,
}

/// Records former units, keeping the first time each gained and the latest
/// time each lost the order. A batch with several versions of an order can
/// lose the same unit twice (unshared, shared again, unshared): one row per
/// unit goes to the upsert, which may not touch a row twice.
fn record_former_units(conn: &mut PgConnection, former: &[FormerUnit]) -> QueryResult<()> {
    use job_order_former_units::dsl as f;
    let mut latest: HashMap<(Uuid, &Unit, &str), FormerUnitRow<'_>> = HashMap::new();
    for r in former {
        let key = (r.job_order_id, &r.unit, r.role.as_str());
        match latest.get_mut(&key) {
            Some(kept) => {
                kept.since = kept.since.min(r.since);
                kept.until = kept.until.max(r.until);
                kept.version = kept.version.max(Some(r.version));
            }
            None => {
                latest.insert(
                    key,
                    FormerUnitRow {
                        job_order_id: r.job_order_id,
                        unit_type: r.unit.kind().as_str(),
                        unit_code: r.unit.code(),
                        role: r.role.as_str(),
                        since: r.since,
                        until: r.until,
                        version: Some(r.version),
                    },
                );
            }
        }
    }
    let rows: Vec<FormerUnitRow<'_>> = latest.into_values().collect();
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
                f::version.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                >(
                    "GREATEST(job_order_former_units.version, excluded.version)",
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
        // The search text (not stored as such: the upsert makes the
        // `search` vector of it).
        search_title: String => Text,
        search_occupation: String => Text,
        search_employer: String => Text,
        search_tasks: String => Text,
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
        let search = crate::domain::read::search_text(&o.wire);
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
            search_title: search.title,
            search_occupation: search.occupation,
            search_employer: search.employer,
            search_tasks: search.tasks,
        }
    }
}

/// The upsert of `JobOrderColumns`: the `WHERE` on the update is the
/// version guard, so an older version can never overwrite a newer one even
/// outside the lock. The last four columns are the search text, which goes
/// into the `search` vector (Danish stemming) in the same statement.
static UPSERT_SQL: LazyLock<super::prepared::Text> = LazyLock::new(|| {
    let names = JobOrderColumns::NAMES;
    let (stored, text) = names.split_at(names.len() - 4);
    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let selected: Vec<String> = stored.iter().map(|c| format!("u.{c}")).collect();
    let text: Vec<String> = text.iter().map(|c| format!("u.{c}")).collect();
    super::prepared::Text::new(&format!(
        "INSERT INTO job_orders ({}, search) SELECT {}, {} FROM unnest({}) AS u({}) \
         ON CONFLICT (id) DO UPDATE SET {}, search = excluded.search, applied_at = now(), \
         personal_data_deleted_at = NULL \
         WHERE job_orders.version < excluded.version",
        stored.join(", "),
        selected.join(", "),
        super::read::search_vector_sql(&text[0], &text[1], &text[2], &text[3]),
        params.join(", "),
        names.join(", "),
        set_excluded(stored, "id")
    ))
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
        static INSERT: LazyLock<super::prepared::Text> = LazyLock::new(|| {
            super::prepared::Text::new(&insert_sql("job_order_sharing", SharingColumns::NAMES, ""))
        });
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
