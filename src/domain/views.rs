//! The views of section 5.2: what each unit may see of an order and of its
//! mediation log, as pure functions of the stored state, with every CPR
//! number in free text replaced (section 5.3).
//!
//! A view is a JSON object (the `data` of a notification). Its *content
//! hash* leaves out what changes with every version (`version`,
//! `updated_at`), so that a unit is told only when something it can see
//! changed.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::cpr;
use super::fields::canonical_timestamp;
use super::mediationlog::{Counts, EntryStatus};
use super::unit::Unit;
use crate::contract::joborder::JobOrderData;
use crate::contract::mediationlog::MediationLogData;

/// A view with the number of CPR numbers replaced in it.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub data: Value,
    pub redactions: usize,
}

impl View {
    fn redacted(mut data: Value, free_text: &[&[&str]]) -> View {
        let redactions = free_text
            .iter()
            .map(|path| redact_at(&mut data, path))
            .sum();
        View { data, redactions }
    }

    /// SHA-256 of the view without the fields that change with every
    /// version: equal hashes mean the unit sees nothing new.
    pub fn content_hash(&self) -> Vec<u8> {
        // Serialized straight into the hasher, the two keys skipped: no copy
        // of the view (this runs for every unit of every change).
        let mut hasher = Sha256::new();
        match self.data.as_object() {
            Some(object) => serde_json::to_writer(&mut hasher, &WithoutVolatile(object)),
            None => serde_json::to_writer(&mut hasher, &self.data),
        }
        .expect("JSON values serialize into a hasher");
        hasher.finalize().to_vec()
    }
}

/// A view's object without `version` and `updated_at`, serialized as the
/// object would be with them removed.
struct WithoutVolatile<'a>(&'a Map<String, Value>);

impl serde::Serialize for WithoutVolatile<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.0 {
            if k != "version" && k != "updated_at" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The free-text fields of an order view, by path. Identifiers (ids, CVR,
/// P-number, codes) are neither redacted nor rejected (section 5.3); e-mail
/// addresses and phone numbers are checked at intake; dates and
/// enumerations are no text.
const ORDER_FREE_TEXT: &[&[&str]] = &[
    &["title"],
    &["occupation", "name"],
    &["occupation", "alias"],
    &["employer", "name"],
    &["contact", "name"],
    &["coordinator", "name"],
    &["descriptions", "tasks"],
    &["descriptions", "qualifications_and_pay"],
    &["descriptions", "working_hours"],
    &["status_comment"],
];

/// What a view of an order adds to the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderExtras {
    pub coordinator_reassignment_needed: bool,
    pub expired_at: Option<DateTime<Utc>>,
    pub undecided_candidates: i32,
}

/// The responsible unit's view: everything in the snapshot, plus
/// `coordinator_reassignment_needed`, `expired_at` and
/// `undecided_candidates`.
pub fn responsible_order_view(snapshot: &JobOrderData, extras: OrderExtras) -> View {
    let mut data = serde_json::to_value(snapshot).expect("wire structs serialize");
    let object = data.as_object_mut().expect("a snapshot is an object");
    object.insert(
        "coordinator_reassignment_needed".into(),
        extras.coordinator_reassignment_needed.into(),
    );
    object.insert("expired_at".into(), timestamp(extras.expired_at));
    object.insert(
        "undecided_candidates".into(),
        extras.undecided_candidates.into(),
    );
    View::redacted(data, ORDER_FREE_TEXT)
}

/// The view of any other unit that can see the order: never the contact
/// person, the qualifications/pay and working-hours texts, the status
/// comment, the P-number or the other units it is shared with.
pub fn shared_order_view(s: &JobOrderData, expired_at: Option<DateTime<Utc>>) -> View {
    let data = json!({
        "job_order_id": s.job_order_id,
        "version": s.version,
        "request_id": s.request_id,
        "title": s.title,
        "occupation": s.occupation,
        "employer": {"cvr": s.employer.cvr, "name": s.employer.name},
        "responsible_unit": s.responsible_unit,
        "coordinator": s.coordinator,
        "coordinator_allowed": s.coordinator_allowed,
        "descriptions": {"tasks": s.descriptions.tasks},
        "continuous": s.continuous,
        "positions": s.positions,
        "expected_start": s.expected_start,
        "mediation_deadline": s.mediation_deadline,
        "status": s.status,
        "status_reason": s.status_reason,
        "sharing": {"scope": s.sharing.scope},
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "expired_at": timestamp(expired_at),
    });
    View::redacted(data, ORDER_FREE_TEXT)
}

/// The units that can see the order besides the responsible one.
pub fn shared_units(snapshot: &JobOrderData) -> Vec<Unit> {
    snapshot
        .sharing
        .units
        .iter()
        .filter_map(|u| Unit::from_stored(&u.kind, &u.code))
        .collect()
}

/// The responsible unit of a stored snapshot.
pub fn responsible_unit(snapshot: &JobOrderData) -> Unit {
    Unit::from_stored(
        &snapshot.responsible_unit.kind,
        &snapshot.responsible_unit.code,
    )
    .expect("a stored snapshot was validated")
}

/// `viewer`'s view of the log of an order whose responsible unit is
/// `responsible`: every entry for the responsible unit; only the entries it
/// registered, without `note`, for any other unit. The counts are over the
/// entries shown.
pub fn log_view(log: &MediationLogData, viewer: &Unit, responsible: &Unit) -> View {
    let full = viewer == responsible;
    let mut entries = Vec::new();
    let mut shown = Vec::new();
    for e in &log.entries {
        let registered_by = Unit::from_stored(&e.registered_by.kind, &e.registered_by.code);
        if !full && registered_by.as_ref() != Some(viewer) {
            continue;
        }
        let mut value = serde_json::to_value(e).expect("wire structs serialize");
        if !full {
            value.as_object_mut().expect("an object").remove("note");
        }
        entries.push(value);
        let status = EntryStatus::parse(&e.status).expect("a stored log was validated");
        shown.push((status, e.cv_active));
    }
    let counts = Counts::of(shown);
    let data = json!({
        "job_order_id": log.job_order_id,
        "version": log.version,
        "entries": entries,
        "total": counts.total,
        "awaiting_approval": counts.awaiting_approval,
        "undecided": counts.undecided,
    });
    View::redacted(
        data,
        &[&["entries", "*", "person_ref"], &["entries", "*", "note"]],
    )
}

/// The units that see a log: the responsible unit and every unit with an
/// entry on it.
pub fn log_viewers(log: &MediationLogData, responsible: &Unit) -> Vec<Unit> {
    let mut units = vec![responsible.clone()];
    for e in &log.entries {
        if let Some(u) = Unit::from_stored(&e.registered_by.kind, &e.registered_by.code) {
            if !units.contains(&u) {
                units.push(u);
            }
        }
    }
    units
}

fn timestamp(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| canonical_timestamp(t).into())
}

/// Replaces CPR numbers in the string(s) at `path` (`*` walks an array).
fn redact_at(value: &mut Value, path: &[&str]) -> usize {
    let Some((head, rest)) = path.split_first() else {
        return match value {
            Value::String(s) => {
                let (text, n) = cpr::redact(s);
                if n > 0 {
                    *s = text.into_owned();
                }
                n
            }
            _ => 0,
        };
    };
    match (value, *head) {
        (Value::Array(items), "*") => items.iter_mut().map(|v| redact_at(v, rest)).sum(),
        (Value::Object(map), key) => map.get_mut(key).map_or(0, |v| redact_at(v, rest)),
        _ => 0,
    }
}

/// The object at `data`, for tests and callers that add fields.
pub fn as_object(view: &View) -> &Map<String, Value> {
    view.data.as_object().expect("views are objects")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A snapshot whose restricted fields all carry `RESTRICTED` and whose
    /// shared fields carry `text` (which may hold CPR numbers).
    fn snapshot(
        text: &str,
        restricted: &str,
        units: &[String],
        status_comment: bool,
    ) -> JobOrderData {
        let r = |s: &str| format!("RESTRICTED {restricted} {s}");
        let units: Vec<Value> = units
            .iter()
            .map(|c| json!({"type": "akasse", "code": c}))
            .collect();
        serde_json::from_value(json!({
            "job_order_id": "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00",
            "version": 7,
            "request_id": text,
            "origin": "jobag",
            "changed_by": {"kind": "unit", "unit": {"type": "akasse", "code": "777777"}},
            "title": text,
            "occupation": {"name": text, "alias": text, "code": null},
            "employer": {"cvr": "10150817", "p_number": "1003456789", "name": text, "conflict_affected": false},
            "contact": {"name": r("name"), "email": "restricted@example.dk", "phone": "+4543212345"},
            "responsible_unit": {"type": "jobcenter", "code": "15300"},
            "coordinator": {"id": "c-1", "name": text},
            "coordinator_allowed": true,
            "descriptions": {"tasks": text, "qualifications_and_pay": r("pay"), "working_hours": r("hours")},
            "continuous": false, "positions": 2, "expected_start": null, "mediation_deadline": null,
            "status": "open", "status_reason": null,
            "status_comment": if status_comment { Some(r("comment")) } else { None },
            "sharing": {"scope": "selected", "units": units},
            "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-21T08:00:00Z"
        }))
        .unwrap()
    }

    fn free_text() -> impl Strategy<Value = String> {
        // Danish letters, digits and punctuation, sometimes a CPR number.
        (
            "[a-zA-ZæøåÆØÅ0-9 .,:()-]{0,30}",
            proptest::option::of((1u32..=28, 1u32..=12, 0u32..100, 0u32..10_000, any::<bool>())),
            "[a-zA-ZæøåÆØÅ .,]{0,10}",
        )
            .prop_map(|(a, cpr, b)| {
                let cpr = cpr.map_or(String::new(), |(d, m, y, n, dash)| {
                    let sep = if dash { "-" } else { "" };
                    format!(" {d:02}{m:02}{y:02}{sep}{n:04} ")
                });
                format!("x{a}{cpr}{b}")
            })
    }

    proptest! {
        #[test]
        fn no_restricted_field_or_text_ever_reaches_a_shared_view(
            text in free_text(),
            restricted in "[A-Z]{8}",
            units in proptest::collection::btree_set("9[0-9]{4}", 1..5),
            status_comment in any::<bool>(),
        ) {
            let units: Vec<String> = units.into_iter().collect();
            let s = snapshot(&text, &restricted, &units, status_comment);
            let view = shared_order_view(&s, None);
            let out = serde_json::to_string(&view.data).unwrap();
            prop_assert!(!out.contains("RESTRICTED"), "{}", out);
            prop_assert!(!out.contains("restricted@example.dk"));
            prop_assert!(!out.contains("+4543212345"));
            prop_assert!(!out.contains("1003456789"), "no P-number");
            prop_assert!(!out.contains("777777"), "not who changed it");
            for u in &units {
                prop_assert!(!out.contains(u.as_str()), "no other unit: {}", u);
            }
            let keys: Vec<&str> = as_object(&view).keys().map(String::as_str).collect();
            for k in keys {
                prop_assert!(SHARED_KEYS.contains(&k), "unexpected field {}", k);
            }
        }

        #[test]
        fn no_cpr_number_survives_in_any_view(text in free_text()) {
            let s = snapshot(&text, "R", &["90000".to_owned()], true);
            let extras = OrderExtras { coordinator_reassignment_needed: false, expired_at: None, undecided_candidates: 0 };
            for view in [responsible_order_view(&s, extras), shared_order_view(&s, None)] {
                for path in ORDER_FREE_TEXT {
                    let mut v = &view.data;
                    for key in *path {
                        v = &v[*key];
                    }
                    if let Some(t) = v.as_str() {
                        prop_assert!(!cpr::contains(t), "{:?}: {}", path, t);
                    }
                }
            }
        }
    }

    /// The fields of the shared view (contract 5.2).
    const SHARED_KEYS: &[&str] = &[
        "job_order_id",
        "version",
        "request_id",
        "title",
        "occupation",
        "employer",
        "responsible_unit",
        "coordinator",
        "coordinator_allowed",
        "descriptions",
        "continuous",
        "positions",
        "expected_start",
        "mediation_deadline",
        "status",
        "status_reason",
        "sharing",
        "created_at",
        "updated_at",
        "expired_at",
    ];

    #[test]
    fn the_content_hash_is_that_of_the_view_without_version_and_updated_at() {
        let view = shared_order_view(&snapshot("Lager", "R", &["90000".to_owned()], false), None);
        let mut data = view.data.clone();
        let object = data.as_object_mut().unwrap();
        object.remove("version");
        object.remove("updated_at");
        let expected = Sha256::digest(serde_json::to_vec(&data).unwrap()).to_vec();
        assert_eq!(view.content_hash(), expected);
    }

    #[test]
    fn the_content_hash_ignores_version_and_updated_at_only() {
        let a = snapshot("Lager", "R", &["90000".to_owned()], false);
        let mut b = a.clone();
        b.version = 8;
        b.updated_at = "2026-11-22T08:00:00Z".into();
        assert_eq!(
            shared_order_view(&a, None).content_hash(),
            shared_order_view(&b, None).content_hash()
        );
        b.title = "Truck".into();
        assert_ne!(
            shared_order_view(&a, None).content_hash(),
            shared_order_view(&b, None).content_hash()
        );
    }
}
