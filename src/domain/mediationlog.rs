//! A mediation log (formidlingslog) snapshot that passed every rule of
//! section 4.2 that can be checked on its own, and the rules that compare it
//! with the stored log and its order ([`decide`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cpr;
use super::fields::{
    canonical_timestamp, parse_order_id, parse_timestamp, parse_uuid, parse_version,
};
use super::joborder::{ChangedBy, Timeline};
use super::status::StatusKind;
use super::text::{bounded, bounded_opt};
use super::unit::Unit;
use crate::contract::mediationlog as wire;
use crate::contract::rejection::{ErrorCode, Rejection};

/// Where a candidate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryStatus {
    /// Formidling afventer godkendelse: waits for the coordinator.
    AwaitingApproval,
    /// Formidling tilgængelig for virksomhed: the employer sees it.
    AvailableToCompany,
    Hired,
    NotHired,
    Withdrawn,
}

impl EntryStatus {
    pub const ALL: [EntryStatus; 5] = [
        EntryStatus::AwaitingApproval,
        EntryStatus::AvailableToCompany,
        EntryStatus::Hired,
        EntryStatus::NotHired,
        EntryStatus::Withdrawn,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::AwaitingApproval => "awaiting_approval",
            EntryStatus::AvailableToCompany => "available_to_company",
            EntryStatus::Hired => "hired",
            EntryStatus::NotHired => "not_hired",
            EntryStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// One candidate put forward for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mediation_id: Uuid,
    /// An opaque reference to the person, never a CPR number.
    pub person_ref: String,
    pub registered_by: Unit,
    pub registered_at: DateTime<Utc>,
    pub status: EntryStatus,
    pub status_changed_at: DateTime<Utc>,
    pub status_changed_by: ChangedBy,
    pub searchable_cv: bool,
    pub cv_active: bool,
    pub protected_identity: bool,
    /// Seen by the responsible unit only.
    pub note: Option<String>,
}

/// A mediation log snapshot: every entry of one order's log at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediationLog {
    pub job_order_id: Uuid,
    pub version: i64,
    pub entries: Vec<Entry>,
    /// SHA-256 of [`MediationLog::wire`].
    pub content_hash: [u8; 32],
    /// The snapshot in canonical form (see [`canonical`]): what is stored,
    /// and what the views are made of.
    pub wire: wire::MediationLogData,
}

/// Longest `person_ref` accepted, in characters.
pub const PERSON_REF_MAX: usize = 100;
/// Longest `note` accepted, in characters.
pub const NOTE_MAX: usize = 5000;

/// Parses the `data` of a mediation log event whose envelope has `subject`.
pub fn parse(data: &str, subject: Option<&str>) -> Result<MediationLog, Rejection> {
    let w: wire::MediationLogData = crate::contract::from_json("data", data)?;
    MediationLog::try_from_wire(&w, subject)
}

impl MediationLog {
    /// Validates a wire snapshot; `subject` is the envelope's.
    pub fn try_from_wire(
        w: &wire::MediationLogData,
        subject: Option<&str>,
    ) -> Result<MediationLog, Rejection> {
        let job_order_id = parse_order_id(&w.job_order_id, subject)?;
        let version = parse_version(w.version)?;
        let mut entries = Vec::with_capacity(w.entries.len());
        for (i, e) in w.entries.iter().enumerate() {
            entries.push(Entry::try_from_wire(&format!("data.entries[{i}]"), e)?);
        }
        // The schema cannot say "unique by mediation_id" (only whole items).
        let mut seen = HashSet::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if !seen.insert(e.mediation_id) {
                return Err(Rejection::beyond_schema(
                    ErrorCode::SchemaInvalid,
                    format!(
                        "data.entries[{i}].mediation_id: {} appears twice in the log",
                        e.mediation_id
                    ),
                ));
            }
        }
        // Section 4.3: every shape first, then the units' municipalities,
        // then a CPR number as person_ref, so that a log with another fault
        // is rejected for that fault.
        for (i, e) in entries.iter().enumerate() {
            let field = format!("data.entries[{i}]");
            e.registered_by
                .check_municipality(&format!("{field}.registered_by"))?;
            e.status_changed_by
                .check_municipality(&format!("{field}.status_changed_by"))?;
        }
        for (i, e) in entries.iter().enumerate() {
            if cpr::contains(&e.person_ref) {
                return Err(Rejection::beyond_schema(
                    ErrorCode::PersonRefCpr,
                    format!(
                        "data.entries[{i}].person_ref: contains a CPR number; a person_ref must be an opaque reference (entry {})",
                        e.mediation_id
                    ),
                ));
            }
        }
        let wire = canonical(w, job_order_id, &entries);
        Ok(MediationLog {
            content_hash: Sha256::digest(
                serde_json::to_vec(&wire).expect("wire structs always serialize"),
            )
            .into(),
            wire,
            job_order_id,
            version,
            entries,
        })
    }

    /// The counts every view of this log carries.
    pub fn counts(&self) -> Counts {
        Counts::of(self.entries.iter().map(|e| (e.status, e.cv_active)))
    }
}

/// The wire snapshot in a canonical form: unknown fields gone, ids in lower
/// case, timestamps in UTC, entries sorted by `mediation_id`, so that two
/// deliveries of one version compare equal however the hub wrote and
/// ordered them.
pub fn canonical(
    w: &wire::MediationLogData,
    id: Uuid,
    entries: &[Entry],
) -> wire::MediationLogData {
    let mut c = w.clone();
    c.job_order_id = id.to_string();
    for (wire_entry, entry) in c.entries.iter_mut().zip(entries) {
        wire_entry.mediation_id = entry.mediation_id.to_string();
        wire_entry.registered_at = canonical_timestamp(entry.registered_at);
        wire_entry.status_changed_at = canonical_timestamp(entry.status_changed_at);
    }
    c.entries
        .sort_by(|a, b| a.mediation_id.cmp(&b.mediation_id));
    c
}

impl Entry {
    /// An entry of the right shape; its units' municipalities are judged
    /// once every entry's shape has passed.
    fn try_from_wire(field: &str, w: &wire::Entry) -> Result<Entry, Rejection> {
        let f = |name: &str| format!("{field}.{name}");
        let mediation_id = parse_uuid(&f("mediation_id"), &w.mediation_id)?;
        bounded(&f("person_ref"), &w.person_ref, 1, PERSON_REF_MAX)?;
        let registered_by = Unit::shaped(
            &f("registered_by"),
            &w.registered_by.kind,
            &w.registered_by.code,
        )?;
        let registered_at = parse_timestamp(&f("registered_at"), &w.registered_at)?;
        let status = EntryStatus::parse(&w.status).ok_or_else(|| {
            Rejection::schema(
                &f("status"),
                format_args!(
                    "{:?} is not one of awaiting_approval, available_to_company, hired, not_hired, withdrawn",
                    w.status
                ),
            )
        })?;
        let status_changed_at = parse_timestamp(&f("status_changed_at"), &w.status_changed_at)?;
        let status_changed_by = ChangedBy::shaped(&f("status_changed_by"), &w.status_changed_by)?;
        bounded_opt(&f("note"), w.note.as_deref(), NOTE_MAX)?;
        Ok(Entry {
            mediation_id,
            person_ref: w.person_ref.clone(),
            registered_by,
            registered_at,
            status,
            status_changed_at,
            status_changed_by,
            searchable_cv: w.searchable_cv,
            cv_active: w.cv_active,
            protected_identity: w.protected_identity,
            note: w.note.clone(),
        })
    }
}

/// The derived counts of section 5.2 over the entries a view shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i32,
    pub awaiting_approval: i32,
    /// What the employer's count shows: `available_to_company` with an
    /// active CV.
    pub undecided: i32,
}

impl Counts {
    /// Counts entries given as (status, cv_active).
    pub fn of(entries: impl IntoIterator<Item = (EntryStatus, bool)>) -> Counts {
        let mut c = Counts::default();
        for (status, cv_active) in entries {
            c.total += 1;
            match status {
                EntryStatus::AwaitingApproval => c.awaiting_approval += 1,
                EntryStatus::AvailableToCompany if cv_active => c.undecided += 1,
                _ => {}
            }
        }
        c
    }
}

/// What of a stored entry the rules compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub status: EntryStatus,
}

/// What of the stored log the rules compare with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLog {
    pub version: i64,
    pub content_hash: Vec<u8>,
    pub entries: HashMap<Uuid, StoredEntry>,
}

impl StoredLog {
    /// The stored state after `log` was applied.
    pub fn after(log: &MediationLog) -> StoredLog {
        StoredLog {
            version: log.version,
            content_hash: log.content_hash.to_vec(),
            entries: log
                .entries
                .iter()
                .map(|e| (e.mediation_id, StoredEntry { status: e.status }))
                .collect(),
        }
    }
}

/// A unit's former role on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormerRole {
    Responsible,
    Shared,
}

impl FormerRole {
    /// As stored in `job_order_former_units.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            FormerRole::Responsible => "responsible",
            FormerRole::Shared => "shared",
        }
    }

    pub fn parse(s: &str) -> Option<FormerRole> {
        match s {
            "responsible" => Some(FormerRole::Responsible),
            "shared" => Some(FormerRole::Shared),
            _ => None,
        }
    }
}

/// When a unit held a role it no longer has: from `since` until `until`
/// (`updated_at` of the versions that gave and took it; over several such
/// spells, the first start and the last end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spell {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What of the stored job order the rules of section 4.2 need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    pub responsible_unit: Unit,
    /// The units the order is shared with, each with when it gained access.
    pub shared_with: BTreeMap<Unit, DateTime<Utc>>,
    pub status: StatusKind,
    pub coordinator_allowed: bool,
    /// `updated_at` of the stored version: facts about later times may still
    /// be on their way in a newer version.
    pub updated_at: DateTime<Utc>,
    pub timeline: Timeline,
    /// Units that lost a role on the order, and when they held it.
    pub former: HashMap<(Unit, FormerRole), Spell>,
}

impl OrderFacts {
    fn had_role_at(&self, unit: &Unit, role: FormerRole, at: DateTime<Utc>) -> bool {
        self.former
            .get(&(unit.clone(), role))
            .is_some_and(|spell| spell.since <= at && at < spell.until)
    }

    /// Whether `unit` could put a candidate forward at `at`: responsible or
    /// shared with then — after it gained access, before it lost it.
    fn could_register(&self, unit: &Unit, at: DateTime<Utc>) -> bool {
        self.is_responsible_at(unit, at)
            || self.shared_with.get(unit).is_some_and(|&since| since <= at)
            || self.had_role_at(unit, FormerRole::Shared, at)
    }

    /// Whether `unit` was the responsible unit at `at`.
    fn is_responsible_at(&self, unit: &Unit, at: DateTime<Utc>) -> bool {
        (unit == &self.responsible_unit && self.timeline.responsible_since <= at)
            || self.had_role_at(unit, FormerRole::Responsible, at)
    }

    /// Whether `by` was the responsible unit at `at`.
    fn responsible_at(&self, by: &ChangedBy, at: DateTime<Utc>) -> bool {
        by.unit().is_some_and(|u| self.is_responsible_at(u, at))
    }

    /// Whether the employer allowed a coordinator at `at`, when known: the
    /// stored setting holds from when it took its value on; before that it
    /// is not known here, and the rules that depend on it are not judged.
    fn coordinator_allowed_at(&self, at: DateTime<Utc>) -> Option<bool> {
        (at >= self.timeline.coordinator_allowed_since).then_some(self.coordinator_allowed)
    }
}

/// A change of an entry's status (or its first appearance, `from: None`), for
/// the append-only history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub mediation_id: Uuid,
    pub from: Option<EntryStatus>,
    pub to: EntryStatus,
    pub at: DateTime<Utc>,
    pub by: ChangedBy,
}

/// The fate of a log snapshot given the stored log and the stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDecision {
    /// Newer than the stored log (or the first): store it and record these
    /// status changes.
    Apply(Vec<StatusChange>),
    Stale,
    Duplicate,
    Reject(Rejection),
    /// A rule fails against the stored order, but an entry is newer than
    /// that order version: a newer one may be on its way. Retry later; this
    /// is the rejection if it never comes.
    Wait(Rejection),
}

/// Applies the rules of section 4.2 that compare `log` with the stored log
/// (`None` when none is stored) and with its order.
pub fn decide(stored: Option<&StoredLog>, order: &OrderFacts, log: &MediationLog) -> LogDecision {
    let empty = StoredLog::default();
    let stored = match stored {
        Some(s) if log.version < s.version => return LogDecision::Stale,
        Some(s) if log.version == s.version => {
            return if s.content_hash == log.content_hash {
                LogDecision::Duplicate
            } else {
                LogDecision::Reject(Rejection::beyond_schema(
                    ErrorCode::VersionConflict,
                    format!(
                        "data.version: version {} of the mediation log of job order {} is stored with other content",
                        log.version, log.job_order_id
                    ),
                ))
            };
        }
        Some(s) => s,
        None => &empty,
    };
    match check(stored, order, log) {
        Ok(changes) => LogDecision::Apply(changes),
        Err(Fault::Plain(r)) => LogDecision::Reject(r),
        Err(Fault::AsOf(r, at)) if at > order.updated_at => LogDecision::Wait(r),
        Err(Fault::AsOf(r, _)) => LogDecision::Reject(r),
    }
}

/// Why a log fails its rules.
enum Fault {
    Plain(Rejection),
    /// Judged by the order as it stood at this time.
    AsOf(Rejection, DateTime<Utc>),
}

/// The rules of 4.2, each judged by the order as it stood when the entry
/// was made or changed (the timeline and former units of [`OrderFacts`]).
fn check(
    stored: &StoredLog,
    order: &OrderFacts,
    log: &MediationLog,
) -> Result<Vec<StatusChange>, Fault> {
    let present: HashSet<Uuid> = log.entries.iter().map(|e| e.mediation_id).collect();
    let mut removed: Vec<&Uuid> = stored
        .entries
        .keys()
        .filter(|id| !present.contains(id))
        .collect();
    if !removed.is_empty() {
        removed.sort();
        let list = removed
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Fault::Plain(Rejection::beyond_schema(
            ErrorCode::MediationEntryRemoved,
            format!(
                "data.entries: version {} of the mediation log of job order {} lacks {} entr{} of version {} ({list}); an entry never disappears",
                log.version,
                log.job_order_id,
                removed.len(),
                if removed.len() == 1 { "y" } else { "ies" },
                stored.version,
            ),
        )));
    }
    let responsible = &order.responsible_unit;
    let mut changes = Vec::new();
    for (i, e) in log.entries.iter().enumerate() {
        let field = format!("data.entries[{i}]");
        let before = stored.entries.get(&e.mediation_id).map(|s| s.status);
        if before.is_none() {
            let closed_before = order.status == StatusKind::Closed
                && order
                    .timeline
                    .closed_at
                    .is_none_or(|closed| e.registered_at >= closed);
            if closed_before {
                return Err(Fault::AsOf(Rejection::beyond_schema(
                        ErrorCode::MediationOrderClosed,
                        format!(
                            "{field}: new entry {} put forward by {} on job order {}, which is closed",
                            e.mediation_id, e.registered_by, log.job_order_id
                        ),
                    ), e.registered_at));
            }
            if !order.could_register(&e.registered_by, e.registered_at) {
                return Err(Fault::AsOf(Rejection::beyond_schema(
                        ErrorCode::MediationUnitNotShared,
                        format!(
                            "{field}.registered_by: {} was neither the responsible unit ({responsible}) nor a unit job order {} was shared with when it put candidate {} forward ({}), so it could not",
                            e.registered_by, log.job_order_id, e.mediation_id, canonical_timestamp(e.registered_at)
                        ),
                    ), e.registered_at));
            }
            if e.status == EntryStatus::AwaitingApproval
                && order.coordinator_allowed_at(e.status_changed_at) == Some(false)
            {
                return Err(Fault::AsOf(Rejection::beyond_schema(
                        ErrorCode::MediationCoordinatorNotAllowed,
                        format!(
                            "{field}.status: new entry {} awaits approval, but the employer opted out of a coordinator (coordinator_allowed is false), so it starts as available_to_company",
                            e.mediation_id
                        ),
                    ), e.status_changed_at));
            }
        }
        if e.status == EntryStatus::AvailableToCompany && before != Some(e.status) {
            check_approval(order, &field, e, before)?;
        }
        if before != Some(e.status) {
            changes.push(StatusChange {
                mediation_id: e.mediation_id,
                from: before,
                to: e.status,
                at: e.status_changed_at,
                by: e.status_changed_by.clone(),
            });
        }
    }
    Ok(changes)
}

/// Section 4.2: a move of entry `e` (at `field`) into
/// `available_to_company` from `before` (`None`: a new entry). While the
/// employer allows a coordinator it is an approval, which only the
/// responsible unit makes; without one, an entry still awaiting approval
/// from before is moved on by the unit that registered it (or the
/// responsible unit).
fn check_approval(
    order: &OrderFacts,
    field: &str,
    e: &Entry,
    before: Option<EntryStatus>,
) -> Result<(), Fault> {
    let (at, by) = (e.status_changed_at, &e.status_changed_by);
    let responsible = &order.responsible_unit;
    let allowed = match order.coordinator_allowed_at(at) {
        Some(true) => order.responsible_at(by, at),
        Some(false) if before == Some(EntryStatus::AwaitingApproval) => {
            by.unit() == Some(&e.registered_by) || order.responsible_at(by, at)
        }
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    let message = match (order.coordinator_allowed_at(at), before) {
        (Some(false), _) => format!(
            "{field}.status_changed_by: {} moved entry {} on from awaiting_approval; with no coordinator (coordinator_allowed is false) only the unit that registered it ({}) or the responsible unit {responsible} does",
            describe(by),
            e.mediation_id,
            e.registered_by
        ),
        (_, None) => format!(
            "{field}.status: new entry {} skips approval: with a coordinator (coordinator_allowed is true) it starts as awaiting_approval unless the responsible unit {responsible} approved it, but {} made it available_to_company",
            e.mediation_id,
            describe(by)
        ),
        (_, Some(EntryStatus::AwaitingApproval)) => format!(
            "{field}.status_changed_by: {} approved entry {}, but only the responsible unit {responsible} approves a candidate",
            describe(by),
            e.mediation_id
        ),
        (_, Some(from)) => format!(
            "{field}.status_changed_by: {} moved entry {} from {} back to available_to_company, which is an approval while the employer allows a coordinator (coordinator_allowed is true); only the responsible unit {responsible} approves a candidate",
            describe(by),
            e.mediation_id,
            from.as_str()
        ),
    };
    Err(Fault::AsOf(
        Rejection::beyond_schema(ErrorCode::MediationApprovalNotByResponsible, message),
        at,
    ))
}

fn describe(by: &ChangedBy) -> String {
    match by {
        ChangedBy::Unit(u) => u.to_string(),
        other => other.kind_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const ORDER: &str = "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00";
    const A: &str = "11111111-1111-4111-8111-111111111111";
    const B: &str = "22222222-2222-4222-8222-222222222222";

    fn entry(id: &str, status: &str, by: Value) -> Value {
        json!({
            "mediation_id": id, "person_ref": "P-1",
            "registered_by": {"type": "akasse", "code": "1234"},
            "registered_at": "2026-11-22T09:00:00Z",
            "status": status, "status_changed_at": "2026-11-22T09:00:00Z",
            "status_changed_by": by,
            "searchable_cv": true, "cv_active": true, "protected_identity": false, "note": null
        })
    }

    fn akasse() -> Value {
        json!({"kind": "unit", "unit": {"type": "akasse", "code": "1234"}})
    }

    fn responsible() -> Value {
        json!({"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}})
    }

    fn log(version: u64, entries: Vec<Value>) -> MediationLog {
        let data = json!({"job_order_id": ORDER, "version": version, "entries": entries});
        parse(&data.to_string(), Some(ORDER)).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The order as stored at 10:00, after the entries' 09:00.
    fn order() -> OrderFacts {
        OrderFacts {
            responsible_unit: Unit::parse("u", "jobcenter", "15300").unwrap(),
            shared_with: [(
                Unit::parse("u", "akasse", "1234").unwrap(),
                at("2026-11-20T08:00:00Z"),
            )]
            .into(),
            status: StatusKind::Open,
            coordinator_allowed: true,
            updated_at: at("2026-11-22T10:00:00Z"),
            timeline: Timeline {
                closed_at: None,
                coordinator_allowed_since: at("2026-11-20T08:00:00Z"),
                responsible_since: at("2026-11-20T08:00:00Z"),
            },
            former: HashMap::new(),
        }
    }

    fn rejected(d: LogDecision) -> ErrorCode {
        match d {
            LogDecision::Reject(r) => r.code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn versions_compare_like_job_orders() {
        let v2 = log(2, vec![entry(A, "awaiting_approval", akasse())]);
        let s = StoredLog::after(&v2);
        assert_eq!(
            decide(Some(&s), &order(), &log(1, vec![])),
            LogDecision::Stale
        );
        assert_eq!(decide(Some(&s), &order(), &v2), LogDecision::Duplicate);
        let other = log(2, vec![entry(A, "withdrawn", akasse())]);
        assert_eq!(
            rejected(decide(Some(&s), &order(), &other)),
            ErrorCode::VersionConflict
        );
    }

    #[test]
    fn a_new_entry_and_each_status_change_is_recorded_once() {
        let v1 = log(1, vec![entry(A, "awaiting_approval", akasse())]);
        let LogDecision::Apply(changes) = decide(None, &order(), &v1) else {
            panic!()
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].from, None);
        let s1 = StoredLog::after(&v1);
        let v2 = log(
            2,
            vec![
                entry(A, "available_to_company", responsible()),
                entry(B, "awaiting_approval", akasse()),
            ],
        );
        let LogDecision::Apply(changes) = decide(Some(&s1), &order(), &v2) else {
            panic!()
        };
        let summary: Vec<_> = changes
            .iter()
            .map(|c| (c.mediation_id.to_string(), c.from, c.to))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    A.to_owned(),
                    Some(EntryStatus::AwaitingApproval),
                    EntryStatus::AvailableToCompany
                ),
                (B.to_owned(), None, EntryStatus::AwaitingApproval),
            ]
        );
        let s2 = StoredLog::after(&v2);
        let v3 = log(
            3,
            vec![
                entry(A, "available_to_company", responsible()),
                entry(B, "awaiting_approval", akasse()),
            ],
        );
        assert_eq!(decide(Some(&s2), &order(), &v3), LogDecision::Apply(vec![]));
    }

    #[test]
    fn an_entry_never_disappears() {
        let s = StoredLog::after(&log(1, vec![entry(A, "awaiting_approval", akasse())]));
        assert_eq!(
            rejected(decide(Some(&s), &order(), &log(2, vec![]))),
            ErrorCode::MediationEntryRemoved
        );
    }

    #[test]
    fn a_new_entry_comes_from_a_unit_that_sees_the_order_and_not_on_a_closed_order() {
        let mut e = entry(A, "awaiting_approval", akasse());
        e["registered_by"] = json!({"type": "akasse", "code": "9999"});
        assert_eq!(
            rejected(decide(None, &order(), &log(1, vec![e]))),
            ErrorCode::MediationUnitNotShared
        );
        let mut by_responsible = entry(A, "awaiting_approval", responsible());
        by_responsible["registered_by"] = json!({"type": "jobcenter", "code": "15300"});
        assert!(matches!(
            decide(None, &order(), &log(1, vec![by_responsible])),
            LogDecision::Apply(_)
        ));
        let closed = OrderFacts {
            status: StatusKind::Closed,
            timeline: Timeline {
                closed_at: Some(at("2026-11-22T08:00:00Z")),
                ..order().timeline
            },
            ..order()
        };
        let v1 = log(1, vec![entry(A, "awaiting_approval", akasse())]);
        assert_eq!(
            rejected(decide(None, &closed, &v1)),
            ErrorCode::MediationOrderClosed
        );
        // Entries already there may still change on a closed order.
        let s1 = StoredLog::after(&v1);
        let v2 = log(2, vec![entry(A, "withdrawn", akasse())]);
        assert!(matches!(
            decide(Some(&s1), &closed, &v2),
            LogDecision::Apply(_)
        ));
    }

    #[test]
    fn only_the_responsible_unit_approves() {
        let s = StoredLog::after(&log(1, vec![entry(A, "awaiting_approval", akasse())]));
        let by_akasse = log(2, vec![entry(A, "available_to_company", akasse())]);
        assert_eq!(
            rejected(decide(Some(&s), &order(), &by_akasse)),
            ErrorCode::MediationApprovalNotByResponsible
        );
        let by_employer = log(
            2,
            vec![entry(
                A,
                "available_to_company",
                json!({"kind": "employer"}),
            )],
        );
        assert_eq!(
            rejected(decide(Some(&s), &order(), &by_employer)),
            ErrorCode::MediationApprovalNotByResponsible
        );
        let approved = log(2, vec![entry(A, "available_to_company", responsible())]);
        assert!(matches!(
            decide(Some(&s), &order(), &approved),
            LogDecision::Apply(_)
        ));
    }

    #[test]
    fn every_move_into_available_to_company_is_an_approval_while_a_coordinator_is_allowed() {
        for from in ["withdrawn", "hired", "not_hired"] {
            let s = StoredLog::after(&log(1, vec![entry(A, from, akasse())]));
            for by in [
                akasse(),
                json!({"kind": "employer"}),
                json!({"kind": "system"}),
            ] {
                let back = log(2, vec![entry(A, "available_to_company", by.clone())]);
                assert_eq!(
                    rejected(decide(Some(&s), &order(), &back)),
                    ErrorCode::MediationApprovalNotByResponsible,
                    "{from} back by {by}"
                );
            }
            let by_responsible = log(2, vec![entry(A, "available_to_company", responsible())]);
            assert!(
                matches!(
                    decide(Some(&s), &order(), &by_responsible),
                    LogDecision::Apply(_)
                ),
                "{from} back by the responsible unit"
            );
        }
    }

    #[test]
    fn without_a_coordinator_the_registering_unit_moves_on_an_entry_awaiting_approval() {
        let no_coordinator = OrderFacts {
            coordinator_allowed: false,
            ..order()
        };
        let s = StoredLog::after(&log(1, vec![entry(A, "awaiting_approval", akasse())]));
        let by_registrant = log(2, vec![entry(A, "available_to_company", akasse())]);
        assert!(matches!(
            decide(Some(&s), &no_coordinator, &by_registrant),
            LogDecision::Apply(_)
        ));
        let by_responsible = log(2, vec![entry(A, "available_to_company", responsible())]);
        assert!(matches!(
            decide(Some(&s), &no_coordinator, &by_responsible),
            LogDecision::Apply(_)
        ));
        let by_employer = log(
            2,
            vec![entry(
                A,
                "available_to_company",
                json!({"kind": "employer"}),
            )],
        );
        assert_eq!(
            rejected(decide(Some(&s), &no_coordinator, &by_employer)),
            ErrorCode::MediationApprovalNotByResponsible
        );
        // Back from withdrawn needs no approval without a coordinator.
        let withdrawn = StoredLog::after(&log(1, vec![entry(A, "withdrawn", akasse())]));
        assert!(matches!(
            decide(Some(&withdrawn), &no_coordinator, &by_registrant),
            LogDecision::Apply(_)
        ));
    }

    #[test]
    fn an_entry_made_before_its_unit_gained_access_is_not_shared() {
        // The a-kasse was shared with at 08:30 on the 22nd; the entry is
        // from 09:00 (accepted) or 08:00 (before it could see the order).
        let mut shared_late = order();
        let akasse_unit = Unit::parse("u", "akasse", "1234").unwrap();
        shared_late
            .shared_with
            .insert(akasse_unit.clone(), at("2026-11-22T08:30:00Z"));
        let v1 = log(1, vec![entry(A, "awaiting_approval", akasse())]);
        assert!(matches!(
            decide(None, &shared_late, &v1),
            LogDecision::Apply(_)
        ));
        let mut early = entry(A, "awaiting_approval", akasse());
        early["registered_at"] = "2026-11-22T08:00:00Z".into();
        early["status_changed_at"] = "2026-11-22T08:00:00Z".into();
        assert_eq!(
            rejected(decide(None, &shared_late, &log(1, vec![early.clone()]))),
            ErrorCode::MediationUnitNotShared
        );
        // A former unit likewise: shared 08:30 to 09:30, the entry at 08:00.
        let mut former = order();
        former.shared_with.clear();
        former.former.insert(
            (akasse_unit, FormerRole::Shared),
            Spell {
                since: at("2026-11-22T08:30:00Z"),
                until: at("2026-11-22T09:30:00Z"),
            },
        );
        assert_eq!(
            rejected(decide(None, &former, &log(1, vec![early]))),
            ErrorCode::MediationUnitNotShared
        );
        assert!(matches!(decide(None, &former, &v1), LogDecision::Apply(_)));
        // The responsible unit since a handover at 09:30 had no say at 09:00.
        let mut handed_late = order();
        handed_late.timeline.responsible_since = at("2026-11-22T09:30:00Z");
        let mut own = entry(A, "awaiting_approval", responsible());
        own["registered_by"] = json!({"type": "jobcenter", "code": "15300"});
        assert_eq!(
            rejected(decide(None, &handed_late, &log(1, vec![own]))),
            ErrorCode::MediationUnitNotShared
        );
    }

    #[test]
    fn the_coordinator_setting_decides_where_a_new_entry_starts() {
        let skips = log(1, vec![entry(A, "available_to_company", akasse())]);
        assert_eq!(
            rejected(decide(None, &order(), &skips)),
            ErrorCode::MediationApprovalNotByResponsible
        );
        let no_coordinator = OrderFacts {
            coordinator_allowed: false,
            ..order()
        };
        assert!(matches!(
            decide(None, &no_coordinator, &skips),
            LogDecision::Apply(_)
        ));
        let waits = log(1, vec![entry(A, "awaiting_approval", akasse())]);
        assert_eq!(
            rejected(decide(None, &no_coordinator, &waits)),
            ErrorCode::MediationCoordinatorNotAllowed
        );
    }

    #[test]
    fn a_cpr_number_as_person_ref_is_rejected_and_duplicates_are_invalid() {
        let mut e = entry(A, "awaiting_approval", akasse());
        e["person_ref"] = "010190-1234".into();
        let data = json!({"job_order_id": ORDER, "version": 1, "entries": [e]});
        let r = parse(&data.to_string(), Some(ORDER)).unwrap_err();
        assert_eq!(r.code, ErrorCode::PersonRefCpr);
        assert!(r.message.starts_with("data.entries[0].person_ref"), "{r}");
        let twice = json!({"job_order_id": ORDER, "version": 1, "entries": [
            entry(A, "awaiting_approval", akasse()), entry(A, "withdrawn", akasse())
        ]});
        let r = parse(&twice.to_string(), Some(ORDER)).unwrap_err();
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert!(r.beyond_schema);
    }

    #[test]
    fn every_entry_is_checked_for_shape_before_any_unit_or_cpr_rule() {
        let code = |entries: Vec<Value>| {
            let data = json!({"job_order_id": ORDER, "version": 1, "entries": entries});
            parse(&data.to_string(), Some(ORDER)).unwrap_err().code
        };
        let mut unknown = entry(A, "awaiting_approval", akasse());
        unknown["registered_by"] = json!({"type": "jobcenter", "code": "99900"});
        let mut long_ref = entry(B, "awaiting_approval", akasse());
        long_ref["person_ref"] = "x".repeat(101).into();
        assert_eq!(
            code(vec![unknown.clone(), long_ref]),
            ErrorCode::SchemaInvalid
        );
        let mut cpr = entry(B, "awaiting_approval", akasse());
        cpr["person_ref"] = "010190-1234".into();
        assert_eq!(code(vec![cpr, unknown]), ErrorCode::UnitUnknownMunicipality);
    }

    #[test]
    fn counts_show_undecided_only_with_an_active_cv() {
        let c = Counts::of([
            (EntryStatus::AwaitingApproval, true),
            (EntryStatus::AvailableToCompany, true),
            (EntryStatus::AvailableToCompany, false),
            (EntryStatus::Hired, true),
        ]);
        assert_eq!(
            c,
            Counts {
                total: 4,
                awaiting_approval: 1,
                undecided: 1
            }
        );
    }

    #[test]
    fn an_entry_is_judged_by_the_order_as_it_stood_when_it_was_made() {
        let v1 = log(1, vec![entry(A, "awaiting_approval", akasse())]);
        // Closed at 09:30, after the entry was put forward at 09:00.
        let closed_later = OrderFacts {
            status: StatusKind::Closed,
            timeline: Timeline {
                closed_at: Some(at("2026-11-22T09:30:00Z")),
                ..order().timeline
            },
            ..order()
        };
        assert!(matches!(
            decide(None, &closed_later, &v1),
            LogDecision::Apply(_)
        ));
        // Unshared from the a-kasse at 09:30.
        let mut unshared_later = order();
        let akasse_unit = Unit::parse("u", "akasse", "1234").unwrap();
        unshared_later.shared_with.clear();
        unshared_later.former.insert(
            (akasse_unit.clone(), FormerRole::Shared),
            Spell {
                since: at("2026-11-20T08:00:00Z"),
                until: at("2026-11-22T09:30:00Z"),
            },
        );
        assert!(matches!(
            decide(None, &unshared_later, &v1),
            LogDecision::Apply(_)
        ));
        let mut unshared_before = unshared_later.clone();
        unshared_before.former.insert(
            (akasse_unit, FormerRole::Shared),
            Spell {
                since: at("2026-11-20T08:00:00Z"),
                until: at("2026-11-22T08:30:00Z"),
            },
        );
        assert_eq!(
            rejected(decide(None, &unshared_before, &v1)),
            ErrorCode::MediationUnitNotShared
        );
        // The employer opted out of a coordinator at 09:30; the entry waited
        // for approval from 09:00, when there was one.
        let opted_out_later = OrderFacts {
            coordinator_allowed: false,
            timeline: Timeline {
                closed_at: None,
                coordinator_allowed_since: at("2026-11-22T09:30:00Z"),
                ..order().timeline
            },
            ..order()
        };
        assert!(matches!(
            decide(None, &opted_out_later, &v1),
            LogDecision::Apply(_)
        ));
    }

    #[test]
    fn a_rule_broken_by_an_entry_newer_than_the_stored_order_waits_for_a_newer_order() {
        let mut e = entry(A, "awaiting_approval", akasse());
        e["registered_by"] = json!({"type": "akasse", "code": "9999"});
        e["registered_at"] = "2026-11-22T11:00:00Z".into();
        match decide(None, &order(), &log(1, vec![e])) {
            LogDecision::Wait(r) => assert_eq!(r.code, ErrorCode::MediationUnitNotShared),
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    #[test]
    fn the_same_log_written_otherwise_has_the_same_content_hash() {
        let mut b = entry(B, "awaiting_approval", akasse());
        let a = entry(A, "awaiting_approval", akasse());
        let one = log(1, vec![a.clone(), b.clone()]);
        b["mediation_id"] = B.to_uppercase().into();
        b["registered_at"] = "2026-11-22T10:00:00+01:00".into();
        let other = log(1, vec![b, a]);
        assert_eq!(one.content_hash, other.content_hash);
        let changed = log(1, vec![entry(A, "withdrawn", akasse())]);
        assert_ne!(one.content_hash, changed.content_hash);
    }
}
