//! `schemas/asyncapi.yaml`, the AsyncAPI description for integrators, is a
//! valid AsyncAPI 3 document and says what the code does.
//!
//! `tools/asyncapi/check.mjs` parses it with the AsyncAPI parser
//! (`@asyncapi/parser`, installed with `npm ci` from the committed lock file
//! when `tools/asyncapi/node_modules` is missing or older than the lock file),
//! resolving its references to the JSON Schemas beside it, and checks every
//! example against its schemas; it prints a JSON summary of the document.
//! This test then holds that summary to the crate: the exchanges are those
//! the worker declares, the routing keys those it consumes and publishes
//! with, and every notification and lifecycle event it can publish has its
//! message in the document, and nothing else does. Needs Node.js 20 or
//! later and npm on `PATH`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clap::{Args, FromArgMatches};
use jobsync::config::Topology;
use jobsync::contract::envelope::InboundType;
use jobsync::contract::headers;
use jobsync::contract::rejection::ErrorCode;
use jobsync::domain::fanout::{Event, Lifecycle};
use jobsync::domain::unit::Unit;
use jobsync::store::outbox::{unit_routing_key, SHARED_AUDIENCE};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool_dir() -> PathBuf {
    root().join("tools").join("asyncapi")
}

/// Runs `program` with `args` in `dir`; its output, or a panic that says
/// what is missing or what went wrong.
fn run(program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): tests/asyncapi.rs needs Node.js 20 or later and \
                 npm on PATH, to check schemas/asyncapi.yaml with the AsyncAPI parser \
                 (tools/asyncapi)"
            )
        });
    if !output.status.success() {
        panic!(
            "`{program} {}` in {} failed ({}):\n{}{}",
            args.join(" "),
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Installs the checker's dependencies from the lock file unless an install
/// at least as new as the lock file is there. `npm ci` writes
/// `node_modules/.package-lock.json` last, so a broken-off install is redone.
fn install_checker() {
    let dir = tool_dir();
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock = modified(dir.join("package-lock.json"))
        .expect("tools/asyncapi/package-lock.json is committed");
    let installed = modified(dir.join("node_modules").join(".package-lock.json"));
    if installed.is_some_and(|installed| installed >= lock) {
        return;
    }
    run(
        "npm",
        &[
            "ci",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            // The only install script in the tree is an analytics ping.
            "--ignore-scripts",
        ],
        &dir,
    );
}

/// The checker's summary of the document (parsed once per test binary).
fn summary() -> &'static Value {
    static SUMMARY: OnceLock<Value> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        install_checker();
        let check = tool_dir().join("check.mjs");
        let document = root().join("schemas").join("asyncapi.yaml");
        let output = run(
            "node",
            &[check.to_str().unwrap(), document.to_str().unwrap()],
            root(),
        );
        serde_json::from_slice(&output.stdout).expect("check.mjs prints a JSON summary")
    })
}

fn channels() -> impl Iterator<Item = (&'static String, &'static Value)> {
    summary()["channels"].as_object().expect("channels").iter()
}

fn exchange(channel: &Value) -> &str {
    channel["amqp"]["exchange"]["name"]
        .as_str()
        .expect("every channel has an AMQP binding naming its exchange")
}

/// The channels on `exchange`, by id.
fn channels_on(exchange_name: &str) -> Vec<(&'static String, &'static Value)> {
    channels()
        .filter(|(_, c)| exchange(c) == exchange_name)
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("strings").to_owned())
        .collect()
}

fn message_names(channel: &Value) -> BTreeSet<String> {
    messages(channel)
        .map(|m| {
            m["name"]
                .as_str()
                .expect("every message has a name")
                .to_owned()
        })
        .collect()
}

fn messages(channel: &Value) -> impl Iterator<Item = &Value> {
    channel["messages"].as_array().expect("messages").iter()
}

fn examples(message: &Value) -> impl Iterator<Item = &Value> {
    message["examples"].as_array().expect("examples").iter()
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

/// The default names, as the command line gives them without any flag or
/// environment variable.
fn default_topology() -> Topology {
    let command =
        Topology::augment_args(clap::Command::new("topology")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["topology"])
        .expect("every name has a default");
    Topology::from_arg_matches(&matches).expect("the defaults make a topology")
}

/// Every notification event the code can publish. The match has no
/// wildcard: a new `Event` does not compile here until it is listed, and
/// then this test wants it in the document.
fn all_events() -> Vec<Event> {
    let all = [
        Event::JobOrderUpdated,
        Event::JobOrderRevoked,
        Event::JobOrderExpired,
        Event::MediationLogUpdated,
        Event::JobOrderPromiseMissed,
    ];
    for event in all {
        match event {
            Event::JobOrderUpdated
            | Event::JobOrderRevoked
            | Event::JobOrderExpired
            | Event::MediationLogUpdated
            | Event::JobOrderPromiseMissed => {}
        }
    }
    all.to_vec()
}

/// Every inbound type (no wildcard, as for [`all_events`]).
fn all_inbound() -> Vec<InboundType> {
    let all = [
        InboundType::JobOrderSnapshot,
        InboundType::MediationLogSnapshot,
    ];
    for kind in all {
        match kind {
            InboundType::JobOrderSnapshot | InboundType::MediationLogSnapshot => {}
        }
    }
    all.to_vec()
}

#[test]
fn the_document_is_asyncapi_3_for_an_amqp_0_9_1_broker() {
    let s = summary();
    assert_eq!(s["asyncapi"], "3.0.0");
    let servers = s["servers"].as_object().unwrap();
    assert!(!servers.is_empty(), "a server");
    for (id, server) in servers {
        assert_eq!(server["protocol"], "amqp", "{id}");
        assert_eq!(server["protocolVersion"], "0.9.1", "{id}");
        assert!(
            server["host"].as_str().unwrap().contains("{host}"),
            "{id}: a variable host"
        );
    }
}

#[test]
fn every_exchange_in_the_document_is_one_the_worker_declares() {
    let t = default_topology();
    // amqp::topology::declare declares these five; the retry exchange is
    // internal and not described.
    let declared = [
        (&t.hub_exchange, "topic"),
        (&t.dead_exchange, "fanout"),
        (&t.retry_exchange, "direct"),
        (&t.notifications_exchange, "topic"),
        (&t.events_exchange, "topic"),
    ];
    let mut seen = BTreeSet::new();
    for (id, channel) in channels() {
        let amqp = &channel["amqp"];
        assert_eq!(amqp["is"], "routingKey", "{id}");
        let name = exchange(channel);
        let (_, kind) = declared
            .iter()
            .find(|(declared, _)| declared.as_str() == name)
            .unwrap_or_else(|| panic!("{id}: exchange {name} is not one the worker declares"));
        assert_eq!(amqp["exchange"]["type"], *kind, "{id}: {name}");
        assert_eq!(amqp["exchange"]["durable"], true, "{id}: {name}");
        seen.insert(name.to_owned());
    }
    assert_eq!(
        seen,
        set([
            t.hub_exchange.as_str(),
            t.dead_exchange.as_str(),
            t.notifications_exchange.as_str(),
            t.events_exchange.as_str(),
        ]),
        "every exchange jobsync consumes from or publishes to is described"
    );
    assert_eq!(
        [
            &t.hub_exchange,
            &t.notifications_exchange,
            &t.events_exchange,
            &t.dead_exchange
        ],
        [
            "dfdg.hub",
            "jobsync.notifications",
            "jobsync.events",
            "jobsync.dead"
        ],
        "the default names of the contract"
    );
}

#[test]
fn the_hub_channels_are_the_inbound_types_and_jobsync_receives_them() {
    let t = default_topology();
    let hub = channels_on(&t.hub_exchange);
    let addresses: BTreeSet<String> = hub
        .iter()
        .map(|(_, c)| c["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        addresses,
        set(all_inbound().into_iter().map(InboundType::routing_key))
    );
    for (id, channel) in hub {
        let kind = all_inbound()
            .into_iter()
            .find(|k| channel["address"] == k.routing_key())
            .unwrap();
        assert_eq!(message_names(channel), set([kind.routing_key()]), "{id}");
        for message in messages(channel) {
            for example in examples(message) {
                let payload = &example["payload"];
                assert_eq!(payload["type"], kind.as_str(), "{id}");
                let body = serde_json::to_vec(payload).unwrap();
                if let Err(r) = jobsync::worker::parse(&body, kind, "q") {
                    panic!("{id}: the worker rejects example {}: {r}", example["name"]);
                }
            }
        }
        assert_operations(id, "receive");
    }
}

/// Every operation on `channel_id` has `action`, and there is one.
fn assert_operations(channel_id: &str, action: &str) {
    let operations: Vec<_> = summary()["operations"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, o)| o["channel"] == channel_id)
        .collect();
    assert!(!operations.is_empty(), "{channel_id}: an operation");
    for (id, operation) in operations {
        assert_eq!(operation["action"], action, "{id} on {channel_id}");
    }
}

#[test]
fn every_notification_event_has_its_message_and_nothing_else_does() {
    let t = default_topology();
    let events = set(all_events().into_iter().map(Event::as_str));
    let unit = Unit::parse("unit", "jobcenter", "15300").unwrap();
    let channels = channels_on(&t.notifications_exchange);
    let (per_unit_id, per_unit) = channels
        .iter()
        .find(|(_, c)| c["address"] == "unit.{type}.{code}.{event}")
        .expect("a channel with address unit.{type}.{code}.{event}");
    assert_eq!(message_names(per_unit), events, "{per_unit_id}");
    assert_eq!(
        strings(&per_unit["parameters"]["event"]["enum"]),
        events,
        "{per_unit_id}"
    );
    assert_eq!(
        strings(&per_unit["parameters"]["type"]["enum"]),
        set(["jobcenter", "akasse", "workindenmark"]),
        "{per_unit_id}"
    );
    for event in &events {
        // The address is the code's routing key with the unit and event put in.
        let address = per_unit["address"]
            .as_str()
            .unwrap()
            .replace("{type}", unit.kind().as_str())
            .replace("{code}", unit.code())
            .replace("{event}", event);
        assert_eq!(address, unit_routing_key(&unit, event));
    }
    for message in messages(per_unit) {
        let name = message["name"].as_str().unwrap();
        for example in examples(message) {
            let payload = &example["payload"];
            assert_eq!(payload["type"], format!("dk.jobsync.{name}"), "{name}");
            let unit = payload["unit"].as_str().unwrap();
            assert!(
                unit != SHARED_AUDIENCE && unit.contains(':'),
                "{name}: a per-unit notification names its unit: {unit}"
            );
        }
    }
    assert_operations(per_unit_id, "send");

    // The shared view: once, with the units' routing keys in BCC.
    let shared_address = format!("unit.{SHARED_AUDIENCE}.{{event}}");
    let (shared_id, shared) = channels
        .iter()
        .find(|(_, c)| c["address"] == shared_address.as_str())
        .unwrap_or_else(|| panic!("a channel with address {shared_address}"));
    let shared_events = message_names(shared);
    assert!(shared_events.is_subset(&events), "{shared_id}");
    assert!(shared_events.contains(Event::JobOrderUpdated.as_str()));
    assert_eq!(
        strings(&shared["parameters"]["event"]["enum"]),
        shared_events,
        "{shared_id}"
    );
    for message in messages(shared) {
        let name = message["name"].as_str().unwrap();
        assert!(
            strings(&message["headers"]["required"]).contains("BCC"),
            "{shared_id}: {name} is published with BCC"
        );
        for example in examples(message) {
            assert_eq!(example["payload"]["unit"], SHARED_AUDIENCE);
            let bcc = strings(&example["headers"]["BCC"]);
            assert!(bcc.len() >= 2, "{name}: {bcc:?}");
            for key in bcc {
                // Each BCC key is a unit's own routing key for this event.
                let rest = key.strip_prefix("unit.").unwrap();
                let (kind, rest) = rest.split_once('.').unwrap();
                let (code, event) = rest.split_once('.').unwrap();
                let unit = Unit::parse("bcc", kind, code).unwrap();
                assert_eq!(event, name, "{key}");
                assert_eq!(unit_routing_key(&unit, event), key);
            }
        }
    }
    assert_operations(shared_id, "send");

    assert_eq!(
        channels.len(),
        2,
        "the notifications exchange has the per-unit and the shared channel"
    );
}

#[test]
fn every_lifecycle_event_has_its_channel_and_nothing_else_does() {
    let t = default_topology();
    let lifecycle = set(Lifecycle::ALL.into_iter().map(Lifecycle::as_str));
    let channels = channels_on(&t.events_exchange);
    let addresses: BTreeSet<String> = channels
        .iter()
        .map(|(_, c)| c["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        addresses, lifecycle,
        "one channel on {} per event of Lifecycle::ALL",
        t.events_exchange
    );
    for (id, channel) in channels {
        let key = channel["address"].as_str().unwrap();
        assert_eq!(message_names(channel), set([key]), "{id}");
        for message in messages(channel) {
            for example in examples(message) {
                let payload = &example["payload"];
                assert_eq!(payload["type"], format!("dk.jobsync.{key}"), "{id}");
                assert!(payload.get("unit").is_none(), "{id}: no unit");
            }
        }
        assert_operations(id, "send");
    }
}

#[test]
fn dead_letters_carry_every_error_code_of_the_code() {
    let t = default_topology();
    let channels = channels_on(&t.dead_exchange);
    assert_eq!(channels.len(), 1);
    let (id, channel) = channels[0];
    let rejected = messages(channel)
        .find(|m| {
            m["headers"]["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|h| h == headers::ERROR_CODE))
        })
        .expect("a message with the rejection headers");
    assert_eq!(
        strings(&rejected["headers"]["required"]),
        set([
            headers::ERROR_CODE,
            headers::ERROR,
            headers::SOURCE_QUEUE,
            headers::REJECTED_AT,
        ]),
        "{id}: the rejection headers of contract 4.3"
    );
    let jobsync_headers: BTreeSet<String> = rejected["headers"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|h| h.starts_with(headers::JOBSYNC_PREFIX))
        .cloned()
        .collect();
    assert_eq!(
        jobsync_headers,
        set([
            headers::ERROR_CODE,
            headers::ERROR,
            headers::SOURCE_QUEUE,
            headers::REJECTED_AT,
            headers::RETRIES,
            headers::FIRST_SEEN_AT,
            headers::ROUTING_KEY,
        ]),
        "{id}: the x-jobsync-* headers a dead letter can carry"
    );
    assert_eq!(
        strings(&rejected["headers"]["properties"][headers::ERROR_CODE]["enum"]),
        set(ErrorCode::ALL.iter().map(|c| c.as_str())),
        "{id}: the error codes"
    );
    // An example rejected for a rule of the message alone is rejected with
    // that code by the worker too.
    let mut checked = 0;
    for example in examples(rejected) {
        let code = example["headers"][headers::ERROR_CODE].as_str().unwrap();
        let queue = example["headers"][headers::SOURCE_QUEUE].as_str().unwrap();
        assert!(
            queue == t.joborders_queue || queue == t.mediationlogs_queue,
            "{queue} is a consumed queue"
        );
        let kind = all_inbound()
            .into_iter()
            .find(|k| example["payload"]["type"] == k.as_str())
            .unwrap();
        let body = serde_json::to_vec(&example["payload"]).unwrap();
        match jobsync::worker::parse(&body, kind, queue) {
            Err(r) => {
                assert_eq!(r.code.as_str(), code, "{}", example["name"]);
                checked += 1;
            }
            Ok(_) => assert!(
                ["joborder.unknown", "version.conflict"].contains(&code)
                    || code.starts_with("mediation.")
                    || code.starts_with("handover."),
                "{}: the worker accepts the body alone, so {code} must be a rule that compares with what is stored",
                example["name"]
            ),
        }
    }
    assert!(checked >= 1, "an example rejected for the message alone");
    assert_operations(id, "send");
}

#[test]
fn every_payload_schema_is_a_file_beside_the_document_and_every_example_fits_it() {
    let mut files = BTreeSet::new();
    for (id, channel) in channels() {
        for message in messages(channel) {
            let message_id = message["id"].as_str().unwrap();
            assert!(
                examples(message).next().is_some(),
                "{id}/{message_id}: an example"
            );
            let Some(schema_id) = message["payloadSchemaId"].as_str() else {
                continue;
            };
            assert_eq!(
                message["schemaFormat"], "application/schema+json;version=draft-2020-12",
                "{id}/{message_id}"
            );
            let file = schema_id.rsplit('/').next().unwrap();
            let path = root().join("schemas").join(file);
            let schema: Value = serde_json::from_slice(
                &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
            .unwrap();
            assert_eq!(schema["$id"], schema_id, "{}", path.display());
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{file}"
            );
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            for example in examples(message) {
                let errors: Vec<String> = validator
                    .iter_errors(&example["payload"])
                    .map(|e| format!("{}: {e}", e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{id}/{message_id}, example {}: does not fit {file}: {errors:?}",
                    example["name"]
                );
            }
            files.insert(file.to_owned());
        }
    }
    // Every message schema under schemas/ is used (the envelope schema is
    // the inbound snapshots' common part, not a message of its own).
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("schemas"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".schema.json") && n != "envelope.schema.json")
        .collect();
    assert_eq!(files, on_disk, "the schema files the document references");
}
