//! Sections 5 and 9: every unit gets exactly its own view, through the
//! outbox, once per change, with deterministic ids; a unit that loses the
//! order is told; no CPR number reaches anyone. Every message received is
//! checked against its schema under `schemas/`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(700);

/// 26 jobcentres besides Brøndby (153): the main jobcentre of the first 27
/// municipalities in the reference list.
fn twenty_six_jobcentres() -> Vec<String> {
    [
        "101", "147", "151", "155", "157", "159", "161", "163", "165", "167", "169", "173", "175",
        "183", "185", "187", "190", "201", "210", "217", "219", "223", "230", "240", "250", "253",
    ]
    .iter()
    .map(|m| format!("{m}00"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_shared_with_26_jobcentres_reaches_each_once_with_its_view_and_no_one_else() {
    let mut env = TestEnv::new().await;
    let codes = twenty_six_jobcentres();
    let responsible = env.subscribe("jobcenter:15300").await;
    let mut shared = Vec::new();
    for c in &codes {
        shared.push(env.subscribe(&format!("jobcenter:{c}")).await);
    }
    let outsider = env.subscribe("jobcenter:86000").await;
    let events = env.subscribe_events().await;
    env.start_worker();

    let id = Uuid::new_v4();
    let order = JobOrder::new(id).shared("selected", &codes).build();
    env.publish(&[event(&order)]).await;

    let mine = responsible.take(1, T).await;
    assert_eq!(mine[0].event(), "joborder.updated");
    assert_eq!(mine[0].routing_key, "unit.jobcenter.15300.joborder.updated");
    assert_eq!(mine[0].body["unit"], "jobcenter:15300");
    assert_eq!(mine[0].body["joborderversion"], 1);
    assert_eq!(mine[0].body["subject"], id.to_string());
    let full = mine[0].data();
    assert_eq!(full["contact"]["name"], "Søren Østergård");
    assert_eq!(
        full["descriptions"]["working_hours"], "37 timer, nat",
        "the responsible unit sees everything"
    );
    assert_eq!(full["sharing"]["units"].as_array().unwrap().len(), 26);
    assert_eq!(full["undecided_candidates"], 0);

    let mut ids = HashSet::new();
    for s in &shared {
        let got = s.take(1, T).await;
        let view = got[0].data();
        assert_eq!(got[0].event(), "joborder.updated", "{}", s.label);
        assert!(view.get("contact").is_none(), "{}: {view}", s.label);
        assert!(view["descriptions"].get("working_hours").is_none());
        assert!(view["sharing"].get("units").is_none(), "no other units");
        assert_eq!(view["title"], "Lagermedarbejder v1");
        // One message to all 26 (BCC), under a key that names none of them.
        assert_eq!(got[0].routing_key, "unit.shared.joborder.updated");
        assert_eq!(got[0].body["unit"], "shared");
        ids.insert(got[0].id().to_owned());
    }
    assert_eq!(ids.len(), 1, "one message, sent once with BCC");
    assert_ne!(ids.iter().next().unwrap(), mine[0].id());
    outsider.assert_quiet(QUIET).await;

    let created = events.take(1, T).await;
    assert_eq!(created[0].routing_key, "joborder.created");
    assert_eq!(created[0].data()["responsible_unit"]["code"], "15300");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_restricted_text_notifies_only_the_responsible_unit() {
    let mut env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let neighbour = env.subscribe("jobcenter:16700").await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    responsible.take(1, T).await;
    neighbour.take(1, T).await;

    // The same order but for restricted text (the snapshot builder's title
    // names the version, so start from version 1).
    let mut v2 = snapshot(id, 1);
    v2["version"] = 2.into();
    v2["descriptions"]["working_hours"] = "30 timer, dag".into();
    v2["contact"]["phone"] = "+4543299999".into();
    env.publish(&[event(&v2)]).await;
    let got = responsible.take(1, T).await;
    assert_eq!(
        got[0].data()["descriptions"]["working_hours"],
        "30 timer, dag"
    );
    assert_eq!(got[0].body["joborderversion"], 2);
    neighbour.assert_quiet(QUIET).await;

    // A change the neighbour can see reaches it too.
    let mut v3 = v2.clone();
    v3["version"] = 3.into();
    v3["descriptions"]["tasks"] = "Pluk, pak og kør truck.".into();
    env.publish(&[event(&v3)]).await;
    assert_eq!(
        neighbour.take(1, T).await[0].data()["descriptions"]["tasks"],
        "Pluk, pak og kør truck."
    );
    responsible.take(1, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsharing_and_handover_revoke_and_the_new_unit_is_asked_for_a_coordinator() {
    let mut env = TestEnv::new().await;
    let brondby = env.subscribe("jobcenter:15300").await;
    let a = env.subscribe("jobcenter:16700").await;
    let b = env.subscribe("jobcenter:18300").await;
    let copenhagen = env.subscribe("jobcenter:10100").await;
    let events = env.subscribe_events().await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    brondby.take(1, T).await;
    a.take(1, T).await;
    b.take(1, T).await;
    events.take(1, T).await;

    // Version 2 shares with 18300 only.
    let mut v2 = snapshot(id, 1);
    v2["version"] = 2.into();
    v2["sharing"] =
        json!({"scope": "neighbours", "units": [{"type": "jobcenter", "code": "18300"}]});
    env.publish(&[event(&v2)]).await;
    let revoked = a.take(1, T).await;
    assert_eq!(revoked[0].event(), "joborder.revoked");
    assert_eq!(
        revoked[0].data(),
        &json!({"job_order_id": id.to_string(), "version": 2, "reason": "unshared"})
    );
    b.assert_quiet(QUIET).await;
    brondby.take(1, T).await;

    // Version 3 hands the order to Copenhagen's jobcentre.
    let mut v3 = v2.clone();
    v3["version"] = 3.into();
    v3["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
    v3["changed_by"] = json!({"kind": "system"});
    env.publish(&[event(&v3)]).await;
    let gone = brondby.take(1, T).await;
    assert_eq!(gone[0].data()["reason"], "handed_over");
    let new = copenhagen.take(1, T).await;
    assert_eq!(new[0].event(), "joborder.updated");
    assert_eq!(new[0].data()["coordinator_reassignment_needed"], true);
    assert!(new[0].data().get("contact").is_some(), "now the full view");
    let shared = b.take(1, T).await;
    assert_eq!(shared[0].data()["responsible_unit"]["code"], "10100");
    let handed = events.take(1, T).await;
    assert_eq!(handed[0].routing_key, "joborder.handed-over");
    assert_eq!(handed[0].data()["from"]["code"], "15300");
    assert_eq!(handed[0].data()["to"]["code"], "10100");

    // Made internal: the last shared unit loses it.
    let mut v4 = v3.clone();
    v4["version"] = 4.into();
    v4["sharing"] = json!({"scope": "internal"});
    env.publish(&[event(&v4)]).await;
    assert_eq!(b.take(1, T).await[0].data()["reason"], "unshared");
    copenhagen.take(1, T).await;
    a.assert_quiet(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_akasse_sees_only_its_own_candidates_and_never_the_note() {
    let mut env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let x = env.subscribe("akasse:1234").await;
    let y = env.subscribe("akasse:5678").await;
    env.start_worker();
    let id = Uuid::new_v4();
    let mut order = snapshot(id, 1);
    order["sharing"] = json!({"scope": "selected", "units": [
        {"type": "akasse", "code": "1234"}, {"type": "akasse", "code": "5678"}
    ]});
    env.publish(&[event(&order)]).await;
    responsible.take(1, T).await;
    x.take(1, T).await;
    y.take(1, T).await;

    let (ex, ey, er) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let log = mediation_log(
        id,
        1,
        vec![
            candidate(
                ex,
                ("akasse", "1234"),
                "awaiting_approval",
                by_unit("akasse", "1234"),
            ),
            candidate(
                ey,
                ("akasse", "5678"),
                "awaiting_approval",
                by_unit("akasse", "5678"),
            ),
            candidate(
                er,
                ("jobcenter", "15300"),
                "available_to_company",
                by_unit("jobcenter", "15300"),
            ),
        ],
    );
    env.publish(&[log_event(&log)]).await;

    let mine = x.take(1, T).await;
    assert_eq!(mine[0].event(), "mediationlog.updated");
    let view = mine[0].data();
    let entries = view["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["mediation_id"], ex.to_string());
    assert!(entries[0].get("note").is_none(), "never the note: {view}");
    assert_eq!(
        (view["total"].clone(), view["awaiting_approval"].clone()),
        (json!(1), json!(1))
    );
    let theirs = y.take(1, T).await;
    assert_eq!(
        theirs[0].data()["entries"][0]["mediation_id"],
        ey.to_string()
    );

    // The responsible unit: the whole log with notes, and its order view,
    // whose undecided count went from 0 to 1.
    let got = responsible.take(2, T).await;
    let log_view = got
        .iter()
        .find(|r| r.event() == "mediationlog.updated")
        .unwrap();
    assert_eq!(log_view.data()["entries"].as_array().unwrap().len(), 3);
    assert_eq!(log_view.data()["undecided"], 1);
    assert!(log_view.data()["entries"][0]["note"].is_string());
    let order_view = got
        .iter()
        .find(|r| r.event() == "joborder.updated")
        .unwrap();
    assert_eq!(order_view.data()["undecided_candidates"], 1);

    // A change to a-kasse 5678's candidate only: 1234 hears nothing.
    let log2 = mediation_log(
        id,
        2,
        vec![
            candidate(
                ex,
                ("akasse", "1234"),
                "awaiting_approval",
                by_unit("akasse", "1234"),
            ),
            candidate(
                ey,
                ("akasse", "5678"),
                "withdrawn",
                by_unit("akasse", "5678"),
            ),
            candidate(
                er,
                ("jobcenter", "15300"),
                "available_to_company",
                by_unit("jobcenter", "15300"),
            ),
        ],
    );
    env.publish(&[log_event(&log2)]).await;
    assert_eq!(
        y.take(1, T).await[0].data()["entries"][0]["status"],
        "withdrawn"
    );
    assert_eq!(
        responsible.take(1, T).await[0].event(),
        "mediationlog.updated"
    );
    x.assert_quiet(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpr_number_in_any_free_text_never_reaches_any_unit() {
    let mut env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let neighbour = env.subscribe("jobcenter:16700").await;
    let akasse = env.subscribe("akasse:1234").await;
    env.start_worker();
    let id = Uuid::new_v4();
    let mut order = snapshot(id, 1);
    order["title"] = "Lager 010190-1234".into();
    order["occupation"]["alias"] = "Lager 0101901234".into();
    order["employer"]["name"] = "ApS 311299-0001".into();
    order["contact"]["name"] = "Søren 241085-4321".into();
    order["coordinator"]["name"] = "Åse 241085-4321".into();
    order["descriptions"]["tasks"] = "Ring til 010190-1234 om opgaven".into();
    order["descriptions"]["qualifications_and_pay"] = "CPR 0101901234".into();
    order["descriptions"]["working_hours"] = "nat (010190-1234)".into();
    // Identifiers are neither redacted nor rejected (section 5.3).
    order["request_id"] = "ANM-020290-5678".into();
    order["coordinator"]["id"] = "0202905678".into();
    order["occupation"]["code"] = "020290-5678".into();
    order["sharing"] = json!({"scope": "selected", "units": [
        {"type": "jobcenter", "code": "16700"}, {"type": "akasse", "code": "1234"}
    ]});
    env.publish(&[event(&order)]).await;
    let mut entry = candidate(
        Uuid::new_v4(),
        ("akasse", "1234"),
        "awaiting_approval",
        by_unit("akasse", "1234"),
    );
    entry["note"] = "Borgerens CPR er 010190-1234".into();
    let mut all = responsible.take(1, T).await;
    all.extend(neighbour.take(1, T).await);
    all.extend(akasse.take(1, T).await);
    env.publish(&[log_event(&mediation_log(id, 1, vec![entry]))])
        .await;
    // The log view; the order view is unchanged (nothing undecided yet).
    all.extend(responsible.take(1, T).await);
    all.extend(akasse.take(1, T).await);

    for r in &all {
        let text = String::from_utf8_lossy(&r.raw);
        for cpr in ["010190-1234", "0101901234", "311299-0001", "241085-4321"] {
            assert!(!text.contains(cpr), "{cpr} reached a unit: {text}");
        }
    }
    let responsible_view = all[0].data();
    assert_eq!(responsible_view["title"], "Lager [CPR]");
    assert_eq!(responsible_view["contact"]["name"], "Søren [CPR]");
    assert_eq!(
        responsible_view["descriptions"]["working_hours"],
        "nat ([CPR])"
    );
    assert_eq!(
        responsible_view["contact"]["email"],
        "soeren@brondbylager.dk"
    );
    assert_eq!(
        responsible_view["employer"]["cvr"], "10150817",
        "not free text"
    );
    for view in [all[0].data(), all[1].data()] {
        assert_eq!(view["request_id"], "ANM-020290-5678", "an identifier");
        assert_eq!(view["coordinator"]["id"], "0202905678", "an identifier");
        assert_eq!(view["occupation"]["code"], "020290-5678", "a code");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_inbound_message_yields_no_new_events_and_ids_are_deterministic() {
    let mut env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    env.start_worker();
    let id = Uuid::new_v4();
    let message_id = Uuid::new_v4().to_string();
    let e = event_with_id(&message_id, &snapshot(id, 1));
    env.publish(std::slice::from_ref(&e)).await;
    let first = responsible.take(1, T).await;
    env.publish(&[e]).await;
    env.wait_processed(1, T).await;
    responsible.assert_quiet(QUIET).await;
    // The id is the one any instance would derive from the same message.
    assert_eq!(
        first[0].id(),
        jobsync::store::outbox::event_id(&message_id, "jobcenter:15300", "joborder.updated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_commit_and_before_publishing_publishes_everything_after_restart() {
    use diesel::prelude::*;
    use std::process::Stdio;
    let env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let neighbour = env.subscribe("jobcenter:16700").await;
    // A worker that commits but never publishes (its relay is off): killed
    // with SIGKILL, it leaves committed notifications unpublished.
    let mut first = crate::cli::jobsync(&env, &["run", "--relay", "false"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events: Vec<Value> = (0..30)
        .map(|_| event(&snapshot(Uuid::new_v4(), 1)))
        .collect();
    env.publish(&events).await;
    env.wait_processed(30, T).await;
    let pending: i64 = jobsync::store::schema::outbox::table
        .count()
        .get_result(&mut env.db())
        .unwrap();
    assert_eq!(
        pending, 90,
        "per order: responsible, neighbours (BCC), created"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    responsible.assert_quiet(QUIET).await;

    let mut second = crate::cli::jobsync(&env, &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mine = responsible.take(30, T).await;
    let theirs = neighbour.take(30, T).await;
    let ids: HashSet<&str> = mine.iter().chain(&theirs).map(Received::id).collect();
    assert_eq!(ids.len(), 60);
    // The same inbound messages again: duplicates, no new event.
    env.publish(&events[..5]).await;
    responsible.assert_quiet(Duration::from_secs(1)).await;
    env.wait_until(T, "the outbox is empty", |conn| {
        jobsync::store::schema::outbox::table
            .count()
            .get_result::<i64>(conn)
            .unwrap()
            == 0
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_trace_continues_into_every_notification_and_event() {
    let mut env = TestEnv::new().await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let neighbour = env.subscribe("jobcenter:16700").await;
    let events = env.subscribe_events().await;
    env.start_worker();
    let hub = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    env.publish_traced(&event(&snapshot(Uuid::new_v4(), 1)), hub)
        .await;
    let mut got = responsible.take(1, T).await;
    got.extend(neighbour.take(1, T).await);
    got.extend(events.take(1, T).await);
    let mut spans = HashSet::new();
    for r in &got {
        let tp = r.headers.get("traceparent").expect("a traceparent");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(
            parts[1], "4bf92f3577b34da6a3ce929d0e0e4736",
            "the hub's trace"
        );
        assert_ne!(parts[2], "00f067aa0ba902b7", "the worker's own span");
        spans.insert(parts[2].to_owned());
    }
    assert_eq!(spans.len(), 1, "one span produced them all");

    // Without a traceparent, a new trace: still one on every message.
    env.publish(&[event(&snapshot(Uuid::new_v4(), 1))]).await;
    let r = responsible.take(1, T).await;
    let tp = r[0].headers.get("traceparent").expect("a traceparent");
    assert!(!tp.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    neighbour.take(1, T).await;
}

/// Two instances apply the versions of one order in turn; only one runs the
/// relay. It is handed the rows of its own commits, but the other
/// instance's rows of the same order are only in the outbox, with lower
/// ids: they must go out first (section 5.1, "in version order").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_notifications_go_out_in_version_order_when_two_instances_apply_it() {
    use std::process::Stdio;
    let mut env = TestEnv::with_args(&["--prefetch", "1", "--batch-size", "1"]).await;
    let responsible = env.subscribe("jobcenter:15300").await;
    let mut other = crate::cli::jobsync(&env, &["run", "--relay", "false"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.start_worker();
    let id = Uuid::new_v4();
    const VERSIONS: u64 = 30;
    for version in 1..=VERSIONS {
        // One at a time, so that the two instances take turns.
        env.publish(&[event(&snapshot(id, version))]).await;
        env.wait_processed(version as i64, T).await;
    }
    let versions: Vec<u64> = responsible
        .take(VERSIONS as usize, T)
        .await
        .iter()
        .map(|r| r.data()["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=VERSIONS).collect::<Vec<_>>());
    other.kill().unwrap();
    other.wait().unwrap();
    env.stop_workers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_that_lose_the_order_at_once_are_each_told_by_their_own_revocation() {
    let mut env = TestEnv::new().await;
    let brondby = env.subscribe("jobcenter:15300").await;
    let a = env.subscribe("jobcenter:16700").await;
    let b = env.subscribe("jobcenter:18300").await;
    // A system that serves both neighbours from one queue.
    let both = env
        .subscribe_many(
            "jobcenter:16700+18300",
            &["jobcenter:16700", "jobcenter:18300"],
        )
        .await;
    env.start_worker();
    let id = Uuid::new_v4();
    env.publish(&[event(&snapshot(id, 1))]).await;
    brondby.take(1, T).await;
    a.take(1, T).await;
    b.take(1, T).await;
    // The shared view reaches the combined queue once (BCC to both keys).
    assert_eq!(both.take(1, T).await[0].body["unit"], "shared");

    let mut v2 = snapshot(id, 2);
    v2["sharing"] = json!({"scope": "internal"});
    env.publish(&[event(&v2)]).await;
    let to_a = &a.take(1, T).await[0];
    let to_b = &b.take(1, T).await[0];
    for (got, code) in [(to_a, "16700"), (to_b, "18300")] {
        assert_eq!(got.event(), "joborder.revoked");
        assert_eq!(
            got.routing_key,
            format!("unit.jobcenter.{code}.joborder.revoked")
        );
        assert_eq!(got.body["unit"], format!("jobcenter:{code}"));
        assert_eq!(got.data()["reason"], "unshared");
    }
    assert_ne!(to_a.id(), to_b.id(), "one event id per unit");
    let mut units: Vec<String> = both
        .take(2, T)
        .await
        .iter()
        .map(|r| r.body["unit"].as_str().unwrap().to_owned())
        .collect();
    units.sort();
    assert_eq!(units, ["jobcenter:16700", "jobcenter:18300"]);
    brondby.take(1, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_unit_is_asked_for_a_coordinator_other_than_the_one_the_handover_version_names() {
    let mut env = TestEnv::new().await;
    let copenhagen = env.subscribe("jobcenter:10100").await;
    env.start_worker();
    let id = Uuid::new_v4();
    // Version 1 names c-17; version 2 (never delivered) appointed c-18; the
    // handover version 3, made by Brøndby, still names c-18.
    env.publish(&[event(&snapshot(id, 1))]).await;
    env.wait_processed(1, T).await;
    let handed = |version: u64, coordinator: &str| {
        let mut v = snapshot(id, version);
        v["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
        v["coordinator"] = json!({"id": coordinator, "name": "Koordinator"});
        v
    };
    env.publish(&[event(&handed(3, "c-18"))]).await;
    let got = copenhagen.take(1, T).await;
    assert_eq!(got[0].data()["coordinator_reassignment_needed"], true);
    // Copenhagen changes the title but keeps c-18: still to be appointed.
    env.publish(&[event(&handed(4, "c-18"))]).await;
    let got = copenhagen.take(1, T).await;
    assert_eq!(got[0].data()["title"], "Lagermedarbejder v4");
    assert_eq!(
        got[0].data()["coordinator_reassignment_needed"],
        true,
        "c-18 is the coordinator the handover version named"
    );
    // Naming c-17 (the stored coordinator before the handover) is another
    // than the handover version's own: the flag clears.
    env.publish(&[event(&handed(5, "c-17"))]).await;
    let got = copenhagen.take(1, T).await;
    assert_eq!(got[0].data()["coordinator_reassignment_needed"], false);
}

/// 5.4: each change of status has its lifecycle event, once: closed and
/// reopened, inactivated (to `temporarily_inactive`, also from `closed`)
/// and reactivated (from `temporarily_inactive` to `open`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_of_status_has_its_lifecycle_event() {
    let mut env = TestEnv::new().await;
    let events = env.subscribe_events().await;
    env.start_worker();
    let id = Uuid::new_v4();
    let statuses = [
        ("open", Value::Null, vec!["joborder.created"]),
        (
            "temporarily_inactive",
            json!("enough_referrals"),
            vec!["joborder.inactivated"],
        ),
        ("temporarily_inactive", json!("other"), vec![]),
        (
            "open",
            json!("under_processing"),
            vec!["joborder.reactivated"],
        ),
        ("closed", json!("need_fulfilled"), vec!["joborder.closed"]),
        (
            "temporarily_inactive",
            Value::Null,
            vec!["joborder.reopened", "joborder.inactivated"],
        ),
        ("closed", json!("other"), vec!["joborder.closed"]),
        ("open", Value::Null, vec!["joborder.reopened"]),
    ];
    for (n, (status, reason, expected)) in statuses.iter().enumerate() {
        let mut order = JobOrder::new(id).version(n as u64 + 1).build();
        order["status"] = json!(status);
        order["status_reason"] = reason.clone();
        env.publish(&[event(&order)]).await;
        env.wait_processed(n as i64 + 1, T).await;
        let got = if expected.is_empty() {
            events.assert_quiet(QUIET).await;
            Vec::new()
        } else {
            events.take(expected.len(), T).await
        };
        let keys: Vec<&str> = got.iter().map(|r| r.routing_key.as_str()).collect();
        assert_eq!(&keys, expected, "version {}: {status}", n + 1);
        for r in &got {
            assert_eq!(r.data()["status"], json!(status));
            assert_eq!(r.data()["version"], json!(n + 1));
        }
    }
}
