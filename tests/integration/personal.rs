//! Section 12: personal data has a lifetime. A number of days after an order
//! closed or expired, its candidates' references and notes, their history,
//! its contact person and the audit of its log reads are deleted; the counts
//! stay, and a reopened order starts the clock again. The clock is the
//! test's (no real days are slept).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);
/// Two passes of a worker running every second.
const TWO_PASSES: Duration = Duration::from_millis(2500);

/// What is stored of an order's personal data.
#[derive(Debug, PartialEq)]
struct Held {
    /// `person_ref` and `note` of its entries.
    entries: Vec<(String, Option<String>)>,
    /// The same, as its stored log snapshot has them.
    in_snapshot: Vec<(String, Value)>,
    history: i64,
    audit: i64,
    contact_name: Option<String>,
    contact_in_snapshot: Value,
    /// The log's count of entries.
    total: i32,
}

fn held(conn: &mut PgConnection, id: Uuid) -> Held {
    #[derive(QueryableByName)]
    struct Entry {
        #[diesel(sql_type = Text)]
        person_ref: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        note: Option<String>,
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        log: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        history: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        audit: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        contact_name: Option<String>,
        #[diesel(sql_type = Text)]
        order: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        total: i32,
    }
    let entries: Vec<Entry> = diesel::sql_query(
        "SELECT person_ref, note FROM mediation_entries WHERE job_order_id = $1 ORDER BY mediation_id",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .unwrap();
    let row: Row = diesel::sql_query(
        "SELECT l.snapshot::text AS log, l.total, o.contact_name, o.snapshot::text AS order, \
                (SELECT count(*) FROM mediation_entry_history h WHERE h.job_order_id = o.id) AS history, \
                (SELECT count(*) FROM api_log_reads a WHERE a.job_order_id = o.id) AS audit \
           FROM job_orders o JOIN mediation_logs l ON l.job_order_id = o.id WHERE o.id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .unwrap();
    let log: Value = serde_json::from_str(&row.log).unwrap();
    let order: Value = serde_json::from_str(&row.order).unwrap();
    let mut in_snapshot: Vec<(String, Value)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["person_ref"].as_str().unwrap().to_owned(),
                e["note"].clone(),
            )
        })
        .collect();
    in_snapshot.sort_by(|a, b| a.0.cmp(&b.0));
    Held {
        entries: entries
            .into_iter()
            .map(|e| (e.person_ref, e.note))
            .collect(),
        in_snapshot,
        history: row.history,
        audit: row.audit,
        contact_name: row.contact_name,
        contact_in_snapshot: order["contact"].clone(),
        total: row.total,
    }
}

/// Whether the order's personal data is marked deleted.
fn deleted(conn: &mut PgConnection, id: Uuid) -> bool {
    use jobsync::store::schema::job_orders;
    job_orders::table
        .select(job_orders::personal_data_deleted_at.is_not_null())
        .filter(job_orders::id.eq(id))
        .first(conn)
        .unwrap()
}

/// An audit record of a log read of `id`, as the read API writes one.
fn audit_read(conn: &mut PgConnection, id: Uuid) {
    diesel::sql_query(
        "INSERT INTO api_log_reads (token_id, unit_type, unit_code, job_order_id, read_at) \
         VALUES (gen_random_uuid(), 'jobcenter', '15300', $1, now())",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .unwrap();
}

/// A neighbour's candidate awaiting approval, put forward for `order`.
fn log_with_a_candidate(order: Uuid) -> (Value, Uuid) {
    let c = Uuid::new_v4();
    let entry = candidate(
        c,
        ("jobcenter", "16700"),
        "awaiting_approval",
        by_unit("jobcenter", "16700"),
    );
    (log_event(&mediation_log(order, 1, vec![entry])), c)
}

fn closed(id: Uuid, version: u64, updated_at: &str) -> Value {
    let mut o = snapshot(id, version);
    o["status"] = "closed".into();
    o["status_reason"] = "need_fulfilled".into();
    o["updated_at"] = updated_at.into();
    event(&o)
}

fn reopened(id: Uuid, version: u64, updated_at: &str) -> Value {
    let mut o = snapshot(id, version);
    o["updated_at"] = updated_at.into();
    event(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_order_loses_its_personal_data_at_the_next_pass_and_an_open_one_keeps_it() {
    let mut env = TestEnv::with_args(&[
        "--expiry-interval-s",
        "1",
        "--personal-data-retention-days",
        "0",
    ])
    .await;
    let clock = TestClock::at("2026-11-22T12:00:00Z");
    env.start_worker_with_clock(clock.clone());
    let (closing, open) = (Uuid::new_v4(), Uuid::new_v4());
    let (log_a, a) = log_with_a_candidate(closing);
    let (log_b, b) = log_with_a_candidate(open);
    env.publish(&[event(&snapshot(closing, 1)), event(&snapshot(open, 1))])
        .await;
    env.publish(&[log_a, log_b]).await;
    env.wait_processed(4, T).await;
    {
        let mut conn = env.db();
        audit_read(&mut conn, closing);
        audit_read(&mut conn, open);
    }
    let before = held(&mut env.db(), open);
    assert_eq!(
        before.entries,
        vec![(
            person_ref(b),
            Some("Stærk på lager; taler dansk og polsk.".into())
        )]
    );
    assert_eq!((before.history, before.audit, before.total), (1, 1, 1));
    assert!(before.contact_name.is_some() && before.contact_in_snapshot.is_object());

    env.publish(&[closed(closing, 2, "2026-11-22T10:00:00Z")])
        .await;
    env.wait_until(T, "the closed order's personal data is deleted", |c| {
        deleted(c, closing)
    })
    .await;
    let gone = held(&mut env.db(), closing);
    assert_eq!(gone.entries, vec![("erased".to_owned(), None)], "{gone:?}");
    assert_eq!(gone.in_snapshot, vec![("erased".to_owned(), Value::Null)]);
    assert_eq!((gone.history, gone.audit), (0, 0));
    assert_eq!(gone.contact_name, None);
    assert_eq!(gone.contact_in_snapshot, Value::Null);
    assert_eq!(gone.total, 1, "the counts stay");
    assert!(!person_ref(a).is_empty());

    // The open order keeps everything, pass after pass.
    tokio::time::sleep(TWO_PASSES).await;
    assert_eq!(held(&mut env.db(), open), before);
    assert!(!deleted(&mut env.db(), open));
    env.stop_workers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_order_starts_the_clock_again() {
    let mut env = TestEnv::with_args(&[
        "--expiry-interval-s",
        "1",
        "--personal-data-retention-days",
        "1",
    ])
    .await;
    let clock = TestClock::at("2026-11-22T12:00:00Z");
    env.start_worker_with_clock(clock.clone());
    let order = Uuid::new_v4();
    let (log, candidate_id) = log_with_a_candidate(order);
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.publish(&[log]).await;
    env.wait_processed(2, T).await;
    // Closed on the 22nd, reopened on the 23rd, closed again on the 24th.
    env.publish(&[
        closed(order, 2, "2026-11-22T10:00:00Z"),
        reopened(order, 3, "2026-11-23T08:00:00Z"),
        closed(order, 4, "2026-11-24T08:00:00Z"),
    ])
    .await;
    env.wait_processed(5, T).await;
    let kept = held(&mut env.db(), order);

    // A day after the first close, not after the last: kept.
    clock.set("2026-11-23T12:00:00Z");
    tokio::time::sleep(TWO_PASSES).await;
    assert!(!deleted(&mut env.db(), order));
    assert_eq!(held(&mut env.db(), order), kept);

    // A day after the last close: deleted.
    clock.set("2026-11-25T09:00:00Z");
    env.wait_until(T, "the order's personal data is deleted", |c| {
        deleted(c, order)
    })
    .await;
    let gone = held(&mut env.db(), order);
    assert_eq!(gone.entries, vec![("erased".to_owned(), None)]);
    assert_eq!(gone.contact_name, None);

    // A new version of the log (the candidate withdrawn) brings the
    // reference back, and it is kept until the retention has passed again
    // (the clock set back within it).
    clock.set("2026-11-24T12:00:00Z");
    let withdrawn = candidate(
        candidate_id,
        ("jobcenter", "16700"),
        "withdrawn",
        by_unit("jobcenter", "16700"),
    );
    env.publish(&[log_event(&mediation_log(order, 2, vec![withdrawn]))])
        .await;
    env.wait_processed(6, T).await;
    tokio::time::sleep(TWO_PASSES).await;
    assert!(!deleted(&mut env.db(), order));
    assert_eq!(
        held(&mut env.db(), order).entries[0].0,
        person_ref(candidate_id)
    );
    clock.set("2026-11-25T09:00:00Z");
    env.wait_until(T, "the log's personal data is deleted again", |c| {
        deleted(c, order)
    })
    .await;

    // Reopened once more: what the new version brings is kept anew.
    env.publish(&[reopened(order, 5, "2026-11-25T10:00:00Z")])
        .await;
    env.wait_until(T, "the reopened order holds its contact again", |c| {
        !deleted(c, order) && held(c, order).contact_name.is_some()
    })
    .await;
    tokio::time::sleep(TWO_PASSES).await;
    assert!(
        !deleted(&mut env.db(), order),
        "an open order keeps its data"
    );
    env.stop_workers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_over_100000_closed_orders_with_100_due_reads_only_the_100() {
    let mut env = TestEnv::new().await;
    env.start_worker();
    // A real order to copy the snapshot of (and to create the schema).
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    env.wait_processed(1, T).await;
    env.stop_workers().await;
    let mut conn = env.db();
    // 100,000 closed orders: 100 closed two years ago, the rest last week.
    store_copies(
        &mut conn,
        100_000,
        &[
            ("status", "'closed'"),
            ("status_reason", "'need_fulfilled'"),
            (
                "closed_at",
                "CASE WHEN g <= 100 THEN timestamptz '2024-06-01' + g * interval '1 hour' \
                      ELSE timestamptz '2026-11-20' + g * interval '1 second' END",
            ),
        ],
    );
    let now = utc("2026-11-30T12:00:00Z");
    let plan = jobsync::store::personal::explain_due(&mut conn, now, 365, 500).unwrap();
    assert_reads_only(&plan, "job_orders_personal_data_due", 100);
    let deleted = jobsync::store::personal::delete_due(&mut conn, now, 365, 500).unwrap();
    assert_eq!((deleted.due, deleted.orders), (100, 100));
    let again = jobsync::store::personal::delete_due(&mut conn, now, 365, 500).unwrap();
    assert_eq!(again.orders, 0, "done once");
}

/// The `x-message-ttl` argument of `queue`, as the broker has it.
fn broker_message_ttl(queue: &str) -> Option<i64> {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--formatter",
            "json",
            "name",
            "arguments",
        ])
        .output()
        .expect("rabbitmqctl (run scripts/services)");
    let queues: Vec<Value> = serde_json::from_slice(&out.stdout).expect("rabbitmqctl's JSON");
    let q = queues.iter().find(|q| q["name"] == queue)?;
    // Each argument is `[name, type, value]`.
    q["arguments"]
        .as_array()?
        .iter()
        .find(|a| a[0] == "x-message-ttl")?[2]
        .as_i64()
}

/// Rejected messages may carry personal data: the dead-letter queue keeps
/// them as many days as orders keep theirs, by the broker's own message TTL
/// (whether the worker or the broker's delivery limit dead-lettered them),
/// and a worker started with another retention on that queue says so and
/// stops instead of running with the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_leave_the_dead_letter_queue_after_the_retention() {
    // The default, 365 days: longer than an Erlang timer (49.7 days) can
    // run, which the broker copes with.
    let mut kept = TestEnv::new().await;
    let gone = TestEnv::with_args(&["--personal-data-retention-days", "0"]).await;
    let queue = |env: &TestEnv| env.settings.topology.dead_letters_queue.clone();
    assert_eq!(broker_message_ttl(&queue(&kept)), Some(365 * 86_400_000));
    assert_eq!(broker_message_ttl(&queue(&gone)), Some(0));

    // The same dead letter, as the broker's delivery limit sends one.
    for env in [&kept, &gone] {
        let dead = env.settings.topology.dead_exchange.clone();
        env.publish_to(&dead, "joborder.updated", "dead-1", b"{}".to_vec())
            .await;
    }
    let deadline = tokio::time::Instant::now() + T;
    while gone.ready_in(&queue(&gone)).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead letter expires at 0 days"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(kept.ready_in(&queue(&kept)).await, 1, "kept for 365 days");

    // Another retention on the same queue: the worker stops and says why.
    let mut settings = kept.settings.clone();
    settings.personal_data_retention_days = 3;
    let stop = tokio_util::sync::CancellationToken::new();
    let result = tokio::time::timeout(T, jobsync::worker::run(settings, stop))
        .await
        .expect("the worker stops at once");
    let error = format!("{:#}", result.expect_err("a changed retention is fatal"));
    assert!(
        error.contains("JOBSYNC_PERSONAL_DATA_RETENTION_DAYS") && error.contains("x-message-ttl"),
        "{error}"
    );
    // The worker of the declared retention runs on it, and the dead letter
    // is still there.
    kept.start_worker();
    kept.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    kept.wait_processed(1, T).await;
    assert!(kept.workers_running());
    assert_eq!(kept.take_dead_letters(1, T).await[0].body, b"{}");
}

/// An entry for candidate `id`, who is `person`, put forward by jobcentre
/// `by` and awaiting approval.
fn entry_of(person: &str, id: Uuid, by: &str) -> Value {
    let mut e = candidate(
        id,
        ("jobcenter", by),
        "awaiting_approval",
        by_unit("jobcenter", by),
    );
    e["person_ref"] = person.into();
    e
}

/// The person's references and notes stored anywhere: entries, log
/// snapshots, history of their entries.
fn traces_of(conn: &mut PgConnection, person: &str) -> (i64, i64, i64) {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        entries: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        snapshots: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        history: i64,
    }
    let r: Row = diesel::sql_query(
        "SELECT (SELECT count(*) FROM mediation_entries WHERE person_ref = $1) AS entries, \
                (SELECT count(*) FROM mediation_logs WHERE strpos(snapshot::text, $1) > 0) AS snapshots, \
                (SELECT count(*) FROM mediation_entry_history h JOIN mediation_entries e \
                   USING (job_order_id, mediation_id) WHERE e.person_ref = $1) AS history",
    )
    .bind::<Text, _>(person)
    .get_result(conn)
    .unwrap();
    (r.entries, r.snapshots, r.history)
}

/// `jobsync erase person` against this test's database, with the reference
/// on standard input when `arg` is `-`: its standard output.
fn erase(env: &TestEnv, arg: &str, stdin: &str) -> String {
    let mut command = crate::cli::jobsync(env, &["erase", "person", arg]);
    let out = run_with_stdin(command.stderr(std::process::Stdio::piped()), stdin);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stderr, "", "nothing on standard error");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_person_erases_them_on_every_order_tells_the_units_that_saw_them_and_changes_nothing_twice(
) {
    let mut env = TestEnv::new().await;
    env.start_worker();
    let (person, other) = ("P-erasemeplease", "P-keepmeplease");
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (pa, qa, pb, qc) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    // The person on A and B, put forward by 16700; someone else on A and
    // C, by 18300.
    let log_b = mediation_log(b, 1, vec![entry_of(person, pb, "16700")]);
    env.publish(&[
        event(&snapshot(a, 1)),
        event(&snapshot(b, 1)),
        event(&snapshot(c, 1)),
    ])
    .await;
    env.publish(&[
        log_event(&mediation_log(
            a,
            1,
            vec![entry_of(person, pa, "16700"), entry_of(other, qa, "18300")],
        )),
        log_event(&log_b),
        log_event(&mediation_log(c, 1, vec![entry_of(other, qc, "18300")])),
    ])
    .await;
    env.wait_processed(6, T).await;
    assert_eq!(traces_of(&mut env.db(), person), (2, 2, 2));
    let units = ["jobcenter:15300", "jobcenter:16700", "jobcenter:18300"];
    let mut subs = Vec::new();
    for unit in units {
        subs.push(env.subscribe(unit).await);
    }

    let printed = erase(&env, person, "");
    assert_eq!(
        printed.lines().next().unwrap(),
        "erased on 2 orders: 2 entries (reference now `erased`, note deleted), 2 history rows deleted; \
         4 notifications (mediationlog.updated) to 2 units in the outbox, which the worker publishes"
    );
    assert!(!printed.contains(person));
    assert_eq!(traces_of(&mut env.db(), person), (0, 0, 0));
    // Their entries' history is gone, the other person's stays.
    let history = |ids: &[Uuid]| -> i64 {
        use jobsync::store::schema::mediation_entry_history::dsl as h;
        h::mediation_entry_history
            .filter(h::mediation_id.eq_any(ids))
            .count()
            .get_result(&mut env.db())
            .unwrap()
    };
    assert_eq!((history(&[pa, pb]), history(&[qa, qc])), (0, 2));
    // Everything else stays: the other person, the counts.
    assert_eq!(traces_of(&mut env.db(), other), (2, 2, 2));
    let held_a = held(&mut env.db(), a);
    assert_eq!(held_a.total, 2);
    assert!(
        held_a.entries.contains(&("erased".to_owned(), None)),
        "{held_a:?}"
    );

    // The responsible unit and the one that put the person forward are
    // told, of A and B; 18300 saw only its own candidate, and nobody sees
    // a change on C.
    let mut told = Vec::new();
    for (unit, sub) in units.iter().zip(&subs) {
        for r in sub.take_all(Duration::from_secs(2)).await {
            assert_eq!(r.event(), "mediationlog.updated", "{unit}: {:#}", r.body);
            assert!(!String::from_utf8_lossy(&r.raw).contains(person));
            let entries = r.data()["entries"].as_array().unwrap();
            assert!(
                entries.iter().any(|e| e["person_ref"] == "erased"),
                "{:#}",
                r.body
            );
            told.push((unit.to_string(), r.order()));
        }
    }
    told.sort();
    let mut expected: Vec<(String, Uuid)> = ["jobcenter:15300", "jobcenter:16700"]
        .iter()
        .flat_map(|u| [(u.to_string(), a), (u.to_string(), b)])
        .collect();
    expected.sort();
    assert_eq!(told, expected);

    // Again (the reference on standard input this time): nothing changes,
    // nobody is told.
    assert!(erase(&env, "-", &format!("{person}\n")).starts_with("nothing to erase"));
    for sub in &subs {
        sub.assert_quiet(Duration::from_secs(1)).await;
    }

    // A redelivered old version is a duplicate and does not bring the
    // person back; a later version from the hub, the source of truth, does.
    env.publish(&[log_event(&log_b)]).await;
    env.publish(&[log_event(&mediation_log(
        a,
        2,
        vec![entry_of(person, pa, "16700"), entry_of(other, qa, "18300")],
    ))])
    .await;
    env.wait_processed(8, T).await;
    let (entries, snapshots, _) = traces_of(&mut env.db(), person);
    assert_eq!((entries, snapshots), (1, 1), "stored again on A only");
}

/// A log changed by an erasure keeps its version, so its `ETag` carries
/// the view's content too: a system that cached the log before gets the
/// erased one, not `304`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_erasure_a_cached_log_is_no_longer_current() {
    let (env, api) = api_env(&[]).await;
    let person = "P-cachedbeforeerasure";
    let order = Uuid::new_v4();
    env.publish(&[event(&snapshot(order, 1))]).await;
    env.publish(&[log_event(&mediation_log(
        order,
        1,
        vec![entry_of(person, Uuid::new_v4(), "16700")],
    ))])
    .await;
    env.wait_processed(2, T).await;
    let token = token_for(&env, "jobcenter:15300").await;
    let path = format!("/v1/joborders/{order}/mediationlog");
    let before = api.get(&path, &token).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let tag = before.header("etag").unwrap().to_owned();
    assert!(tag.starts_with("\"1-"), "{tag}");
    let cached = api
        .get_with(&path, Some(&token), &[("if-none-match", &tag)])
        .await;
    assert_eq!(cached.status, 304);

    erase(&env, person, "");
    let after = api
        .get_with(&path, Some(&token), &[("if-none-match", &tag)])
        .await;
    assert_eq!(after.status, 200, "not {tag} any more");
    assert_eq!(after.body["entries"][0]["person_ref"], "erased");
    assert_ne!(after.header("etag"), Some(tag.as_str()));
}

/// A mistyped database name must not read as "nothing to erase": the
/// tools that read the database say it does not exist, and create nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_and_report_refuse_a_database_that_does_not_exist() {
    let env = TestEnv::new().await;
    let typo = format!("{}_typo", env.db_url());
    for args in [
        &["erase", "person", "P-nobodyatall"][..],
        &[
            "report",
            "promises",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-31",
        ],
    ] {
        let out = crate::cli::jobsync(&env, args)
            .env("JOBSYNC_DATABASE_URL", &typo)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("does not exist"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let created: i64 = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_database WHERE datname = '{}_typo'",
        env.db_url().rsplit('/').next().unwrap()
    ))
    .get_result::<Count>(&mut PgConnection::establish(&format!("{PG_SERVER}/postgres")).unwrap())
    .unwrap()
    .n;
    assert_eq!(created, 0, "no database was created");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
