//! Integration tests against a real RabbitMQ and a real PostgreSQL (start them
//! with `scripts/services`). One file per contract section.

mod api;
mod cli;
#[path = "../common/fixtures.rs"]
mod common_fixtures;
mod corpus;
mod deadletters;
mod deploy;
mod expiry;
mod fanout;
mod helpers;
mod joborders;
mod mediation;
mod operations;
mod personal;
mod promises;
mod rejections;
mod resilience;
