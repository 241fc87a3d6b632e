//! Errors as `application/problem+json` (RFC 9457): `type`, `title`,
//! `status`, `detail`, and for a bad parameter its name in `parameter`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answer of the read API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// The last part of the `type` URI.
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub parameter: Option<&'static str>,
    /// Seconds, for `429`.
    pub retry_after: Option<u64>,
}

/// The body, as the OpenAPI description shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// `urn:jobsync:problem:<what>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The query or path parameter at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl Problem {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            status,
            slug,
            title,
            detail: detail.into(),
            parameter: None,
            retry_after: None,
        }
    }

    /// No token, or one that is unknown, expired or revoked: which of these
    /// is not said.
    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid token is needed: Authorization: Bearer TOKEN",
        )
    }

    /// An order (or log) that does not exist and one the caller may not see
    /// get this same answer.
    pub fn not_found() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not Found",
            "no such job order for this unit",
        )
    }

    pub fn bad_parameter(parameter: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            parameter: Some(parameter),
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-parameter",
                "Bad Request",
                format!("{parameter}: {}", detail.into()),
            )
        }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too Many Requests",
                format!("this token's request rate is used up; retry in {retry_after} s"),
            )
        }
    }

    pub fn query_too_long(max: usize) -> Self {
        Problem::new(
            StatusCode::URI_TOO_LONG,
            "query-too-long",
            "URI Too Long",
            format!("the query string is longer than {max} bytes"),
        )
    }

    pub fn timeout() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Service Unavailable",
            "the request took too long; try again",
        )
    }

    pub fn busy() -> Self {
        Problem {
            retry_after: Some(1),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Service Unavailable",
                "too many requests at once; try again",
            )
        }
    }

    /// The database is away (the detail names it, not the error).
    pub fn unavailable() -> Self {
        Problem {
            retry_after: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service Unavailable",
                "the database does not answer; try again",
            )
        }
    }

    pub fn route_not_found() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "no-route",
            "Not Found",
            "no such resource; see /v1/openapi.json",
        )
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("urn:jobsync:problem:{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            parameter: self.parameter.map(str::to_owned),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("problems serialize");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
