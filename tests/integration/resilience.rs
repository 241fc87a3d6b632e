//! Section 9: faults that are not the message's are waited out, never turned
//! into rejections; several instances end in the highest versions.

use std::time::Duration;

use diesel::prelude::*;

use rand::seq::SliceRandom;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_stopped_mid_stream_the_worker_waits_and_applies_everything() {
    let pg = PrivatePostgres::start();
    let mut env = TestEnv::with_server(&pg.url(), &["--batch-size", "20"]).await;
    env.start_worker();
    let ids: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
    let events: Vec<_> = ids.iter().map(|&id| event(&snapshot(id, 1))).collect();
    env.publish(&events[..100]).await;
    env.wait_processed(100, Duration::from_secs(30)).await;

    pg.stop();
    env.publish(&events[100..]).await;
    // The worker meets a dead database with work in hand for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_again();

    env.wait_processed(300, Duration::from_secs(60)).await;
    let mut conn = env.db();
    for id in &ids {
        assert_eq!(stored_version(&mut conn, *id), Some(1));
    }
    env.assert_no_dead_letters().await;
    env.stop_workers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_with_shuffled_and_duplicated_versions_end_in_the_highest() {
    let mut env = TestEnv::with_args(&["--batch-size", "7", "--prefetch", "20"]).await;
    env.start_worker();
    env.start_worker();
    let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let mut events = Vec::new();
    for &id in &ids {
        for version in 1..=6 {
            let e = event(&snapshot(id, version));
            // The same message twice, as a redelivery brings it.
            events.push(e.clone());
            events.push(e);
        }
    }
    events.shuffle(&mut rand::rng());
    env.publish(&events).await;
    // 240 distinct message ids; the inbox holds each once.
    env.wait_processed(240, Duration::from_secs(60)).await;
    let mut conn = env.db();
    for id in &ids {
        assert_eq!(stored_version(&mut conn, *id), Some(6), "order {id}");
    }
    env.assert_no_dead_letters().await;
    env.stop_workers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_with_no_dead_letter_queue_to_take_it_is_kept_until_there_is_one() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(1, Duration::from_secs(30)).await;
    // Nothing is bound to the dead exchange now: a dead letter published
    // there is unroutable and must come back, not vanish.
    env.delete_queue(&env.settings.topology.dead_letters_queue.clone())
        .await;
    let mut bad = snapshot(Uuid::new_v4(), 1);
    bad["employer"]["cvr"] = "12345679".into();
    env.publish(&[event(&bad)]).await;
    // The worker keeps the message unacknowledged, reconnects, declares its
    // topology again (the dead-letter queue with it) and rejects it anew.
    let dead = env.take_dead_letters(1, Duration::from_secs(30)).await;
    assert_eq!(dead[0].code(), "cvr.checksum");
}

/// Found by the chaos test: a batch holding several versions of an order
/// that lose the same unit twice (unshared, shared again, unshared) gave
/// the former-units upsert one row twice, which PostgreSQL refuses ("ON
/// CONFLICT DO UPDATE command cannot affect row a second time"); the worker
/// then applied the batch message by message, a hundred times slower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_unshares_one_unit_twice_applies_as_one_transaction() {
    use jobsync::contract::envelope::InboundType;
    use jobsync::domain::message::Outcome;
    let env = TestEnv::new().await;
    jobsync::store::db::create_database_if_missing(&env.db_url()).unwrap();
    let mut conn = env.db();
    jobsync::store::db::migrate(&mut conn).unwrap();
    let id = Uuid::new_v4();
    let both = serde_json::json!({"scope": "neighbours", "units": [
        {"type": "jobcenter", "code": "16700"}, {"type": "jobcenter", "code": "18300"}]});
    let one = serde_json::json!({"scope": "neighbours", "units": [
        {"type": "jobcenter", "code": "18300"}]});
    let messages: Vec<_> = [(1, &both), (2, &one), (3, &both), (4, &one)]
        .into_iter()
        .map(|(version, sharing)| {
            let mut data = snapshot(id, version);
            data["sharing"] = sharing.clone();
            let body = serde_json::to_vec(&event(&data)).unwrap();
            jobsync::worker::parse(&body, InboundType::JobOrderSnapshot, "q").unwrap()
        })
        .collect();
    let result = jobsync::store::apply_batch(
        &mut conn,
        "q",
        &messages,
        chrono::Utc::now(),
        &Default::default(),
    )
    .expect("the batch applies in one transaction");
    assert_eq!(result.outcomes, vec![Outcome::Applied; 4]);
    use jobsync::store::schema::job_order_former_units::dsl as f;
    let former: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = f::job_order_former_units
        .select((f::unit_code, f::role, f::until))
        .filter(f::job_order_id.eq(id))
        .load(&mut conn)
        .unwrap();
    // Lost twice, recorded once, with the later time (version 4's).
    assert_eq!(
        former,
        vec![(
            "16700".to_owned(),
            "shared".to_owned(),
            utc("2026-11-22T09:04:00Z")
        )]
    );
}
