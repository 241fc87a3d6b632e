//! Expiry benchmark: the time of one expiry pass over a database with N
//! stored orders (default 1,000,000; set `JOBSYNC_BENCH_ORDERS`) of which D
//! are due (default 1,000; `JOBSYNC_BENCH_DUE`), as `jobsync run` makes it:
//! transactions of 500 orders until fewer are due, each writing the orders'
//! `expired_at`, their views' hashes and their notifications to the outbox.
//! It also prints the plan of the query that finds the due orders, and the
//! time of a pass when nothing is due.
//!
//!     scripts/services && cargo bench --bench expiry
//!
//! It uses a database of its own and removes it afterwards.

mod common;

use std::time::Instant;

use chrono::{DateTime, Utc};
use common::{env_count, invoked_as_bench, BenchEnv};
use diesel::prelude::*;
use jobsync::store::expiry;

fn main() {
    if !invoked_as_bench("expiry") {
        return;
    }
    let n = env_count("JOBSYNC_BENCH_ORDERS", 1_000_000);
    let due = env_count("JOBSYNC_BENCH_DUE", 1_000).min(n);
    let env = BenchEnv::new(&[]);
    jobsync::store::db::prepare(&env.db_url, 1).expect("PostgreSQL answers (scripts/services)");
    let mut conn = PgConnection::establish(&env.db_url).unwrap();

    let started = Instant::now();
    common::store_orders(&mut conn, n, due);
    diesel::sql_query("ANALYZE job_orders")
        .execute(&mut conn)
        .unwrap();
    println!(
        "stored {n} orders ({due} due, a tenth of the rest closed) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
    let plan = expiry::explain_due(&mut conn, now, 500).unwrap();
    let mut nodes = Vec::new();
    walk(&plan[0]["Plan"], &mut nodes);
    println!("plan of the due query (limit 500):");
    for node in nodes {
        println!(
            "  {:<22} {:<16} actual rows {}",
            node["Node Type"].as_str().unwrap_or(""),
            node["Index Name"].as_str().unwrap_or(""),
            node["Actual Rows"]
        );
    }
    println!(
        "  execution time: {} ms",
        plan[0]["Execution Time"].as_f64().unwrap_or(0.0)
    );

    let started = Instant::now();
    let mut expired = 0;
    let mut transactions = 0;
    loop {
        let k = expiry::expire_due(&mut conn, now, 500).unwrap().orders;
        expired += k;
        transactions += 1;
        if k < 500 {
            break;
        }
    }
    let pass = started.elapsed();
    println!(
        "one expiry pass: {expired} orders expired in {transactions} transactions, {:.1} ms ({:.2} ms per order)",
        pass.as_secs_f64() * 1000.0,
        pass.as_secs_f64() * 1000.0 / expired.max(1) as f64
    );
    let outbox: i64 = jobsync::store::schema::outbox::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    println!("  outbox rows written: {outbox} (per order: responsible, neighbours, event)");

    let started = Instant::now();
    let none = expiry::expire_due(&mut conn, now, 500).unwrap().orders;
    println!(
        "a pass with nothing due: {none} expired, {:.2} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(conn);
}

/// Every node of a plan.
fn walk<'a>(node: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    out.push(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        walk(child, out);
    }
}
