//! PostgreSQL: the schema, the pool and the apply transaction.

mod apply;
pub mod db;
mod joborders;
mod mediation;
pub mod schema;

pub use apply::{apply_batch, lock_key, Inbound, Outcome, Payload};
pub use db::PgPool;
