//! The oracle of the reliability suite must see what it is there to see: a
//! run with a version lowered, a sharing row lost, a notification lost, one
//! sent again with other content and one showing a shared unit the contact
//! person is reported, each of them.

use std::time::Duration;

use diesel::prelude::*;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions};
use lapin::BasicProperties;
use serde_json::Value;

use crate::harness::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oracle_reports_a_lost_a_changed_and_a_leaked_notification_and_a_wrong_end_state() {
    let mut env = TestEnv::new().await;
    let stream = Stream::generate(seed(), &Mix::about(600));
    let watch = Watch::declare(&env).await;
    env.start_worker();
    publish_resiliently(&env.settings.topology.hub_exchange, &stream.messages).await;
    wait_done(&env, &stream, Duration::from_secs(120)).await;
    env.stop_workers().await;

    // The database: one order a version back, one sharing row gone.
    let lowered = stream.orders[0].id;
    let unshared = stream
        .orders
        .iter()
        .find(|o| !o.versions.last().unwrap().shared.is_empty())
        .expect("some order ends shared")
        .id;
    let mut conn = env.db();
    diesel::sql_query("UPDATE job_orders SET version = version - 1 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(lowered)
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "DELETE FROM job_order_sharing WHERE ctid = \
         (SELECT ctid FROM job_order_sharing WHERE job_order_id = $1 LIMIT 1)",
    )
    .bind::<diesel::sql_types::Uuid, _>(unshared)
    .execute(&mut conn)
    .unwrap();

    // The queues of three units that are never responsible: one loses a
    // notification, one gets its first again with another title, one a
    // view with the contact person.
    let conn = jobsync::amqp::connect(AMQP_URL, "oracle test")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let shared: Vec<&str> = units()
        .into_iter()
        .filter(|u| {
            stream
                .orders
                .iter()
                .all(|o| o.versions[0].responsible != *u)
        })
        .collect();
    let mut first = Vec::new();
    for unit in &shared[..3] {
        let queue = &watch.queues[*unit];
        let got = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{unit} was told something"));
        got.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
        first.push(got.delivery.data.clone());
    }
    let republish = |queue: &str, body: Vec<u8>| {
        let channel = channel.clone();
        let queue = queue.to_owned();
        async move {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    // Unit 0's first is gone. Unit 1's comes back, then again changed.
    let q1 = &watch.queues[shared[1]];
    republish(q1, first[1].clone()).await;
    let mut changed: Value = serde_json::from_slice(&first[1]).unwrap();
    changed["data"]["title"] = "Noget andet".into();
    republish(q1, serde_json::to_vec(&changed).unwrap()).await;
    // Unit 2's comes back with the contact person in it.
    let mut leaked: Value = serde_json::from_slice(&first[2]).unwrap();
    leaked["data"]["contact"] = serde_json::json!({"name": "Søren Østergård"});
    republish(
        &watch.queues[shared[2]],
        serde_json::to_vec(&leaked).unwrap(),
    )
    .await;
    let _ = conn.close(200, "tampered".into()).await;

    let found = discrepancies(&env, &stream, &watch).await;
    watch.delete().await;
    let has = |what: &str| found.iter().any(|f| f.contains(what));
    assert!(has(&format!("order {lowered}: stored")), "{found:#?}");
    assert!(has(&format!("order {unshared}: shared with")), "{found:#?}");
    assert!(has("expected notifications never published"), "{found:#?}");
    assert!(has("came twice with different content"), "{found:#?}");
    assert!(has(&format!("{}: contact of", shared[2])), "{found:#?}");
}
