//! The reliability suite (issue 8, contract section 9): the worker killed
//! with SIGKILL again and again, PostgreSQL restarted under it, three
//! instances on the same queues, each against an oracle computed from the
//! stream alone; and a worker logging at `debug` whose log must hold none
//! of the personal data it was sent (section 12). RabbitMQ restarts are in
//! `tests/broker_restart.rs`, a binary of their own, so they disturb no
//! other test.

#[path = "../integration/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

mod chaos;
mod harness;
mod hygiene;
mod oracle;
mod outages;
mod scaleout;
