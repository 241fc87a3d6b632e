//! A unit: a jobcentre, an unemployment fund (a-kasse) or Work in Denmark.

use std::fmt;

use super::municipality;
use crate::contract::rejection::{ErrorCode, Rejection};

/// The kind of unit. The kind is part of the identity: a-kasse 15300 and
/// jobcentre 15300 are different units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitType {
    Jobcenter,
    Akasse,
    WorkInDenmark,
}

impl UnitType {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Jobcenter => "jobcenter",
            UnitType::Akasse => "akasse",
            UnitType::WorkInDenmark => "workindenmark",
        }
    }

    /// Parses the wire spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jobcenter" => Some(UnitType::Jobcenter),
            "akasse" => Some(UnitType::Akasse),
            "workindenmark" => Some(UnitType::WorkInDenmark),
            _ => None,
        }
    }
}

/// A validated unit: a jobcentre's code is 5 digits whose first three are a
/// municipality code; any other unit's code is 1–10 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    kind: UnitType,
    code: String,
}

impl Unit {
    /// Validates a unit read from `field` (for the error message): its shape
    /// ([`Unit::check_shape`]), then a jobcentre's municipality.
    pub fn parse(field: &str, kind: &str, code: &str) -> Result<Unit, Rejection> {
        let unit = Unit::shaped(field, kind, code)?;
        unit.check_municipality(field)?;
        Ok(unit)
    }

    /// A unit of the right shape whose municipality is judged later
    /// ([`Unit::check_municipality`]), when every shape rule of the message
    /// has passed (section 4.3).
    pub fn shaped(field: &str, kind: &str, code: &str) -> Result<Unit, Rejection> {
        Ok(Unit {
            kind: Unit::check_shape(field, kind, code)?,
            code: code.to_owned(),
        })
    }

    /// `unit.unknown_municipality` for a jobcentre whose code starts with no
    /// municipality code; `field` names it.
    pub fn check_municipality(&self, field: &str) -> Result<(), Rejection> {
        if self.kind == UnitType::Jobcenter {
            let municipality: u16 = self.code[..3].parse().expect("three ASCII digits");
            if municipality::name(municipality).is_none() {
                return Err(Rejection::new(
                    ErrorCode::UnitUnknownMunicipality,
                    format!(
                        "{field}.code: {} does not start with a municipality code ({} is none of the 98)",
                        self.code,
                        &self.code[..3]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The shape rules of a unit (`schema.invalid`): a known type, and a code
    /// of 5 digits for a jobcentre, 1–10 digits for any other unit. The
    /// municipality is a rule of its own, judged after every shape
    /// (section 4.3).
    pub fn check_shape(field: &str, kind: &str, code: &str) -> Result<UnitType, Rejection> {
        let kind = UnitType::parse(kind).ok_or_else(|| {
            Rejection::schema(
                &format!("{field}.type"),
                format_args!("{kind:?} is not one of jobcenter, akasse, workindenmark"),
            )
        })?;
        let digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
        match kind {
            UnitType::Jobcenter if !digits || code.len() != 5 => Err(Rejection::schema(
                &format!("{field}.code"),
                format_args!("{code:?} is not a jobcentre code (exactly 5 digits, e.g. 15300)"),
            )),
            UnitType::Akasse | UnitType::WorkInDenmark if !digits || code.len() > 10 => {
                Err(Rejection::schema(
                    &format!("{field}.code"),
                    format_args!("{code:?} is not a unit code (1 to 10 digits)"),
                ))
            }
            _ => Ok(kind),
        }
    }

    /// Rebuilds a unit from trusted storage (validated when it was stored).
    pub fn from_stored(kind: &str, code: &str) -> Option<Unit> {
        Some(Unit {
            kind: UnitType::parse(kind)?,
            code: code.to_owned(),
        })
    }

    pub fn kind(&self) -> UnitType {
        self.kind
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// A unit written as in text (`jobcenter:15300`), checked as the
    /// contract checks units.
    pub fn from_text(text: &str) -> Result<Unit, String> {
        let Some((kind, code)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} is not a unit; write it as jobcenter:15300, akasse:1234 or workindenmark:1"
            ));
        };
        Unit::parse("unit", kind, code).map_err(|r| r.message)
    }

    /// For a jobcentre, the name of its municipality (for logs and `tail`).
    pub fn municipality_name(&self) -> Option<&'static str> {
        match self.kind {
            UnitType::Jobcenter => municipality::name(self.code[..3].parse().ok()?),
            _ => None,
        }
    }
}

/// `jobcenter:15300`, as units are written in text.
impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobcentre_code_is_a_municipality_and_two_digits() {
        let unit = Unit::parse("u", "jobcenter", "15300").unwrap();
        assert_eq!(unit.to_string(), "jobcenter:15300");
        assert_eq!(unit.municipality_name(), Some("Brøndby"));
    }

    #[test]
    fn a_jobcentre_code_of_an_unknown_municipality_is_rejected() {
        let err = Unit::parse("u", "jobcenter", "99900").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnitUnknownMunicipality);
        assert!(err.message.starts_with("u.code: 99900"), "{}", err.message);
    }

    #[test]
    fn a_jobcentre_code_must_have_five_digits() {
        for code in ["1530", "153000", "15a00", ""] {
            let err = Unit::parse("u", "jobcenter", code).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaInvalid, "{code}");
        }
    }

    #[test]
    fn other_units_have_one_to_ten_digits() {
        assert!(Unit::parse("u", "akasse", "1").is_ok());
        assert!(Unit::parse("u", "akasse", "1234567890").is_ok());
        assert!(Unit::parse("u", "akasse", "12345678901").is_err());
        assert!(Unit::parse("u", "workindenmark", "").is_err());
        assert!(Unit::parse("u", "ministry", "1").is_err());
    }

    #[test]
    fn the_type_is_part_of_the_identity() {
        let a = Unit::parse("u", "akasse", "15300").unwrap();
        let j = Unit::parse("u", "jobcenter", "15300").unwrap();
        assert_ne!(a, j);
    }
}
