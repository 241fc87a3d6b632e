//! A job order's status with its reason: a reason must fit its status.

use crate::contract::rejection::{ErrorCode, Rejection};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Open,
    TemporarilyInactive,
    Closed,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Open => "open",
            StatusKind::TemporarilyInactive => "temporarily_inactive",
            StatusKind::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(StatusKind::Open),
            "temporarily_inactive" => Some(StatusKind::TemporarilyInactive),
            "closed" => Some(StatusKind::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    UnderProcessing,
    EnoughReferrals,
    NeedFulfilled,
    DeadlineExpired,
    Other,
}

impl StatusReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::UnderProcessing => "under_processing",
            StatusReason::EnoughReferrals => "enough_referrals",
            StatusReason::NeedFulfilled => "need_fulfilled",
            StatusReason::DeadlineExpired => "deadline_expired",
            StatusReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "under_processing" => Some(StatusReason::UnderProcessing),
            "enough_referrals" => Some(StatusReason::EnoughReferrals),
            "need_fulfilled" => Some(StatusReason::NeedFulfilled),
            "deadline_expired" => Some(StatusReason::DeadlineExpired),
            "other" => Some(StatusReason::Other),
            _ => None,
        }
    }
}

/// A status and a reason that fits it: `open` → none or `under_processing`;
/// `temporarily_inactive` → none, `enough_referrals` or `other`; `closed` →
/// `need_fulfilled`, `deadline_expired` or `other` (required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    kind: StatusKind,
    reason: Option<StatusReason>,
}

impl Status {
    /// Validates a status and its reason: their shape
    /// ([`Status::check_shape`]), then whether the reason fits the status.
    pub fn parse(status: &str, reason: Option<&str>) -> Result<Status, Rejection> {
        let (kind, reason) = Status::check_shape(status, reason)?;
        use StatusReason::*;
        let fits = match kind {
            StatusKind::Open => matches!(reason, None | Some(UnderProcessing)),
            StatusKind::TemporarilyInactive => {
                matches!(reason, None | Some(EnoughReferrals | Other))
            }
            StatusKind::Closed => matches!(reason, Some(NeedFulfilled | DeadlineExpired | Other)),
        };
        if !fits {
            let allowed = match kind {
                StatusKind::Open => "none or under_processing",
                StatusKind::TemporarilyInactive => "none, enough_referrals or other",
                StatusKind::Closed => "need_fulfilled, deadline_expired or other (required)",
            };
            return Err(Rejection::new(
                ErrorCode::StatusReason,
                format!(
                    "data.status_reason: {} does not fit status {}; it takes {allowed}",
                    reason.map_or("none", StatusReason::as_str),
                    kind.as_str()
                ),
            ));
        }
        Ok(Status { kind, reason })
    }

    /// The shape rules (`schema.invalid`): a known status, and a reason that
    /// is one of the known reasons when present.
    pub fn check_shape(
        status: &str,
        reason: Option<&str>,
    ) -> Result<(StatusKind, Option<StatusReason>), Rejection> {
        let kind = StatusKind::parse(status).ok_or_else(|| {
            Rejection::schema(
                "data.status",
                format_args!("{status:?} is not one of open, temporarily_inactive, closed"),
            )
        })?;
        let reason = reason
            .map(|r| {
                StatusReason::parse(r).ok_or_else(|| {
                    Rejection::schema(
                        "data.status_reason",
                        format_args!(
                            "{r:?} is not one of under_processing, enough_referrals, need_fulfilled, deadline_expired, other"
                        ),
                    )
                })
            })
            .transpose()?;
        Ok((kind, reason))
    }

    pub fn kind(self) -> StatusKind {
        self.kind
    }

    pub fn reason(self) -> Option<StatusReason> {
        self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_takes_its_own_reasons() {
        let ok = |s, r| Status::parse(s, r).is_ok();
        assert!(ok("open", None));
        assert!(ok("open", Some("under_processing")));
        assert!(!ok("open", Some("enough_referrals")));
        assert!(ok("temporarily_inactive", None));
        assert!(ok("temporarily_inactive", Some("other")));
        assert!(!ok("temporarily_inactive", Some("need_fulfilled")));
        assert!(!ok("closed", None));
        assert!(ok("closed", Some("deadline_expired")));
    }

    #[test]
    fn an_unknown_status_is_a_schema_error_and_a_misfit_reason_its_own() {
        assert_eq!(
            Status::parse("deleted", None).unwrap_err().code,
            ErrorCode::SchemaInvalid
        );
        assert_eq!(
            Status::parse("open", Some("bored")).unwrap_err().code,
            ErrorCode::SchemaInvalid
        );
        assert_eq!(
            Status::parse("closed", None).unwrap_err().code,
            ErrorCode::StatusReason
        );
    }
}
