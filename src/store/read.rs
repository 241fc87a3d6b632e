//! The read API's queries (contract 10): the stored state of orders and logs
//! the views are built from, full-text search with the caller's access in
//! the query, and the search text written with each version. Reads only,
//! outside any lock: each statement sees one committed state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Float4, Nullable, Text, Timestamptz};
use uuid::Uuid;

use super::schema::job_order_former_units;
use super::views;
use crate::contract::mediationlog::MediationLogData;
use crate::domain::mediationlog::FormerRole;
use crate::domain::read::{search_text, Lost, StoredOrder};
use crate::domain::unit::Unit;

/// The stored orders among `ids`, with what every unit's view of them is
/// made of: the snapshot and what jobsync adds, the log's undecided count,
/// and the units that lost them.
pub fn orders(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<HashMap<Uuid, StoredOrder>> {
    let facts = views::load_view_facts(conn, ids)?;
    if facts.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = views::log_counts(conn, ids)?;
    type Row = (Uuid, String, String, String, DateTime<Utc>, Option<i64>);
    let rows: Vec<Row> = job_order_former_units::table
        .select((
            job_order_former_units::job_order_id,
            job_order_former_units::unit_type,
            job_order_former_units::unit_code,
            job_order_former_units::role,
            job_order_former_units::until,
            job_order_former_units::version,
        ))
        .filter(job_order_former_units::job_order_id.eq_any(ids))
        .load(conn)?;
    let mut former: HashMap<Uuid, Vec<Lost>> = HashMap::new();
    for (id, t, c, role, until, version) in rows {
        if let (Some(unit), Some(role)) = (Unit::from_stored(&t, &c), FormerRole::parse(&role)) {
            former.entry(id).or_default().push(Lost {
                unit,
                role,
                until,
                version,
            });
        }
    }
    Ok(facts
        .into_iter()
        .map(|(id, facts)| {
            let order = StoredOrder {
                facts,
                undecided_candidates: counts.get(&id).map_or(0, |&(_, undecided)| undecided),
                former: former.remove(&id).unwrap_or_default(),
            };
            (id, order)
        })
        .collect())
}

/// The stored logs among `ids`.
pub fn logs(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<HashMap<Uuid, MediationLogData>> {
    views::load_log_snapshots(conn, ids)
}

/// A search of the orders a unit sees (contract 10).
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Full text, as a person types it (`websearch_to_tsquery`, Danish).
    pub q: Option<String>,
    pub status: Option<String>,
    pub occupation_code: Option<String>,
    pub employer_cvr: Option<String>,
    pub responsible_unit: Option<Unit>,
    pub updated_after: Option<DateTime<Utc>>,
    /// Where the previous page ended.
    pub after: Option<Position>,
    pub limit: i64,
}

/// A place in a search's order: best match first (with `q`), newest
/// `updated_at` first (without); the id breaks ties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Position {
    Rank { rank: f32, id: Uuid },
    Updated { updated_at: DateTime<Utc>, id: Uuid },
}

/// One order a search found.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Hit {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Float4>)]
    pub rank: Option<f32>,
}

impl Hit {
    /// Where a page that ends with this hit ends.
    pub fn position(&self) -> Position {
        match self.rank {
            Some(rank) => Position::Rank { rank, id: self.id },
            None => Position::Updated {
                updated_at: self.updated_at,
                id: self.id,
            },
        }
    }
}

/// The filters and the caller's access, shared by both orders of a search:
/// the orders it is responsible for or that are shared with it, by the two
/// unit indexes, and nothing else.
const WHERE: &str = "o.id IN (SELECT id FROM job_orders WHERE responsible_unit_type = $1 AND responsible_unit_code = $2 \
                              UNION ALL \
                              SELECT job_order_id FROM job_order_sharing WHERE unit_type = $1 AND unit_code = $2) \
     AND ($4::text IS NULL OR o.status = $4) \
     AND ($5::text IS NULL OR o.occupation_code = $5) \
     AND ($6::text IS NULL OR o.employer_cvr = $6) \
     AND ($7::text IS NULL OR (o.responsible_unit_type = $7 AND o.responsible_unit_code = $8)) \
     AND ($9::timestamptz IS NULL OR o.updated_at > $9)";

/// The orders `unit` sees that match `search`, one page.
pub fn search(conn: &mut PgConnection, unit: &Unit, search: &Search) -> QueryResult<Vec<Hit>> {
    let (after_rank, after_time, after_id) = match search.after {
        Some(Position::Rank { rank, id }) => (Some(rank), None, Some(id)),
        Some(Position::Updated { updated_at, id }) => (None, Some(updated_at), Some(id)),
        None => (None, None, None),
    };
    let sql = match &search.q {
        Some(_) => format!(
            "SELECT o.id, o.updated_at, ts_rank(o.search, q) AS rank \
               FROM job_orders o, websearch_to_tsquery('danish', $3) q \
              WHERE o.search @@ q AND {WHERE} \
                AND ($10::float4 IS NULL OR (ts_rank(o.search, q), o.id) < ($10, $12)) \
              ORDER BY rank DESC, o.id DESC LIMIT $13"
        ),
        None => format!(
            "SELECT o.id, o.updated_at, NULL::float4 AS rank FROM job_orders o \
              WHERE ($3::text IS NULL) AND {WHERE} \
                AND ($11::timestamptz IS NULL OR (o.updated_at, o.id) < ($11, $12)) \
                AND ($10::float4 IS NULL) \
              ORDER BY o.updated_at DESC, o.id DESC LIMIT $13"
        ),
    };
    let responsible = search.responsible_unit.as_ref();
    diesel::sql_query(sql)
        .bind::<Text, _>(unit.kind().as_str())
        .bind::<Text, _>(unit.code())
        .bind::<Nullable<Text>, _>(search.q.as_deref())
        .bind::<Nullable<Text>, _>(search.status.as_deref())
        .bind::<Nullable<Text>, _>(search.occupation_code.as_deref())
        .bind::<Nullable<Text>, _>(search.employer_cvr.as_deref())
        .bind::<Nullable<Text>, _>(responsible.map(|u| u.kind().as_str()))
        .bind::<Nullable<Text>, _>(responsible.map(|u| u.code()))
        .bind::<Nullable<Timestamptz>, _>(search.updated_after)
        .bind::<Nullable<Float4>, _>(after_rank)
        .bind::<Nullable<Timestamptz>, _>(after_time)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(after_id)
        .bind::<BigInt, _>(search.limit)
        .load(conn)
}

/// The search column's value from the four texts of
/// [`crate::domain::read::SearchText`] (SQL expressions), weighted so that
/// a match in the title ranks above one in the tasks.
pub(super) fn search_vector_sql(
    title: &str,
    occupation: &str,
    employer: &str,
    tasks: &str,
) -> String {
    format!(
        "setweight(to_tsvector('danish', {title}), 'A') || setweight(to_tsvector('danish', {occupation}), 'B') \
         || setweight(to_tsvector('danish', {employer}), 'C') || setweight(to_tsvector('danish', {tasks}), 'D')"
    )
}

/// Fills the search column of up to `limit` orders stored before it
/// existed; how many. The scheduler runs a few batches a pass until none
/// is left.
pub fn backfill_search(conn: &mut PgConnection, limit: i64) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = Text)]
        snapshot: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id, snapshot::text AS snapshot FROM job_orders WHERE search IS NULL LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    let (mut ids, mut title, mut occupation, mut employer, mut tasks) =
        (vec![], vec![], vec![], vec![], vec![]);
    for r in &rows {
        let snapshot = serde_json::from_str(&r.snapshot).expect("stored snapshots are canonical");
        let t = search_text(&snapshot);
        ids.push(r.id);
        title.push(t.title);
        occupation.push(t.occupation);
        employer.push(t.employer);
        tasks.push(t.tasks);
    }
    if ids.is_empty() {
        return Ok(0);
    }
    use diesel::sql_types::Array;
    diesel::sql_query(format!(
        "UPDATE job_orders o SET search = {} \
           FROM unnest($1, $2, $3, $4, $5) AS u(id, t, oc, e, ta) \
          WHERE o.id = u.id",
        search_vector_sql("u.t", "u.oc", "u.e", "u.ta")
    ))
    .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
    .bind::<Array<Text>, _>(&title)
    .bind::<Array<Text>, _>(&occupation)
    .bind::<Array<Text>, _>(&employer)
    .bind::<Array<Text>, _>(&tasks)
    .execute(conn)
}
