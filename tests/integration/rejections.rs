//! Sections 3, 4.1 and 4.3: every bad message is dead-lettered with its code
//! and the four headers, nothing of it applied; good ones beside it are.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use jobsync::store::schema::job_orders;
use serde_json::json;
use uuid::Uuid;

use crate::common_fixtures::fixtures;
use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

/// Publishes every invalid fixture of `stream` (at least `at_least` of
/// them) with `routing_key`, and takes their dead letters: each with the
/// code its file name gives and an error naming the field. Returns them by
/// fixture name, for the stream's own checks.
pub(crate) async fn reject_every_invalid_fixture(
    env: &TestEnv,
    stream: &str,
    routing_key: &str,
    at_least: usize,
) -> Vec<(String, DeadLetter)> {
    let invalid = fixtures(stream, "invalid");
    assert!(
        invalid.len() >= at_least,
        "the corpus has its invalid fixtures"
    );
    let mut expected: HashMap<Vec<u8>, (String, String)> = HashMap::new();
    for (name, body) in &invalid {
        let code = name
            .split_once("--")
            .expect("fixtures are named CODE--what")
            .0
            .to_owned();
        expected.insert(body.clone(), (name.clone(), code));
        env.publish_raw(routing_key, &Uuid::new_v4().to_string(), body.clone())
            .await;
    }
    let dead = env.take_dead_letters(invalid.len(), T).await;
    dead.into_iter()
        .map(|d| {
            let (name, code) = expected.get(&d.body).expect("the body is unchanged");
            assert_eq!(d.code(), code, "{name}: {}", d.error());
            assert!(
                names_a_field(d.error()),
                "{name}: the error names the field: {:?}",
                d.error()
            );
            (name.clone(), d)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_fixture_is_dead_lettered_with_its_code_and_the_four_headers() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let dead = reject_every_invalid_fixture(&env, "joborder", "joborder.snapshot", 40).await;
    for (name, d) in &dead {
        assert_eq!(
            d.headers.get("x-jobsync-source-queue"),
            Some(&env.settings.topology.joborders_queue),
            "{name}"
        );
        let at = d
            .headers
            .get("x-jobsync-rejected-at")
            .expect("rejected-at header");
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "{name}: {at}"
        );
        assert_eq!(
            d.routing_key, "joborder.snapshot",
            "{name}: the routing key is kept for replay"
        );
    }
    let stored: i64 = job_orders::table.count().get_result(&mut env.db()).unwrap();
    assert_eq!(stored, 0, "nothing of a rejected message is applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_fixture_is_applied() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let valid = fixtures("joborder", "valid");
    for (_, body) in &valid {
        env.publish_raw(
            "joborder.snapshot",
            &Uuid::new_v4().to_string(),
            body.clone(),
        )
        .await;
    }
    env.wait_processed(valid.len() as i64, T).await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_an_unknown_type_and_a_body_over_256_kib_are_rejected() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let mut too_large = snapshot(Uuid::new_v4(), 1);
    too_large["padding"] = "x".repeat(256 * 1024).into();
    let mut unknown = event(&snapshot(Uuid::new_v4(), 1));
    unknown["type"] = "dk.dfdg.joborder.deleted".into();
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "json.malformed",
            b"{\"specversion\": \"1.0\", \"id\": ".to_vec(),
        ),
        ("json.malformed", vec![0xff, 0xfe, b'{', b'}']),
        ("json.malformed", deep.into_bytes()),
        ("type.unknown", unknown.to_string().into_bytes()),
        (
            "message.too_large",
            event(&too_large).to_string().into_bytes(),
        ),
    ];
    for (_, body) in &cases {
        env.publish_raw(
            "joborder.snapshot",
            &Uuid::new_v4().to_string(),
            body.clone(),
        )
        .await;
    }
    let dead = env.take_dead_letters(cases.len(), T).await;
    for (code, body) in &cases {
        let d = dead
            .iter()
            .find(|d| &d.body == body)
            .expect("each case is dead-lettered, body unchanged");
        assert_eq!(d.code(), *code, "{}", d.error());
        assert!(names_a_field(d.error()), "{:?}", d.error());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_version_with_other_content_is_a_version_conflict() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 2))]).await;
    env.wait_processed(1, T).await;
    let mut other = snapshot(id, 2);
    other["title"] = "En anden titel".into();
    env.publish(&[event(&other)]).await;
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(dead[0].code(), "version.conflict");
    assert!(
        dead[0].error().starts_with("data.version: "),
        "{}",
        dead[0].error()
    );
    let title: String = job_orders::table
        .filter(job_orders::id.eq(id))
        .select(job_orders::title)
        .first(&mut env.db())
        .unwrap();
    assert_eq!(title, "Lagermedarbejder v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_affected_employer_cannot_create_an_order_in_jobag() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let conflicted = |id, version| {
        let mut s = snapshot(id, version);
        s["origin"] = "jobag".into();
        s["changed_by"] = json!({"kind": "employer"});
        s["employer"]["conflict_affected"] = true.into();
        s
    };
    let refused = Uuid::new_v4();
    env.publish(&[event(&conflicted(refused, 1))]).await;
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(dead[0].code(), "employer.conflict_affected");
    assert_eq!(stored_version(&mut env.db(), refused), None);

    // Only the first version is refused: an order that exists may go on.
    let existing = Uuid::new_v4();
    let mut first = snapshot(existing, 1);
    first["origin"] = "jobag".into();
    env.publish(&[event(&first)]).await;
    env.wait_processed(1, T).await;
    env.publish(&[event(&conflicted(existing, 2))]).await;
    env.wait_processed(2, T).await;
    assert_eq!(stored_version(&mut env.db(), existing), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employer_changing_the_status_must_comment() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    env.wait_processed(1, T).await;
    let by_employer = |version, comment: Option<&str>| {
        let mut s = snapshot(id, version);
        s["changed_by"] = json!({"kind": "employer"});
        s["status"] = "temporarily_inactive".into();
        s["status_reason"] = "enough_referrals".into();
        s["status_comment"] = comment.into();
        s
    };
    env.publish(&[
        event(&by_employer(2, None)),
        event(&by_employer(3, Some("  "))),
    ])
    .await;
    let dead = env.take_dead_letters(2, T).await;
    assert!(
        dead.iter().all(|d| d.code() == "status.comment_required"),
        "{dead:?}"
    );
    assert_eq!(stored_version(&mut env.db(), id), Some(1));
    env.publish(&[event(&by_employer(4, Some("Vi har nok ansøgere for nu.")))])
        .await;
    env.wait_processed(2, T).await;
    assert_eq!(stored_version(&mut env.db(), id), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_employer_cannot_hand_an_order_over_and_a_handover_asks_for_a_new_coordinator() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    env.wait_processed(1, T).await;

    let handed = |version, changed_by: serde_json::Value, coordinator: serde_json::Value| {
        let mut s = snapshot(id, version);
        s["changed_by"] = changed_by;
        s["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
        s["coordinator"] = coordinator;
        s
    };
    let old_coordinator = json!({"id": "c-17", "name": "Åse Nørgaard"});
    env.publish(&[event(&handed(
        2,
        json!({"kind": "employer"}),
        old_coordinator.clone(),
    ))])
    .await;
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(dead[0].code(), "handover.by_employer");
    assert_eq!(stored_version(&mut env.db(), id), Some(1));

    let by_unit = json!({"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}});
    env.publish(&[event(&handed(3, by_unit.clone(), old_coordinator.clone()))])
        .await;
    env.wait_processed(2, T).await;
    let needed = |env: &TestEnv| -> (i64, String, bool) {
        job_orders::table
            .filter(job_orders::id.eq(id))
            .select((
                job_orders::version,
                job_orders::responsible_unit_code,
                job_orders::coordinator_reassignment_needed,
            ))
            .first(&mut env.db())
            .unwrap()
    };
    assert_eq!(needed(&env), (3, "10100".into(), true));
    // Still the old coordinator: still needed.
    env.publish(&[event(&handed(4, by_unit.clone(), old_coordinator))])
        .await;
    env.wait_processed(3, T).await;
    assert_eq!(needed(&env), (4, "10100".into(), true));
    // The new unit appoints its own: no longer needed.
    env.publish(&[event(&handed(
        5,
        by_unit,
        json!({"id": "kbh-3", "name": "Mette Holm"}),
    ))])
    .await;
    env.wait_processed(4, T).await;
    assert_eq!(needed(&env), (5, "10100".into(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_message_applies_the_rest() {
    // Everything is queued before the worker starts, so it arrives as one batch.
    let mut env = TestEnv::with_args(&["--batch-size", "100", "--batch-wait-ms", "200"]).await;
    let mut events: Vec<_> = (0..40)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    let mut bad = snapshot(Uuid::new_v4(), 1);
    bad["employer"]["cvr"] = "12345679".into();
    events.insert(20, event(&bad));
    env.publish(&events).await;
    env.start_worker();
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(dead[0].code(), "cvr.checksum");
    assert_eq!(
        dead[0].error(),
        "data.employer.cvr: 12345679 fails the CVR check digit"
    );
    env.wait_processed(40, T).await;
    let stored: i64 = job_orders::table.count().get_result(&mut env.db()).unwrap();
    assert_eq!(stored, 40);
}
