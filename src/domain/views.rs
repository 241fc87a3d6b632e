//! The views of section 5.2: what each unit may see of an order and of its
//! mediation log, as pure functions of the stored state, with every CPR
//! number in free text replaced (section 5.3).
//!
//! A view is one of the typed views of `contract::outbound` (the `data` of
//! a notification). Its *content hash* leaves out what changes with every version (`version`,
//! `updated_at`), so that a unit is told only when something it can see
//! changed.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cpr;
use super::fields::canonical_timestamp;
use super::mediationlog::{Counts, EntryStatus};
use super::unit::Unit;
use crate::contract::joborder::JobOrderData;
use crate::contract::mediationlog::MediationLogData;
use crate::contract::outbound::{
    self, Data, LogEntry, LogView, OrderView, SharedDescriptions, SharedEmployer, SharedOrderView,
    SharedSharing,
};

/// A view with the number of CPR numbers replaced in it.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub data: Data,
    pub redactions: usize,
}

impl View {
    /// SHA-256 of the view without the fields that change with every
    /// version: equal hashes mean the unit sees nothing new.
    pub fn content_hash(&self) -> Vec<u8> {
        // Serialized straight into the hasher: no copy of the view (this
        // runs for every unit of every change).
        let mut hasher = Sha256::new();
        outbound::write_content(&mut hasher, &self.data).expect("views serialize into a hasher");
        hasher.finalize().to_vec()
    }

    /// The first 8 bytes of [`View::content_hash`] in hex: a short tag of
    /// the content (an `ETag`'s).
    pub fn content_tag(&self) -> String {
        crate::trace::hex(&self.content_hash()[..8])
    }

    /// The view as a JSON value (for tests and tools; what is published is
    /// serialized from [`View::data`] directly).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.data).expect("views serialize")
    }
}

/// Replaces CPR numbers in `text`; how many.
fn redact(text: &mut String) -> usize {
    let (redacted, n) = cpr::redact(text);
    if n > 0 {
        *text = redacted.into_owned();
    }
    n
}

fn redact_opt(text: &mut Option<String>) -> usize {
    text.as_mut().map_or(0, redact)
}

/// What a view of an order adds to the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderExtras {
    pub coordinator_reassignment_needed: bool,
    pub expired_at: Option<DateTime<Utc>>,
    pub undecided_candidates: i32,
    /// Its service promises (section 11).
    pub promises: super::promises::Promises,
}

/// The responsible unit's view: everything in the snapshot, plus
/// `coordinator_reassignment_needed`, `expired_at` and
/// `undecided_candidates`. Every free-text field has its CPR numbers
/// replaced; identifiers (ids, CVR, P-number, codes) are neither redacted
/// nor rejected (section 5.3); e-mail addresses and phone numbers are
/// checked at intake; dates and enumerations are no text.
pub fn responsible_order_view(s: &JobOrderData, extras: OrderExtras) -> View {
    let mut v = OrderView {
        changed_by: (&s.changed_by).into(),
        contact: s.contact.as_ref().map(Into::into),
        continuous: s.continuous,
        coordinator: s.coordinator.as_ref().map(Into::into),
        coordinator_allowed: s.coordinator_allowed,
        coordinator_reassignment_needed: extras.coordinator_reassignment_needed,
        created_at: s.created_at.clone(),
        descriptions: (&s.descriptions).into(),
        employer: (&s.employer).into(),
        expected_start: s.expected_start.clone(),
        expired_at: extras.expired_at.map(canonical_timestamp),
        job_order_id: s.job_order_id.clone(),
        mediation_deadline: s.mediation_deadline.clone(),
        occupation: (&s.occupation).into(),
        origin: s.origin.clone(),
        positions: s.positions,
        promises: extras.promises.view(),
        request_id: s.request_id.clone(),
        responsible_unit: (&s.responsible_unit).into(),
        sharing: (&s.sharing).into(),
        status: s.status.clone(),
        status_comment: s.status_comment.clone(),
        status_reason: s.status_reason.clone(),
        title: s.title.clone(),
        undecided_candidates: extras.undecided_candidates,
        updated_at: s.updated_at.clone(),
        version: s.version,
    };
    let redactions = redact(&mut v.title)
        + redact(&mut v.occupation.name)
        + redact_opt(&mut v.occupation.alias)
        + redact(&mut v.employer.name)
        + v.contact.as_mut().map_or(0, |c| redact_opt(&mut c.name))
        + v.coordinator.as_mut().map_or(0, |c| redact(&mut c.name))
        + redact(&mut v.descriptions.tasks)
        + redact_opt(&mut v.descriptions.qualifications_and_pay)
        + redact_opt(&mut v.descriptions.working_hours)
        + redact_opt(&mut v.status_comment);
    View {
        data: Data::Order(Box::new(v)),
        redactions,
    }
}

/// The view of any other unit that can see the order: never the contact
/// person, the qualifications/pay and working-hours texts, the status
/// comment, the P-number or the other units it is shared with.
pub fn shared_order_view(s: &JobOrderData, expired_at: Option<DateTime<Utc>>) -> View {
    let mut v = SharedOrderView {
        continuous: s.continuous,
        coordinator: s.coordinator.as_ref().map(Into::into),
        coordinator_allowed: s.coordinator_allowed,
        created_at: s.created_at.clone(),
        descriptions: SharedDescriptions {
            tasks: s.descriptions.tasks.clone(),
        },
        employer: SharedEmployer {
            cvr: s.employer.cvr.clone(),
            name: s.employer.name.clone(),
        },
        expected_start: s.expected_start.clone(),
        expired_at: expired_at.map(canonical_timestamp),
        job_order_id: s.job_order_id.clone(),
        mediation_deadline: s.mediation_deadline.clone(),
        occupation: (&s.occupation).into(),
        positions: s.positions,
        request_id: s.request_id.clone(),
        responsible_unit: (&s.responsible_unit).into(),
        sharing: SharedSharing {
            scope: s.sharing.scope.clone(),
        },
        status: s.status.clone(),
        status_reason: s.status_reason.clone(),
        title: s.title.clone(),
        updated_at: s.updated_at.clone(),
        version: s.version,
    };
    let redactions = redact(&mut v.title)
        + redact(&mut v.occupation.name)
        + redact_opt(&mut v.occupation.alias)
        + redact(&mut v.employer.name)
        + v.coordinator.as_mut().map_or(0, |c| redact(&mut c.name))
        + redact(&mut v.descriptions.tasks);
    View {
        data: Data::SharedOrder(Box::new(v)),
        redactions,
    }
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
    let mut redactions = 0;
    for e in &log.entries {
        let registered_by = Unit::from_stored(&e.registered_by.kind, &e.registered_by.code);
        if !full && registered_by.as_ref() != Some(viewer) {
            continue;
        }
        let mut entry = LogEntry {
            cv_active: e.cv_active,
            mediation_id: e.mediation_id.clone(),
            note: full.then(|| e.note.clone()),
            person_ref: e.person_ref.clone(),
            protected_identity: e.protected_identity,
            registered_at: e.registered_at.clone(),
            registered_by: (&e.registered_by).into(),
            searchable_cv: e.searchable_cv,
            status: e.status.clone(),
            status_changed_at: e.status_changed_at.clone(),
            status_changed_by: (&e.status_changed_by).into(),
        };
        redactions += redact(&mut entry.person_ref) + entry.note.as_mut().map_or(0, redact_opt);
        entries.push(entry);
        let status = EntryStatus::parse(&e.status).expect("a stored log was validated");
        shown.push((status, e.cv_active));
    }
    let counts = Counts::of(shown);
    let v = LogView {
        awaiting_approval: counts.awaiting_approval,
        entries,
        job_order_id: log.job_order_id.clone(),
        total: counts.total,
        undecided: counts.undecided,
        version: log.version,
    };
    View {
        data: Data::Log(v),
        redactions,
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    /// The free-text fields of an order view, by path.
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
            // An identifier: never redacted (5.3), so not free text here.
            "request_id": "ANM-1",
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
            prop_assert_eq!(&out, &view.to_json().to_string(), "keys in sorted order");
            prop_assert!(!out.contains("RESTRICTED"), "{}", out);
            prop_assert!(!out.contains("restricted@example.dk"));
            prop_assert!(!out.contains("+4543212345"));
            prop_assert!(!out.contains("1003456789"), "no P-number");
            prop_assert!(!out.contains("777777"), "not who changed it");
            for u in &units {
                prop_assert!(!out.contains(u.as_str()), "no other unit: {} in {}", u, out);
            }
            let json = view.to_json();
            for k in json.as_object().unwrap().keys() {
                let k = k.as_str();
                prop_assert!(SHARED_KEYS.contains(&k), "unexpected field {}", k);
            }
        }

        #[test]
        fn no_cpr_number_survives_in_any_view(text in free_text()) {
            let s = snapshot(&text, "R", &["90000".to_owned()], true);
            let extras = OrderExtras { coordinator_reassignment_needed: false, expired_at: None, undecided_candidates: 0, promises: Default::default() };
            for view in [responsible_order_view(&s, extras), shared_order_view(&s, None)] {
                let json = view.to_json();
                prop_assert_eq!(serde_json::to_string(&view.data).unwrap(), json.to_string(), "keys in sorted order");
                for path in ORDER_FREE_TEXT {
                    let mut v = &json;
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

    /// A log with an entry of the responsible unit's (with a note) and one
    /// of an a-kasse's (without).
    fn log() -> MediationLogData {
        let entry = |id: &str, unit: Value, note: Value| {
            json!({
                "mediation_id": id, "person_ref": "p-abc", "registered_by": unit,
                "registered_at": "2026-11-21T08:00:00Z", "status": "available_to_company",
                "status_changed_at": "2026-11-21T08:00:00Z",
                "status_changed_by": {"kind": "unit", "unit": {"type": "akasse", "code": "9997"}},
                "searchable_cv": true, "cv_active": true, "protected_identity": false, "note": note
            })
        };
        serde_json::from_value(json!({
            "job_order_id": "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00",
            "version": 3,
            "entries": [
                entry("m-1", json!({"type": "jobcenter", "code": "15300"}), json!("Ringet op")),
                entry("m-2", json!({"type": "akasse", "code": "9997"}), Value::Null),
            ]
        }))
        .unwrap()
    }

    /// Every kind of view: the responsible unit's and a shared unit's order
    /// view (expired or not), the log views of the responsible unit and of
    /// an a-kasse, a revocation.
    fn every_view() -> Vec<View> {
        let s = snapshot("Lager", "R", &["90000".to_owned()], true);
        let extras = OrderExtras {
            coordinator_reassignment_needed: true,
            expired_at: Some("2026-12-01T00:00:00Z".parse().unwrap()),
            undecided_candidates: 2,
            promises: Default::default(),
        };
        let responsible = responsible_unit(&s);
        let akasse = Unit::from_stored("akasse", "9997").unwrap();
        vec![
            responsible_order_view(&s, extras),
            shared_order_view(&s, None),
            shared_order_view(&s, extras.expired_at),
            log_view(&log(), &responsible, &responsible),
            log_view(&log(), &akasse, &responsible),
            crate::domain::fanout::revoked_view(
                &s.job_order_id,
                s.version,
                crate::domain::fanout::RevokeReason::Unshared,
            ),
        ]
    }

    /// The hashes stored of what units were told were computed over the view
    /// as a JSON object with sorted keys, less `version` and `updated_at`;
    /// the typed views hash and serialize to exactly that.
    #[test]
    fn the_content_hash_is_that_of_the_view_without_version_and_updated_at() {
        for view in every_view() {
            let mut data = view.to_json();
            assert_eq!(serde_json::to_string(&view.data).unwrap(), data.to_string());
            let object = data.as_object_mut().unwrap();
            object.remove("version");
            object.remove("updated_at");
            let expected = Sha256::digest(serde_json::to_vec(&data).unwrap()).to_vec();
            assert_eq!(view.content_hash(), expected, "{data}");
        }
    }

    #[test]
    fn a_log_view_shows_another_unit_only_its_own_entries_without_the_note() {
        let responsible = responsible_unit(&snapshot("x", "R", &[], false));
        let full = log_view(&log(), &responsible, &responsible).to_json();
        assert_eq!(full["entries"].as_array().unwrap().len(), 2);
        assert_eq!(full["entries"][0]["note"], "Ringet op");
        assert!(full["entries"][1]["note"].is_null());
        assert!(full["entries"][1].as_object().unwrap().contains_key("note"));
        let akasse = Unit::from_stored("akasse", "9997").unwrap();
        let own = log_view(&log(), &akasse, &responsible).to_json();
        let entries = own["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["mediation_id"], "m-2");
        assert!(!entries[0].as_object().unwrap().contains_key("note"));
        assert_eq!(
            (own["total"].as_i64(), own["undecided"].as_i64()),
            (Some(1), Some(1))
        );
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
