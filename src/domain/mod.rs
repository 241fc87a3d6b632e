//! Domain types that cannot hold an invalid value, and the pure rules over
//! them. Nothing here does I/O.

pub mod contact;
pub mod cpr;
pub mod cvr;
pub mod expiry;
pub mod fanout;
pub mod fields;
pub mod joborder;
pub mod mediationlog;
pub mod message;
pub mod municipality;
pub mod plan;
pub mod promises;
pub mod read;
pub mod sharing;
pub mod status;
pub mod text;
pub mod unit;
pub mod views;
