//! Who asks: `Authorization: Bearer TOKEN`, looked up by the token's hash,
//! then held to the token's request rate. A missing, unknown, expired or
//! revoked token gets `401`; which of these it was is not said, and the
//! token itself is never logged.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use super::{Api, Problem};
use crate::domain::unit::Unit;
use crate::store::tokens::Token;

/// The caller of a request: its token and the unit it acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Token,
    pub unit: Unit,
}

/// The request rates: per token, and of failed authentications in all.
pub struct Limits {
    per_token: DefaultKeyedRateLimiter<Uuid>,
    /// Attempts with a wrong token, all callers together: past this rate
    /// they get `429` too.
    failures: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Limits {
    /// `rate` requests a second per token, bursts of twice that.
    pub fn new(rate: u32) -> Arc<Self> {
        let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 > 0"));
        let failures = NonZeroU32::new(20).expect("20 > 0");
        Arc::new(Limits {
            per_token: governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            failures: governor::RateLimiter::direct(
                Quota::per_second(failures)
                    .allow_burst(failures.saturating_mul(NonZeroU32::new(5).expect("5 > 0"))),
            ),
            clock: DefaultClock::default(),
        })
    }

    /// Takes one request of `token`'s rate, or says when to come back.
    fn take(&self, token: Uuid) -> Result<(), Problem> {
        self.per_token.check_key(&token).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Problem::too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }

    /// Counts a failed authentication: `401`, or `429` past the rate.
    fn failed(&self) -> Problem {
        match self.failures.check() {
            Ok(()) => Problem::unauthorized(),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Problem::too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    /// Forgets tokens that have not asked lately.
    pub fn shrink(&self) {
        self.per_token.retain_recent();
        self.per_token.shrink_to_fit();
    }
}

/// The token of `Authorization: Bearer TOKEN`, if the header is that.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Problem> {
        let Some(secret) = bearer(&parts.headers) else {
            return Err(api.limits.failed());
        };
        let hash = crate::tokens::hash(secret);
        let now = chrono::Utc::now();
        let found = api
            .db(move |c| crate::store::tokens::find_valid(c, &hash, now))
            .await?;
        let Some(token) = found else {
            return Err(api.limits.failed());
        };
        api.limits.take(token.id)?;
        Ok(Caller {
            unit: token.unit(),
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_token_is_taken() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer jst_abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("jst_abc"));
        h.insert(header::AUTHORIZATION, "bearer  jst_abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("jst_abc"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn a_token_past_its_burst_waits() {
        let limits = Limits::new(1);
        let id = Uuid::new_v4();
        assert!(limits.take(id).is_ok());
        assert!(limits.take(id).is_ok());
        let p = limits.take(id).unwrap_err();
        assert_eq!(p.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(p.retry_after.unwrap() >= 1);
        assert!(
            limits.take(Uuid::new_v4()).is_ok(),
            "another token has its own rate"
        );
    }
}
