//! Field parsers shared by the inbound snapshots: ids, versions, dates and
//! timestamps, each naming its field in the rejection.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use uuid::Uuid;

pub use crate::contract::checks::{is_rfc3339, parse_rfc3339};
use crate::contract::rejection::{ErrorCode, Rejection};

/// `data.job_order_id`, which must equal the envelope `subject`.
pub fn parse_order_id(job_order_id: &str, subject: Option<&str>) -> Result<Uuid, Rejection> {
    let id = parse_uuid("data.job_order_id", job_order_id)?;
    match subject {
        Some(s) if parse_uuid("subject", s).ok() == Some(id) => Ok(id),
        Some(s) => Err(Rejection::beyond_schema(
            ErrorCode::SchemaInvalid,
            format!("data.job_order_id: {job_order_id} is not the envelope subject {s:?}"),
        )),
        None => Err(Rejection::schema(
            "subject",
            "missing; it must equal data.job_order_id",
        )),
    }
}

/// `data.version`: 1 or more, and small enough to store.
pub fn parse_version(version: u64) -> Result<i64, Rejection> {
    if version < 1 || version > i64::MAX as u64 {
        return Err(Rejection::schema(
            "data.version",
            format_args!("{version} is out of range (1 to {})", i64::MAX),
        ));
    }
    Ok(version as i64)
}

/// A UUID in its hyphenated 8-4-4-4-12 form (the only form the schema allows).
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, Rejection> {
    let shaped = s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    match shaped.then(|| Uuid::parse_str(s).ok()).flatten() {
        Some(id) => Ok(id),
        None => Err(Rejection::schema(
            field,
            format_args!("{s:?} is not a UUID"),
        )),
    }
}

/// A calendar date, `YYYY-MM-DD`: four, two and two ASCII digits (chrono
/// alone would also read a sign or a space in the year, and a space before
/// a one-digit month or day).
pub fn parse_date(field: &str, s: &str) -> Result<NaiveDate, Rejection> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
    {
        Some(d) => Ok(d),
        None => Err(Rejection::schema(
            field,
            format_args!("{s:?} is not a calendar date (YYYY-MM-DD)"),
        )),
    }
}

/// An RFC 3339 timestamp with offset (`T` between date and time, as the
/// schemas' `date-time` requires; no leap second), kept in UTC. Its UTC
/// instant must fall in the years 0000 to 9999, which RFC 3339 can write:
/// it is written in UTC in every view (`9999-12-31T23:00:00-02:00` would
/// become `+10000-01-01T01:00:00Z`, which no RFC 3339 reader takes).
pub fn parse_timestamp(field: &str, s: &str) -> Result<DateTime<Utc>, Rejection> {
    let Some(t) = parse_rfc3339(s) else {
        return Err(Rejection::schema(
            field,
            format_args!("{s:?} is not an RFC 3339 timestamp"),
        ));
    };
    let t = t.with_timezone(&Utc);
    if !(0..=9999).contains(&t.year()) {
        return Err(Rejection::schema(
            field,
            format_args!("{s:?} is out of range: in UTC it falls outside the years 0000 to 9999"),
        ));
    }
    Ok(t)
}

/// The one spelling of a timestamp used for hashing and output: UTC, `Z`,
/// fractional seconds only when there are any.
pub fn canonical_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_four_two_and_two_digits() {
        assert!(parse_date("d", "2028-02-29").is_ok());
        assert!(parse_date("d", "0000-01-01").is_ok());
        assert!(parse_date("d", "9999-12-31").is_ok());
        for bad in [
            "+202-01-04",
            "-202-01-04",
            " 026-01-04",
            "2026-01- 4",
            "2026- 1-04",
            "2026-02-30",
            "2026-13-01",
            "2027-02-29",
            "2026-1-1",
            "20260104",
        ] {
            let err = parse_date("data.expected_start", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaInvalid, "{bad}");
            assert!(err.message.starts_with("data.expected_start: "), "{bad}");
        }
    }

    #[test]
    fn a_timestamp_must_fall_in_years_rfc_3339_can_write_in_utc() {
        for ok in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00-01:00",
            "9999-12-31T22:00:00+02:00",
        ] {
            let t = parse_timestamp("t", ok).unwrap();
            assert!(is_rfc3339(&canonical_timestamp(t)), "{ok}");
        }
        for bad in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00"] {
            let err = parse_timestamp("data.updated_at", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::SchemaInvalid, "{bad}");
            assert!(err.message.contains("out of range"), "{}", err.message);
        }
    }
}
