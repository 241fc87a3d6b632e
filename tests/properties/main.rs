//! Property tests of the parser and the views: no body makes the
//! parser panic, every valid snapshot parses and every invalid one gets a
//! code of contract 4.3; no view shows a unit what contract 5.2 keeps from
//! it, and no view carries a CPR number (5.3).
//!
//! The snapshots are generated per contract 4.1/4.2 (valid CVRs, jobcentre
//! codes of the 98 municipalities, every scope, status and reason, Danish
//! letters and CPR-looking runs in free text), then mutated. The checks use
//! an oracle of their own for CPR numbers, not `domain::cpr`.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{RngAlgorithm, TestCaseError};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use jobsync::contract::envelope::{InboundType, MAX_BODY_BYTES};
use jobsync::contract::rejection::Rejection;
use jobsync::domain::fanout::{order_changes, revoked_view};
use jobsync::domain::message::Payload;
use jobsync::domain::unit::Unit;
use jobsync::domain::views::{
    log_view, log_viewers, responsible_order_view, shared_order_view, OrderExtras,
};

mod checks;
#[path = "../common/joborder.rs"]
mod common_joborder;
mod contract;
mod cpr;
mod generators;
mod mutations;
mod parser;
mod views;

#[allow(unused_imports)]
use checks::*;
use common_joborder::cloudevent;
#[allow(unused_imports)]
use contract::*;
#[allow(unused_imports)]
use cpr::*;
#[allow(unused_imports)]
use generators::*;
#[allow(unused_imports)]
use mutations::*;
