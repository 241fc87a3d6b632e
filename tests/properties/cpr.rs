//! The CPR oracle of these tests (5.3).

use super::*;

pub(crate) fn cpr_runs(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    let is_date = |s: usize| {
        let n = |k: usize| u32::from(b[s + k] - b'0') * 10 + u32::from(b[s + k + 1] - b'0');
        NaiveDate::from_ymd_opt(2000 + n(4) as i32, n(2), n(0)).is_some()
    };
    let mut out = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        if run.len() == 10 && is_date(run.start) {
            out.push(run.clone());
        } else if run.len() == 6 && b.get(run.end) == Some(&b'-') {
            if let Some(next) = runs.get(k + 1) {
                if next.start == run.end + 1 && next.len() == 4 && is_date(run.start) {
                    out.push(run.start..next.end);
                }
            }
        }
    }
    out
}

/// `text` with every CPR-like run replaced by `[CPR]`.
pub(crate) fn oracle_redact(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for run in cpr_runs(text) {
        out.push_str(&text[last..run.start]);
        out.push_str("[CPR]");
        last = run.end;
    }
    out.push_str(&text[last..]);
    out
}

#[test]
pub(crate) fn the_cpr_oracle_of_these_tests_reads_5_3_as_the_examples_do() {
    for cpr in [
        "010190-1234",
        "0101901234",
        "cpr 311299-0000, ring",
        "Født 290200-1111",
        "æøå0101901234ÆØÅ",
        "x-010190-1234-y",
    ] {
        assert_eq!(cpr_runs(cpr).len(), 1, "{cpr}");
    }
    for not in [
        "320190-1234",
        "011390-1234",
        "000190-1234",
        "290201-1234",
        "310490-1234",
        "01019012345",
        "10101901234",
        "010190-12345",
        "010190 1234",
        "010190-123",
        "ordre 12345678",
    ] {
        assert!(cpr_runs(not).is_empty(), "{not}");
    }
    assert_eq!(
        oracle_redact("a 010190-1234 b 0202021234."),
        "a [CPR] b [CPR]."
    );
}
