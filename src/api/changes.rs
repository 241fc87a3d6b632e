//! `GET /v1/changes`: the caller's change feed.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::auth::Caller;
use super::joborders::{limit, parameters};
use super::problem::ProblemBody;
use super::{cursor, Api, Problem};
use crate::contract::outbound::FeedItem;
use crate::domain::fanout::Event;
use crate::domain::read::{log_for, order_for, Shown};
use crate::domain::unit::Unit;
use crate::domain::views::responsible_unit;
use crate::store::feed::{self, Kind};
use crate::store::read;
use crate::store::tokens::Token;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// For each order whose view for the caller changed after `after`, in
/// commit order, one item shaped as the notification the caller would get
/// now (`joborder.updated` with the current view, or `joborder.revoked`),
/// and the same for its mediation log views. Compacted: an order appears
/// once, in its latest state. Without `after`, everything the caller can
/// see now. `next` is where to go on from, now or later.
#[utoipa::path(
    get,
    path = "/v1/changes",
    tag = "changes",
    params(
        ("after" = Option<String>, Query, description = "`next` of the page before; without it, the feed from the start"),
        ("limit" = Option<i64>, Query, description = "Entries per page: 1 to 1000, 100 unless given"),
    ),
    responses(
        (status = 200, description = "A page of the feed: items, and the cursor to read on from", body = inline(Object),
         example = json!({"items": [{"type": "dk.jobsync.joborder.updated", "subject": "9b2d6f0e-3a41-4d8e-b1e5-5d7c2a9e4f00", "unit": "jobcenter:15300", "joborderversion": 4, "data": {}}], "next": "YzE6NDI"})),
        (status = 400, description = "A bad parameter, named", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "The token's rate is used up", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn feed(
    State(api): State<Api>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let params = parameters(query.as_deref(), &["after", "limit"])?;
    let limit = limit(&params, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match params.get("after") {
        Some(c) => cursor::parse_feed(c).map_err(|e| Problem::bad_parameter("after", e))?,
        None => feed::Cursor::default(),
    };
    let unit = caller.unit.clone();
    let token = caller.token.clone();
    let (items, last) = api
        .db(move |c| {
            // One snapshot for the page and what its items show; the log
            // reads are recorded with it.
            c.build_transaction()
                .repeatable_read()
                .run(|c| page(c, &unit, &token, after, limit))
        })
        .await?;
    let next = cursor::feed(last.unwrap_or(after));
    Ok(axum::Json(json!({"items": items, "next": next})).into_response())
}

/// The items of `unit`'s feed after `after`, at most `limit` entries, and
/// the position of the last entry read.
fn page(
    c: &mut diesel::PgConnection,
    unit: &Unit,
    token: &Token,
    after: feed::Cursor,
    limit: i64,
) -> diesel::QueryResult<(Vec<FeedItem>, Option<feed::Cursor>)> {
    let entries = feed::page(c, unit, after, limit)?;
    let ids: Vec<Uuid> = entries.iter().map(|e| e.job_order_id).collect();
    let log_ids: Vec<Uuid> = entries
        .iter()
        .filter(|e| Kind::parse(&e.kind) == Some(Kind::Log))
        .map(|e| e.job_order_id)
        .collect();
    let orders = read::orders(c, &ids)?;
    let logs = read::logs(c, &log_ids)?;
    let audience = unit.to_string();
    let mut items = Vec::with_capacity(entries.len());
    let mut logs_read = Vec::new();
    for e in &entries {
        let Some(order) = orders.get(&e.job_order_id) else {
            continue;
        };
        match Kind::parse(&e.kind) {
            Some(Kind::Order) => {
                let shown = order_for(unit, order);
                if let (Some(event), Shown::View(v) | Shown::Revoked(v)) = (shown.event(), shown) {
                    items.push(FeedItem::new(
                        event.as_str(),
                        e.job_order_id,
                        &audience,
                        v.data,
                    ));
                }
            }
            Some(Kind::Log) => {
                let responsible = responsible_unit(&order.facts.snapshot);
                let view = logs
                    .get(&e.job_order_id)
                    .and_then(|l| log_for(unit, l, &responsible));
                // A unit that no longer sees the log was told it lost the
                // order: nothing more.
                if let Some(v) = view {
                    logs_read.push(e.job_order_id);
                    items.push(FeedItem::new(
                        Event::MediationLogUpdated.as_str(),
                        e.job_order_id,
                        &audience,
                        v.data,
                    ));
                }
            }
            None => {}
        }
    }
    crate::store::tokens::audit_log_reads(c, token, &logs_read, Utc::now())?;
    Ok((items, entries.last().map(feed::Entry::cursor)))
}
