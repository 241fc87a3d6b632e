//! The clock the expiry tests set.

/// A clock the test sets.
pub struct TestClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl TestClock {
    pub fn at(rfc3339: &str) -> std::sync::Arc<TestClock> {
        std::sync::Arc::new(TestClock(std::sync::Mutex::new(utc(rfc3339))))
    }
    pub fn set(&self, rfc3339: &str) {
        *self.0.lock().unwrap() = utc(rfc3339);
    }
}

impl jobsync::domain::expiry::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

pub fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&chrono::Utc)
}
