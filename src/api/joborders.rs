//! `GET /v1/joborders/{id}`, `.../mediationlog` and `GET /v1/joborders`.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth::Caller;
use super::problem::ProblemBody;
use super::{cursor, Api, Problem};
use crate::contract::outbound::Data;
use crate::domain::read::{log_for, order_for};
use crate::domain::status::StatusKind;
use crate::domain::views::{responsible_unit, View};
use crate::store::read::{self, Search};

/// Search results per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The caller's view of order `id`. `ETag` is its version; `If-None-Match`
/// with it gives `304`. An order the caller may not see is `404`, exactly
/// like one that does not exist.
#[utoipa::path(
    get,
    path = "/v1/joborders/{id}",
    tag = "joborders",
    params(("id" = Uuid, Path, description = "The job order id")),
    responses(
        (status = 200, description = "The caller's view of the order (contract 5.2)", body = Data,
         headers(("ETag" = String, description = "The order's version, quoted"))),
        (status = 304, description = "Not modified since the version in If-None-Match"),
        (status = 400, description = "The id is no UUID", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order for this unit", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "The token's rate is used up", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn fetch(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let orders = api.db(move |c| read::orders(c, &[id])).await?;
    let view = orders
        .get(&id)
        .and_then(|o| order_for(&caller.unit, o).view())
        .ok_or_else(Problem::not_found)?;
    Ok(with_etag(&view, &headers))
}

/// The caller's view of the mediation log of order `id`: every entry for
/// the responsible unit, its own entries without `note` for a unit with
/// entries on it; `404` for any other. Each read is recorded.
#[utoipa::path(
    get,
    path = "/v1/joborders/{id}/mediationlog",
    tag = "joborders",
    params(("id" = Uuid, Path, description = "The job order id")),
    responses(
        (status = 200, description = "The caller's view of the log (contract 5.2)", body = Data,
         headers(("ETag" = String, description = "The log's version and a hash of the view, quoted"))),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "The id is no UUID", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No log of this order for this unit", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "The token's rate is used up", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn mediation_log(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = order_id(&id)?;
    let unit = caller.unit.clone();
    let token = caller.token.clone();
    let view = api
        .db(move |c| {
            let orders = read::orders(c, &[id])?;
            let logs = read::logs(c, &[id])?;
            let view = match (orders.get(&id), logs.get(&id)) {
                (Some(order), Some(log)) => {
                    log_for(&unit, log, &responsible_unit(&order.facts.snapshot))
                }
                _ => None,
            };
            if view.is_some() {
                crate::store::tokens::audit_log_reads(c, &token, &[id], Utc::now())?;
            }
            Ok(view)
        })
        .await?
        .ok_or_else(Problem::not_found)?;
    Ok(with_content_etag(&view, &headers))
}

/// The orders the caller can see that match, as its views: best match
/// first with `q`, newest `updated_at` first without; `next` pages on.
#[utoipa::path(
    get,
    path = "/v1/joborders",
    tag = "joborders",
    params(
        ("q" = Option<String>, Query, description = "Full text over title, occupation name and alias, employer name and tasks (Danish stemming; quotes, OR and -word as in a web search)"),
        ("status" = Option<String>, Query, description = "open, temporarily_inactive or closed"),
        ("occupation_code" = Option<String>, Query, description = "The occupation code"),
        ("employer_cvr" = Option<String>, Query, description = "The employer's CVR number (8 digits)"),
        ("responsible_unit" = Option<String>, Query, description = "The responsible unit, as jobcenter:15300"),
        ("updated_after" = Option<String>, Query, description = "Only orders updated after this time (RFC 3339)"),
        ("limit" = Option<i64>, Query, description = "Orders per page: 1 to 200, 50 unless given"),
        ("cursor" = Option<String>, Query, description = "`next` of the page before, with the same other parameters"),
    ),
    responses(
        (status = 200, description = "A page of the caller's views", body = inline(Object),
         example = json!({"items": [], "next": null})),
        (status = 400, description = "A bad parameter, named", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 414, description = "The query string is over 2 KiB", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "The token's rate is used up", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let params = parameters(
        query.as_deref(),
        &[
            "q",
            "status",
            "occupation_code",
            "employer_cvr",
            "responsible_unit",
            "updated_after",
            "limit",
            "cursor",
        ],
    )?;
    let mut search = Search {
        q: params
            .get("q")
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
        status: params.get("status").map(|s| s.to_owned()),
        occupation_code: params.get("occupation_code").cloned(),
        employer_cvr: params.get("employer_cvr").cloned(),
        responsible_unit: None,
        updated_after: None,
        after: None,
        limit: limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?,
    };
    if let Some(s) = &search.status {
        StatusKind::parse(s).ok_or_else(|| {
            Problem::bad_parameter("status", "one of open, temporarily_inactive, closed")
        })?;
    }
    if let Some(cvr) = &search.employer_cvr {
        if cvr.len() != 8 || !cvr.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::bad_parameter("employer_cvr", "8 digits"));
        }
    }
    if let Some(u) = params.get("responsible_unit") {
        search.responsible_unit = Some(
            crate::domain::unit::Unit::from_text(u)
                .map_err(|e| Problem::bad_parameter("responsible_unit", e.to_string()))?,
        );
    }
    if let Some(t) = params.get("updated_after") {
        search.updated_after = Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    Problem::bad_parameter(
                        "updated_after",
                        "an RFC 3339 time, e.g. 2026-12-01T08:00:00Z",
                    )
                })?
                .with_timezone(&Utc),
        );
    }
    let fingerprint = fingerprint(&params);
    if let Some(c) = params.get("cursor") {
        search.after = Some(
            cursor::parse_search(c, fingerprint)
                .map_err(|e| Problem::bad_parameter("cursor", e))?,
        );
    }
    let unit = caller.unit.clone();
    let limit = search.limit;
    let (hits, orders) = api
        .db(move |c| {
            let hits = read::search(c, &unit, &search)?;
            let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
            let orders = read::orders(c, &ids)?;
            Ok((hits, orders))
        })
        .await?;
    let items: Vec<Data> = hits
        .iter()
        .filter_map(|h| orders.get(&h.id))
        .filter_map(|o| order_for(&caller.unit, o).view())
        .map(|v| v.data)
        .collect();
    let next = (hits.len() as i64 == limit)
        .then(|| {
            hits.last()
                .map(|h| cursor::search(h.position(), fingerprint))
        })
        .flatten();
    Ok(axum::Json(json!({"items": items, "next": next})).into_response())
}

fn order_id(text: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text).map_err(|_| Problem::bad_parameter("id", "a job order id is a UUID"))
}

/// `view` with its version as `ETag`, or `304` when `If-None-Match` names
/// that version already.
fn with_etag(view: &View, headers: &HeaderMap) -> Response {
    with_tag(view, &view.data.version().to_string(), headers)
}

/// `view` (a log view) with its version and content as `ETag`: an erasure
/// or the retention changes a log without a new version, and a cached copy
/// must not be kept as current then.
fn with_content_etag(view: &View, headers: &HeaderMap) -> Response {
    let tag = format!("{}-{}", view.data.version(), view.content_tag());
    with_tag(view, &tag, headers)
}

/// `view` with `tag` (quoted) as `ETag`, or `304` when `If-None-Match`
/// names it already.
fn with_tag(view: &View, tag: &str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{tag}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        });
    let etag = HeaderValue::from_str(&etag)
        .expect("digits, hex and a hyphen in quotes are a header value");
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    ([(header::ETAG, etag)], axum::Json(&view.data)).into_response()
}

/// The query's parameters among `allowed`; any other, or one given twice,
/// is a bad parameter.
pub(super) fn parameters(
    query: Option<&str>,
    allowed: &[&'static str],
) -> Result<HashMap<&'static str, String>, Problem> {
    let mut out = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            return Err(Problem {
                detail: format!(
                    "unknown parameter {name:?}; this resource takes {}",
                    allowed.join(", ")
                ),
                ..Problem::bad_parameter("query", "")
            });
        };
        if out.insert(known, value.into_owned()).is_some() {
            return Err(Problem::bad_parameter(known, "given more than once"));
        }
    }
    Ok(out)
}

/// `limit`: `default` unless given, 1 to `max`.
pub(super) fn limit(
    params: &HashMap<&'static str, String>,
    default: i64,
    max: i64,
) -> Result<i64, Problem> {
    match params.get("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                Problem::bad_parameter("limit", format!("a whole number from 1 to {max}"))
            }),
    }
}

/// What identifies a search apart from where a page starts and its length.
fn fingerprint(params: &HashMap<&'static str, String>) -> u64 {
    let mut names: Vec<&&str> = params
        .keys()
        .filter(|k| **k != "cursor" && **k != "limit")
        .collect();
    names.sort();
    let mut hasher = Sha256::new();
    for n in names {
        hasher.update(n.as_bytes());
        hasher.update([0]);
        hasher.update(params[*n].as_bytes());
        hasher.update([0]);
    }
    u64::from_be_bytes(hasher.finalize()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let p = parameters(Some("q=svejser&lmit=3"), &["q", "limit"]).unwrap_err();
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.detail.contains("\"lmit\""), "{}", p.detail);
        let p = parameters(Some("q=a&q=b"), &["q"]).unwrap_err();
        assert_eq!(p.parameter, Some("q"));
        let ok = parameters(Some("q=sv%C3%A6r+opgave&limit=3"), &["q", "limit"]).unwrap();
        assert_eq!(ok["q"], "svær opgave");
        assert_eq!(limit(&ok, 50, 200), Ok(3));
        let big = parameters(Some("limit=201"), &["limit"]).unwrap();
        assert_eq!(limit(&big, 50, 200).unwrap_err().parameter, Some("limit"));
    }

    #[test]
    fn a_cursor_belongs_to_its_search() {
        let a = parameters(
            Some("q=svejser&limit=5&cursor=x"),
            &["q", "limit", "cursor"],
        )
        .unwrap();
        let b = parameters(Some("q=svejser&limit=9"), &["q", "limit", "cursor"]).unwrap();
        let c = parameters(Some("q=smed"), &["q", "limit", "cursor"]).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
