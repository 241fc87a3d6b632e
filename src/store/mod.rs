//! PostgreSQL: the schema, the pool and the apply transaction.

mod apply;
pub mod db;
pub mod expiry;
mod joborders;
mod mediation;
pub mod outbox;
pub mod schema;
mod views;

pub use apply::{apply_batch, lock_key, BatchResult, Inbound, Outcome, Payload};
pub use db::PgPool;
