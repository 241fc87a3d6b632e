//! Property tests of the parser and the views (issue 8): no body makes the
//! parser panic, every valid snapshot parses and every invalid one gets a
//! code of contract 4.3; no view shows a unit what contract 5.2 keeps from
//! it, and no view carries a CPR number (5.3).
//!
//! The snapshots are generated per contract 4.1/4.2 (valid CVRs, jobcentre
//! codes of the 98 municipalities, every scope, status and reason, Danish
//! letters and CPR-looking runs in free text), then mutated. The checks use
//! an oracle of their own for CPR numbers, not `domain::cpr`.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{RngAlgorithm, TestCaseError};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use jobsync::contract::envelope::{InboundType, MAX_BODY_BYTES};
use jobsync::contract::rejection::Rejection;
use jobsync::domain::fanout::{order_changes, revoked_view};
use jobsync::domain::message::Payload;
use jobsync::domain::unit::Unit;
use jobsync::domain::views::{
    log_view, log_viewers, responsible_order_view, shared_order_view, OrderExtras,
};

// ---------------------------------------------------------------------------
// The contract, written out here so that the tests do not trust the library.

/// Every code of the table in contract 4.3.
const CONTRACT_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "cvr.checksum",
    "contact.email",
    "contact.phone",
    "contact.missing",
    "positions.continuous",
    "status.reason",
    "status.comment_required",
    "sharing.invalid",
    "sharing.akasse_to_jobcenter",
    "version.conflict",
    "employer.conflict_affected",
    "handover.by_employer",
    "handover.akasse_with_candidates",
    "joborder.unknown",
    "mediation.entry_removed",
    "mediation.unit_not_shared",
    "mediation.order_closed",
    "mediation.approval_not_by_responsible",
    "mediation.coordinator_not_allowed",
    "person_ref.cpr",
    "contact.cpr",
];

/// The codes a body can get before anything stored is looked at.
const BODY_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
];

/// The codes a job order snapshot can get on its own (no stored state).
const JOB_ORDER_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "cvr.checksum",
    "contact.email",
    "contact.phone",
    "contact.missing",
    "contact.cpr",
    "positions.continuous",
    "status.reason",
    "sharing.invalid",
    "sharing.akasse_to_jobcenter",
];

/// The codes a mediation log snapshot can get on its own.
const LOG_CODES: &[&str] = &[
    "json.malformed",
    "message.too_large",
    "type.unknown",
    "schema.invalid",
    "unit.unknown_municipality",
    "person_ref.cpr",
];

/// The fields of the view of a unit that is not responsible (5.2); a path
/// covers everything under it.
const SHARED_PATHS: &[&str] = &[
    "job_order_id",
    "version",
    "request_id",
    "title",
    "occupation",
    "employer.cvr",
    "employer.name",
    "responsible_unit",
    "coordinator",
    "coordinator_allowed",
    "descriptions.tasks",
    "continuous",
    "positions",
    "expected_start",
    "mediation_deadline",
    "status",
    "status_reason",
    "sharing.scope",
    "created_at",
    "updated_at",
    "expired_at",
];

/// What a unit that is not responsible never sees (5.2), as field names
/// anywhere in its view.
const RESTRICTED_KEYS: &[&str] = &[
    "contact",
    "qualifications_and_pay",
    "working_hours",
    "status_comment",
    "p_number",
    "units",
    "email",
    "phone",
];

/// The free-text fields (5.3), by path without array indices.
const FREE_TEXT: &[&str] = &[
    "title",
    "occupation.name",
    "occupation.alias",
    "employer.name",
    "contact.name",
    "coordinator.name",
    "descriptions.tasks",
    "descriptions.qualifications_and_pay",
    "descriptions.working_hours",
    "status_comment",
    "entries.person_ref",
    "entries.note",
];

/// The longest value of each free-text field of a job order (4.1).
const FREE_TEXT_MAX: &[(&str, usize)] = &[
    ("title", 100),
    ("occupation.name", 200),
    ("occupation.alias", 200),
    ("employer.name", 300),
    ("contact.name", 200),
    ("coordinator.name", 200),
    ("descriptions.tasks", 5000),
    ("descriptions.qualifications_and_pay", 5000),
    ("descriptions.working_hours", 5000),
    ("status_comment", 5000),
];

/// Identifiers, not free text (5.3): ids (a UUID, the request id, the
/// coordinator's id), codes (a unit's, the occupation's), a P-number, a
/// phone number and an e-mail address may hold digits that look like a CPR
/// number and are passed on as they are (an address or a number that holds
/// a real one is refused at intake); so are numbers (a version, a count of
/// positions).
const IDENTIFIERS: &[&str] = &[
    "job_order_id",
    "mediation_id",
    "request_id",
    "id",
    "code",
    "p_number",
    "phone",
    "email",
];

const TIMESTAMPS: &[&str] = &[
    "created_at",
    "updated_at",
    "registered_at",
    "status_changed_at",
];

/// What the responsible unit's view adds to the snapshot.
const EXTRAS: &[&str] = &[
    "coordinator_reassignment_needed",
    "expired_at",
    "undecided_candidates",
];

/// Put in front of every text only the responsible unit may see.
const MARK: char = '¤';
/// The value of every unknown field: never forwarded (section 3).
const UNKNOWN: &str = "¤X¤ unknown field";

const JOB_ORDER: InboundType = InboundType::JobOrderSnapshot;
const MEDIATION_LOG: InboundType = InboundType::MediationLogSnapshot;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // No regression files: this binary writes nothing into the tree.
        failure_persistence: None,
        // ChaCha costs most of the time of a debug build; these are tests.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The CPR oracle (5.3): DDMMYYNNNN or DDMMYY-NNNN with no digit right before
// or after it, DDMMYY a calendar date of a year 00–99 (29 February when the
// year is divisible by four).

fn cpr_runs(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    let is_date = |s: usize| {
        let n = |k: usize| u32::from(b[s + k] - b'0') * 10 + u32::from(b[s + k + 1] - b'0');
        NaiveDate::from_ymd_opt(2000 + n(4) as i32, n(2), n(0)).is_some()
    };
    let mut out = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        if run.len() == 10 && is_date(run.start) {
            out.push(run.clone());
        } else if run.len() == 6 && b.get(run.end) == Some(&b'-') {
            if let Some(next) = runs.get(k + 1) {
                if next.start == run.end + 1 && next.len() == 4 && is_date(run.start) {
                    out.push(run.start..next.end);
                }
            }
        }
    }
    out
}

/// `text` with every CPR-like run replaced by `[CPR]`.
fn oracle_redact(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for run in cpr_runs(text) {
        out.push_str(&text[last..run.start]);
        out.push_str("[CPR]");
        last = run.end;
    }
    out.push_str(&text[last..]);
    out
}

#[test]
fn the_cpr_oracle_of_these_tests_reads_5_3_as_the_examples_do() {
    for cpr in [
        "010190-1234",
        "0101901234",
        "cpr 311299-0000, ring",
        "Født 290200-1111",
        "æøå0101901234ÆØÅ",
        "x-010190-1234-y",
    ] {
        assert_eq!(cpr_runs(cpr).len(), 1, "{cpr}");
    }
    for not in [
        "320190-1234",
        "011390-1234",
        "000190-1234",
        "290201-1234",
        "310490-1234",
        "01019012345",
        "10101901234",
        "010190-12345",
        "010190 1234",
        "010190-123",
        "ordre 12345678",
    ] {
        assert!(cpr_runs(not).is_empty(), "{not}");
    }
    assert_eq!(
        oracle_redact("a 010190-1234 b 0202021234."),
        "a [CPR] b [CPR]."
    );
}

// ---------------------------------------------------------------------------
// Generators of valid snapshots (contract 4.1, 4.2).

/// `(type, code)` of a unit as on the wire.
type WireUnit = (String, String);

fn unit_json(u: &WireUnit) -> Value {
    json!({"type": u.0, "code": u.1})
}

fn wire_unit(v: &Value) -> WireUnit {
    (
        v["type"].as_str().unwrap_or_default().to_owned(),
        v["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The 98 municipality codes of the reference data.
fn municipality_codes() -> &'static [u16] {
    static CODES: OnceLock<Vec<u16>> = OnceLock::new();
    CODES.get_or_init(|| {
        include_str!("../reference/municipalities.csv")
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(',')?.0.trim().parse().ok())
            .collect()
    })
}

fn jobcenter() -> BoxedStrategy<WireUnit> {
    (
        select(municipality_codes()),
        prop_oneof![3 => Just(0u8), 1 => 1u8..100],
    )
        .prop_map(|(m, sub)| ("jobcenter".to_owned(), format!("{m:03}{sub:02}")))
        .boxed()
}

fn akasse() -> BoxedStrategy<WireUnit> {
    re("[0-9]{1,10}")
        .prop_map(|code| ("akasse".to_owned(), code))
        .boxed()
}

fn any_unit() -> BoxedStrategy<WireUnit> {
    prop_oneof![
        2 => jobcenter(),
        2 => akasse(),
        1 => re("[0-9]{1,10}").prop_map(|code| ("workindenmark".to_owned(), code)),
    ]
    .boxed()
}

fn changed_by() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"kind": "employer"})),
        Just(json!({"kind": "system"})),
        any_unit().prop_map(|u| json!({"kind": "unit", "unit": unit_json(&u)})),
    ]
    .boxed()
}

/// 8 digits whose weighted sum (2,7,6,5,4,3,2,1) is divisible by 11.
fn cvr() -> BoxedStrategy<String> {
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

fn date() -> BoxedStrategy<String> {
    (2000i32..2100, 1u32..=12, 1u32..=31)
        .prop_filter_map("a calendar date", |(y, m, d)| {
            NaiveDate::from_ymd_opt(y, m, d).map(|d| d.format("%Y-%m-%d").to_string())
        })
        .boxed()
}

fn timestamp() -> BoxedStrategy<String> {
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

fn uuid_text() -> BoxedStrategy<String> {
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
fn cpr_number() -> BoxedStrategy<String> {
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
fn cpr_no_date() -> BoxedStrategy<String> {
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
fn piece() -> BoxedStrategy<String> {
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
fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .expect("a valid regex")
        .boxed()
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Free text of 1 to `max` characters that is not blank; now and then as
/// long as the contract allows.
fn free_text(max: usize) -> BoxedStrategy<String> {
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
fn restricted_text(tag: char, max: usize) -> BoxedStrategy<String> {
    free_text(max - 4)
        .prop_map(move |t| format!("{MARK}{tag}{MARK} {t}"))
        .boxed()
}

/// An optional text: now and then empty.
fn optional_text(text: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![1 => Just(String::new()), 6 => text].boxed()
}

/// How an optional field is written: left out, `null`, or a value.
#[derive(Debug, Clone)]
enum Opt<T> {
    Omitted,
    Null,
    Some(T),
}

fn opt<T: Clone + std::fmt::Debug + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Opt<T>> {
    prop_oneof![1 => Just(Opt::Omitted), 1 => Just(Opt::Null), 3 => s.prop_map(Opt::Some)].boxed()
}

fn put<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Opt<T>) {
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

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => unreachable!("built as an object"),
    }
}

/// An e-mail address holding no CPR number (one that does is refused).
fn email() -> BoxedStrategy<String> {
    re("[a-zA-Z0-9æøå._+-]{1,20}@[a-z0-9-]{1,12}(\\.[a-z]{2,6}){1,2}")
        .prop_filter("no CPR number in an e-mail address", |s| {
            cpr_runs(s).is_empty()
        })
        .boxed()
}

/// A phone number holding no CPR number (one that does is refused).
fn phone() -> BoxedStrategy<String> {
    prop_oneof![re("[0-9]{8}"), re("\\+[0-9]{8,15}")]
        .prop_filter("no CPR number in a phone number", |s| {
            cpr_runs(s).is_empty()
        })
        .boxed()
}

fn contact() -> BoxedStrategy<Value> {
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

fn occupation() -> BoxedStrategy<Value> {
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

fn employer() -> BoxedStrategy<Value> {
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

fn coordinator() -> BoxedStrategy<Value> {
    (free_text(100), free_text(200))
        .prop_map(|(id, name)| json!({"id": id, "name": name}))
        .boxed()
}

fn descriptions() -> BoxedStrategy<Value> {
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

fn version() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => (1u64..1000).prop_map(Value::from),
        1 => (1u64..=i64::MAX as u64).prop_map(Value::from),
        1 => (1u32..1000).prop_map(|v| Value::from(f64::from(v))),
    ]
    .boxed()
}

/// `continuous`, `positions` and `expected_start` that fit together.
fn continuity() -> BoxedStrategy<(bool, Opt<Value>, Opt<String>)> {
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
fn status() -> BoxedStrategy<(&'static str, Opt<&'static str>)> {
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

const SCOPES: &[&str] = &[
    "internal",
    "neighbours",
    "recruitment_community",
    "national",
    "selected",
];

/// A responsible unit and sharing that fits it: `internal` lists no unit
/// (and may leave `units` out), any other scope one or more, no duplicates,
/// never the responsible unit, only a-kasser when an a-kasse is responsible.
fn responsible_and_sharing() -> BoxedStrategy<(WireUnit, Value)> {
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
struct Message {
    event: Value,
    pretty: bool,
}

impl Message {
    fn body(&self) -> Vec<u8> {
        if self.pretty {
            serde_json::to_vec_pretty(&self.event).unwrap()
        } else {
            serde_json::to_vec(&self.event).unwrap()
        }
    }

    fn data(&self) -> &Value {
        &self.event["data"]
    }
}

/// The envelope's own parts: id, time, datacontenttype, how the subject is
/// written, an unknown attribute, pretty printing.
type EnvelopeParts = (String, Opt<String>, bool, u8, bool, bool);

fn envelope_parts() -> BoxedStrategy<EnvelopeParts> {
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

fn envelope(kind: InboundType, data: Value, parts: EnvelopeParts) -> Message {
    let (id, time, content_type, subject_case, unknown, pretty) = parts;
    let order_id = data["job_order_id"].as_str().unwrap_or_default();
    let subject = match subject_case {
        0 => order_id.to_owned(),
        1 => order_id.to_uppercase(),
        _ => order_id.to_lowercase(),
    };
    let mut m = object(json!({
        "specversion": "1.0",
        "id": id,
        "source": "/dfdg",
        "type": kind.as_str(),
        "subject": subject,
    }));
    put(&mut m, "time", time);
    if content_type {
        m.insert("datacontenttype".into(), "application/json".into());
    }
    if unknown {
        m.insert("x_unknown".into(), UNKNOWN.into());
    }
    m.insert("data".into(), data);
    Message {
        event: Value::Object(m),
        pretty,
    }
}

/// A valid job order snapshot event (contract 4.1).
fn job_order() -> BoxedStrategy<Message> {
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
fn person_ref() -> BoxedStrategy<String> {
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

const ENTRY_STATUSES: &[&str] = &[
    "awaiting_approval",
    "available_to_company",
    "hired",
    "not_hired",
    "withdrawn",
];

/// Who registered an entry: one of the order's units (by index), or now
/// and then another unit.
#[derive(Debug, Clone)]
enum RegisteredBy {
    OrderUnit(Index),
    Other(WireUnit),
}

/// One entry; `registered_by` is filled in by [`order_and_log`].
fn entry() -> BoxedStrategy<(Value, RegisteredBy)> {
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
fn order_units(data: &Value) -> Vec<WireUnit> {
    let mut units = vec![wire_unit(&data["responsible_unit"])];
    if let Some(shared) = data["sharing"]["units"].as_array() {
        units.extend(shared.iter().map(wire_unit));
    }
    units
}

/// A valid job order and a valid log of it (contract 4.2), whose entries
/// are mostly registered by the order's units.
fn order_and_log() -> BoxedStrategy<(Message, Message)> {
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

fn extras() -> BoxedStrategy<OrderExtras> {
    (
        any::<bool>(),
        proptest::option::of(0i64..4_000_000_000),
        0i32..1000,
    )
        .prop_map(|(needed, expired, undecided)| OrderExtras {
            coordinator_reassignment_needed: needed,
            expired_at: expired.map(|s| Utc.timestamp_opt(s, 0).unwrap()),
            undecided_candidates: undecided,
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Arbitrary input and mutations.

/// The field names of the contract, so that arbitrary objects reach the
/// deeper checks now and then.
const FIELD_NAMES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "data",
    "job_order_id",
    "version",
    "request_id",
    "origin",
    "changed_by",
    "kind",
    "unit",
    "code",
    "title",
    "occupation",
    "name",
    "alias",
    "employer",
    "cvr",
    "p_number",
    "conflict_affected",
    "contact",
    "email",
    "phone",
    "responsible_unit",
    "coordinator",
    "coordinator_allowed",
    "descriptions",
    "tasks",
    "qualifications_and_pay",
    "working_hours",
    "continuous",
    "positions",
    "expected_start",
    "mediation_deadline",
    "status",
    "status_reason",
    "status_comment",
    "sharing",
    "scope",
    "units",
    "created_at",
    "updated_at",
    "entries",
    "mediation_id",
    "person_ref",
    "registered_by",
    "registered_at",
    "status_changed_at",
    "status_changed_by",
    "searchable_cv",
    "cv_active",
    "protected_identity",
    "note",
];

/// A string of any characters but the restricted mark.
fn arbitrary_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>().prop_map(|s| s.replace(MARK, "?")),
        1 => select(vec![
            "1.0", "dk.dfdg.joborder.snapshot", "dk.dfdg.mediationlog.snapshot", "jobcenter",
            "akasse", "workindenmark", "15300", "1234", "29875316", "open", "closed", "internal",
            "national", "employer", "unit", "system", "jobag", "application/json",
            "2026-11-22T09:30:00Z", "2026-11-22", "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00",
            "0101901234", "", " ", "\u{feff}",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        arbitrary_string().prop_map(Value::from),
    ];
    let key = prop_oneof![
        select(FIELD_NAMES).prop_map(String::from),
        re("[a-z_]{1,8}")
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A change to a value of the event.
#[derive(Debug, Clone)]
enum Edit {
    Remove(Index),
    Null(Index),
    Replace(Index, Value),
    /// A value of the contract's vocabulary that may not fit the field.
    Retext(Index, &'static str),
    /// One digit of a string changed (a CVR, a unit code, a date).
    Digit(Index, Index, u8),
    Huge(Index, usize, char),
}

/// Strings that break one rule or another where they land.
const VOCABULARY: &[&str] = &[
    "",
    " ",
    "\u{feff}",
    "15300",
    "99900",
    "10200",
    "00000",
    "1530",
    "153000",
    "1234",
    "12345678901",
    "29875316",
    "29875317",
    "12345675",
    "1012345678",
    "101234567",
    "a@b",
    "a@@b.dk",
    "x@y.dk",
    "a b@c.dk",
    "+4512345678",
    "1234567",
    "+451234567",
    "43 21 23 45",
    "open",
    "closed",
    "temporarily_inactive",
    "under_processing",
    "need_fulfilled",
    "enough_referrals",
    "deadline_expired",
    "other",
    "internal",
    "neighbours",
    "national",
    "selected",
    "jobcenter",
    "akasse",
    "workindenmark",
    "employer",
    "unit",
    "system",
    "jobag",
    "2026-02-30",
    "2026-11-22",
    "2026-11-22T09:30:00Z",
    "2026-11-22 09:30:00Z",
    "2026-11-22T09:30:60Z",
    "0101901234",
    "010190-1234",
    "awaiting_approval",
    "available_to_company",
    "hired",
    "withdrawn",
    "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00",
    "dk.dfdg.joborder.snapshot",
    "dk.dfdg.mediationlog.snapshot",
    "1.0",
    "application/json",
];

/// A change to the bytes of the body.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(Index),
    Flip(Index, u8),
}

fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        2 => any::<Index>().prop_map(Edit::Remove),
        2 => any::<Index>().prop_map(Edit::Null),
        3 => (any::<Index>(), arbitrary_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        3 => (any::<Index>(), select(VOCABULARY)).prop_map(|(i, t)| Edit::Retext(i, t)),
        2 => (any::<Index>(), any::<Index>(), 0u8..10).prop_map(|(i, k, d)| Edit::Digit(i, k, d)),
        1 => (
            any::<Index>(),
            select(vec![101usize, 201, 5001, 140_000]),
            select(vec!['x', 'æ', ' ']),
        )
            .prop_map(|(i, n, c)| Edit::Huge(i, n, c)),
    ]
    .boxed()
}

fn damage() -> BoxedStrategy<Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        2 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Damage::Flip(i, m)),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    At(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::At(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::At(i) => &mut v[*i],
    })
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::At(i) => v.get(*i),
    })
}

fn apply_edit(event: &mut Value, edit: &Edit) {
    let mut all = Vec::new();
    paths(event, &mut Vec::new(), &mut all);
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match edit {
        Edit::Remove(i) => {
            let path = pick(i);
            let (last, parent) = path.split_last().unwrap();
            match (at(event, parent), last) {
                (Value::Object(m), Seg::Key(k)) => {
                    m.remove(k);
                }
                (Value::Array(a), Seg::At(i)) => {
                    a.remove(*i);
                }
                _ => unreachable!("a path leads to its parent"),
            }
        }
        Edit::Null(i) => *at(event, &pick(i)) = Value::Null,
        Edit::Replace(i, v) => *at(event, &pick(i)) = v.clone(),
        Edit::Retext(i, t) => *at(event, &pick(i)) = (*t).into(),
        Edit::Digit(i, k, d) => {
            // Among the strings of digits: CVRs, unit codes, P-numbers,
            // phone numbers.
            let with_digits: Vec<&Vec<Seg>> = all
                .iter()
                .filter(|p| {
                    get(event, p).and_then(Value::as_str).is_some_and(|s| {
                        !s.is_empty()
                            && s.trim_start_matches('+')
                                .bytes()
                                .all(|b| b.is_ascii_digit())
                    })
                })
                .collect();
            if with_digits.is_empty() {
                return;
            }
            let path = i.get(&with_digits);
            if let Value::String(s) = at(event, path) {
                let digits: Vec<usize> = s
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_digit())
                    .map(|(n, _)| n)
                    .collect();
                if !digits.is_empty() {
                    let n = *k.get(&digits);
                    s.replace_range(n..n + 1, &d.to_string());
                }
            }
        }
        Edit::Huge(i, n, c) => *at(event, &pick(i)) = c.to_string().repeat(*n).into(),
    }
}

fn apply_damage(mut body: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::None => {}
        Damage::Truncate(i) => body.truncate(i.index(body.len())),
        Damage::Flip(i, mask) => {
            let i = i.index(body.len());
            body[i] ^= mask;
        }
    }
    body
}

// ---------------------------------------------------------------------------
// Checks.

fn parse(body: &[u8], expects: InboundType) -> Result<Payload, Rejection> {
    jobsync::worker::parse(body, expects, "jobsync.properties").map(|m| m.payload)
}

/// A rejection with a code of the contract's table that a message can get
/// without anything stored (`allowed`), and a message naming the field.
fn check_rejection(r: &Rejection, allowed: &[&str]) -> Result<(), TestCaseError> {
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

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The path without array indices, as [`FREE_TEXT`] writes it.
fn schema_path(path: &str) -> String {
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
fn last_key(path: &str) -> String {
    let schema = schema_path(path);
    schema.rsplit('.').next().unwrap_or_default().to_owned()
}

/// The view has what the snapshot has at `path`: free text with every CPR
/// number replaced, timestamps as the same instant, ids in lower case,
/// sharing units in any order, fields the snapshot left out as their
/// defaults, unknown fields dropped.
fn same_as_input(path: &str, input: &Value, view: &Value) -> Result<(), TestCaseError> {
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
fn check_shared_paths(v: &Value, path: &str) -> Result<(), TestCaseError> {
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
fn objects<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Map<String, Value>)>) {
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
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
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

fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

/// The view of a unit that is not responsible (5.2): only the fields on the
/// list, all of them, each as the responsible unit sees it; no restricted
/// field or text anywhere, no unit but the responsible one. `strict` for
/// generated snapshots, whose texts are known: then no e-mail address, phone
/// number or P-number either.
fn check_shared_view(
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
fn mask_identifiers(v: &mut Value) {
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
fn check_no_cpr(what: &str, view: &Value) -> Result<(), TestCaseError> {
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

fn wire_of(u: &Unit) -> WireUnit {
    (u.kind().as_str().to_owned(), u.code().to_owned())
}

/// The views of an order, as the fan-out hands them to its units on first
/// sight: the responsible unit gets everything (compared with the snapshot
/// when `strict`), every other unit the shared view; no view carries a CPR
/// number.
fn check_order_views(
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
            check_no_cpr(&what, &n.view.data)?;
            if *unit == responsible {
                prop_assert_eq!(&n.view, &responsible_view, "the responsible unit's view");
            } else {
                check_shared_view(&n.view.data, &responsible_view.data, snapshot, strict)?;
            }
        }
    }
    let mut expected = shared.clone();
    expected.insert(responsible.clone());
    prop_assert_eq!(told, expected, "every unit that can see the order is told");

    let r = &responsible_view.data;
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
fn check_log_views(
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
        check_no_cpr(&what, &view.data)?;
        let entries = view.data["entries"].as_array().cloned().unwrap_or_default();
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
            view.data["total"].as_u64(),
            Some(entries.len() as u64),
            "{}: total",
            what
        );
        prop_assert_eq!(
            view.data["awaiting_approval"].as_u64(),
            Some(awaiting),
            "{}: awaiting_approval",
            what
        );
        prop_assert_eq!(
            view.data["undecided"].as_u64(),
            Some(undecided),
            "{}: undecided",
            what
        );
        prop_assert!(
            !serde_json::to_string(&view.data).unwrap().contains(UNKNOWN),
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

fn job_order_of(payload: Payload) -> jobsync::domain::joborder::JobOrder {
    match payload {
        Payload::JobOrder(o) => *o,
        Payload::MediationLog(_) => panic!("a job order was parsed as a log"),
    }
}

fn log_of(payload: Payload) -> jobsync::domain::mediationlog::MediationLog {
    match payload {
        Payload::MediationLog(l) => l,
        Payload::JobOrder(_) => panic!("a log was parsed as a job order"),
    }
}

/// Parses a generated valid message: it must parse, and the other queue
/// rejects it as `type.unknown`.
fn parse_valid(m: &Message, expects: InboundType) -> Result<Payload, TestCaseError> {
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
fn check_mutated(
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

// ---------------------------------------------------------------------------
// Property 1: the parser never panics, rejects only with contract codes and
// accepts every valid message.

fn token_soup() -> BoxedStrategy<Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b" ",
        b"null",
        b"true",
        b"-0",
        b"1e999",
        b"0.5",
        b"18446744073709551616",
        b"\"specversion\"",
        b"\"1.0\"",
        b"\"type\"",
        b"\"dk.dfdg.joborder.snapshot\"",
        b"\"dk.dfdg.mediationlog.snapshot\"",
        b"\"data\"",
        b"\"id\"",
        b"\"source\"",
        b"\"subject\"",
        b"\"\\ud800\"",
        b"\"\\u0000\"",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"\xa6",
        "æ".as_bytes(),
    ];
    proptest::collection::vec(select(tokens), 0..60)
        .prop_map(|t| t.concat())
        .boxed()
}

fn arbitrary_event() -> BoxedStrategy<Vec<u8>> {
    (
        select(vec![
            "dk.dfdg.joborder.snapshot",
            "dk.dfdg.mediationlog.snapshot",
            "dk.dfdg.joborder.deleted",
        ]),
        arbitrary_json(),
        proptest::collection::btree_map(select(FIELD_NAMES), arbitrary_json(), 0..12),
    )
        .prop_map(|(kind, id, fields)| {
            let data: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let subject = data.get("job_order_id").cloned().unwrap_or(id);
            serde_json::to_vec(&json!({
                "specversion": "1.0",
                "id": "m-1",
                "source": "/dfdg",
                "type": kind,
                "subject": subject,
                "data": data,
            }))
            .unwrap()
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(1024))]

    /// Random bytes and soups of JSON tokens (invalid UTF-8, lone
    /// surrogates, huge numbers) for either queue.
    #[test]
    fn arbitrary_bytes_are_parsed_or_rejected_with_a_contract_code(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            token_soup(),
        ],
    ) {
        for expects in [JOB_ORDER, MEDIATION_LOG] {
            if let Err(r) = parse(&body, expects) {
                check_rejection(&r, BODY_CODES)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Any JSON value as the body, and envelopes of either type whose data
    /// is an object of the contract's field names with any values.
    #[test]
    fn arbitrary_json_is_parsed_or_rejected_with_a_contract_code(
        body in prop_oneof![
            arbitrary_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            arbitrary_event(),
        ],
    ) {
        if let Err(r) = parse(&body, JOB_ORDER) {
            check_rejection(&r, JOB_ORDER_CODES)?;
        }
        if let Err(r) = parse(&body, MEDIATION_LOG) {
            check_rejection(&r, LOG_CODES)?;
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// No false rejection: every snapshot generated per 4.1/4.2 parses, and
    /// only on its own queue.
    #[test]
    fn every_valid_job_order_and_mediation_log_parses((order, log) in order_and_log()) {
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        prop_assert_eq!(parsed.wire.title, order.data()["title"].as_str().unwrap(), "data.title");
        let parsed = log_of(parse_valid(&log, MEDIATION_LOG)?);
        prop_assert_eq!(
            parsed.entries.len(),
            log.data()["entries"].as_array().unwrap().len(),
            "data.entries"
        );
    }

    /// A valid order with an unknown field nested `depth` arrays deep: the
    /// body nests `depth + 2` levels, accepted up to 64 (brackets inside
    /// strings do not count), `json.malformed` beyond.
    #[test]
    fn nesting_is_accepted_up_to_64_levels_and_malformed_beyond(
        order in job_order(),
        depth in prop_oneof![55usize..75, 1usize..200],
    ) {
        let mut event = order.event.clone();
        // `depth` arrays, one in the other.
        event["data"]["x_deep"] = (1..depth).fold(json!([]), |v, _| json!([v]));
        let body = Message { event, pretty: order.pretty }.body();
        let outcome = parse(&body, JOB_ORDER);
        if depth + 2 <= 64 {
            prop_assert!(outcome.is_ok(), "{} levels were rejected: {:?}", depth + 2, outcome.err());
        } else {
            prop_assert_eq!(
                outcome.err().map(|r| r.code.as_str()),
                Some("json.malformed"),
                "{} levels",
                depth + 2
            );
        }
    }
}

proptest! {
    #![proptest_config(config(384))]

    /// A valid order with up to two fields removed, nulled, replaced (any
    /// JSON, a word of the contract, a digit changed, a huge string), then
    /// maybe truncated or with a byte flipped. What still parses keeps the
    /// promises of the views.
    #[test]
    fn mutated_job_orders_are_parsed_or_rejected_with_a_contract_code(
        (order, log) in order_and_log(),
        edits in proptest::collection::vec(edit(), 0..3),
        damage in damage(),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let Some(parsed) = check_mutated(&order, &edits, &damage, JOB_ORDER, JOB_ORDER_CODES)? else {
            return Ok(());
        };
        let parsed = job_order_of(parsed);
        let snapshot = serde_json::to_value(&parsed.wire).unwrap();
        check_order_views(&parsed, &snapshot, extras, false)?;
        // The log of the order, with the units the mutated order has.
        if let Ok(l) = parse(&log.body(), MEDIATION_LOG) {
            check_log_views(&log_of(l), log.data(), &parsed, &outsider, false)?;
        }
    }

    /// The same for a valid log.
    #[test]
    fn mutated_mediation_logs_are_parsed_or_rejected_with_a_contract_code(
        (order, log) in order_and_log(),
        edits in proptest::collection::vec(edit(), 0..3),
        damage in damage(),
        outsider in any_unit(),
    ) {
        let Some(parsed) = check_mutated(&log, &edits, &damage, MEDIATION_LOG, LOG_CODES)? else {
            return Ok(());
        };
        let order = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_log_views(&log_of(parsed), log.data(), &order, &outsider, false)?;
    }
}

/// Found by `mutated_mediation_logs_are_parsed_or_rejected_with_a_contract_code`:
/// the body is read as a stream, so a field of the wrong type before the
/// point where a body is cut off wins over the cut, and the dead letter says
/// `schema.invalid` (`type: invalid type: sequence, expected a string`) for
/// a body that is no JSON at all.
#[test]
fn a_truncated_body_is_malformed_even_after_a_field_of_the_wrong_type() {
    let body =
        br#"{"specversion":"1.0","id":"m1","source":"/dfdg","type":["x"],"subject":"s","data":{"#;
    let r = parse(body, JOB_ORDER).expect_err("a truncated body is rejected");
    assert_eq!(r.code.as_str(), "json.malformed", "{r}");
}

// ---------------------------------------------------------------------------
// Property 2: the views show each unit what 5.2 allows it, and no CPR number.

/// A text dense with CPR numbers and runs that only look like them.
fn cpr_dense_text() -> BoxedStrategy<String> {
    (
        re("[a-zæøå]"),
        proptest::collection::vec(
            prop_oneof![
                3 => cpr_number(),
                1 => cpr_no_date(),
                1 => re("[0-9]{1,11}"),
                2 => select(vec!["", " ", "-", "x", "æ", "\n", "\"", "/"]).prop_map(String::from),
            ],
            1..25,
        ),
    )
        .prop_map(|(first, pieces)| first + &pieces.concat())
        .boxed()
}

proptest! {
    #![proptest_config(config(256))]

    /// Each unit that can see the order gets its view from the fan-out: the
    /// responsible unit all of the snapshot, any other unit the fields of
    /// 5.2 and nothing else; each unit's log view shows what 5.2 lets it.
    #[test]
    fn order_views_show_a_unit_that_is_not_responsible_only_what_5_2_allows(
        (order, log) in order_and_log(),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_order_views(&parsed, order.data(), extras, true)?;
        let parsed_log = log_of(parse_valid(&log, MEDIATION_LOG)?);
        check_log_views(&parsed_log, log.data(), &parsed, &outsider, true)?;
    }

    /// Free texts and notes dense with CPR numbers (and runs that only look
    /// like them): every one is replaced in every view, nothing else is.
    #[test]
    fn no_view_carries_a_cpr_number(
        (order, log) in order_and_log(),
        texts in proptest::collection::vec((select(FREE_TEXT_MAX), cpr_dense_text()), 1..6),
        notes in proptest::collection::vec(cpr_dense_text(), 0..4),
        extras in extras(),
        outsider in any_unit(),
    ) {
        let mut order = order;
        for ((path, max), text) in &texts {
            let (parent, key) = path.rsplit_once('.').map_or(("", *path), |(p, k)| (p, k));
            let data = &mut order.event["data"];
            let target = if parent.is_empty() { Some(data) } else { data.get_mut(parent) };
            if let Some(Value::Object(m)) = target {
                m.insert(key.to_owned(), truncate_chars(text, *max).into());
            }
        }
        let mut log = log;
        if let Some(entries) = log.event["data"]["entries"].as_array_mut() {
            for (e, note) in entries.iter_mut().zip(&notes) {
                e["note"] = note.clone().into();
            }
        }
        let parsed = job_order_of(parse_valid(&order, JOB_ORDER)?);
        check_order_views(&parsed, order.data(), extras, true)?;
        let parsed_log = log_of(parse_valid(&log, MEDIATION_LOG)?);
        check_log_views(&parsed_log, log.data(), &parsed, &outsider, true)?;
    }
}
