//! PostgreSQL: the schema, the pool and the apply transaction.

mod apply;
pub mod db;
pub mod schema;

pub use apply::{apply_job_orders, lock_key, JobOrderMessage, Outcome};
pub use db::PgPool;
