//! The reliability harness: a generated stream of valid snapshots with
//! duplicates, reorderings and stale resends; workers run as processes that
//! can be killed; a publisher and queue readers that outlive a broker
//! restart; and an oracle, computed from the stream alone, that the end
//! state and every notification are checked against.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::StreamExt;
use jobsync::amqp::publisher::{Outgoing, Publisher};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

mod check;
mod processes;
mod stream;
mod watch;

#[allow(unused_imports)]
pub use check::*;
#[allow(unused_imports)]
pub use processes::*;
#[allow(unused_imports)]
pub use stream::*;
#[allow(unused_imports)]
pub use watch::*;
