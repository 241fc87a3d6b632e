//! Sections 4.2, 4.3 and 9: mediation log snapshots applied effectively once
//! with their entries, counts and status history, every rule of 4.2 with its
//! code, the delayed retry of a log whose order is not known yet, and the
//! handover rule that needs the log.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use jobsync::store::schema::{mediation_entries, mediation_logs, processed_messages};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common_fixtures::fixtures;
use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

/// The responsible unit of [`snapshot`] and a neighbour it is shared with.
const RESPONSIBLE: (&str, &str) = ("jobcenter", "15300");
const NEIGHBOUR: (&str, &str) = ("jobcenter", "16700");

fn responsible() -> Value {
    by_unit(RESPONSIBLE.0, RESPONSIBLE.1)
}

fn neighbour() -> Value {
    by_unit(NEIGHBOUR.0, NEIGHBOUR.1)
}

/// A worker and one stored order (version 1 of [`snapshot`], with `edit`
/// applied); `n` messages processed so far.
async fn env_with_order(edit: impl FnOnce(&mut Value)) -> (TestEnv, Uuid) {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let order = Uuid::new_v4();
    let mut data = snapshot(order, 1);
    edit(&mut data);
    env.publish(&[event(&data)]).await;
    env.wait_processed(1, T).await;
    (env, order)
}

/// A worker, one stored order and version 1 of its log: candidate `a` put
/// forward by the neighbour, awaiting approval; 2 messages processed.
async fn env_with_a_candidate_awaiting_approval() -> (TestEnv, Uuid, Uuid) {
    let (env, order) = env_with_order(|_| {}).await;
    let a = Uuid::new_v4();
    env.publish(&[log_event(&mediation_log(
        order,
        1,
        vec![candidate(a, NEIGHBOUR, "awaiting_approval", neighbour())],
    ))])
    .await;
    env.wait_processed(2, T).await;
    (env, order, a)
}

/// Waits until every mediation log published so far is handled: a sentinel
/// log on a fresh order, behind them in the queue, is applied.
async fn drain_logs(env: &TestEnv) {
    let order = Uuid::new_v4();
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.wait_until(T, "the sentinel order is stored", |conn| {
        stored_version(conn, order).is_some()
    })
    .await;
    env.publish(&[log_event(&mediation_log(order, 1, vec![]))])
        .await;
    env.wait_until(T, "the sentinel log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
}

/// Waits until a delay queue of the mediation log queue holds a message.
async fn wait_for_a_delayed_message(env: &TestEnv) {
    let t = &env.settings.topology;
    let queues: Vec<String> = jobsync::amqp::topology::RETRY_DELAYS_S
        .iter()
        .map(|&s| t.retry_queue(&t.mediationlogs_queue, s))
        .collect();
    let deadline = Instant::now() + T;
    loop {
        for q in &queues {
            if env.ready_in(q).await > 0 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message reached a delay queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `log`, expects it dead-lettered with `code` from the mediation
/// log queue, and returns its error sentence.
async fn expect_rejected(env: &TestEnv, log: &Value, code: &str) -> String {
    env.publish(&[log_event(log)]).await;
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(dead[0].code(), code, "{}", dead[0].error());
    assert_eq!(
        dead[0].headers.get("x-jobsync-source-queue"),
        Some(&env.settings.topology.mediationlogs_queue)
    );
    assert_eq!(dead[0].routing_key, "mediationlog.snapshot");
    dead[0].error().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_is_stored_with_its_entries_counts_and_history() {
    let (env, order) = env_with_order(|_| {}).await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut inactive = candidate(c, RESPONSIBLE, "available_to_company", responsible());
    inactive["cv_active"] = false.into();
    let log = mediation_log(
        order,
        1,
        vec![
            candidate(a, NEIGHBOUR, "awaiting_approval", neighbour()),
            candidate(b, RESPONSIBLE, "available_to_company", responsible()),
            inactive,
        ],
    );
    env.publish(&[log_event(&log)]).await;
    env.wait_processed(2, T).await;
    env.assert_no_dead_letters().await;

    let mut conn = env.db();
    assert_eq!(
        stored_log(&mut conn, order),
        Some((1, 3, 1, 1)),
        "total 3, one awaiting approval, one undecided (the other has no active CV)"
    );
    type EntryRow = (Uuid, String, String, String, String, Option<String>, bool);
    let mut entries: Vec<EntryRow> = mediation_entries::table
        .select((
            mediation_entries::mediation_id,
            mediation_entries::person_ref,
            mediation_entries::registered_by_type,
            mediation_entries::registered_by_code,
            mediation_entries::status,
            mediation_entries::note,
            mediation_entries::cv_active,
        ))
        .filter(mediation_entries::job_order_id.eq(order))
        .load(&mut conn)
        .unwrap();
    entries.sort_by_key(|e| e.0 != a);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].0, a);
    assert_eq!(entries[0].1, person_ref(a));
    assert_eq!((entries[0].2.as_str(), entries[0].3.as_str()), NEIGHBOUR);
    assert_eq!(entries[0].4, "awaiting_approval");
    assert_eq!(
        entries[0].5.as_deref(),
        Some("Stærk på lager; taler dansk og polsk.")
    );
    let mut h = history(&mut conn, order);
    h.sort_by_key(|r| r.0 != a);
    assert_eq!(h.len(), 3, "one row per entry put forward: {h:?}");
    assert_eq!(
        h[0],
        (
            a,
            1,
            None,
            "awaiting_approval".to_owned(),
            "jobcenter:16700".to_owned()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_change_is_recorded_once_even_when_the_snapshot_is_redelivered() {
    let (env, order) = env_with_order(|_| {}).await;
    let a = Uuid::new_v4();
    let v1 = mediation_log(
        order,
        1,
        vec![candidate(a, NEIGHBOUR, "awaiting_approval", neighbour())],
    );
    let v2 = mediation_log(
        order,
        2,
        vec![candidate(
            a,
            NEIGHBOUR,
            "available_to_company",
            responsible(),
        )],
    );
    let mut hired = candidate(a, NEIGHBOUR, "hired", json!({"kind": "employer"}));
    hired["status_changed_at"] = "2026-11-25T14:00:00Z".into();
    let v3 = mediation_log(order, 3, vec![hired]);
    env.publish(&[log_event(&v1)]).await;
    env.wait_processed(2, T).await;
    // v2 twice under one id (a redelivery) and once under another (the hub
    // sending the same version again), then v3, then v2 again late.
    let v2_id = Uuid::new_v4().to_string();
    env.publish(&[
        log_event_with_id(&v2_id, &v2),
        log_event_with_id(&v2_id, &v2),
        log_event(&v2),
    ])
    .await;
    env.wait_processed(4, T).await;
    env.publish(&[log_event(&v3), log_event_with_id(&v2_id, &v2)])
        .await;
    // The late redelivery of v2 is a duplicate by id: handled, not recorded.
    drain_logs(&env).await;
    env.assert_no_dead_letters().await;

    let mut conn = env.db();
    assert_eq!(stored_log(&mut conn, order), Some((3, 1, 0, 0)));
    let h: Vec<_> = history(&mut conn, order)
        .into_iter()
        .map(|(_, v, from, to, who)| (v, from, to, who))
        .collect();
    assert_eq!(
        h,
        vec![
            (
                1,
                None,
                "awaiting_approval".to_owned(),
                "jobcenter:16700".to_owned()
            ),
            (
                2,
                Some("awaiting_approval".to_owned()),
                "available_to_company".to_owned(),
                "jobcenter:15300".to_owned()
            ),
            (
                3,
                Some("available_to_company".to_owned()),
                "hired".to_owned(),
                "employer".to_owned()
            ),
        ],
        "who approved the candidate, and who hired them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_duplicate_logs_do_nothing_and_a_conflicting_one_is_rejected() {
    let (env, order) = env_with_order(|_| {}).await;
    let a = Uuid::new_v4();
    let entry = |status: &str| {
        let by = if status == "awaiting_approval" {
            neighbour()
        } else {
            responsible()
        };
        candidate(a, NEIGHBOUR, status, by)
    };
    let v2 = mediation_log(order, 2, vec![entry("available_to_company")]);
    env.publish(&[log_event(&v2)]).await;
    env.wait_processed(2, T).await;
    let v1 = mediation_log(order, 1, vec![entry("awaiting_approval")]);
    let (stale_id, duplicate_id) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    env.publish(&[
        log_event_with_id(&stale_id, &v1),
        log_event_with_id(&duplicate_id, &v2),
    ])
    .await;
    env.wait_processed(4, T).await;
    let mut conn = env.db();
    let outcome = |conn: &mut PgConnection, id: &str| -> String {
        processed_messages::table
            .select(processed_messages::outcome)
            .filter(processed_messages::message_id.eq(id))
            .first(conn)
            .unwrap()
    };
    assert_eq!(outcome(&mut conn, &stale_id), "stale");
    assert_eq!(outcome(&mut conn, &duplicate_id), "duplicate");
    assert_eq!(stored_log(&mut conn, order), Some((2, 1, 0, 1)));
    assert_eq!(history(&mut conn, order).len(), 1, "nothing recorded twice");

    let conflicting = mediation_log(order, 2, vec![entry("withdrawn")]);
    let error = expect_rejected(&env, &conflicting, "version.conflict").await;
    assert!(error.starts_with("data.version: "), "{error}");
    assert_eq!(stored_log(&mut conn, order), Some((2, 1, 0, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_arrives_before_its_order_is_applied_once_the_order_arrives() {
    let mut env = TestEnv::with_args(&["--retry-total-s", "120"]).await;
    env.start_worker();
    let order = Uuid::new_v4();
    let a = Uuid::new_v4();
    let log = mediation_log(
        order,
        1,
        vec![candidate(a, NEIGHBOUR, "awaiting_approval", neighbour())],
    );
    env.publish(&[log_event(&log)]).await;
    wait_for_a_delayed_message(&env).await;
    assert_eq!(stored_log(&mut env.db(), order), None);
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.wait_until(T, "the early log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
    env.assert_no_dead_letters().await;
    assert_eq!(stored_log(&mut env.db(), order), Some((1, 1, 1, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_whose_order_never_arrives_is_dead_lettered_as_joborder_unknown() {
    let mut env = TestEnv::with_args(&["--retry-total-s", "3"]).await;
    env.start_worker();
    let order = Uuid::new_v4();
    let log = mediation_log(order, 1, vec![]);
    let published = Instant::now();
    env.publish(&[log_event(&log)]).await;
    let dead = env.take_dead_letters(1, T).await;
    assert!(
        published.elapsed() >= Duration::from_secs(3),
        "rejected only after the configured total: {:?}",
        published.elapsed()
    );
    assert_eq!(dead[0].code(), "joborder.unknown", "{}", dead[0].error());
    assert!(
        dead[0].error().contains(&order.to_string()),
        "{}",
        dead[0].error()
    );
    let retries: u32 = dead[0]
        .headers
        .get("x-jobsync-retries")
        .and_then(|v| v.parse().ok())
        .expect("the retry count travels with the message");
    assert!(
        retries >= 2,
        "retried through the delay queues first: {retries}"
    );
    assert_eq!(
        dead[0].headers.get("x-jobsync-source-queue"),
        Some(&env.settings.topology.mediationlogs_queue)
    );
    assert_eq!(
        dead[0].routing_key, "mediationlog.snapshot",
        "the hub's routing key survives the delay queues, for replay"
    );
    let body: Value = serde_json::from_slice(&dead[0].body).unwrap();
    assert_eq!(body["data"], log, "the body is unchanged");
    let logs: i64 = mediation_logs::table
        .count()
        .get_result(&mut env.db())
        .unwrap();
    assert_eq!(logs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_never_disappears() {
    let (env, order) = env_with_order(|_| {}).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let v1 = mediation_log(
        order,
        1,
        vec![
            candidate(a, NEIGHBOUR, "awaiting_approval", neighbour()),
            candidate(b, NEIGHBOUR, "awaiting_approval", neighbour()),
        ],
    );
    env.publish(&[log_event(&v1)]).await;
    env.wait_processed(2, T).await;
    let v2 = mediation_log(
        order,
        2,
        vec![candidate(a, NEIGHBOUR, "withdrawn", neighbour())],
    );
    let error = expect_rejected(&env, &v2, "mediation.entry_removed").await;
    assert!(error.contains(&b.to_string()), "names the entry: {error}");
    assert_eq!(stored_log(&mut env.db(), order), Some((1, 2, 2, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_entry_must_come_from_the_responsible_unit_or_a_unit_the_order_is_shared_with() {
    let (env, order) = env_with_order(|_| {}).await;
    let outsider = candidate(
        Uuid::new_v4(),
        ("jobcenter", "10100"),
        "awaiting_approval",
        by_unit("jobcenter", "10100"),
    );
    let error = expect_rejected(
        &env,
        &mediation_log(order, 1, vec![outsider]),
        "mediation.unit_not_shared",
    )
    .await;
    assert!(
        error.starts_with("data.entries[0].registered_by: jobcenter:10100"),
        "{error}"
    );
    assert_eq!(stored_log(&mut env.db(), order), None);
    let insiders = vec![
        candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour()),
        candidate(
            Uuid::new_v4(),
            RESPONSIBLE,
            "awaiting_approval",
            responsible(),
        ),
    ];
    env.publish(&[log_event(&mediation_log(order, 2, insiders))])
        .await;
    env.wait_until(T, "the log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_new_entry_on_a_closed_order_but_existing_ones_may_still_change() {
    let (env, order, a) = env_with_a_candidate_awaiting_approval().await;
    // Closed by version 2 (updated 09:02); version 3 (09:03) is stored.
    let closed = |v| {
        let mut o = snapshot(order, v);
        o["status"] = "closed".into();
        o["status_reason"] = "need_fulfilled".into();
        o
    };
    env.publish(&[event(&closed(2)), event(&closed(3))]).await;
    env.wait_processed(4, T).await;

    let mut late = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
    late["registered_at"] = "2026-11-22T09:02:30Z".into();
    late["status_changed_at"] = "2026-11-22T09:02:30Z".into();
    let v2 = mediation_log(
        order,
        2,
        vec![candidate(a, NEIGHBOUR, "withdrawn", neighbour()), late],
    );
    let error = expect_rejected(&env, &v2, "mediation.order_closed").await;
    assert!(error.starts_with("data.entries[1]: new entry"), "{error}");
    let v2 = mediation_log(
        order,
        2,
        vec![candidate(a, NEIGHBOUR, "withdrawn", neighbour())],
    );
    env.publish(&[log_event(&v2)]).await;
    env.wait_until(T, "the change of an existing entry is applied", |conn| {
        stored_log(conn, order).map(|l| l.0) == Some(2)
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_responsible_unit_approves_a_candidate() {
    let (env, order, a) = env_with_a_candidate_awaiting_approval().await;
    let by_neighbour = mediation_log(
        order,
        2,
        vec![candidate(a, NEIGHBOUR, "available_to_company", neighbour())],
    );
    let error = expect_rejected(&env, &by_neighbour, "mediation.approval_not_by_responsible").await;
    assert!(
        error.starts_with("data.entries[0].status_changed_by: jobcenter:16700 approved"),
        "{error}"
    );
    assert_eq!(stored_log(&mut env.db(), order), Some((1, 1, 1, 0)));
    let approved = mediation_log(
        order,
        2,
        vec![candidate(
            a,
            NEIGHBOUR,
            "available_to_company",
            responsible(),
        )],
    );
    env.publish(&[log_event(&approved)]).await;
    env.wait_until(T, "the approval is applied", |conn| {
        stored_log(conn, order) == Some((2, 1, 0, 1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_coordinator_a_new_entry_cannot_skip_approval() {
    let (env, order) = env_with_order(|_| {}).await;
    let skips = mediation_log(
        order,
        1,
        vec![candidate(
            Uuid::new_v4(),
            NEIGHBOUR,
            "available_to_company",
            neighbour(),
        )],
    );
    let error = expect_rejected(&env, &skips, "mediation.approval_not_by_responsible").await;
    assert!(error.contains("skips approval"), "{error}");
    assert_eq!(stored_log(&mut env.db(), order), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_coordinator_a_new_entry_cannot_wait_for_approval() {
    let (env, order) = env_with_order(|o| {
        o["coordinator_allowed"] = false.into();
        o["coordinator"] = Value::Null;
    })
    .await;
    let waits = mediation_log(
        order,
        1,
        vec![candidate(
            Uuid::new_v4(),
            NEIGHBOUR,
            "awaiting_approval",
            neighbour(),
        )],
    );
    let error = expect_rejected(&env, &waits, "mediation.coordinator_not_allowed").await;
    assert!(error.starts_with("data.entries[0].status: "), "{error}");
    assert_eq!(stored_log(&mut env.db(), order), None);
    // Straight to the employer is right without a coordinator, whoever put
    // the candidate forward.
    let straight = mediation_log(
        order,
        2,
        vec![candidate(
            Uuid::new_v4(),
            NEIGHBOUR,
            "available_to_company",
            neighbour(),
        )],
    );
    env.publish(&[log_event(&straight)]).await;
    env.wait_until(T, "the log is applied", |conn| {
        stored_log(conn, order) == Some((2, 1, 0, 1))
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpr_number_as_person_ref_is_rejected() {
    let (env, order) = env_with_order(|_| {}).await;
    let mut entry = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
    entry["person_ref"] = "241085-4321".into();
    let error = expect_rejected(
        &env,
        &mediation_log(order, 1, vec![entry.clone()]),
        "person_ref.cpr",
    )
    .await;
    assert!(
        !error.contains("241085"),
        "the error repeats no CPR number: {error}"
    );
    // A reference shaped like one but without a calendar date is opaque.
    entry["person_ref"] = "321085-4321".into();
    env.publish(&[log_event(&mediation_log(order, 1, vec![entry]))])
        .await;
    env.wait_until(T, "the log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_akasse_hands_an_order_to_another_akasse_only_without_candidates() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let akasse_order = |id: Uuid, version: u64, responsible: (&str, &str)| {
        let mut o = snapshot(id, version);
        o["responsible_unit"] = json!({"type": responsible.0, "code": responsible.1});
        o["changed_by"] = json!({"kind": "system"});
        o["sharing"] = json!({"scope": "selected", "units": [{"type": "akasse", "code": "5678"}]});
        o
    };
    let (with, without) = (Uuid::new_v4(), Uuid::new_v4());
    env.publish(&[
        event(&akasse_order(with, 1, ("akasse", "1234"))),
        event(&akasse_order(without, 1, ("akasse", "1234"))),
    ])
    .await;
    env.wait_processed(2, T).await;
    env.publish(&[
        log_event(&mediation_log(
            with,
            1,
            vec![candidate(
                Uuid::new_v4(),
                ("akasse", "5678"),
                "awaiting_approval",
                by_unit("akasse", "5678"),
            )],
        )),
        log_event(&mediation_log(without, 1, vec![])),
    ])
    .await;
    env.wait_processed(4, T).await;

    env.publish(&[event(&akasse_order(with, 2, ("akasse", "9999")))])
        .await;
    let dead = env.take_dead_letters(1, T).await;
    assert_eq!(
        dead[0].code(),
        "handover.akasse_with_candidates",
        "{}",
        dead[0].error()
    );
    assert_eq!(stored_version(&mut env.db(), with), Some(1));

    env.publish(&[
        event(&akasse_order(without, 2, ("akasse", "9999"))),
        event(&akasse_order(with, 3, ("jobcenter", "15300"))),
    ])
    .await;
    env.wait_until(T, "both handovers are applied", |conn| {
        stored_version(conn, without) == Some(2) && stored_version(conn, with) == Some(3)
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_mediation_log_fixture_is_dead_lettered_with_its_code() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    crate::rejections::reject_every_invalid_fixture(
        &env,
        "mediationlog",
        "mediationlog.snapshot",
        30,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_mediation_log_fixture_is_applied() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let valid = fixtures("mediationlog", "valid");
    assert!(valid.len() >= 10);
    // Each fixture on an order of its own that every unit in the fixtures
    // can see.
    let mut orders = Vec::new();
    let mut logs = Vec::new();
    for (_, body) in &valid {
        let id = Uuid::new_v4();
        let mut order = snapshot(id, 1);
        order["sharing"] = json!({"scope": "selected", "units": [
            {"type": "akasse", "code": "1234"},
            {"type": "workindenmark", "code": "1"}
        ]});
        orders.push(event(&order));
        let mut log: Value = serde_json::from_slice(body).unwrap();
        log["subject"] = id.to_string().into();
        log["data"]["job_order_id"] = id.to_string().into();
        logs.push(log);
    }
    env.publish(&orders).await;
    env.wait_processed(valid.len() as i64, T).await;
    env.publish(&logs).await;
    env.wait_processed(2 * valid.len() as i64, T).await;
    env.assert_no_dead_letters().await;
    let stored: i64 = mediation_logs::table
        .count()
        .get_result(&mut env.db())
        .unwrap();
    assert_eq!(stored, valid.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_made_before_its_order_closed_or_was_unshared_is_applied_when_it_arrives_after() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let (closed, unshared) = (Uuid::new_v4(), Uuid::new_v4());
    let mut v2_closed = snapshot(closed, 2);
    v2_closed["status"] = "closed".into();
    v2_closed["status_reason"] = "need_fulfilled".into();
    let mut v2_unshared = snapshot(unshared, 2);
    v2_unshared["sharing"] =
        json!({"scope": "neighbours", "units": [{"type": "jobcenter", "code": "18300"}]});
    env.publish(&[
        event(&snapshot(closed, 1)),
        event(&v2_closed),
        event(&snapshot(unshared, 1)),
        event(&v2_unshared),
    ])
    .await;
    env.wait_processed(4, T).await;
    // Both entries were put forward at 08:00, before version 2 (09:02) took
    // the order from jobcentre 16700; the hub's log reached us after it.
    for order in [closed, unshared] {
        let entry = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
        env.publish(&[log_event(&mediation_log(order, 1, vec![entry]))])
            .await;
    }
    env.wait_until(T, "both logs are applied", |conn| {
        stored_log(conn, closed).is_some() && stored_log(conn, unshared).is_some()
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_newer_than_its_order_waits_for_the_order_version_that_explains_it() {
    let mut env = TestEnv::with_args(&["--retry-total-s", "120"]).await;
    env.start_worker();
    let order = Uuid::new_v4();
    let mut internal = snapshot(order, 1);
    internal["sharing"] = json!({"scope": "internal"});
    env.publish(&[event(&internal)]).await;
    env.wait_processed(1, T).await;
    // Put forward at 09:30 by a neighbour that version 1 (09:01) does not
    // share with: version 2, sharing with it, is still on its way.
    let mut entry = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
    entry["registered_at"] = "2026-11-22T09:30:00Z".into();
    entry["status_changed_at"] = "2026-11-22T09:30:00Z".into();
    env.publish(&[log_event(&mediation_log(order, 1, vec![entry]))])
        .await;
    wait_for_a_delayed_message(&env).await;
    assert_eq!(stored_log(&mut env.db(), order), None);
    env.publish(&[event(&snapshot(order, 2))]).await;
    env.wait_until(T, "the log is applied", |conn| {
        stored_log(conn, order).is_some()
    })
    .await;
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_still_breaking_a_rule_after_the_total_wait_is_rejected_for_that_rule() {
    let mut env = TestEnv::with_args(&["--retry-total-s", "2"]).await;
    env.start_worker();
    let order = Uuid::new_v4();
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.wait_processed(1, T).await;
    let mut outsider = candidate(
        Uuid::new_v4(),
        ("jobcenter", "10100"),
        "awaiting_approval",
        by_unit("jobcenter", "10100"),
    );
    outsider["registered_at"] = "2026-11-22T09:30:00Z".into();
    let published = Instant::now();
    env.publish(&[log_event(&mediation_log(order, 1, vec![outsider]))])
        .await;
    let dead = env.take_dead_letters(1, T).await;
    assert!(published.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        dead[0].code(),
        "mediation.unit_not_shared",
        "{}",
        dead[0].error()
    );
    assert!(
        dead[0].error().contains("newer version of the job order"),
        "{}",
        dead[0].error()
    );
    assert_eq!(stored_log(&mut env.db(), order), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn putting_a_decided_candidate_back_to_the_employer_is_an_approval() {
    let (env, order) = env_with_order(|_| {}).await;
    let [w, h, n] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    env.publish(&[log_event(&mediation_log(
        order,
        1,
        vec![
            candidate(w, NEIGHBOUR, "withdrawn", neighbour()),
            candidate(h, NEIGHBOUR, "hired", responsible()),
            candidate(n, NEIGHBOUR, "not_hired", responsible()),
        ],
    ))])
    .await;
    env.wait_processed(2, T).await;
    let back = |who: [(&str, Value); 3]| {
        let by = |status: &str| who.iter().find(|(s, _)| *s == status).unwrap().1.clone();
        let mut entries = vec![
            candidate(w, NEIGHBOUR, "withdrawn", neighbour()),
            candidate(h, NEIGHBOUR, "hired", responsible()),
            candidate(n, NEIGHBOUR, "not_hired", responsible()),
        ];
        for e in &mut entries {
            let from = e["status"].as_str().unwrap().to_owned();
            e["status"] = "available_to_company".into();
            e["status_changed_by"] = by(&from);
        }
        entries
    };
    // By the neighbour that put them forward, by the employer and by the
    // system: each an approval not made by the responsible unit.
    for by in [
        neighbour(),
        json!({"kind": "employer"}),
        json!({"kind": "system"}),
    ] {
        for status in ["withdrawn", "hired", "not_hired"] {
            let mut who = [
                ("withdrawn", responsible()),
                ("hired", responsible()),
                ("not_hired", responsible()),
            ];
            who.iter_mut().find(|(s, _)| *s == status).unwrap().1 = by.clone();
            let error = expect_rejected(
                &env,
                &mediation_log(order, 2, back(who)),
                "mediation.approval_not_by_responsible",
            )
            .await;
            assert!(
                error.contains(&format!("from {status} back to available_to_company")),
                "{error}"
            );
        }
    }
    assert_eq!(stored_log(&mut env.db(), order), Some((1, 3, 0, 0)));
    // The responsible unit puts all three back.
    let approved = mediation_log(
        order,
        2,
        back([
            ("withdrawn", responsible()),
            ("hired", responsible()),
            ("not_hired", responsible()),
        ]),
    );
    env.publish(&[log_event(&approved)]).await;
    env.wait_until(T, "the approvals are applied", |conn| {
        stored_log(conn, order) == Some((2, 3, 0, 3))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_coordinator_the_registering_unit_moves_on_an_entry_that_awaited_approval() {
    // The entry awaited approval under version 1; in version 2 (09:02) the
    // employer opts out of a coordinator.
    let (env, order, a) = env_with_a_candidate_awaiting_approval().await;
    let mut v2 = snapshot(order, 2);
    v2["coordinator_allowed"] = false.into();
    v2["coordinator"] = Value::Null;
    let mut v3 = v2.clone();
    v3["version"] = 3.into();
    v3["updated_at"] = "2026-11-22T09:03:00Z".into();
    env.publish(&[event(&v2), event(&v3)]).await;
    env.wait_until(T, "version 3 is stored", |conn| {
        stored_version(conn, order) == Some(3)
    })
    .await;
    // Moved on at 09:02:30, without a coordinator, judged by version 3.
    let moved_on = |by: Value| {
        let mut e = candidate(a, NEIGHBOUR, "available_to_company", by);
        e["status_changed_at"] = "2026-11-22T09:02:30Z".into();
        mediation_log(order, 2, vec![e])
    };
    let error = expect_rejected(
        &env,
        &moved_on(json!({"kind": "employer"})),
        "mediation.approval_not_by_responsible",
    )
    .await;
    assert!(
        error.contains("only the unit that registered it"),
        "{error}"
    );
    env.publish(&[log_event(&moved_on(neighbour()))]).await;
    env.wait_until(T, "the registering unit's move is applied", |conn| {
        stored_log(conn, order) == Some((2, 1, 0, 1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_made_before_its_unit_gained_access_is_rejected() {
    // Version 1 (09:01) is internal; version 2 (09:02) shares with the
    // neighbour; version 3 (09:03) hands the order to Copenhagen.
    let (env, order) = env_with_order(|o| o["sharing"] = json!({"scope": "internal"})).await;
    let mut v2 = snapshot(order, 2);
    v2["sharing"] =
        json!({"scope": "neighbours", "units": [{"type": "jobcenter", "code": "16700"}]});
    let mut v3 = v2.clone();
    v3["version"] = 3.into();
    v3["updated_at"] = "2026-11-22T09:03:00Z".into();
    v3["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
    env.publish(&[event(&v2), event(&v3)]).await;
    env.wait_until(T, "version 3 is stored", |conn| {
        stored_version(conn, order) == Some(3)
    })
    .await;
    let at = |e: &mut Value, time: &str| {
        e["registered_at"] = time.into();
        e["status_changed_at"] = time.into();
    };
    // The neighbour at 09:01:30, before it was shared with.
    let mut early = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
    at(&mut early, "2026-11-22T09:01:30Z");
    let error = expect_rejected(
        &env,
        &mediation_log(order, 1, vec![early]),
        "mediation.unit_not_shared",
    )
    .await;
    assert!(error.contains("jobcenter:16700 was neither"), "{error}");
    // Copenhagen at 09:02:30, before the order was handed to it.
    let copenhagen = by_unit("jobcenter", "10100");
    let mut before_handover = candidate(
        Uuid::new_v4(),
        ("jobcenter", "10100"),
        "awaiting_approval",
        copenhagen.clone(),
    );
    at(&mut before_handover, "2026-11-22T09:02:30Z");
    expect_rejected(
        &env,
        &mediation_log(order, 1, vec![before_handover]),
        "mediation.unit_not_shared",
    )
    .await;
    // After they gained access, both are accepted.
    let mut shared = candidate(Uuid::new_v4(), NEIGHBOUR, "awaiting_approval", neighbour());
    at(&mut shared, "2026-11-22T09:02:30Z");
    let mut responsible_now = candidate(
        Uuid::new_v4(),
        ("jobcenter", "10100"),
        "awaiting_approval",
        copenhagen,
    );
    at(&mut responsible_now, "2026-11-22T09:03:30Z");
    env.publish(&[log_event(&mediation_log(
        order,
        1,
        vec![shared, responsible_now],
    ))])
    .await;
    env.wait_until(T, "the entries are applied", |conn| {
        stored_log(conn, order) == Some((1, 2, 2, 0))
    })
    .await;
}
