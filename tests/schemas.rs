//! The JSON Schemas under `schemas/` say exactly what the parser says: every
//! fixture is valid under the schema when the parser accepts it or rejects it
//! only for a rule the schema cannot express (a check digit, a comparison of
//! two values), and invalid otherwise; each invalid fixture gets the code its
//! name gives.

use std::path::Path;

use jobsync::contract::envelope::InboundType;
use serde_json::Value;

#[path = "common/fixtures.rs"]
mod common_fixtures;
use common_fixtures::fixtures;

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema = load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(name),
    );
    assert!(
        jsonschema::meta::is_valid(&schema),
        "{name} is a valid JSON Schema"
    );
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks every fixture of `stream` against `schema` and the parser.
fn schema_agrees_with_parser(stream: &str, schema: &str, expects: InboundType) {
    let schema = validator(schema);
    let mut checked = 0;
    for kind in ["valid", "invalid"] {
        for (name, body) in fixtures(stream, kind) {
            let parsed = jobsync::worker::parse(&body, expects, "q");
            let instance: Value = serde_json::from_slice(&body).unwrap();
            let schema_valid = schema.is_valid(&instance);
            match (&parsed, kind) {
                (Ok(_), "valid") => assert!(
                    schema_valid,
                    "{name}: the parser accepts it, the schema does not"
                ),
                (Ok(_), _) => panic!("{name}: the parser accepts an invalid fixture"),
                (Err(r), "valid") => panic!("{name}: the parser rejects a valid fixture: {r}"),
                (Err(r), _) => {
                    let code = name.split_once("--").unwrap().0;
                    assert_eq!(r.code.as_str(), code, "{name}: {r}");
                    assert_eq!(
                        schema_valid, r.beyond_schema,
                        "{name}: rejected for {r} (beyond the schema: {}), schema valid: {schema_valid}",
                        r.beyond_schema
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "the corpus is there: {checked}");
}

#[test]
fn the_job_order_schema_agrees_with_the_parser_on_every_fixture() {
    schema_agrees_with_parser(
        "joborder",
        "joborder-snapshot.schema.json",
        InboundType::JobOrderSnapshot,
    );
}

#[test]
fn the_mediation_log_schema_agrees_with_the_parser_on_every_fixture() {
    schema_agrees_with_parser(
        "mediationlog",
        "mediationlog-snapshot.schema.json",
        InboundType::MediationLogSnapshot,
    );
}

#[test]
fn every_valid_fixture_fits_the_envelope_schema() {
    let schema = validator("envelope.schema.json");
    for stream in ["joborder", "mediationlog"] {
        for (name, body) in fixtures(stream, "valid") {
            let instance: Value = serde_json::from_slice(&body).unwrap();
            assert!(schema.is_valid(&instance), "{stream}/{name}");
        }
    }
}

/// `schemas/openapi.json` is the description the read API serves
/// (`GET /v1/openapi.json`), generated from the code. After a change of
/// the API, `JOBSYNC_WRITE_OPENAPI=1 cargo test --test schemas` writes it
/// anew.
#[test]
fn the_openapi_description_in_schemas_is_the_one_served() {
    use utoipa::OpenApi as _;
    let served = jobsync::api::ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    if std::env::var_os("JOBSYNC_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "schemas/openapi.json differs from what the API serves; run JOBSYNC_WRITE_OPENAPI=1 cargo test --test schemas"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}
