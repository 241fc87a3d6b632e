//! PostgreSQL: the schema, the pool and the apply transaction.

mod apply;
pub mod db;
pub mod erasure;
pub mod expiry;
pub mod feed;
mod joborders;
mod locks;
mod mediation;
pub mod missed;
pub mod outbox;
pub mod personal;
pub mod prepared;
pub mod promises;
pub mod read;
pub mod report;
pub mod schema;
pub mod tokens;
mod unnest;
mod views;

pub use apply::{apply_batch, BatchResult};
pub use db::PgPool;
pub use locks::lock_key;

/// A row of a query that selects order ids (`SELECT id …`).
#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}

/// The plan of `query` (an `EXPLAIN (ANALYZE, FORMAT JSON)` statement with
/// its parameters bound), for tests and benchmarks to show what it reads.
fn explained(
    conn: &mut diesel::PgConnection,
    query: diesel::query_builder::BoxedSqlQuery<
        '_,
        diesel::pg::Pg,
        diesel::query_builder::SqlQuery,
    >,
) -> diesel::QueryResult<serde_json::Value> {
    use diesel::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let plan: Plan = query.get_result(conn)?;
    Ok(serde_json::from_str(&plan.plan).expect("EXPLAIN FORMAT JSON is JSON"))
}

/// A value of a `json` column, serialized once to its text (which is also
/// `json`'s binary wire format): no `serde_json::Value` tree on the way.
#[derive(Debug, diesel::expression::AsExpression)]
#[diesel(sql_type = diesel::sql_types::Json)]
pub(crate) struct JsonText(String);

impl JsonText {
    pub(crate) fn of(value: &impl serde::Serialize) -> JsonText {
        JsonText(serde_json::to_string(value).expect("wire structs serialize"))
    }
}

impl diesel::serialize::ToSql<diesel::sql_types::Json, diesel::pg::Pg> for JsonText {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write as _;
        out.write_all(self.0.as_bytes())?;
        Ok(diesel::serialize::IsNull::No)
    }
}
