//! jobsync: keeps Danish jobcentres and unemployment funds (a-kasser) in sync
//! on job orders. See `README.md` and the contract for the whole story.
//!
//! The path of a message: [`contract`] (wire structs) → [`domain`] (valid by
//! construction, pure rules) → [`store`] (one transaction per batch) →
//! [`worker`] (consume, apply, dead-letter, acknowledge) over [`amqp`].

pub mod amqp;
pub mod api;
pub mod commands;
pub mod config;
pub mod contract;
pub mod deadletters;
pub mod domain;
pub mod erase;
pub mod ops;
pub mod report;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod trace;
pub mod worker;
