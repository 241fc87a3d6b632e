//! Section 6: orders whose mediation deadline passed expire once, at the end
//! of that day in Copenhagen, to every unit that can see them and to
//! `jobsync.events`; cost in proportion to the orders due. The clock is the
//! test's (no real days are slept).

use std::collections::HashSet;
use std::time::Duration;

use diesel::prelude::*;
use jobsync::store::schema::job_orders;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);
/// Two passes of a worker running every second.
const TWO_PASSES: Duration = Duration::from_millis(2500);

fn expired_at(conn: &mut PgConnection, id: Uuid) -> Option<chrono::DateTime<chrono::Utc>> {
    job_orders::table
        .select(job_orders::expired_at)
        .filter(job_orders::id.eq(id))
        .first(conn)
        .unwrap()
}

/// The snapshot builder's order: deadline 2026-12-18, shared with 16700
/// and 18300. The day after, at noon.
const AFTER_DEADLINE: &str = "2026-12-19T12:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_expires_once_to_every_viewer_and_to_the_events() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let units = [
        env.subscribe("jobcenter:15300").await,
        env.subscribe("jobcenter:16700").await,
        env.subscribe("jobcenter:18300").await,
    ];
    let events = env.subscribe_events().await;
    let clock = TestClock::at("2026-12-18T12:00:00Z");
    env.start_worker_with_clock(clock.clone());
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    for u in &units {
        assert_eq!(u.take(1, T).await[0].event(), "joborder.updated");
    }
    events.take(1, T).await;
    units[0].assert_quiet(TWO_PASSES).await;
    assert_eq!(
        expired_at(&mut env.db(), id),
        None,
        "the deadline day is not over"
    );

    clock.set(AFTER_DEADLINE);
    let mine = units[0].take(1, T).await;
    assert_eq!(mine[0].event(), "joborder.expired");
    assert_eq!(mine[0].data()["expired_at"], AFTER_DEADLINE);
    assert!(
        mine[0].data().get("contact").is_some(),
        "the responsible view"
    );
    for u in &units[1..] {
        let got = u.take(1, T).await;
        assert_eq!(got[0].event(), "joborder.expired");
        assert!(got[0].data().get("contact").is_none(), "the shared view");
        assert_eq!(got[0].data()["expired_at"], AFTER_DEADLINE);
    }
    let expired = events.take(1, T).await;
    assert_eq!(expired[0].routing_key, "joborder.expired");
    assert_eq!(expired_at(&mut env.db(), id), Some(utc(AFTER_DEADLINE)));
    // Once: later passes leave it alone.
    for u in &units {
        u.assert_quiet(TWO_PASSES).await;
    }
    events.assert_quiet(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_instances_expire_each_order_once() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let events = env.subscribe_events().await;
    let clock = TestClock::at("2026-12-01T12:00:00Z");
    env.start_worker_with_clock(clock.clone());
    env.start_worker_with_clock(clock.clone());
    let ids: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    let orders: Vec<Value> = ids.iter().map(|&id| event(&snapshot(id, 1))).collect();
    env.publish(&orders).await;
    env.wait_processed(60, T).await;
    clock.set(AFTER_DEADLINE);
    let got = events.take(120, T).await;
    let expired: Vec<&Received> = got
        .iter()
        .filter(|r| r.routing_key == "joborder.expired")
        .collect();
    assert_eq!(expired.len(), 60);
    let orders: HashSet<&str> = expired
        .iter()
        .map(|r| r.body["subject"].as_str().unwrap())
        .collect();
    assert_eq!(orders.len(), 60, "each order once");
    events.assert_quiet(TWO_PASSES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_deadline_into_the_future_reverses_the_expiry() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let clock = TestClock::at(AFTER_DEADLINE);
    env.start_worker_with_clock(clock.clone());
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    let got = responsible.take(2, T).await;
    assert_eq!(got[1].event(), "joborder.expired");
    let first_expiry = got[1].id().to_owned();

    let mut v2 = snapshot(id, 1);
    v2["version"] = 2.into();
    v2["mediation_deadline"] = "2027-01-31".into();
    env.publish(&[event(&v2)]).await;
    let back = responsible.take(1, T).await;
    assert_eq!(back[0].event(), "joborder.updated");
    assert_eq!(back[0].data()["expired_at"], Value::Null);
    assert_eq!(expired_at(&mut env.db(), id), None);

    // The new deadline passes at midnight in Copenhagen (23:00 UTC).
    clock.set("2027-01-31T22:59:59Z");
    responsible.assert_quiet(TWO_PASSES).await;
    clock.set("2027-01-31T23:00:00Z");
    let again = responsible.take(1, T).await;
    assert_eq!(again[0].event(), "joborder.expired");
    assert_ne!(again[0].id(), first_expiry, "a new expiry, a new id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_continuous_orders_never_expire() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let events = env.subscribe_events().await;
    let clock = TestClock::at("2030-01-01T00:00:00Z");
    env.start_worker_with_clock(clock.clone());
    let (closed, continuous) = (Uuid::new_v4(), Uuid::new_v4());
    let mut c = snapshot(closed, 1);
    c["status"] = "closed".into();
    c["status_reason"] = "need_fulfilled".into();
    let mut l = snapshot(continuous, 1);
    l["continuous"] = true.into();
    l["positions"] = Value::Null;
    l["expected_start"] = Value::Null;
    l["mediation_deadline"] = Value::Null;
    env.publish(&[event(&c), event(&l)]).await;
    events.take(2, T).await; // created, created
    events.assert_quiet(TWO_PASSES).await;
    let mut conn = env.db();
    assert_eq!(expired_at(&mut conn, closed), None);
    assert_eq!(expired_at(&mut conn, continuous), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_on_the_last_sundays_of_march_and_october_expire_at_the_right_instant() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let (march, october) = (Uuid::new_v4(), Uuid::new_v4());
    let mut m = snapshot(march, 1);
    m["mediation_deadline"] = "2027-03-28".into();
    let mut o = snapshot(october, 1);
    o["mediation_deadline"] = "2026-10-25".into();
    env.publish(&[event(&m), event(&o)]).await;
    env.wait_processed(2, T).await;
    env.stop_workers().await;
    // One pass at a chosen instant, straight on the database.
    let mut conn = env.db();
    let mut pass = |at: &str| {
        jobsync::store::expiry::expire_due(&mut conn, utc(at), 500)
            .unwrap()
            .orders
    };
    // October: clocks went back at 03:00, so midnight is 23:00 UTC.
    assert_eq!(pass("2026-10-25T22:59:59Z"), 0);
    assert_eq!(pass("2026-10-25T23:00:00Z"), 1);
    // March: clocks went forward at 02:00, so midnight is 22:00 UTC.
    assert_eq!(pass("2027-03-28T21:59:59Z"), 0);
    assert_eq!(pass("2027-03-28T22:00:00Z"), 1);
    assert_eq!(pass("2027-03-29T12:00:00Z"), 0, "once");
    let mut conn = env.db();
    assert_eq!(
        expired_at(&mut conn, october),
        Some(utc("2026-10-25T23:00:00Z"))
    );
    assert_eq!(
        expired_at(&mut conn, march),
        Some(utc("2027-03-28T22:00:00Z"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_over_100000_open_orders_with_100_due_reads_only_the_100() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    // A real order to copy the snapshot of (and to create the schema).
    let template = Uuid::new_v4();
    env.publish(&[event(&snapshot(template, 1))]).await;
    env.wait_processed(1, T).await;
    env.stop_workers().await;
    let mut conn = env.db();
    // 100,000 open orders: 100 with a deadline long past, the rest later.
    store_copies(
        &mut conn,
        100_000,
        &[(
            "mediation_deadline",
            "CASE WHEN g <= 100 THEN date '2026-01-01' + (g % 7) ELSE date '2027-06-01' + (g % 300) END",
        )],
    );
    let now = utc("2026-06-01T12:00:00Z");
    let plan = jobsync::store::expiry::explain_due(&mut conn, now, 500).unwrap();
    assert_reads_only(&plan, "job_orders_due", 100);
    assert_eq!(
        jobsync::store::expiry::expire_due(&mut conn, now, 500)
            .unwrap()
            .orders,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_rows_past_their_retention_are_deleted() {
    use jobsync::store::schema::processed_messages;
    let mut env =
        TestEnv::with_args(&["--expiry-interval-s", "1", "--inbox-retention-days", "14"]).await;
    env.start_worker();
    let events: Vec<Value> = (0..10)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    env.publish(&events).await;
    env.wait_processed(10, T).await;
    // Six of them were processed 15 days ago, four 13 days ago.
    let mut conn = env.db();
    diesel::sql_query(
        "UPDATE processed_messages SET processed_at = now() - CASE \
           WHEN message_id IN (SELECT message_id FROM processed_messages ORDER BY message_id LIMIT 6) \
           THEN interval '15 days' ELSE interval '13 days' END",
    )
    .execute(&mut conn)
    .unwrap();
    env.wait_until(T, "the six old inbox rows are deleted", |conn| {
        processed_messages::table
            .count()
            .get_result::<i64>(conn)
            .unwrap()
            == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_expiry_a_change_a_unit_cannot_see_still_reaches_no_one_else() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let neighbour = env.subscribe("jobcenter:16700").await;
    // A clock with nanoseconds, which PostgreSQL does not keep.
    let clock = TestClock::at("2026-12-19T12:00:00.123456789Z");
    env.start_worker_with_clock(clock.clone());
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    let got = neighbour.take(2, T).await;
    assert_eq!(got[1].event(), "joborder.expired");
    assert_eq!(got[1].data()["expired_at"], "2026-12-19T12:00:00.123456Z");
    responsible.take(2, T).await;
    // Only the contact person changes: the neighbour's view is the same.
    let mut v2 = snapshot(id, 1);
    v2["version"] = 2.into();
    v2["contact"]["phone"] = "+4543299999".into();
    env.publish(&[event(&v2)]).await;
    assert_eq!(responsible.take(1, T).await[0].event(), "joborder.updated");
    neighbour.assert_quiet(Duration::from_secs(1)).await;
}
