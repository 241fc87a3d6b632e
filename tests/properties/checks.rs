//! Checks.

use super::*;

pub(crate) fn parse(body: &[u8], expects: InboundType) -> Result<Payload, Rejection> {
    jobsync::worker::parse(body, expects, "jobsync.properties").map(|m| m.payload)
}

/// A rejection with a code of the contract's table that a message can get
/// without anything stored (`allowed`), and a message naming the field.
pub(crate) fn check_rejection(r: &Rejection, allowed: &[&str]) -> Result<(), TestCaseError> {
    let code = r.code.as_str();
    prop_assert!(
        CONTRACT_CODES.contains(&code),
        "code {} is not in the table of contract 4.3 ({})",
        code,
        r.message
    );
    prop_assert!(
        allowed.contains(&code),
        "code {} cannot be given by a parse without stored state ({})",
        code,
        r.message
    );
    let field = r.message.split_once(": ").map(|(f, _)| f);
    prop_assert!(
        field.is_some_and(|f| !f.is_empty() && !f.contains(char::is_whitespace)),
        "the rejection message {:?} does not start with the field it names",
        r.message
    );
    Ok(())
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The path without array indices, as [`FREE_TEXT`] writes it.
pub(crate) fn schema_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// The last field name of `path`.
pub(crate) fn last_key(path: &str) -> String {
    let schema = schema_path(path);
    schema.rsplit('.').next().unwrap_or_default().to_owned()
}

/// The view has what the snapshot has at `path`: free text with every CPR
/// number replaced, timestamps as the same instant, ids in lower case,
/// sharing units in any order, fields the snapshot left out as their
/// defaults, unknown fields dropped.
pub(crate) fn same_as_input(path: &str, input: &Value, view: &Value) -> Result<(), TestCaseError> {
    let schema = schema_path(path);
    match (input, view) {
        (Value::Object(i), Value::Object(v)) => {
            for (k, iv) in i {
                let p = join(path, k);
                if k.starts_with("x_") {
                    prop_assert!(!v.contains_key(k), "{}: an unknown field was forwarded", p);
                    continue;
                }
                let vv = v.get(k);
                prop_assert!(vv.is_some(), "{}: missing from the view", p);
                same_as_input(&p, iv, vv.unwrap())?;
            }
            for (k, vv) in v {
                if i.contains_key(k) || (path.is_empty() && EXTRAS.contains(&k.as_str())) {
                    continue;
                }
                let default = vv.is_null()
                    || (k == "conflict_affected" && vv == &Value::Bool(false))
                    || (k == "units" && vv == &json!([]));
                prop_assert!(
                    default,
                    "{}: not in the snapshot, yet {} in the view",
                    join(path, k),
                    vv
                );
            }
        }
        (Value::Array(i), Value::Array(v)) if schema == "sharing.units" => {
            let mut i: Vec<WireUnit> = i.iter().map(wire_unit).collect();
            let mut v: Vec<WireUnit> = v.iter().map(wire_unit).collect();
            i.sort();
            v.sort();
            prop_assert_eq!(i, v, "{}: other units", path);
        }
        (Value::Array(i), Value::Array(v)) => {
            prop_assert_eq!(i.len(), v.len(), "{}: length", path);
            for (n, (iv, vv)) in i.iter().zip(v).enumerate() {
                same_as_input(&format!("{path}[{n}]"), iv, vv)?;
            }
        }
        (Value::String(i), Value::String(v)) if FREE_TEXT.contains(&schema.as_str()) => {
            prop_assert_eq!(
                &oracle_redact(i),
                v,
                "{}: free text with CPR numbers replaced",
                path
            );
        }
        (Value::String(i), Value::String(v)) if TIMESTAMPS.contains(&last_key(path).as_str()) => {
            let (a, b) = (
                DateTime::parse_from_rfc3339(i).unwrap(),
                DateTime::parse_from_rfc3339(v),
            );
            prop_assert!(
                b.is_ok_and(|b| b == a),
                "{}: {} is not the instant {}",
                path,
                v,
                i
            );
        }
        (Value::String(i), Value::String(v))
            if matches!(last_key(path).as_str(), "job_order_id" | "mediation_id") =>
        {
            prop_assert_eq!(&i.to_lowercase(), v, "{}: the id in lower case", path);
        }
        (Value::Number(i), Value::Number(v)) => {
            let same = match (i.as_u64(), v.as_u64()) {
                (Some(a), Some(b)) => a == b,
                _ => i.as_f64() == v.as_f64(),
            };
            prop_assert!(same, "{}: {} is not {}", path, v, i);
        }
        _ => prop_assert_eq!(input, view, "{}", path),
    }
    Ok(())
}

/// Every field of the view is on the list of 5.2 (or leads to one).
pub(crate) fn check_shared_paths(v: &Value, path: &str) -> Result<(), TestCaseError> {
    let Value::Object(m) = v else {
        return Err(TestCaseError::fail(format!(
            "shared view: {path} is not an object"
        )));
    };
    for (k, child) in m {
        let p = join(path, k);
        if SHARED_PATHS.contains(&p.as_str()) {
            continue;
        }
        let leads_on = SHARED_PATHS.iter().any(|s| s.starts_with(&format!("{p}.")));
        prop_assert!(
            leads_on && child.is_object(),
            "shared view: field {} is not on the list of contract 5.2",
            p
        );
        check_shared_paths(child, &p)?;
    }
    Ok(())
}

/// Walks every object of `v` with its path.
pub(crate) fn objects<'a>(
    v: &'a Value,
    path: String,
    out: &mut Vec<(String, &'a Map<String, Value>)>,
) {
    match v {
        Value::Object(m) => {
            out.push((path.clone(), m));
            for (k, child) in m {
                objects(child, join(&path, k), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                objects(child, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every string of `v` with its path.
pub(crate) fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Object(m) => {
            for (k, child) in m {
                strings(child, join(&path, k), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                strings(child, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub(crate) fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

/// The view of a unit that is not responsible (5.2): only the fields on the
/// list, all of them, each as the responsible unit sees it; no restricted
/// field or text anywhere, no unit but the responsible one. `strict` for
/// generated snapshots, whose texts are known: then no e-mail address, phone
/// number or P-number either.
pub(crate) fn check_shared_view(
    shared: &Value,
    responsible_view: &Value,
    snapshot: &Value,
    strict: bool,
) -> Result<(), TestCaseError> {
    check_shared_paths(shared, "")?;
    for p in SHARED_PATHS {
        let (s, r) = (
            shared.pointer(&pointer(p)),
            responsible_view.pointer(&pointer(p)),
        );
        prop_assert!(
            s.is_some(),
            "shared view: field {} of contract 5.2 is missing",
            p
        );
        prop_assert_eq!(
            s,
            r,
            "shared view: field {} differs from the responsible view",
            p
        );
    }
    let responsible = wire_unit(&snapshot["responsible_unit"]);
    let mut all = Vec::new();
    objects(shared, String::new(), &mut all);
    for (path, m) in &all {
        for k in m.keys() {
            prop_assert!(
                !RESTRICTED_KEYS.contains(&k.as_str()),
                "shared view: restricted field {} at {}",
                k,
                join(path, k)
            );
        }
        if m.contains_key("type") && m.contains_key("code") {
            let unit = wire_unit(&Value::Object((*m).clone()));
            prop_assert_eq!(
                &unit,
                &responsible,
                "shared view: {} names a unit that is not the responsible one",
                path
            );
        }
    }
    let mut texts = Vec::new();
    strings(shared, String::new(), &mut texts);
    let employer = &snapshot["employer"];
    let contact = &snapshot["contact"];
    for (path, text) in &texts {
        prop_assert!(
            !text.contains(MARK),
            "shared view: {} carries a text only the responsible unit may see: {:?}",
            path,
            text
        );
        if strict {
            prop_assert!(
                !text.contains('@'),
                "shared view: {} carries an e-mail address",
                path
            );
            for (name, secret) in [
                ("p_number", &employer["p_number"]),
                ("contact.phone", &contact["phone"]),
                ("contact.email", &contact["email"]),
            ] {
                prop_assert!(
                    secret.as_str().is_none_or(|s| s.is_empty() || *text != s),
                    "shared view: {} carries the {}",
                    path,
                    name
                );
            }
        }
    }
    Ok(())
}

/// Nulls every identifier (see [`IDENTIFIERS`]), unit code and number.
pub(crate) fn mask_identifiers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if IDENTIFIERS.contains(&k.as_str()) {
                    *child = Value::Null;
                } else {
                    mask_identifiers(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_identifiers),
        Value::Number(_) => *v = Value::Null,
        _ => {}
    }
}

/// No CPR-like run anywhere in the serialized view but in identifiers (5.3).
pub(crate) fn check_no_cpr(what: &str, view: &Value) -> Result<(), TestCaseError> {
    let mut masked = view.clone();
    mask_identifiers(&mut masked);
    let mut texts = Vec::new();
    strings(&masked, String::new(), &mut texts);
    for (path, text) in &texts {
        let runs = cpr_runs(text);
        prop_assert!(
            runs.is_empty(),
            "{}: {} carries the CPR number {:?}",
            what,
            path,
            runs.first().map(|r| &text[r.clone()])
        );
    }
    let serialized = serde_json::to_string(&masked).unwrap();
    let runs = cpr_runs(&serialized);
    prop_assert!(
        runs.is_empty(),
        "{}: the serialized view carries the CPR number {:?}",
        what,
        runs.first().map(|r| &serialized[r.clone()])
    );
    Ok(())
}

pub(crate) fn wire_of(u: &Unit) -> WireUnit {
    (u.kind().as_str().to_owned(), u.code().to_owned())
}

/// The views of an order, as the fan-out hands them to its units on first
/// sight: the responsible unit gets everything (compared with the snapshot
/// when `strict`), every other unit the shared view; no view carries a CPR
/// number.
pub(crate) fn check_order_views(
    order: &jobsync::domain::joborder::JobOrder,
    snapshot: &Value,
    extras: OrderExtras,
    strict: bool,
) -> Result<(), TestCaseError> {
    let responsible_view = responsible_order_view(&order.wire, extras);
    let shared_view = shared_order_view(&order.wire, extras.expired_at);
    let responsible = order.responsible_unit.clone();
    let shared: BTreeSet<Unit> = order.sharing.units().iter().cloned().collect();
    let (notifications, _) = order_changes(
        None,
        &responsible,
        &shared,
        responsible_view.clone(),
        shared_view.clone(),
        |r| revoked_view(&order.wire.job_order_id, order.wire.version, r),
    );
    let mut told = BTreeSet::new();
    for n in &notifications {
        for unit in &n.recipients {
            prop_assert!(told.insert(unit.clone()), "{} is told twice", unit);
            let what = format!("view of {unit}");
            check_no_cpr(&what, &n.view.to_json())?;
            if *unit == responsible {
                prop_assert_eq!(&n.view, &responsible_view, "the responsible unit's view");
            } else {
                check_shared_view(
                    &n.view.to_json(),
                    &responsible_view.to_json(),
                    snapshot,
                    strict,
                )?;
            }
        }
    }
    let mut expected = shared.clone();
    expected.insert(responsible.clone());
    prop_assert_eq!(told, expected, "every unit that can see the order is told");

    let r = &responsible_view.to_json();
    let serialized = serde_json::to_string(r).unwrap();
    prop_assert!(
        !serialized.contains(UNKNOWN),
        "an unknown field was forwarded"
    );
    prop_assert_eq!(
        &r["coordinator_reassignment_needed"],
        &Value::Bool(extras.coordinator_reassignment_needed),
        "coordinator_reassignment_needed"
    );
    prop_assert_eq!(
        r["undecided_candidates"].as_i64(),
        Some(i64::from(extras.undecided_candidates)),
        "undecided_candidates"
    );
    let expired = r["expired_at"]
        .as_str()
        .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)));
    prop_assert_eq!(
        expired.map(Result::ok),
        extras.expired_at.map(Some),
        "expired_at"
    );
    if strict {
        same_as_input("", snapshot, r)?;
    }
    Ok(())
}

/// The log views of every unit that sees the log, every unit the order is
/// shared with and `outsider`: the responsible unit sees every entry, any
/// other unit only those it registered, without `note`; the counts are
/// those of the entries shown; no CPR number. When `strict`, each entry is
/// compared with the snapshot's.
pub(crate) fn check_log_views(
    log: &jobsync::domain::mediationlog::MediationLog,
    snapshot: &Value,
    order: &jobsync::domain::joborder::JobOrder,
    outsider: &WireUnit,
    strict: bool,
) -> Result<(), TestCaseError> {
    let responsible = &order.responsible_unit;
    let viewers = log_viewers(&log.wire, responsible);
    prop_assert_eq!(
        viewers.first(),
        Some(responsible),
        "the responsible unit sees the log"
    );
    let mut expected: Vec<WireUnit> = vec![wire_of(responsible)];
    for e in &log.wire.entries {
        let u = (e.registered_by.kind.clone(), e.registered_by.code.clone());
        if !expected.contains(&u) {
            expected.push(u);
        }
    }
    let got: Vec<WireUnit> = viewers.iter().map(wire_of).collect();
    prop_assert_eq!(
        &got,
        &expected,
        "log viewers: the responsible unit and each registering unit, once"
    );

    let mut units: Vec<Unit> = viewers;
    units.extend(order.sharing.units().iter().cloned());
    if let Ok(u) = Unit::parse("outsider", &outsider.0, &outsider.1) {
        units.push(u);
    }
    let input_entries = snapshot["entries"].as_array().cloned().unwrap_or_default();
    // What the log holds: the generated snapshot when it is known, else
    // what was parsed.
    let source = if strict {
        input_entries.clone()
    } else {
        let parsed = serde_json::to_value(&log.wire).unwrap();
        parsed["entries"].as_array().cloned().unwrap_or_default()
    };
    for viewer in &units {
        let view = log_view(&log.wire, viewer, responsible);
        let what = format!("log view of {viewer}");
        let json = view.to_json();
        check_no_cpr(&what, &json)?;
        let entries = json["entries"].as_array().cloned().unwrap_or_default();
        let full = viewer == responsible;
        let me = wire_of(viewer);
        for (i, e) in entries.iter().enumerate() {
            if !full {
                prop_assert_eq!(
                    &wire_unit(&e["registered_by"]),
                    &me,
                    "{}: entries[{}] was registered by another unit",
                    what,
                    i
                );
                prop_assert!(
                    e.get("note").is_none(),
                    "{}: entries[{}] has a note",
                    what,
                    i
                );
                let serialized = serde_json::to_string(e).unwrap();
                prop_assert!(
                    !serialized.contains("¤N¤"),
                    "{}: entries[{}] carries the note's text",
                    what,
                    i
                );
            }
        }
        let shown: BTreeSet<String> = entries
            .iter()
            .map(|e| {
                e["mediation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
            })
            .collect();
        let wanted: BTreeSet<String> = source
            .iter()
            .filter(|e| full || wire_unit(&e["registered_by"]) == me)
            .map(|e| {
                e["mediation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
            })
            .collect();
        prop_assert_eq!(shown, wanted, "{}: the entries shown", what);
        let count = |f: &dyn Fn(&Value) -> bool| entries.iter().filter(|e| f(e)).count() as u64;
        let awaiting = count(&|e| e["status"] == "awaiting_approval");
        let undecided = count(&|e| e["status"] == "available_to_company" && e["cv_active"] == true);
        prop_assert_eq!(
            json["total"].as_u64(),
            Some(entries.len() as u64),
            "{}: total",
            what
        );
        prop_assert_eq!(
            json["awaiting_approval"].as_u64(),
            Some(awaiting),
            "{}: awaiting_approval",
            what
        );
        prop_assert_eq!(
            json["undecided"].as_u64(),
            Some(undecided),
            "{}: undecided",
            what
        );
        prop_assert!(
            !json.to_string().contains(UNKNOWN),
            "{}: an unknown field was forwarded",
            what
        );
        if strict {
            for e in &entries {
                let id = e["mediation_id"].as_str().unwrap_or_default();
                let input = input_entries
                    .iter()
                    .find(|i| i["mediation_id"].as_str().unwrap().eq_ignore_ascii_case(id));
                prop_assert!(
                    input.is_some(),
                    "{}: entry {} is not in the snapshot",
                    what,
                    id
                );
                let mut input = input.unwrap().clone();
                if !full {
                    input.as_object_mut().unwrap().remove("note");
                }
                same_as_input(&format!("entries[{id}]"), &input, e)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn job_order_of(payload: Payload) -> jobsync::domain::joborder::JobOrder {
    match payload {
        Payload::JobOrder(o) => *o,
        Payload::MediationLog(_) => panic!("a job order was parsed as a log"),
    }
}

pub(crate) fn log_of(payload: Payload) -> jobsync::domain::mediationlog::MediationLog {
    match payload {
        Payload::MediationLog(l) => l,
        Payload::JobOrder(_) => panic!("a log was parsed as a job order"),
    }
}

/// Parses a generated valid message: it must parse, and the other queue
/// rejects it as `type.unknown`.
pub(crate) fn parse_valid(m: &Message, expects: InboundType) -> Result<Payload, TestCaseError> {
    let body = m.body();
    let other = if expects == JOB_ORDER {
        MEDIATION_LOG
    } else {
        JOB_ORDER
    };
    let wrong = parse(&body, other).err().map(|r| r.code.as_str());
    prop_assert_eq!(wrong, Some("type.unknown"), "on the other queue");
    match parse(&body, expects) {
        Ok(p) => Ok(p),
        Err(r) => Err(TestCaseError::fail(format!(
            "a valid {} was rejected: {r}",
            expects.as_str()
        ))),
    }
}

/// Mutates `message`, parses it, and checks what came out: a rejection with
/// a contract code (`message.too_large` over 256 KiB, `json.malformed` when
/// truncated), or a message whose views keep their promises.
pub(crate) fn check_mutated(
    message: &Message,
    edits: &[Edit],
    damage: &Damage,
    expects: InboundType,
    allowed: &[&str],
) -> Result<Option<Payload>, TestCaseError> {
    let mut event = message.event.clone();
    for e in edits {
        apply_edit(&mut event, e);
    }
    let body = Message {
        event,
        pretty: message.pretty,
    }
    .body();
    let body = apply_damage(body, damage);
    match parse(&body, expects) {
        Ok(p) => {
            prop_assert!(
                body.len() <= MAX_BODY_BYTES,
                "a body over 256 KiB was accepted"
            );
            prop_assert!(
                !matches!(damage, Damage::Truncate(_)),
                "a truncated body was accepted"
            );
            Ok(Some(p))
        }
        Err(r) => {
            check_rejection(&r, allowed)?;
            if body.len() > MAX_BODY_BYTES {
                prop_assert_eq!(r.code.as_str(), "message.too_large", "{}", r.message);
            } else if matches!(damage, Damage::Truncate(_)) {
                prop_assert!(
                    r.code.as_str() == "json.malformed",
                    "a truncated body is json.malformed, not {}",
                    r
                );
            }
            prop_assert!(
                !(edits.is_empty() && matches!(damage, Damage::None)),
                "a valid message was rejected: {}",
                r
            );
            Ok(None)
        }
    }
}
