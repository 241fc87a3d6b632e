//! Contract section 11 and 5.4: the service promises of an order the
//! employer made, with the clock the expiry tests set.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

/// Version `v` of an order the employer made on 2026-12-01 at 08:00,
/// changed by `by` at `updated_at`.
fn employer_order(id: Uuid, v: u64, by: Value, updated_at: &str) -> Value {
    let mut o = JobOrder::new(id).version(v).build();
    o["origin"] = json!("jobag");
    o["changed_by"] = by;
    o["created_at"] = json!("2026-12-01T08:00:00Z");
    o["updated_at"] = json!(updated_at);
    o["coordinator"] = Value::Null;
    o["coordinator_allowed"] = json!(false);
    o["sharing"] = json!({"scope": "internal", "units": []});
    o
}

fn employer() -> Value {
    json!({"kind": "employer"})
}

fn brondby() -> Value {
    by_unit("jobcenter", "15300")
}

/// The promises of the last `joborder.updated` about `id` among `got`.
fn promises_in(got: &[Received], id: Uuid) -> Value {
    got.iter()
        .rev()
        .find(|r| r.event() == "joborder.updated" && r.order() == id)
        .map(|r| r.data().get("promises").cloned().unwrap_or(Value::Null))
        .unwrap_or_else(|| panic!("no joborder.updated about {id}"))
}

/// Advances the clock and waits for the checks to run (interval 1 s).
async fn at(clock: &Arc<TestClock>, time: &str) {
    clock.set(time);
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_promise_is_met_on_time_met_late_missed_once_released_or_not_tracked() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let unit = env.subscribe("jobcenter:15300").await;
    let events = env.subscribe_events().await;
    let clock = TestClock::at("2026-12-01T09:00:00Z");
    env.start_worker_with_clock(clock.clone());
    let (kept, late, closed, old, own) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let mut first = vec![
        event(&employer_order(kept, 1, employer(), "2026-12-01T08:00:00Z")),
        event(&employer_order(late, 1, employer(), "2026-12-01T08:00:00Z")),
        event(&employer_order(
            closed,
            1,
            employer(),
            "2026-12-01T08:00:00Z",
        )),
    ];
    // Created four days before jobsync first sees it: both due times have
    // passed, nothing is tracked.
    let mut o = employer_order(old, 1, employer(), "2026-11-27T08:00:00Z");
    o["created_at"] = json!("2026-11-27T08:00:00Z");
    first.push(event(&o));
    // Made by a unit: no promises.
    let mut o = employer_order(own, 1, brondby(), "2026-12-01T08:00:00Z");
    o["origin"] = json!("unit");
    first.push(event(&o));
    env.publish(&first).await;
    let got = unit.take(5, T).await;
    let due = json!({"due_at": "2026-12-02T08:00:00Z", "met_at": null, "missed": false});
    assert_eq!(
        promises_in(&got, kept),
        json!({"contact": due, "delivery": {"due_at": "2026-12-04T08:00:00Z", "met_at": null, "missed": false}})
    );
    assert_eq!(
        promises_in(&got, old),
        Value::Null,
        "past due when first seen"
    );
    assert_eq!(promises_in(&got, own), Value::Null, "a unit's own order");
    events.take(5, T).await;

    // Kept: the responsible unit makes a version (contact) and puts a
    // candidate forward (delivery); the follow-up is then due in 14 days.
    // Closed: closed before anything was due, which releases both.
    let mut v2 = employer_order(closed, 2, brondby(), "2026-12-01T10:00:00Z");
    v2["status"] = json!("closed");
    v2["status_reason"] = json!("need_fulfilled");
    env.publish(&[
        event(&employer_order(kept, 2, brondby(), "2026-12-01T10:00:00Z")),
        event(&v2),
    ])
    .await;
    let mut c = candidate(
        Uuid::new_v4(),
        ("jobcenter", "15300"),
        "available_to_company",
        brondby(),
    );
    c["registered_at"] = json!("2026-12-01T11:00:00Z");
    c["status_changed_at"] = json!("2026-12-01T12:00:00Z");
    env.publish(&[log_event(&mediation_log(kept, 1, vec![c]))])
        .await;
    env.wait_processed(8, T).await;
    let got = unit.take_all(Duration::from_secs(2)).await;
    assert_eq!(
        promises_in(&got, kept),
        json!({
            "contact": {"due_at": "2026-12-02T08:00:00Z", "met_at": "2026-12-01T10:00:00Z", "missed": false},
            "delivery": {"due_at": "2026-12-04T08:00:00Z", "met_at": "2026-12-01T12:00:00Z", "missed": false},
            "follow_up": {"due_at": "2026-12-15T12:00:00Z", "met_at": null, "missed": false},
        })
    );
    events.take(1, T).await; // closed

    // A day on, contact of `late` is missed: once, to its unit and to the
    // events, and its view says so.
    at(&clock, "2026-12-02T09:00:00Z").await;
    at(&clock, "2026-12-02T09:30:00Z").await;
    let got = unit.take_all(Duration::from_secs(1)).await;
    let missed: Vec<&Received> = got
        .iter()
        .filter(|r| r.event() == "joborder.promise-missed")
        .collect();
    assert_eq!(missed.len(), 1, "once: {got:#?}");
    assert_eq!(missed[0].order(), late);
    assert_eq!(
        missed[0].data(),
        &json!({"job_order_id": late.to_string(), "version": 1, "promise": "contact", "due_at": "2026-12-02T08:00:00Z"})
    );
    assert_eq!(promises_in(&got, late)["contact"]["missed"], true);
    let e = events.take(1, T).await;
    assert_eq!(e[0].routing_key, "joborder.promise-missed");

    // It is met late: the view keeps both. The same message again, and the
    // same version under another id, change nothing.
    let v2 = employer_order(late, 2, brondby(), "2026-12-02T12:00:00Z");
    let id = Uuid::new_v4().to_string();
    env.publish(&[event_with_id(&id, &v2)]).await;
    let got = unit.take(1, T).await;
    assert_eq!(
        promises_in(&got, late)["contact"],
        json!({"due_at": "2026-12-02T08:00:00Z", "met_at": "2026-12-02T12:00:00Z", "missed": true})
    );
    env.publish(&[event_with_id(&id, &v2), event(&v2)]).await;
    unit.assert_quiet(Duration::from_secs(1)).await;
    events.assert_quiet(Duration::from_millis(100)).await;

    // Past every due time: delivery of `late` is missed; nothing of
    // `kept` (all met, the follow-up not yet due), `closed` (released),
    // `old` or `own`.
    at(&clock, "2026-12-05T09:00:00Z").await;
    let got = unit.take_all(Duration::from_secs(1)).await;
    let missed: Vec<(Uuid, Value)> = got
        .iter()
        .filter(|r| r.event() == "joborder.promise-missed")
        .map(|r| (r.order(), r.data()["promise"].clone()))
        .collect();
    assert_eq!(missed, vec![(late, json!("delivery"))]);
    events.take(1, T).await;

    // The follow-up: the responsible unit's next version meets it.
    env.publish(&[event(&employer_order(
        kept,
        3,
        brondby(),
        "2026-12-09T08:00:00Z",
    ))])
    .await;
    let got = unit.take(1, T).await;
    assert_eq!(
        promises_in(&got, kept)["follow_up"]["met_at"],
        "2026-12-09T08:00:00Z"
    );
    at(&clock, "2026-12-16T09:00:00Z").await;
    unit.assert_quiet(Duration::from_millis(500)).await;
    events.assert_quiet(Duration::from_millis(100)).await;
}

/// 11: with two instances checking, each missed promise is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_each_promise_is_missed_once() {
    let mut env = TestEnv::with_args(&["--expiry-interval-s", "1"]).await;
    let unit = env.subscribe("jobcenter:15300").await;
    let clock = TestClock::at("2026-12-01T09:00:00Z");
    env.start_worker_with_clock(clock.clone());
    env.start_worker_with_clock(clock.clone());
    let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let orders: Vec<Value> = ids
        .iter()
        .map(|id| event(&employer_order(*id, 1, employer(), "2026-12-01T08:00:00Z")))
        .collect();
    env.publish(&orders).await;
    unit.take(40, T).await;
    at(&clock, "2026-12-05T09:00:00Z").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = unit.take_all(Duration::from_secs(1)).await;
    let mut missed: Vec<(Uuid, String)> = got
        .iter()
        .filter(|r| r.event() == "joborder.promise-missed")
        .map(|r| (r.order(), r.data()["promise"].as_str().unwrap().to_owned()))
        .collect();
    missed.sort();
    let mut expected: Vec<(Uuid, String)> = ids
        .iter()
        .flat_map(|id| [(*id, "contact".to_owned()), (*id, "delivery".to_owned())])
        .collect();
    expected.sort();
    assert_eq!(missed, expected, "each once");
}

/// 11: a check costs time in proportion to the promises falling due: among
/// 100,000 open promises with 100 due, it reads the 100 from the partial
/// index on the due time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_reads_only_the_promises_falling_due() {
    let mut env = TestEnv::new().await;
    let unit = env.subscribe("jobcenter:15300").await;
    env.start_worker();
    env.publish(&[event(&JobOrder::new(Uuid::new_v4()).build())])
        .await;
    unit.take(1, T).await;
    env.stop_workers().await;
    let mut conn = env.db();
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "INSERT INTO promises (job_order_id, promise, due_at) \
         SELECT gen_random_uuid(), 'contact', \
                CASE WHEN g <= 100 THEN timestamptz '2026-12-01 00:00Z' + g * interval '1 minute' \
                     ELSE timestamptz '2027-06-01 00:00Z' + g * interval '1 minute' END \
           FROM generate_series(1, 100000) g",
    )
    .execute(&mut conn)
    .unwrap();
    // Met, missed and released ones are not in the index at all.
    diesel::sql_query(
        "INSERT INTO promises (job_order_id, promise, due_at, met_at) \
         SELECT gen_random_uuid(), 'delivery', timestamptz '2026-11-01 00:00Z', now() \
           FROM generate_series(1, 50000) g",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("ANALYZE promises")
        .execute(&mut conn)
        .unwrap();
    let plan =
        jobsync::store::promises::explain_due(&mut conn, utc("2026-12-05T00:00:00Z"), 500).unwrap();
    assert_reads_only(&plan, "promises_open_due", 100);
}

/// `jobsync report promises` over a small world whose figures are worked
/// out by hand (below), in all three formats, and an empty window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_gives_the_hand_computed_figures_in_every_format() {
    use diesel::RunQueryDsl;
    let mut env = TestEnv::new().await;
    let unit = env.subscribe("jobcenter:15300").await;
    env.start_worker();
    let template = Uuid::new_v4();
    env.publish(&[event(&JobOrder::new(template).build())])
        .await;
    unit.take(1, T).await;
    env.stop_workers().await;
    let mut conn = env.db();
    // (order, created_at, responsible unit, promises: (name, due, met, missed, released))
    type P<'a> = (&'a str, &'a str, Option<&'a str>, bool, bool);
    let world: Vec<(&str, &str, Vec<P>)> = vec![
        // Brøndby (15300).
        (
            "2026-12-01T08:00:00Z",
            "15300",
            vec![
                (
                    "contact",
                    "2026-12-02T08:00:00Z",
                    Some("2026-12-01T10:00:00Z"),
                    false,
                    false,
                ),
                (
                    "delivery",
                    "2026-12-04T08:00:00Z",
                    Some("2026-12-01T18:00:00Z"),
                    false,
                    false,
                ),
                (
                    "follow_up",
                    "2026-12-15T18:00:00Z",
                    Some("2026-12-09T08:00:00Z"),
                    false,
                    false,
                ),
            ],
        ),
        (
            "2026-12-02T08:00:00Z",
            "15300",
            vec![
                (
                    "contact",
                    "2026-12-03T08:00:00Z",
                    Some("2026-12-03T14:00:00Z"),
                    true,
                    false,
                ),
                ("delivery", "2026-12-05T08:00:00Z", None, true, false),
            ],
        ),
        (
            "2026-12-03T08:00:00Z",
            "15300",
            vec![
                ("contact", "2026-12-04T08:00:00Z", None, false, true),
                ("delivery", "2026-12-06T08:00:00Z", None, false, true),
            ],
        ),
        (
            "2026-12-04T08:00:00Z",
            "15300",
            vec![
                ("contact", "2026-12-05T08:00:00Z", None, false, false),
                ("delivery", "2026-12-07T08:00:00Z", None, false, false),
            ],
        ),
        // 00:30 on 1 December in Copenhagen: in the window.
        (
            "2026-11-30T23:30:00Z",
            "15300",
            vec![(
                "contact",
                "2026-12-01T23:30:00Z",
                Some("2026-12-01T00:30:00Z"),
                false,
                false,
            )],
        ),
        // 23:30 on 30 November and 01:30 on 1 January in Copenhagen: not.
        (
            "2026-11-30T22:30:00Z",
            "15300",
            vec![("contact", "2026-12-01T22:30:00Z", None, true, false)],
        ),
        (
            "2027-01-01T00:30:00Z",
            "15300",
            vec![("contact", "2027-01-02T00:30:00Z", None, false, false)],
        ),
        // København (10100).
        (
            "2026-12-05T08:00:00Z",
            "10100",
            vec![
                (
                    "contact",
                    "2026-12-06T08:00:00Z",
                    Some("2026-12-05T12:00:00Z"),
                    false,
                    false,
                ),
                (
                    "delivery",
                    "2026-12-08T08:00:00Z",
                    Some("2026-12-08T16:00:00Z"),
                    true,
                    false,
                ),
            ],
        ),
        (
            "2026-12-06T08:00:00Z",
            "10100",
            vec![
                (
                    "contact",
                    "2026-12-07T08:00:00Z",
                    Some("2026-12-06T14:00:00Z"),
                    false,
                    false,
                ),
                ("delivery", "2026-12-09T08:00:00Z", None, false, false),
            ],
        ),
        // An order without promises: not in the report.
        ("2026-12-07T08:00:00Z", "18300", vec![]),
    ];
    for (created, code, promises) in &world {
        let id = Uuid::new_v4();
        for sql in [
            format!("CREATE TEMP TABLE t AS SELECT * FROM job_orders WHERE id = '{template}'"),
            format!(
                "UPDATE t SET id = '{id}', created_at = '{created}', responsible_unit_code = '{code}'"
            ),
            "INSERT INTO job_orders SELECT * FROM t".to_owned(),
            "DROP TABLE t".to_owned(),
        ] {
            diesel::sql_query(sql).execute(&mut conn).unwrap();
        }
        let q = |t: Option<&str>| t.map_or("NULL".to_owned(), |t| format!("'{t}'"));
        for (name, due, met, missed, released) in promises {
            let missed_at = missed.then_some(*due);
            let released_at = released.then_some(*due);
            diesel::sql_query(format!(
                "INSERT INTO promises (job_order_id, promise, due_at, met_at, missed_at, released_at) \
                 VALUES ('{id}', '{name}', '{due}', {}, {}, {})",
                q(*met),
                q(missed_at),
                q(released_at)
            ))
            .execute(&mut conn)
            .unwrap();
        }
    }
    // Worked out by hand. Brøndby: 5 orders; contact: 4 not released, met
    // on time by the first and the 00:30 one → 0.5; delivery: 3, the first
    // → 0.333; follow-up 1 of 1; contact met after 2, 30 and 1 hours → 2;
    // delivery after 10 → 10; missed: the second's two; open: the fourth's
    // two. København: 2 orders; contact 2 of 2; delivery 0 of 2; no
    // follow-up; contact after 4 and 6 hours → 5; delivery after 80; one
    // missed, one open.
    let expected = vec![
        json!({"unit": "jobcenter:10100", "name": "København", "orders": 2,
               "contact_on_time": 1.0, "delivery_on_time": 0.0, "follow_up_on_time": null,
               "median_contact_hours": 5.0, "median_delivery_hours": 80.0, "missed": 1, "open": 1}),
        json!({"unit": "jobcenter:15300", "name": "Brøndby", "orders": 5,
               "contact_on_time": 0.5, "delivery_on_time": 0.333, "follow_up_on_time": 1.0,
               "median_contact_hours": 2.0, "median_delivery_hours": 10.0, "missed": 2, "open": 2}),
    ];
    let report = |args: &[&str]| {
        let out = crate::cli::jobsync(&env, &[&["report", "promises"], args].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let window = ["--from", "2026-12-01", "--to", "2026-12-31"];
    let json_rows: Vec<Value> = report(&[&window[..], &["--format", "json"]].concat())
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json_rows, expected);

    let csv = report(&[&window[..], &["--format", "csv"]].concat());
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "unit",
            "name",
            "orders",
            "contact_on_time",
            "delivery_on_time",
            "follow_up_on_time",
            "median_contact_hours",
            "median_delivery_hours",
            "missed",
            "open"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1],
        [
            "jobcenter:15300",
            "Brøndby",
            "5",
            "0.5",
            "0.333",
            "1",
            "2",
            "10",
            "2",
            "2"
        ]
    );
    assert_eq!(rows[0][5], "", "no follow-up: an empty cell");

    let table = report(&window);
    assert!(
        table.contains("Brøndby") && table.contains("København"),
        "{table}"
    );
    assert!(
        table.contains("50 %") && table.contains("33 %") && table.contains("80.0 h"),
        "{table}"
    );
    let lines: Vec<&str> = table.lines().collect();
    let end_of_orders = lines[0].find("ORDERS").unwrap() + "ORDERS".len();
    for l in &lines[1..3] {
        assert!(
            l[..l
                .char_indices()
                .nth(end_of_orders)
                .map_or(l.len(), |(i, _)| i)]
                .chars()
                .last()
                .unwrap()
                .is_ascii_digit(),
            "the orders column is aligned:\n{table}"
        );
    }
    let one = report(
        &[
            &window[..],
            &["--unit", "jobcenter:10100", "--format", "json"],
        ]
        .concat(),
    );
    assert_eq!(one.lines().count(), 1);

    // An empty window is an empty report.
    let empty = ["--from", "2030-01-01", "--to", "2030-01-31"];
    assert_eq!(report(&[&empty[..], &["--format", "json"]].concat()), "");
    assert_eq!(
        report(&[&empty[..], &["--format", "csv"]].concat())
            .lines()
            .count(),
        1
    );
    assert!(report(&empty).contains("no orders"));
}
