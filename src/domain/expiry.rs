//! When an order's mediation deadline has passed (section 6): at the end of
//! that day in Europe/Copenhagen, daylight saving included.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;

/// The instant the deadline `date` ends: midnight at the start of the next
/// day in Copenhagen.
pub fn deadline_ends_at(date: NaiveDate) -> DateTime<Utc> {
    let next = date
        .checked_add_days(Days::new(1))
        .expect("deadlines are far from the end of time");
    let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
    // Midnight is never skipped or repeated in Copenhagen (the clocks change
    // at 02:00 and 03:00), so the mapping is single.
    Copenhagen
        .from_local_datetime(&midnight)
        .single()
        .expect("midnight is unambiguous in Copenhagen")
        .with_timezone(&Utc)
}

/// Deadlines before this date have passed at `now`: the date in Copenhagen.
/// (A deadline `d` has passed when `now >= deadline_ends_at(d)`, which is
/// when Copenhagen's date at `now` is after `d`.)
pub fn passed_before(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Copenhagen).date_naive()
}

/// Whether `deadline` has passed at `now`.
pub fn has_passed(deadline: NaiveDate, now: DateTime<Utc>) -> bool {
    deadline < passed_before(now)
}

/// The time source of the worker: the system clock in production, a clock
/// the tests set.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_deadline_ends_at_midnight_copenhagen_time() {
        // Winter: UTC+1.
        assert_eq!(
            deadline_ends_at(date("2026-12-18")),
            utc("2026-12-18T23:00:00Z")
        );
        // Summer: UTC+2.
        assert_eq!(
            deadline_ends_at(date("2027-06-10")),
            utc("2027-06-10T22:00:00Z")
        );
    }

    #[test]
    fn the_last_sunday_of_march_and_of_october() {
        // 2027-03-28: clocks go forward at 02:00; the next midnight is CEST.
        let march = date("2027-03-28");
        assert_eq!(deadline_ends_at(march), utc("2027-03-28T22:00:00Z"));
        assert!(!has_passed(march, utc("2027-03-28T21:59:59Z")));
        assert!(has_passed(march, utc("2027-03-28T22:00:00Z")));
        // 2026-10-25: clocks go back at 03:00; the next midnight is CET.
        let october = date("2026-10-25");
        assert_eq!(deadline_ends_at(october), utc("2026-10-25T23:00:00Z"));
        assert!(!has_passed(october, utc("2026-10-25T22:59:59Z")));
        assert!(has_passed(october, utc("2026-10-25T23:00:00Z")));
        // The day before each change is an ordinary day.
        assert_eq!(
            deadline_ends_at(date("2026-10-24")),
            utc("2026-10-24T22:00:00Z")
        );
    }
}
