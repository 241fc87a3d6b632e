//! Checks on wire text that both the envelope and the domain make.

use chrono::{DateTime, FixedOffset};

use super::rejection::Rejection;

/// Rejects a NUL character (U+0000, `\u0000` on the wire) in `value`:
/// PostgreSQL `text` cannot hold one, so a stored string with it would fail
/// the database on every attempt instead of being rejected once.
pub fn no_nul(field: &str, value: &str) -> Result<(), Rejection> {
    if value.contains('\0') {
        return Err(Rejection::schema(
            field,
            "contains a NUL character (U+0000), which no stored text can hold",
        ));
    }
    Ok(())
}

/// `s` as an RFC 3339 date-time, if it is one as JSON Schema's `date-time`
/// format reads it: `T` (or `t`) between date and time, seconds below 60.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.as_bytes();
    let shaped = b.len() >= 20
        && matches!(b[10], b'T' | b't')
        && b[17..19].iter().all(u8::is_ascii_digit)
        && b[17] < b'6';
    shaped
        .then(|| DateTime::parse_from_rfc3339(s).ok())
        .flatten()
}

/// Whether `s` is an RFC 3339 date-time ([`parse_rfc3339`]).
pub fn is_rfc3339(s: &str) -> bool {
    parse_rfc3339(s).is_some()
}
