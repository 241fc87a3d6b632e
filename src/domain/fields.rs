//! Field parsers shared by the inbound snapshots: ids, versions, dates and
//! timestamps, each naming its field in the rejection.

use chrono::{DateTime, NaiveDate, Utc};

use uuid::Uuid;

use super::rejection::{ErrorCode, Rejection};

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

/// A calendar date, `YYYY-MM-DD`.
pub fn parse_date(field: &str, s: &str) -> Result<NaiveDate, Rejection> {
    let shaped = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
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
/// schemas' `date-time` requires; no leap second), kept in UTC.
pub fn parse_timestamp(field: &str, s: &str) -> Result<DateTime<Utc>, Rejection> {
    if is_rfc3339(s) {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(Rejection::schema(
        field,
        format_args!("{s:?} is not an RFC 3339 timestamp"),
    ))
}

/// Whether `s` is an RFC 3339 date-time as JSON Schema's `date-time` format
/// reads it: `T` (or `t`) between date and time, seconds below 60.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && matches!(b[10], b'T' | b't')
        && b[17..19].iter().all(u8::is_ascii_digit)
        && b[17] < b'6'
        && DateTime::parse_from_rfc3339(s).is_ok()
}

/// The one spelling of a timestamp used for hashing and output: UTC, `Z`,
/// fractional seconds only when there are any.
pub fn canonical_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
