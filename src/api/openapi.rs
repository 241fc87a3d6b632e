//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the read API,
//! generated from the handlers' annotations and the contract's types, so it
//! cannot drift from what is served.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::ProblemBody;
use crate::contract::outbound;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobsync read API",
        description = "Search, fetch and catch up on job orders, per unit, behind a token (Authorization: Bearer TOKEN; `jobsync tokens create`). Every answer is the caller's own view, the same its notifications carry. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        super::joborders::fetch,
        super::joborders::mediation_log,
        super::joborders::search,
        super::changes::feed,
        document
    ),
    components(schemas(
        ProblemBody,
        outbound::Data,
        outbound::OrderView,
        outbound::SharedOrderView,
        outbound::LogView,
        outbound::RevokedView,
        outbound::FeedItem
    )),
    modifiers(&Bearer),
    tags(
        (name = "joborders", description = "Fetch and search the orders the caller can see"),
        (name = "changes", description = "Catch up: the caller's compacted change feed")
    )
)]
pub struct ApiDoc;

/// The bearer token scheme.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token of `jobsync tokens create`"))
                    .build(),
            ),
        );
    }
}

/// The description itself (no token needed).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "joborders",
    responses((status = 200, description = "This description", content_type = "application/json"))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the description serializes"),
    )
}
