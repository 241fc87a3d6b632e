//! Expiry benchmark: the time of one expiry pass over a database with N
//! stored orders (default 1,000,000; set `JOBSYNC_BENCH_ORDERS`) of which D
//! are due (default 1,000; `JOBSYNC_BENCH_DUE`), as `jobsync run` makes it:
//! transactions of 500 orders until fewer are due, each writing the orders'
//! `expired_at`, their views' hashes and their notifications to the outbox.
//! It also prints the plan of the query that finds the due orders, and the
//! time of a pass when nothing is due.
//!
//! Then the service promises (contract 11) of the same orders, created over
//! a year: two per order, of which those of P orders are due and open
//! (default 1 % of N; `JOBSYNC_BENCH_PROMISES_DUE`), the rest met, missed,
//! released or not yet due. It times one check (transactions of 500
//! promises until fewer are due, each marking them missed and writing their
//! notifications and events), a check with nothing due, and
//! `jobsync report promises` over the year.
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
    promises(
        &mut conn,
        n,
        env_count("JOBSYNC_BENCH_PROMISES_DUE", n / 100).min(n),
    );
    drop(conn);
}

/// The service promise part.
fn promises(conn: &mut PgConnection, n: usize, due: usize) {
    let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
    let started = Instant::now();
    // Created over the year before `now`, in order of the series.
    diesel::sql_query(
        "UPDATE job_orders SET created_at = timestamptz '2025-06-01 12:00Z' \
             + (abs(hashtext(id::text)) % 365) * interval '1 day'",
    )
    .execute(conn)
    .unwrap();
    // Per order a contact and a delivery promise. The first `due` orders'
    // are due and open; of the rest, by turns: met on time, met late,
    // missed, released, not yet due.
    diesel::sql_query(
        "WITH o AS (SELECT id, created_at, row_number() OVER () AS g FROM job_orders) \
         INSERT INTO promises (job_order_id, promise, due_at, met_at, missed_at, released_at) \
         SELECT o.id, p.name, \
                CASE WHEN o.g <= $1 THEN $2 - interval '1 hour' \
                     WHEN o.g % 5 = 4 THEN $2 + interval '30 days' \
                     ELSE o.created_at + p.after END, \
                CASE WHEN o.g > $1 AND o.g % 5 = 0 THEN o.created_at + p.after / 4 \
                     WHEN o.g > $1 AND o.g % 5 = 1 THEN o.created_at + p.after * 2 END, \
                CASE WHEN o.g > $1 AND o.g % 5 IN (1, 2) THEN o.created_at + p.after END, \
                CASE WHEN o.g > $1 AND o.g % 5 = 3 THEN o.created_at + p.after / 2 END \
           FROM o, (VALUES ('contact', interval '1 day'), ('delivery', interval '3 days')) p(name, after)",
    )
    .bind::<diesel::sql_types::BigInt, _>(due as i64)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .execute(conn)
    .unwrap();
    diesel::sql_query("ANALYZE promises").execute(conn).unwrap();
    diesel::sql_query("ANALYZE job_orders")
        .execute(conn)
        .unwrap();
    println!(
        "stored {} promises ({} due and open) over a year of {n} orders in {:.1} s",
        2 * n,
        2 * due,
        started.elapsed().as_secs_f64()
    );

    let plan = jobsync::store::promises::explain_due(conn, now, 500).unwrap();
    let mut nodes = Vec::new();
    walk(&plan[0]["Plan"], &mut nodes);
    println!("plan of the due promises query (limit 500):");
    for node in nodes {
        println!(
            "  {:<22} {:<18} actual rows {}",
            node["Node Type"].as_str().unwrap_or(""),
            node["Index Name"].as_str().unwrap_or(""),
            node["Actual Rows"]
        );
    }

    let started = Instant::now();
    let (mut missed, mut transactions) = (0, 0);
    loop {
        let checked = jobsync::store::missed::check_due(conn, now, 500).unwrap();
        missed += checked.missed.len();
        transactions += 1;
        if checked.orders == 0 || checked.missed.len() < 500 {
            break;
        }
    }
    let pass = started.elapsed();
    println!(
        "one promise check: {missed} promises missed in {transactions} transactions, {:.1} ms ({:.3} ms per promise)",
        pass.as_secs_f64() * 1000.0,
        pass.as_secs_f64() * 1000.0 / missed.max(1) as f64
    );
    let started = Instant::now();
    let none = jobsync::store::missed::check_due(conn, now, 500).unwrap();
    println!(
        "a check with nothing due: {} missed, {:.2} ms",
        none.missed.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    let from: DateTime<Utc> = "2025-06-01T00:00:00Z".parse().unwrap();
    let started = Instant::now();
    let figures = jobsync::store::report::promises(conn, from, now, None).unwrap();
    println!(
        "report promises over the year: {} unit(s), {} orders, {:.2} s",
        figures.len(),
        figures.iter().map(|f| f.orders).sum::<i64>(),
        started.elapsed().as_secs_f64()
    );
}

/// Every node of a plan.
fn walk<'a>(node: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    out.push(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        walk(child, out);
    }
}
