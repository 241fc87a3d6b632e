//! The subcommands other than `run`: `migrate`, `publish` and `tail`.

use anyhow::{bail, Context as _};
use lapin::types::FieldTable;

use crate::amqp::{self, publisher::Outgoing, publisher::PublishError, publisher::Publisher};
use crate::config::{redact_url, PublishArgs, TailArgs, Topology};
use crate::domain::unit::Unit;
use crate::store;

/// `jobsync migrate`: creates the database when missing and applies pending
/// migrations; returns how many were applied.
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection as _;
        store::db::create_database_if_missing(&url)?;
        let mut conn = diesel::PgConnection::establish(&url)
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(&url)))?;
        store::db::migrate(&mut conn)
    })
    .await?
}

/// Reads CloudEvents written as JSON lines, as a JSON array, or as JSON
/// objects one after another (pretty-printed or not), and returns them as
/// messages for the hub exchange, each body exactly as written. Everything
/// is checked before anything is published, so a bad file publishes nothing.
pub fn read_events(text: &str, hub_exchange: &str) -> anyhow::Result<Vec<Outgoing>> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
        #[serde(rename = "type")]
        kind: String,
    }
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut values: Vec<(&RawValue, usize)> = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    loop {
        let at = stream.byte_offset();
        let Some(value) = stream.next() else { break };
        let value = value.map_err(|e| anyhow::anyhow!("line {}: not JSON ({e})", e.line()))?;
        let start = at + text[at..].len() - text[at..].trim_start().len();
        if value.get().starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(value.get()).with_context(|| {
                format!("line {}: an array of anything but events", line_of(start))
            })?;
            values.extend(items.into_iter().map(|item| (item, line_of(start))));
        } else {
            values.push((value, line_of(start)));
        }
    }
    let mut out = Vec::with_capacity(values.len());
    for (n, (value, line)) in values.into_iter().enumerate() {
        let head: Head = serde_json::from_str(value.get()).with_context(|| {
            format!(
                "event {} (line {line}): not a CloudEvent with a string id and type",
                n + 1
            )
        })?;
        let Some(routing_key) = head.kind.strip_prefix("dk.dfdg.") else {
            bail!(
                "event {} (line {line}): type {:?} is not a hub type (dk.dfdg.…)",
                n + 1,
                head.kind
            );
        };
        out.push(Outgoing {
            exchange: hub_exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            properties: amqp::publisher::cloudevent_properties(&head.id, FieldTable::default()),
            body: value.get().as_bytes().to_vec(),
            mandatory: true,
        });
    }
    Ok(out)
}

/// `jobsync publish FILE`: publishes the events of FILE (`-` for standard
/// input) to the hub exchange under confirms; returns how many. A message
/// no queue takes (the worker has not declared its queues on this broker)
/// is an error.
pub async fn publish(args: &PublishArgs) -> anyhow::Result<usize> {
    let text = if args.file == "-" {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut s).await?;
        s
    } else {
        tokio::fs::read_to_string(&args.file)
            .await
            .with_context(|| format!("cannot read {}", args.file))?
    };
    let events = read_events(&text, &args.hub_exchange)?;
    let connection = amqp::connect_named(&args.broker.amqp_url, "jobsync publish").await?;
    let channel = connection.create_channel().await?;
    amqp::topology::declare_topic_exchange(&channel, &args.hub_exchange).await?;
    let publisher = Publisher::open(&connection).await?;
    for chunk in events.chunks(1000) {
        publisher.publish_all(chunk).await.map_err(|e| match e {
            PublishError::Unroutable { routing_key, .. } => anyhow::anyhow!(
                "no queue takes {routing_key:?} on exchange {:?}: start the worker once (jobsync run) so that it declares its queues",
                args.hub_exchange
            ),
            e => e.into(),
        })?;
    }
    publisher.close().await?;
    let _ = channel.close(200, "published".into()).await;
    connection.close(200, "published".into()).await?;
    Ok(events.len())
}

/// Removes a prefixed environment (see [`crate::config::Topology::with_prefix`])
/// with everything in it: every queue and exchange of `topology`, and the
/// database `db_name` on the server at `server_url`. Blocking, on a thread
/// and runtime of its own (it is called from `Drop` in tests and
/// benchmarks, which may run inside a runtime); errors are ignored, as for
/// a cleanup after a failure.
pub fn remove_environment(amqp_url: &str, topology: &Topology, server_url: &str, db_name: &str) {
    let (amqp_url, topology) = (amqp_url.to_owned(), topology.clone());
    let (server_url, db_name) = (server_url.to_owned(), db_name.to_owned());
    let _ = std::thread::spawn(move || {
        use diesel::{Connection as _, RunQueryDsl as _};
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                if let Ok(conn) = amqp::connect(&amqp_url, "jobsync cleanup").await {
                    if let Ok(ch) = conn.create_channel().await {
                        let _ = amqp::topology::delete(&ch, &topology).await;
                    }
                    let _ = conn.close(200, "cleaned up".into()).await;
                }
            });
        }
        if let Ok(mut conn) = diesel::PgConnection::establish(&format!("{server_url}/postgres")) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
            ))
            .execute(&mut conn);
        }
    })
    .join();
}

/// Parses a unit written as in text: `jobcenter:15300`.
pub fn parse_unit(text: &str) -> anyhow::Result<Unit> {
    Unit::from_text(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `jobsync tail UNIT`: declares an exclusive, self-deleting queue bound to
/// `unit.<type>.<code>.#` on the notifications exchange and prints each
/// notification, as one JSON line or (`--pretty`) one line for a person,
/// until `stop` (or `--count` notifications).
pub async fn tail(
    args: &TailArgs,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use lapin::options::BasicConsumeOptions;
    use std::io::Write;

    let unit = parse_unit(&args.unit)?;
    let connection =
        amqp::connect_named(&args.broker.amqp_url, &format!("jobsync tail {unit}")).await?;
    let channel = connection.create_channel().await?;
    let exchange = &args.notifications_exchange;
    amqp::topology::declare_topic_exchange(&channel, exchange).await?;
    let binding = format!("unit.{}.{}.#", unit.kind().as_str(), unit.code());
    let queue = amqp::topology::watch(&channel, "", exchange, &binding).await?;
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "jobsync-tail".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let name = unit
        .municipality_name()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    tracing::info!(
        unit = %unit,
        queue = %queue,
        binding = %binding,
        "tailing the notifications of {unit}{name}"
    );
    let mut seen = 0u64;
    let mut out = std::io::stdout().lock();
    let result = loop {
        if args.count.is_some_and(|c| seen >= c) {
            break Ok(());
        }
        let delivery = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            d = deliveries.next() => d,
        };
        let Some(delivery) = delivery else {
            break Ok(());
        };
        let delivery = delivery?;
        let line = match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
            Ok(v) if args.pretty => pretty_line(&v, &unit),
            // One line per notification, whatever the body's layout.
            Ok(v) => v.to_string(),
            Err(_) => String::from_utf8_lossy(&delivery.data).into_owned(),
        };
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            break Err(e);
        }
        seen += 1;
    };
    drop(out);
    let _ = channel.close(200, "tail stopped".into()).await;
    let _ = connection.close(200, "tail stopped".into()).await;
    Ok(result?)
}

/// One line for a person: time, event, order, version (the job order's)
/// and the unit tailed, e.g.
/// `2026-03-02T09:15:00Z  joborder.updated  3f2c…  v4  jobcenter:15300`.
/// (A notification shared with several units at once carries `shared` in
/// its `unit` attribute; the line names the one watched.)
pub fn pretty_line(event: &serde_json::Value, unit: &Unit) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let kind = text(&event["type"]);
    let kind = kind.strip_prefix("dk.jobsync.").unwrap_or(&kind);
    let version = match &event["joborderversion"] {
        serde_json::Value::Number(n) => format!("v{n}"),
        _ => "-".to_owned(),
    };
    format!(
        "{}  {:<22} {}  {:>4}  {}",
        text(&event["time"]),
        kind,
        text(&event["subject"]),
        version,
        unit
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_written_type_colon_code() {
        assert_eq!(
            parse_unit("jobcenter:15300").unwrap().to_string(),
            "jobcenter:15300"
        );
        assert!(parse_unit("jobcenter-15300").is_err());
        assert!(parse_unit("jobcenter:99900").is_err());
        assert!(parse_unit("kommune:101").is_err());
    }

    #[test]
    fn routing_keys_come_from_the_type() {
        let text = "{\"id\":\"a\",\"type\":\"dk.dfdg.joborder.snapshot\"}\n\n{\"id\":\"b\",\"type\":\"dk.dfdg.mediationlog.snapshot\"}\n";
        let events = read_events(text, "dfdg.hub").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].routing_key, "joborder.snapshot");
        assert_eq!(events[1].routing_key, "mediationlog.snapshot");
        assert_eq!(
            events[0].properties.message_id().as_ref().unwrap().as_str(),
            "a"
        );
    }

    #[test]
    fn arrays_and_pretty_printed_objects_are_read_as_written() {
        let text = "[\n  {\"id\": \"a\", \"type\": \"dk.dfdg.joborder.snapshot\"},\n  {\"id\": \"b\", \"type\": \"dk.dfdg.joborder.snapshot\"}\n]\n{\n  \"id\": \"c\",\n  \"type\": \"dk.dfdg.mediationlog.snapshot\"\n}\n";
        let events = read_events(text, "dfdg.hub").unwrap();
        let ids: Vec<_> = events
            .iter()
            .map(|e| e.properties.message_id().as_ref().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(events[2].routing_key, "mediationlog.snapshot");
        assert_eq!(
            events[2].body,
            b"{\n  \"id\": \"c\",\n  \"type\": \"dk.dfdg.mediationlog.snapshot\"\n}"
        );
    }

    #[test]
    fn a_bad_event_is_named_by_its_line() {
        let err = read_events(
            "{\"id\":\"a\",\"type\":\"dk.dfdg.joborder.snapshot\"}\n\n{\"id\": 7,\n \"type\": \"x\"}\n",
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("event 2 (line 3):"), "{err}");
    }

    #[test]
    fn a_bad_line_is_named_and_nothing_is_read() {
        let err = read_events(
            "{\"id\":\"a\",\"type\":\"dk.dfdg.joborder.snapshot\"}\nnot json\n",
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2: not JSON"), "{err}");
    }
}
