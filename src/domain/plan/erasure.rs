//! Erasure of one person on request (section 12): on every order whose log
//! holds them, their entries' `person_ref` becomes [`ERASED`] and their
//! `note` goes; each unit whose log view changed is told
//! (`mediationlog.updated`), through the same [`log_notifications`] as a
//! new log version, so what each unit was told stays what it holds.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::{log_notifications, Cause, Output};
use crate::contract::mediationlog::MediationLogData;
use crate::domain::unit::Unit;

/// The reference that replaces an erased person's (and, after the
/// retention, everyone's).
pub const ERASED: &str = "erased";

/// What the store knows of one order whose log holds the person.
#[derive(Debug, Clone)]
pub struct StoredLog {
    /// The stored log snapshot, which the views are made from.
    pub log: MediationLogData,
    pub responsible: Unit,
    /// The order's hub version (the `version` of what the units are told).
    pub order_version: i64,
    /// What each unit was last told of the log.
    pub told: BTreeMap<Unit, Vec<u8>>,
}

/// What to write for one order.
#[derive(Debug, Clone)]
pub struct Erased {
    /// The log snapshot without the person.
    pub log: MediationLogData,
    /// The entries that were theirs.
    pub mediation_ids: Vec<Uuid>,
    /// What each unit was told now of the log.
    pub told: BTreeMap<Unit, Vec<u8>>,
}

/// Plans the erasure of `person_ref` from `logs` (by order), as erasure
/// `erasure` (the id its notifications' ids are made of). What goes out is
/// handed to `out`, in order; an order whose log does not hold the person
/// is left out.
pub fn plan(
    logs: HashMap<Uuid, StoredLog>,
    person_ref: &str,
    erasure: Uuid,
    out: &mut impl FnMut(Output),
) -> BTreeMap<Uuid, Erased> {
    let mut plan = BTreeMap::new();
    let mut logs: Vec<(Uuid, StoredLog)> = logs.into_iter().collect();
    logs.sort_unstable_by_key(|(id, _)| *id);
    for (id, stored) in logs {
        let mut log = stored.log;
        let mut mediation_ids = Vec::new();
        for entry in log
            .entries
            .iter_mut()
            .filter(|e| e.person_ref == person_ref)
        {
            entry.person_ref = ERASED.to_owned();
            entry.note = None;
            mediation_ids.push(
                Uuid::parse_str(&entry.mediation_id).expect("stored mediation ids are UUIDs"),
            );
        }
        if mediation_ids.is_empty() {
            continue;
        }
        let (notifications, told) = log_notifications(&log, &stored.responsible, &stored.told);
        out(Output::Notify {
            cause: Cause::Erasure(erasure),
            job_order_id: id,
            order_version: stored.order_version,
            notifications,
        });
        plan.insert(
            id,
            Erased {
                log,
                mediation_ids,
                told,
            },
        );
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fanout::Event;
    use serde_json::json;

    fn entry(person: &str, registered_by: &str, note: Option<&str>) -> serde_json::Value {
        json!({
            "mediation_id": Uuid::new_v4().to_string(), "person_ref": person,
            "registered_by": { "type": "jobcenter", "code": registered_by },
            "registered_at": "2026-11-20T10:00:00Z", "status": "available_to_company",
            "status_changed_at": "2026-11-20T10:00:00Z",
            "status_changed_by": { "kind": "unit", "unit": { "type": "jobcenter", "code": registered_by } },
            "searchable_cv": true, "cv_active": true, "protected_identity": false, "note": note
        })
    }

    fn stored(entries: Vec<serde_json::Value>) -> StoredLog {
        let id = Uuid::new_v4();
        let log: MediationLogData = serde_json::from_value(
            json!({ "job_order_id": id.to_string(), "version": 3, "entries": entries }),
        )
        .unwrap();
        let responsible = Unit::from_stored("jobcenter", "15300").unwrap();
        // What every unit was told of the log as it is.
        let (_, told) = log_notifications(&log, &responsible, &BTreeMap::new());
        StoredLog {
            log,
            responsible,
            order_version: 7,
            told,
        }
    }

    #[test]
    fn only_the_persons_entries_change_and_only_units_whose_view_changed_are_told() {
        let order = Uuid::new_v4();
        let log = stored(vec![
            entry("p-1", "16700", Some("Kan starte mandag.")),
            entry("p-2", "17300", Some("Har truckkort.")),
        ]);
        let mut outputs = Vec::new();
        let erasure = Uuid::new_v4();
        let plan = plan(
            HashMap::from([(order, log.clone())]),
            "p-1",
            erasure,
            &mut |o| outputs.push(o),
        );
        let erased = &plan[&order];
        assert_eq!(erased.mediation_ids.len(), 1);
        assert_eq!(erased.log.entries[0].person_ref, ERASED);
        assert_eq!(erased.log.entries[0].note, None);
        assert_eq!(erased.log.entries[1], log.log.entries[1]);
        let [Output::Notify {
            cause,
            order_version,
            notifications,
            ..
        }] = outputs.as_slice()
        else {
            panic!("one output: {outputs:?}")
        };
        assert_eq!((*cause, *order_version), (Cause::Erasure(erasure), 7));
        let told: Vec<String> = notifications
            .iter()
            .inspect(|n| assert_eq!(n.event, Event::MediationLogUpdated))
            .flat_map(|n| n.recipients.iter().map(|u| u.to_string()))
            .collect();
        // The responsible unit and the unit that put the person forward see
        // the entry; the other neighbour sees only its own.
        assert!(told.contains(&"jobcenter:15300".to_owned()), "{told:?}");
        assert!(told.contains(&"jobcenter:16700".to_owned()), "{told:?}");
        assert!(!told.contains(&"jobcenter:17300".to_owned()), "{told:?}");
        // As told now, nothing changes again.
        let again = StoredLog {
            log: erased.log.clone(),
            told: erased.told.clone(),
            ..log
        };
        let mut more = Vec::new();
        let plan = super::plan(HashMap::from([(order, again)]), "p-1", erasure, &mut |o| {
            more.push(o)
        });
        assert!(plan.is_empty() && more.is_empty());
    }
}
