//! Section 4.1 and 9: job order snapshots applied effectively once, in
//! version order, whatever arrives twice or late.

use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use jobsync::store::schema::{job_order_sharing, job_orders, processed_messages};
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_is_stored_with_every_field() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 3))]).await;
    env.wait_processed(1, T).await;

    let mut conn = env.db();
    type Row = (
        (
            i64,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
        ),
        (
            String,
            Option<String>,
            String,
            bool,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
        ),
        (
            Option<String>,
            Option<String>,
            bool,
            String,
            Option<String>,
            Option<String>,
            bool,
            Option<i32>,
        ),
        (
            Option<NaiveDate>,
            Option<NaiveDate>,
            String,
            Option<String>,
            Option<String>,
            String,
        ),
        (
            chrono::DateTime<Utc>,
            chrono::DateTime<Utc>,
            bool,
            Option<chrono::DateTime<Utc>>,
        ),
    );
    use job_orders::dsl as j;
    let row: Row = j::job_orders
        .filter(j::id.eq(id))
        .select((
            (
                j::version,
                j::request_id,
                j::origin,
                j::changed_by_kind,
                j::changed_by_unit_type,
                j::changed_by_unit_code,
                j::title,
                j::occupation_name,
                j::occupation_alias,
                j::occupation_code,
            ),
            (
                j::employer_cvr,
                j::employer_p_number,
                j::employer_name,
                j::employer_conflict_affected,
                j::contact_name,
                j::contact_email,
                j::contact_phone,
                j::responsible_unit_type,
                j::responsible_unit_code,
            ),
            (
                j::coordinator_id,
                j::coordinator_name,
                j::coordinator_allowed,
                j::tasks,
                j::qualifications_and_pay,
                j::working_hours,
                j::continuous,
                j::positions,
            ),
            (
                j::expected_start,
                j::mediation_deadline,
                j::status,
                j::status_reason,
                j::status_comment,
                j::sharing_scope,
            ),
            (
                j::created_at,
                j::updated_at,
                j::coordinator_reassignment_needed,
                j::expired_at,
            ),
        ))
        .first(&mut conn)
        .unwrap();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        row.0,
        (
            3,
            s("ANM-2026-0042"),
            "unit".into(),
            "unit".into(),
            s("jobcenter"),
            s("15300"),
            "Lagermedarbejder v3".into(),
            "Lagermedarbejder".into(),
            s("Lagerarbejder"),
            s("932920")
        )
    );
    assert_eq!(
        row.1,
        (
            "10150817".into(),
            s("1003456789"),
            "Brøndby Lager ApS".into(),
            false,
            s("Søren Østergård"),
            s("soeren@brondbylager.dk"),
            s("+4543212345"),
            "jobcenter".into(),
            "15300".into()
        )
    );
    assert_eq!(
        row.2,
        (
            s("c-17"),
            s("Åse Nørgaard"),
            true,
            "Pluk og pak på nathold.".into(),
            s("Truckcertifikat. Løn efter overenskomst."),
            s("37 timer, nat"),
            false,
            Some(3)
        )
    );
    assert_eq!(
        row.3,
        (
            NaiveDate::from_ymd_opt(2027, 1, 4),
            NaiveDate::from_ymd_opt(2026, 12, 18),
            "open".into(),
            None,
            None,
            "neighbours".into()
        )
    );
    assert_eq!(
        row.4,
        (
            Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 3, 0).unwrap(),
            false,
            None
        )
    );
    let mut units: Vec<(String, String)> = job_order_sharing::table
        .filter(job_order_sharing::job_order_id.eq(id))
        .select((job_order_sharing::unit_type, job_order_sharing::unit_code))
        .load(&mut conn)
        .unwrap();
    units.sort();
    assert_eq!(
        units,
        vec![
            ("jobcenter".into(), "16700".into()),
            ("jobcenter".into(), "18300".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_version_replaces_the_order_and_its_sharing() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    env.wait_processed(1, T).await;
    let mut v2 = snapshot(id, 2);
    v2["title"] = "Truckfører".into();
    v2["sharing"] = serde_json::json!({"scope": "internal", "units": []});
    env.publish(&[event(&v2)]).await;
    env.wait_processed(2, T).await;

    let mut conn = env.db();
    let (version, title): (i64, String) = job_orders::table
        .filter(job_orders::id.eq(id))
        .select((job_orders::version, job_orders::title))
        .first(&mut conn)
        .unwrap();
    assert_eq!((version, title.as_str()), (2, "Truckfører"));
    let shared: i64 = job_order_sharing::table
        .filter(job_order_sharing::job_order_id.eq(id))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(shared, 0, "an order made internal is shared with nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_leaves_the_order_unchanged() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 5))]).await;
    env.wait_processed(1, T).await;
    let mut stale = snapshot(id, 4);
    stale["title"] = "Forældet titel".into();
    let stale_event = event(&stale);
    env.publish(std::slice::from_ref(&stale_event)).await;
    env.wait_processed(2, T).await;

    let mut conn = env.db();
    let title: String = job_orders::table
        .filter(job_orders::id.eq(id))
        .select(job_orders::title)
        .first(&mut conn)
        .unwrap();
    assert_eq!(stored_version(&mut conn, id), Some(5));
    assert_eq!(title, "Lagermedarbejder v5");
    let outcome: String = processed_messages::table
        .filter(processed_messages::message_id.eq(stale_event["id"].as_str().unwrap()))
        .select(processed_messages::outcome)
        .first(&mut conn)
        .unwrap();
    assert_eq!(outcome, "stale");
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_twice_has_one_effect() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    let first = event(&snapshot(id, 1));
    env.publish(std::slice::from_ref(&first)).await;
    env.wait_processed(1, T).await;
    env.publish(&[event(&snapshot(id, 2))]).await;
    env.wait_processed(2, T).await;
    let applied_at: chrono::DateTime<Utc> = job_orders::table
        .filter(job_orders::id.eq(id))
        .select(job_orders::applied_at)
        .first(&mut env.db())
        .unwrap();

    // The first message again, as a redelivery would bring it; then a marker
    // to know it has been handled.
    env.publish(std::slice::from_ref(&first)).await;
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(3, T).await;

    let mut conn = env.db();
    assert_eq!(stored_version(&mut conn, id), Some(2));
    let rows: Vec<(String, String)> = processed_messages::table
        .filter(processed_messages::job_order_id.eq(id))
        .select((processed_messages::message_id, processed_messages::outcome))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 2, "one inbox row per message id: {rows:?}");
    let first_outcome = rows
        .iter()
        .find(|(m, _)| m == first["id"].as_str().unwrap())
        .map(|(_, o)| o.as_str());
    assert_eq!(
        first_outcome,
        Some("applied"),
        "the redelivery changed nothing"
    );
    let applied_after: chrono::DateTime<Utc> = job_orders::table
        .filter(job_orders::id.eq(id))
        .select(job_orders::applied_at)
        .first(&mut conn)
        .unwrap();
    assert_eq!(applied_at, applied_after, "the row was not written again");
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_version_with_the_same_content_under_a_new_id_is_a_no_op() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    env.wait_processed(1, T).await;
    // Unknown fields are ignored: still the same content.
    let mut again = snapshot(id, 1);
    again["hub_internal_note"] = "ignored".into();
    let again = event(&again);
    env.publish(std::slice::from_ref(&again)).await;
    env.wait_processed(2, T).await;
    let outcome: String = processed_messages::table
        .filter(processed_messages::message_id.eq(again["id"].as_str().unwrap()))
        .select(processed_messages::outcome)
        .first(&mut env.db())
        .unwrap();
    assert_eq!(outcome, "duplicate");
    env.assert_no_dead_letters().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_in_one_batch_end_in_the_highest() {
    // Published before the worker starts, so that they share a batch.
    let mut env = TestEnv::new().await;
    let id = Uuid::new_v4();
    let events: Vec<_> = [3, 1, 5, 2, 4]
        .iter()
        .map(|&v| event(&snapshot(id, v)))
        .collect();
    env.publish(&events).await;
    env.start_worker();
    env.wait_processed(5, T).await;
    assert_eq!(stored_version(&mut env.db(), id), Some(5));
}
