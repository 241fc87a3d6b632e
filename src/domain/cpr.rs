//! Danish personal identity numbers (CPR numbers) in text (section 5.3).
//!
//! A CPR number is written `DDMMYY-NNNN` or `DDMMYYNNNN`, and `DDMMYY` is a
//! calendar date. A run counts only when it stands on its own: no digit right
//! before or after it, so that longer numbers (an EAN, an account number) are
//! not mistaken for one. Any two-digit year may be a leap year (the century
//! is in the serial number, not the date), so 29 February counts when the
//! year is divisible by four.

use std::borrow::Cow;
use std::ops::Range;

/// What replaces a CPR number in every outbound text.
pub const REDACTED: &str = "[CPR]";

/// The byte ranges of the CPR numbers in `text`, in order.
pub fn find(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let start = i;
            i += 1;
            if start > 0 && bytes[start - 1].is_ascii_digit() {
                continue;
            }
            if let Some(len) = match_at(&bytes[start..]) {
                i = start + len;
                return Some(start..start + len);
            }
        }
        None
    })
}

/// Whether `text` contains a CPR number.
pub fn contains(text: &str) -> bool {
    find(text).next().is_some()
}

/// `text` with every CPR number replaced by [`REDACTED`], and how many were.
pub fn redact(text: &str) -> (Cow<'_, str>, usize) {
    let mut out = String::new();
    let mut last = 0;
    let mut count = 0;
    for range in find(text) {
        out.push_str(&text[last..range.start]);
        out.push_str(REDACTED);
        last = range.end;
        count += 1;
    }
    if count == 0 {
        return (Cow::Borrowed(text), 0);
    }
    out.push_str(&text[last..]);
    (Cow::Owned(out), count)
}

/// The length of the CPR number at the start of `b`, if one is there (and no
/// digit follows it).
fn match_at(b: &[u8]) -> Option<usize> {
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if b.len() < 10 || !digits(&b[..6]) || !valid_date(&b[..6]) {
        return None;
    }
    let len = if b[6] == b'-' && b.len() >= 11 && digits(&b[7..11]) {
        11
    } else if digits(&b[6..10]) {
        10
    } else {
        return None;
    };
    match b.get(len) {
        Some(next) if next.is_ascii_digit() => None,
        _ => Some(len),
    }
}

fn valid_date(ddmmyy: &[u8]) -> bool {
    let n = |i: usize| u32::from(ddmmyy[i] - b'0') * 10 + u32::from(ddmmyy[i + 1] - b'0');
    let (day, month, year) = (n(0), n(2), n(4));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_with_a_valid_date_are_found() {
        assert!(contains("010190-1234"));
        assert!(contains("0101901234"));
        assert!(contains("cpr 311299-0000, ring"));
        assert!(
            contains("Født 290200-1111"),
            "29 February of a year divisible by 4"
        );
        assert!(contains("æøå0101901234ÆØÅ"), "Danish letters around it");
    }

    #[test]
    fn runs_that_are_no_date_or_part_of_a_longer_number_are_not() {
        for text in [
            "320190-1234",  // day 32
            "011390-1234",  // month 13
            "000190-1234",  // day 0
            "290201-1234",  // 29 February 2001
            "310490-1234",  // 31 April
            "01019012345",  // eleven digits
            "10101901234",  // a digit before
            "010190-12345", // a digit after
            "010190 1234",  // a space is neither form
            "010190-123",   // too short
            "ordre 12345678",
        ] {
            assert!(!contains(text), "{text}");
        }
    }

    #[test]
    fn redaction_replaces_each_number_and_counts_them() {
        let (text, n) = redact("Kandidat 010190-1234 og 0202021234 ringer.");
        assert_eq!(text, "Kandidat [CPR] og [CPR] ringer.");
        assert_eq!(n, 2);
        let (text, n) = redact("Ingen numre her");
        assert!(matches!(text, Cow::Borrowed(_)));
        assert_eq!(n, 0);
    }
}
