//! CVR numbers: the Danish company register's 8-digit company number.

use std::fmt;

use crate::contract::rejection::{ErrorCode, Rejection};

/// A CVR number that is 8 digits and passes the modulus-11 check
/// (weights 2,7,6,5,4,3,2,1: the weighted sum is divisible by 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cvr(String);

const WEIGHTS: [u32; 8] = [2, 7, 6, 5, 4, 3, 2, 1];

impl Cvr {
    /// Validates `value` read from `field`.
    pub fn parse(field: &str, value: &str) -> Result<Cvr, Rejection> {
        Cvr::check_shape(field, value)?;
        let sum: u32 = value
            .bytes()
            .zip(WEIGHTS)
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        if !sum.is_multiple_of(11) {
            return Err(Rejection::beyond_schema(
                ErrorCode::CvrChecksum,
                format!("{field}: {value} fails the CVR check digit"),
            ));
        }
        Ok(Cvr(value.to_owned()))
    }

    /// The shape rule (`schema.invalid`): exactly 8 digits.
    pub fn check_shape(field: &str, value: &str) -> Result<(), Rejection> {
        if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Rejection::schema(
                field,
                format_args!("{value:?} is not a CVR number (exactly 8 digits)"),
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cvr_passing_the_check_digit_is_accepted() {
        // 2*1+7*2+6*3+5*4+4*5+3*6+2*7+1*x = 106 + x; 106 + 4 = 110.
        assert_eq!(Cvr::parse("cvr", "12345674").unwrap().as_str(), "12345674");
        assert!(Cvr::parse("cvr", "10150817").is_ok());
    }

    #[test]
    fn a_cvr_failing_the_check_digit_names_the_field() {
        let err = Cvr::parse("data.employer.cvr", "12345679").unwrap_err();
        assert_eq!(err.code, ErrorCode::CvrChecksum);
        assert_eq!(
            err.message,
            "data.employer.cvr: 12345679 fails the CVR check digit"
        );
        assert!(err.beyond_schema);
    }

    #[test]
    fn a_cvr_that_is_not_eight_digits_is_a_schema_error() {
        for value in ["1234567", "123456745", "1234567a", ""] {
            assert_eq!(
                Cvr::parse("cvr", value).unwrap_err().code,
                ErrorCode::SchemaInvalid
            );
        }
    }
}
