//! The oracle: the end state and every notification checked against the stream alone.

use super::*;

/// The oracle: checks the database and the watched queues against what the
/// stream alone says must be, and returns every discrepancy found (none
/// means the run kept every guarantee of section 9).
pub async fn discrepancies(env: &TestEnv, stream: &Stream, watch: &Watch) -> Vec<String> {
    let mut found = Vec::new();
    let mut conn = env.db();
    let plans: HashMap<Uuid, &OrderPlan> = stream.orders.iter().map(|o| (o.id, o)).collect();

    // The stored orders, sharing and logs: the highest version of each.
    let stored: HashMap<Uuid, (i64, String)> = {
        use jobsync::store::schema::job_orders::dsl as j;
        j::job_orders
            .select((j::id, j::version, j::title))
            .load::<(Uuid, i64, String)>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|(id, v, t)| (id, (v, t)))
            .collect()
    };
    let sharing: HashMap<Uuid, BTreeSet<String>> = {
        use jobsync::store::schema::job_order_sharing::dsl as s;
        let mut map: HashMap<Uuid, BTreeSet<String>> = HashMap::new();
        for (id, code) in s::job_order_sharing
            .select((s::job_order_id, s::unit_code))
            .load::<(Uuid, String)>(&mut conn)
            .unwrap()
        {
            map.entry(id).or_default().insert(code);
        }
        map
    };
    let logs: HashMap<Uuid, (i64, i32, i32, i32)> = {
        use jobsync::store::schema::mediation_logs::dsl as m;
        m::mediation_logs
            .select((
                m::job_order_id,
                m::version,
                m::total,
                m::awaiting_approval,
                m::undecided,
            ))
            .load::<(Uuid, i64, i32, i32, i32)>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|(id, v, t, a, u)| (id, (v, t, a, u)))
            .collect()
    };
    if stored.len() != plans.len() {
        found.push(format!(
            "{} orders stored, {} in the stream",
            stored.len(),
            plans.len()
        ));
    }
    for plan in &stream.orders {
        let last = plan.versions.len() as i64;
        let want = &plan.versions[last as usize - 1];
        match stored.get(&plan.id) {
            Some((v, title)) if *v == last && *title == want.title => {}
            other => found.push(format!(
                "order {}: stored {other:?}, expected version {last} titled {:?}",
                plan.id, want.title
            )),
        }
        let shared: BTreeSet<String> = want.shared.iter().map(|s| s.to_string()).collect();
        let have = sharing.get(&plan.id).cloned().unwrap_or_default();
        if have != shared {
            found.push(format!(
                "order {}: shared with {have:?}, expected {shared:?}",
                plan.id
            ));
        }
        match (plan.logs.last(), logs.get(&plan.id)) {
            (None, None) => {}
            (Some(l), Some(&(v, total, awaiting, undecided)))
                if v == plan.logs.len() as i64
                    && total as usize == l.total
                    && awaiting as usize == l.awaiting
                    && undecided as usize == l.undecided => {}
            (want, have) => found.push(format!(
                "log of {}: stored {have:?}, expected version {} {want:?}",
                plan.id,
                plan.logs.len()
            )),
        }
    }

    // The inbox: every distinct message id, each final.
    // (message id, queue, outcome, order, version)
    type InboxRow = (String, String, String, Option<Uuid>, Option<i64>);
    let inbox: Vec<InboxRow> = {
        use jobsync::store::schema::processed_messages::dsl as p;
        p::processed_messages
            .select((
                p::message_id,
                p::queue,
                p::outcome,
                p::job_order_id,
                p::version,
            ))
            .load(&mut conn)
            .unwrap()
    };
    let ids: HashSet<&str> = stream.messages.iter().map(|m| m.id.as_str()).collect();
    let recorded: HashSet<&str> = inbox.iter().map(|r| r.0.as_str()).collect();
    let missing = ids.difference(&recorded).count();
    let unknown = recorded.difference(&ids).count();
    if missing + unknown > 0 {
        found.push(format!(
            "inbox: {missing} message ids of the stream missing, {unknown} ids not in it"
        ));
    }
    let outbox: i64 = {
        use jobsync::store::schema::outbox::dsl as o;
        o::outbox.count().get_result(&mut conn).unwrap()
    };
    if outbox != 0 {
        found.push(format!("{outbox} outbox rows never published"));
    }
    let dead = ready(&env.settings.topology.dead_letters_queue).await;
    if dead != 0 {
        found.push(format!(
            "{dead} messages dead-lettered; every one was valid"
        ));
    }

    // The order versions applied, in version order, and the log versions.
    let joborders_queue = env.settings.topology.joborders_queue.as_str();
    let mut applied: HashMap<Uuid, BTreeSet<i64>> = HashMap::new();
    let mut applied_logs: HashMap<Uuid, BTreeSet<i64>> = HashMap::new();
    for (_, queue, outcome, order, version) in &inbox {
        if outcome != "applied" {
            continue;
        }
        let (Some(order), Some(version)) = (order, version) else {
            found.push("an applied message without its order and version".into());
            continue;
        };
        let into = if queue == joborders_queue {
            &mut applied
        } else {
            &mut applied_logs
        };
        if !into.entry(*order).or_default().insert(*version) {
            found.push(format!(
                "order {order}: version {version} applied twice ({queue})"
            ));
        }
    }

    // The notifications each unit must have had: for every applied version
    // the view of every unit that may see it, and the revocation for every
    // unit that lost it; for every applied log version the responsible
    // unit's view of the log. Nothing else about an order, in version order,
    // the same content whenever the same event id comes again.
    let seen = watch.read_all().await;
    let mut expected: BTreeSet<(String, Uuid, &'static str, i64)> = BTreeSet::new();
    for plan in &stream.orders {
        let mut before: Option<&OrderVersion> = None;
        for &v in applied.get(&plan.id).into_iter().flatten() {
            let now = &plan.versions[v as usize - 1];
            for unit in now.audience() {
                expected.insert((unit.to_owned(), plan.id, "joborder.updated", v));
            }
            if let Some(b) = before {
                for unit in b.audience().difference(&now.audience()) {
                    expected.insert((unit.to_string(), plan.id, "joborder.revoked", v));
                }
            }
            before = Some(now);
        }
    }
    let mut received: BTreeSet<(String, Uuid, &'static str, i64)> = BTreeSet::new();
    let mut notifications = 0usize;
    let mut repeats = 0usize;
    for unit in units() {
        let mut by_id: HashMap<&str, &Received> = HashMap::new();
        let mut last: HashMap<Uuid, &Received> = HashMap::new();
        let mut last_log: HashMap<Uuid, &Received> = HashMap::new();
        for s in seen.get(unit).into_iter().flatten() {
            notifications += 1;
            if let Some(first) = by_id.get(s.id()) {
                repeats += 1;
                if first.raw != s.raw {
                    found.push(format!(
                        "{unit}: event {} came twice with different content",
                        s.id()
                    ));
                }
                continue;
            }
            by_id.insert(s.id(), s);
            let order = s.order();
            let Some(plan) = plans.get(&order) else {
                found.push(format!(
                    "{unit}: a notification about an unknown order {order}"
                ));
                continue;
            };
            let event = match s.event() {
                "joborder.updated" => "joborder.updated",
                "joborder.revoked" => "joborder.revoked",
                "mediationlog.updated" => "mediationlog.updated",
                other => {
                    found.push(format!("{unit}: an unexpected {other} about {order}"));
                    continue;
                }
            };
            let v = s.version();
            let responsible = plan.versions[0].responsible == unit;
            if event == "mediationlog.updated" {
                let log_version = s.body["data"]["version"].as_i64().unwrap_or(0);
                if !responsible {
                    found.push(format!("{unit}: a log of {order} it has no entry on"));
                } else if !applied_logs
                    .get(&order)
                    .is_some_and(|a| a.contains(&log_version))
                {
                    found.push(format!(
                        "{unit}: log version {log_version} of {order}, never applied"
                    ));
                }
                if let Some(prev) = last_log.insert(order, s) {
                    if prev.body["data"]["version"].as_i64() >= Some(log_version) {
                        found.push(format!("{unit}: logs of {order} out of version order"));
                    }
                }
                continue;
            }
            let key = (unit.to_owned(), order, event, v);
            let expected_here = expected.contains(&key);
            let again = !received.insert(key);
            // The responsible unit's view also changes with its undecided
            // count: a log may tell it the same version again.
            let retold_by_a_log = responsible && event == "joborder.updated";
            if !expected_here {
                found.push(format!(
                    "{unit}: {event} of {order} at version {v}, not expected"
                ));
            } else if again && !retold_by_a_log {
                found.push(format!("{unit}: {event} of {order} at version {v} twice"));
            }
            if let Some(prev) = last.insert(order, s) {
                if prev.version() > v {
                    found.push(format!(
                        "{unit}: {order} version {v} after version {}",
                        prev.version()
                    ));
                }
            }
            if !responsible {
                let data = s.body["data"].as_object();
                for restricted in ["contact", "status_comment"] {
                    if data.is_some_and(|d| d.contains_key(restricted)) {
                        found.push(format!("{unit}: {restricted} of {order} shown"));
                    }
                }
                let text = String::from_utf8_lossy(&s.raw);
                for restricted in [
                    "qualifications_and_pay",
                    "working_hours",
                    "p_number",
                    "\"units\"",
                ] {
                    if text.contains(restricted) {
                        found.push(format!("{unit}: {restricted} of {order} shown"));
                    }
                }
            }
        }
        // Where each order ends for this unit: its view of the last version,
        // with the final undecided count for the responsible unit; or the
        // revocation; and the last log version.
        for plan in &stream.orders {
            let final_version = plan.versions.len();
            let f = &plan.versions[final_version - 1];
            let ended = last.get(&plan.id);
            if f.audience().contains(unit) {
                match ended {
                    Some(s)
                        if s.event() == "joborder.updated"
                            && s.version() == final_version as i64
                            && s.body["data"]["title"] == f.title.as_str() => {}
                    other => found.push(format!(
                        "{unit}: order {} ends at {:?}, not its view of version {final_version}",
                        plan.id,
                        other.map(|s| (s.event(), s.version()))
                    )),
                }
                if f.responsible == unit {
                    let undecided = plan.logs.last().map_or(0, |l| l.undecided);
                    if let Some(s) = ended {
                        if s.body["data"]["undecided_candidates"].as_u64() != Some(undecided as u64)
                        {
                            found.push(format!(
                                "{unit}: order {} ends with undecided_candidates {}, expected {undecided}",
                                plan.id, s.body["data"]["undecided_candidates"]
                            ));
                        }
                    }
                    let log = last_log.get(&plan.id);
                    match (plan.logs.last(), log) {
                        (None, None) => {}
                        (Some(l), Some(s))
                            if s.body["data"]["version"].as_u64()
                                == Some(plan.logs.len() as u64)
                                && s.body["data"]["total"].as_u64() == Some(l.total as u64) => {}
                        (_, other) => found.push(format!(
                            "{unit}: the log of {} ends at {:?}, expected version {}",
                            plan.id,
                            other.map(|s| &s.body["data"]["version"]),
                            plan.logs.len()
                        )),
                    }
                }
            } else if let Some(s) = ended {
                if s.event() != "joborder.revoked" {
                    found.push(format!(
                        "{unit}: order {} not revoked at the end ({} at {})",
                        plan.id,
                        s.event(),
                        s.version()
                    ));
                }
            }
        }
    }
    let missing: Vec<_> = expected.difference(&received).collect();
    if !missing.is_empty() {
        found.push(format!(
            "{} expected notifications never published, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }

    // Lifecycle events: each order created once (by event id), nothing else.
    let mut created: HashMap<Uuid, HashSet<&str>> = HashMap::new();
    for s in seen.get(EVENTS).into_iter().flatten() {
        if s.event() == "joborder.created" {
            created.entry(s.order()).or_default().insert(s.id());
        } else {
            found.push(format!(
                "an unexpected {} event about {}",
                s.event(),
                s.order()
            ));
        }
    }
    for plan in &stream.orders {
        let n = created.get(&plan.id).map_or(0, HashSet::len);
        if n != 1 {
            found.push(format!(
                "order {}: {n} distinct joborder.created events",
                plan.id
            ));
        }
    }
    eprintln!(
        "oracle (seed {}): {} orders, {} messages ({} distinct), {} notifications read ({} repeats), {} discrepancies",
        stream.seed,
        stream.orders.len(),
        stream.messages.len(),
        stream.distinct(),
        notifications,
        repeats,
        found.len()
    );
    found
}

/// Fails with the discrepancies, a few of each kind, and the seed.
pub fn assert_none(stream: &Stream, found: &[String]) {
    if found.is_empty() {
        return;
    }
    let mut text = String::new();
    for f in found.iter().take(40) {
        let _ = writeln!(text, "  {f}");
    }
    panic!(
        "seed {} (repeat with JOBSYNC_CHAOS_SEED={}): {} discrepancies:\n{text}",
        stream.seed,
        stream.seed,
        found.len()
    );
}
