//! A job order (jobordre) snapshot that passed every rule of section 4.1 that
//! can be checked on its own, and the rules that compare it with the stored
//! order ([`decide`]).

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::contact::Contact;
use super::cvr::Cvr;
use super::fields::{
    canonical_timestamp, parse_date, parse_order_id, parse_timestamp, parse_version,
};
use super::sharing::Sharing;
use super::status::{Status, StatusKind};
use super::text::{bounded, bounded_opt};
use super::unit::{Unit, UnitType};
use crate::contract::joborder as wire;
use crate::contract::rejection::{ErrorCode, Rejection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Created by the employer in Jobnet for Arbejdsgivere.
    JobAg,
    /// Created by a unit in its own case system.
    Unit,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::JobAg => "jobag",
            Origin::Unit => "unit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedBy {
    Employer,
    Unit(Unit),
    System,
}

impl ChangedBy {
    /// Validates a wire `changed_by` read from `field`.
    pub fn from_wire(field: &str, w: &wire::ChangedBy) -> Result<ChangedBy, Rejection> {
        let by = ChangedBy::shaped(field, w)?;
        by.check_municipality(field)?;
        Ok(by)
    }

    /// A `changed_by` of the right shape (`schema.invalid` otherwise), its
    /// unit's municipality judged later by [`ChangedBy::check_municipality`].
    pub fn shaped(field: &str, w: &wire::ChangedBy) -> Result<ChangedBy, Rejection> {
        Ok(match w {
            wire::ChangedBy::Employer => ChangedBy::Employer,
            wire::ChangedBy::System => ChangedBy::System,
            wire::ChangedBy::Unit { unit } => ChangedBy::Unit(Unit::shaped(
                &format!("{field}.unit"),
                &unit.kind,
                &unit.code,
            )?),
        })
    }

    /// `unit.unknown_municipality` when a jobcentre of no municipality made
    /// the change.
    pub fn check_municipality(&self, field: &str) -> Result<(), Rejection> {
        match self {
            ChangedBy::Unit(u) => u.check_municipality(&format!("{field}.unit")),
            _ => Ok(()),
        }
    }

    /// The unit, when a unit made the change.
    pub fn unit(&self) -> Option<&Unit> {
        match self {
            ChangedBy::Unit(u) => Some(u),
            _ => None,
        }
    }

    pub fn kind_str(&self) -> &'static str {
        match self {
            ChangedBy::Employer => "employer",
            ChangedBy::Unit(_) => "unit",
            ChangedBy::System => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupation {
    pub name: String,
    pub alias: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employer {
    pub cvr: Cvr,
    pub p_number: Option<String>,
    pub name: String,
    /// Konfliktramt: an employer in a labour conflict may not create orders.
    pub conflict_affected: bool,
}

/// Tovholder: the person in the responsible unit who screens candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptions {
    /// Shared with every unit that can see the order.
    pub tasks: String,
    /// Seen by the responsible unit only.
    pub qualifications_and_pay: Option<String>,
    /// Seen by the responsible unit only.
    pub working_hours: Option<String>,
}

/// A job order snapshot: the whole order at `version`, valid on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOrder {
    pub id: Uuid,
    pub version: i64,
    /// Anmodnings ID.
    pub request_id: Option<String>,
    pub origin: Origin,
    pub changed_by: ChangedBy,
    pub title: String,
    pub occupation: Occupation,
    pub employer: Employer,
    pub contact: Option<Contact>,
    /// Ansvarlig enhed: a jobcentre or an a-kasse.
    pub responsible_unit: Unit,
    pub coordinator: Option<Coordinator>,
    pub coordinator_allowed: bool,
    pub descriptions: Descriptions,
    /// Løbende jobordre: no number of positions, no expected start.
    pub continuous: bool,
    pub positions: Option<i32>,
    pub expected_start: Option<NaiveDate>,
    /// The last day candidates can be put forward.
    pub mediation_deadline: Option<NaiveDate>,
    pub status: Status,
    pub status_comment: Option<String>,
    pub sharing: Sharing,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// SHA-256 of [`JobOrder::wire`].
    pub content_hash: [u8; 32],
    /// The snapshot as the hub sent it, in canonical form (see
    /// [`canonical`]): what is stored, and what the views are made of.
    pub wire: wire::JobOrderData,
}

/// Parses the `data` of a job order event whose envelope has `subject`.
pub fn parse(data: &str, subject: Option<&str>) -> Result<JobOrder, Rejection> {
    let wire: wire::JobOrderData = crate::contract::from_json("data", data)?;
    JobOrder::try_from_wire(&wire, subject)
}

impl JobOrder {
    /// Validates a wire snapshot; `subject` is the envelope's.
    pub fn try_from_wire(
        w: &wire::JobOrderData,
        subject: Option<&str>,
    ) -> Result<JobOrder, Rejection> {
        // Section 4.3: every shape rule first (`schema.invalid`), then each
        // field's own rule in the order of the table in 4.1.
        let id = parse_order_id(&w.job_order_id, subject)?;
        let version = parse_version(w.version)?;
        bounded_opt("data.request_id", w.request_id.as_deref(), 100)?;
        let origin = match w.origin.as_str() {
            "jobag" => Origin::JobAg,
            "unit" => Origin::Unit,
            other => {
                return Err(Rejection::schema(
                    "data.origin",
                    format_args!("{other:?} is not jobag or unit"),
                ))
            }
        };
        let changed_by = ChangedBy::shaped("data.changed_by", &w.changed_by)?;
        bounded("data.title", &w.title, 1, 100)?;
        bounded("data.occupation.name", &w.occupation.name, 1, 200)?;
        bounded_opt("data.occupation.alias", w.occupation.alias.as_deref(), 200)?;
        bounded_opt("data.occupation.code", w.occupation.code.as_deref(), 50)?;
        Cvr::check_shape("data.employer.cvr", &w.employer.cvr)?;
        if let Some(p) = &w.employer.p_number {
            if p.len() != 10 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Rejection::schema(
                    "data.employer.p_number",
                    format_args!("{p:?} is not a P-number (exactly 10 digits)"),
                ));
            }
        }
        bounded("data.employer.name", &w.employer.name, 1, 300)?;
        if let Some(c) = &w.contact {
            Contact::check_shape("data.contact", c)?;
        }
        let responsible_unit = Unit::shaped(
            "data.responsible_unit",
            &w.responsible_unit.kind,
            &w.responsible_unit.code,
        )?;
        if responsible_unit.kind() == UnitType::WorkInDenmark {
            return Err(Rejection::schema(
                "data.responsible_unit.type",
                "workindenmark cannot be responsible; it is jobcenter or akasse",
            ));
        }
        if let Some(c) = &w.coordinator {
            bounded("data.coordinator.id", &c.id, 1, 100)?;
            bounded("data.coordinator.name", &c.name, 1, 200)?;
        }
        bounded("data.descriptions.tasks", &w.descriptions.tasks, 1, 5000)?;
        bounded_opt(
            "data.descriptions.qualifications_and_pay",
            w.descriptions.qualifications_and_pay.as_deref(),
            5000,
        )?;
        bounded_opt(
            "data.descriptions.working_hours",
            w.descriptions.working_hours.as_deref(),
            5000,
        )?;
        let positions = match w.positions {
            None => None,
            Some(p) if (1..=i64::from(i32::MAX)).contains(&p) => Some(p as i32),
            Some(p) => {
                return Err(Rejection::schema(
                    "data.positions",
                    format_args!("{p} is out of range (1 to {})", i32::MAX),
                ))
            }
        };
        let expected_start = w
            .expected_start
            .as_deref()
            .map(|d| parse_date("data.expected_start", d))
            .transpose()?;
        let mediation_deadline = w
            .mediation_deadline
            .as_deref()
            .map(|d| parse_date("data.mediation_deadline", d))
            .transpose()?;
        Status::check_shape(&w.status, w.status_reason.as_deref())?;
        bounded_opt("data.status_comment", w.status_comment.as_deref(), 5000)?;
        super::sharing::check_shape(&w.sharing)?;
        let created_at = parse_timestamp("data.created_at", &w.created_at)?;
        let updated_at = parse_timestamp("data.updated_at", &w.updated_at)?;

        // Each field's own rule, in the table's order.
        changed_by.check_municipality("data.changed_by")?;
        let cvr = Cvr::parse("data.employer.cvr", &w.employer.cvr)?;
        let contact = w
            .contact
            .as_ref()
            .map(|c| Contact::parse("data.contact", c))
            .transpose()?;
        responsible_unit.check_municipality("data.responsible_unit")?;
        if w.continuous && (positions.is_some() || expected_start.is_some()) {
            let field = if positions.is_some() {
                "data.positions"
            } else {
                "data.expected_start"
            };
            return Err(Rejection::new(
                ErrorCode::PositionsContinuous,
                format!(
                    "{field}: a continuous order has no number of positions and no expected start"
                ),
            ));
        }
        if !w.continuous && positions.is_none() {
            return Err(Rejection::new(
                ErrorCode::PositionsContinuous,
                "data.positions: an order that is not continuous needs a number of positions",
            ));
        }
        let status = Status::parse(&w.status, w.status_reason.as_deref())?;
        let sharing_units = super::sharing::parse_units(&w.sharing)?;
        let sharing = Sharing::new(&w.sharing.scope, sharing_units, &responsible_unit)?;
        let wire = canonical(w, id, created_at, updated_at);
        Ok(JobOrder {
            id,
            version,
            request_id: w.request_id.clone(),
            origin,
            changed_by,
            title: w.title.clone(),
            occupation: Occupation {
                name: w.occupation.name.clone(),
                alias: w.occupation.alias.clone(),
                code: w.occupation.code.clone(),
            },
            employer: Employer {
                cvr,
                p_number: w.employer.p_number.clone(),
                name: w.employer.name.clone(),
                conflict_affected: w.employer.conflict_affected,
            },
            contact,
            responsible_unit,
            coordinator: w.coordinator.as_ref().map(|c| Coordinator {
                id: c.id.clone(),
                name: c.name.clone(),
            }),
            coordinator_allowed: w.coordinator_allowed,
            descriptions: Descriptions {
                tasks: w.descriptions.tasks.clone(),
                qualifications_and_pay: w.descriptions.qualifications_and_pay.clone(),
                working_hours: w.descriptions.working_hours.clone(),
            },
            continuous: w.continuous,
            positions,
            expected_start,
            mediation_deadline,
            status,
            status_comment: w.status_comment.clone(),
            sharing,
            created_at,
            updated_at,
            content_hash: Sha256::digest(
                serde_json::to_vec(&wire).expect("wire structs always serialize"),
            )
            .into(),
            wire,
        })
    }
}

/// The wire snapshot in a canonical form: the same fields in a fixed order,
/// unknown fields gone, the id in lower case, timestamps in UTC and the
/// sharing units sorted, so that two deliveries of one version compare equal
/// however the hub wrote them.
pub fn canonical(
    w: &wire::JobOrderData,
    id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> wire::JobOrderData {
    let mut c = w.clone();
    c.job_order_id = id.to_string();
    c.created_at = canonical_timestamp(created_at);
    c.updated_at = canonical_timestamp(updated_at);
    c.sharing
        .units
        .sort_by(|a, b| (&a.kind, &a.code).cmp(&(&b.kind, &b.code)));
    c
}

/// What of the stored order the rules of section 4.1 compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    pub version: i64,
    pub content_hash: Vec<u8>,
    pub responsible_unit: Unit,
    pub status: StatusKind,
    pub coordinator_reassignment_needed: bool,
    /// The coordinator in place when the order was last handed over.
    pub handover_coordinator_id: Option<String>,
    pub coordinator_allowed: bool,
    pub timeline: Timeline,
}

/// When the facts that the mediation log rules judge an entry by took their
/// current values, so that an entry made before can be judged by the order
/// as it stood then (the two streams arrive independently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// `updated_at` of the version that closed the order; `None` while it is
    /// not closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Since when `coordinator_allowed` has its current value: `updated_at`
    /// of the version that changed it, `created_at` when never changed.
    pub coordinator_allowed_since: DateTime<Utc>,
    /// Since when the responsible unit has been responsible: `updated_at` of
    /// the handover version, `created_at` when never handed over (or when
    /// the first version jobsync saw already named it).
    pub responsible_since: DateTime<Utc>,
}

impl Timeline {
    /// The timeline after `order` is applied on top of `stored`.
    pub fn after(stored: Option<&StoredOrder>, order: &JobOrder) -> Timeline {
        let closed = order.status.kind() == StatusKind::Closed;
        let closed_at = match stored {
            _ if !closed => None,
            Some(s) if s.status == StatusKind::Closed => {
                s.timeline.closed_at.or(Some(order.updated_at))
            }
            _ => Some(order.updated_at),
        };
        let coordinator_allowed_since = match stored {
            Some(s) if s.coordinator_allowed == order.coordinator_allowed => {
                s.timeline.coordinator_allowed_since
            }
            Some(_) => order.updated_at,
            None => order.created_at,
        };
        let responsible_since = match stored {
            Some(s) if s.responsible_unit == order.responsible_unit => s.timeline.responsible_since,
            Some(_) => order.updated_at,
            None => order.created_at,
        };
        Timeline {
            closed_at,
            coordinator_allowed_since,
            responsible_since,
        }
    }
}

impl StoredOrder {
    /// The stored state after `order` was applied with `applied`.
    pub fn after(order: &JobOrder, applied: &Applied) -> StoredOrder {
        StoredOrder {
            version: order.version,
            content_hash: order.content_hash.to_vec(),
            responsible_unit: order.responsible_unit.clone(),
            status: order.status.kind(),
            coordinator_reassignment_needed: applied.coordinator_reassignment_needed,
            handover_coordinator_id: applied.handover_coordinator_id.clone(),
            coordinator_allowed: order.coordinator_allowed,
            timeline: applied.timeline.clone(),
        }
    }
}

/// What applying a snapshot derives beyond the snapshot itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub coordinator_reassignment_needed: bool,
    pub handover_coordinator_id: Option<String>,
    /// The previous responsible unit, when this version is a handover.
    pub handed_over_from: Option<Unit>,
    pub timeline: Timeline,
}

/// The fate of a snapshot given the stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Newer than what is stored (or the first seen): store it.
    Apply(Applied),
    /// Older than what is stored: acknowledged, no effect.
    Stale,
    /// The stored version with the same content: no effect.
    Duplicate,
    Reject(Rejection),
}

/// Facts about the order beyond its row that the rules need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Whether the order's mediation log has any entry.
    pub has_mediation_entries: bool,
}

/// Applies the rules of section 4.1 that compare `order` with `stored` (the
/// order as stored, `None` when never seen).
pub fn decide(stored: Option<&StoredOrder>, order: &JobOrder, context: Context) -> Decision {
    let Some(stored) = stored else {
        if order.origin == Origin::JobAg && order.employer.conflict_affected {
            return Decision::Reject(Rejection::beyond_schema(
                ErrorCode::EmployerConflictAffected,
                format!(
                    "data.employer.conflict_affected: employer {} is in a labour conflict and may not create job orders",
                    order.employer.cvr
                ),
            ));
        }
        return Decision::Apply(Applied {
            coordinator_reassignment_needed: false,
            handover_coordinator_id: None,
            handed_over_from: None,
            timeline: Timeline::after(None, order),
        });
    };
    if order.version < stored.version {
        return Decision::Stale;
    }
    if order.version == stored.version {
        return if stored.content_hash == order.content_hash {
            Decision::Duplicate
        } else {
            Decision::Reject(Rejection::beyond_schema(
                ErrorCode::VersionConflict,
                format!(
                    "data.version: version {} of job order {} is stored with other content",
                    order.version, order.id
                ),
            ))
        };
    }
    let by_employer = order.changed_by == ChangedBy::Employer;
    if by_employer
        && order.status.kind() != stored.status
        && order
            .status_comment
            .as_deref()
            .is_none_or(super::text::is_blank)
    {
        return Decision::Reject(Rejection::beyond_schema(
            ErrorCode::StatusCommentRequired,
            format!(
                "data.status_comment: the employer changed the status from {} to {} without a comment",
                stored.status.as_str(),
                order.status.kind().as_str()
            ),
        ));
    }
    let new_coordinator = order.coordinator.as_ref().map(|c| c.id.as_str());
    if order.responsible_unit != stored.responsible_unit {
        if by_employer {
            return Decision::Reject(Rejection::beyond_schema(
                ErrorCode::HandoverByEmployer,
                format!(
                    "data.responsible_unit: the employer cannot hand the order over (from {} to {})",
                    stored.responsible_unit, order.responsible_unit
                ),
            ));
        }
        if stored.responsible_unit.kind() == UnitType::Akasse
            && order.responsible_unit.kind() == UnitType::Akasse
            && context.has_mediation_entries
        {
            return Decision::Reject(Rejection::beyond_schema(
                ErrorCode::HandoverAkasseWithCandidates,
                format!(
                    "data.responsible_unit: a-kasse {} cannot hand the order to a-kasse {} while candidates are attached",
                    stored.responsible_unit, order.responsible_unit
                ),
            ));
        }
        // The coordinator is not changed on handover: the handover version is
        // made by the unit handing over, so the coordinator it names is the
        // old unit's (whatever versions were skipped), and the new unit must
        // appoint another than that one.
        return Decision::Apply(Applied {
            coordinator_reassignment_needed: true,
            handover_coordinator_id: new_coordinator.map(str::to_owned),
            handed_over_from: Some(stored.responsible_unit.clone()),
            timeline: Timeline::after(Some(stored), order),
        });
    }
    let needed = stored.coordinator_reassignment_needed
        && !names_another(new_coordinator, stored.handover_coordinator_id.as_deref());
    Decision::Apply(Applied {
        coordinator_reassignment_needed: needed,
        handover_coordinator_id: if needed {
            stored.handover_coordinator_id.clone()
        } else {
            None
        },
        handed_over_from: None,
        timeline: Timeline::after(Some(stored), order),
    })
}

/// Whether `new` names a coordinator other than `old`.
fn names_another(new: Option<&str>, old: Option<&str>) -> bool {
    matches!(new, Some(n) if Some(n) != old)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00";

    fn order(version: u64, edit: impl FnOnce(&mut serde_json::Value)) -> JobOrder {
        let mut data = json!({
            "job_order_id": ID, "version": version, "origin": "unit",
            "changed_by": {"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}},
            "title": "Lagermedarbejder", "occupation": {"name": "Lagermedarbejder"},
            "employer": {"cvr": "10150817", "name": "Brøndby Lager ApS"},
            "responsible_unit": {"type": "jobcenter", "code": "15300"},
            "coordinator": {"id": "c-1", "name": "Åse"}, "coordinator_allowed": true,
            "descriptions": {"tasks": "Pluk og pak."}, "continuous": false, "positions": 1,
            "status": "open", "sharing": {"scope": "internal"},
            "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z"
        });
        edit(&mut data);
        parse(&data.to_string(), Some(ID)).unwrap()
    }

    fn stored(o: &JobOrder) -> StoredOrder {
        StoredOrder::after(
            o,
            &Applied {
                coordinator_reassignment_needed: false,
                handover_coordinator_id: None,
                handed_over_from: None,
                timeline: Timeline::after(None, o),
            },
        )
    }

    fn rejected(d: Decision) -> ErrorCode {
        match d {
            Decision::Reject(r) => r.code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn older_versions_are_stale_and_the_same_version_compares_content() {
        let v2 = order(2, |_| {});
        let s = stored(&v2);
        assert_eq!(
            decide(Some(&s), &order(1, |_| {}), Context::default()),
            Decision::Stale
        );
        assert_eq!(
            decide(Some(&s), &order(2, |_| {}), Context::default()),
            Decision::Duplicate
        );
        let other = order(2, |d| d["title"] = "Truckfører".into());
        assert_eq!(
            rejected(decide(Some(&s), &other, Context::default())),
            ErrorCode::VersionConflict
        );
    }

    #[test]
    fn only_the_first_version_of_a_jobag_order_checks_the_labour_conflict() {
        let conflicted = |v| {
            order(v, |d| {
                d["origin"] = "jobag".into();
                d["employer"]["conflict_affected"] = true.into();
            })
        };
        assert_eq!(
            rejected(decide(None, &conflicted(1), Context::default())),
            ErrorCode::EmployerConflictAffected
        );
        let s = stored(&order(1, |_| {}));
        assert!(matches!(
            decide(Some(&s), &conflicted(2), Context::default()),
            Decision::Apply(_)
        ));
        let from_unit = order(1, |d| d["employer"]["conflict_affected"] = true.into());
        assert!(matches!(
            decide(None, &from_unit, Context::default()),
            Decision::Apply(_)
        ));
    }

    #[test]
    fn an_employer_changing_the_status_needs_a_comment() {
        let s = stored(&order(1, |_| {}));
        let closed = |comment: Option<&str>| {
            order(2, |d| {
                d["changed_by"] = json!({"kind": "employer"});
                d["status"] = "closed".into();
                d["status_reason"] = "need_fulfilled".into();
                d["status_comment"] = comment.into();
            })
        };
        assert_eq!(
            rejected(decide(Some(&s), &closed(None), Context::default())),
            ErrorCode::StatusCommentRequired
        );
        assert_eq!(
            rejected(decide(Some(&s), &closed(Some(" ")), Context::default())),
            ErrorCode::StatusCommentRequired
        );
        assert!(matches!(
            decide(Some(&s), &closed(Some("Besat.")), Context::default()),
            Decision::Apply(_)
        ));
    }

    #[test]
    fn an_akasse_hands_to_an_akasse_only_without_candidates() {
        let akasse = |v, code: &str| {
            let code = code.to_owned();
            order(v, move |d| {
                d["responsible_unit"] = json!({"type": "akasse", "code": code});
                d["changed_by"] = json!({"kind": "system"});
            })
        };
        let s = stored(&akasse(1, "11"));
        let with = Context {
            has_mediation_entries: true,
        };
        assert_eq!(
            rejected(decide(Some(&s), &akasse(2, "22"), with)),
            ErrorCode::HandoverAkasseWithCandidates
        );
        assert!(matches!(
            decide(Some(&s), &akasse(2, "22"), Context::default()),
            Decision::Apply(_)
        ));
        let to_jobcentre = order(2, |d| d["changed_by"] = json!({"kind": "system"}));
        assert!(matches!(
            decide(Some(&s), &to_jobcentre, with),
            Decision::Apply(_)
        ));
        let by_employer = order(2, |d| {
            d["changed_by"] = json!({"kind": "employer"});
            d["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
        });
        assert_eq!(
            rejected(decide(Some(&s), &by_employer, Context::default())),
            ErrorCode::HandoverByEmployer
        );
    }

    #[test]
    fn a_handover_needs_a_coordinator_until_another_is_named() {
        let s1 = stored(&order(1, |_| {}));
        let handed = |v, coordinator: serde_json::Value| {
            order(v, move |d| {
                d["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
                d["coordinator"] = coordinator;
            })
        };
        let v2 = handed(2, json!({"id": "c-1", "name": "Åse"}));
        let Decision::Apply(a2) = decide(Some(&s1), &v2, Context::default()) else {
            panic!()
        };
        assert!(a2.coordinator_reassignment_needed);
        assert_eq!(
            a2.handed_over_from
                .as_ref()
                .map(|u| u.to_string())
                .as_deref(),
            Some("jobcenter:15300")
        );
        let s2 = StoredOrder::after(&v2, &a2);
        let v3 = handed(3, serde_json::Value::Null);
        let Decision::Apply(a3) = decide(Some(&s2), &v3, Context::default()) else {
            panic!()
        };
        assert!(
            a3.coordinator_reassignment_needed,
            "no coordinator is not a new one"
        );
        let s3 = StoredOrder::after(&v3, &a3);
        let v4 = handed(4, json!({"id": "kbh-9", "name": "Mette"}));
        let Decision::Apply(a4) = decide(Some(&s3), &v4, Context::default()) else {
            panic!()
        };
        assert!(!a4.coordinator_reassignment_needed);
    }

    #[test]
    fn the_flag_is_judged_by_the_coordinator_the_handover_version_names() {
        // v1 names c-1; v2 (never seen here) named c-2; v3 hands over, made by
        // the unit handing over, still naming c-2.
        let s1 = stored(&order(1, |_| {}));
        let with = |v, coordinator: &str| {
            let coordinator = coordinator.to_owned();
            order(v, move |d| {
                d["responsible_unit"] = json!({"type": "jobcenter", "code": "10100"});
                d["coordinator"] = json!({"id": coordinator, "name": "N"});
            })
        };
        let v3 = with(3, "c-2");
        let Decision::Apply(a3) = decide(Some(&s1), &v3, Context::default()) else {
            panic!()
        };
        assert!(a3.coordinator_reassignment_needed, "raised by the handover");
        let s3 = StoredOrder::after(&v3, &a3);
        let v4 = with(4, "c-2");
        let Decision::Apply(a4) = decide(Some(&s3), &v4, Context::default()) else {
            panic!()
        };
        assert!(
            a4.coordinator_reassignment_needed,
            "c-2 is the handover version's own coordinator, not a new one"
        );
        let s4 = StoredOrder::after(&v4, &a4);
        let v5 = with(5, "c-1");
        let Decision::Apply(a5) = decide(Some(&s4), &v5, Context::default()) else {
            panic!()
        };
        assert!(
            !a5.coordinator_reassignment_needed,
            "c-1 differs from what the handover version named"
        );
    }

    /// The code of the first rule `edit` breaks, in the order of 4.3.
    fn first_fault(edit: impl FnOnce(&mut serde_json::Value)) -> ErrorCode {
        let mut data = json!({
            "job_order_id": ID, "version": 2, "origin": "unit",
            "changed_by": {"kind": "unit", "unit": {"type": "jobcenter", "code": "15300"}},
            "title": "Lagermedarbejder", "occupation": {"name": "Lagermedarbejder"},
            "employer": {"cvr": "10150817", "name": "Brøndby Lager ApS"},
            "contact": {"name": "Jens", "email": "jens@lager.dk"},
            "responsible_unit": {"type": "jobcenter", "code": "15300"},
            "coordinator": {"id": "c-1", "name": "Åse"}, "coordinator_allowed": true,
            "descriptions": {"tasks": "Pluk og pak."}, "continuous": false, "positions": 1,
            "status": "open",
            "sharing": {"scope": "selected", "units": [{"type": "jobcenter", "code": "16700"}]},
            "created_at": "2026-11-20T08:00:00Z", "updated_at": "2026-11-20T08:00:00Z"
        });
        edit(&mut data);
        parse(&data.to_string(), Some(ID)).unwrap_err().code
    }

    #[test]
    fn every_shape_comes_first_then_each_field_rule_in_the_order_of_the_table() {
        use ErrorCode::*;
        // Two faults each; the first in the order of section 4.3 wins.
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, ErrorCode, Edit)> = vec![
            (
                "bad reason value + bad sharing unit code",
                SchemaInvalid,
                Box::new(|d| {
                    d["status_reason"] = "enough_referrals".into();
                    d["sharing"]["units"][0]["code"] = "16a00".into();
                }),
            ),
            (
                "reason not fitting + bad sharing unit code",
                SchemaInvalid,
                Box::new(|d| {
                    d["status"] = "closed".into();
                    d["sharing"]["units"][0]["code"] = "16a00".into();
                }),
            ),
            (
                "unknown scope + bad CVR",
                SchemaInvalid,
                Box::new(|d| {
                    d["sharing"]["scope"] = "everyone".into();
                    d["employer"]["cvr"] = "10150818".into();
                }),
            ),
            (
                "unknown scope + bad e-mail",
                SchemaInvalid,
                Box::new(|d| {
                    d["sharing"]["scope"] = "everyone".into();
                    d["contact"]["email"] = "jens".into();
                }),
            ),
            (
                "e-mail over 254 + bad CVR",
                SchemaInvalid,
                Box::new(|d| {
                    d["contact"]["email"] = format!("{}@lager.dk", "j".repeat(250)).into();
                    d["employer"]["cvr"] = "10150818".into();
                }),
            ),
            (
                "changed_by municipality + bad CVR",
                UnitUnknownMunicipality,
                Box::new(|d| {
                    d["changed_by"]["unit"]["code"] = "99900".into();
                    d["employer"]["cvr"] = "10150818".into();
                }),
            ),
            (
                "bad CVR + bad e-mail",
                CvrChecksum,
                Box::new(|d| {
                    d["employer"]["cvr"] = "10150818".into();
                    d["contact"]["email"] = "jens".into();
                }),
            ),
            (
                "bad e-mail + responsible municipality",
                ContactEmail,
                Box::new(|d| {
                    d["contact"]["email"] = "jens".into();
                    d["responsible_unit"]["code"] = "99900".into();
                }),
            ),
            (
                "CPR in the phone + positions",
                ContactCpr,
                Box::new(|d| {
                    d["contact"]["phone"] = "+0101901234".into();
                    d["positions"] = serde_json::Value::Null;
                }),
            ),
            (
                "positions + reason",
                PositionsContinuous,
                Box::new(|d| {
                    d["continuous"] = true.into();
                    d["status"] = "closed".into();
                }),
            ),
            (
                "reason + sharing municipality",
                StatusReason,
                Box::new(|d| {
                    d["status"] = "closed".into();
                    d["sharing"]["units"][0]["code"] = "99900".into();
                }),
            ),
            (
                "sharing municipality + bad CVR",
                CvrChecksum,
                Box::new(|d| {
                    d["sharing"]["units"][0]["code"] = "99900".into();
                    d["employer"]["cvr"] = "10150818".into();
                }),
            ),
            (
                "sharing municipality + duplicate unit",
                UnitUnknownMunicipality,
                Box::new(|d| {
                    d["sharing"]["units"] = json!([
                        {"type": "jobcenter", "code": "99900"},
                        {"type": "jobcenter", "code": "16700"},
                        {"type": "jobcenter", "code": "16700"}
                    ]);
                }),
            ),
        ];
        for (what, code, edit) in cases {
            assert_eq!(first_fault(edit), code, "{what}");
        }
    }

    #[test]
    fn an_address_or_a_number_with_a_cpr_number_is_refused_and_identifiers_are_free() {
        assert_eq!(
            first_fault(|d| d["contact"]["email"] = "0101901234@lager.dk".into()),
            ErrorCode::ContactCpr
        );
        assert_eq!(
            first_fault(|d| d["contact"]["phone"] = "+0101901234".into()),
            ErrorCode::ContactCpr
        );
        let o = order(1, |d| {
            d["request_id"] = "010190-1234".into();
            d["coordinator"]["id"] = "0101901234".into();
            d["occupation"]["code"] = "010190-1234".into();
            d["employer"]["p_number"] = "0101901234".into();
        });
        assert_eq!(o.request_id.as_deref(), Some("010190-1234"));
    }

    #[test]
    fn the_same_order_written_otherwise_has_the_same_content_hash() {
        let shared = |units: serde_json::Value, updated_at: &str| {
            let updated_at = updated_at.to_owned();
            order(1, move |d| {
                d["sharing"] = json!({"scope": "neighbours", "units": units});
                d["updated_at"] = updated_at.into();
            })
        };
        let a = json!({"type": "jobcenter", "code": "16700"});
        let b = json!({"type": "jobcenter", "code": "18300"});
        let one = shared(json!([a, b]), "2026-11-20T08:00:00Z");
        let other = shared(json!([b, a]), "2026-11-20T09:00:00+01:00");
        assert_eq!(one.content_hash, other.content_hash);
        let upper = order(1, |d| d["job_order_id"] = ID.to_uppercase().into());
        assert_eq!(upper.content_hash, order(1, |_| {}).content_hash);
    }

    #[test]
    fn the_timeline_keeps_when_the_order_closed_and_when_the_coordinator_setting_changed() {
        let v1 = order(1, |_| {});
        let t1 = Timeline::after(None, &v1);
        assert_eq!(t1.closed_at, None);
        assert_eq!(t1.coordinator_allowed_since, v1.created_at);
        let close = |v, updated_at: &str| {
            let updated_at = updated_at.to_owned();
            order(v, move |d| {
                d["status"] = "closed".into();
                d["status_reason"] = "other".into();
                d["coordinator_allowed"] = false.into();
                d["updated_at"] = updated_at.into();
            })
        };
        let s1 = stored(&v1);
        let v2 = close(2, "2026-11-21T08:00:00Z");
        let Decision::Apply(a2) = decide(Some(&s1), &v2, Context::default()) else {
            panic!()
        };
        assert_eq!(a2.timeline.closed_at, Some(v2.updated_at));
        assert_eq!(a2.timeline.coordinator_allowed_since, v2.updated_at);
        let s2 = StoredOrder::after(&v2, &a2);
        let v3 = close(3, "2026-11-22T08:00:00Z");
        let Decision::Apply(a3) = decide(Some(&s2), &v3, Context::default()) else {
            panic!()
        };
        assert_eq!(a3.timeline, a2.timeline, "still closed since v2");
        let s3 = StoredOrder::after(&v3, &a3);
        let Decision::Apply(a4) = decide(
            Some(&s3),
            &order(4, |d| d["coordinator_allowed"] = false.into()),
            Context::default(),
        ) else {
            panic!()
        };
        assert_eq!(a4.timeline.closed_at, None, "reopened");
    }
}
