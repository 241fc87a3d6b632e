//! The hub's messages as tests build them: CloudEvents around job order
//! snapshots and mediation logs, through `tests/common/joborder.rs`.

use super::*;

/// A CloudEvent around `data` with a fresh id.
pub fn event(data: &Value) -> Value {
    event_with_id(&Uuid::new_v4().to_string(), data)
}

/// A job order CloudEvent around `data` with message id `id`.
pub fn event_with_id(id: &str, data: &Value) -> Value {
    cloudevent("dk.dfdg.joborder.snapshot", id, data)
}

/// A mediation log CloudEvent around `data` with a fresh id.
pub fn log_event(data: &Value) -> Value {
    log_event_with_id(&Uuid::new_v4().to_string(), data)
}

/// A mediation log CloudEvent around `data` with message id `id`.
pub fn log_event_with_id(id: &str, data: &Value) -> Value {
    cloudevent("dk.dfdg.mediationlog.snapshot", id, data)
}

/// Version `version` of order `id` as [`JobOrder`] makes it by default:
/// Brøndby's jobcentre, shared with two neighbours, every optional field
/// filled.
pub fn snapshot(id: Uuid, version: u64) -> Value {
    JobOrder::new(id).version(version).build()
}

/// A mediation log snapshot of order `order` at `version`.
pub fn mediation_log(order: Uuid, version: u64, entries: Vec<Value>) -> Value {
    json!({"job_order_id": order.to_string(), "version": version, "entries": entries})
}

/// The opaque person reference of candidate `id`: letters only, so that it
/// can never look like a CPR number.
pub fn person_ref(id: Uuid) -> String {
    let letters: String = id.simple().to_string()[..10]
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'g' + d as u8),
            None => c,
        })
        .collect();
    format!("P-{letters}")
}

/// `status_changed_by` naming a unit, e.g. `by_unit("jobcenter", "15300")`.
pub fn by_unit(kind: &str, code: &str) -> Value {
    json!({"kind": "unit", "unit": {"type": kind, "code": code}})
}

/// An entry of a mediation log: candidate `id` put forward by
/// `registered_by` (type, code), at `status` after a change by `changed_by`.
/// Put forward at 08:00 and changed at 08:30 on 2026-11-22, before every
/// version of [`snapshot`] (updated at 09:MM), so the rules judge it by the
/// stored order at once.
pub fn candidate(id: Uuid, registered_by: (&str, &str), status: &str, changed_by: Value) -> Value {
    json!({
        "mediation_id": id.to_string(),
        "person_ref": person_ref(id),
        "registered_by": {"type": registered_by.0, "code": registered_by.1},
        "registered_at": "2026-11-22T08:00:00Z",
        "status": status,
        "status_changed_at": "2026-11-22T08:30:00Z",
        "status_changed_by": changed_by,
        "searchable_cv": true,
        "cv_active": true,
        "protected_identity": false,
        "note": "Stærk på lager; taler dansk og polsk."
    })
}
