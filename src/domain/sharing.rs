//! Who besides the responsible unit may see an order.

use std::collections::HashSet;

use super::unit::{Unit, UnitType};
use crate::contract::joborder as wire;
use crate::contract::rejection::{ErrorCode, Rejection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingScope {
    Internal,
    Neighbours,
    RecruitmentCommunity,
    National,
    Selected,
}

impl SharingScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SharingScope::Internal => "internal",
            SharingScope::Neighbours => "neighbours",
            SharingScope::RecruitmentCommunity => "recruitment_community",
            SharingScope::National => "national",
            SharingScope::Selected => "selected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "internal" => Some(SharingScope::Internal),
            "neighbours" => Some(SharingScope::Neighbours),
            "recruitment_community" => Some(SharingScope::RecruitmentCommunity),
            "national" => Some(SharingScope::National),
            "selected" => Some(SharingScope::Selected),
            _ => None,
        }
    }
}

/// Sharing that fits its scope and its responsible unit: `internal` lists no
/// unit, any other scope at least one; no unit twice; never the responsible
/// unit; a responsible a-kasse shares only with a-kasser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharing {
    scope: SharingScope,
    units: Vec<Unit>,
}

impl Sharing {
    /// Applies the rules of sharing to `units` (from [`parse_units`]) under
    /// the wire `scope`, for an order whose responsible unit is `responsible`.
    pub fn new(scope: &str, units: Vec<Unit>, responsible: &Unit) -> Result<Sharing, Rejection> {
        let scope = SharingScope::parse(scope).ok_or_else(|| unknown_scope(scope))?;
        let invalid =
            |why: String| Rejection::new(ErrorCode::SharingInvalid, format!("data.sharing: {why}"));
        match (scope, units.is_empty()) {
            (SharingScope::Internal, false) => {
                return Err(invalid(format!(
                    "an internal order lists no units, this one lists {}",
                    units.len()
                )))
            }
            (SharingScope::Internal, true) => {}
            (_, true) => {
                return Err(invalid(format!(
                    "scope {} shares with at least one unit, none is listed",
                    scope.as_str()
                )))
            }
            (_, false) => {}
        }
        let mut seen = HashSet::with_capacity(units.len());
        for unit in &units {
            if !seen.insert(unit) {
                return Err(invalid(format!("{unit} is listed twice")));
            }
        }
        if units.contains(responsible) {
            return Err(Rejection::beyond_schema(
                ErrorCode::SharingInvalid,
                format!("data.sharing: lists the responsible unit {responsible}"),
            ));
        }
        if responsible.kind() == UnitType::Akasse {
            if let Some((i, unit)) = units
                .iter()
                .enumerate()
                .find(|(_, u)| u.kind() != UnitType::Akasse)
            {
                return Err(Rejection::new(
                    ErrorCode::SharingAkasseToJobcenter,
                    format!(
                        "data.sharing.units[{i}]: {unit} is not an a-kasse; the responsible a-kasse {responsible} may share only with a-kasser"
                    ),
                ));
            }
        }
        Ok(Sharing { scope, units })
    }

    /// Rebuilds sharing from trusted storage.
    pub fn from_stored(scope: SharingScope, units: Vec<Unit>) -> Sharing {
        Sharing { scope, units }
    }

    pub fn scope(&self) -> SharingScope {
        self.scope
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }
}

/// The shape rules of wire sharing (`schema.invalid`): a known scope and
/// units of the right shape, naming the failing one.
pub fn check_shape(wire: &wire::Sharing) -> Result<(), Rejection> {
    if SharingScope::parse(&wire.scope).is_none() {
        return Err(unknown_scope(&wire.scope));
    }
    for (i, u) in wire.units.iter().enumerate() {
        Unit::check_shape(&format!("data.sharing.units[{i}]"), &u.kind, &u.code)?;
    }
    Ok(())
}

fn unknown_scope(scope: &str) -> Rejection {
    Rejection::schema(
        "data.sharing.scope",
        format_args!(
            "{scope:?} is not one of internal, neighbours, recruitment_community, national, selected"
        ),
    )
}

/// Parses the units of wire sharing, naming the failing one.
pub fn parse_units(wire: &wire::Sharing) -> Result<Vec<Unit>, Rejection> {
    wire.units
        .iter()
        .enumerate()
        .map(|(i, u)| Unit::parse(&format!("data.sharing.units[{i}]"), &u.kind, &u.code))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_unit(kind: &str, code: &str) -> wire::Unit {
        wire::Unit {
            kind: kind.into(),
            code: code.into(),
        }
    }

    fn check(
        scope: &str,
        units: Vec<wire::Unit>,
        responsible: (&str, &str),
    ) -> Result<Sharing, ErrorCode> {
        let responsible = Unit::parse("r", responsible.0, responsible.1).unwrap();
        let wire = wire::Sharing {
            scope: scope.into(),
            units,
        };
        let units = parse_units(&wire).map_err(|e| e.code)?;
        Sharing::new(&wire.scope, units, &responsible).map_err(|e| e.code)
    }

    #[test]
    fn internal_lists_no_units_and_shared_lists_some() {
        assert!(check("internal", vec![], ("jobcenter", "15300")).is_ok());
        assert_eq!(
            check(
                "internal",
                vec![wire_unit("jobcenter", "10100")],
                ("jobcenter", "15300")
            )
            .unwrap_err(),
            ErrorCode::SharingInvalid
        );
        assert_eq!(
            check("national", vec![], ("jobcenter", "15300")).unwrap_err(),
            ErrorCode::SharingInvalid
        );
    }

    #[test]
    fn duplicates_and_the_responsible_unit_are_invalid() {
        let twice = vec![
            wire_unit("jobcenter", "10100"),
            wire_unit("jobcenter", "10100"),
        ];
        assert_eq!(
            check("selected", twice, ("jobcenter", "15300")).unwrap_err(),
            ErrorCode::SharingInvalid
        );
        let itself = vec![wire_unit("jobcenter", "15300")];
        assert_eq!(
            check("selected", itself, ("jobcenter", "15300")).unwrap_err(),
            ErrorCode::SharingInvalid
        );
        // The same code of another type is another unit.
        assert!(check(
            "selected",
            vec![wire_unit("akasse", "15300")],
            ("jobcenter", "15300")
        )
        .is_ok());
    }

    #[test]
    fn an_akasse_shares_only_with_akasser() {
        assert!(check(
            "selected",
            vec![wire_unit("akasse", "22")],
            ("akasse", "11")
        )
        .is_ok());
        assert_eq!(
            check(
                "selected",
                vec![wire_unit("jobcenter", "15300")],
                ("akasse", "11")
            )
            .unwrap_err(),
            ErrorCode::SharingAkasseToJobcenter
        );
    }
}
