//! The test environment: a database and a set of broker names of its own per
//! test, workers run in-process, and cleanup in `Drop` (also after a panic),
//! so tests run in parallel and a failed run leaves nothing that matters.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use diesel::prelude::*;
use jobsync::config::{self, Settings};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::AMQPValue;
use lapin::BasicProperties;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

mod api;
mod builders;
mod clock;
#[path = "../../common/joborder.rs"]
mod common_joborder;
mod corpus;
mod env;
mod http;
mod postgres;
mod stored;
mod subscription;

#[allow(unused_imports)]
pub use api::*;
#[allow(unused_imports)]
pub use builders::*;
#[allow(unused_imports)]
pub use clock::*;
#[allow(unused_imports)]
pub use common_joborder::*;
#[allow(unused_imports)]
pub use corpus::*;
// Not every test binary that includes these uses every helper.
#[allow(unused_imports)]
pub use env::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use postgres::*;
#[allow(unused_imports)]
pub use stored::*;
#[allow(unused_imports)]
pub use subscription::*;

/// Runs `command` with `stdin` on its standard input and its standard
/// output captured (standard error as the caller set it, else captured):
/// a tool as an operator pipes into it.
#[allow(dead_code)]
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the jobsync binary starts");
    child
        .stdin
        .take()
        .expect("a piped standard input")
        .write_all(stdin.as_bytes())
        .expect("the tool reads its input");
    child.wait_with_output().expect("the tool ends")
}
