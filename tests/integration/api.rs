//! Contract section 10 and guarantee 9.5: the read API over HTTP, on a real
//! worker, database and broker.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::RunQueryDsl;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const T: Duration = Duration::from_secs(30);

/// Texts only the responsible unit may see.
const RESTRICTED: [&str; 5] = [
    "Søren Østergård",
    "soeren@brondbylager.dk",
    "Truckcertifikat. Løn efter overenskomst.",
    "37 timer, nat",
    "1003456789",
];

/// An order of 15300 shared with jobcentre 16700 and a-kasse 1234, with a
/// log holding an entry of 15300's and one of the a-kasse's.
async fn world(env: &TestEnv, id: Uuid) {
    let mut order = JobOrder::new(id).title("Svejser til skibsværft").build();
    order["sharing"] = json!({"scope": "selected", "units": [
        {"type": "jobcenter", "code": "16700"}, {"type": "akasse", "code": "1234"}
    ]});
    env.publish(&[event(&order)]).await;
    let log = mediation_log(
        id,
        1,
        vec![
            candidate(
                Uuid::new_v4(),
                ("akasse", "1234"),
                "awaiting_approval",
                by_unit("akasse", "1234"),
            ),
            candidate(
                Uuid::new_v4(),
                ("jobcenter", "15300"),
                "available_to_company",
                by_unit("jobcenter", "15300"),
            ),
        ],
    );
    env.publish(&[log_event(&log)]).await;
}

/// The last notification per (order, kind of view) a subscription got.
fn last_views(received: &[Received]) -> BTreeMap<(String, &'static str), (String, Value)> {
    let mut out = BTreeMap::new();
    for r in received {
        let kind = if r.event().starts_with("mediationlog") {
            "log"
        } else {
            "order"
        };
        out.insert(
            (r.order().to_string(), kind),
            (r.event().to_owned(), r.data().clone()),
        );
    }
    out
}

/// The same of a change feed's items.
fn feed_views(items: &[Value]) -> BTreeMap<(String, &'static str), (String, Value)> {
    let mut out = BTreeMap::new();
    for i in items {
        let event = i["type"]
            .as_str()
            .unwrap()
            .trim_start_matches("dk.jobsync.")
            .to_owned();
        let kind = if event.starts_with("mediationlog") {
            "log"
        } else {
            "order"
        };
        let subject = i["subject"].as_str().unwrap().to_owned();
        assert!(
            out.insert((subject, kind), (event, i["data"].clone()))
                .is_none(),
            "the feed is compacted: one item per order and view"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unit_gets_by_fetch_search_and_feed_exactly_the_views_its_notifications_carry() {
    let (env, api) = api_env(&[]).await;
    let units = [
        "jobcenter:15300",
        "jobcenter:16700",
        "akasse:1234",
        "jobcenter:10100",
    ];
    let mut subs = Vec::new();
    for u in units {
        subs.push(env.subscribe(u).await);
    }
    let id = Uuid::new_v4();
    world(&env, id).await;
    // 15300: its order view twice (the log moves its undecided count) and
    // the log; 16700: the shared view; 1234: the shared view and its log.
    let expected = [3, 1, 2, 0];
    let mut received = Vec::new();
    for (sub, n) in subs.iter().zip(expected) {
        let got = sub.take(n, T).await;
        sub.assert_quiet(Duration::from_millis(300)).await;
        received.push(got);
    }
    let missing = api
        .get(
            &format!("/v1/joborders/{}", Uuid::new_v4()),
            &token_for(&env, "jobcenter:15300").await,
        )
        .await;
    assert_eq!(missing.status, 404);

    for (unit, got) in units.iter().zip(&received) {
        let token = token_for(&env, unit).await;
        let notified = last_views(got);
        let order = api.get(&format!("/v1/joborders/{id}"), &token).await;
        let log = api
            .get(&format!("/v1/joborders/{id}/mediationlog"), &token)
            .await;
        let (feed, _) = api.all("/v1/changes", &token).await;
        let (found, _) = api.all("/v1/joborders?q=svejsere", &token).await;
        match notified.get(&(id.to_string(), "order")) {
            Some((event, view)) => {
                assert_eq!(event, "joborder.updated");
                assert_eq!(order.status, 200, "{unit}: {}", order.text);
                assert_eq!(&order.body, view, "{unit}: fetch = notification");
                assert_eq!(found, vec![view.clone()], "{unit}: search finds its view");
            }
            None => {
                assert_eq!(order.status, 404, "{unit}");
                assert_eq!(
                    order.body, missing.body,
                    "{unit}: the same 404 as no order at all"
                );
                assert!(found.is_empty(), "{unit}: search finds nothing");
            }
        }
        match notified.get(&(id.to_string(), "log")) {
            Some((_, view)) => assert_eq!(&log.body, view, "{unit}: log fetch = notification"),
            None => assert_eq!(log.status, 404, "{unit}: {}", log.text),
        }
        assert_eq!(
            feed_views(&feed),
            notified,
            "{unit}: the feed = the notifications"
        );

        // 9.4: nothing restricted reaches anyone but the responsible unit.
        if *unit != "jobcenter:15300" {
            for answer in [
                &order.text,
                &log.text,
                &serde_json::to_string(&feed).unwrap(),
                &serde_json::to_string(&found).unwrap(),
            ] {
                for r in RESTRICTED {
                    assert!(!answer.contains(r), "{unit} was shown {r:?}: {answer}");
                }
                assert!(
                    !answer.contains("Stærk på lager"),
                    "{unit} was shown a note: {answer}"
                );
            }
        }
    }

    // Each log read was recorded: token, unit, order.
    let mut conn = env.db();
    let reads: Vec<(String, Uuid)> = diesel::sql_query(
        "SELECT unit_type || ':' || unit_code AS unit, job_order_id FROM api_log_reads ORDER BY id",
    )
    .load::<AuditRow>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|r| (r.unit, r.job_order_id))
    .collect();
    for unit in ["jobcenter:15300", "akasse:1234"] {
        let n = reads.iter().filter(|(u, o)| u == unit && *o == id).count();
        assert_eq!(
            n, 2,
            "{unit}: the fetch and the feed item are recorded: {reads:?}"
        );
    }
    assert_eq!(reads.len(), 4, "{reads:?}");
}

fn outbox_is_empty(c: &mut diesel::PgConnection) -> bool {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM outbox")
        .get_result::<N>(c)
        .is_ok_and(|r| r.n == 0)
}

#[derive(diesel::QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    unit: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    job_order_id: Uuid,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_stems_danish_filters_pages_and_never_matches_what_the_caller_cannot_see() {
    let (env, api) = api_env(&[]).await;
    let events = env.subscribe_events().await;
    let mut ids = Vec::new();
    for (i, title) in [
        "Svejser",
        "Svejsere til værft",
        "Lagermedarbejder",
        "Svejser 010190-1234",
        "Smed",
    ]
    .into_iter()
    .enumerate()
    {
        let id = Uuid::new_v4();
        let mut order = JobOrder::new(id).version(i as u64 + 1).title(title).build();
        if i == 4 {
            order["status"] = json!("closed");
            order["status_reason"] = json!("need_fulfilled");
        }
        env.publish(&[event(&order)]).await;
        ids.push(id);
    }
    events.take(5, T).await;
    let own = token_for(&env, "jobcenter:15300").await;
    let shared = token_for(&env, "jobcenter:16700").await;
    let ids_of = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|v| v["job_order_id"].as_str().unwrap().to_owned())
            .collect()
    };

    // "svejsere" finds "Svejser": Danish stemming, best match first.
    let (found, _) = api.all("/v1/joborders?q=svejsere", &own).await;
    let found = ids_of(&found);
    assert_eq!(found.len(), 3, "{found:?}");
    for i in [0, 1, 3] {
        assert!(found.contains(&ids[i].to_string()));
    }
    // Text only the responsible unit sees (qualifications and pay) and a CPR
    // number (replaced in every view) are matched by no one.
    for q in [
        "Truckcertifikat",
        "overenskomst",
        "010190-1234",
        "0101901234",
    ] {
        for token in [&own, &shared] {
            let (found, _) = api.all(&format!("/v1/joborders?q={q}"), token).await;
            assert!(found.is_empty(), "{q}: {found:?}");
        }
    }
    // The shared unit finds by what it sees.
    let (found, _) = api.all("/v1/joborders?q=smed", &shared).await;
    assert_eq!(ids_of(&found), vec![ids[4].to_string()]);
    assert!(
        found[0].get("contact").is_none(),
        "the shared view: {}",
        found[0]
    );
    // An outsider finds nothing.
    let outsider = token_for(&env, "jobcenter:10100").await;
    assert!(api.all("/v1/joborders", &outsider).await.0.is_empty());

    // Filters.
    let (closed, _) = api.all("/v1/joborders?status=closed", &own).await;
    assert_eq!(ids_of(&closed), vec![ids[4].to_string()]);
    let (by_cvr, _) = api
        .all(
            "/v1/joborders?employer_cvr=10150817&responsible_unit=jobcenter:15300",
            &own,
        )
        .await;
    assert_eq!(by_cvr.len(), 5);
    assert!(api
        .all("/v1/joborders?employer_cvr=12345674", &own)
        .await
        .0
        .is_empty());
    assert!(api
        .all("/v1/joborders?responsible_unit=jobcenter:16700", &own)
        .await
        .0
        .is_empty());
    assert!(api
        .all("/v1/joborders?updated_after=2030-01-01T00:00:00Z", &own)
        .await
        .0
        .is_empty());

    // Pages of 2, newest first without q, each order once, then no next.
    let mut seen = Vec::new();
    let mut url = "/v1/joborders?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&url, &own).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        seen.extend(ids_of(page.body["items"].as_array().unwrap()));
        match page.body["next"].as_str() {
            Some(next) => url = format!("/v1/joborders?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = ids.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(seen, newest_first, "newest updated_at first, each once");
    // A cursor belongs to its search.
    let first = api.get("/v1/joborders?limit=2", &own).await;
    let next = first.body["next"].as_str().unwrap();
    let wrong = api
        .get(&format!("/v1/joborders?q=smed&cursor={next}"), &own)
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["parameter"], "cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_that_lose_an_order_find_the_revocation_in_their_feed_and_no_longer_fetch_it() {
    let (env, api) = api_env(&[]).await;
    let events = env.subscribe_events().await;
    let id = Uuid::new_v4();
    env.publish(&[event(&JobOrder::new(id).version(1).build())])
        .await;
    // v2: unshared from 16700 and 18300; v3: handed over to 10100.
    let mut v2 = JobOrder::new(id).version(2).build();
    v2["sharing"] = json!({"scope": "internal", "units": []});
    env.publish(&[event(&v2)]).await;
    let mut v3 = JobOrder::new(id).version(3).responsible("10100").build();
    v3["sharing"] = json!({"scope": "internal", "units": []});
    env.publish(&[event(&v3)]).await;
    events.take(2, T).await; // created, handed over
    env.wait_until(T, "version 3 is stored", |c| {
        stored_version(c, id) == Some(3)
    })
    .await;

    for (unit, reason, version) in [
        // The version that took it away, not a later one: what came
        // after is none of the unit's business.
        ("jobcenter:16700", "unshared", 2),
        ("jobcenter:15300", "handed_over", 3),
    ] {
        let token = token_for(&env, unit).await;
        let (feed, _) = api.all("/v1/changes", &token).await;
        assert_eq!(feed.len(), 1, "{unit}: {feed:?}");
        assert_eq!(feed[0]["type"], "dk.jobsync.joborder.revoked");
        assert_eq!(
            feed[0]["data"],
            json!({"job_order_id": id.to_string(), "version": version, "reason": reason})
        );
        assert_eq!(
            api.get(&format!("/v1/joborders/{id}"), &token).await.status,
            404
        );
    }
    let token = token_for(&env, "jobcenter:10100").await;
    let (feed, _) = api.all("/v1/changes", &token).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["type"], "dk.jobsync.joborder.updated");
    assert_eq!(feed[0]["data"]["coordinator_reassignment_needed"], true);
}

/// 10: a system that reads the feed to its end and then consumes its
/// notifications ends with the views of a system that only ever consumed
/// notifications — under a stream with unsharing and handovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_feed_then_the_queue_ends_with_the_views_of_notifications_alone() {
    let (env, api) = api_env(&[]).await;
    let unit = "jobcenter:16700";
    let always = env.subscribe(unit).await;
    let orders: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    // Each version shares with 16700 or not, and is the responsibility of
    // 15300 or 16700, by turns that differ per order.
    let version = |id: Uuid, n: usize, v: u64| {
        let responsible = if (n + v as usize) % 4 == 3 {
            "16700"
        } else {
            "15300"
        };
        let mut s = JobOrder::new(id)
            .version(v)
            .responsible(responsible)
            .build();
        let shared = !(n * 7 + v as usize * 3).is_multiple_of(3);
        s["sharing"] = if shared {
            json!({"scope": "selected", "units": [{"type": "jobcenter", "code": "16700"}, {"type": "jobcenter", "code": "18300"}]})
        } else {
            json!({"scope": "selected", "units": [{"type": "jobcenter", "code": "18300"}]})
        };
        if responsible == "16700" {
            s["sharing"] =
                json!({"scope": "selected", "units": [{"type": "jobcenter", "code": "18300"}]});
        }
        event(&s)
    };
    // Versions `versions` of every order, published and stored.
    let publish = |versions: std::ops::RangeInclusive<u64>| {
        let (env, orders) = (&env, &orders);
        async move {
            let last = *versions.end() as i64;
            for v in versions {
                let batch: Vec<Value> = orders
                    .iter()
                    .enumerate()
                    .map(|(n, id)| version(*id, n, v))
                    .collect();
                env.publish(&batch).await;
            }
            for id in orders {
                env.wait_until(T, "the last version is stored", |c| {
                    stored_version(c, *id) == Some(last)
                })
                .await;
            }
        }
    };
    publish(1..=3).await;
    // A system that starts now: its queue first, then the feed to its end.
    let late = env.subscribe(unit).await;
    let token = token_for(&env, unit).await;
    let (feed, next) = api.all("/v1/changes", &token).await;
    publish(4..=6).await;
    env.wait_until(T, "the outbox is published", outbox_is_empty)
        .await;
    let everything = always.take_all(Duration::from_secs(2)).await;
    let after = late.take_all(Duration::from_secs(2)).await;

    let mut late_views = feed_views(&feed);
    late_views.extend(last_views(&after));
    let alone = last_views(&everything);
    assert!(!alone.is_empty());
    assert_eq!(late_views, alone);
    // And the feed read on from where it ended agrees as well.
    let (rest, _) = api.all_from("/v1/changes", &token, next).await;
    let mut caught_up = feed_views(&feed);
    caught_up.extend(feed_views(&rest));
    assert_eq!(caught_up, alone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_missing_unknown_expired_or_revoked_get_401_and_limits_give_429_414_and_400() {
    let (env, api) = api_env(&["--api-rate-per-s", "1"]).await;
    let id = Uuid::new_v4();
    let path = format!("/v1/joborders/{id}");
    let unauthorized = |a: &Answer| {
        assert_eq!(a.status, 401, "{}", a.text);
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
        assert_eq!(a.body["status"], 401);
    };
    unauthorized(&api.get_with(&path, None, &[]).await);
    unauthorized(&api.get(&path, "jst_not-a-token").await);
    unauthorized(
        &api.get_with(&path, None, &[("authorization", "Basic dXNlcjpwdw==")])
            .await,
    );

    // Expired and revoked, through the command line as an operator does it.
    let bin = env!("CARGO_BIN_EXE_jobsync");
    let create = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["tokens", "create"])
            .args(args)
            .env("JOBSYNC_DATABASE_URL", env.db_url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
        stdout.trim().to_owned()
    };
    let token = create(&["jobcenter:15300", "--name", "sagssystem"]);
    assert!(
        token.starts_with("jst_") && token.len() >= 4 + 43,
        "{token}"
    );
    assert_eq!(
        api.get(&path, &token).await.status,
        404,
        "valid: no such order"
    );
    let expiring = create(&["jobcenter:15300", "--expires-days", "1"]);
    diesel::sql_query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL")
        .execute(&mut env.db())
        .unwrap();
    unauthorized(&api.get(&path, &expiring).await);
    let list = std::process::Command::new(bin)
        .args(["tokens", "list", "--json"])
        .env("JOBSYNC_DATABASE_URL", env.db_url())
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        !list.contains(&token) && !list.contains(&expiring),
        "list never prints a token"
    );
    let listed: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    let id_of = listed.iter().find(|t| t["name"] == "sagssystem").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = std::process::Command::new(bin)
        .args(["tokens", "revoke", &id_of])
        .env("JOBSYNC_DATABASE_URL", env.db_url())
        .output()
        .unwrap();
    assert!(revoked.status.success());
    unauthorized(&api.get(&path, &token).await);

    // 429 past the rate (1/s, bursts of 2), with Retry-After.
    let fresh = token_for(&env, "jobcenter:15300").await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let a = api.get(&path, &fresh).await;
        statuses.push(a.status);
        if a.status == 429 {
            limited = Some(a);
        }
    }
    let limited = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        limited.header("content-type"),
        Some("application/problem+json")
    );

    // A query string over 2 KiB, a bad parameter, an unknown one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let long = format!("/v1/joborders?q={}", "a".repeat(2100));
    assert_eq!(api.get(&long, &fresh).await.status, 414);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bad = api.get("/v1/joborders?limit=500", &fresh).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["parameter"], "limit");
    assert!(bad.body["detail"].as_str().unwrap().contains("limit"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unknown = api.get("/v1/changes?since=1", &fresh).await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["detail"].as_str().unwrap().contains("since"),
        "{}",
        unknown.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etag_is_the_version_and_if_none_match_gives_304() {
    let (env, api) = api_env(&[]).await;
    let events = env.subscribe_events().await;
    let id = Uuid::new_v4();
    env.publish(&[event(&JobOrder::new(id).version(7).build())])
        .await;
    events.take(1, T).await;
    let token = token_for(&env, "jobcenter:15300").await;
    let path = format!("/v1/joborders/{id}");
    let first = api.get(&path, &token).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("etag"), Some("\"7\""));
    let again = api
        .get_with(&path, Some(&token), &[("if-none-match", "\"7\"")])
        .await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    let older = api
        .get_with(&path, Some(&token), &[("if-none-match", "\"6\"")])
        .await;
    assert_eq!(older.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_is_served_and_names_every_route() {
    let (_env, api) = api_env(&[]).await;
    let doc = api.get_with("/v1/openapi.json", None, &[]).await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc.body["openapi"]
    );
    for path in [
        "/v1/joborders",
        "/v1/joborders/{id}",
        "/v1/joborders/{id}/mediationlog",
        "/v1/changes",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
}

/// 10: a token is never logged: not at debug, not in a failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_never_reaches_the_log() {
    let env = TestEnv::new().await;
    let port = free_port();
    let token = token_for(&env, "jobcenter:15300").await;
    let worker = crate::cli::jobsync(&env, &["run"])
        .env("JOBSYNC_API_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let api = ApiClient::new(port);
    api.wait_ready().await;
    let id = Uuid::new_v4();
    for path in [
        format!("/v1/joborders/{id}"),
        format!("/v1/joborders?q={token}"),
        "/v1/changes".to_owned(),
        "/v1/nowhere".to_owned(),
    ] {
        api.get(&path, &token).await;
        api.get(&path, &format!("{token}x")).await;
    }
    let log = crate::cli::terminate_and_read_log(worker).await;
    assert!(
        log.contains("read API request"),
        "the requests are logged: {log}"
    );
    assert!(!log.contains(&token), "a token reached the log");
    assert!(!log.contains(&token["jst_".len()..token.len() - 4]));
}

/// 10: a page of the change feed costs time in proportion to the page, not
/// to what is stored: among 200,000 feed rows of other units (and 5,000 of
/// its own), a page of 100 reads 100 rows of one index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_page_reads_only_its_own_rows_among_205000() {
    let (mut env, api) = api_env(&[]).await;
    let events = env.subscribe_events().await;
    env.publish(&[event(&JobOrder::new(Uuid::new_v4()).build())])
        .await;
    events.take(1, T).await;
    env.stop_workers().await;
    drop(api);
    let mut conn = env.db();
    diesel::sql_query(
        "INSERT INTO unit_changes (unit_type, unit_code, job_order_id, kind, xid, position) \
         SELECT 'jobcenter', (10100 + (g % 94) * 100)::text, gen_random_uuid(), 'order', \
                pg_current_xact_id(), nextval('unit_changes_position') \
           FROM generate_series(1, 200000) g",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO unit_changes (unit_type, unit_code, job_order_id, kind, xid, position) \
         SELECT 'akasse', '1234', gen_random_uuid(), 'order', pg_current_xact_id(), \
                nextval('unit_changes_position') \
           FROM generate_series(1, 5000) g",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("ANALYZE unit_changes")
        .execute(&mut conn)
        .unwrap();
    let unit = jobsync::domain::unit::Unit::from_text("akasse:1234").unwrap();
    // The rows show once every older transaction of the server has ended
    // (other tests' too): wait for that, then look at the plan.
    let deadline = tokio::time::Instant::now() + T;
    let plan = loop {
        let plan =
            jobsync::store::feed::explain_page(&mut conn, &unit, Default::default(), 100).unwrap();
        if plan[0]["Plan"]["Actual Rows"] == 100 || tokio::time::Instant::now() > deadline {
            break plan;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_reads_only(&plan, "unit_changes_feed", 100);
}

/// 9.4 and 10, as a property: over a random world of orders (random
/// responsible unit, random sharing, restricted texts and notes marked per
/// order), no answer of the API to any unit — fetch, log fetch, search,
/// feed — carries a restricted field of an order it is not responsible
/// for, a note, or another unit's candidate. `JOBSYNC_TEST_SEED` replays a
/// failing world.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_ever_carries_another_unit_s_restricted_field() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("JOBSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (env, api) = api_env(&["--api-rate-per-s", "10000"]).await;
    let events = env.subscribe_events().await;
    let units = [
        ("jobcenter", "15300"),
        ("jobcenter", "16700"),
        ("jobcenter", "18300"),
        ("akasse", "1234"),
    ];
    // Per order: its responsible unit and its candidates (id, unit).
    type Candidates<'a> = Vec<(Uuid, (&'a str, &'a str))>;
    let mut world: Vec<(Uuid, &str, Candidates)> = Vec::new();
    for n in 0..16 {
        let id = Uuid::new_v4();
        let responsible = if rng.random_bool(0.5) {
            "15300"
        } else {
            "16700"
        };
        let mut order = JobOrder::new(id).responsible(responsible).build();
        order["contact"]["name"] = json!(format!("Kontakt R{n}X"));
        order["descriptions"]["qualifications_and_pay"] = json!(format!("Krav R{n}Q"));
        order["descriptions"]["working_hours"] = json!(format!("Tid R{n}W"));
        order["status_comment"] = json!(format!("Kommentar R{n}C"));
        order["employer"]["p_number"] = json!(format!("{}", 9_000_000_000u64 + n));
        let shared: Vec<(&str, &str)> = units
            .iter()
            .filter(|(_, code)| *code != responsible && rng.random_bool(0.6))
            .copied()
            .collect();
        let listed: Vec<Value> = shared
            .iter()
            .map(|(t, c)| json!({"type": t, "code": c}))
            .collect();
        order["sharing"] = if listed.is_empty() {
            json!({"scope": "internal", "units": []})
        } else {
            json!({"scope": "selected", "units": listed})
        };
        env.publish(&[event(&order)]).await;
        let mut candidates = vec![(Uuid::new_v4(), ("jobcenter", responsible))];
        for (t, c) in &shared {
            if rng.random_bool(0.7) {
                candidates.push((Uuid::new_v4(), (*t, *c)));
            }
        }
        world.push((id, responsible, candidates));
    }
    events.take(world.len(), T).await;
    for (n, (id, responsible, candidates)) in world.iter().enumerate() {
        let entries: Vec<Value> = candidates
            .iter()
            .map(|(cid, (t, c))| {
                let (status, by) = if *c == *responsible {
                    ("available_to_company", by_unit("jobcenter", responsible))
                } else {
                    ("awaiting_approval", by_unit(t, c))
                };
                let mut e = candidate(*cid, (t, c), status, by);
                e["note"] = json!(format!("Note R{n}N"));
                e
            })
            .collect();
        env.publish(&[log_event(&mediation_log(*id, 1, entries))])
            .await;
    }
    env.wait_until(T, "every log is stored", |c| {
        world.iter().all(|(id, _, _)| stored_log(c, *id).is_some())
    })
    .await;

    for (t, code) in units {
        let unit = format!("{t}:{code}");
        let token = token_for(&env, &unit).await;
        let mut answers: Vec<(String, String)> = Vec::new();
        for (id, _, _) in &world {
            for path in [
                format!("/v1/joborders/{id}"),
                format!("/v1/joborders/{id}/mediationlog"),
            ] {
                let a = api.get(&path, &token).await;
                answers.push((path, a.text));
            }
        }
        let (found, _) = api.all("/v1/joborders?limit=7", &token).await;
        answers.push(("search".into(), serde_json::to_string(&found).unwrap()));
        let (feed, _) = api.all("/v1/changes?limit=5", &token).await;
        answers.push(("feed".into(), serde_json::to_string(&feed).unwrap()));
        for (n, (_, responsible, candidates)) in world.iter().enumerate() {
            let own = t == "jobcenter" && code == *responsible;
            for (what, text) in &answers {
                if !own {
                    for marker in ["X", "Q", "W", "C", "N"] {
                        let m = format!("R{n}{marker}");
                        assert!(
                            !text.contains(&m),
                            "seed {seed}: {unit} got {m} in {what}: {text}"
                        );
                    }
                    let p_number = format!("{}", 9_000_000_000u64 + n as u64);
                    assert!(
                        !text.contains(&p_number),
                        "seed {seed}: {unit} got a P-number in {what}"
                    );
                    for (cid, (ct, cc)) in candidates {
                        if (*ct, *cc) != (t, code) {
                            assert!(
                                !text.contains(&cid.to_string()),
                                "seed {seed}: {unit} got {ct}:{cc}'s candidate in {what}: {text}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// 10: the feed comes in commit order and never skips: a change whose
/// transaction commits after a later one's is not shown before it, so a
/// reader's cursor never passes a change that is still to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_is_never_behind_a_reader_s_cursor() {
    use diesel::Connection as _;
    let (mut env, _api) = api_env(&[]).await;
    env.stop_workers().await;
    let unit = jobsync::domain::unit::Unit::from_text("akasse:1234").unwrap();
    let insert = |id: Uuid| {
        format!(
            "INSERT INTO unit_changes (unit_type, unit_code, job_order_id, kind, xid, position) \
             VALUES ('akasse', '1234', '{id}', 'order', pg_current_xact_id(), \
                     nextval('unit_changes_position'))"
        )
    };
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    // The first change's transaction takes its id and position, and stays
    // open; the second commits.
    let mut slow = env.db();
    diesel::sql_query("BEGIN").execute(&mut slow).unwrap();
    diesel::sql_query(insert(first)).execute(&mut slow).unwrap();
    diesel::sql_query(insert(second))
        .execute(&mut env.db())
        .unwrap();
    let mut reader = env.db();
    let page = jobsync::store::feed::page(&mut reader, &unit, Default::default(), 100).unwrap();
    assert!(page.is_empty(), "the second waits for the first: {page:?}");
    diesel::sql_query("COMMIT").execute(&mut slow).unwrap();
    // Both, in order (other tests' transactions on this server may hold
    // them back a moment).
    let deadline = tokio::time::Instant::now() + T;
    let page = loop {
        let page = reader
            .transaction(|c| jobsync::store::feed::page(c, &unit, Default::default(), 100))
            .unwrap();
        if page.len() == 2 || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: Vec<Uuid> = page.iter().map(|e| e.job_order_id).collect();
    assert_eq!(ids, vec![first, second]);
}

/// Orders stored before search existed (no `search` vector) get theirs in
/// the background and are found then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_stored_before_search_existed_become_searchable() {
    let (mut env, api) = api_env(&["--expiry-interval-s", "1"]).await;
    let events = env.subscribe_events().await;
    let id = Uuid::new_v4();
    env.publish(&[event(&JobOrder::new(id).title("Svejser").build())])
        .await;
    events.take(1, T).await;
    env.stop_workers().await;
    diesel::sql_query("UPDATE job_orders SET search = NULL")
        .execute(&mut env.db())
        .unwrap();
    env.start_worker();
    api.wait_ready().await;
    let token = token_for(&env, "jobcenter:15300").await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (found, _) = api.all("/v1/joborders?q=svejser", &token).await;
        if found.len() == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never found");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
