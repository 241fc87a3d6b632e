//! Generators of valid snapshots (contract 4.1, 4.2).

use super::*;

/// `(type, code)` of a unit as on the wire.
pub(crate) type WireUnit = (String, String);

pub(crate) fn unit_json(u: &WireUnit) -> Value {
    json!({"type": u.0, "code": u.1})
}

pub(crate) fn wire_unit(v: &Value) -> WireUnit {
    (
        v["type"].as_str().unwrap_or_default().to_owned(),
        v["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The 98 municipality codes of the reference data.
pub(crate) fn municipality_codes() -> &'static [u16] {
    static CODES: OnceLock<Vec<u16>> = OnceLock::new();
    CODES.get_or_init(|| {
        include_str!("../../reference/municipalities.csv")
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(',')?.0.trim().parse().ok())
            .collect()
    })
}

pub(crate) fn jobcenter() -> BoxedStrategy<WireUnit> {
    (
        select(municipality_codes()),
        prop_oneof![3 => Just(0u8), 1 => 1u8..100],
    )
        .prop_map(|(m, sub)| ("jobcenter".to_owned(), format!("{m:03}{sub:02}")))
        .boxed()
}

pub(crate) fn akasse() -> BoxedStrategy<WireUnit> {
    re("[0-9]{1,10}")
        .prop_map(|code| ("akasse".to_owned(), code))
        .boxed()
}

pub(crate) fn any_unit() -> BoxedStrategy<WireUnit> {
    prop_oneof![
        2 => jobcenter(),
        2 => akasse(),
        1 => re("[0-9]{1,10}").prop_map(|code| ("workindenmark".to_owned(), code)),
    ]
    .boxed()
}

pub(crate) fn changed_by() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"kind": "employer"})),
        Just(json!({"kind": "system"})),
        any_unit().prop_map(|u| json!({"kind": "unit", "unit": unit_json(&u)})),
    ]
    .boxed()
}

/// 8 digits whose weighted sum (2,7,6,5,4,3,2,1) is divisible by 11.
pub(crate) fn cvr() -> BoxedStrategy<String> {
    proptest::array::uniform7(0u32..10)
        .prop_filter_map("no check digit fits", |d| {
            let sum: u32 = d
                .iter()
                .zip([2, 7, 6, 5, 4, 3, 2])
                .map(|(a, w)| a * w)
                .sum();
            let check = (11 - sum % 11) % 11;
            (check < 10).then(|| d.iter().chain([&check]).map(u32::to_string).collect())
        })
        .boxed()
}

pub(crate) fn date() -> BoxedStrategy<String> {
    (2000i32..2100, 1u32..=12, 1u32..=31)
        .prop_filter_map("a calendar date", |(y, m, d)| {
            NaiveDate::from_ymd_opt(y, m, d).map(|d| d.format("%Y-%m-%d").to_string())
        })
        .boxed()
}

pub(crate) fn timestamp() -> BoxedStrategy<String> {
    (
        date(),
        0u32..24,
        0u32..60,
        0u32..60,
        proptest::option::weighted(0.3, re("[0-9]{1,9}")),
        select(vec!["Z", "Z", "Z", "+00:00", "+01:00", "+02:00", "-05:30"]),
    )
        .prop_map(|(d, h, m, s, fraction, offset)| {
            let fraction = fraction.map_or(String::new(), |f| format!(".{f}"));
            format!("{d}T{h:02}:{m:02}:{s:02}{fraction}{offset}")
        })
        .boxed()
}

pub(crate) fn uuid_text() -> BoxedStrategy<String> {
    (any::<u128>(), proptest::bool::weighted(0.1))
        .prop_map(|(n, upper)| {
            let s = Uuid::from_u128(n).to_string();
            if upper {
                s.to_uppercase()
            } else {
                s
            }
        })
        .boxed()
}

/// A CPR-like run whose date is valid: DDMMYY-NNNN or DDMMYYNNNN.
pub(crate) fn cpr_number() -> BoxedStrategy<String> {
    (1u32..=31, 1u32..=12, 0u32..100, 0u32..10_000, any::<bool>())
        .prop_filter_map("a calendar date", |(d, m, y, n, dash)| {
            NaiveDate::from_ymd_opt(2000 + y as i32, m, d)?;
            Some(format!(
                "{d:02}{m:02}{y:02}{}{n:04}",
                if dash { "-" } else { "" }
            ))
        })
        .boxed()
}

/// Looks like a CPR number but its date is none (day 32, month 13, 29
/// February of a year not divisible by four, ...).
pub(crate) fn cpr_no_date() -> BoxedStrategy<String> {
    (re("[0-9]{6}"), re("[0-9]{4}"), any::<bool>())
        .prop_filter_map("no date", |(ddmmyy, n, dash)| {
            cpr_runs(&format!("{ddmmyy}0000"))
                .is_empty()
                .then(|| format!("{ddmmyy}{}{n}", if dash { "-" } else { "" }))
        })
        .boxed()
}

/// A piece of free text: words with Danish letters, punctuation (quotes,
/// backslashes and brackets for the JSON writer and the depth check), digit
/// runs, CPR numbers and runs that only look like them.
pub(crate) fn piece() -> BoxedStrategy<String> {
    prop_oneof![
        5 => re("[a-zA-ZæøåÆØÅéü]{1,12}"),
        4 => select(vec![
            " ", " ", ", ", ". ", "\n", "\t", "\"", "\\", "/", "-", "–", "(", ")", ":", "'",
            "€", "😀", "\u{2028}", "\u{a0}", "[", "]", "{", "}", "<b>", "&amp;", "%",
        ])
        .prop_map(String::from),
        2 => re("[0-9]{1,14}"),
        2 => cpr_number(),
        1 => cpr_no_date(),
        1 => (1u32..100).prop_map(|y| format!("2902{y:02}-{:04}", y * 37 % 10_000)),
    ]
    .boxed()
}

/// Strings matching `pattern`, compiled once (a `&str` strategy compiles
/// its regex for every value).
pub(crate) fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .expect("a valid regex")
        .boxed()
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Free text of 1 to `max` characters that is not blank; now and then as
/// long as the contract allows.
pub(crate) fn free_text(max: usize) -> BoxedStrategy<String> {
    (
        re("[a-zA-ZæøåÆØÅ]"),
        proptest::collection::vec(piece(), 0..10),
        proptest::bool::weighted(0.05),
    )
        .prop_map(move |(first, pieces, long)| {
            let mut s = first;
            for p in &pieces {
                s.push_str(p);
            }
            if long {
                let unit = s.clone();
                let n = unit.chars().count();
                let mut total = n;
                while total < max {
                    s.push_str(&unit);
                    total += n;
                }
            }
            truncate_chars(&s, max)
        })
        .boxed()
}

/// Free text only the responsible unit may see: it starts with `¤tag¤`.
pub(crate) fn restricted_text(tag: char, max: usize) -> BoxedStrategy<String> {
    free_text(max - 4)
        .prop_map(move |t| format!("{MARK}{tag}{MARK} {t}"))
        .boxed()
}

/// An optional text: now and then empty.
pub(crate) fn optional_text(text: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![1 => Just(String::new()), 6 => text].boxed()
}

/// How an optional field is written: left out, `null`, or a value.
#[derive(Debug, Clone)]
pub(crate) enum Opt<T> {
    Omitted,
    Null,
    Some(T),
}

pub(crate) fn opt<T: Clone + std::fmt::Debug + 'static>(
    s: BoxedStrategy<T>,
) -> BoxedStrategy<Opt<T>> {
    prop_oneof![1 => Just(Opt::Omitted), 1 => Just(Opt::Null), 3 => s.prop_map(Opt::Some)].boxed()
}

pub(crate) fn put<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Opt<T>) {
    match value {
        Opt::Omitted => {}
        Opt::Null => {
            map.insert(key.to_owned(), Value::Null);
        }
        Opt::Some(v) => {
            map.insert(key.to_owned(), v.into());
        }
    }
}

pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => unreachable!("built as an object"),
    }
}

/// An e-mail address holding no CPR number (one that does is refused).
pub(crate) fn email() -> BoxedStrategy<String> {
    re("[a-zA-Z0-9æøå._+-]{1,20}@[a-z0-9-]{1,12}(\\.[a-z]{2,6}){1,2}")
        .prop_filter("no CPR number in an e-mail address", |s| {
            cpr_runs(s).is_empty()
        })
        .boxed()
}

/// A phone number holding no CPR number (one that does is refused).
pub(crate) fn phone() -> BoxedStrategy<String> {
    prop_oneof![re("[0-9]{8}"), re("\\+[0-9]{8,15}")]
        .prop_filter("no CPR number in a phone number", |s| {
            cpr_runs(s).is_empty()
        })
        .boxed()
}

pub(crate) fn contact() -> BoxedStrategy<Value> {
    let reach = prop_oneof![
        (email().prop_map(Opt::Some), opt(phone())),
        (opt(email()), phone().prop_map(Opt::Some)),
    ];
    (restricted_text('C', 200), reach)
        .prop_map(|(name, (email, phone))| {
            let mut m = Map::new();
            m.insert("name".into(), name.into());
            put(&mut m, "email", email);
            put(&mut m, "phone", phone);
            Value::Object(m)
        })
        .boxed()
}

pub(crate) fn occupation() -> BoxedStrategy<Value> {
    (
        free_text(200),
        opt(optional_text(free_text(200))),
        opt(optional_text(free_text(50))),
    )
        .prop_map(|(name, alias, code)| {
            let mut m = object(json!({ "name": name }));
            put(&mut m, "alias", alias);
            put(&mut m, "code", code);
            Value::Object(m)
        })
        .boxed()
}

pub(crate) fn employer() -> BoxedStrategy<Value> {
    (
        cvr(),
        opt(re("[0-9]{10}")),
        free_text(300),
        opt(any::<bool>().boxed()),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(cvr, p_number, name, conflict_affected, unknown)| {
            let mut m = object(json!({ "cvr": cvr, "name": name }));
            put(&mut m, "p_number", p_number);
            // `conflict_affected` defaults to false, but is no null.
            if !matches!(conflict_affected, Opt::Null) {
                put(&mut m, "conflict_affected", conflict_affected);
            }
            if unknown {
                m.insert("x_unknown".into(), UNKNOWN.into());
            }
            Value::Object(m)
        })
        .boxed()
}

pub(crate) fn coordinator() -> BoxedStrategy<Value> {
    (free_text(100), free_text(200))
        .prop_map(|(id, name)| json!({"id": id, "name": name}))
        .boxed()
}

pub(crate) fn descriptions() -> BoxedStrategy<Value> {
    (
        free_text(5000),
        opt(optional_text(restricted_text('Q', 5000))),
        opt(optional_text(restricted_text('W', 5000))),
    )
        .prop_map(|(tasks, pay, hours)| {
            let mut m = object(json!({ "tasks": tasks }));
            put(&mut m, "qualifications_and_pay", pay);
            put(&mut m, "working_hours", hours);
            Value::Object(m)
        })
        .boxed()
}

pub(crate) fn version() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => (1u64..1000).prop_map(Value::from),
        1 => (1u64..=i64::MAX as u64).prop_map(Value::from),
        1 => (1u32..1000).prop_map(|v| Value::from(f64::from(v))),
    ]
    .boxed()
}

/// `continuous`, `positions` and `expected_start` that fit together.
pub(crate) fn continuity() -> BoxedStrategy<(bool, Opt<Value>, Opt<String>)> {
    prop_oneof![
        (
            Just(true),
            prop_oneof![Just(Opt::Omitted), Just(Opt::Null)],
            prop_oneof![Just(Opt::Omitted), Just(Opt::Null)],
        ),
        (
            Just(false),
            prop_oneof![
                6 => (1i64..50).prop_map(Value::from),
                1 => (1i64..=i64::from(i32::MAX)).prop_map(Value::from),
                1 => (1u32..50).prop_map(|p| Value::from(f64::from(p))),
            ]
            .prop_map(Opt::Some),
            opt(date()),
        ),
    ]
    .boxed()
}

/// A status with a reason that fits it.
pub(crate) fn status() -> BoxedStrategy<(&'static str, Opt<&'static str>)> {
    let none = || prop_oneof![Just(Opt::Omitted), Just(Opt::Null)];
    prop_oneof![
        (Just("open"), none()),
        (Just("open"), Just(Opt::Some("under_processing"))),
        (Just("temporarily_inactive"), none()),
        (
            Just("temporarily_inactive"),
            Just(Opt::Some("enough_referrals"))
        ),
        (Just("temporarily_inactive"), Just(Opt::Some("other"))),
        (Just("closed"), Just(Opt::Some("need_fulfilled"))),
        (Just("closed"), Just(Opt::Some("deadline_expired"))),
        (Just("closed"), Just(Opt::Some("other"))),
    ]
    .boxed()
}

pub(crate) const SCOPES: &[&str] = &[
    "internal",
    "neighbours",
    "recruitment_community",
    "national",
    "selected",
];

/// A responsible unit and sharing that fits it: `internal` lists no unit
/// (and may leave `units` out), any other scope one or more, no duplicates,
/// never the responsible unit, only a-kasser when an a-kasse is responsible.
pub(crate) fn responsible_and_sharing() -> BoxedStrategy<(WireUnit, Value)> {
    (
        prop_oneof![jobcenter(), akasse()],
        select(SCOPES),
        proptest::collection::vec(any_unit(), 1..6),
        proptest::collection::vec(akasse(), 1..6),
        any::<bool>(),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(responsible, scope, any, akasser, omit, same_code)| {
            let candidates = if responsible.0 == "akasse" {
                akasser
            } else {
                any
            };
            (responsible, scope, candidates, omit, same_code)
        })
        .prop_map(|(responsible, scope, candidates, omit, same_code)| {
            let mut units: Vec<WireUnit> = Vec::new();
            if scope != "internal" {
                if same_code && responsible.0 == "jobcenter" {
                    // An a-kasse with the code of the responsible jobcentre
                    // is another unit.
                    units.push(("akasse".to_owned(), responsible.1.clone()));
                }
                for u in candidates {
                    if u != responsible && !units.contains(&u) {
                        units.push(u);
                    }
                }
                if units.is_empty() {
                    let code = if responsible.1 == "0" { "1" } else { "0" };
                    units.push(("akasse".to_owned(), code.to_owned()));
                }
            }
            let mut sharing = object(json!({ "scope": scope }));
            if !(omit && units.is_empty()) {
                sharing.insert("units".into(), units.iter().map(unit_json).collect());
            }
            (responsible, Value::Object(sharing))
        })
        .boxed()
}

/// A generated CloudEvent, with how it is written.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) event: Value,
    pub(crate) pretty: bool,
}

impl Message {
    pub(crate) fn body(&self) -> Vec<u8> {
        if self.pretty {
            serde_json::to_vec_pretty(&self.event).unwrap()
        } else {
            serde_json::to_vec(&self.event).unwrap()
        }
    }

    pub(crate) fn data(&self) -> &Value {
        &self.event["data"]
    }
}

/// The envelope's own parts: id, time, datacontenttype, how the subject is
/// written, an unknown attribute, pretty printing.
pub(crate) type EnvelopeParts = (String, Opt<String>, bool, u8, bool, bool);

pub(crate) fn envelope_parts() -> BoxedStrategy<EnvelopeParts> {
    (
        prop_oneof![
            3 => uuid_text(),
            1 => re("[ -~]{1,128}"),
            1 => re("\\PC{1,40}"),
        ],
        opt(timestamp()),
        any::<bool>(),
        0u8..3,
        proptest::bool::weighted(0.2),
        any::<bool>(),
    )
        .boxed()
}

/// The hub's CloudEvent around `data`, its own parts varied by `parts`.
pub(crate) fn envelope(kind: InboundType, data: Value, parts: EnvelopeParts) -> Message {
    let (id, time, content_type, subject_case, unknown, pretty) = parts;
    let order_id = data["job_order_id"].as_str().unwrap_or_default();
    let subject = match subject_case {
        0 => order_id.to_owned(),
        1 => order_id.to_uppercase(),
        _ => order_id.to_lowercase(),
    };
    let mut m = object(cloudevent(kind.as_str(), &id, &data));
    m.insert("subject".into(), subject.into());
    m.remove("time");
    put(&mut m, "time", time);
    if !content_type {
        m.remove("datacontenttype");
    }
    if unknown {
        m.insert("x_unknown".into(), UNKNOWN.into());
    }
    Message {
        event: Value::Object(m),
        pretty,
    }
}

/// A valid job order snapshot event (contract 4.1).
pub(crate) fn job_order() -> BoxedStrategy<Message> {
    let head = (
        uuid_text(),
        version(),
        opt(optional_text(free_text(100))),
        select(vec!["jobag", "unit"]),
        changed_by(),
        free_text(100),
        occupation(),
        employer(),
    );
    let middle = (
        opt(contact()),
        opt(coordinator()),
        any::<bool>(),
        descriptions(),
        continuity(),
        opt(date()),
        status(),
        opt(optional_text(restricted_text('S', 5000))),
    );
    let tail = (
        responsible_and_sharing(),
        timestamp(),
        timestamp(),
        proptest::bool::weighted(0.2),
        envelope_parts(),
    );
    (head, middle, tail)
        .prop_map(|(head, middle, tail)| {
            let (id, version, request_id, origin, changed_by, title, occupation, employer) = head;
            let (
                contact,
                coordinator,
                coordinator_allowed,
                descriptions,
                continuity,
                deadline,
                status,
                comment,
            ) = middle;
            let ((responsible, sharing), created_at, updated_at, unknown, parts) = tail;
            let (continuous, positions, expected_start) = continuity;
            let (status, reason) = status;
            let mut m = object(json!({
                "job_order_id": id,
                "version": version,
                "origin": origin,
                "changed_by": changed_by,
                "title": title,
                "occupation": occupation,
                "employer": employer,
                "responsible_unit": unit_json(&responsible),
                "coordinator_allowed": coordinator_allowed,
                "descriptions": descriptions,
                "continuous": continuous,
                "status": status,
                "sharing": sharing,
                "created_at": created_at,
                "updated_at": updated_at,
            }));
            put(&mut m, "request_id", request_id);
            put(&mut m, "contact", contact);
            put(&mut m, "coordinator", coordinator);
            put(&mut m, "positions", positions);
            put(&mut m, "expected_start", expected_start);
            put(&mut m, "mediation_deadline", deadline);
            put(&mut m, "status_reason", reason);
            put(&mut m, "status_comment", comment);
            if unknown {
                m.insert("x_unknown".into(), UNKNOWN.into());
            }
            envelope(JOB_ORDER, Value::Object(m), parts)
        })
        .boxed()
}

/// An opaque person reference of 1 to 100 characters that is no CPR number
/// (it may hold digit runs and runs shaped like one whose date is none).
pub(crate) fn person_ref() -> BoxedStrategy<String> {
    (
        re("[A-ZÆØ]{1,3}-?"),
        proptest::collection::vec(
            prop_oneof![
                re("[0-9]{1,14}"),
                re("[a-zA-Zæø]{1,6}"),
                Just("-".to_owned()),
                Just("\u{85}".to_owned()),
                cpr_no_date(),
            ],
            0..5,
        ),
    )
        .prop_map(|(head, pieces)| truncate_chars(&(head + &pieces.concat()), 100))
        .prop_filter("a person_ref is never a CPR number", |s| {
            cpr_runs(s).is_empty()
        })
        .boxed()
}

pub(crate) const ENTRY_STATUSES: &[&str] = &[
    "awaiting_approval",
    "available_to_company",
    "hired",
    "not_hired",
    "withdrawn",
];

/// Who registered an entry: one of the order's units (by index), or now
/// and then another unit.
#[derive(Debug, Clone)]
pub(crate) enum RegisteredBy {
    OrderUnit(Index),
    Other(WireUnit),
}

/// One entry; `registered_by` is filled in by [`order_and_log`].
pub(crate) fn entry() -> BoxedStrategy<(Value, RegisteredBy)> {
    (
        (
            any::<u128>(),
            proptest::bool::weighted(0.1),
            person_ref(),
            prop_oneof![
                4 => any::<Index>().prop_map(RegisteredBy::OrderUnit),
                1 => any_unit().prop_map(RegisteredBy::Other),
            ],
            timestamp(),
            select(ENTRY_STATUSES),
        ),
        (
            timestamp(),
            changed_by(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            opt(optional_text(restricted_text('N', 5000))),
            proptest::bool::weighted(0.1),
        ),
    )
        .prop_map(|(a, b)| {
            let (id, upper, person_ref, registered_by, registered_at, status) = a;
            let (changed_at, changed_by, searchable, active, protected, note, unknown) = b;
            // The low byte is the entry's index (set in `order_and_log`):
            // ids are unique however the shrinker moves them.
            let id = Uuid::from_u128(id << 8).to_string();
            let mut m = object(json!({
                "mediation_id": if upper { id.to_uppercase() } else { id },
                "person_ref": person_ref,
                "registered_at": registered_at,
                "status": status,
                "status_changed_at": changed_at,
                "status_changed_by": changed_by,
                "searchable_cv": searchable,
                "cv_active": active,
                "protected_identity": protected,
            }));
            put(&mut m, "note", note);
            if unknown {
                m.insert("x_unknown".into(), UNKNOWN.into());
            }
            (Value::Object(m), registered_by)
        })
        .boxed()
}

/// The units of a generated order: the responsible one first, then those
/// it is shared with.
pub(crate) fn order_units(data: &Value) -> Vec<WireUnit> {
    let mut units = vec![wire_unit(&data["responsible_unit"])];
    if let Some(shared) = data["sharing"]["units"].as_array() {
        units.extend(shared.iter().map(wire_unit));
    }
    units
}

/// A valid job order and a valid log of it (contract 4.2), whose entries
/// are mostly registered by the order's units.
pub(crate) fn order_and_log() -> BoxedStrategy<(Message, Message)> {
    (
        job_order(),
        version(),
        proptest::collection::vec(entry(), 0..8),
        envelope_parts(),
    )
        .prop_map(|(order, version, entries, parts)| {
            let units = order_units(order.data());
            let entries: Vec<Value> = entries
                .into_iter()
                .enumerate()
                .map(|(i, (mut e, registered_by))| {
                    let unit = match registered_by {
                        RegisteredBy::OrderUnit(n) => n.get(&units).clone(),
                        RegisteredBy::Other(u) => u,
                    };
                    e["registered_by"] = unit_json(&unit);
                    let id = e["mediation_id"].as_str().unwrap();
                    let upper = id.contains(char::is_uppercase);
                    let id = Uuid::from_u128(Uuid::parse_str(id).unwrap().as_u128() | i as u128);
                    let id = id.to_string();
                    e["mediation_id"] = if upper { id.to_uppercase() } else { id }.into();
                    e
                })
                .collect();
            let data = json!({
                "job_order_id": order.data()["job_order_id"],
                "version": version,
                "entries": entries,
            });
            (order, envelope(MEDIATION_LOG, data, parts))
        })
        .boxed()
}

pub(crate) fn extras() -> BoxedStrategy<OrderExtras> {
    (
        any::<bool>(),
        proptest::option::of(0i64..4_000_000_000),
        0i32..1000,
    )
        .prop_map(|(needed, expired, undecided)| OrderExtras {
            coordinator_reassignment_needed: needed,
            expired_at: expired.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
            undecided_candidates: undecided,
            // The promises' own rules are tested in domain::promises.
            promises: Default::default(),
        })
        .boxed()
}
