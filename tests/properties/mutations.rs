//! Arbitrary input and mutations.

use super::*;

/// The field names of the contract, so that arbitrary objects reach the
/// deeper checks now and then.
pub(crate) const FIELD_NAMES: &[&str] = &[
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
pub(crate) fn arbitrary_string() -> BoxedStrategy<String> {
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

pub(crate) fn arbitrary_json() -> BoxedStrategy<Value> {
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
pub(crate) enum Edit {
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
pub(crate) const VOCABULARY: &[&str] = &[
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
pub(crate) enum Damage {
    None,
    Truncate(Index),
    Flip(Index, u8),
}

pub(crate) fn edit() -> BoxedStrategy<Edit> {
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

pub(crate) fn damage() -> BoxedStrategy<Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        2 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Damage::Flip(i, m)),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Key(String),
    At(usize),
}

pub(crate) fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
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

pub(crate) fn at<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::At(i) => &mut v[*i],
    })
}

pub(crate) fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::At(i) => v.get(*i),
    })
}

pub(crate) fn apply_edit(event: &mut Value, edit: &Edit) {
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

pub(crate) fn apply_damage(mut body: Vec<u8>, damage: &Damage) -> Vec<u8> {
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
