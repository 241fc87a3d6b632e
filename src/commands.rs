//! The subcommands other than `run`: `migrate`, `publish` and `tail`.

use anyhow::{bail, Context as _};
use lapin::types::FieldTable;

use crate::amqp::{self, publisher::Outgoing, publisher::Publisher};
use crate::config::{redact_url, Settings, Topology};
use crate::domain::unit::Unit;
use crate::store;

/// `jobsync migrate`: creates the database when missing and applies pending
/// migrations; returns how many were applied.
pub async fn migrate(settings: &Settings) -> anyhow::Result<usize> {
    let url = settings.database.url.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection as _;
        store::db::create_database_if_missing(&url)?;
        let mut conn = diesel::PgConnection::establish(&url)
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(&url)))?;
        store::db::migrate(&mut conn)
    })
    .await?
}

/// Reads CloudEvents, one JSON object per line (blank lines skipped), and
/// returns them as messages for the hub exchange. Every line is checked before
/// anything is published, so a bad file publishes nothing.
pub fn read_events(text: &str, hub_exchange: &str) -> anyhow::Result<Vec<Outgoing>> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
        #[serde(rename = "type")]
        kind: String,
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let head: Head = serde_json::from_str(line).with_context(|| {
            format!("line {}: not a CloudEvent with a string id and type", n + 1)
        })?;
        let Some(routing_key) = head.kind.strip_prefix("dk.dfdg.") else {
            bail!(
                "line {}: type {:?} is not a hub type (dk.dfdg.…)",
                n + 1,
                head.kind
            );
        };
        out.push(Outgoing {
            exchange: hub_exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            properties: amqp::publisher::cloudevent_properties(&head.id, FieldTable::default()),
            body: line.as_bytes().to_vec(),
            mandatory: true,
        });
    }
    Ok(out)
}

/// `jobsync publish FILE`: publishes the events of FILE (`-` for standard
/// input) to the hub exchange under confirms; returns how many.
pub async fn publish(settings: &Settings, file: &str) -> anyhow::Result<usize> {
    let text = if file == "-" {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut s).await?;
        s
    } else {
        tokio::fs::read_to_string(file)
            .await
            .with_context(|| format!("cannot read {file}"))?
    };
    let events = read_events(&text, &settings.topology.hub_exchange)?;
    let (connection, _channel) = amqp::connect_declared(settings, "jobsync publish").await?;
    let publisher = Publisher::open(&connection).await?;
    for chunk in events.chunks(1000) {
        publisher.publish_all(chunk).await?;
    }
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
    let Some((kind, code)) = text.split_once(':') else {
        bail!(
            "{text:?} is not a unit; write it as jobcenter:15300, akasse:1234 or workindenmark:1"
        );
    };
    Unit::parse("unit", kind, code).map_err(|r| anyhow::anyhow!("{}", r.message))
}

/// `jobsync tail UNIT`: declares an exclusive, self-deleting queue bound to
/// `unit.<type>.<code>.#` on the notifications exchange and prints each
/// notification as one JSON line on standard output, until `stop` (or
/// `count` notifications).
pub async fn tail(
    settings: &Settings,
    unit: &str,
    count: Option<u64>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use lapin::options::BasicConsumeOptions;
    use std::io::Write;

    let unit = parse_unit(unit)?;
    let (connection, channel) =
        amqp::connect_declared(settings, &format!("jobsync tail {unit}")).await?;
    let binding = format!("unit.{}.{}.#", unit.kind().as_str(), unit.code());
    let queue = amqp::topology::watch(
        &channel,
        "",
        &settings.topology.notifications_exchange,
        &binding,
    )
    .await?;
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
    while count.is_none_or(|c| seen < c) {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.next() => d,
        };
        let Some(delivery) = delivery else { break };
        let delivery = delivery?;
        // One line per notification, whatever the body's layout.
        let line = match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
            Ok(v) => v.to_string(),
            Err(_) => String::from_utf8_lossy(&delivery.data).into_owned(),
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        seen += 1;
    }
    drop(out);
    let _ = connection.close(200, "tail stopped".into()).await;
    Ok(())
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
    fn a_bad_line_is_named_and_nothing_is_read() {
        let err = read_events(
            "{\"id\":\"a\",\"type\":\"dk.dfdg.joborder.snapshot\"}\nnot json\n",
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }
}
