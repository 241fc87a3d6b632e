//! Deserializers for JSON integers as JSON Schema reads them: `3` and `3.0`
//! are the same integer (draft 2020-12), `3.5` is none.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// A non-negative integer, also when written with a zero fraction.
pub fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Unsigned)
}

/// An optional integer, also when written with a zero fraction.
pub fn optional_signed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(OptionalSigned)
}

struct Unsigned;

impl Visitor<'_> for Unsigned {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

struct OptionalSigned;

impl<'de> Visitor<'de> for OptionalSigned {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(Signed).map(Some)
    }
}

struct Signed;

impl Visitor<'_> for Signed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v)
        {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::unsigned")]
        v: u64,
        #[serde(default, deserialize_with = "super::optional_signed")]
        p: Option<i64>,
    }

    fn parse(s: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn a_zero_fraction_is_an_integer_and_any_other_is_not() {
        let t = parse(r#"{"v": 3.0, "p": 2.0}"#).unwrap();
        assert_eq!((t.v, t.p), (3, Some(2)));
        let t = parse(r#"{"v": 3, "p": null}"#).unwrap();
        assert_eq!((t.v, t.p), (3, None));
        assert_eq!(parse(r#"{"v": 3}"#).unwrap().p, None);
        assert!(parse(r#"{"v": 3.5}"#).is_err());
        assert!(parse(r#"{"v": -1}"#).is_err());
        assert!(parse(r#"{"v": "3"}"#).is_err());
        assert!(parse(r#"{"v": 1, "p": 1.5}"#).is_err());
        assert!(parse(r#"{"v": 1, "p": "2"}"#).is_err());
    }
}
